"""Timing one callable the way every gpuconv measurement does (bench, tune, method='benchmark').

Median of ``repeat`` runs after ``warmup`` runs that are not counted (compilation, FFT plans, the
allocator's first large mappings).  On the GPU each run is bracketed by CUDA events on the current
stream, so the time is the device's, not the launch's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from statistics import median

#: how long OpenBLAS's worker threads keep spinning after a BLAS call (2**28 cycles by default):
#: a numba parallel region started meanwhile on a machine with every core taken waits a scheduler
#: quantum (~4 ms) per call for a core.  Timings start only once that has passed, so that each
#: algorithm is measured on its own, not on what ran before it.
BLAS_SPIN_S = 0.15
_last_blas = -1e9


#: the least time the untimed warm-up runs last on the CPU: an idle machine's cores (a virtual
#: machine's especially) take tens of milliseconds of load to come back to full speed -- an FFT
#: of 1024 x 1024 ran at half speed for its first ~30 calls after a pause
WARMUP_S = 0.1


def note_blas() -> None:
    """Record that a multi-threaded BLAS call just returned (im2col's GEMMs call this)."""
    global _last_blas
    _last_blas = time.perf_counter()


def settle() -> None:
    """Wait until the BLAS worker threads of a recent call have stopped spinning."""
    wait = _last_blas + BLAS_SPIN_S - time.perf_counter()
    if wait > 0:
        time.sleep(wait)


def _reduce(runs: list[float], stat: str) -> float:
    if stat == "median":
        return float(median(runs))
    if stat == "min":
        return float(min(runs))
    raise ValueError(f"unknown statistic {stat!r}; use 'median' or 'min'")


def time_cpu(
    fn: Callable[[], object], repeat: int = 5, warmup: int = 2, stat: str = "median"
) -> float:
    """Median (or ``stat='min'``: fastest) wall time of ``fn()`` in seconds, started once BLAS
    threads are idle (see :data:`BLAS_SPIN_S`), after ``warmup`` untimed runs lasting at least
    :data:`WARMUP_S`.

    >>> time_cpu(lambda: sum(range(1000)), repeat=3) < 1.0
    True
    """
    return _reduce(_block("cpu", fn, max(1, repeat), warmup), stat)


def time_cuda(
    fn: Callable[[], object], repeat: int = 10, warmup: int = 2, stat: str = "median"
) -> float:
    """Median device time of ``fn()`` in seconds, measured with CUDA events on CuPy's current
    stream (``fn`` must enqueue its work there, as every gpuconv CUDA algorithm does)."""
    return _reduce(_block("cuda", fn, max(1, repeat), warmup), stat)


def time_interleaved(
    device: str,
    fns: list[Callable[[], object]],
    repeat: int = 6,
    rounds: int = 3,
    stat: str = "median",
) -> list[float]:
    """Median (or ``stat='min'``) time in seconds of each of ``fns`` over ``repeat`` runs,
    taken in ``rounds`` turns: each turn times every function in a block of its own, started
    exactly as :func:`time_cpu` starts (BLAS threads idle, warm-up), so the functions meet the
    same machine load over the whole measurement.

    Two close algorithms timed one after the other can each meet different load (another
    process, a core clocking down); timed in turns, their ratio is trustworthy where their
    separate medians are not.  Turns of whole blocks, not of single runs: a run straight after
    another algorithm's BLAS call, or after the wait for its threads, is slowed by it.

    >>> short, long = time_interleaved("cpu", [lambda: sum(range(10)), lambda: sum(range(99))])
    """
    if device not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}; use 'cpu' or 'cuda'")
    repeat = max(1, repeat)
    rounds = max(1, min(rounds, repeat))
    per = [repeat // rounds + (r < repeat % rounds) for r in range(rounds)]
    runs: list[list[float]] = [[] for _ in fns]
    for n in per:
        for fn, out in zip(fns, runs):
            out += _block(device, fn, n)
    return [_reduce(r, stat) for r in runs]


def _block(device: str, fn: Callable[[], object], n: int, warmup: int = 1) -> list[float]:
    """``n`` timed runs of ``fn`` after ``warmup`` untimed ones (on the CPU: once BLAS threads
    are idle, and lasting at least :data:`WARMUP_S`)."""
    runs = []
    if device == "cuda":
        import cupy

        for _ in range(warmup):
            fn()
        stream = cupy.cuda.get_current_stream()
        stream.synchronize()
        for _ in range(n):
            start, stop = cupy.cuda.Event(), cupy.cuda.Event()
            start.record(stream)
            fn()
            stop.record(stream)
            stop.synchronize()
            runs.append(cupy.cuda.get_elapsed_time(start, stop) * 1e-3)
        return runs
    settle()
    t_end = time.perf_counter() + WARMUP_S
    done = 0
    while done < warmup or time.perf_counter() < t_end:
        fn()
        done += 1
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return runs


def time_on(
    device: str, fn: Callable[[], object], repeat: int = 5, warmup: int = 2, stat: str = "median"
) -> float:
    """:func:`time_cpu` or :func:`time_cuda` by ``device`` ('cpu' or 'cuda')."""
    if device == "cuda":
        return time_cuda(fn, repeat, warmup, stat)
    if device == "cpu":
        return time_cpu(fn, repeat, warmup, stat)
    raise ValueError(f"unknown device {device!r}; use 'cpu' or 'cuda'")
