"""The ``gpuconv`` command: ``gpuconv bench``, ``gpuconv tune`` and ``gpuconv info``."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def _positive(text: str) -> int:
    """argparse type: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def _writable_dir(path: Path, what: str) -> str | None:
    """Why ``path`` cannot take files (created if missing), or None: checked before a long run."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".gpuconv-write-test-"):
            pass
    except OSError as e:
        return f"{what} {path} is not a writable folder: {e.strerror or e}"
    return None


def _bench(args: argparse.Namespace) -> int:
    from . import _arrays, _bench

    if args.out:
        why = _writable_dir(Path(args.out), "--out")
        if why:
            print(f"gpuconv bench: {why}", file=sys.stderr)
            return 2
    sizes = tuple(args.k) if args.k else None
    if sizes and args.suite in ("cnn", "regret"):
        print(
            f"gpuconv bench: -k sets the kernel sizes of the 2-D and 1-D sweeps (suites quick, "
            f"signal, full); the {args.suite} suite has none (it runs fixed "
            f"{'layers' if args.suite == 'cnn' else 'held-out problems'})",
            file=sys.stderr,
        )
        return 2
    bar = _bench.ProgressBar(sys.stderr)
    try:
        report = _bench.run_suite(args.suite, args.device, progress=bar, sizes=sizes)
    except (_arrays.CupyUnavailableError, _arrays.CudaUnavailableError) as e:
        print(f"gpuconv bench --device {args.device}: {e}", file=sys.stderr)
        return 2
    print(_bench.summary(report))
    if args.out:
        try:
            files = _bench.save(report, Path(args.out))
        except OSError as e:
            print(f"gpuconv bench: writing the report to {args.out} failed: {e}", file=sys.stderr)
            return 1
        print(f"\nreport written to {args.out}: " + ", ".join(p.name for p in files))
    return 0


def _info(args: argparse.Namespace) -> int:
    from . import _arrays, _bench, _cache, _kernels, dispatch

    for key, value in _bench.machine_info().items():
        print(f"{key:>16}: {value}")
    print(f"{'cache':>16}: {_cache.cache_dir()}" + ("" if _cache.enabled() else " (off)"))
    devices = ["cpu"]
    try:
        cp = _arrays.require_cupy()
        devices.append("cuda")
    except (ImportError, RuntimeError) as e:
        print(f"{'cuda':>16}: not available: {e}")
    for dev in devices:
        print(f"{dev:>16}: {_cache.device_id(dev)}")
        print(f"{'':>16}  algorithms: {', '.join(dispatch.algorithm_names(dev))}")
        print(f"{'':>16}  cost constants: {dispatch.constants_source(dev)}")
    print(f"{'kernels':>16}: {_kernels.source_dir()} ({len(_kernels.sources())} sources)")
    if "cuda" in devices:
        from .cuda import _loader

        print(f"{'':>16}  CuPy {cp.__version__}: compiling every kernel for this device ...")
        report = _loader.compile_report()
        bad = [r for r in report if r[2]]
        print(f"{'':>16}  {len(report) - len(bad)} of {len(report)} kernels compile")
        for source, name, err in bad:
            print(f"{'':>16}  FAILED {source}:{name}: {err}")
        return 1 if bad else 0
    print(f"{'':>16}  not compiled here (no usable GPU); CI compiles them with nvcc")
    return 0


def _tune(args: argparse.Namespace) -> int:
    from . import _cache, _tune

    if not args.no_save and _cache.enabled():
        why = _writable_dir(_cache.cache_dir(), "the cache folder")
        if why:
            print(
                f"gpuconv tune: {why}; set GPUCONV_CACHE_DIR to a writable folder, or pass "
                "--no-save",
                file=sys.stderr,
            )
            return 2

    def progress(i: int, n: int, label: str) -> None:
        print(f"  [{i}/{n}] {label}", file=sys.stderr, flush=True)

    try:
        result = _tune.tune(
            args.device, repeat=args.repeat, save=not args.no_save, progress=progress
        )
    except (ImportError, RuntimeError) as e:
        print(f"gpuconv tune: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"gpuconv tune: saving the constants failed: {e}", file=sys.stderr)
        return 1
    print(result.summary())
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gpuconv`` console script."""
    parser = argparse.ArgumentParser(prog="gpuconv", description="fast convolutions: tools")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bench", help="time every algorithm beside the installed peers")
    b.add_argument("--device", choices=["cpu", "cuda", "all"], default="cpu")
    b.add_argument("--suite", choices=["quick", "signal", "cnn", "regret", "full"], default="quick")
    b.add_argument("--out", help="folder for report.md, results.json and the plots")
    b.add_argument(
        "-k",
        type=_positive,
        nargs="*",
        help="kernel sizes (2-D sweep) and filter lengths (1-D sweep) to run instead of the "
        "suite's (quick, signal, full)",
    )
    b.set_defaults(func=_bench)
    t = sub.add_parser(
        "tune", help="measure this machine and save the dispatcher's cost constants for it"
    )
    t.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    t.add_argument(
        "--repeat", type=_positive, default=5, help="timed runs per algorithm and problem"
    )
    t.add_argument("--no-save", action="store_true", help="fit and print, do not save")
    t.set_defaults(func=_tune)
    i = sub.add_parser("info", help="devices, versions, kernels, where the cache is")
    i.set_defaults(func=_info)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
