"""Run the benchmarks and print the table: ``python -m benchmarks [--quick] [--json PATH]``.

The full run takes two to three minutes on two cores; ``--quick`` runs every workload at a
tiny size once, in seconds, to prove the benchmarks still work (CI does that).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from .fitting import FIT_FACTORIES, uneven
from .output import output_memory
from .plugin_overhead import plugin_overhead
from .plugin_sum import plugin_against_parts
from .report import as_json, describe_machine, machine, table
from .suite import Figures, Unavailable, Workload, measure
from .watching import watching_overhead
from .workloads import FACTORIES, FULL, QUICK, Scale

Factory = Callable[[Scale, Path], Workload]
WORKLOADS: Dict[str, Factory] = {
    **FACTORIES,
    "g": plugin_overhead,
    **FIT_FACTORIES,
    "m": plugin_against_parts,
    "n": watching_overhead,
    "o": output_memory,
    "p": uneven,
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    unknown = sorted(set(args.only) - set(WORKLOADS))
    if unknown:
        parser.error(
            f"unknown workload(s): {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}"
        )
    scale = QUICK if args.quick else FULL
    if args.output_items is not None:
        scale = dataclasses.replace(scale, output_items=args.output_items)
    started = time.monotonic()
    print(describe_machine(machine()), flush=True)
    results: List[Figures] = []
    unavailable: Dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="pph-bench-") as scratch:
        for key in args.only or WORKLOADS:
            _progress(started, f"({key}) preparing")
            try:
                workload = WORKLOADS[key](scale, Path(scratch) / key)
            except Unavailable as reason:
                unavailable[key] = str(reason)
                continue
            repeats = args.repeats or scale.repeats or workload.repeats
            results.append(measure(workload, repeats, lambda text: _progress(started, text)))
    print(table(results, unavailable))
    print(f"\n{describe_machine(machine())}; took {time.monotonic() - started:.0f} s")
    if args.json is not None:
        args.json.write_text(json.dumps(as_json(results, unavailable), indent=2) + "\n")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark the executor against a ThreadPool, xargs -P and the spawn limit.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes, one repeat: a smoke run in seconds"
    )
    parser.add_argument(
        "--repeats", type=int, metavar="N", help="repeats per workload (default: 3, or 5 for a)"
    )
    parser.add_argument(
        "--only",
        type=lambda text: [key.strip() for key in text.split(",") if key.strip()],
        default=[],
        metavar="KEYS",
        help="run only these workloads, e.g. a,b (default: all of a-p)",
    )
    parser.add_argument(
        "--output-items",
        type=int,
        metavar="N",
        help="how many loud scripts workload o runs (default: 400, or 4 with --quick)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the raw figures here")
    return parser


def _progress(started: float, text: str) -> None:
    print(f"[{time.monotonic() - started:6.1f} s] {text}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
