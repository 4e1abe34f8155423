"""How many threads one gpuconv call may use on the CPU, per calling thread.

By default a call uses every core (numba's parallel kernels, scipy.fft's ``workers``).  Where
the caller already runs calls in parallel -- Dask tasks, a thread pool -- that oversubscribes
the cores; :func:`limit` caps the threads of the calls made inside it, in the calling thread
only (numba's thread count is thread-local, and so is the budget kept here).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_local = threading.local()


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
    try:
        yield
    finally:
        _local.n = old_budget
        numba.set_num_threads(old_numba)
