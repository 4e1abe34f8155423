"""Shared fixtures: random inputs, tolerances derived from rounding error, the GPU skip."""

from __future__ import annotations

import math
import os
import sys
import tempfile

import numpy as np
import pytest

# the tests never read or write the user's cache (tuned constants, benchmarked choices): results
# must not depend on what `gpuconv tune` measured on this machine
os.environ["GPUCONV_CACHE_DIR"] = tempfile.mkdtemp(prefix="gpuconv-test-cache-")
os.environ.pop("GPUCONV_CACHE", None)

from gpuconv import _timing  # noqa: E402

# tests time things only to check the plumbing, never the figures: no minimum warm-up time
_timing.WARMUP_S = 0.0

#: unit roundoff of each result dtype; integers and bools are compared exactly
EPS = {
    np.dtype(np.float32): float(np.finfo(np.float32).eps),
    np.dtype(np.float64): float(np.finfo(np.float64).eps),
    np.dtype(np.complex64): float(np.finfo(np.float32).eps),
    np.dtype(np.complex128): float(np.finfo(np.float64).eps),
}


def rounding_atol(a: np.ndarray, b: np.ndarray, dtype) -> float:
    """An absolute tolerance from the rounding error a float sum of products can make.

    Both a direct sum of n products and an FFT of length L make errors bounded by a modest
    multiple of eps * max(|a| conv |b|) (Higham: n*eps for the sum, O(log L)*eps for the FFT);
    max(|a| conv |b|) <= min(sum|a| max|b|, max|a| sum|b|), which we use to stay cheap.
    """
    dtype = np.dtype(dtype)
    if dtype not in EPS or a.size == 0 or b.size == 0:
        return 0.0
    fa = np.abs(a).astype(np.float64)
    fb = np.abs(b).astype(np.float64)
    mag = min(fa.sum() * fb.max(), fa.max() * fb.sum())
    n = max(a.size, b.size, 2)
    return 8.0 * EPS[dtype] * math.log2(n + 1) * mag + 1e-300


def assert_conv_equal(actual, expected, a, b):
    """Same shape and dtype; exact for integer/bool results, within rounding error otherwise."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    if expected.dtype.kind in "biu":
        np.testing.assert_array_equal(actual, expected)
    else:
        atol = rounding_atol(np.asarray(a), np.asarray(b), expected.dtype)
        np.testing.assert_allclose(actual, expected, rtol=0, atol=atol)


def random_array(rng, shape, dtype, scale=4.0):
    """Random values of ``dtype`` (never all zeros): normals, or small integers, or bools."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        lo = 0 if dtype.kind == "u" else -int(scale) * 3
        return rng.integers(lo, int(scale) * 3 + 1, size=shape).astype(dtype)
    x = rng.standard_normal(shape) * scale
    if dtype.kind == "c":
        x = x + 1j * rng.standard_normal(shape) * scale
    return x.astype(dtype)


@pytest.fixture
def rng():
    return np.random.default_rng(20261123)


def _cuda_available() -> str | None:
    try:
        import cupy  # noqa: F401
    except ImportError:
        return "CuPy is not installed"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "no CUDA device"
    except Exception as e:  # the driver's own error says what is missing
        return f"no usable CUDA device ({e})"
    return None


@pytest.fixture
def device():
    """The CUDA device for GPU tests; skips with the reason when there is none."""
    reason = _cuda_available()
    if reason:
        pytest.skip(reason)
    import cupy

    return cupy.cuda.Device()


@pytest.fixture(scope="session")
def host_kernels():
    """Every kernel variant compiled for the CPU (tests/cuda_host), in parallel, once per run;
    skips with the reason when there is no host C++ compiler."""
    from tests import cuda_host

    if cuda_host.compiler() is None:
        pytest.skip("no host C++ compiler (g++) to run the CUDA kernel sources on the CPU")
    cuda_host.prebuild()
    return cuda_host


@pytest.fixture(params=["cuda", "host"])
def gpu(request, monkeypatch):
    """The CuPy module a GPU test runs on: the real one on a CUDA device (``cuda``, skipped
    without one), or a fake whose kernel launches run the real kernel sources compiled for the
    CPU (``host``: tests/cuda_host), so the same test checks the device code on any machine."""
    from gpuconv.cuda import _loader

    if request.param == "cuda":
        reason = _cuda_available()
        if reason:
            pytest.skip(reason)
        import cupy

        yield cupy
        return
    request.getfixturevalue("host_kernels")
    from tests.fake_cupy import make_routing_cupy

    fake = make_routing_cupy()
    monkeypatch.setitem(sys.modules, "cupy", fake)
    _loader.clear_cache()
    yield fake
    _loader.clear_cache()


@pytest.fixture
def fake_cupy(monkeypatch):
    """The fake CuPy (tests/fake_cupy.py) as ``cupy``: NumPy arrays as device arrays, kernel
    launches run the real kernel sources compiled for the CPU; ``fake.launches`` lists them."""
    from gpuconv.cuda import _loader
    from tests.fake_cupy import make_fake_cupy

    fake = make_fake_cupy()
    monkeypatch.setitem(sys.modules, "cupy", fake)
    _loader.clear_cache()
    yield fake
    _loader.clear_cache()
