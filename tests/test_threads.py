"""gpuconv._threads.limit: a per-thread cap on the threads one gpuconv call uses."""

from __future__ import annotations

import threading

import numba
import numpy as np
import pytest
import scipy.fft

import gpuconv
from gpuconv import _threads


def test_limit_caps_fft_workers_and_numba_threads_and_restores_them(monkeypatch):
    seen = []
    for name in ("rfft", "fft", "irfft", "ifft", "rfftn", "irfftn"):
        real = getattr(scipy.fft, name)

        def spy(*a, real=real, workers=None, **k):
            seen.append(workers)
            return real(*a, workers=workers, **k)

        monkeypatch.setattr(scipy.fft, name, spy)
    before = numba.get_num_threads()
    with _threads.limit(1):
        assert _threads.budget() == 1 and numba.get_num_threads() == 1
        y = gpuconv.fftconvolve(np.ones((64, 64)), np.ones((5, 5)))
    assert _threads.budget() is None and numba.get_num_threads() == before
    np.testing.assert_allclose(y.max(), 25.0)
    assert seen and set(seen) == {1}


def test_limit_is_per_thread():
    inside = {}
    go, done = threading.Event(), threading.Event()

    def other():
        go.wait()
        inside["budget"] = _threads.budget()
        done.set()

    t = threading.Thread(target=other)
    t.start()
    with _threads.limit(1):
        go.set()
        done.wait()
    t.join()
    assert inside["budget"] is None


@pytest.mark.parametrize("n", [0, -1, 1.5, True, "2"])
def test_limit_rejects_bad_values(n):
    with pytest.raises(ValueError, match="positive int"):
        with _threads.limit(n):
            pass


def test_limit_caps_blas_while_any_thread_is_inside():
    threadpoolctl = pytest.importorskip("threadpoolctl", reason="BLAS is capped via threadpoolctl")
    np.dot(np.ones((4, 4)), np.ones((4, 4)))  # BLAS loaded

    def blas_threads():
        return {
            i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"
        }

    before = blas_threads()
    _threads._blas_scanned[0] = -1e9  # look for the BLAS libraries loaded by earlier tests
    if not before:
        pytest.skip("no BLAS library found by threadpoolctl")

    def state():
        info = threadpoolctl.threadpool_info()
        libs = [(i["filepath"], i["num_threads"]) for i in info if i["user_api"] == "blas"]
        return f"active {_threads._blas_active}, applied {_threads._blas_applied}, libs {libs}"

    with _threads.limit(1):
        assert blas_threads() == {1}, state()
        with _threads.limit(1):
            assert blas_threads() == {1}, state()
        assert blas_threads() == {1}, state()  # still inside the outer limit
    if not _threads._blas_active:  # no other thread inside a limit
        assert blas_threads() == before, state()
