"""The verdict cache: decided results stored by the key of their inputs, where every worktree
of the repository sees them (under git's common directory).

Each entry is one JSON file named by its key, written to a temporary file and renamed into
place, so concurrent runs and pytest-xdist workers only ever see whole entries, and a run
killed mid-write leaves at most a temporary file that no lookup reads. An entry that cannot be
read, or that belongs to another key or format, is ignored with a warning: never a crash,
never a wrong reuse.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import warnings
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from ..core.classification import HypothesisStatus, Polarity, TestResult
from ..core.models import TestExecutionResult, output_source
from ..core.sequential import parse_evidence
from ..core.tested import CodeUnderTest
from .atomic import write_atomically
from .git import GitError, git_common_dir

logger = logging.getLogger(__name__)

#: The store's folder under git's common directory.
STORE_FOLDER = Path("pytest-hypotheses", "verdicts")
#: The layout of an entry; an entry of another layout is ignored.
ENTRY_FORMAT = 1


class CacheWarning(UserWarning):
    """A cache entry that was ignored: unreadable, corrupt, or of another key or format."""


def store_folder(worktree: Path) -> Optional[Path]:
    """The store of the repository ``worktree`` belongs to, or None outside a repository."""
    try:
        return git_common_dir(worktree) / STORE_FOLDER
    except GitError:
        return None


class VerdictStore:
    """The entries of one repository's store, by key."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def load(self, key: str) -> Optional[Dict[str, Any]]:
        """The entry stored under ``key``, or None (absent, or ignored with a warning)."""
        path = self._path(key)
        if not path.exists():
            return None
        entry, problem = _read_entry(path, key)
        if problem is not None:
            warn_ignored(f"ignoring verdict cache entry {path}: it {problem}")
        return entry

    def save(self, key: str, entry: Mapping[str, Any]) -> None:
        """Store ``entry`` under ``key`` atomically; a store that cannot be written is
        logged, and the run goes on without it."""
        text = json.dumps({**entry, "format": ENTRY_FORMAT, "key": key}, sort_keys=True)
        try:
            write_atomically(self._path(key), text, durable=False)
        except OSError as error:
            logger.warning("cannot store a verdict in %s: %s", self.folder, error)

    def clear(self) -> int:
        """Remove every entry (and leftover temporary file); return how many entries."""
        if not self.folder.is_dir():
            return 0
        removed = 0
        for path in self.folder.iterdir():
            if path.is_file():
                path.unlink(missing_ok=True)
                removed += not path.name.startswith(".")  # a temporary file's name does
        return removed

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.json"


def _read_entry(path: Path, key: str) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """The entry in ``path`` and None, or None and what is wrong with it."""
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        return None, f"cannot be read ({error})"
    except json.JSONDecodeError as error:
        return None, f"is not valid JSON ({error.msg})"
    if not isinstance(entry, dict) or entry.get("format") != ENTRY_FORMAT:
        return None, "is not an entry of this version's format"
    if entry.get("key") != key:
        return None, "belongs to another key"
    return entry, None


def warn_ignored(message: str) -> None:
    """Tell the user an entry was ignored (pytest shows it in its warnings summary)."""
    warnings.warn(CacheWarning(message), stacklevel=3)


def entry_of(result: TestExecutionResult, recorded_at: str) -> Dict[str, Any]:
    """What the store keeps of a result: all of it, and when it was reached."""
    return {"recorded_at": recorded_at, "result": result.to_dict()}


def result_of(entry: Mapping[str, Any], worktree_path: str) -> Optional[TestExecutionResult]:
    """The stored result of an entry, marked as cached with its original date, as if run in
    ``worktree_path``; None (with a warning) when the entry does not hold one."""
    try:
        data = entry["result"]
        polarity = Polarity(data.get("polarity", Polarity.DISPROVE.value))
        code = data.get("code_under_test")
        tested = None if code is None else CodeUnderTest.from_dict(code)
        attempts, not_counted = (
            [
                _attempt(item, data["hypothesis_id"], worktree_path, polarity, tested)
                for item in runs
            ]
            for runs in (data["attempts"], data.get("not_counted") or ())  # not in older entries
        )
        evidence = None if data["evidence"] is None else parse_evidence(data["evidence"])
        if data["evidence"] is not None and evidence is None:
            raise ValueError("evidence is not valid")
        result = TestExecutionResult(
            hypothesis_id=str(data["hypothesis_id"]),
            result=TestResult(data["result"]),
            duration=float(data["duration"]),
            stdout=str(data["stdout"]),
            stderr=str(data["stderr"]),
            exit_code=int(data["exit_code"]),
            worktree_path=worktree_path,
            error_message=str(data["error_message"]),
            metrics=dict(data["metrics"]),
            status=HypothesisStatus(data["status"]),
            stdout_bytes=int(data["stdout_bytes"]),
            stderr_bytes=int(data["stderr_bytes"]),
            stdout_truncated=bool(data["stdout_truncated"]),
            stderr_truncated=bool(data["stderr_truncated"]),
            attempts=attempts,
            not_counted=not_counted,
            timed_out_after=data["timed_out_after"],
            evidence=evidence,
            cached_at=str(entry["recorded_at"]),
            polarity=polarity,
            setup=data.get("setup"),
            code_under_test=tested,
            timeout_snapshot=data.get("timeout_snapshot"),
            stdout_file=data.get("stdout_file"),
            stderr_file=data.get("stderr_file"),
        )
    except (KeyError, TypeError, ValueError) as error:
        warn_ignored(f"ignoring a verdict cache entry that holds no valid result: {error!r}")
        return None
    _give_back_output(result)
    return result


#: What a stored attempt does not keep, since the result holds it once.
_OUTPUT_FIELDS = (
    "stdout",
    "stderr",
    "stdout_bytes",
    "stderr_bytes",
    "stdout_truncated",
    "stderr_truncated",
    "stdout_file",
    "stderr_file",
    "timeout_snapshot",
)


def _give_back_output(result: TestExecutionResult) -> None:
    """Give the result's output back to the attempt it came from (the last with the result's
    outcome, the one combining keeps): the plugin judges a reused result again from its
    attempts, and the report of a reused verdict must show what its script printed."""
    index = output_source(result.attempts, result.result)
    if index is not None:
        output = {name: getattr(result, name) for name in _OUTPUT_FIELDS}
        result.attempts[index] = dataclasses.replace(result.attempts[index], **output)


def _attempt(
    data: Mapping[str, Any],
    hypothesis_id: str,
    worktree_path: str,
    polarity: Polarity,
    tested: Optional[CodeUnderTest],
) -> TestExecutionResult:
    return TestExecutionResult(
        polarity=polarity,
        code_under_test=tested,
        hypothesis_id=hypothesis_id,
        result=TestResult(data["result"]),
        duration=float(data["duration"]),
        exit_code=int(data["exit_code"]),
        worktree_path=worktree_path,
        error_message=str(data["error_message"]),
        metrics=dict(data["metrics"]),
    )


def stores_of(worktrees: Iterable[Path]) -> List[VerdictStore]:
    """The stores of the repositories these worktrees belong to, each once."""
    folders = {store_folder(worktree) for worktree in worktrees}
    return [VerdictStore(folder) for folder in sorted(filter(None, folders))]
