"""Captured output written to files, so the runner's memory does not grow with the run.

A run of many hypotheses would otherwise hold every script's capped output until the end, and
write all of it into its report. Once a script is gone, its kept bytes go to a file, and its
result keeps only an excerpt (head and tail) for failure texts, naming the file for the rest.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

from ..core.config import FalsificationConfig
from ..core.results import KeptOutput
from .capture import BoundedCapture

#: How many bytes of the head and of the tail of a spilled stream a result keeps in memory.
EXCERPT_BYTES = 8 * 1024

logger = logging.getLogger(__name__)


@dataclass
class SpilledOutput:
    """What the runner kept of one stream, once written to ``file``: its counts and excerpt."""

    total: int
    truncated: bool
    file: Optional[str]
    excerpt: str

    def text(self) -> str:
        """The excerpt: the whole kept output is in :attr:`file`."""
        return self.excerpt


def spill_folder(config: FalsificationConfig) -> Optional[Path]:
    """Where this run writes its captured output: ``config.output_folder``, else one temporary
    folder per process made at the first use; None when output stays in memory."""
    if not config.spill_output:
        return None
    if config.output_folder:
        return Path(config.output_folder)
    return _temporary_folder()


@functools.cache
def _temporary_folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="hypotheses-output-"))


def kept_output(
    config: FalsificationConfig,
    stdout: BoundedCapture,
    stderr: BoundedCapture,
    *,
    hypothesis_id: str,
    worktree: str,
    attempt: int,
) -> Tuple[KeptOutput, KeptOutput]:
    """The two streams of one attempt as its result keeps them: spilled to files when the run
    says so; left in memory otherwise, or when a file cannot be written (said in the log: the
    output is not lost, only memory is spent)."""
    folder = spill_folder(config)
    if folder is None:
        return stdout, stderr
    # ids repeat across worktrees: a digest of the worktree's path tells them apart
    stem = f"{hypothesis_id}-{hashlib.sha1(worktree.encode()).hexdigest()[:10]}-{attempt}"
    try:
        return spill(stdout, folder / f"{stem}.stdout"), spill(stderr, folder / f"{stem}.stderr")
    except OSError as error:
        logger.warning("output of %s kept in memory: %s", hypothesis_id, error)
        return stdout, stderr


def spill(capture: BoundedCapture, path: Path) -> SpilledOutput:
    """Write what ``capture`` kept to ``path`` and keep only its excerpt."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as stream:
        capture.write_to(stream)
    excerpt = capture.excerpt(EXCERPT_BYTES, str(path))
    return SpilledOutput(capture.total, capture.truncated, str(path), excerpt)
