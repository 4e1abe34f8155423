"""The ``gpuconv`` command: ``gpuconv bench`` and ``gpuconv info``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _bench(args: argparse.Namespace) -> int:
    from . import _bench

    if args.device == "cuda":
        print(
            "gpuconv bench: the CUDA suites are not available yet; use --device cpu",
            file=sys.stderr,
        )
        return 2
    sizes = tuple(args.k) if args.k else None

    def progress(problem: str) -> None:
        print(f"  running {problem} ...", file=sys.stderr, flush=True)

    report = _bench.run_suite(args.suite, progress=progress, sizes=sizes)
    print(f"gpuconv bench, suite {args.suite} (ms, median of repeats after a warm-up)\n")
    print(report.table())
    print("\nRatios (time over time; below 1 means the first is faster):\n")
    print(report.ratios())
    if args.out:
        _bench.save(report, Path(args.out))
        print(f"\nreport written to {args.out}/report.md and results.json")
    return 0


def _info(args: argparse.Namespace) -> int:
    from . import _bench, _kernels, dispatch

    for key, value in _bench.machine_info().items():
        print(f"{key:>10}: {value}")
    print(f"{'algorithms':>10}: {', '.join(dispatch.algorithm_names())}")
    print(f"{'kernels':>10}: {_kernels.source_dir()} ({len(_kernels.sources())} sources)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gpuconv`` console script."""
    parser = argparse.ArgumentParser(prog="gpuconv", description="fast convolutions: tools")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bench", help="time every algorithm beside the installed peers")
    b.add_argument("--device", choices=["cpu", "cuda", "all"], default="cpu")
    b.add_argument("--suite", choices=["quick", "signal"], default="quick")
    b.add_argument("--out", help="folder for report.md and results.json")
    b.add_argument("-k", type=int, nargs="*", help="kernel sizes to run instead of the suite's")
    b.set_defaults(func=_bench)
    i = sub.add_parser("info", help="versions, algorithms, where the kernels are")
    i.set_defaults(func=_info)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
