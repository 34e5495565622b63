"""The session's long-lived objects kept out of the garbage collector's way while it runs.

A full collection walks every object the collector tracks. Once the scripts start, the session
holds its imports and collected items until its end, and each full collection walked them all
again: one or two during the run, and the two that pytest makes at its end to catch the
exceptions of finalizers, in all about a tenth of a run over 1,000 trivial hypotheses.
``gc.freeze`` moves them to the permanent generation, which collections skip; what the run
makes is collected as before. The session's last cleanup gives them back, after pytest's own
collections, so a process that runs pytest several times frees each session in turn.
"""

from __future__ import annotations

import gc

import pytest


class SessionHeap:
    """The plugin part that freezes the session's objects as the run loop starts and gives
    them back when the session is cleaned up. A process that froze objects of its own is
    left alone: giving ours back would give theirs back too."""

    def __init__(self) -> None:
        self._frozen = False

    def pytest_configure(self, config: pytest.Config) -> None:
        # registered before pytest's own plugins register theirs, so it runs after them
        config.add_cleanup(self.give_back)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        if not session.config.option.collectonly and gc.get_freeze_count() == 0:
            gc.freeze()
            self._frozen = True

    def give_back(self) -> None:
        """Make the frozen objects collectable again (garbage among them is freed by the next
        collection)."""
        if self._frozen:
            gc.unfreeze()
            self._frozen = False
