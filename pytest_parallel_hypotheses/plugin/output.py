"""What a hypothesis's script and setup step printed, as report sections of its item.

A falsified hypothesis is a passing item, and a passing item has no failure text: attaching
the output as pytest's own ``Captured stdout call`` sections lets ``-rP`` and ``-rA`` show it,
so every verdict can be checked, not only the failing ones. The setup step's output goes in
the ``setup`` sections, shown with a passing item, or with the error of a failed setup, but
not under a failing script, where an install's log would bury the script's story.
"""

from __future__ import annotations

import pytest

from ..core.models import TestExecutionResult


def attach_passing_output(item: pytest.Item, result: TestExecutionResult) -> None:
    """The setup step's and the script's kept stdout and stderr, for a passing item."""
    if result.setup is not None:
        _attach(item, "setup", result.setup["stdout"], result.setup["stderr"])
    _attach(item, "call", result.stdout, result.stderr)


def attach_failed_setup_output(item: pytest.Item, result: TestExecutionResult) -> None:
    """The kept stdout and stderr of a setup step that failed, as sections of the item's
    setup."""
    if result.setup is not None and result.setup["problem"] is not None:
        _attach(item, "setup", result.setup["stdout"], result.setup["stderr"])


def _attach(item: pytest.Item, when: str, stdout: str, stderr: str) -> None:
    for key, text in (("stdout", stdout), ("stderr", stderr)):
        if text:
            item.add_report_section(when, key, text)
