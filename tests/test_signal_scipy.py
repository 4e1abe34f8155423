"""The scipy.signal drop-ins against scipy.signal itself: values, shapes, dtypes."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import scipy.signal as ss

import gpuconv
from gpuconv import dispatch

from .conftest import assert_conv_equal, random_array

MODES = ["full", "same", "valid"]
DTYPES = [np.float32, np.float64, np.complex64, np.complex128, np.int32, np.uint8, np.int8]
# (in1 shape, in2 shape): odd and even kernels, kernel larger than the input, 1-element axes
SHAPES = {
    1: [((17,), (4,)), ((16,), (5,)), ((3,), (8,)), ((1,), (1,)), ((40,), (1,))],
    2: [((9, 12), (3, 4)), ((10, 7), (5, 2)), ((3, 4), (6, 5)), ((7, 1), (2, 1)), ((5, 6), (5, 6))],
    3: [((6, 7, 5), (3, 2, 3)), ((4, 5, 3), (2, 2, 2)), ((2, 3, 2), (3, 4, 3))],
}
CASES = [(nd, s1, s2) for nd, pairs in SHAPES.items() for s1, s2 in pairs]


def _both(fn, *args, **kw):
    """scipy's and gpuconv's result of the same call (or the exception each raised)."""
    out = []
    for mod in (ss, gpuconv):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
                out.append(getattr(mod, fn)(*args, **kw))
        except Exception as e:  # compared by type below
            out.append(e)
    return out


def _check(fn, a, b, **kw):
    ref, got = _both(fn, a, b, **kw)
    if isinstance(ref, Exception) or isinstance(got, Exception):
        assert type(ref) is type(got), (ref, got)
        return
    assert_conv_equal(got, ref, a, b)


@pytest.mark.parametrize("nd,s1,s2", CASES)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("fn", ["convolve", "correlate"])
def test_convolve_correlate(fn, dtype, nd, s1, s2, rng):
    a = random_array(rng, s1, dtype)
    b = random_array(rng, s2, dtype)
    for mode, method in itertools.product(MODES, ["auto", "direct", "fft"]):
        _check(fn, a, b, mode=mode, method=method)


@pytest.mark.parametrize("method", dispatch.algorithm_names())
@pytest.mark.parametrize("fn", ["convolve", "correlate"])
def test_every_algorithm_as_method(fn, method, rng):
    """Each registered algorithm, named as ``method``, gives scipy's answer where it applies."""
    for nd in (1, 2, 3):
        for s1, s2 in SHAPES[nd]:
            for dtype in (np.float64, np.complex64):
                a = random_array(rng, s1, dtype)
                b = random_array(rng, s2, dtype)
                if method == "separable":
                    b = _rank_one(rng, s2, dtype)
                for mode in MODES:
                    try:
                        ref = getattr(ss, fn)(a, b, mode=mode)
                    except ValueError:
                        continue
                    try:
                        got = getattr(gpuconv, fn)(a, b, mode=mode, method=method)
                    except ValueError as e:
                        assert "cannot solve" in str(e)  # the algorithm said why it cannot
                        continue
                    assert_conv_equal(got, ref, a, b)


def _rank_one(rng, shape, dtype):
    out = np.ones(shape, dtype=np.complex128)
    for ax, n in enumerate(shape):
        v = rng.standard_normal(n) + 1.5
        out = out * v.reshape((1,) * ax + (n,) + (1,) * (len(shape) - ax - 1))
    return (out if np.dtype(dtype).kind == "c" else out.real).astype(dtype)


@pytest.mark.parametrize("dtype", [np.bool_, np.int64, np.uint64, np.int16, np.uint16])
@pytest.mark.parametrize("nd", [1, 2])
def test_integer_and_bool_exact(dtype, nd, rng):
    shape1 = (23,) * nd if nd == 1 else (9, 11)
    shape2 = (4,) * nd if nd == 1 else (3, 4)
    a = random_array(rng, shape1, dtype)
    b = random_array(rng, shape2, dtype)
    for fn, mode in itertools.product(["convolve", "correlate"], MODES):
        if dtype == np.bool_:
            # scipy casts bool results of its FFT path to bool without rounding, so rounding
            # noise reads True; gpuconv rounds first and gives the exact (1-D direct) answer
            exact = getattr(ss, fn)(a, b, mode=mode, method="direct") if nd == 1 else None
            if exact is None:
                exact = getattr(ss, fn)(a.astype(np.int64), b.astype(np.int64), mode=mode) != 0
            for method in ("auto", "direct", "fft"):
                np.testing.assert_array_equal(getattr(gpuconv, fn)(a, b, mode, method), exact)
            continue
        for method in ("direct", "fft"):
            _check(fn, a, b, mode=mode, method=method)


def test_integer_overflow_wraps_like_scipy():
    """int8 sums wrap modulo 256 as scipy's; results too large for float64 stay exact."""
    a = np.array([100, 120, -128, 127] * 4, np.int8).reshape(4, 4)
    b = np.array([[100, 100], [-100, 90]], np.int8)
    for fn in ("convolve", "correlate"):
        _check(fn, a, b, mode="full")
    big = np.array([2**40, 3, 2**41 + 1, 5], np.int64)
    ker = np.array([2**20 + 1, 7, 3], np.int64)
    for method in ("auto", "direct"):
        np.testing.assert_array_equal(
            gpuconv.convolve(big, ker, method=method), ss.convolve(big, ker, method="direct")
        )
    # sums beyond 2**53: only an algorithm that sums exactly may be chosen
    assert gpuconv.dispatch.get_algorithm(gpuconv.choose_conv_method(big, ker)).exact


@pytest.mark.parametrize("order", ["F", "noncontig", "negstride"])
def test_memory_layouts(order, rng):
    base = random_array(rng, (14, 18), np.float64)
    ker = random_array(rng, (4, 3), np.float64)
    if order == "F":
        a, b = np.asfortranarray(base), np.asfortranarray(ker)
    elif order == "noncontig":
        a, b = base[::2, 1::3], ker[:, ::2]
    else:
        a, b = base[::-1], ker[::-1, ::-1]
    for fn in ("convolve", "correlate", "fftconvolve", "oaconvolve"):
        for mode in MODES:
            _check(fn, a, b, mode=mode)
    for fn in ("convolve2d", "correlate2d"):
        for mode in MODES:
            _check(fn, a, b, mode=mode, boundary="symm")


@pytest.mark.parametrize("s1,s2", SHAPES[2] + [((4, 4), (9, 9)), ((1, 6), (3, 2))])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128, np.int16, np.uint8])
@pytest.mark.parametrize("fn", ["convolve2d", "correlate2d"])
def test_convolve2d_boundaries(fn, dtype, s1, s2, rng):
    a = random_array(rng, s1, dtype)
    b = random_array(rng, s2, dtype)
    for mode, boundary in itertools.product(
        MODES, ["fill", "pad", "wrap", "circular", "symm", "symmetric"]
    ):
        for fill in (0, 2, -1.7):
            _check(fn, a, b, mode=mode, boundary=boundary, fillvalue=fill)
    if np.dtype(dtype).kind == "c":
        _check(fn, a, b, mode="same", fillvalue=1 - 2j)


AXES_CASES = [
    ((6, 5), (3, 5), 0),
    ((6, 5), (3, 1), [0]),
    ((4, 6, 5), (1, 3, 2), [1, 2]),
    ((4, 6, 5), (4, 3, 2), [1, 2]),
    ((1, 6, 5), (3, 3, 2), (-1, -2)),
    ((3, 40), (3, 7), -1),
    ((5, 7, 6), (2, 3, 4), None),
    ((32, 33), (5, 6), None),
    ((2, 300), (1, 20), 1),
]


@pytest.mark.parametrize("s1,s2,axes", AXES_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.int32])
@pytest.mark.parametrize("fn", ["fftconvolve", "oaconvolve"])
def test_fftconvolve_oaconvolve_axes(fn, dtype, s1, s2, axes, rng):
    a = random_array(rng, s1, dtype)
    b = random_array(rng, s2, dtype)
    for mode in MODES:
        _check(fn, a, b, mode=mode, axes=axes)
        _check(fn, b, a, mode=mode, axes=axes)


def test_long_signal_overlap_add(rng):
    a = random_array(rng, (5000,), np.float64)
    b = random_array(rng, (101,), np.float64)
    for mode in MODES:
        _check("oaconvolve", a, b, mode=mode)
        _check("convolve", a, b, mode=mode)
        _check("correlate", b, a, mode=mode)


def test_scalars_and_empty():
    for fn in ("convolve", "correlate", "fftconvolve", "oaconvolve"):
        ref, got = _both(fn, np.array(2.0 + 1j), np.array(3.0 - 2j))
        assert got == ref and np.asarray(got).dtype == np.asarray(ref).dtype
    for fn in ("fftconvolve", "oaconvolve"):
        ref, got = _both(fn, np.ones((0, 3)), np.ones((2, 3)))
        assert got.shape == ref.shape and got.dtype == ref.dtype
    for fn in ("convolve", "correlate"):
        ref, got = _both(fn, np.array([]), np.array([1.0]))
        assert type(ref) is type(got) is ValueError


def test_nan_warns_on_fft_path():
    a = np.ones(64)
    a[0] = np.nan
    with pytest.warns(RuntimeWarning, match="NAN or inf"):
        gpuconv.convolve(a, np.ones(60), method="fft")


@pytest.mark.parametrize("fn", ["convolve", "correlate"])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("dtype", [np.float64, np.complex64])
def test_non_finite_in_both_inputs_direct_is_scipys(fn, mode, dtype, rng):
    """1-D, NaN/inf in both: scipy's direct path is numpy's, summing only products that exist;
    and no numpy warning on the way (scipy raises none)."""
    for n, k in ((9, 4), (4, 9), (12, 12)):
        a = random_array(rng, (n,), dtype)
        b = random_array(rng, (k,), dtype)
        a[rng.integers(n)], b[rng.integers(k)] = np.inf, rng.choice([np.nan, -np.inf])
        ref = getattr(ss, fn)(a, b, mode, method="direct")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = getattr(gpuconv, fn)(a, b, mode, method="direct")
            for name in ("im2col", "direct"):  # no warning from any direct-family algorithm
                getattr(gpuconv, fn)(a, b, mode, method=name)
        assert got.dtype == ref.dtype and got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5, equal_nan=True)


def test_choose_conv_method(rng):
    a = random_array(rng, (256, 256), np.float32)
    small, large = random_array(rng, (3, 3), np.float32), random_array(rng, (41, 41), np.float32)
    assert gpuconv.choose_conv_method(a, small) in ("direct", "separable")
    assert gpuconv.choose_conv_method(a, large, "same") in ("fft", "overlap_add")
    assert gpuconv.choose_conv_method(a > 0, small > 0) == "direct"
    best, times = gpuconv.choose_conv_method(a[:64, :64], small, "same", measure=True)
    assert {"direct", "fft"} <= set(times) and best in times
    assert times[best] == min(times.values())
    for name in times:  # every name it returns is a method convolve accepts
        assert_conv_equal(
            gpuconv.convolve(a[:64, :64], small, "same", method=name),
            ss.convolve(a[:64, :64], small, "same"),
            a[:64, :64],
            small,
        )


def test_exotic_dtypes_follow_scipy(rng):
    a = random_array(rng, (7, 6), np.float64).astype(np.float16)
    b = random_array(rng, (2, 3), np.float64).astype(np.float16)
    for fn in ("convolve", "fftconvolve"):
        ref, got = _both(fn, a, b)
        assert type(ref) is type(got)
        if not isinstance(ref, Exception):
            assert got.dtype == ref.dtype
            np.testing.assert_allclose(got, ref, rtol=1e-2, atol=1e-1)
    la = a.astype(np.longdouble)
    np.testing.assert_array_equal(gpuconv.convolve2d(la, b), ss.convolve2d(la, b))
