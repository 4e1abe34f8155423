"""The backward ops: dispatch's backward_data / backward_weight for every registered algorithm,
and gpuconv.nn.conv*_input / conv*_weight, against the tap-loop reference, by finite differences,
by the adjoint identity, against torch.nn.grad when importable, and every error case."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gpuconv import dispatch, nn
from gpuconv._spec import ConvSpec

from .test_nn import ALGORITHMS, check, rand, ref_ops, skip_if_unsupported, tolerance

SPECS = [
    dict(in_shape=(23,), kernel_shape=(4,), pad_lo=3, pad_hi=2, flip=True),
    dict(in_shape=(33,), kernel_shape=(5,), stride=2, dilation=3, pad_lo=4, pad_hi=7),
    dict(in_shape=(20,), kernel_shape=(3,), batch=2, c_in=4, c_out=6, groups=2, pad_lo=1, pad_hi=1),
    dict(in_shape=(7,), kernel_shape=(3,), stride=3, pad_lo=5, pad_hi=0, c_in=2, c_out=3),
    dict(in_shape=(7,), kernel_shape=(9,), pad_lo=8, pad_hi=8, flip=True),
    dict(in_shape=(5,), kernel_shape=(1,), stride=10, pad_lo=5, pad_hi=0),  # reads only padding
    dict(
        in_shape=(13, 12),
        kernel_shape=(4, 3),
        pad_lo=(2, 1),
        pad_hi=(1, 3),
        batch=2,
        c_in=3,
        c_out=2,
    ),  # fmt: skip
    dict(
        in_shape=(19, 13),
        kernel_shape=(3, 2),
        stride=(2, 3),
        dilation=(2, 1),
        pad_lo=2,
        pad_hi=0,
        c_in=2,
        c_out=4,
        groups=2,
    ),  # fmt: skip
    dict(
        in_shape=(12, 11),
        kernel_shape=(3, 3),
        batch=3,
        c_in=4,
        c_out=4,
        groups=4,
        pad_lo=1,
        pad_hi=1,
    ),  # depthwise  # fmt: skip
    dict(
        in_shape=(12, 12),
        kernel_shape=(3, 3),
        batch=2,
        c_in=3,
        c_out=6,
        groups=3,
        pad_lo=1,
        pad_hi=2,
        stride=2,
        flip=True,
    ),  # depthwise, multiplier 2, strided  # fmt: skip
    dict(in_shape=(10, 11), kernel_shape=(1, 1), stride=3, pad_lo=5, pad_hi=0, c_in=2, c_out=3),
    dict(in_shape=(7, 6, 5), kernel_shape=(3, 2, 3), pad_lo=1, pad_hi=(1, 0, 1), flip=True),
    dict(
        in_shape=(8, 9, 10), kernel_shape=(2, 3, 3), stride=2, dilation=(1, 2, 1), c_in=2, c_out=2
    ),
]
OPS = ("backward_data", "backward_weight")
DTYPES = [np.float32, np.float64, np.complex128, np.int64]


def _id(kw):
    return ",".join(f"{k}={v}" for k, v in kw.items())


def _operands(spec, rng):
    if spec.dtype.kind == "i":
        mk = lambda s: rng.integers(-6, 7, size=s).astype(np.int64)  # noqa: E731
    else:
        mk = lambda s: rand(rng, s, spec.dtype)  # noqa: E731
    return mk(spec.x_shape), mk(spec.w_shape), mk(spec.y_shape)


def _op_tol(spec, op, x, w, dy):
    if op == "backward_data":
        return tolerance(spec.dtype, dy, w, n_terms=spec.c_out * math.prod(spec.kernel_shape))
    return tolerance(spec.dtype, x, dy, n_terms=spec.batch * math.prod(spec.out_shape))


@pytest.mark.parametrize("kw", SPECS, ids=_id)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("name", ALGORITHMS)
def test_backward_ops_match_reference(name, op, dtype, kw, rng):
    spec = ConvSpec(dtype=dtype, **kw)
    x, w, dy = _operands(spec, rng)
    a, b = (dy, w) if op == "backward_data" else (x, dy)
    alg = dispatch.get_algorithm(name)
    if dtype == np.int64 and not alg.exact:
        pytest.skip(f"{name} rounds; int64 results are exact only for exact algorithms")
    reason = alg.supports(spec, b, op)
    if reason is not None:
        pytest.skip(f"{name}: {reason}")
    out = alg.run(spec, a, b, op)
    _, dx, dw = ref_ops(spec, x=x if op == "backward_weight" else None, w=w, dy=dy)
    ref = dx if op == "backward_data" else dw
    if dtype == np.int64:
        assert out.dtype == np.int64
        np.testing.assert_array_equal(out, ref.real.astype(np.int64))
    else:
        check(out, ref, dtype, _op_tol(spec, op, x, w, dy))


@pytest.mark.parametrize("kw", SPECS, ids=_id)
@pytest.mark.parametrize("name", ALGORITHMS)
def test_adjoint_identity(name, kw, rng):
    """<conv(x, w), dy> == <x, backward_data(dy, w)> == <w, backward_weight(x, dy)>."""
    spec = ConvSpec(dtype=np.float64, **kw)
    x, w, dy = _operands(spec, rng)
    alg = dispatch.get_algorithm(name)
    lhs = np.vdot(ref_ops(spec, x=x, w=w)[0].real, dy)
    scale = float(np.abs(x).sum() * np.abs(w).max() * np.abs(dy).max() + 1)
    done = 0
    for op, a, b, other in (("backward_data", dy, w, x), ("backward_weight", x, dy, w)):
        if alg.supports(spec, b, op) is None:
            assert abs(np.vdot(other, alg.run(spec, a, b, op)) - lhs) <= 1e-12 * scale
            done += 1
    if not done:
        pytest.skip(f"{name} does neither backward op here")


def test_backward_weight_by_finite_differences(rng):
    """The loss <conv(x, w), dy> is linear, so central differences are exact up to rounding."""
    x = rng.standard_normal((2, 4, 7, 6))
    w = rng.standard_normal((6, 2, 3, 2))
    kw = dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)
    dy = rng.standard_normal(nn.conv2d(x, w, **kw).shape)

    def loss(xx, ww):
        return float(np.vdot(nn.conv2d(xx, ww, **kw), dy))

    h = 1e-3
    gw = nn.conv2d_weight(x, w.shape, dy, **kw)
    gx = nn.conv2d_input(x.shape, w, dy, **kw)
    for idx in [(0, 0, 0, 0), (5, 1, 2, 1), (3, 0, 1, 0), (2, 1, 0, 1)]:
        e = np.zeros_like(w)
        e[idx] = h
        fd = (loss(x, w + e) - loss(x, w - e)) / (2 * h)
        assert abs(fd - gw[idx]) < 1e-8 * (1 + abs(fd))
    for idx in [(0, 0, 0, 0), (1, 3, 6, 5), (0, 2, 3, 1), (1, 1, 6, 0)]:
        e = np.zeros_like(x)
        e[idx] = h
        fd = (loss(x + e, w) - loss(x - e, w)) / (2 * h)
        assert abs(fd - gx[idx]) < 1e-8 * (1 + abs(fd))


def test_full_finite_difference_gradient_1d(rng):
    x = rng.standard_normal((1, 2, 9))
    w = rng.standard_normal((2, 2, 3))
    kw = dict(stride=2, padding=2, dilation=2)
    dy = rng.standard_normal(nn.conv1d(x, w, **kw).shape)
    gx = nn.conv1d_input(x.shape, w, dy, **kw)
    gw = nn.conv1d_weight(x, w.shape, dy, **kw)
    h = 1e-4
    for arr, g, which in ((x, gx, "x"), (w, gw, "w")):
        fd = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            e = np.zeros_like(arr)
            e[idx] = h
            xp, wp = (x + e, w) if which == "x" else (x, w + e)
            xm, wm = (x - e, w) if which == "x" else (x, w - e)
            fd[idx] = (
                np.vdot(nn.conv1d(xp, wp, **kw), dy) - np.vdot(nn.conv1d(xm, wm, **kw), dy)
            ) / (2 * h)
        np.testing.assert_allclose(g, fd, atol=1e-8)


# --------------------------------------------------------------------------------------------
# nn.conv*_input / conv*_weight against the reference, over the algorithms

# (nd, N, C_in, C_out, spatial, kernel, kwargs)
GRAD_CASES = [
    (1, 2, 4, 6, (19,), (3,), dict(stride=2, padding=1, dilation=2, groups=2)),
    (1, None, 2, 3, (10,), (4,), dict(padding="same")),
    (2, 2, 3, 4, (9, 10), (3, 3), dict(stride=2, padding=(1, 0))),  # 10 - 3 odd: unread tail
    (2, 3, 4, 4, (8, 9), (3, 3), dict(padding=1, groups=4)),  # depthwise
    (2, 1, 2, 2, (7, 7), (2, 3), dict(padding="valid", dilation=(2, 1))),
    (3, 1, 2, 4, (5, 6, 5), (2, 3, 2), dict(stride=(1, 2, 1), padding=1, groups=2)),
]
INPUT = {1: nn.conv1d_input, 2: nn.conv2d_input, 3: nn.conv3d_input}
WEIGHT = {1: nn.conv1d_weight, 2: nn.conv2d_weight, 3: nn.conv3d_weight}
CONV = {1: nn.conv1d, 2: nn.conv2d, 3: nn.conv3d}


def _grad_setup(case, dtype, rng):
    nd, n, cin, cout, sp, k, kw = case
    g = kw.get("groups", 1)
    x = rand(rng, ((n,) if n else ()) + (cin,) + sp, dtype)
    w = rand(rng, (cout, cin // g) + k, dtype)
    y = CONV[nd](x, w, **kw)
    dy = rand(rng, y.shape, dtype)
    # the canonical spec, padding resolved as torch does
    from .test_nn import resolve_padding

    lo, hi = resolve_padding(kw.get("padding", 0), k, kw.get("dilation", 1), nd)
    s = kw.get("stride", 1)
    d = kw.get("dilation", 1)
    spec = ConvSpec(in_shape=sp, kernel_shape=k, batch=n or 1, c_in=cin, c_out=cout, groups=g,
                    stride=s, dilation=d, pad_lo=lo, pad_hi=hi, dtype=dtype)  # fmt: skip
    return x, w, dy, spec


def _cid(case):
    return f"{case[0]}d-" + ",".join(f"{a}={b}" for a, b in case[6].items())


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", GRAD_CASES, ids=_cid)
@pytest.mark.parametrize("name", ["auto", *ALGORITHMS])
def test_conv_input_and_weight(name, case, dtype, rng):
    nd, n, *_, kw = case
    x, w, dy, spec = _grad_setup(case, dtype, rng)
    xb, dyb = (x, dy) if n else (x[None], dy[None])
    _, dx_ref, dw_ref = ref_ops(spec, x=xb, w=w, dy=dyb)
    if not n:
        dx_ref = dx_ref[0]
    dx = skip_if_unsupported(INPUT[nd], x.shape, w, dy, algorithm=name, **kw)
    check(dx, dx_ref, dtype, _op_tol(spec, "backward_data", xb, w, dyb))
    dw = skip_if_unsupported(WEIGHT[nd], x, w.shape, dy, algorithm=name, **kw)
    check(dw, dw_ref, dtype, _op_tol(spec, "backward_weight", xb, w, dyb))


def test_conv_transpose_is_the_input_gradient(rng):
    """conv_transpose2d(dy, w) == conv2d_input(x.shape, w, dy) when the sizes line up."""
    x = rng.standard_normal((2, 4, 11, 10))
    w = rng.standard_normal((6, 2, 3, 3))
    kw = dict(stride=2, padding=1, groups=2)
    dy = rng.standard_normal(nn.conv2d(x, w, **kw).shape)
    dx = nn.conv2d_input(x.shape, w, dy, **kw)
    t = nn.conv_transpose2d(dy, w, stride=2, padding=1, output_padding=(0, 1), groups=2)
    np.testing.assert_allclose(dx, t, atol=1e-12)


# --------------------------------------------------------------------------------------------
# the dispatcher's view of the ops


def test_plan_shows_op_and_reasons():
    spec = ConvSpec(in_shape=(32, 32), kernel_shape=(3, 3), stride=2, pad_lo=1, pad_hi=1,
                    c_in=4, c_out=8, dtype=np.float32)  # fmt: skip
    p = dispatch.choose(spec, op="backward_data")
    text = repr(p)
    assert p.op == "backward_data" and "backward_data" in text
    for name in ALGORITHMS:
        assert name in text
    assert p.algorithm in ("direct", "im2col")
    fft = next(c for c in p.candidates if c.name == "fft")
    assert fft.seconds is None and "stride" in fft.reason
    pw = dispatch.choose(spec, op="backward_weight")
    assert "backward_weight" in repr(pw) and pw.estimates
    assert dispatch.choose(spec).op == "forward"
    with pytest.raises(ValueError, match="op"):
        dispatch.choose(spec, op="backward")


def test_execute_checks_operands_per_op(rng):
    spec = ConvSpec(in_shape=(8,), kernel_shape=(3,), c_in=2, c_out=3)
    x = rng.standard_normal(spec.x_shape)
    w = rng.standard_normal(spec.w_shape)
    dy = rng.standard_normal(spec.y_shape)
    with pytest.raises(ValueError, match="dy"):
        dispatch.execute(spec, x, w, op="backward_data")
    with pytest.raises(ValueError, match="dy"):
        dispatch.execute(spec, x, w, op="backward_weight")
    with pytest.raises(ValueError, match="cannot do backward_data"):
        dispatch.execute(
            ConvSpec(in_shape=(9,), kernel_shape=(3,), stride=2),
            np.ones((1, 1, 4)), np.ones((1, 1, 3)), "fft", op="backward_data",
        )  # fmt: skip
    assert dispatch.execute(spec, dy, w, op="backward_data").shape == spec.x_shape
    assert dispatch.execute(spec, x, dy, op="backward_weight").shape == spec.w_shape
    times = dispatch.measure(spec, x, dy, names=["direct", "im2col"], repeat=1,
                             op="backward_weight")  # fmt: skip
    assert set(times) == {"direct", "im2col"}


def test_backward_cost_estimates_exist_for_every_supporting_algorithm():
    spec = ConvSpec(in_shape=(64, 64), kernel_shape=(3, 3), batch=4, c_in=8, c_out=8,
                    pad_lo=1, pad_hi=1, dtype=np.float32)  # fmt: skip
    for op in OPS:
        p = dispatch.choose(spec, op=op)
        assert all(t > 0 for t in p.estimates.values())
        assert {"direct", "im2col", "fft"} <= set(p.estimates)


# --------------------------------------------------------------------------------------------
# errors


def test_gradient_errors(rng):
    x = rng.standard_normal((2, 4, 9, 9))
    w = rng.standard_normal((6, 2, 3, 3))
    dy = rng.standard_normal((2, 6, 4, 4))  # stride 2, no padding
    assert nn.conv2d_input(x.shape, w, dy, stride=2, groups=2).shape == x.shape
    with pytest.raises(ValueError, match=r"grad_output has shape \(2, 6, 4, 4\).*\(2, 6, 7, 7\)"):
        nn.conv2d_input(x.shape, w, dy, groups=2)
    with pytest.raises(ValueError, match=r"grad_output.*\(2, 6, 4, 4\)"):
        nn.conv2d_weight(x, w.shape, dy, stride=1, groups=2)
    with pytest.raises(ValueError, match="input_size"):
        nn.conv2d_input((2, 4, 9), w, dy, stride=2, groups=2)
    with pytest.raises(ValueError, match=r"groups \(3\)"):
        nn.conv2d_input(x.shape, w, dy, stride=2, groups=3)
    with pytest.raises(ValueError, match="expects 4 input channels"):
        nn.conv2d_input((2, 6, 9, 9), w, dy, stride=2, groups=2)
    with pytest.raises(ValueError, match="weight"):
        nn.conv2d_weight(x, (6, 2, 3), dy, stride=2, groups=2)
    with pytest.raises(ValueError, match="negative"):
        nn.conv2d_weight(x, (6, 2, -3, 3), dy, stride=2, groups=2)
    with pytest.raises(TypeError, match="weight_size"):
        nn.conv2d_weight(x, 6, dy, stride=2, groups=2)
    with pytest.raises(ValueError, match="stride"):
        nn.conv2d_input(x.shape, w, dy, stride=0, groups=2)
    with pytest.raises(ValueError, match="unbatched"):
        nn.conv2d_input((4, 9, 9), w, dy, stride=2, groups=2)
    with pytest.raises(ValueError, match="unbatched"):
        nn.conv2d_weight(x[0], w.shape, dy, stride=2, groups=2)
    # unbatched gradients mirror the batched ones
    dx1 = nn.conv2d_input((4, 9, 9), w, dy[0], stride=2, groups=2)
    np.testing.assert_allclose(dx1, nn.conv2d_input((1, 4, 9, 9), w, dy[:1], stride=2, groups=2)[0])
    dw1 = nn.conv2d_weight(x[0], w.shape, dy[0], stride=2, groups=2)
    np.testing.assert_allclose(dw1, nn.conv2d_weight(x[:1], w.shape, dy[:1], stride=2, groups=2))


# --------------------------------------------------------------------------------------------
# torch.nn.grad as a second oracle


@pytest.mark.parametrize("seed", range(12))
def test_gradients_against_torch(seed):
    torch = pytest.importorskip("torch")
    from torch.nn import grad as tgrad

    rng = np.random.default_rng(1000 + seed)
    nd = 1 + seed % 3
    g = int(rng.choice([1, 2]))
    cin, cout = g * int(rng.integers(1, 3)), g * int(rng.integers(1, 3))
    k = tuple(int(v) for v in rng.integers(1, 4, nd))
    s = tuple(int(v) for v in rng.integers(1, 3, nd))
    d = tuple(int(v) for v in rng.integers(1, 3, nd))
    p = tuple(int(v) for v in rng.integers(0, 3, nd))
    sp = tuple(int(v) + dd * (kk - 1) + 1 for v, dd, kk in zip(rng.integers(1, 7, nd), d, k))
    x = rng.standard_normal((2, cin) + sp)
    w = rng.standard_normal((cout, cin // g) + k)
    dy = rng.standard_normal(CONV[nd](x, w, None, s, p, d, g).shape)
    t = torch.from_numpy
    gi = getattr(tgrad, f"conv{nd}d_input")(x.shape, t(w), t(dy), s, p, d, g).numpy()
    gw = getattr(tgrad, f"conv{nd}d_weight")(t(x), w.shape, t(dy), s, p, d, g).numpy()
    np.testing.assert_allclose(INPUT[nd](x.shape, w, dy, s, p, d, g), gi, atol=1e-10)
    np.testing.assert_allclose(WEIGHT[nd](x, w.shape, dy, s, p, d, g), gw, atol=1e-10)
