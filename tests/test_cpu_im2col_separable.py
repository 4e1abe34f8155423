"""gpuconv.cpu.im2col and gpuconv.cpu.separable against the plain reference."""

from __future__ import annotations

from math import prod

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuconv._spec import ConvSpec
from gpuconv.cpu import im2col, separable
from tests.reference import reference

ALL_DTYPES = [np.float32, np.float64, np.complex64, np.complex128, np.int64]
FLOAT_DTYPES = ALL_DTYPES[:4]


def ref(spec, x, w):
    return reference(spec, x, w)


def _rand(rng, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "i":
        return rng.integers(-50, 51, size=shape).astype(dtype)
    a = rng.standard_normal(shape)
    if dtype.kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def _rank1_kernel(rng, spec: ConvSpec):
    w = np.empty(spec.w_shape, dtype=spec.dtype)
    for o in range(spec.w_shape[0]):
        for c in range(spec.w_shape[1]):
            t = np.ones((), dtype=spec.dtype)
            for k in spec.kernel_shape:
                t = np.multiply.outer(t, _rand(rng, (k,), spec.dtype))
            w[o, c] = t
    return w


def check(spec: ConvSpec, x, w, y, *, slack: float = 4.0, per_element: bool = True):
    """y == reference: exact for int64, else |y - r| <= slack * eps * n * (|x| * |w|).

    ``(|x| * |w|)`` is the reference of the absolute values, per output element, or its maximum
    when not ``per_element`` (separable: the rank-1 factors carry errors ~ eps * ||w|| on every
    tap, small taps included).
    """
    assert y.shape == spec.y_shape
    assert y.dtype == spec.dtype
    assert y.flags.c_contiguous
    r = ref(spec, x, w)
    if spec.dtype == np.int64:
        np.testing.assert_array_equal(y, r)
        return
    eps = np.finfo(spec.dtype).eps
    n = (spec.c_in // spec.groups) * prod(spec.kernel_shape)
    bound = ref(spec, np.abs(x).astype(np.float64), np.abs(w).astype(np.float64))
    if not per_element:
        bound = np.max(bound, initial=0.0)
    atol = slack * eps * (n + 2) * bound
    err = np.abs(y.astype(r.dtype) - r)
    bad = err > atol
    assert not bad.any(), f"max err {err.max():.3g}, worst excess {np.max(err - atol):.3g}"


# --------------------------------------------------------------------------------------------
# im2col

IM2COL_CASES = [
    dict(in_shape=(11,), kernel_shape=(3,)),
    dict(in_shape=(13,), kernel_shape=(4,), stride=2, dilation=3, pad_lo=4, pad_hi=1, flip=True),
    # kernel larger than the input, padding larger than the kernel
    dict(in_shape=(4,), kernel_shape=(7,), pad_lo=5, pad_hi=6, batch=2, c_in=2, c_out=3),
    dict(
        in_shape=(9, 10),
        kernel_shape=(3, 4),
        stride=(2, 1),
        dilation=(1, 2),
        pad_lo=(2, 0),
        pad_hi=(0, 3),
        batch=3,
        c_in=4,
        c_out=6,
        groups=2,
        flip=True,
    ),
    dict(in_shape=(6, 7), kernel_shape=(2, 3), pad_lo=(5, 0), pad_hi=(0, 6)),
    dict(in_shape=(8, 8), kernel_shape=(2, 2), stride=2, c_in=3, c_out=2),
    dict(in_shape=(3, 5), kernel_shape=(5, 7), pad_lo=(3, 4), pad_hi=(2, 4), flip=True),
    dict(in_shape=(7, 6), kernel_shape=(1, 1), batch=2, c_in=3, c_out=5),  # 1x1 fast path
    dict(in_shape=(7, 6), kernel_shape=(1, 1), stride=(2, 3), c_in=4, c_out=2, groups=2),
    dict(
        in_shape=(7, 9), kernel_shape=(3, 3), pad_lo=1, pad_hi=1, batch=2, c_in=4, c_out=8, groups=4
    ),  # depthwise with multiplier 2
    dict(
        in_shape=(5, 6, 7),
        kernel_shape=(2, 3, 2),
        stride=(1, 2, 1),
        dilation=(2, 1, 1),
        pad_lo=(1, 0, 3),
        pad_hi=(0, 2, 1),
        batch=2,
        c_in=4,
        c_out=2,
        groups=2,
        flip=True,
    ),
    dict(in_shape=(3, 4, 5), kernel_shape=(4, 1, 6), pad_lo=(1, 0, 2), pad_hi=(2, 0, 3)),
    dict(
        in_shape=(4, 3, 5, 4),
        kernel_shape=(2, 1, 3, 2),
        stride=(1, 2, 2, 1),
        dilation=(1, 1, 1, 2),
        pad_lo=(1, 0, 2, 0),
        pad_hi=(0, 1, 1, 2),
        batch=2,
        c_in=4,
        c_out=2,
        groups=2,
        flip=True,
    ),  # numpy fallback
    dict(in_shape=(3, 3, 3, 3, 3), kernel_shape=(2, 2, 1, 2, 3), pad_lo=1, pad_hi=(0, 1, 0, 0, 1)),
]


def _case_id(case):
    return "-".join(f"{k}={v}" for k, v in case.items()).replace(" ", "")


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", IM2COL_CASES, ids=_case_id)
@pytest.mark.parametrize("budget", [None, 1, 200])
def test_im2col_matches_reference(case, dtype, budget):
    spec = ConvSpec(**case, dtype=dtype)
    assert im2col.supports(spec) is None
    rng = np.random.default_rng(len(IM2COL_CASES) * 7 + IM2COL_CASES.index(case))
    x = _rand(rng, spec.x_shape, dtype)
    w = _rand(rng, spec.w_shape, dtype)
    check(spec, x, w, im2col.run(spec, x, w, budget_bytes=budget))


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: np.dtype(d).name)
def test_im2col_noncontiguous(dtype):
    spec = ConvSpec(
        in_shape=(7, 9),
        kernel_shape=(3, 2),
        stride=(1, 2),
        pad_lo=(1, 2),
        pad_hi=(2, 0),
        batch=2,
        c_in=4,
        c_out=6,
        groups=2,
        dtype=dtype,
        flip=True,
    )
    rng = np.random.default_rng(3)
    xbig = _rand(rng, (2, 4, 14, 9), dtype)
    x = xbig[:, :, ::2]
    wf = np.asfortranarray(_rand(rng, spec.w_shape, dtype))
    assert not x.flags.c_contiguous and not wf.flags.c_contiguous
    check(spec, x, wf, im2col.run(spec, x, wf, budget_bytes=64))
    xf = np.asfortranarray(x)
    check(spec, xf, wf, im2col.run(spec, xf, wf))


def test_im2col_int64_wraps_exactly():
    spec = ConvSpec(
        in_shape=(5, 6), kernel_shape=(3, 3), pad_lo=1, pad_hi=1, c_in=2, c_out=2, dtype=np.int64
    )
    rng = np.random.default_rng(5)
    x = rng.integers(-(2**40), 2**40, size=spec.x_shape, dtype=np.int64)
    w = rng.integers(-(2**30), 2**30, size=spec.w_shape, dtype=np.int64)
    with np.errstate(over="ignore"):
        check(spec, x, w, im2col.run(spec, x, w, budget_bytes=100))


@pytest.mark.parametrize(
    "batch,in_shape,budget_elems,expect",
    [
        (5, (6, 7), 2 * 42 * 12, (2, 42)),  # two whole images per chunk
        (5, (6, 7), 2 * 42 * 12 - 1, (1, 42)),  # one image
        (5, (6, 7), 41 * 12, (1, 41)),  # positions only (not a whole row multiple)
        (5, (6, 7), 1, (1, 1)),  # budget below one column: one position
        (3, (6, 7), 10**9, (3, 42)),  # all at once
    ],
)
def test_im2col_chunks_fill_the_budget(batch, in_shape, budget_elems, expect):
    spec = ConvSpec(
        in_shape=in_shape,
        kernel_shape=(2, 3),
        pad_lo=(1, 1),
        pad_hi=(0, 1),
        batch=batch,
        c_in=4,
        c_out=2,
        groups=2,
        dtype=np.float32,
    )
    kg = 2 * 6
    assert spec.out_shape == (6, 7)
    assert im2col._chunks(spec, kg, budget_elems * 4) == expect
    rng = np.random.default_rng(1)
    x = _rand(rng, spec.x_shape, spec.dtype)
    w = _rand(rng, spec.w_shape, spec.dtype)
    check(spec, x, w, im2col.run(spec, x, w, budget_bytes=budget_elems * 4))


@pytest.mark.parametrize("dtype", [np.float32, np.int64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(
    "case",
    [
        dict(in_shape=(300, 310), kernel_shape=(3, 3), pad_lo=1, pad_hi=(2, 1)),  # column split
        dict(
            in_shape=(90, 100),
            kernel_shape=(3, 3),
            stride=(1, 2),
            pad_lo=1,
            pad_hi=1,
            batch=2,
            c_in=8,
            c_out=4,
        ),  # row split
    ],
    ids=["cols", "rows"],
)
def test_im2col_threaded_fill(monkeypatch, case, dtype):
    monkeypatch.setattr(im2col, "FILL_THREADS", 3)
    spec = ConvSpec(**case, dtype=dtype)
    rng = np.random.default_rng(8)
    x = _rand(rng, spec.x_shape, dtype)
    w = _rand(rng, spec.w_shape, dtype)
    check(spec, x, w, im2col.run(spec, x, w))
    check(spec, x, w, im2col.run(spec, x, w, budget_bytes=300_000))


def test_im2col_default_budget_is_module_level(monkeypatch):
    spec = ConvSpec(in_shape=(6, 7), kernel_shape=(3, 3), pad_lo=1, pad_hi=1, batch=3)
    rng = np.random.default_rng(2)
    x = _rand(rng, spec.x_shape, spec.dtype)
    w = _rand(rng, spec.w_shape, spec.dtype)
    monkeypatch.setattr(im2col, "COLUMN_BUDGET_BYTES", 3 * 8 * 9)
    check(spec, x, w, im2col.run(spec, x, w))


@st.composite
def _specs(draw, max_nd=3, dtypes=ALL_DTYPES):
    nd = draw(st.integers(1, max_nd))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    dil = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    lo = tuple(draw(st.integers(0, 5)) for _ in range(nd))
    hi = tuple(draw(st.integers(0, 5)) for _ in range(nd))
    ins = []
    for a in range(nd):
        reach = dil[a] * (kernel[a] - 1) + 1
        ins.append(draw(st.integers(max(1, reach - lo[a] - hi[a]), reach + 6)))
    groups = draw(st.integers(1, 2))
    return ConvSpec(
        in_shape=tuple(ins),
        kernel_shape=kernel,
        stride=stride,
        dilation=dil,
        pad_lo=lo,
        pad_hi=hi,
        batch=draw(st.integers(1, 2)),
        groups=groups,
        c_in=groups * draw(st.integers(1, 2)),
        c_out=groups * draw(st.integers(1, 2)),
        flip=draw(st.booleans()),
        dtype=draw(st.sampled_from(dtypes)),
    )


@settings(max_examples=60, deadline=None)
@given(
    spec=_specs(max_nd=4),
    budget=st.sampled_from([None, 1, 37, 500]),
    seed=st.integers(0, 2**32 - 1),
)
def test_im2col_hypothesis(spec, budget, seed):
    rng = np.random.default_rng(seed)
    x = _rand(rng, spec.x_shape, spec.dtype)
    w = _rand(rng, spec.w_shape, spec.dtype)
    check(spec, x, w, im2col.run(spec, x, w, budget_bytes=budget))


# --------------------------------------------------------------------------------------------
# separable

SEP_CASES = [
    dict(in_shape=(12, 13), kernel_shape=(3, 5), pad_lo=(1, 2), pad_hi=(1, 2), flip=True),
    dict(in_shape=(12, 13), kernel_shape=(4, 2), pad_lo=(2, 0), pad_hi=(1, 1)),  # even kernels
    dict(
        in_shape=(10, 11),
        kernel_shape=(3, 3),
        stride=(2, 3),
        dilation=(2, 1),
        pad_lo=(0, 4),
        pad_hi=(5, 0),
        batch=2,
    ),
    dict(in_shape=(3, 4), kernel_shape=(6, 7), pad_lo=(4, 3), pad_hi=(2, 5), flip=True),
    dict(in_shape=(9, 8), kernel_shape=(1, 5), pad_lo=(0, 2), pad_hi=(0, 2)),
    dict(in_shape=(9, 8), kernel_shape=(5, 1), stride=(1, 2), pad_lo=(8, 0), pad_hi=(7, 9)),
    dict(
        in_shape=(9, 10),
        kernel_shape=(3, 3),
        pad_lo=1,
        pad_hi=1,
        batch=2,
        c_in=3,
        c_out=3,
        groups=3,
        flip=True,
    ),  # depthwise
    dict(
        in_shape=(9, 10),
        kernel_shape=(3, 2),
        pad_lo=1,
        pad_hi=(1, 0),
        batch=2,
        c_in=2,
        c_out=4,
        groups=2,
    ),  # depthwise, multiplier 2
    dict(
        in_shape=(7, 8),
        kernel_shape=(3, 3),
        stride=2,
        pad_lo=1,
        pad_hi=2,
        batch=2,
        c_in=4,
        c_out=6,
        groups=2,
    ),  # channel mixing within groups
    dict(in_shape=(6, 7, 8), kernel_shape=(3, 2, 4), pad_lo=(1, 0, 2), pad_hi=(1, 1, 1), flip=True),
    dict(
        in_shape=(6, 7, 8),
        kernel_shape=(2, 3, 3),
        stride=(2, 1, 3),
        dilation=(1, 2, 1),
        pad_lo=(0, 3, 1),
        pad_hi=(4, 0, 2),
        batch=2,
        c_in=2,
        c_out=2,
    ),
    dict(
        in_shape=(2, 3, 4),
        kernel_shape=(4, 5, 1),
        pad_lo=(2, 3, 0),
        pad_hi=(3, 2, 0),
        c_in=2,
        c_out=2,
        groups=2,
    ),
    dict(
        in_shape=(3, 4, 3, 5),
        kernel_shape=(2, 1, 3, 2),
        stride=(1, 2, 1, 2),
        pad_lo=(1, 0, 1, 0),
        pad_hi=(0, 0, 2, 1),
        flip=True,
    ),
]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", SEP_CASES, ids=_case_id)
def test_separable_matches_reference(case, dtype):
    spec = ConvSpec(**case, dtype=dtype)
    assert separable.supports(spec) is None
    rng = np.random.default_rng(100 + SEP_CASES.index(case))
    x = _rand(rng, spec.x_shape, dtype)
    w = _rank1_kernel(rng, spec)
    assert separable.is_separable(w)
    # the factorisation adds ~eps * ||w||_F per tap on top of the passes' rounding
    check(spec, x, w, separable.run(spec, x, w), slack=8.0, per_element=False)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_separable_noncontiguous(dtype):
    spec = ConvSpec(
        in_shape=(7, 9),
        kernel_shape=(3, 4),
        stride=(1, 2),
        pad_lo=(1, 2),
        pad_hi=(2, 0),
        batch=2,
        c_in=2,
        c_out=2,
        groups=2,
        dtype=dtype,
        flip=True,
    )
    rng = np.random.default_rng(4)
    x = _rand(rng, (2, 2, 14, 9), dtype)[:, :, ::2]
    w = np.asfortranarray(_rank1_kernel(rng, spec))
    check(spec, x, w, separable.run(spec, x, w), slack=8.0, per_element=False)
    xf = np.asfortranarray(x)
    check(spec, xf, w, separable.run(spec, xf, w), slack=8.0, per_element=False)


@settings(max_examples=40, deadline=None)
@given(spec=_specs(max_nd=3, dtypes=FLOAT_DTYPES), seed=st.integers(0, 2**32 - 1))
def test_separable_hypothesis(spec, seed):
    if spec.ndim < 2:
        assert separable.supports(spec) is not None
        return
    rng = np.random.default_rng(seed)
    x = _rand(rng, spec.x_shape, spec.dtype)
    w = _rank1_kernel(rng, spec)
    check(spec, x, w, separable.run(spec, x, w), slack=8.0, per_element=False)


def test_separable_supports_reasons():
    assert "int64" in separable.supports(
        ConvSpec(in_shape=(5, 5), kernel_shape=(3, 3), dtype=np.int64)
    )
    assert separable.supports(ConvSpec(in_shape=(5,), kernel_shape=(3,))) is not None
    assert separable.supports(ConvSpec(in_shape=(5, 5), kernel_shape=(3, 3))) is None


def test_separable_rejects_rank2_kernel():
    spec = ConvSpec(in_shape=(6, 6), kernel_shape=(3, 3), c_in=2, c_out=1)
    rng = np.random.default_rng(6)
    w = _rank1_kernel(rng, spec)
    w[0, 1] += np.outer(rng.standard_normal(3), rng.standard_normal(3))
    assert not separable.is_separable(w)
    with pytest.raises(ValueError, match="rank 1"):
        separable.run(spec, _rand(rng, spec.x_shape, spec.dtype), w)


def test_separable_zero_kernel():
    spec = ConvSpec(in_shape=(6, 6), kernel_shape=(3, 2), pad_lo=1, pad_hi=1)
    x = np.ones(spec.x_shape)
    w = np.zeros(spec.w_shape)
    y = separable.run(spec, x, w)
    assert np.all(y == 0)


# --------------------------------------------------------------------------------------------
# factor()


def _outer(vecs):
    t = np.ones(())
    for v in vecs:
        t = np.multiply.outer(t, v)
    return t


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(
    "shape", [(5, 7), (4, 4), (1, 6), (6, 1), (1, 1), (3, 4, 5), (1, 5, 1), (2, 3, 2, 3), (7,)]
)
def test_factor_detects_rank1(shape, dtype):
    rng = np.random.default_rng(sum(shape))
    vecs = [_rand(rng, (k,), dtype) for k in shape]
    w = _outer(vecs).astype(dtype)
    fs = separable.factor(w)
    assert fs is not None
    assert [f.shape for f in fs] == [(k,) for k in shape]
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(_outer(fs), w, rtol=0, atol=16 * eps * np.linalg.norm(w))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_factor_rejects_rank2(dtype):
    rng = np.random.default_rng(9)
    r = lambda k: _rand(rng, (k,), dtype)  # noqa: E731
    assert separable.factor((_outer([r(4), r(5)]) + _outer([r(4), r(5)])).astype(dtype)) is None
    # 3-D: mode-0 unfolding has rank 1, the others rank 2
    a = r(3)
    t = (_outer([a, r(4), r(5)]) + _outer([a, r(4), r(5)])).astype(dtype)
    assert np.linalg.matrix_rank(t.reshape(3, -1)) == 1
    assert separable.factor(t) is None
    # a perturbation far above rounding is rejected, one at rounding level accepted
    w = _outer([r(5), r(5)]).astype(dtype)
    bump = np.zeros_like(w)
    bump[2, 3] = 1e-3 * np.abs(w).max()
    assert separable.factor(w + bump) is None
    assert separable.factor(w + bump, rtol=1e-2) is not None


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_cheap_rank1_test_never_contradicts_the_svd(dtype):
    """Rank-1 matrices plus noise from far below to far above the SVD test's threshold: where
    the O(size) test decides, it decides as the SVD does."""
    rng = np.random.default_rng(5)
    decided = 0
    for _ in range(60):
        k, n = rng.integers(24, 90, size=2)
        m = _outer([_rand(rng, (k,), dtype), _rand(rng, (n,), dtype)])
        rtol = separable._default_rtol(np.dtype(dtype), m.shape)
        noise = _rand(rng, m.shape, dtype)
        s1 = np.linalg.norm(m, 2)
        m = m + noise * (10 ** rng.uniform(-3, 2) * rtol * s1 / np.linalg.norm(noise, 2))
        m = m.astype(dtype).astype(np.complex128 if np.dtype(dtype).kind == "c" else np.float64)
        sv = np.linalg.svd(m, compute_uv=False)
        ok, u = separable._cheap_rank1(m, rtol)
        if ok is not None:
            decided += 1
            assert ok == (sv[1] <= rtol * sv[0])
        if ok:
            assert abs(np.linalg.norm(u) - 1) < 1e-12
    assert decided >= 30  # the test is worth having: it settles most of them


@pytest.mark.parametrize("scale", [1e-160, 1.0, 1e150])
def test_cheap_rank1_test_is_scale_free(scale):
    """Far from 1 the norms' squares under- or overflow; the test must decide as at 1."""
    rng = np.random.default_rng(8)
    m = np.outer(rng.standard_normal(40), rng.standard_normal(50))
    rtol = separable._default_rtol(np.dtype(np.float64), m.shape)
    noise = rng.standard_normal(m.shape)
    m = m + noise * (10 * rtol * np.linalg.norm(m, 2) / np.linalg.norm(noise, 2))  # not rank 1
    assert separable._cheap_rank1(m * scale, rtol)[0] is not True
    assert separable.factor(m * scale) is None


def test_factor_of_a_big_kernel_takes_no_svd(monkeypatch):
    """A 512x512 kernel's SVD costs ~0.1 s at every dispatch: full-rank kernels are refused and
    rank-1 kernels factored without one."""
    rng = np.random.default_rng(3)
    u, v = rng.standard_normal(512), rng.standard_normal(300)
    full_rank = rng.standard_normal((512, 300))
    svd = np.linalg.svd

    def small_svd_only(a, *args, **kw):
        assert min(a.shape[-2:]) <= 2, f"an SVD of shape {a.shape}"
        return svd(a, *args, **kw)

    monkeypatch.setattr(np.linalg, "svd", small_svd_only)
    assert separable.factor(full_rank) is None
    fs = separable.factor(np.outer(u, v))
    np.testing.assert_allclose(np.outer(*fs), np.outer(u, v), rtol=0, atol=1e-13 * abs(u).max())
    w = _outer([u[:40], v[:30], u[40:70]])  # 3-D: every unfolding at least 24 on both sides
    fs = separable.factor(w)
    np.testing.assert_allclose(_outer(fs), w, rtol=0, atol=1e-12 * np.abs(w).max())


def test_factor_zero_and_nonfinite():
    fs = separable.factor(np.zeros((3, 4)))
    assert fs is not None and np.all(_outer(fs) == 0)
    bad = np.ones((3, 3))
    bad[1, 1] = np.nan
    assert separable.factor(bad) is None


def test_factor_complex_uses_complex_svd():
    rng = np.random.default_rng(11)
    u = rng.standard_normal(4) + 1j * rng.standard_normal(4)
    v = rng.standard_normal(5) + 1j * rng.standard_normal(5)
    w = np.outer(u, v)
    fs = separable.factor(w)
    assert fs is not None
    np.testing.assert_allclose(np.outer(*fs), w, atol=1e-13 * np.abs(w).max())
    # the real part alone is rank 2: a complex rank-1 kernel needs the complex SVD
    assert separable.factor(w.real) is None


def test_kernel_verdicts_are_remembered_by_their_bytes(monkeypatch):
    """'auto' asks at every call: a small kernel's SVDs run once, and a kernel changed in place
    (same object, same shape) is judged again."""
    rng = np.random.default_rng(13)
    spec = ConvSpec(in_shape=(16, 16), kernel_shape=(3, 4))
    w = np.outer(rng.standard_normal(3), rng.standard_normal(4))[None, None].copy()
    calls = []
    real = separable.factor
    monkeypatch.setattr(separable, "factor", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(separable, "_VERDICTS", {})
    assert separable.supports_kernel(spec, w) is None
    assert separable.supports_kernel(spec, w.copy()) is None
    assert len(calls) == 1
    w[0, 0, 1, 2] += 1.0  # now rank 2
    assert "not rank 1" in separable.supports_kernel(spec, w)
    assert separable.supports_kernel(spec, w[:, :, ::-1, ::-1]) is not None  # a view, copied
    assert separable.supports_kernel(spec, w.astype(np.float32)) is not None
    assert len(calls) == 4
    big = np.ones((1, 1, 64, 64))  # above MEMO_MAX_BYTES: judged at every call
    separable.supports_kernel(ConvSpec(in_shape=(64, 64), kernel_shape=(64, 64)), big)
    separable.supports_kernel(ConvSpec(in_shape=(64, 64), kernel_shape=(64, 64)), big)
    assert len(calls) == 6 and len(separable._VERDICTS) == 4
    monkeypatch.setattr(separable, "MEMO_MAX_ENTRIES", 4)
    separable.supports_kernel(spec, np.ones((1, 1, 3, 4)))  # full: the table starts over
    assert len(separable._VERDICTS) == 1


def test_is_separable():
    rng = np.random.default_rng(12)
    w = np.stack([np.outer(rng.standard_normal(3), rng.standard_normal(3)) for _ in range(4)])
    assert separable.is_separable(w.reshape(2, 2, 3, 3))
    assert separable.is_separable(w[:1, None])
    assert not separable.is_separable(rng.standard_normal((1, 1, 3, 3)))
    assert not separable.is_separable(np.ones((1, 1, 3, 3), dtype=np.int64))
