"""Regressions found by fuzzing the scipy.signal drop-ins against scipy.signal 1.17.

Each ``test_fixed_*`` pins one discrepancy that fuzzing found and that is fixed (the comments
say what gpuconv did before); the ``test_ok_*`` tests pin tricky cases that agreed from the start
and that tests/test_signal_scipy.py does not name.  Every test compares gpuconv with scipy.signal
itself.  Not pinned, by design: where a NaN/inf spreads inside an FFT path (oaconvolve's blocks
differ from scipy's), documented in the README.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
import scipy.signal as ss

import gpuconv

from .conftest import assert_conv_equal


def _outcome(mod, fn, *args, **kw):
    """The result of ``mod.fn(*args, **kw)``, or the exception it raised (warnings silenced)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return getattr(mod, fn)(*args, **kw)
    except Exception as e:  # compared by type
        return e


def _same_as_scipy(fn, *args, **kw):
    ref = _outcome(ss, fn, *args, **kw)
    got = _outcome(gpuconv, fn, *args, **kw)
    if isinstance(ref, Exception) or isinstance(got, Exception):
        assert type(got) is type(ref), f"scipy: {ref!r}  gpuconv: {got!r}"
        return ref, got
    if isinstance(ref, str):  # choose_conv_method: scipy answers 'direct' or 'fft'
        assert got in ("direct", "fft", *gpuconv.algorithm_names()), got
        return ref, got
    a, b = (np.asarray(x) for x in args[:2])
    assert_conv_equal(got, ref, a, b)
    return ref, got


# ---------------------------------------------------------------------------------------------
# 1. scipy's "exact integer" check (_exact_needed) is run where scipy never runs it: for every
#    method and in convolve2d, and with bool operands.  int(max|x|) of a float operand holding
#    NaN / inf then raises, where scipy returns the (NaN / inf) result.


@pytest.mark.parametrize("method", ["direct", "fft"])
def test_fixed_nan_float_with_int_explicit_method(method):
    # scipy: array([ 1., nan, nan, 8., 9.]); gpuconv: ValueError cannot convert float NaN to integer
    _same_as_scipy("convolve", np.array([1.0, np.nan, 2.0, 3.0]), np.array([1, 2]), method=method)


def test_fixed_inf_float_with_int_direct():
    # scipy: array([1., inf, inf, inf]); gpuconv: OverflowError
    _same_as_scipy("correlate", np.array([1.0, np.inf]), np.array([1, 2, 3]), method="direct")


def test_fixed_nan_float_with_bool_auto():
    # scipy never applies its integer check to bools; gpuconv raises ValueError
    _same_as_scipy("convolve", np.array([True, False, True]), np.array([1.0, np.nan, 2.0]))


@pytest.mark.parametrize("fn", ["convolve2d", "correlate2d"])
def test_fixed_nan_float_with_int_2d(fn):
    # scipy: [[1., nan, nan]]; gpuconv: ValueError
    _same_as_scipy(fn, np.array([[1.0, np.nan]]), np.array([[1, 2]]))


# ---------------------------------------------------------------------------------------------
# 2. correlate(method='fft') does not warn about NaN/inf the way scipy does (scipy's correlate
#    goes through convolve(..., 'fft'), which warns).


def test_fixed_correlate_fft_nan_warning():
    a = np.ones(64)
    a[0] = np.nan
    with pytest.warns(RuntimeWarning, match="NAN or inf"):
        ss.correlate(a, np.ones(60), method="fft")
    with pytest.warns(RuntimeWarning, match="NAN or inf"):
        gpuconv.correlate(a, np.ones(60), method="fft")


# ---------------------------------------------------------------------------------------------
# 3. choose_conv_method raises where scipy answers


@pytest.mark.parametrize(
    "dtype", [np.float16, np.longdouble, object], ids=["float16", "longdouble", "object"]
)
def test_fixed_choose_conv_method_non_native_dtypes(dtype):
    # scipy: 'direct'; gpuconv: TypeError "gpuconv plans no computation for dtype ..."
    a = np.arange(1.0, 7.0).astype(dtype)
    b = np.array([1.0, 2.0]).astype(dtype)
    assert ss.choose_conv_method(a, b) == "direct"
    method = gpuconv.choose_conv_method(a, b)
    np.testing.assert_array_equal(
        np.asarray(gpuconv.convolve(a, b, method=method), dtype=float),
        np.asarray(ss.convolve(a, b), dtype=float),
    )


def test_fixed_choose_conv_method_measure_scalars():
    # scipy: ('direct', {'fft': ..., 'direct': ...}); gpuconv: ValueError "plan needs arrays ..."
    a, b = np.array(2.0), np.array(3.0)
    ref = ss.choose_conv_method(a, b, measure=True)
    got = gpuconv.choose_conv_method(a, b, measure=True)
    assert isinstance(ref, tuple) and isinstance(got, tuple)
    assert got[0] in got[1]
    assert gpuconv.convolve(a, b, method=got[0]) == ss.convolve(a, b)


def test_fixed_choose_conv_method_measure_float16():
    # scipy: a (name, times) tuple; gpuconv: TypeError
    a = np.ones(6, np.float16)
    b = np.ones(3, np.float16)
    assert isinstance(ss.choose_conv_method(a, b, measure=True), tuple)
    best, times = gpuconv.choose_conv_method(a, b, measure=True)
    assert best in times


def test_fixed_choose_conv_method_measure_empty_exception_type():
    # scipy: IndexError; gpuconv: AttributeError ('tuple' object has no attribute 'candidates')
    _same_as_scipy("choose_conv_method", np.ones((0, 3)), np.ones((2, 2)), measure=True)


def test_fixed_choose_conv_method_mismatched_ndim():
    # scipy does not check dimensionality here and answers 'direct'; gpuconv: ValueError
    _same_as_scipy("choose_conv_method", np.array(3.0), np.array([1.0, 2.0]))


# ---------------------------------------------------------------------------------------------
# 4. empty inputs of convolve / correlate


@pytest.mark.parametrize("fn", ["convolve", "correlate"])
def test_fixed_empty_1d_same_mode(fn):
    # scipy: array([], dtype=float64) (its 1-D 'same' fast path is skipped, N-d path runs);
    # gpuconv: ValueError "a cannot be empty"
    _same_as_scipy(fn, np.array([]), np.array([1.0]), mode="same")


@pytest.mark.parametrize("fn", ["convolve", "correlate"])
def test_fixed_empty_2d_auto_raises_in_scipy(fn):
    # scipy (method='auto'): ValueError from its integer/size checks; gpuconv: array of shape (1, 4)
    _same_as_scipy(fn, np.ones((0, 3)), np.ones((2, 2)))


# ---------------------------------------------------------------------------------------------
# 5. convolve2d / correlate2d accept a fillvalue scipy rejects: an ndarray that does not cast
#    safely to the result dtype (scipy's C code converts without FORCECAST)


@pytest.mark.parametrize("fill", [np.array(2.5), np.array([2.5])], ids=["0d", "1elem"])
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.uint8])
@pytest.mark.parametrize("fn", ["convolve2d", "correlate2d"])
def test_fixed_fillvalue_array_unsafe_cast(fn, dtype, fill):
    # scipy: ValueError "could not cast `fillvalue` directly to the output type"; gpuconv: result
    a = np.arange(20).reshape(4, 5).astype(dtype)
    b = np.ones((2, 3), dtype)
    _same_as_scipy(fn, a, b, mode="same", fillvalue=fill)


# ---------------------------------------------------------------------------------------------
# 6. NaN propagation of oaconvolve: scipy's blocks keep NaN local, gpuconv runs one FFT and
#    spreads NaN over the whole output


# ---------------------------------------------------------------------------------------------
# 7. speed: in1 much smaller than in2 (argument order) is planned as a huge padded problem;
#    scipy is fast (np.convolve swaps, oaconvolve swaps, fftconvolve is symmetric)


def _best_time(f, *args, **kw):
    f(*args, **kw)
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        f(*args, **kw)
        best = min(best, time.perf_counter() - t0)
    return best


SLOW = [
    ("convolve", (7,), (4_000_000,), {}),  # scipy ~0.07 s, gpuconv ~3.2 s
    ("correlate", (7,), (4_000_000,), {}),  # scipy ~0.14 s, gpuconv ~3.0 s
    ("fftconvolve", (7,), (4_000_000,), {}),  # scipy ~0.23 s, gpuconv ~3.3 s
    ("oaconvolve", (33,), (4_000_000,), {}),  # scipy ~0.06 s, gpuconv ~2.9 s
    ("convolve", (5, 5), (2000, 2000), {}),  # scipy ~0.12 s, gpuconv ~3.5 s
]


@pytest.mark.parametrize("fn,s1,s2,kw", SLOW, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in SLOW])
def test_fixed_small_in1_large_in2_is_slow(fn, s1, s2, kw):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(s1)
    b = rng.standard_normal(s2)
    t_ref = _best_time(getattr(ss, fn), a, b, **kw)
    t_got = _best_time(getattr(gpuconv, fn), a, b, **kw)
    assert t_got <= 5 * max(t_ref, 0.05), (t_got, t_ref)


# ---------------------------------------------------------------------------------------------
# tricky cases that agree today


@pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("fn", ["convolve2d", "correlate2d"])
def test_ok_2d_boundaries_kernel_much_larger_than_input(fn, mode, boundary):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((2, 3))
    b = rng.standard_normal((20, 11))
    for x, y in ((a, b), (b, a)):
        _same_as_scipy(fn, x, y, mode=mode, boundary=boundary, fillvalue=1.5)


@pytest.mark.parametrize(
    "fill", [np.float64(2.5), None, "3", True, [[2.5]], np.int64(3), 1 + 0j, np.float16(1.5)]
)
def test_ok_fillvalue_kinds(fill):
    a = np.arange(20.0).reshape(4, 5)
    b = np.array([[1.0, -2.0, 0.5], [3.0, 1.0, 2.0]])
    for dtype in (np.float64, np.float32, np.int16):
        _same_as_scipy("convolve2d", a.astype(dtype), b.astype(dtype), "same", "fill", fill)
    _same_as_scipy("correlate2d", a, b, "full", "fill", fill)


def test_ok_odd_memory_layouts():
    rng = np.random.default_rng(2)
    base = rng.standard_normal((20, 30))
    views = [
        np.broadcast_to(rng.standard_normal(30), (20, 30)),  # zero stride
        base.astype(">f8"),  # big endian
        np.frombuffer(b"\0" + base.tobytes(), np.float64, 600, 1).reshape(20, 30),  # unaligned
        (base + 1j * base)[::2].imag,
    ]
    k = np.broadcast_to(rng.standard_normal((1, 5)), (4, 5))
    for v in views:
        for fn in ("convolve", "correlate", "fftconvolve", "oaconvolve"):
            for mode in ("full", "same", "valid"):
                _same_as_scipy(fn, v, k, mode=mode)
                _same_as_scipy(fn, k, v, mode=mode)
        _same_as_scipy("correlate2d", v, k.astype(">i2"), mode="same", boundary="symm")


@pytest.mark.parametrize(
    "axes",
    [np.int64(1), np.array([0, 1]), [np.int32(-1)], (1, 0), -2, np.array(1)],
    ids=repr,
)
def test_ok_axes_numpy_integers_and_broadcasting(axes):
    rng = np.random.default_rng(3)
    for s1, s2 in (((5, 6), (1, 4)), ((1, 6), (3, 2)), ((5, 6), (5, 6)), ((1, 1), (3, 3))):
        a, b = rng.standard_normal(s1), rng.standard_normal(s2)
        for fn in ("fftconvolve", "oaconvolve"):
            for mode in ("full", "same", "valid"):
                _same_as_scipy(fn, a, b, mode=mode, axes=axes)
                _same_as_scipy(fn, b, a, mode=mode, axes=axes)


@pytest.mark.parametrize("method", ["auto", "direct", "fft", "im2col", "overlap_add"])
def test_ok_4d_5d_and_nested_lists(method):
    rng = np.random.default_rng(4)
    cases = [
        (rng.standard_normal((3, 4, 2, 5)), rng.standard_normal((2, 2, 3, 2))),
        (rng.standard_normal((2, 3, 2, 3, 2)), rng.standard_normal((1, 2, 2, 1, 2))),
        ([[1, 2], [3, 4]], [[1.5]]),
        ([[[[1, 2]]]], [[[[3]]]]),
        ([1 + 2j, 3], [1, 1j]),
    ]
    for a, b in cases:
        for fn in ("convolve", "correlate"):
            for mode in ("full", "same", "valid"):
                ref = _outcome(ss, fn, a, b, mode=mode)
                got = _outcome(gpuconv, fn, a, b, mode=mode, method=method)
                if isinstance(ref, Exception):
                    assert type(got) is type(ref), (ref, got)
                    continue
                if isinstance(got, ValueError) and "cannot solve" in str(got):
                    continue
                assert_conv_equal(got, ref, np.asarray(a), np.asarray(b))


def test_ok_integers_near_2_52_stay_exact():
    cases = [
        (np.array([2**53 + 1, 1, 3], np.int64), np.array([1, 1], np.int64)),
        (np.array([2**64 - 1, 5, 7], np.uint64), np.array([3, 1], np.uint64)),
        (np.array([2**31 - 1] * 200, np.int32), np.array([2**31 - 1] * 3, np.int32)),
        (np.full((40, 40), 127, np.int8), np.full((9, 9), 127, np.int8)),
    ]
    for a, b in cases:
        for fn in ("convolve", "correlate"):
            for mode in ("full", "same", "valid"):
                np.testing.assert_array_equal(
                    gpuconv.__dict__[fn](a, b, mode=mode),
                    getattr(ss, fn)(a, b, mode=mode, method="direct"),
                )


def test_fixed_int64_minimum_stays_exact():
    # abs(-2**63) wraps to -2**63 in int64: the exactness check read the product as negative
    # and sent the sum through a float64 FFT (off by up to 2**10 in the last digits)
    a = np.ones(5000, np.int64)
    a[0] = -(2**63)
    b = np.ones(2000, np.int64)
    for fn in ("convolve", "correlate"):
        np.testing.assert_array_equal(
            getattr(gpuconv, fn)(a, b), getattr(ss, fn)(a, b, method="direct")
        )


@pytest.mark.parametrize("boundary", ["wrap", "symm", "circular", "symmetric"])
def test_fixed_empty_with_wrap_or_symm_is_an_error_not_a_crash(boundary):
    # scipy.signal.convolve2d divides by the empty size in C and the process dies of SIGFPE
    for a, b in ((np.zeros((0, 3)), np.ones((2, 2))), (np.ones((3, 3)), np.zeros((2, 0)))):
        with pytest.raises(ValueError, match=f"boundary='{boundary}'.*non-empty.*fill"):
            gpuconv.convolve2d(a, b, boundary=boundary)


@pytest.mark.parametrize("method", ["fft", "im2col", "overlap_add", "separable", "direct"])
def test_fixed_empty_inputs_answer_as_scipy_direct(method):
    # empty inputs go to scipy; 'fft' used to index its empty result (IndexError) and the
    # gpuconv names became scipy 'auto', whose chooser fails on empty integer arrays
    cases = [
        (np.ones(4), np.ones(0)),
        (np.zeros((0, 4), np.uint8), np.ones((1, 1), np.uint8)),
        (np.zeros((3, 0)), np.ones((2, 2))),
    ]
    for a, b in cases:
        for fn in ("convolve", "correlate"):
            for mode in ("full", "same", "valid"):
                ref = _outcome(ss, fn, a, b, mode, method="direct")
                got = _outcome(gpuconv, fn, a, b, mode, method=method)
                if isinstance(ref, Exception):
                    assert type(got) is type(ref), (fn, mode, ref, got)
                else:
                    assert got.shape == ref.shape and got.dtype == ref.dtype, (fn, mode)


def test_fixed_scipy_handoffs_keep_the_method_family():
    # float16 inputs go to scipy.signal: 'separable' became scipy 'auto', whose chooser raised
    # OverflowError on an inf in an integer-promoted problem; now it is scipy 'direct'
    a = np.array([1, np.inf, 2, 3], np.float16)
    b = np.array([1, 2], np.int8)
    ref = ss.convolve(a, b, method="direct")
    got = gpuconv.convolve(a, b, method="separable")
    np.testing.assert_array_equal(got, ref)
    assert got.dtype == ref.dtype


@pytest.mark.parametrize(
    "call, names",
    [
        (lambda: gpuconv.correlate(np.ones(3), np.ones(2), "middle"), "mode='middle'"),
        (lambda: gpuconv.convolve2d(np.ones((3, 3)), np.ones((2, 2)), "fulll"), "mode='fulll'"),
        (lambda: gpuconv.fftconvolve(np.ones(3), np.ones(2), "x"), "mode='x'"),
        (lambda: gpuconv.convolve2d(np.ones((3, 3)), np.ones((2, 2)), boundary="reflect"),
         "boundary='reflect'"),
        (lambda: gpuconv.convolve2d(np.ones((3, 3)), np.ones((2, 2)), boundary="edge"),
         "boundary='edge'"),
        (lambda: gpuconv.fftconvolve(np.ones((3, 3)), np.ones((2, 2)), axes=[2]), r"axes \[2\]"),
        (lambda: gpuconv.fftconvolve(np.ones((3, 3)), np.ones((2, 2)), axes=[0, -2]), r"\[0, 0\]"),
        (lambda: gpuconv.fftconvolve(np.ones((3, 3)), np.ones((2, 2)), axes="a"), "'a'"),
        (lambda: gpuconv.convolve(np.ones(3), np.ones((2, 2))), r"\(3,\), in2 \(2, 2\)"),
        (lambda: gpuconv.convolve2d(np.ones(3), np.ones(2)), r"\(3,\) and \(2,\)"),
        (lambda: gpuconv.convolve2d(np.ones((3, 3)), np.ones((2, 2)), fillvalue=[1, 2]),
         r"shape \(2,\)"),
        (lambda: gpuconv.convolve(np.ones((3, 1)), np.ones((1, 3)), "valid"),
         r"\(3, 1\) and \(1, 3\)"),
        (lambda: gpuconv.convolve2d(np.ones((3, 3), bool), np.ones((2, 2), bool)), "dtype bool"),
    ],
)  # fmt: skip
def test_fixed_errors_name_the_value(call, names):
    # scipy's wording comes first (code matching on it still matches), then the offending value
    with pytest.raises(ValueError, match=names):
        call()


@pytest.mark.parametrize("fn", ["convolve", "correlate"])
def test_fixed_overlap_add_on_one_block_is_the_fft(fn):
    # method='overlap_add' on a problem one block covers raised "use fft"; oaconvolve (and now
    # the named method) computes it as the FFT convolution it is
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal(100), rng.standard_normal(5)
    got = getattr(gpuconv, fn)(a, b, method="overlap_add")
    assert_conv_equal(got, getattr(ss, fn)(a, b), a, b)


# ---------------------------------------------------------------------------------------------
# session 6 fuzzing


@pytest.mark.parametrize("correlate", [False, True])
@pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
def test_fixed_convolve2d_keeps_a_nan_local(correlate, boundary):
    """scipy's convolve2d sums directly; gpuconv's used to pick an FFT at this size (128^2 * 25^2),
    which spread one NaN over all 16384 outputs instead of scipy's 169 / 625."""
    a = np.ones((128, 128))
    a[0, 0] = np.nan
    k = np.random.default_rng(0).random((25, 25))
    fn = "correlate2d" if correlate else "convolve2d"
    ref = getattr(ss, fn)(a, k, "same", boundary)
    got = getattr(gpuconv, fn)(a, k, "same", boundary)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    assert 0 < np.isnan(ref).sum() < a.size
    ok = ~np.isnan(ref)
    np.testing.assert_allclose(got[ok], ref[ok], rtol=1e-12, atol=0)


def test_fixed_convolve2d_float32_keeps_its_accuracy_away_from_huge_values():
    """Rows of 1e12 ten rows above: an FFT's error (relative to the largest value) turned 491.7
    into 5.7e6.  The error must stay within float32 rounding of the local sum of |a| |b|."""
    rng = np.random.default_rng(1)
    b = np.ones((400, 400), np.float32)
    b[:10] = 1e12
    k = rng.random((41, 41)).astype(np.float32)
    got = gpuconv.convolve2d(b, k, "same")
    assert got.dtype == np.float32
    exact = ss.convolve2d(b.astype(np.float64), k.astype(np.float64), "same")
    scale = ss.convolve2d(np.abs(b).astype(np.float64), np.abs(k).astype(np.float64), "same")
    err = np.abs(got - exact)
    assert np.all(err <= 4 * k.size * np.finfo(np.float32).eps * scale)


def _big_integers(rng, n, m):
    """Integers as large as scipy's 2**53 rule lets through to an FFT (from the fuzzing report)."""
    amax = int(np.sqrt(0.5 * 2**53 / m))
    return amax - rng.integers(0, 1000, n), amax - rng.integers(0, 1000, m)


def test_fixed_auto_integers_are_exact_where_an_fft_would_round_wrong():
    """scipy's rule (max|a| max|b| min(size) < 2**53) sent these to an FFT: 12095 outputs of
    convolve and 994 of convolve2d were off by up to 4."""
    rng = np.random.default_rng(0)
    a, k = _big_integers(rng, 20000, 300)
    np.testing.assert_array_equal(gpuconv.convolve(a, k), np.convolve(a, k))
    np.testing.assert_array_equal(gpuconv.correlate(a, k), np.correlate(a, k, "full"))
    a2, k2 = a[None, :2000], k[None, :200]
    np.testing.assert_array_equal(gpuconv.convolve2d(a2, k2), ss.convolve2d(a2, k2))
    assert gpuconv.choose_conv_method(a, k) in ("direct", "im2col")


def test_exactness_bound_holds_at_its_limit_and_leaves_images_to_the_fft():
    """At the largest magnitudes the bound lets through, an FFT's integers are still exact
    (random and constant inputs, the worst case for cancellation-free sums); and 8-bit images with
    kernels up to 31^2 are not held back from the FFT."""
    from gpuconv.signal import _exact_needed

    rng = np.random.default_rng(2)
    for _ in range(30):
        n, m = int(rng.integers(50, 3000)), int(rng.integers(2, 300))
        lo, hi = 1, 2**40
        while hi - lo > 1:
            mid = (lo + hi) // 2
            big = _exact_needed(np.array([mid] * n), np.array([mid] * m))
            lo, hi = (lo, mid) if big else (mid, hi)
        for x, w in [
            (rng.integers(-lo, lo + 1, n), rng.integers(-lo, lo + 1, m)),
            (np.full(n, lo), np.full(m, lo)),
        ]:
            np.testing.assert_array_equal(gpuconv.convolve(x, w, method="fft"), np.convolve(x, w))
    img = rng.integers(0, 256, (2048, 2048)).astype(np.uint8)
    assert not _exact_needed(img, rng.integers(0, 256, (31, 31)).astype(np.uint8))
    assert _exact_needed(np.full(10**6, 32767, np.int16), np.full(1000, 32767, np.int16))


@pytest.mark.parametrize(
    "a, b",
    [
        (np.array([2**31 + 1, 3]), np.array([2**31 + 3])),
        (np.array([2**31 + 1, 3], np.uint32), np.array([7], np.uint32)),
        (np.array([[5, -3]], np.int16), np.array([[30000]], np.int16)),
        (np.array([True, False]), np.array([True])),
    ],
)
def test_fixed_fft_method_multiplies_integers_exactly_with_no_axis_to_transform(a, b):
    """Every axis has a length-1 input: scipy's fftconvolve transforms nothing and multiplies in
    the integer dtype; gpuconv went through float64 (2**31+1 times 2**31+3 came back off by 3)."""
    ref, got = _same_as_scipy("convolve", a, b, method="fft")
    assert got.dtype == ref.dtype
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize(
    "fillvalue", [np.array(3, dtype=object), np.array([3], dtype=object), np.array(2.5, object)]
)
def test_fixed_object_array_fillvalue_is_a_type_error(fillvalue):
    """scipy's second conversion (to complex) is a safe cast too: an object array fails it with
    a TypeError; gpuconv raised a ValueError."""
    _same_as_scipy("convolve2d", np.ones((3, 3)), np.ones((2, 2)), fillvalue=fillvalue)


@pytest.mark.parametrize("fn", ["convolve2d", "correlate2d"])
def test_fixed_complex_inf_keeps_its_infinite_part(fn):
    """scipy's direct sum gives inf+nanj for inf * (1+0j); im2col's BLAS product gave nan+nanj."""
    a = np.array([[np.inf, 1, 2]], complex)
    b = np.array([[1, 1]], complex)
    ref, got = getattr(ss, fn)(a, b), getattr(gpuconv, fn)(a, b)
    np.testing.assert_array_equal(np.isinf(got.real), np.isinf(ref.real))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    ref = ss.convolve(a, b, method="direct")
    np.testing.assert_array_equal(
        np.isinf(gpuconv.convolve(a, b, method="direct").real), np.isinf(ref.real)
    )
