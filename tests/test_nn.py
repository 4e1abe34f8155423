"""gpuconv.nn: conv1d/2d/3d and conv_transpose1d/2d/3d against a plain float64 reference, over
every registered algorithm, against torch when it is importable, and every error case.

The references here are written independently of the library: the forward one loops over the
kernel taps with strided slices of the padded input (:func:`ref_ops`, shared with
tests/test_nn_grad.py), the transposed one scatters every input sample's taps into the output.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import gpuconv
from gpuconv import dispatch, nn
from gpuconv._spec import ConvSpec

from .conftest import EPS

ALGORITHMS = dispatch.algorithm_names()
NP_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


# --------------------------------------------------------------------------------------------
# references (float64 / complex128)


def ref_ops(spec: ConvSpec, x=None, w=None, dy=None):
    """(y, dx, dw) of the canonical problem by a loop over taps; each needs its two operands."""
    g = spec.groups
    cig, cog = spec.c_in // g, spec.c_out // g
    wide = np.complex128
    wt = None if w is None else np.asarray(spec.kernel_for_correlation(np.asarray(w)), wide)
    pads = ((0, 0), (0, 0)) + tuple(zip(spec.pad_lo, spec.pad_hi))
    xp = None if x is None else np.pad(np.asarray(x, wide), pads)
    dy = None if dy is None else np.asarray(dy, wide)
    y = np.zeros(spec.y_shape, wide)
    dxp = np.zeros((spec.batch, spec.c_in) + spec.padded_shape, wide)
    dwt = np.zeros(spec.w_shape, wide)
    for j in itertools.product(*(range(k) for k in spec.kernel_shape)):
        sl = tuple(
            slice(a * d, a * d + s * (o - 1) + 1, s)
            for a, d, s, o in zip(j, spec.dilation, spec.stride, spec.out_shape)
        )
        for gi in range(g):
            ci = slice(gi * cig, (gi + 1) * cig)
            co = slice(gi * cog, (gi + 1) * cog)
            tap = (co, slice(None)) + j
            if xp is not None and wt is not None:
                win = xp[(slice(None), ci) + sl].reshape(spec.batch, cig, -1)
                y[:, co] += np.einsum("ncp,oc->nop", win, wt[tap]).reshape(y[:, co].shape)
            if dy is not None and wt is not None:
                d = dy[:, co].reshape(spec.batch, cog, -1)
                dxp[(slice(None), ci) + sl] += np.einsum("nop,oc->ncp", d, wt[tap]).reshape(
                    dxp[(slice(None), ci) + sl].shape
                )
            if xp is not None and dy is not None:
                win = xp[(slice(None), ci) + sl].reshape(spec.batch, cig, -1)
                d = dy[:, co].reshape(spec.batch, cog, -1)
                dwt[tap] += np.einsum("ncp,nop->oc", win, d)
    crop = (slice(None), slice(None)) + tuple(
        slice(lo, lo + n) for lo, n in zip(spec.pad_lo, spec.in_shape)
    )
    return y, dxp[crop], np.asarray(spec.kernel_for_correlation(dwt))


def resolve_padding(padding, k, dilation, nd):
    """torch's padding argument as (lo, hi) tuples (written from torch's documentation)."""
    if padding == "valid":
        return (0,) * nd, (0,) * nd
    d = (dilation,) * nd if isinstance(dilation, int) else tuple(dilation)
    if padding == "same":
        total = [di * (ki - 1) for di, ki in zip(d, k)]
        return tuple(t // 2 for t in total), tuple(t - t // 2 for t in total)
    p = (padding,) * nd if isinstance(padding, int) else tuple(padding)
    return p, p


def _tup(v, nd):
    return (v,) * nd if isinstance(v, int) else tuple(v)


def ref_conv(x, w, bias, stride, padding, dilation, groups, padding_mode="zeros"):
    x = np.asarray(x)
    unbatched = x.ndim == w.ndim - 1
    if unbatched:
        x = x[None]
    nd = w.ndim - 2
    lo, hi = resolve_padding(padding, w.shape[2:], dilation, nd)
    if padding_mode != "zeros":
        x = np.pad(x, ((0, 0), (0, 0)) + tuple(zip(lo, hi)), mode=NP_MODE[padding_mode])
        lo = hi = (0,) * nd
    spec = ConvSpec(
        in_shape=x.shape[2:], kernel_shape=w.shape[2:], batch=x.shape[0], c_in=x.shape[1],
        c_out=w.shape[0], groups=groups, stride=_tup(stride, nd), dilation=_tup(dilation, nd),
        pad_lo=lo, pad_hi=hi,
    )  # fmt: skip
    y = ref_ops(spec, x=x, w=w)[0]
    if bias is not None:
        y = y + np.asarray(bias).reshape((1, -1) + (1,) * nd)
    return y[0] if unbatched else y


def ref_conv_transpose(x, w, bias, stride, padding, output_padding, groups, dilation):
    """Every input sample scatters ``x * w[:, :, j]`` to ``p*stride + j*dilation - padding``."""
    x = np.asarray(x, np.complex128)
    unbatched = x.ndim == w.ndim - 1
    if unbatched:
        x = x[None]
    nd = w.ndim - 2
    s, p, op, d = (_tup(v, nd) for v in (stride, padding, output_padding, dilation))
    n, cin = x.shape[:2]
    cig = cin // groups
    cog = w.shape[1]
    k = w.shape[2:]
    ins = x.shape[2:]
    out = tuple((i - 1) * si - 2 * pi + di * (ki - 1) + oi + 1 for i, si, pi, di, ki, oi in
                zip(ins, s, p, d, k, op))  # fmt: skip
    full = tuple(
        o + 2 * pi + max(si, di) * 2 + di * ki for o, pi, si, di, ki in zip(out, p, s, d, k)
    )
    buf = np.zeros((n, cog * groups) + full, np.complex128)
    for j in itertools.product(*(range(kk) for kk in k)):
        sl = tuple(slice(ji * di, ji * di + si * (i - 1) + 1, si) for ji, di, si, i in
                   zip(j, d, s, ins))  # fmt: skip
        for gi in range(groups):
            xs = x[:, gi * cig : (gi + 1) * cig].reshape(n, cig, -1)
            contrib = np.einsum(
                "ncp,co->nop", xs, w[(slice(gi * cig, (gi + 1) * cig), slice(None)) + j]
            )
            tgt = buf[(slice(None), slice(gi * cog, (gi + 1) * cog)) + sl]
            tgt += contrib.reshape(tgt.shape)
    y = buf[(slice(None), slice(None)) + tuple(slice(pi, pi + o) for pi, o in zip(p, out))]
    if bias is not None:
        y = y + np.asarray(bias).reshape((1, -1) + (1,) * nd)
    return y[0] if unbatched else y


def tolerance(dtype, a, b, n_terms=None) -> float:
    """Rounding-error bound of sums of products of ``a`` and ``b`` entries (as conftest's
    rounding_atol, with a margin for FFT algorithms and the bias)."""
    dtype = np.dtype(dtype)
    fa = float(np.abs(a).max(initial=0))
    fb = float(np.abs(b).max(initial=0))
    n = n_terms if n_terms is not None else max(np.size(a), np.size(b), 2)
    mag = fa * fb * n
    return 32 * EPS[dtype] * math.log2(n + 1) * mag + 1e-300


def check(actual, expected, dtype, tol):
    actual = np.asarray(actual)
    assert actual.dtype == np.dtype(dtype), (actual.dtype, dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if np.dtype(dtype).kind != "c":
        expected = expected.real
    np.testing.assert_allclose(actual, expected, rtol=0, atol=tol)


def rand(rng, shape, dtype, scale=1.0):
    dtype = np.dtype(dtype)
    a = rng.standard_normal(shape) * scale
    if dtype.kind == "c":
        a = a + 1j * rng.standard_normal(shape) * scale
    return a.astype(dtype)


def skip_if_unsupported(fn, *args, **kwargs):
    """Call ``fn``; an algorithm that cannot do the problem skips the test with its reason."""
    try:
        return fn(*args, **kwargs)
    except ValueError as e:
        if "cannot" in str(e) and "algorithm" in str(e):
            pytest.skip(str(e))
        raise


# --------------------------------------------------------------------------------------------
# forward convolution

# (nd, N, C_in, C_out, spatial, kernel, kwargs)
CONV_CASES = [
    (1, 2, 3, 4, (17,), (3,), dict(padding=1)),
    (1, 1, 4, 6, (20,), (4,), dict(stride=2, padding=(3,), dilation=2, groups=2)),
    (1, 3, 2, 2, (9,), (4,), dict(padding="same")),
    (1, 2, 5, 5, (11,), (3,), dict(padding="same", dilation=3, groups=5)),
    (1, 1, 2, 3, (8,), (8,), dict(padding="valid")),
    (1, None, 3, 2, (13,), (2,), dict(stride=3, padding=2)),
    (1, 2, 2, 4, (10,), (3,), dict(padding=2, padding_mode="reflect")),
    (1, 2, 2, 2, (7,), (5,), dict(padding="same", padding_mode="circular")),
    (2, 2, 3, 4, (9, 11), (3, 3), dict(padding=1)),
    (2, 1, 4, 8, (12, 10), (3, 2), dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)),
    (2, 3, 6, 6, (8, 8), (3, 3), dict(padding=1, groups=6)),  # depthwise
    (2, 2, 4, 8, (9, 7), (3, 3), dict(stride=2, padding=1, groups=4)),  # depthwise, multiplier 2
    (2, 1, 2, 3, (7, 9), (2, 4), dict(padding="same")),
    (2, None, 3, 2, (6, 7), (3, 3), dict(padding="valid", dilation=2)),
    (2, 2, 2, 2, (6, 5), (3, 3), dict(padding=(2, 1), padding_mode="replicate")),
    (2, 1, 2, 2, (5, 6), (3, 2), dict(padding=(1, 2), padding_mode="reflect", stride=2)),
    (2, 1, 2, 2, (5, 6), (3, 3), dict(padding="same", padding_mode="circular")),
    (2, 1, 2, 2, (4, 4), (1, 1), dict(stride=3)),
    (3, 2, 2, 3, (5, 6, 4), (3, 2, 2), dict(padding=1)),
    (3, 1, 4, 4, (6, 5, 7), (3, 3, 3), dict(stride=(1, 2, 2), padding="valid", groups=4)),
    (3, None, 2, 2, (5, 5, 5), (2, 3, 2), dict(padding="same", dilation=(2, 1, 1))),
    (3, 1, 2, 4, (5, 4, 6), (2, 2, 3), dict(padding=1, padding_mode="replicate", groups=2)),
]


def _case_id(case):
    nd, n, cin, cout, sp, k, kw = case
    extra = ",".join(f"{a}={b}" for a, b in kw.items())
    return f"{nd}d-N{n}-{cin}to{cout}-{'x'.join(map(str, sp))}-k{'x'.join(map(str, k))}-{extra}"


def _conv_inputs(case, dtype, rng, bias=True):
    nd, n, cin, cout, sp, k, kw = case
    g = kw.get("groups", 1)
    xshape = ((n,) if n is not None else ()) + (cin,) + sp
    x = rand(rng, xshape, dtype)
    w = rand(rng, (cout, cin // g) + k, dtype)
    b = rand(rng, (cout,), dtype) if bias else None
    return x, w, b


def _conv_tol(dtype, x, w, k):
    return tolerance(dtype, x, w, n_terms=w.shape[1] * math.prod(k) + 1)


CONV = {1: nn.conv1d, 2: nn.conv2d, 3: nn.conv3d}
CONV_T = {1: nn.conv_transpose1d, 2: nn.conv_transpose2d, 3: nn.conv_transpose3d}


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", CONV_CASES, ids=_case_id)
def test_conv_matches_reference(case, dtype, rng):
    nd, _, _, _, _, k, kw = case
    x, w, b = _conv_inputs(case, dtype, rng)
    y = CONV[nd](x, w, b, **kw)
    ref = ref_conv(x, w, b, kw.get("stride", 1), kw.get("padding", 0), kw.get("dilation", 1),
                   kw.get("groups", 1), kw.get("padding_mode", "zeros"))  # fmt: skip
    check(y, ref, dtype, _conv_tol(dtype, x, w, k))


@pytest.mark.parametrize("name", ALGORITHMS)
@pytest.mark.parametrize("case", CONV_CASES[::2], ids=_case_id)
def test_conv_every_algorithm(case, name, rng):
    nd, _, _, _, _, k, kw = case
    x, w, b = _conv_inputs(case, np.float64, rng)
    if name == "separable":  # give it rank-1 kernel slices
        vecs = [rng.standard_normal(w.shape[:2] + (kk,)) for kk in k]
        w = vecs[0].reshape(w.shape[:2] + (k[0],) + (1,) * (nd - 1))
        for ax in range(1, nd):
            w = w * vecs[ax].reshape(w.shape[:2] + (1,) * ax + (k[ax],) + (1,) * (nd - 1 - ax))
    y = skip_if_unsupported(CONV[nd], x, w, b, algorithm=name, **kw)
    ref = ref_conv(x, w, b, kw.get("stride", 1), kw.get("padding", 0), kw.get("dilation", 1),
                   kw.get("groups", 1), kw.get("padding_mode", "zeros"))  # fmt: skip
    check(y, ref, np.float64, _conv_tol(np.float64, x, w, k))


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128], ids=lambda d: np.dtype(d).name)
def test_conv_complex(dtype, rng):
    case = CONV_CASES[9]
    x, w, b = _conv_inputs(case, dtype, rng)
    y = nn.conv2d(x, w, b, **case[6])
    ref = ref_conv(x, w, b, (2, 1), (1, 0), (1, 2), 2)
    check(y, ref, dtype, _conv_tol(dtype, x, w, case[5]))


def test_dtype_promotion_and_bias_cast(rng):
    x = rng.integers(-3, 4, size=(1, 2, 6))
    w = rng.standard_normal((3, 2, 2)).astype(np.float32)
    assert nn.conv1d(x, w).dtype == np.float64  # int64 with float32 -> float64, as numpy
    xf = x.astype(np.float32)
    b = np.array([1, 2, 3])  # an integer bias is cast to the output dtype
    y = nn.conv1d(xf, w, b)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y - nn.conv1d(xf, w), np.broadcast_to([[[1], [2], [3]]], y.shape))
    assert nn.conv1d(x.astype(bool), w.astype(np.float16)).dtype == np.float32


def test_unbatched_matches_batched(rng):
    x = rng.standard_normal((3, 8, 9))
    w = rng.standard_normal((4, 3, 3, 3))
    y = nn.conv2d(x, w, padding=1)
    assert y.shape == (4, 8, 9)
    np.testing.assert_array_equal(y, nn.conv2d(x[None], w, padding=1)[0])


def test_empty_batch(rng):
    w = rng.standard_normal((4, 3, 3))
    y = nn.conv1d(np.zeros((0, 3, 10)), w, np.ones(4), padding=1)
    assert y.shape == (0, 4, 10)
    t = nn.conv_transpose1d(np.zeros((0, 4, 10)), rng.standard_normal((4, 2, 3)))
    assert t.shape == (0, 2, 12)


def test_exported_from_package():
    for name in nn.__all__:
        assert getattr(gpuconv, name) is getattr(nn, name)
        assert name in gpuconv.__all__


def test_depthwise_layer_uses_the_fast_path():
    """The 3x3 depthwise layer of MobileNet-like nets: direct, via its depthwise fast path."""
    spec = ConvSpec(in_shape=(56, 56), kernel_shape=(3, 3), batch=32, c_in=256, c_out=256,
                    groups=256, pad_lo=1, pad_hi=1, dtype=np.float32)  # fmt: skip
    rng = np.random.default_rng(0)
    w = rng.standard_normal(spec.w_shape).astype(np.float32)  # full-rank 3x3 filters
    dy = rng.standard_normal(spec.y_shape).astype(np.float32)
    for op, kernel in (("forward", w), ("backward_data", w), ("backward_weight", dy)):
        plan = dispatch.choose(spec, kernel, op=op)
        assert plan.algorithm == "direct", plan
        assert plan.estimates["direct"] < 0.05
    alg = dispatch.get_algorithm("direct")
    assert alg.route(spec, "forward")[0] == "fast"
    assert alg.route(spec, "backward_weight")[0] == "native"


# --------------------------------------------------------------------------------------------
# transposed convolution

# (nd, N, C_in, C_out, spatial, kernel, kwargs)
T_CASES = [
    (1, 2, 3, 4, (7,), (3,), dict()),
    (1, 1, 4, 2, (6,), (4,), dict(stride=2, padding=1, output_padding=1, groups=2)),
    (1, None, 2, 3, (5,), (3,), dict(stride=3, padding=2, dilation=2, output_padding=2)),
    (1, 2, 3, 3, (5,), (2,), dict(stride=1, dilation=3, output_padding=2, padding=0)),
    (1, 1, 2, 2, (4,), (1,), dict(stride=1, dilation=4, padding=1, output_padding=3)),
    (2, 2, 3, 2, (5, 6), (3, 3), dict(stride=2, padding=1, output_padding=1)),
    (2, 1, 4, 4, (6, 5), (3, 3), dict(stride=(2, 1), padding=(1, 0), groups=4)),  # depthwise
    (2, None, 2, 6, (4, 4), (2, 3), dict(stride=(1, 3), dilation=(2, 1), groups=2)),
    (2, 1, 2, 2, (3, 3), (3, 3), dict(padding=2)),
    (3, 1, 2, 3, (3, 4, 3), (2, 3, 2), dict(stride=2, padding=(0, 1, 1), output_padding=(1, 0, 1))),
    (3, 2, 2, 2, (3, 3, 4), (2, 2, 2), dict(groups=2, dilation=2)),
]


def _t_inputs(case, dtype, rng, bias=True):
    nd, n, cin, cout, sp, k, kw = case
    g = kw.get("groups", 1)
    xshape = ((n,) if n is not None else ()) + (cin,) + sp
    return (rand(rng, xshape, dtype), rand(rng, (cin, cout // g) + k, dtype),
            rand(rng, (cout,), dtype) if bias else None)  # fmt: skip


def _t_ref(case, x, w, b):
    kw = case[6]
    return ref_conv_transpose(x, w, b, kw.get("stride", 1), kw.get("padding", 0),
                              kw.get("output_padding", 0), kw.get("groups", 1),
                              kw.get("dilation", 1))  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128],
                         ids=lambda d: np.dtype(d).name)  # fmt: skip
@pytest.mark.parametrize("case", T_CASES, ids=_case_id)
def test_conv_transpose_matches_reference(case, dtype, rng):
    x, w, b = _t_inputs(case, dtype, rng)
    y = CONV_T[case[0]](x, w, b, **case[6])
    check(y, _t_ref(case, x, w, b), dtype, _conv_tol(dtype, x, w, case[5]) * 4)


@pytest.mark.parametrize("name", ALGORITHMS)
@pytest.mark.parametrize("case", T_CASES, ids=_case_id)
def test_conv_transpose_every_algorithm(case, name, rng):
    x, w, b = _t_inputs(case, np.float64, rng)
    y = skip_if_unsupported(CONV_T[case[0]], x, w, b, algorithm=name, **case[6])
    check(y, _t_ref(case, x, w, b), np.float64, _conv_tol(np.float64, x, w, case[5]) * 4)


# padding='same': output = input * stride, the adjoint of a TensorFlow-'SAME' forward convolution
T_SAME_CASES = [
    (1, 2, 2, 3, (7,), (3,), dict(stride=2)),
    (1, None, 2, 2, (5,), (4,), dict(stride=1)),  # even kernel: the odd pad after
    (1, 1, 2, 2, (4,), (1,), dict(stride=3)),  # stride beyond the kernel: no padding at all
    (2, 2, 4, 2, (5, 4), (3, 2), dict(stride=(2, 3), groups=2)),
    (2, 1, 3, 3, (4, 5), (3, 3), dict(stride=2, dilation=(2, 1), groups=3)),
    (3, 1, 2, 2, (3, 2, 4), (2, 3, 3), dict(stride=(1, 2, 3), dilation=(1, 1, 2))),
]


def _t_same_ref(case, x, w, b):
    """The transposed convolution without padding, cut (or zero-extended) to input * stride
    starting at the forward 'SAME' padding's leading part."""
    nd, sp, k, kw = case[0], case[4], case[5], case[6]
    s, d = (_tup(kw.get(a, 1), nd) for a in ("stride", "dilation"))
    full = ref_conv_transpose(x, w, b, s, 0, 0, kw.get("groups", 1), d)
    out = np.zeros(full.shape[:-nd] + tuple(i * si for i, si in zip(sp, s)), full.dtype)
    if b is not None:
        out += np.asarray(b).reshape((-1,) + (1,) * nd)
    cut, put = [Ellipsis], [Ellipsis]
    for ax in range(nd):
        lo = max(d[ax] * (k[ax] - 1) + 1 - s[ax], 0) // 2
        n = min(out.shape[ax - nd], full.shape[ax - nd] - lo)
        cut.append(slice(lo, lo + n))
        put.append(slice(0, n))
    out[tuple(put)] = full[tuple(cut)]
    return out


@pytest.mark.parametrize("name", ["auto", *ALGORITHMS])
@pytest.mark.parametrize("case", T_SAME_CASES, ids=_case_id)
def test_conv_transpose_same_is_input_times_stride(case, name, rng):
    x, w, b = _t_inputs(case, np.float64, rng)
    y = skip_if_unsupported(CONV_T[case[0]], x, w, b, padding="same", algorithm=name, **case[6])
    stride = _tup(case[6].get("stride", 1), case[0])
    assert y.shape[-case[0] :] == tuple(i * s for i, s in zip(case[4], stride))
    check(y, _t_same_ref(case, x, w, b), np.float64, _conv_tol(np.float64, x, w, case[5]) * 4)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_conv_transpose_same_is_the_adjoint_of_conv_same(nd, rng):
    """<conv(z, padding='same'), x> == <z, conv_transpose(x, padding='same')> at stride 1."""
    k = (4, 3, 2)[:nd]
    z = rng.standard_normal((2, 3) + (6, 5, 4)[:nd])
    w = rng.standard_normal((4, 3) + k)
    x = rng.standard_normal((2, 4) + (6, 5, 4)[:nd])
    conv, conv_t = getattr(nn, f"conv{nd}d"), CONV_T[nd]
    lhs = np.vdot(conv(z, w, padding="same", dilation=2), x)
    rhs = np.vdot(z, conv_t(x, w, padding="same", dilation=2))
    assert lhs == pytest.approx(rhs, rel=1e-12)


# --------------------------------------------------------------------------------------------
# errors

ERRORS = [
    # (function, args, kwargs, exception, words the message must contain)
    (nn.conv2d, ((1, 3, 5, 5), (4, 3, 3, 3)), dict(groups=2), ValueError, ["3", "groups (2)"]),
    (nn.conv2d, ((1, 4, 5, 5), (3, 2, 3, 3)), dict(groups=2), ValueError, ["3", "groups (2)"]),
    (nn.conv2d, ((1, 4, 5, 5), (4, 3, 3, 3)), {}, ValueError, ["weight", "4"]),
    (nn.conv2d, ((4, 5), (4, 4, 3, 3)), {}, ValueError, ["3-D", "4-D", "2-D"]),
    (nn.conv2d, ((1, 4, 5, 5), (4, 4, 3)), {}, ValueError, ["weight", "4-D"]),
    (nn.conv1d, ((1, 1, 5, 5, 5),), {}, ValueError, ["input", "5-D", "(1, 1, 5, 5, 5)"]),
    (nn.conv2d, ((1, 1, 2, 2), (1, 1, 3, 3)), {}, ValueError, ["2", "3", "empty"]),
    (nn.conv2d, ((1, 1, 5, 5), (1, 1, 2, 2)), dict(dilation=5), ValueError, ["dilated", "6"]),
    (nn.conv2d, ((1, 1, 5, 5), (1, 1, 3, 3)), dict(stride=0), ValueError, ["stride", "0"]),
    (nn.conv2d, ((1, 1, 5, 5), (1, 1, 3, 3)), dict(stride=(1, -1)), ValueError, ["stride"]),
    (nn.conv2d, ((1, 1, 5, 5), (1, 1, 3, 3)), dict(dilation=0), ValueError, ["dilation", "0"]),
    (nn.conv2d, ((1, 1, 5, 5), (1, 1, 3, 3)), dict(padding=-1), ValueError, ["padding", "-1"]),
    (nn.conv2d, ((1, 1, 5, 5), (1, 1, 3, 3)), dict(padding=(1, 2, 3)), ValueError, ["padding"]),
    (nn.conv2d, ((1, 1, 5, 5), (1, 1, 3, 3)), dict(padding="full"), ValueError, ["'full'"]),
    (
        nn.conv2d,
        ((1, 1, 5, 5), (1, 1, 3, 3)),
        dict(padding="same", stride=2),
        ValueError,
        ["same", "stride"],
    ),
    (nn.conv2d, ((1, 1, 5, 5), (1, 1, 3, 3)), dict(padding=1.5), TypeError, ["padding"]),
    (nn.conv2d, ((1, 1, 5, 5), (1, 1, 3, 3)), dict(groups=0), ValueError, ["groups", "0"]),
    (
        nn.conv2d,
        ((1, 1, 5, 5), (1, 1, 3, 3)),
        dict(padding_mode="mirror"),
        ValueError,
        ["padding_mode", "mirror"],
    ),
    (
        nn.conv2d,
        ((1, 1, 3, 5), (1, 1, 3, 3)),
        dict(padding=3, padding_mode="reflect"),
        ValueError,
        ["reflect", "3"],
    ),
    (
        nn.conv2d,
        ((1, 1, 3, 5), (1, 1, 3, 3)),
        dict(padding=4, padding_mode="circular"),
        ValueError,
        ["circular", "4", "3"],
    ),
    (nn.conv2d, ((1, 2, 5, 5), (3, 2, 3, 3), (2,)), {}, ValueError, ["bias", "(3,)", "(2,)"]),
    (
        nn.conv2d,
        ((1, 1, 5, 5), (1, 1, 3, 3)),
        dict(algorithm="winograd"),
        ValueError,
        ["winograd", "direct"],
    ),
    (nn.conv2d, ((1, 1, 5, 5), (1, 1, 3, 3)), dict(algorithm="separable"), None, []),  # see below
    (nn.conv_transpose2d, ((1, 2, 3, 3), (3, 2, 3, 3)), {}, ValueError, ["3", "2"]),
    (
        nn.conv_transpose2d,
        ((1, 3, 3, 3), (3, 2, 3, 3)),
        dict(groups=2),
        ValueError,
        ["3", "groups (2)"],
    ),
    (
        nn.conv_transpose2d,
        ((1, 2, 3, 3), (2, 2, 3, 3)),
        dict(stride=2, output_padding=2),
        ValueError,
        ["output_padding (2)", "stride (2)", "dilation (1)"],
    ),
    (
        nn.conv_transpose2d,
        ((1, 2, 3, 3), (2, 2, 3, 3)),
        dict(output_padding=1),
        ValueError,
        ["output_padding (1)"],
    ),
    (
        nn.conv_transpose2d,
        ((1, 2, 3, 3), (2, 2, 3, 3)),
        dict(padding=3),
        ValueError,
        ["output size", "below 1"],
    ),
    (
        nn.conv_transpose2d,
        ((1, 2, 3, 3), (2, 2, 3, 3)),
        dict(padding="valid"),
        ValueError,
        ["padding", "'same'", "'valid'"],
    ),
    (
        nn.conv_transpose2d,
        ((1, 2, 3, 3), (2, 2, 3, 3)),
        dict(padding="same", stride=2, output_padding=1),
        ValueError,
        ["same", "output_padding", "1"],
    ),
    (
        nn.conv_transpose2d,
        ((1, 2, 3, 3), (2, 2, 3, 3)),
        dict(output_padding=-1),
        ValueError,
        ["output_padding"],
    ),
    (nn.conv_transpose2d, ((1, 2, 3, 3), (2, 2, 3, 3), (3,)), {}, ValueError, ["bias", "(2,)"]),
    (nn.conv_transpose1d, ((3,),), {}, ValueError, ["input", "1-D", "2-D", "3-D"]),
    (nn.conv_transpose1d, ((1, 1, 3), (1, 1)), {}, ValueError, ["weight", "3-D", "(1, 1)"]),
]


def _materialise(args, rng):
    out = []
    for a in args:
        out.append(rng.standard_normal(a) if isinstance(a, tuple) else a)
    if len(out) == 1:
        out.append(rng.standard_normal((1, 1, 3)))
    return out


@pytest.mark.parametrize("fn,args,kwargs,exc,words", ERRORS,
                         ids=[f"{e[0].__name__}-{i}" for i, e in enumerate(ERRORS)])  # fmt: skip
def test_errors_name_the_numbers(fn, args, kwargs, exc, words, rng):
    vals = _materialise(args, rng)
    if exc is None:  # an algorithm that cannot do the problem says why, naming itself
        with pytest.raises(ValueError, match="separable"):
            fn(*vals, **kwargs)
        return
    with pytest.raises(exc) as info:
        fn(*vals, **kwargs)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_type_errors(rng):
    with pytest.raises(TypeError, match="input"):
        nn.conv1d(np.array([["a"]]), np.ones((1, 1, 1)))
    with pytest.raises(TypeError, match="bias"):
        nn.conv1d(np.ones((1, 1, 4)), np.ones((1, 1, 2)), np.array([1j]))
    with pytest.raises(TypeError, match="float128|longdouble|dtype"):
        nn.conv1d(np.ones((1, 1, 4), np.longdouble), np.ones((1, 1, 2)))
    with pytest.raises(TypeError, match="stride"):
        nn.conv1d(np.ones((1, 1, 4)), np.ones((1, 1, 2)), stride=True)


# --------------------------------------------------------------------------------------------
# torch as a second oracle


def _torch_cases():
    rng = np.random.default_rng(7)
    cases = []
    for i in range(24):
        nd = 1 + i % 3
        g = int(rng.choice([1, 2, 3]))
        cin = g * int(rng.integers(1, 3))
        cout = g * int(rng.integers(1, 3))
        k = tuple(int(v) for v in rng.integers(1, 4, nd))
        s = tuple(int(v) for v in rng.integers(1, 3, nd))
        d = tuple(int(v) for v in rng.integers(1, 3, nd))
        p = tuple(int(v) for v in rng.integers(0, 3, nd))
        sp = tuple(int(v) + dd * (kk - 1) + 1 for v, dd, kk in zip(rng.integers(2, 8, nd), d, k))
        n = int(rng.integers(1, 3))
        cases.append((nd, n, cin, cout, g, k, s, d, p, sp, int(rng.integers(0, 10**6))))
    return cases


@pytest.mark.parametrize("case", _torch_cases(), ids=lambda c: f"{c[0]}d-seed{c[-1]}")
def test_against_torch(case):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    nd, n, cin, cout, g, k, s, d, p, sp, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, cin) + sp)
    w = rng.standard_normal((cout, cin // g) + k)
    b = rng.standard_normal(cout)
    t = torch.from_numpy
    tconv = getattr(F, f"conv{nd}d")
    y = CONV[nd](x, w, b, s, p, d, g)
    yt = tconv(t(x), t(w), t(b), s, p, d, g).numpy()
    np.testing.assert_allclose(y, yt, rtol=1e-10, atol=1e-10)
    mode = ["reflect", "replicate", "circular"][seed % 3]
    pm = tuple(min(pp, v - 1) for pp, v in zip(p, sp))
    ym = CONV[nd](x, w, None, s, pm, d, g, padding_mode=mode)
    xt = F.pad(t(x), tuple(v for pp in reversed(pm) for v in (pp, pp)), mode=mode)
    np.testing.assert_allclose(ym, tconv(xt, t(w), None, s, 0, d, g).numpy(), atol=1e-10)
    if all(v == 1 for v in s):
        ys = CONV[nd](x, w, None, 1, "same", d, g)
        np.testing.assert_allclose(ys, tconv(t(x), t(w), None, 1, "same", d, g).numpy(),
                                   atol=1e-10)  # fmt: skip
    # transposed: the weight layout is (C_in, C_out/groups, *k)
    wt = rng.standard_normal((cin, cout // g) + k)
    op = tuple(int(rng.integers(0, max(ss, dd))) for ss, dd in zip(s, d))
    xin = rng.standard_normal((n, cin) + tuple(int(v) for v in rng.integers(1, 5, nd)))
    tconvt = getattr(F, f"conv_transpose{nd}d")
    try:
        yt = tconvt(t(xin), t(wt), t(b), s, p, op, g, d).numpy()
    except RuntimeError:
        with pytest.raises(ValueError):
            CONV_T[nd](xin, wt, b, s, p, op, g, d)
    else:
        np.testing.assert_allclose(CONV_T[nd](xin, wt, b, s, p, op, g, d), yt, atol=1e-10)


# --- bias + activation epilogue --------------------------------------------------------------

_ACTS = {
    None: lambda v, s: v,
    "relu": lambda v, s: np.where(v < 0, 0, v),
    "leaky_relu": lambda v, s: np.where(v < 0, s * v, v),
    "sigmoid": lambda v, s: 1 / (1 + np.exp(-v)),
    "tanh": lambda v, s: np.tanh(v),
}


@pytest.mark.parametrize("activation", list(_ACTS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("with_bias", [True, False])
def test_activation_matches_the_separate_operations(activation, dtype, nd, with_bias):
    rng = np.random.default_rng(nd)
    x = rng.standard_normal((2, 3) + (6,) * nd).astype(dtype)
    w = rng.standard_normal((4, 3) + (3,) * nd).astype(dtype)
    b = rng.standard_normal(4).astype(dtype) if with_bias else None
    fn = {1: gpuconv.conv1d, 2: gpuconv.conv2d, 3: gpuconv.conv3d}[nd]
    plain = fn(x.astype(np.float64), w.astype(np.float64), padding=1)
    if with_bias:
        plain = plain + b.astype(np.float64).reshape((1, -1) + (1,) * nd)
    expected = _ACTS[activation](plain, 0.3)
    y = fn(x, w, b, padding=1, activation=activation, negative_slope=0.3)
    assert y.dtype == dtype and y.shape == expected.shape
    # the convolution's rounding, passed through activations whose slope is at most 1
    np.testing.assert_allclose(y, expected, rtol=0, atol=tolerance(dtype, x, w, 3 * 3**nd))
    if activation == "relu":
        assert (y >= 0).all()


def test_activation_keeps_nan_and_handles_extremes():
    x = np.array([[[np.nan, 1e4, -1e4, -0.5]]], np.float32)
    w = np.ones((1, 1, 1), np.float32)
    np.testing.assert_array_equal(
        gpuconv.conv1d(x, w, activation="relu")[0, 0], [np.nan, 1e4, 0, 0]
    )
    np.testing.assert_allclose(
        gpuconv.conv1d(x, w, activation="sigmoid")[0, 0],
        [np.nan, 1, 0, 1 / (1 + np.exp(0.5))],
        rtol=1e-6,
    )
    y = gpuconv.conv1d(x, w, activation="tanh")[0, 0]
    np.testing.assert_allclose(y, [np.nan, 1, -1, np.tanh(-0.5)], rtol=1e-6)
    unbatched = gpuconv.conv1d(x[0], w, np.array([0.25], np.float32), activation="leaky_relu")
    np.testing.assert_allclose(unbatched[0], [np.nan, 1e4 + 0.25, (-1e4 + 0.25) * 0.01, -0.0025])


@pytest.mark.parametrize(
    "kw, exc, match",
    [
        (dict(activation="gelu"), ValueError, "activation must be one of None, 'relu'"),
        (dict(activation=True), ValueError, "got True"),
        (dict(activation="relu", negative_slope="0.1"), TypeError, "negative_slope must be a real"),
        (dict(activation="leaky_relu", negative_slope=float("nan")), ValueError, "finite"),
    ],
)
def test_activation_errors(kw, exc, match):
    with pytest.raises(exc, match=match):
        gpuconv.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), **kw)


def test_activation_on_a_complex_result_is_refused():
    x = np.ones((1, 1, 4, 4), np.complex64)
    with pytest.raises(ValueError, match="not defined for a complex result"):
        gpuconv.conv2d(x, np.ones((1, 1, 3, 3)), activation="relu")
    # bias alone is fine
    y = gpuconv.conv2d(x, np.ones((1, 1, 3, 3)), np.array([1j]))
    np.testing.assert_allclose(y, 9 + 1j)


def test_activation_against_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 9, 9))
    w = rng.standard_normal((5, 4, 3, 3))
    b = rng.standard_normal(5)
    tx, tw, tb = (torch.from_numpy(a) for a in (x, w, b))
    base = torch.nn.functional.conv2d(tx, tw, tb, padding=1)
    refs = {
        "relu": torch.relu(base),
        "leaky_relu": torch.nn.functional.leaky_relu(base, 0.05),
        "sigmoid": torch.sigmoid(base),
        "tanh": torch.tanh(base),
    }
    for name, ref in refs.items():
        y = gpuconv.conv2d(x, w, b, padding=1, activation=name, negative_slope=0.05)
        np.testing.assert_allclose(y, ref.numpy(), rtol=0, atol=1e-12 * 4 * 9 * 30)


def test_activation_on_an_empty_batch():
    w = np.ones((2, 3, 3, 3), np.float32)
    y = gpuconv.conv2d(
        np.empty((0, 3, 8, 8), np.float32), w, np.ones(2, np.float32), activation="relu"
    )
    assert y.shape == (0, 2, 6, 6) and y.dtype == np.float32


@pytest.mark.parametrize(
    "dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.int64, bool]
)
def test_integer_inputs_compute_exactly_in_float64(dtype):
    # narrow integers used to promote with float32 only, which rounds sums above 2**24
    hi = 1 if dtype is bool else min(np.iinfo(dtype).max, 30001)
    x = np.full((1, 1, 3), hi, dtype)
    w = np.full((1, 1, 3), hi, dtype)
    y = gpuconv.conv1d(x, w)
    assert y.dtype == np.float64
    assert y[0, 0, 0] == 3 * int(hi) * int(hi)
    dx = gpuconv.conv1d_input((1, 1, 3), w, np.full((1, 1, 1), hi, dtype))
    assert dx.dtype == np.float64 and dx[0, 0, 1] == int(hi) * int(hi)
    # with a float operand numpy's promotion decides (int8 with float32 is float32)
    want = np.result_type(dtype, np.float32)
    assert gpuconv.conv1d(x, w.astype(np.float32)).dtype == want
