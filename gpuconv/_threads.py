"""How many threads one gpuconv call may use on the CPU, per calling thread.

By default a call uses every core (numba's parallel kernels, scipy.fft's ``workers``, the BLAS
of im2col's GEMM).  Where the caller already runs calls in parallel -- Dask tasks, a thread
pool -- that oversubscribes the cores; :func:`limit` caps the threads of the calls made inside
it, in the calling thread only (numba's thread count is thread-local, and so is the budget kept
here).  BLAS has one process-wide thread count: while any thread is inside :func:`limit`, BLAS
runs on the smallest limit in force (through threadpoolctl, when it is installed: the ``dask``
extra brings it), and gets its own count back when the last one leaves.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

_local = threading.local()
_blas_lock = threading.Lock()
_blas_active: list[int] = []  # the limits in force, one entry per thread inside limit()
_blas_libs: list = []  # [(threadpoolctl's controller of one BLAS library, its own count)]
_blas_found: list = []  # threadpoolctl's controllers of the BLAS libraries loaded
_blas_scanned = [-1e9]  # when they were last looked for (a library may load later)
_blas_applied: list = [None]  # the cap set on BLAS now (None: its own counts)


def _blas_update() -> None:
    """Cap BLAS at the smallest limit in force, or give it back its own thread count.

    Applied on every change (a few microseconds a library), so a library loaded, or a count
    changed by someone else, while a cap is in force is capped too."""
    want = min(_blas_active) if _blas_active else None
    if want is not None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # no threadpoolctl: BLAS keeps its own thread count
            return
        now = time.monotonic()
        if now - _blas_scanned[0] > 1.0:  # finding the loaded BLAS libraries costs ~2 ms
            _blas_found[:] = ThreadpoolController().select(user_api="blas").lib_controllers
            _blas_scanned[0] = now
        if _blas_applied[0] is None:  # uncapped until now: remember every library's own count
            _blas_libs[:] = [(lc, lc.get_num_threads()) for lc in _blas_found]
        else:  # a library found since the cap began: its count now is its own
            known = {id(lc) for lc, _ in _blas_libs}
            _blas_libs.extend(
                (lc, lc.get_num_threads()) for lc in _blas_found if id(lc) not in known
            )
    for lc, own in _blas_libs:
        lc.set_num_threads(own if want is None else min(want, own))
    _blas_applied[0] = want


def budget() -> int | None:
    """The thread cap in force in this thread, or None (every core)."""
    return getattr(_local, "n", None)


@contextmanager
def limit(n: int) -> Iterator[None]:
    """Run the gpuconv calls inside with at most ``n`` threads each.

    >>> import numpy as np, gpuconv
    >>> with limit(1):
    ...     y = gpuconv.fftconvolve(np.ones(8), np.ones(3))
    """
    import numba

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"the thread limit must be a positive int, got {n!r}")
    n = min(n, numba.config.NUMBA_NUM_THREADS)
    old_budget, old_numba = budget(), numba.get_num_threads()
    _local.n = n
    numba.set_num_threads(min(n, old_numba))
    with _blas_lock:
        _blas_active.append(n)
        _blas_update()
    try:
        yield
    finally:
        _local.n = old_budget
        numba.set_num_threads(old_numba)
        with _blas_lock:
            _blas_active.remove(n)
            _blas_update()
