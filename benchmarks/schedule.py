"""Makespans of jobs on identical workers: what a greedy runner achieves and the true optimum.

A runner that starts the next script in input order whenever a worker frees up is doing list
scheduling; workload (d) compares its measured makespan with the best any order could reach,
computed exactly here (the job counts are small enough for a branch-and-bound search).
"""

from __future__ import annotations

import heapq
from typing import List, Sequence


def list_schedule_makespan(durations: Sequence[float], workers: int) -> float:
    """Makespan when each job starts, in the given order, on the first worker to become free."""
    finish = [0.0] * workers
    for duration in durations:
        earliest = heapq.heappop(finish)
        heapq.heappush(finish, earliest + duration)
    return max(finish)


def longest_first(durations: Sequence[float]) -> List[int]:
    """Indices of the jobs, longest first (LPT order; ties keep input order)."""
    return sorted(range(len(durations)), key=lambda index: -durations[index])


def optimal_makespan(durations: Sequence[float], workers: int) -> float:
    """The smallest makespan of any assignment of the jobs to ``workers`` identical workers."""
    jobs = sorted(durations, reverse=True)
    lower = max(max(jobs, default=0.0), sum(jobs) / workers)
    best = [list_schedule_makespan(jobs, workers)]  # LPT: a good first upper bound
    loads = [0.0] * workers

    def place(index: int) -> None:
        if best[0] <= lower + 1e-9:
            return  # the bound is met: nothing can be better
        if index == len(jobs):
            best[0] = min(best[0], max(loads))
            return
        tried = set()
        for worker in range(workers):
            load = loads[worker]
            if load in tried or load + jobs[index] >= best[0] - 1e-9:
                continue  # an equal load gives the same subtree; a too-full one cannot win
            tried.add(load)
            loads[worker] = load + jobs[index]
            place(index + 1)
            loads[worker] = load

    place(0)
    return best[0]
