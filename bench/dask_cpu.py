"""Out-of-core 3-D convolution on a dask.distributed LocalCluster: gpuconv.dask beside dask-image.

A float32 volume four times larger than the memory limit of each worker (default 512x1024x1024 =
2 GiB against 512 MiB; 2 worker processes with 1 thread each) is created lazily from a seeded
generator, convolved with a 9x9x9 kernel in 'same' mode with zero boundary, and stored by the
workers themselves into a float32 ``np.memmap`` on disk (``--output sum`` only sums it): nothing
is gathered to the client.  The same is run with ``dask_image.ndfilters.convolve(mode='constant',
cval=0)`` (scipy.ndimage on each haloed chunk) when dask-image is installed; a small case first
checks that both compute what in-memory ``gpuconv.convolve`` computes, and after each stored run
three regions of the result (a corner, one across chunk boundaries, the far corner) are checked
against the in-memory call on the matching input region.

Reported per run: wall time, voxels per second, each worker's idle and peak RSS (sampled every
20 ms on a thread in the worker) against the limit, bytes spilled to disk, pauses (the worker
logs), restarted workers (process ids before and after), and a prediction: the per-chunk time
(generate + convolve the haloed chunk + write) measured in the client process, times the number
of chunks, divided by the number of workers.

    PYTHONPATH=. python bench/dask_cpu.py [--shape 512,1024,1024] [--chunk 128]
        [--memory-limit 512MiB] [--kernel 9] [--workers 2] [--output store|sum]
        [--skip-dask-image] [--dir /tmp]

About 3 minutes on 2 cores (dask-image is most of it).  See bench/NOTES-dask.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import dask  # noqa: E402
import dask.array as da  # noqa: E402
import distributed  # noqa: E402
import psutil  # noqa: E402
from dask.utils import format_bytes, parse_bytes  # noqa: E402

import gpuconv  # noqa: E402
import gpuconv.dask as gd  # noqa: E402

try:
    from dask_image import ndfilters
except ImportError:  # pragma: no cover - optional peer
    ndfilters = None


class MemmapTarget:
    """A ``da.store`` target each worker opens itself: the block is written and the mapping
    closed at once, so nothing stays resident (pickles as path, shape and dtype)."""

    def __init__(self, path: str, shape, dtype):
        self.path, self.shape, self.dtype = path, tuple(shape), np.dtype(dtype)

    def __setitem__(self, key, value):
        mm = np.memmap(self.path, dtype=self.dtype, mode="r+", shape=self.shape)
        mm[key] = value
        del mm  # unmapped: the dirty pages stay in the page cache, not in the worker


def _start_sampler(dask_worker, interval=0.02):
    """Sample this worker's RSS every ``interval`` s on a thread until :func:`_stop_sampler`
    (the worker's own monitor samples every 0.5 s and misses short peaks)."""
    import threading

    proc = psutil.Process()
    rss = proc.memory_info().rss
    state = {"peak": rss, "idle": rss, "stop": False}

    def loop():
        while not state["stop"]:
            state["peak"] = max(state["peak"], proc.memory_info().rss)
            time.sleep(interval)

    dask_worker._bench_rss = state
    threading.Thread(target=loop, daemon=True).start()
    return rss


def _stop_sampler(dask_worker):
    """pid, idle and peak RSS, bytes spilled to disk so far, the memory limit."""
    state = dask_worker._bench_rss
    state["stop"] = True
    spilled = getattr(getattr(dask_worker, "data", None), "spilled_total", None)
    return {
        "pid": os.getpid(),
        "idle": state["idle"],
        "peak": state["peak"],
        "spilled_disk": int(getattr(spilled, "disk", 0) or 0),
        "limit": dask_worker.memory_manager.memory_limit,
    }


def _pauses(client) -> int:
    """How many times the workers have paused so far (from their logs)."""
    logs = client.get_worker_logs()
    return sum("pausing" in msg.lower() for lines in logs.values() for _, msg in lines)


def _warm_up():
    """Import and JIT-compile in the worker before timing (numba caches to disk)."""
    import gpuconv.dask  # noqa: F401

    x = np.random.default_rng(0).random((24, 24, 24), dtype=np.float32)
    gpuconv.convolve(x, np.ones((9, 9, 9), np.float32), mode="valid")
    return os.getpid()


def _region_check(x, y_file, k, regions, shape):
    """Max |stored - in-memory gpuconv| over the regions, relative to sum|k|."""
    r = k.shape[0] // 2
    worst = 0.0
    for z, yy, xx, n in regions:
        corner = (z, yy, xx)
        lo = [max(0, c - r) for c in corner]
        hi = [min(s, c + n + r) for c, s in zip(corner, shape)]
        sub = x[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]].compute()
        sub = np.pad(sub, [(r - (c - a), c + n + r - b) for c, a, b in zip(corner, lo, hi)])
        want = gpuconv.convolve(sub, k, mode="valid")
        got = np.asarray(y_file[z : z + n, yy : yy + n, xx : xx + n])
        worst = max(worst, float(np.abs(got - want).max()))
    return worst / float(np.abs(k).sum())


def _predict(k, chunk, kind):
    """(seconds per chunk, seconds of its convolution) in this process: generate the chunk,
    convolve it with its halo, write it into a memmap."""
    rng = np.random.default_rng(1)
    r = k.shape[0] // 2
    t0 = time.perf_counter()
    block = rng.random((chunk + 2 * r,) * 3, dtype=np.float32)
    t_gen = (time.perf_counter() - t0) * (chunk / (chunk + 2 * r)) ** 3
    if kind == "gpuconv":
        gpuconv.convolve(block, k, mode="valid")  # warm
        t0 = time.perf_counter()
        out = gpuconv.convolve(block, k, mode="valid")
    else:
        import scipy.ndimage as ndi

        t0 = time.perf_counter()
        out = ndi.convolve(block, k, mode="constant")[r:-r, r:-r, r:-r]
    t_conv = time.perf_counter() - t0
    path = os.path.join(tempfile.gettempdir(), "gpuconv-dask-predict.f32")
    mm = np.memmap(path, dtype=np.float32, mode="w+", shape=out.shape)
    t0 = time.perf_counter()
    mm[:] = out
    t_store = time.perf_counter() - t0
    del mm
    os.remove(path)
    return t_gen + t_conv + t_store, t_conv


def _compute_threads(y):
    with dask.config.set(scheduler="threads"):
        return y.compute()


def _table(rows) -> str:
    cols = ["run", "wall s", "Mvoxel/s", "predicted s", "idle RSS", "peak RSS", "limit",
            "spilled", "paused", "restarts", "max rel. err"]  # fmt: skip
    table = [
        [
            r["name"],
            f"{r['wall']:.1f}",
            f"{r['vps'] / 1e6:.2f}",
            f"{r['predicted']:.1f}",
            format_bytes(r["idle"]),
            format_bytes(r["peak"]),
            format_bytes(r["limit"]),
            format_bytes(r["spilled"]),
            str(r["paused"]),
            str(r["restarted"]),
            f"{r['err']:.1e}",
        ]
        for r in rows
    ]
    widths = [max(len(c), *(len(t[i]) for t in table)) for i, c in enumerate(cols)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(cols, widths)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += ["| " + " | ".join(v.ljust(w) for v, w in zip(t, widths)) + " |" for t in table]
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shape", default="512,1024,1024")
    p.add_argument("--chunk", type=int, default=128)
    p.add_argument("--memory-limit", default="512MiB")
    p.add_argument("--kernel", type=int, default=9)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--output", choices=["store", "sum"], default="store",
                   help="store the result into a memmap on disk, or only sum it")  # fmt: skip
    p.add_argument("--skip-dask-image", action="store_true")
    p.add_argument("--dir", default=tempfile.gettempdir())
    args = p.parse_args(argv)

    shape = tuple(int(s) for s in args.shape.split(","))
    nbytes = int(np.prod(shape)) * 4
    limit = parse_bytes(args.memory_limit)
    vm = psutil.virtual_memory()
    disk = psutil.disk_usage(args.dir).free
    print(
        f"volume {shape} float32 = {format_bytes(nbytes)} = {nbytes / limit:.1f}x the per-worker "
        f"limit {format_bytes(limit)}; {args.workers} workers x 1 thread; chunks {args.chunk}^3; "
        f"kernel {args.kernel}^3 'same' zero boundary; output: {args.output}"
    )
    print(f"host: {os.cpu_count()} cores, {format_bytes(vm.available)} memory available, "
          f"{format_bytes(disk)} free in {args.dir}, load average "
          f"{os.getloadavg()[0]:.2f}")  # fmt: skip
    if args.output == "store" and disk < 1.2 * nbytes:
        sys.exit(f"not enough disk in {args.dir} for the {format_bytes(nbytes)} result")

    k = np.random.default_rng(2).random((args.kernel,) * 3, dtype=np.float32)
    k /= k.sum()
    nchunks = int(np.prod([-(-s // args.chunk) for s in shape]))
    x = da.random.default_rng(20261123).random(shape, dtype=np.float32, chunks=args.chunk)

    runs = [("gpuconv.dask.convolve", "gpuconv", lambda: gd.convolve(x, k, mode="same"))]
    if ndfilters is not None and not args.skip_dask_image:
        runs.append(
            (
                "dask_image.ndfilters.convolve",
                "ndimage",
                lambda: ndfilters.convolve(x, k, mode="constant", cval=0.0),
            )
        )
    elif ndfilters is None:
        print("dask-image is not installed: gpuconv only")

    # both compute the same thing (odd kernel: ndimage's centre is scipy's 'same')
    small = np.random.default_rng(3).random((40, 36, 30), dtype=np.float32)
    want = gpuconv.convolve(small, k, mode="same")
    xs = da.from_array(small, chunks=16)
    diffs = {"gpuconv.dask": np.abs(_compute_threads(gd.convolve(xs, k, "same")) - want).max()}
    if ndfilters is not None:
        got = _compute_threads(ndfilters.convolve(xs, k, mode="constant", cval=0.0))
        diffs["dask-image"] = np.abs(got - want).max()
    print("small case, max |difference| from in-memory gpuconv.convolve:",
          ", ".join(f"{n} {v:.1e}" for n, v in diffs.items()))  # fmt: skip

    regions = [
        (0, 0, 0, 20),
        (args.chunk - 10, args.chunk - 10, 2 * args.chunk - 10, 20),
        (shape[0] - 20, shape[1] - 20, shape[2] - 20, 20),
    ]
    rows = []
    with distributed.LocalCluster(
        n_workers=args.workers,
        threads_per_worker=1,
        processes=True,
        memory_limit=args.memory_limit,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    ) as cluster, distributed.Client(cluster) as client:  # fmt: skip
        client.run(_warm_up)
        for name, kind, build in runs:
            pids = set(client.run(os.getpid).values())
            paused0 = _pauses(client)
            y = build()
            ntasks = len(y.__dask_graph__())
            path = os.path.join(args.dir, f"gpuconv-dask-bench-{kind}.f32")
            if args.output == "store":
                np.memmap(path, dtype=np.float32, mode="w+", shape=shape).flush()
            client.run(_start_sampler)
            t0 = time.time()
            if args.output == "store":
                da.store(y, MemmapTarget(path, shape, np.float32), lock=False, scheduler=client)
            else:
                total = float(y.sum(dtype=np.float64).compute(scheduler=client))
            wall = time.time() - t0
            after = client.run(_stop_sampler)
            row = dict(
                name=name,
                wall=wall,
                vps=np.prod(shape) / wall,
                idle=max(s["idle"] for s in after.values()),
                peak=max(s["peak"] for s in after.values()),
                limit=limit,
                spilled=sum(s["spilled_disk"] for s in after.values()),
                paused=_pauses(client) - paused0,
                restarted=len(pids ^ set(s["pid"] for s in after.values())),
                err=float("nan"),
            )
            if args.output == "store":
                y_file = np.memmap(path, dtype=np.float32, mode="r", shape=shape)
                row["err"] = _region_check(x, y_file, k, regions, shape)
                del y_file
                os.remove(path)
            else:
                print(f"{name}: sum of the result {total:.7e}")
            per_chunk, row["t_conv"] = _predict(k, args.chunk, kind)
            row["predicted"] = per_chunk * nchunks / args.workers
            rows.append(row)
            print(f"{name}: {wall:.1f} s, {ntasks} tasks", flush=True)

    print()
    print(_table(rows))
    print("max rel. err: max |stored - in-memory gpuconv.convolve| / sum|k| over three regions")
    for r in rows:
        print(f"{r['name']}: one {args.chunk}^3 chunk (+halo) convolved in {r['t_conv']:.3f} s "
              f"in the client process")  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
