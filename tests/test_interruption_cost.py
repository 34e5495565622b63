"""What stopping an interrupted run costs: a person who presses Ctrl-C while hundreds of
scripts run gets the prompt back within the kill grace and a second or two, so the stop must
not read the whole process table once per script (which grows with the scripts, the machine's
other processes and the load)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Callable, List

import psutil
import pytest

from pytest_parallel_hypotheses import (
    AsyncTestExecutor,
    FalsificationConfig,
    Hypothesis,
    HypothesisRun,
)
from pytest_parallel_hypotheses.engine.tree import ProcessTree

SCRIPTS = 30
QUICK = FalsificationConfig(test_timeout=600, kill_grace=0.3, max_concurrent_tests=SCRIPTS)
#: Generous bound that only catches a hang.
HANG = 60.0


@pytest.mark.asyncio
async def test_an_interrupted_run_reads_the_process_table_a_few_times_not_once_per_script(
    tmp_path: Path,
    write_script: Callable[..., Path],
    sleep_token: str,
    live_processes: Callable[[str], List[psutil.Process]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = [f"s{index}" for index in range(SCRIPTS)]
    for hypothesis_id in ids:
        write_script(
            tmp_path,
            hypothesis_id,
            f"setsid sleep {sleep_token} >/dev/null 2>&1 </dev/null &\n"
            f"touch started-{hypothesis_id}\nsleep {sleep_token}",
        )
    runs = [HypothesisRun(Hypothesis(i, "x"), tmp_path) for i in ids]
    task = asyncio.ensure_future(AsyncTestExecutor(QUICK).execute_parallel_async(runs))
    await asyncio.wait_for(all_started(tmp_path, ids), HANG)
    passes = count_passes(monkeypatch)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, HANG)

    assert live_processes(sleep_token) == []
    assert 0 < len(passes) < SCRIPTS / 2


async def all_started(folder: Path, ids: List[str]) -> None:
    while not all((folder / f"started-{i}").exists() for i in ids):
        await asyncio.sleep(0.02)


def count_passes(monkeypatch: pytest.MonkeyPatch) -> List[None]:
    """Record each look of a process tree at the process table from now on."""
    passes: List[None] = []
    members = ProcessTree.members

    def counted(tree: ProcessTree, *args: object, **kwargs: object) -> List[psutil.Process]:
        passes.append(None)
        return members(tree, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ProcessTree, "members", counted)
    return passes
