"""gpuconv.cpu.direct against the plain reference, over a grid of problems and all compute dtypes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gpuconv._spec import COMPUTE_DTYPES, ConvSpec
from gpuconv.cpu import direct
from tests.reference import reference

DTYPES = [np.dtype(d) for d in COMPUTE_DTYPES]


def _rand(rng, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "i":
        return rng.integers(-1000, 1000, size=shape, dtype=np.int64)
    if dtype.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _check(spec: ConvSpec, x, w, y=None):
    if y is None:
        y = direct.run(spec, x, w)
    assert y.shape == spec.y_shape
    assert y.dtype == spec.dtype
    assert y.flags.c_contiguous
    ref = reference(spec, x, w)
    if spec.dtype == np.int64:
        np.testing.assert_array_equal(y, ref)
        return
    # error bound: a few eps * sqrt(taps) times the magnitude sum |x| * |w| of each output
    mag = reference(spec, np.abs(x).astype(np.float64), np.abs(w).astype(np.float64))
    taps = (spec.c_in // spec.groups) * math.prod(spec.kernel_shape)
    eps = np.finfo(spec.dtype).eps
    tol = 8 * eps * math.sqrt(taps) * (np.nan_to_num(mag, nan=0.0, posinf=0.0) + 1e-30)
    yr = y.astype(ref.dtype)
    fin = np.isfinite(ref)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    np.testing.assert_array_equal(y[~fin & ~np.isnan(ref)], ref[~fin & ~np.isnan(ref)])
    err = np.abs(yr[fin] - ref[fin])
    bad = err > tol[fin]
    assert not bad.any(), (
        f"{bad.sum()} of {bad.size} outside tolerance; worst err {err.max():.3g}, "
        f"tol there {tol[fin][np.argmax(err)]:.3g}"
    )


def _run_case(dtype, seed=0, **kw):
    spec = ConvSpec(dtype=dtype, **kw)
    rng = np.random.default_rng(seed)
    x = _rand(rng, spec.x_shape, dtype)
    w = _rand(rng, spec.w_shape, dtype)
    _check(spec, x, w)


CASES = [
    # 1-D
    dict(in_shape=(1,), kernel_shape=(1,)),
    dict(in_shape=(7,), kernel_shape=(3,), pad_lo=(2,), pad_hi=(2,), flip=True),
    dict(in_shape=(10,), kernel_shape=(4,), pad_lo=(1,), pad_hi=(2,)),
    dict(in_shape=(3,), kernel_shape=(8,), pad_lo=(7,), pad_hi=(7,), flip=True),  # k > n, full
    dict(in_shape=(50,), kernel_shape=(5,), stride=(3,), dilation=(2,), pad_lo=(4,), pad_hi=(1,)),
    dict(in_shape=(3000,), kernel_shape=(101,), pad_lo=(50,), pad_hi=(50,), flip=True),
    dict(in_shape=(2500,), kernel_shape=(17,), stride=(2,), pad_lo=(3,), pad_hi=(9,)),
    dict(
        in_shape=(40,),
        kernel_shape=(6,),
        batch=2,
        c_in=4,
        c_out=6,
        groups=2,
        pad_lo=(5,),
        pad_hi=(0,),
    ),
    # 2-D
    dict(in_shape=(9, 11), kernel_shape=(3, 3), pad_lo=(1, 1), pad_hi=(1, 1), flip=True),
    dict(in_shape=(12, 13), kernel_shape=(4, 6), pad_lo=(2, 3), pad_hi=(1, 2), flip=True),
    dict(in_shape=(8, 9), kernel_shape=(5, 5)),  # valid
    dict(in_shape=(4, 5), kernel_shape=(7, 9), pad_lo=(6, 8), pad_hi=(6, 8)),  # k > n, full
    dict(
        in_shape=(15, 17),
        kernel_shape=(3, 4),
        stride=(2, 3),
        dilation=(2, 1),
        pad_lo=(2, 0),
        pad_hi=(0, 3),
    ),
    dict(in_shape=(13, 14), kernel_shape=(3, 3), dilation=(1, 3), pad_lo=(3, 3), pad_hi=(3, 3)),
    dict(in_shape=(6, 2100), kernel_shape=(3, 15), pad_lo=(1, 7), pad_hi=(1, 7), flip=True),
    dict(
        in_shape=(10, 10),
        kernel_shape=(3, 3),
        batch=3,
        c_in=6,
        c_out=4,
        groups=2,
        pad_lo=(1, 1),
        pad_hi=(1, 1),
    ),
    dict(
        in_shape=(7, 8),
        kernel_shape=(2, 3),
        batch=2,
        c_in=3,
        c_out=3,
        groups=3,
        stride=(1, 2),
        pad_lo=(0, 1),
        pad_hi=(1, 1),
    ),  # depthwise, strided
    dict(
        in_shape=(11, 12),
        kernel_shape=(3, 3),
        c_in=5,
        c_out=2,
        stride=2,
        pad_lo=(1, 1),
        pad_hi=(1, 1),
    ),
    dict(
        in_shape=(40, 20),
        kernel_shape=(2, 3),
        stride=(4, 1),
        dilation=(5, 2),
        pad_lo=(3, 1),
        pad_hi=(0, 2),
    ),  # staged rows skipped between strided/dilated taps
    dict(
        in_shape=(37, 4200), kernel_shape=(3, 5), stride=(3, 2), pad_lo=(1, 2), pad_hi=(1, 2)
    ),  # several row tiles and column segments, strided
    # 3-D
    dict(in_shape=(5, 6, 7), kernel_shape=(3, 3, 3), pad_lo=(1, 1, 1), pad_hi=(1, 1, 1), flip=True),
    dict(
        in_shape=(6, 5, 9),
        kernel_shape=(2, 3, 4),
        stride=(2, 1, 2),
        dilation=(2, 2, 1),
        pad_lo=(1, 0, 3),
        pad_hi=(2, 2, 0),
        batch=2,
        c_in=4,
        c_out=2,
        groups=2,
    ),
    dict(in_shape=(2, 3, 4), kernel_shape=(3, 5, 6), pad_lo=(2, 4, 5), pad_hi=(2, 4, 5), flip=True),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", CASES, ids=lambda c: repr(c).replace(" ", ""))
def test_grid(case, dtype):
    _run_case(dtype, **case)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("k", [1, 2, 3, 5, 6, 7, 9, 11, 15])
def test_same_mode_2d(k, dtype):
    """scipy 'same' mode (the benchmark problem) with odd and even kernels, wide rows."""
    lo = (k - 1) // 2
    hi = k - 1 - lo
    _run_case(
        dtype,
        seed=k,
        in_shape=(23, 1100 + k),
        kernel_shape=(k, k),
        pad_lo=(lo, lo),
        pad_hi=(hi, hi),
        flip=True,
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_non_contiguous(dtype):
    spec = ConvSpec(
        in_shape=(9, 10),
        kernel_shape=(3, 4),
        batch=2,
        c_in=2,
        c_out=3,
        pad_lo=(1, 2),
        pad_hi=(1, 1),
        flip=True,
        dtype=dtype,
    )
    rng = np.random.default_rng(1)
    xs = spec.x_shape
    x = _rand(rng, (xs[0], xs[1], xs[2] * 2, xs[3]), dtype)[:, :, ::2]  # strided view
    w = np.asfortranarray(_rand(rng, spec.w_shape, dtype))  # Fortran order
    assert not x.flags.c_contiguous and not w.flags.c_contiguous
    _check(spec, x, w)
    x2 = np.asfortranarray(x)
    w2 = _rand(rng, spec.w_shape[::-1], dtype).transpose(3, 2, 1, 0)  # transposed view
    _check(spec, x2, w2)


def test_read_only_inputs_share_the_compilation():
    spec = ConvSpec(
        in_shape=(6, 7), kernel_shape=(2, 3), pad_lo=(1, 1), pad_hi=(0, 1), dtype=np.float64
    )
    rng = np.random.default_rng(4)
    x = _rand(rng, spec.x_shape, np.float64)
    w = _rand(rng, spec.w_shape, np.float64)
    direct.run(spec, x, w)
    nsig = len(direct._get_core().signatures)
    x.flags.writeable = False
    w.flags.writeable = False
    _check(spec, x, w)
    assert len(direct._get_core().signatures) == nsig


def test_int64_wraparound_exact():
    spec = ConvSpec(
        in_shape=(20, 21),
        kernel_shape=(3, 5),
        c_in=3,
        c_out=2,
        pad_lo=(1, 2),
        pad_hi=(1, 2),
        dtype=np.int64,
    )
    rng = np.random.default_rng(2)
    big = np.iinfo(np.int64).max
    x = rng.integers(-big, big, size=spec.x_shape, dtype=np.int64)
    w = rng.integers(-big, big, size=spec.w_shape, dtype=np.int64)
    with np.errstate(over="ignore"):
        _check(spec, x, w)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
def test_nonfinite_propagation(dtype):
    # inf in the kernel: the zero padding times inf is NaN in the canonical formula
    spec = ConvSpec(
        in_shape=(8, 9), kernel_shape=(3, 3), pad_lo=(1, 1), pad_hi=(1, 1), flip=True, dtype=dtype
    )
    rng = np.random.default_rng(3)
    x = _rand(rng, spec.x_shape, dtype)
    w = _rand(rng, spec.w_shape, dtype)
    w[0, 0, 0, 1] = np.inf
    with np.errstate(invalid="ignore", over="ignore"):
        _check(spec, x, w)
    # NaN and inf in the input
    w = _rand(rng, spec.w_shape, dtype)
    x[0, 0, 3, 4] = np.nan
    x[0, 0, 6, 1] = np.inf
    with np.errstate(invalid="ignore", over="ignore"):
        _check(spec, x, w)
    # a zero weight meets the inf: 0 * inf = NaN must not be skipped
    w[0, 0, 1, 1] = 0
    with np.errstate(invalid="ignore", over="ignore"):
        y = direct.run(spec, x, w)
    assert np.isnan(y[0, 0, 6, 1])


def test_supports():
    assert direct.supports(ConvSpec(in_shape=(4, 4, 4, 4), kernel_shape=(2, 2, 2, 2))) is not None
    for nd in (1, 2, 3):
        for dt in DTYPES:
            assert (
                direct.supports(ConvSpec(in_shape=(4,) * nd, kernel_shape=(2,) * nd, dtype=dt))
                is None
            )
    with pytest.raises(ValueError):
        direct.run(
            ConvSpec(in_shape=(4, 4, 4, 4), kernel_shape=(2, 2, 2, 2)),
            np.zeros((1, 1, 4, 4, 4, 4)),
            np.zeros((1, 1, 2, 2, 2, 2)),
        )


def test_random_problems():
    """A seeded sweep of random small problems over every feature at once."""
    rng = np.random.default_rng(12345)
    for i in range(60):
        nd = int(rng.integers(1, 4))
        dtype = DTYPES[i % len(DTYPES)]
        groups = int(rng.integers(1, 3))
        c_in = groups * int(rng.integers(1, 3))
        c_out = groups * int(rng.integers(1, 3))
        k = tuple(int(v) for v in rng.integers(1, 5, nd))
        dil = tuple(int(v) for v in rng.integers(1, 3, nd))
        stride = tuple(int(v) for v in rng.integers(1, 3, nd))
        lo = tuple(int(v) for v in rng.integers(0, 4, nd))
        hi = tuple(int(v) for v in rng.integers(0, 4, nd))
        reach = [d * (kk - 1) + 1 for kk, d in zip(k, dil)]
        n = tuple(max(1, r - a - b) + int(rng.integers(0, 8)) for r, a, b in zip(reach, lo, hi))
        spec = ConvSpec(
            in_shape=n,
            kernel_shape=k,
            batch=int(rng.integers(1, 3)),
            c_in=c_in,
            c_out=c_out,
            groups=groups,
            stride=stride,
            dilation=dil,
            pad_lo=lo,
            pad_hi=hi,
            flip=bool(rng.integers(0, 2)),
            dtype=dtype,
        )
        x = _rand(rng, spec.x_shape, dtype)
        w = _rand(rng, spec.w_shape, dtype)
        _check(spec, x, w)


# (in_shape, stride, dilation, pad_lo, pad_hi, groups, c_out per group, batch)
FAST3X3 = [
    ((37, 29), (1, 1), (1, 1), (1, 1), (1, 1), 1, 1, 1),
    ((20, 33), (2, 1), (1, 2), (0, 3), (2, 0), 2, 1, 2),
    ((9, 40), (3, 1), (2, 1), (4, 4), (1, 2), 3, 2, 1),
    ((4, 5), (1, 1), (3, 3), (4, 4), (4, 4), 1, 1, 1),  # every row reaches into the padding
    ((1, 70), (1, 1), (1, 1), (1, 0), (1, 2), 1, 1, 1),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.int64],
                         ids=lambda d: np.dtype(d).name)  # fmt: skip
@pytest.mark.parametrize("case", FAST3X3)
@pytest.mark.parametrize("seg_rb", [(2048, 8), (16, 3)])
def test_3x3_kernel_against_the_general_core(case, dtype, seg_rb, monkeypatch):
    """3x3 on one input channel per output has a kernel of its own: it must give the general
    core's sums (exactly for int64), with tiles and row segments of every size."""
    ins, st, dl, lo, hi, g, cog, n = case
    spec = ConvSpec(in_shape=ins, kernel_shape=(3, 3), stride=st, dilation=dl, pad_lo=lo,
                    pad_hi=hi, batch=n, c_in=g, c_out=g * cog, groups=g, dtype=np.dtype(dtype))  # fmt: skip
    assert direct._fast3x3(spec)
    rng = np.random.default_rng(sum(ins))
    if np.dtype(dtype).kind == "i":
        x = rng.integers(-(2**40), 2**40, spec.x_shape)  # products wrap: exact either way
        w = rng.integers(-(2**30), 2**30, spec.w_shape)
    else:
        x = rng.standard_normal(spec.x_shape).astype(dtype)
        w = rng.standard_normal(spec.w_shape).astype(dtype)
    monkeypatch.setattr(direct, "SEG", seg_rb[0])
    monkeypatch.setattr(direct, "RB", seg_rb[1])
    fast = direct.run(spec, x, w)
    monkeypatch.setattr(direct, "_fast3x3", lambda spec: False)
    general = direct.run(spec, x, w)
    if np.dtype(dtype).kind == "i":
        np.testing.assert_array_equal(fast, general)
    else:
        eps = np.finfo(dtype).eps
        np.testing.assert_allclose(fast, general, rtol=0, atol=16 * eps * np.abs(general).max())
    np.testing.assert_allclose(
        fast, reference(spec, x, w), rtol=1e-4, atol=1e-3 * (1 + np.abs(fast).max())
    )
