"""gpuconv.cpu.fft and gpuconv.cpu.overlap_add against the plain reference."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest

from gpuconv._spec import ConvSpec
from gpuconv.cpu import fft as gfft
from gpuconv.cpu import overlap_add as goa
from tests.reference import reference

DTYPES = [np.float32, np.float64, np.complex64, np.complex128, np.int64]


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """Overlap-save blocks from the kernel-size formula alone (no 128 minimum), so that the
    small test inputs are split into several blocks."""
    monkeypatch.setattr(goa, "MIN_BLOCK", 1)


def taps_reference(spec: ConvSpec, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """A second plain reference (a loop over kernel taps), checked against tests.reference."""
    wide = (
        np.complex128 if spec.is_complex else (np.int64 if spec.dtype == np.int64 else np.float64)
    )
    xp = spec.padded_input(np.asarray(x, dtype=wide))
    wt = np.asarray(spec.kernel_for_correlation(w), dtype=wide)
    g, cig, cog = spec.groups, spec.c_in // spec.groups, spec.c_out // spec.groups
    y = np.zeros(spec.y_shape, dtype=wide)
    for j in itertools.product(*(range(k) for k in spec.kernel_shape)):
        sl = tuple(
            slice(jj * d, jj * d + (o - 1) * s + 1, s)
            for jj, d, o, s in zip(j, spec.dilation, spec.out_shape, spec.stride, strict=False)
        )
        win = xp[(slice(None), slice(None)) + sl]  # (B, Cin, *out)
        for gi in range(g):
            xs = win[:, gi * cig : (gi + 1) * cig]
            ws = wt[(slice(gi * cog, (gi + 1) * cog), slice(None)) + j]  # (Cog, Cig)
            y[:, gi * cog : (gi + 1) * cog] += np.einsum("nc...,oc->no...", xs, ws)
    return y


def ref(spec, x, w):
    return reference(spec, x, w)


def make_inputs(spec: ConvSpec, seed: int, noncontig: bool = False):
    rng = np.random.default_rng(seed)

    def draw(shape, fortran=False):
        if noncontig:  # every other element of a bigger array (x) / Fortran order (w)
            if fortran:
                return np.asfortranarray(draw_c(shape))
            big = list(shape)
            big[-1] *= 2
            return draw_c(tuple(big))[..., ::2]
        return draw_c(shape)

    def draw_c(shape):
        if spec.dtype == np.int64:
            return rng.integers(-7, 8, shape).astype(np.int64)
        a = rng.standard_normal(shape)
        if spec.is_complex:
            a = a + 1j * rng.standard_normal(shape)
        return a.astype(spec.dtype)

    return draw(spec.x_shape), draw(spec.w_shape, fortran=True)


def check(spec: ConvSpec, x, w, y, lengths=None):
    assert y.shape == spec.y_shape
    assert y.dtype == spec.dtype
    r = ref(spec, x, w)
    if spec.dtype == np.int64:
        np.testing.assert_array_equal(y, r)
        return
    # error bound: c * eps * (sum over taps of |x||w|) * log2(transform size)
    s64 = dataclasses.replace(spec, dtype=np.float64)
    mag = ref(s64, np.abs(x).astype(np.float64), np.abs(w).astype(np.float64))
    eps = np.finfo(spec.dtype).eps
    n = math.prod(p + r_ for p, r_ in zip(spec.padded_shape, spec.reach, strict=False))
    # FFT rounding errors are spread over the whole output, so outputs that see only padding
    # (exactly 0 in the reference) get the error level of the others: use max |x| * sum |w|
    # of the worst output channel as the scale too.
    wsum = np.abs(w).reshape(w.shape[0], -1).sum(axis=1).max()
    scale = max(mag.max() if mag.size else 0.0, np.abs(x).max() * wsum)
    atol = 8 * eps * scale * max(math.log2(n), 1.0) + 1e-300
    err = np.abs(y.astype(r.dtype) - r).max() if r.size else 0.0
    assert err <= atol, (err, atol)


def S(**kw):
    return ConvSpec(**kw)


# (id, spec kwargs); dtype is parametrised separately
GRID = {
    "1d": dict(in_shape=(17,), kernel_shape=(4,)),
    "1d-flip-asym-pad": dict(
        in_shape=(17,), kernel_shape=(5,), pad_lo=(6,), pad_hi=(1,), flip=True
    ),
    "1d-pad-gt-kernel": dict(in_shape=(9,), kernel_shape=(3,), pad_lo=(7,), pad_hi=(11,)),
    "1d-stride-dil": dict(
        in_shape=(23,), kernel_shape=(4,), stride=(3,), dilation=(2,), pad_lo=(2,), pad_hi=(5,)
    ),
    "1d-kernel-gt-input": dict(
        in_shape=(4,), kernel_shape=(9,), pad_lo=(8,), pad_hi=(8,), flip=True
    ),
    "1d-kernel-wraps": dict(in_shape=(1,), kernel_shape=(11,), pad_lo=(5,), pad_hi=(5,)),
    "1d-chan-groups": dict(in_shape=(12,), kernel_shape=(3,), batch=3, c_in=6, c_out=4, groups=2),
    "2d": dict(in_shape=(11, 10), kernel_shape=(3, 4), flip=True),
    "2d-same-even": dict(
        in_shape=(12, 13), kernel_shape=(4, 4), pad_lo=(2, 2), pad_hi=(1, 1), flip=True
    ),
    "2d-asym-big-pad": dict(in_shape=(7, 9), kernel_shape=(3, 2), pad_lo=(0, 5), pad_hi=(6, 0)),
    "2d-stride-dil": dict(
        in_shape=(13, 15), kernel_shape=(3, 3), stride=(2, 3), dilation=(2, 1), pad_lo=1, pad_hi=2
    ),
    "2d-groups": dict(
        in_shape=(8, 9), kernel_shape=(3, 3), batch=2, c_in=4, c_out=6, groups=2, pad_lo=1, pad_hi=1
    ),
    "2d-depthwise": dict(
        in_shape=(8, 9), kernel_shape=(2, 3), batch=2, c_in=3, c_out=3, groups=3, flip=True
    ),
    "2d-dense-chan": dict(in_shape=(6, 7), kernel_shape=(3, 3), batch=2, c_in=5, c_out=7),
    "2d-kernel-gt-input": dict(in_shape=(3, 5), kernel_shape=(6, 7), pad_lo=(5, 6), pad_hi=(4, 3)),
    "3d": dict(
        in_shape=(5, 6, 7),
        kernel_shape=(2, 3, 2),
        pad_lo=(1, 0, 2),
        pad_hi=(2, 2, 0),
        c_in=2,
        c_out=3,
        flip=True,
    ),
    "3d-stride-dil": dict(
        in_shape=(6, 5, 7),
        kernel_shape=(2, 2, 3),
        stride=(2, 1, 2),
        dilation=(2, 1, 1),
        pad_lo=1,
        pad_hi=1,
    ),
    "4d": dict(
        in_shape=(4, 3, 5, 4),
        kernel_shape=(2, 1, 3, 2),
        pad_lo=(0, 1, 1, 0),
        pad_hi=(1, 0, 1, 1),
        c_in=2,
        c_out=2,
    ),
}

# inputs large enough that overlap-save splits them into several blocks
BLOCKED = {
    "oa-1d": dict(in_shape=(300,), kernel_shape=(9,), pad_lo=(4,), pad_hi=(4,), flip=True),
    "oa-1d-stride": dict(
        in_shape=(257,), kernel_shape=(6,), stride=(3,), dilation=(2,), pad_lo=(13,), pad_hi=(2,)
    ),
    "oa-2d-same": dict(
        in_shape=(70, 65), kernel_shape=(5, 4), pad_lo=(2, 2), pad_hi=(2, 1), flip=True
    ),
    "oa-2d-chan": dict(
        in_shape=(50, 40), kernel_shape=(3, 3), batch=2, c_in=4, c_out=6, groups=2, stride=(2, 1)
    ),
    "oa-2d-dense": dict(
        in_shape=(40, 33), kernel_shape=(3, 2), c_in=5, c_out=6, pad_lo=(0, 9), pad_hi=(7, 0)
    ),
    "oa-2d-one-axis": dict(in_shape=(80, 6), kernel_shape=(5, 3), pad_lo=1, pad_hi=1),
    # unsplit axis whose fast block length (18) exceeds out + reach - 1 (17)
    "oa-2d-one-axis-odd": dict(in_shape=(80, 15), kernel_shape=(5, 7), pad_lo=1, pad_hi=1),
    "oa-3d": dict(
        in_shape=(30, 28, 9), kernel_shape=(3, 4, 2), pad_lo=(1, 2, 0), pad_hi=(1, 1, 1), flip=True
    ),
}


@pytest.fixture(params=["auto", "always", "never"])
def wrap_mode(request, monkeypatch):
    """gpuconv.cpu.fft with and without the wrapped short transforms + recomputed bands."""
    monkeypatch.setattr(gfft, "WRAP_MODE", request.param)
    return request.param


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", list(GRID), ids=str)
def test_fft_grid(case, dtype, wrap_mode):
    spec = S(dtype=dtype, **GRID[case])
    assert gfft.supports(spec) is None
    x, w = make_inputs(spec, hash(case) % 1000)
    check(spec, x, w, gfft.run(spec, x, w))
    if goa.supports(spec) is None:
        check(spec, x, w, goa.run(spec, x, w))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", list(BLOCKED), ids=str)
def test_overlap_save_grid(case, dtype):
    spec = S(dtype=dtype, **BLOCKED[case])
    assert goa.supports(spec) is None
    x, w = make_inputs(spec, hash(case) % 1000)
    check(spec, x, w, goa.run(spec, x, w))
    check(spec, x, w, gfft.run(spec, x, w))


@pytest.mark.parametrize("case", ["2d-stride-dil", "3d", "oa-2d-chan"])
@pytest.mark.parametrize(
    "dtype", [np.float32, np.complex128, np.int64], ids=lambda d: np.dtype(d).name
)
def test_noncontiguous(case, dtype):
    spec = S(dtype=dtype, **{**GRID, **BLOCKED}[case])
    x, w = make_inputs(spec, 3, noncontig=True)
    assert not x.flags.c_contiguous and not w.flags.c_contiguous
    check(spec, x, w, gfft.run(spec, x, w))
    if goa.supports(spec) is None:
        check(spec, x, w, goa.run(spec, x, w))


@pytest.mark.parametrize("case", ["2d-groups", "2d-kernel-gt-input", "3d-stride-dil", "4d"])
@pytest.mark.parametrize("dtype", [np.float32, np.complex128], ids=lambda d: np.dtype(d).name)
def test_kernel_dft_path(case, dtype, monkeypatch):
    """The kernel spectrum's direct-DFT (matrix product) stages, off by default."""
    monkeypatch.setattr(gfft, "DFT_TAPS_PER_LOG2", 100.0)
    monkeypatch.setattr(gfft, "WRAP_MODE", "always")
    spec = S(dtype=dtype, **GRID[case])
    x, w = make_inputs(spec, 4)
    check(spec, x, w, gfft.run(spec, x, w))


def test_taps_reference_agrees():
    for case in ("1d-stride-dil", "2d-groups", "2d-stride-dil", "2d-kernel-gt-input"):
        spec = S(**GRID[case])
        x, w = make_inputs(spec, 0)
        np.testing.assert_allclose(taps_reference(spec, x, w), reference(spec, x, w), atol=1e-12)


def test_overlap_save_unsplit_axis_reads_inside():
    """An unsplit axis with a fast block length above out + reach - 1 must not read past x."""
    spec = S(**BLOCKED["oa-2d-one-axis-odd"])
    plan = goa._plan(spec, True)
    assert plan[1][2] == 1 and plan[1][0] > plan[1][1] + spec.reach[1] - 1
    x, w = make_inputs(spec, 0)
    for _ in range(5):
        check(spec, x, w, goa.run(spec, x, w))


@pytest.mark.parametrize("dtype", [np.float32, np.complex128], ids=lambda d: np.dtype(d).name)
def test_overlap_save_default_blocks(dtype, monkeypatch):
    monkeypatch.setattr(goa, "MIN_BLOCK", 128)
    spec = S(
        in_shape=(1500,),
        kernel_shape=(9,),
        batch=2,
        c_in=2,
        c_out=2,
        pad_lo=(4,),
        pad_hi=(6,),
        stride=(2,),
        flip=True,
        dtype=dtype,
    )
    assert goa._plan(spec, dtype == np.float32)[0][0] >= 128
    assert goa.supports(spec) is None
    x, w = make_inputs(spec, 2)
    check(spec, x, w, goa.run(spec, x, w))


def test_single_block_declined():
    spec = S(in_shape=(20, 20), kernel_shape=(9, 9))
    assert isinstance(goa.supports(spec), str)


@pytest.mark.parametrize(
    "case", ["1d-flip-asym-pad", "1d-stride-dil", "2d-same-even", "2d-stride-dil", "3d"]
)
def test_wrap_used(case):
    """The grid cases above that do take the wrapped path when forced."""
    spec = S(**GRID[case])
    old = gfft.WRAP_MODE
    try:
        gfft.WRAP_MODE = "always"
        assert any(gfft.plan(spec, True)[1])
    finally:
        gfft.WRAP_MODE = old


def test_chunked(monkeypatch):
    """Tiny memory budget: the batch (fft) and the block rows (overlap-save) go in chunks."""
    monkeypatch.setattr(gfft, "MEMORY_BUDGET", 1)
    spec = S(
        in_shape=(60, 50),
        kernel_shape=(3, 4),
        batch=3,
        c_in=2,
        c_out=4,
        groups=2,
        stride=(2, 1),
        pad_lo=(1, 2),
        pad_hi=(2, 1),
        dtype=np.float64,
    )
    x, w = make_inputs(spec, 5)
    check(spec, x, w, gfft.run(spec, x, w))
    assert goa.supports(spec) is None
    check(spec, x, w, goa.run(spec, x, w))


def test_float32_stays_single():
    spec = S(in_shape=(64, 64), kernel_shape=(5, 5), pad_lo=2, pad_hi=2, dtype=np.float32)
    x, w = make_inputs(spec, 1)
    X = gfft._forward(x, (2, 3), (64, 64), True, 1)
    assert X.dtype == np.complex64
    assert gfft.run(spec, x, w).dtype == np.float32


def test_int64_exact_large_problem():
    spec = S(
        in_shape=(200, 150),
        kernel_shape=(7, 5),
        c_in=3,
        c_out=2,
        pad_lo=3,
        pad_hi=(2, 4),
        dtype=np.int64,
    )
    x, w = make_inputs(spec, 9)
    r = ref(spec, x, w)
    np.testing.assert_array_equal(gfft.run(spec, x, w), r)
    np.testing.assert_array_equal(goa.run(spec, x, w), r)


@pytest.mark.parametrize("k", [3, 8, 15])
def test_scipy_same_mapping(k):
    """flip=True, pad_lo=k-1-(k-1)//2, pad_hi=(k-1)//2 is scipy's 'same' convolution."""
    import scipy.signal

    rng = np.random.default_rng(k)
    img = rng.standard_normal((40, 37))
    ker = rng.standard_normal((k, k - 1))
    lo = tuple(kk - 1 - (kk - 1) // 2 for kk in ker.shape)
    hi = tuple((kk - 1) // 2 for kk in ker.shape)
    spec = S(in_shape=img.shape, kernel_shape=ker.shape, pad_lo=lo, pad_hi=hi, flip=True)
    want = scipy.signal.fftconvolve(img, ker, mode="same")
    np.testing.assert_allclose(
        gfft.run(spec, img[None, None], ker[None, None])[0, 0], want, atol=1e-11
    )
    if goa.supports(spec) is None:
        np.testing.assert_allclose(
            goa.run(spec, img[None, None], ker[None, None])[0, 0], want, atol=1e-11
        )


# ---------------------------------------------------------------------------------------------
# random problems

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@st.composite
def specs(draw):
    nd = draw(st.integers(1, 3))
    big = draw(st.booleans())
    in_shape, kernel_shape, dil, lo, hi, stride = [], [], [], [], [], []
    for _ in range(nd):
        n = draw(st.integers(1, 70 if big and nd < 3 else 9))
        k = draw(st.integers(1, 7))
        d = draw(st.integers(1, 3))
        lo_ = draw(st.integers(0, 8))
        reach = d * (k - 1) + 1
        hi_min = max(0, reach - n - lo_)
        hi_ = draw(st.integers(hi_min, hi_min + 8))
        in_shape.append(n)
        kernel_shape.append(k)
        dil.append(d)
        lo.append(lo_)
        hi.append(hi_)
        stride.append(draw(st.integers(1, 3)))
    groups = draw(st.integers(1, 2))
    return ConvSpec(
        in_shape=tuple(in_shape),
        kernel_shape=tuple(kernel_shape),
        dilation=tuple(dil),
        pad_lo=tuple(lo),
        pad_hi=tuple(hi),
        stride=tuple(stride),
        batch=draw(st.integers(1, 2)),
        groups=groups,
        c_in=groups * draw(st.integers(1, 2)),
        c_out=groups * draw(st.integers(1, 2)),
        flip=draw(st.booleans()),
        dtype=draw(st.sampled_from(DTYPES)),
    )


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(spec=specs(), mode=st.sampled_from(["auto", "always", "never"]), seed=st.integers(0, 99))
@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_random_problems(spec, mode, seed):
    x, w = make_inputs(spec, seed)
    old = gfft.WRAP_MODE
    try:
        gfft.WRAP_MODE = mode
        check(spec, x, w, gfft.run(spec, x, w))
    finally:
        gfft.WRAP_MODE = old
    if goa.supports(spec) is None:
        check(spec, x, w, goa.run(spec, x, w))
