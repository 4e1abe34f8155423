"""Golden tests: the worked examples of the lecture notes (tests/golden_data.py).

Part 1 checks every transcribed value against an independent oracle (scipy.signal, numpy, numpy
matrix products, numpy.fft, finite differences, tests.reference) - this proves the transcription.
Part 2 checks gpuconv against the same values: the scipy.signal drop-ins (convolve, correlate,
convolve2d, correlate2d) and the canonical layer (gpuconv.dispatch.execute on a ConvSpec), over
every registered algorithm.

The gpuconv API may land after these tests: part 2 then fails (it does not skip) until it does.
"""

from __future__ import annotations

from math import prod

import numpy as np
import pytest
import scipy.signal as ss
from numpy.lib.stride_tricks import sliding_window_view

from gpuconv._spec import ConvSpec
from tests import golden_data as G
from tests.reference import reference

# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

DTYPES = [np.int64, np.float64, np.float32]
CONV_BY_NAME = {ex["name"]: ex for ex in G.CONV_EXAMPLES}


def _algorithm_names():
    """The registered algorithms, or None while gpuconv.dispatch does not exist yet."""
    try:
        from gpuconv import dispatch
    except ImportError:
        return None
    return list(dispatch.algorithm_names())


ALGOS = _algorithm_names()
# 'auto' always runs: while dispatch is missing it fails on the import, which is the point.
EXEC_ALGOS = list(dict.fromkeys((ALGOS or []) + ["auto"]))
METHODS = list(dict.fromkeys(["auto", "direct", "fft"] + (ALGOS or [])))


def _dispatch():
    from gpuconv import dispatch

    return dispatch


def _gpuconv():
    import gpuconv

    return gpuconv


def _np(a):
    """A host numpy array from whatever an algorithm returns (cupy and torch included)."""
    if hasattr(a, "get") and not isinstance(a, np.ndarray):
        a = a.get()
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def assert_close(got, expected, dtype, taps, scale):
    """Exact for integer dtypes; else a tolerance from the dtype's eps scaled by the taps.

    ``scale`` bounds |in1| * |in2| so that zeros in ``expected`` get an absolute tolerance of
    the size of a rounding error of the largest products (what an FFT route makes).
    """
    got = _np(got)
    expected = np.asarray(expected)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        assert got.dtype.kind in "iu", f"integer problem returned {got.dtype}"
        np.testing.assert_array_equal(got, expected)
    else:
        rtol = 8 * np.finfo(dtype).eps * max(taps, 1)
        np.testing.assert_allclose(
            got.astype(np.complex128 if got.dtype.kind == "c" else np.float64),
            expected,
            rtol=rtol,
            atol=rtol * scale,
        )


def _arr(a, dtype):
    return np.asarray(a).astype(dtype)


def _scale(in1, in2):
    return float(np.max(np.abs(in1))) * float(np.max(np.abs(in2))) or 1.0


def _pads(mode, k):
    """ConvSpec (pad_lo, pad_hi) of a scipy mode for a kernel of length k (scipy's centring)."""
    if mode == "full":
        return k - 1, k - 1
    if mode == "same":  # scipy keeps full[(k-1)//2 : (k-1)//2 + n]
        return k // 2, (k - 1) // 2
    assert mode == "valid"
    return 0, 0


def spec_for(op, mode, in1_shape, in2_shape, dtype):
    pads = [_pads(mode, k) for k in in2_shape]
    return ConvSpec(
        in_shape=tuple(in1_shape),
        kernel_shape=tuple(in2_shape),
        pad_lo=tuple(p[0] for p in pads),
        pad_hi=tuple(p[1] for p in pads),
        flip=(op == "convolve"),
        dtype=np.dtype(dtype),
    )


def execute(spec, x, w, algo):
    """gpuconv.dispatch.execute, skipping (with the algorithm's reason) what it does not support."""
    dispatch = _dispatch()
    if algo != "auto":
        reason = _supports(dispatch.get_algorithm(algo), spec, w)
        if reason is not None:
            pytest.skip(f"{algo} does not support this spec: {reason}")
    return _np(dispatch.execute(spec, x, w, algorithm=algo))


def _supports(alg, spec, w):
    """The algorithm's reason for not supporting ``spec`` (with kernel ``w``), None if it does.

    Data-dependent algorithms (separable) take the kernel as an optional second argument.
    """
    try:
        return alg.supports(spec, w)
    except TypeError:
        return alg.supports(spec)


def skip_if_method_unsupported(method, spec, in2):
    """For an algorithm name passed as ``method``: skip where it does not support the problem.

    ``in2`` is the scipy-style kernel; it is handed to ``supports`` in canonical layout.
    """
    if ALGOS is not None and method in ALGOS and method not in ("auto", "direct", "fft"):
        w = np.asarray(in2)[None, None]
        if np.iscomplexobj(w):
            w = np.conj(w)
        reason = _supports(_dispatch().get_algorithm(method), spec, w)
        if reason is not None:
            pytest.skip(f"{method} does not support this problem: {reason}")


def _scipy2d(op):
    return {"convolve": ss.convolve2d, "correlate": ss.correlate2d}[op]


def _scipynd(op):
    return {"convolve": ss.convolve, "correlate": ss.correlate}[op]


def _rot180(a):
    return np.asarray(a)[::-1, ::-1]


# ---- symbolic (003) substitution ------------------------------------------------------------

# distinct primes, so that a wrong symbol cannot give the right number by coincidence
SYM_X = np.array([[2, 3, 5], [7, 11, 13], [17, 19, 23]], dtype=np.int64)
SYM_W = np.array([[29, 31], [37, 41]], dtype=np.int64)
SYM_DY = np.array([[43, 47], [53, 59]], dtype=np.int64)


def _sym(s):
    if s == "0":
        return 0
    name, r, c = s[:-2], int(s[-2]) - 1, int(s[-1]) - 1
    return {"x": SYM_X, "w": SYM_W, "dy": SYM_DY}[name][r, c]


def _sub(grid):
    return np.vectorize(_sym, otypes=[np.int64])(np.asarray(grid, dtype=object))


def _sym_conv_matrices(in_shape, kernel_shape):
    """W_conv and X_conv of a valid 2D convolution, as symbol grids built from the definition."""
    (i1, i2), (k1, k2) = in_shape, kernel_shape
    o1, o2 = i1 - k1 + 1, i2 - k2 + 1
    w_conv = np.full((o1 * o2, i1 * i2), "0", dtype=object)
    x_conv = np.full((k1 * k2, o1 * o2), "0", dtype=object)
    for p in range(o1):
        for q in range(o2):
            for a in range(k1):
                for b in range(k2):
                    # y[p, q] = sum_{a, b} x[p + k1-1-a, q + k2-1-b] * w[a, b]
                    r, c = p + k1 - 1 - a, q + k2 - 1 - b
                    w_conv[p * o2 + q, r * i2 + c] = f"w{a + 1}{b + 1}"
                    x_conv[a * k2 + b, p * o2 + q] = f"x{r + 1}{c + 1}"
    return w_conv, x_conv


def _sym_grad(formulas, keys):
    return np.array([sum(_sym(u) * _sym(v) for u, v in formulas[k]) for k in keys], dtype=np.int64)


def _loss_fd(f, arr):
    """Central finite differences of the linear loss f at arr (exact up to rounding)."""
    arr = arr.astype(np.float64)
    g = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
        e = np.zeros_like(arr)
        e[idx] = 1.0
        g[idx] = (f(arr + e) - f(arr - e)) / 2.0
    return g


# =============================================================================================
# Part 1: the transcription against independent oracles
# =============================================================================================


@pytest.mark.parametrize("ex", G.CONV_EXAMPLES, ids=lambda e: e["name"])
def test_oracle_conv_examples(ex):
    in1, in2, exp = (np.asarray(ex[k], dtype=np.int64) for k in ("in1", "in2", "expected"))
    got = _scipy2d(ex["op"])(in1, in2, mode=ex["mode"])
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, exp)
    for method in ("direct", "fft"):  # the N-d front, both routes (fft rounds integer results)
        np.testing.assert_array_equal(
            _scipynd(ex["op"])(in1, in2, mode=ex["mode"], method=method), exp
        )
    for (r, c), v in ex["partials"].items():
        assert got[r, c] == v, (r, c)


@pytest.mark.parametrize("ex", G.CONV_EXAMPLES, ids=lambda e: e["name"])
def test_oracle_conv_examples_as_convspec(ex):
    """The ConvSpec mapping used in part 2 reproduces the notes through tests.reference."""
    in1, in2, exp = (np.asarray(ex[k], dtype=np.int64) for k in ("in1", "in2", "expected"))
    spec = spec_for(ex["op"], ex["mode"], in1.shape, in2.shape, np.int64)
    assert spec.out_shape == exp.shape
    np.testing.assert_array_equal(reference(spec, in1[None, None], in2[None, None])[0, 0], exp)


def _one_d_cases():
    """Examples whose kernel is a single row or column: each row/column is a 1D convolution."""
    for ex in G.CONV_EXAMPLES:
        k = np.asarray(ex["in2"])
        if ex["mode"] == "full" and (k.shape[0] == 1 or k.shape[1] == 1):
            yield ex


def _as_rows(ex):
    in1, in2, exp = (np.asarray(ex[k], dtype=np.int64) for k in ("in1", "in2", "expected"))
    if in2.shape[0] != 1:  # a column kernel: work on the transposes
        in1, in2, exp = in1.T, in2.T, exp.T
    return in1, in2[0], exp


@pytest.mark.parametrize("ex", list(_one_d_cases()), ids=lambda e: e["name"])
def test_oracle_one_d_rows(ex):
    in1, h, exp = _as_rows(ex)
    for row, erow in zip(in1, exp, strict=True):
        np.testing.assert_array_equal(np.convolve(row, h), erow)
        np.testing.assert_array_equal(ss.convolve(row, h, mode="full"), erow)


def test_oracle_im2col_hcmut():
    d = G.IM2COL_HCMUT
    x, w = np.asarray(d["x"]), np.asarray(d["w"])
    np.testing.assert_array_equal(_rot180(w), d["w_rot180"])
    np.testing.assert_array_equal(np.rot90(w, 2), d["w_rot180"])
    np.testing.assert_array_equal(np.asarray(d["w_rot180"]).ravel(), d["w_rot180_flat"])
    windows = sliding_window_view(x, w.shape).reshape(-1, *w.shape)  # row-major positions
    np.testing.assert_array_equal(windows, d["sub_images"])
    cols = windows.reshape(len(windows), -1)  # the im2col matrix, one window per row
    np.testing.assert_array_equal(cols, d["sub_images_flat"])
    dots = np.asarray(d["sub_images_flat"]) @ np.asarray(d["w_rot180_flat"])
    np.testing.assert_array_equal(dots, d["dot_products"])
    np.testing.assert_array_equal(dots.reshape(2, 2), d["expected"])
    np.testing.assert_array_equal(ss.convolve2d(x, w, mode="valid"), d["expected"])


def _toeplitz_rows(row, n_cols):
    """(len(row) + n_cols - 1) x n_cols Toeplitz block: column j is row shifted down by j."""
    t = np.zeros((len(row) + n_cols - 1, n_cols), dtype=np.int64)
    for j in range(n_cols):
        t[j : j + len(row), j] = row
    return t


def _block_toeplitz(x, kshape):
    """Matrix A with A @ k.ravel() == convolve2d(x, k, 'full').ravel(), built blockwise."""
    m, (km, kn) = x.shape[0], kshape
    blocks = [_toeplitz_rows(x[i], kn) for i in range(m)]
    bh, bw = blocks[0].shape
    a = np.zeros(((m + km - 1) * bh, km * bw), dtype=np.int64)
    for j in range(km):
        for i in range(m):
            a[(i + j) * bh : (i + j + 1) * bh, j * bw : (j + 1) * bw] = blocks[i]
    return a, blocks


def test_oracle_block_toeplitz_iitj():
    d = G.TOEPLITZ_IITJ
    x1, x2 = np.asarray(d["x1"]), np.asarray(d["x2"])
    np.testing.assert_array_equal(x2[:, ::-1], d["x2_fold_columns"])
    np.testing.assert_array_equal(np.asarray(d["x2_fold_columns"])[::-1, :], d["x2_fold"])
    np.testing.assert_array_equal(_rot180(x2), d["x2_fold"])
    a, blocks = _block_toeplitz(x1, x2.shape)
    np.testing.assert_array_equal(blocks[0], d["H0"])
    np.testing.assert_array_equal(blocks[1], d["H1"])
    np.testing.assert_array_equal(a, d["A"])
    h0, h1, z = np.asarray(d["H0"]), np.asarray(d["H1"]), np.zeros((3, 2), dtype=np.int64)
    np.testing.assert_array_equal(np.block([[h0, z], [h1, h0], [z, h1]]), d["A"])
    np.testing.assert_array_equal(np.asarray(d["x2_fold"]).ravel(), d["v"])
    y = np.asarray(d["A"]) @ np.asarray(d["v"])
    np.testing.assert_array_equal(y, d["y_flat"])
    np.testing.assert_array_equal(y.reshape(3, 3), d["expected"])
    np.testing.assert_array_equal(ss.correlate2d(x1, x2, mode="full"), d["expected"])
    np.testing.assert_array_equal(ss.convolve2d(x1, d["x2_fold"], mode="full"), d["expected"])


def test_oracle_symbolic_matrices_hcmut():
    d = G.SYMBOLIC_HCMUT
    w_conv, x_conv = _sym_conv_matrices(d["in_shape"], d["kernel_shape"])
    # the symbol grids as written equal the ones built from the definition of convolution
    assert w_conv.tolist() == d["w_conv"]
    assert x_conv.tolist() == d["x_conv"]
    assert np.asarray(d["w_conv"], dtype=object).T.tolist() == d["w_conv_T"]
    w_sym = np.array([["w11", "w12"], ["w21", "w22"]], dtype=object)
    assert _rot180(w_sym).tolist() == d["w_rot180"]
    assert w_sym.ravel().tolist() == d["w_flat"]
    # and numerically they give the convolution
    y = ss.convolve2d(SYM_X, SYM_W, mode="valid").ravel()
    np.testing.assert_array_equal(_sub(d["w_conv"]) @ SYM_X.ravel(), y)
    np.testing.assert_array_equal(_sub(d["w_flat"]) @ _sub(d["x_conv"]), y)


def _loss_x(x):
    return float(np.sum(SYM_DY * ss.convolve2d(x, SYM_W.astype(np.float64), mode="valid")))


def _loss_w(w):
    return float(np.sum(SYM_DY * ss.convolve2d(SYM_X.astype(np.float64), w, mode="valid")))


def test_oracle_symbolic_gradient_dx_hcmut():
    d = G.SYMBOLIC_HCMUT
    keys = [s for row in d["dx_grid"] for s in row]
    assert keys == [f"x{r}{c}" for r in (1, 2, 3) for c in (1, 2, 3)]
    assert sorted(keys) == sorted(d["dx"])
    dx = _sym_grad(d["dx"], keys).reshape(3, 3)
    # matrix form, as written on the same slide
    np.testing.assert_array_equal(_sub(d["w_conv_T"]) @ SYM_DY.ravel(), dx.ravel())
    # dL/dX of a convolution is the full cross-correlation of dY with the kernel
    np.testing.assert_array_equal(ss.correlate2d(SYM_DY, SYM_W, mode="full"), dx)
    spec = ConvSpec((2, 2), (2, 2), pad_lo=(1, 1), pad_hi=(1, 1), flip=False, dtype=np.int64)
    np.testing.assert_array_equal(reference(spec, SYM_DY[None, None], SYM_W[None, None])[0, 0], dx)
    np.testing.assert_allclose(_loss_fd(_loss_x, SYM_X), dx, rtol=1e-12)


def test_oracle_symbolic_gradient_dw_hcmut():
    d = G.SYMBOLIC_HCMUT
    keys = ["w11", "w12", "w21", "w22"]
    assert sorted(d["dw"]) == keys
    dw = _sym_grad(d["dw"], keys).reshape(2, 2)
    np.testing.assert_array_equal(SYM_DY.ravel() @ _sub(d["x_conv"]).T, dw.ravel())
    # dL/dW of a convolution: the valid cross-correlation of X with dY, rotated by 180 degrees
    np.testing.assert_array_equal(_rot180(ss.correlate2d(SYM_X, SYM_DY, mode="valid")), dw)
    spec = ConvSpec((3, 3), (2, 2), flip=False, dtype=np.int64)
    np.testing.assert_array_equal(
        _rot180(reference(spec, SYM_X[None, None], SYM_DY[None, None])[0, 0]), dw
    )
    np.testing.assert_allclose(_loss_fd(_loss_w, SYM_W), dw, rtol=1e-12)


def _rgb():
    d = G.RGB_LAYER_IITJ
    return d, np.asarray(d["x"], dtype=np.int64), np.asarray(d["w"], dtype=np.int64)


def _rgb_specs(dtype):
    d = G.RGB_LAYER_IITJ
    common = dict(
        in_shape=(5, 5),
        kernel_shape=(3, 3),
        c_in=3,
        stride=d["stride"],
        pad_lo=d["pad"],
        pad_hi=d["pad"],
        flip=d["flip"],
        dtype=np.dtype(dtype),
    )
    return ConvSpec(c_out=1, **common), ConvSpec(c_out=3, groups=3, **common)


def test_oracle_rgb_layer_iitj():
    d, x, w = _rgb()
    per = [int(np.sum(np.pad(x[c], 1)[0:3, 0:3] * w[c])) for c in range(3)]
    assert per == d["per_channel_top_left"]
    assert [int(ss.correlate2d(x[c], w[c], mode="same")[0, 0]) for c in range(3)] == per
    assert sum(per) + d["bias"] == d["expected_top_left"]
    full, grouped = _rgb_specs(np.int64)
    assert reference(full, x[None], w[None])[0, 0, 0, 0] + d["bias"] == d["expected_top_left"]
    np.testing.assert_array_equal(
        reference(grouped, x[None], w[:, None])[0, :, 0, 0], d["per_channel_top_left"]
    )


def _shape_spec(d, dtype=np.float64):
    return ConvSpec(
        in_shape=(d["n"], d["n"]),
        kernel_shape=(d["k"], d["k"]),
        c_in=d.get("c_in", 1),
        c_out=d.get("c_out", 1),
        stride=d["stride"],
        pad_lo=d["pad"],
        pad_hi=d["pad"],
        dtype=np.dtype(dtype),
    )


def _det(shape, mod, dtype):
    """Deterministic small integers, so that every dtype computes them exactly."""
    return (np.arange(prod(shape)) % mod - mod // 2).reshape(shape).astype(dtype)


@pytest.mark.parametrize("d", G.SHAPE_EXAMPLES, ids=lambda e: e["name"])
def test_oracle_shape_examples(d):
    n, k, s, p = d["n"], d["k"], d["stride"], d["pad"]
    assert (n + 2 * p - k) % s == 0 and (n + 2 * p - k) // s + 1 == d["out"]
    x = _det((d["c_in"], n, n), 7, np.float64)
    w = _det((d["c_out"], d["c_in"], k, k), 5, np.float64)
    # scipy oracle: correlate each channel on the padded input, sum channels, keep every s-th
    y = np.stack(
        [
            sum(ss.correlate2d(np.pad(x[c], p), w[o, c], mode="valid") for c in range(d["c_in"]))
            for o in range(d["c_out"])
        ]
    )[:, ::s, ::s]
    assert y.shape == (d["c_out"], d["out"], d["out"])
    spec = _shape_spec(d)
    assert spec.out_shape == (d["out"], d["out"])
    np.testing.assert_allclose(reference(spec, x[None], w)[0], y, rtol=1e-12, atol=1e-9)
    if "params" in d:
        assert prod(spec.w_shape) + d["c_out"] == d["params"]
    if "params_per_filter" in d:
        assert prod(spec.w_shape[1:]) + 1 == d["params_per_filter"]


def test_oracle_stride_does_not_fit():
    d = G.STRIDE_DOES_NOT_FIT
    ratio = (d["n"] + 2 * d["pad"] - d["k"]) / d["stride"] + 1
    assert round(ratio, 2) == d["ratio_as_written"]
    assert ratio != int(ratio)  # "doesn't fit"
    y = ss.correlate2d(np.ones((d["n"], d["n"])), np.ones((d["k"], d["k"])), "valid")
    assert y[:: d["stride"], :: d["stride"]].shape == (d["floor_out"],) * 2
    spec = _shape_spec(dict(d, c_in=1, c_out=1))
    assert spec.out_shape == (d["floor_out"],) * 2


def _depthwise_specs(dtype=np.float64):
    d = G.DEPTHWISE_SEPARABLE_UGR
    dw = ConvSpec(
        (d["n"],) * 2,
        (d["k"],) * 2,
        c_in=d["c_in"],
        c_out=d["c_in"],
        groups=d["c_in"],
        dtype=np.dtype(dtype),
    )
    pw = ConvSpec(dw.out_shape, (1, 1), c_in=d["c_in"], c_out=d["c_out"], dtype=np.dtype(dtype))
    return dw, pw


def test_oracle_depthwise_separable_ugr():
    d = G.DEPTHWISE_SEPARABLE_UGR
    dw, pw = _depthwise_specs()
    assert dw.y_shape[1:] == d["depthwise_out"]
    assert prod(dw.w_shape) + d["c_in"] == d["depthwise_params"]
    assert prod(pw.w_shape) + d["c_out"] == d["pointwise_params"]
    assert d["depthwise_params"] + d["pointwise_params"] == d["params"]
    x = _det(dw.x_shape, 7, np.float64)
    w1, w2 = _det(dw.w_shape, 5, np.float64), _det(pw.w_shape, 3, np.float64)
    mid = np.stack([ss.correlate2d(x[0, c], w1[c, 0], "valid") for c in range(d["c_in"])])
    assert mid.shape == d["depthwise_out"]
    np.testing.assert_allclose(reference(dw, x, w1)[0], mid, rtol=1e-12)
    out = np.einsum("oc,chw->ohw", w2[:, :, 0, 0], mid)  # the pointwise layer as a matmul
    assert out.shape == (d["c_out"], *d["depthwise_out"][1:])
    np.testing.assert_allclose(reference(pw, mid[None], w2)[0], out, rtol=1e-12)


@pytest.mark.parametrize("p", G.PROPERTY_EXAMPLES, ids=lambda e: e["name"])
def test_oracle_property_examples(p):
    ex = CONV_BY_NAME[p["example"]]
    assert ex["mode"] == "full" and ex["op"] == "convolve"
    in1, in2, exp = (np.asarray(ex[k], dtype=np.int64) for k in ("in1", "in2", "expected"))
    if p["property"] == "convolution_theorem":
        shape = tuple(a + b - 1 for a, b in zip(in1.shape, in2.shape, strict=True))
        y = np.fft.irfft2(np.fft.rfft2(in1, shape) * np.fft.rfft2(in2, shape), shape)
        np.testing.assert_allclose(y, exp, atol=1e-9 * _scale(in1, in2) * in2.size)
        np.testing.assert_array_equal(np.rint(y).astype(np.int64), exp)
    elif p["property"] == "commutative":
        np.testing.assert_array_equal(ss.convolve2d(in2, in1, mode="full"), exp)
    elif p["property"] == "separable":
        col, row = np.asarray(p["column"])[:, None], np.asarray(p["row"])[None, :]
        np.testing.assert_array_equal(col @ row, in2)
        np.testing.assert_array_equal(ss.convolve2d(ss.convolve2d(in1, col), row), exp)
    else:
        raise AssertionError(p["property"])


def test_correlation_not_commutative_ugr():
    """001: 'No commutative!!!!' - swapping image and kernel of the correlation changes it."""
    a = CONV_BY_NAME["ugr_correlate_kernel_1to9_over_impulse_same"]
    b = CONV_BY_NAME["ugr_correlate_impulse_kernel_over_1to9_same"]
    assert a["in1"] == b["in2"] and a["in2"] == b["in1"]
    assert a["expected"] != b["expected"]


# =============================================================================================
# Part 2: gpuconv against the golden values
# =============================================================================================


def _conv_case_ids(case):
    ex, dtype = case
    return f"{ex['name']}-{np.dtype(dtype).name}"


CONV_CASES = [(ex, dt) for ex in G.CONV_EXAMPLES for dt in DTYPES]


def _inputs(ex, dtype):
    return _arr(ex["in1"], dtype), _arr(ex["in2"], dtype), np.asarray(ex["expected"])


@pytest.mark.parametrize("case", CONV_CASES, ids=_conv_case_ids)
@pytest.mark.parametrize(
    "boundary_args", [{}, {"boundary": "fill", "fillvalue": 0}], ids=["default", "fill0"]
)
def test_gpuconv_2d_functions(case, boundary_args):
    ex, dtype = case
    in1, in2, exp = _inputs(ex, dtype)
    fn = getattr(_gpuconv(), {"convolve": "convolve2d", "correlate": "correlate2d"}[ex["op"]])
    got = fn(in1, in2, ex["mode"], **boundary_args)
    assert _np(got).dtype == _scipy2d(ex["op"])(in1, in2, ex["mode"]).dtype
    assert_close(got, exp, dtype, in2.size, _scale(in1, in2))
    if ex["mode"] != "full":  # the keyword form, and the default mode on a second call
        assert_close(fn(in1, in2, mode=ex["mode"]), exp, dtype, in2.size, _scale(in1, in2))


@pytest.mark.parametrize("case", CONV_CASES, ids=_conv_case_ids)
@pytest.mark.parametrize("method", METHODS)
def test_gpuconv_nd_functions(case, method):
    ex, dtype = case
    in1, in2, exp = _inputs(ex, dtype)
    skip_if_method_unsupported(
        method, spec_for(ex["op"], ex["mode"], in1.shape, in2.shape, dtype), in2
    )
    fn = getattr(_gpuconv(), ex["op"])
    got = fn(in1, in2, mode=ex["mode"], method=method)
    if method in ("auto", "direct", "fft"):
        assert _np(got).dtype == _scipynd(ex["op"])(in1, in2, ex["mode"], method=method).dtype
    assert_close(got, exp, dtype, in2.size, _scale(in1, in2))


def test_gpuconv_default_mode_is_full():
    ex = CONV_BY_NAME["iitj_conv_3x3_by_1x3_full"]
    in1, in2, exp = _inputs(ex, np.int64)
    g = _gpuconv()
    np.testing.assert_array_equal(_np(g.convolve2d(in1, in2)), exp)
    np.testing.assert_array_equal(_np(g.convolve(in1, in2)), exp)
    ex = CONV_BY_NAME["iitj_correlate_2x2_2x2_full"]
    in1, in2, exp = _inputs(ex, np.int64)
    np.testing.assert_array_equal(_np(g.correlate2d(in1, in2)), exp)
    np.testing.assert_array_equal(_np(g.correlate(in1, in2)), exp)


@pytest.mark.parametrize("ex", list(_one_d_cases()), ids=lambda e: e["name"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("method", METHODS)
def test_gpuconv_one_d_rows(ex, dtype, method):
    in1, h, exp = _as_rows(ex)
    in1, h = in1.astype(dtype), h.astype(dtype)
    skip_if_method_unsupported(
        method, spec_for("convolve", "full", in1.shape[1:], h.shape, dtype), h
    )
    for row, erow in zip(in1, exp, strict=True):
        got = _gpuconv().convolve(row, h, mode="full", method=method)
        assert_close(got, erow, dtype, h.size, _scale(row, h))


@pytest.mark.parametrize("case", CONV_CASES, ids=_conv_case_ids)
@pytest.mark.parametrize("algo", EXEC_ALGOS)
def test_gpuconv_execute_conv_examples(case, algo):
    ex, dtype = case
    in1, in2, exp = _inputs(ex, dtype)
    spec = spec_for(ex["op"], ex["mode"], in1.shape, in2.shape, dtype)
    got = execute(spec, in1[None, None], in2[None, None], algo)
    assert got.shape == spec.y_shape
    assert_close(got[0, 0], exp, dtype, in2.size, _scale(in1, in2))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("algo", EXEC_ALGOS)
def test_gpuconv_execute_rgb_layer(dtype, algo):
    d, x, w = _rgb()
    full, grouped = _rgb_specs(dtype)
    xs, ws = x.astype(dtype), w.astype(dtype)
    y = execute(full, xs[None], ws[None], algo)
    assert y.shape == (1, 1, 5, 5)
    assert_close(y[0, 0, 0, 0] + d["bias"], d["expected_top_left"], dtype, 27, 170.0)
    y = execute(grouped, xs[None], ws[:, None], algo)
    assert y.shape == (1, 3, 5, 5)
    assert_close(y[0, :, 0, 0], d["per_channel_top_left"], dtype, 9, 170.0)


@pytest.mark.parametrize("d", G.SHAPE_EXAMPLES, ids=lambda e: e["name"])
@pytest.mark.parametrize("algo", EXEC_ALGOS)
def test_gpuconv_execute_shape_examples(d, algo):
    spec = _shape_spec(d, np.float64)
    x = _det(spec.x_shape, 7, np.float64)
    w = _det(spec.w_shape, 5, np.float64)
    y = execute(spec, x, w, algo)
    assert y.shape == (1, d["c_out"], d["out"], d["out"])
    taps = d["c_in"] * d["k"] ** 2
    assert_close(y, reference(spec, x, w), np.float64, taps, 12.0)


@pytest.mark.parametrize("algo", EXEC_ALGOS)
def test_gpuconv_execute_stride_does_not_fit(algo):
    d = G.STRIDE_DOES_NOT_FIT
    spec = _shape_spec(dict(d, c_in=1, c_out=1), np.float64)
    x, w = _det(spec.x_shape, 7, np.float64), _det(spec.w_shape, 5, np.float64)
    y = execute(spec, x, w, algo)
    assert y.shape[2:] == (d["floor_out"],) * 2
    assert_close(y, reference(spec, x, w), np.float64, 9, 12.0)


@pytest.mark.parametrize("algo", EXEC_ALGOS)
def test_gpuconv_execute_depthwise_separable(algo):
    d = G.DEPTHWISE_SEPARABLE_UGR
    dws, pws = _depthwise_specs()
    x = _det(dws.x_shape, 7, np.float64)
    w1, w2 = _det(dws.w_shape, 5, np.float64), _det(pws.w_shape, 3, np.float64)
    mid = execute(dws, x, w1, algo)
    assert mid.shape[1:] == d["depthwise_out"]
    assert_close(mid, reference(dws, x, w1), np.float64, 9, 12.0)
    out = execute(pws, mid, w2, algo)
    assert out.shape == (1, d["c_out"], 8, 8)
    assert_close(out, reference(pws, reference(dws, x, w1), w2), np.float64, 27, 12.0 * 27)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_gpuconv_matrix_examples(dtype):
    g = _gpuconv()
    d = G.IM2COL_HCMUT
    x, w = _arr(d["x"], dtype), _arr(d["w"], dtype)
    assert_close(g.convolve2d(x, w, "valid"), d["expected"], dtype, 9, 6.0)
    assert_close(g.correlate2d(x, d["w_rot180"], "valid"), d["expected"], dtype, 9, 6.0)
    d = G.TOEPLITZ_IITJ
    x1, x2 = _arr(d["x1"], dtype), _arr(d["x2"], dtype)
    assert_close(g.correlate2d(x1, x2, "full"), d["expected"], dtype, 4, 20.0)
    assert_close(g.convolve2d(x1, _arr(d["x2_fold"], dtype), "full"), d["expected"], dtype, 4, 20.0)
    y = np.asarray(d["A"]) @ np.asarray(d["v"])
    assert_close(_np(g.correlate2d(x1, x2)).ravel(), y, dtype, 4, 20.0)


def _sym_expected():
    d = G.SYMBOLIC_HCMUT
    y = (_sub(d["w_conv"]) @ SYM_X.ravel()).reshape(2, 2)
    dx = _sym_grad(d["dx"], [s for row in d["dx_grid"] for s in row]).reshape(3, 3)
    dw = _sym_grad(d["dw"], ["w11", "w12", "w21", "w22"]).reshape(2, 2)
    return y, dx, dw


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_gpuconv_symbolic_forward_and_gradients(dtype):
    g = _gpuconv()
    y, dx, dw = _sym_expected()
    X, W, DY = SYM_X.astype(dtype), SYM_W.astype(dtype), SYM_DY.astype(dtype)
    assert_close(g.convolve2d(X, W, "valid"), y, dtype, 4, 23.0 * 41)
    assert_close(g.convolve(X, W, mode="valid"), y, dtype, 4, 23.0 * 41)
    assert_close(g.correlate2d(DY, W, "full"), dx, dtype, 4, 59.0 * 41)
    assert_close(_rot180(_np(g.correlate2d(X, DY, "valid"))), dw, dtype, 4, 59.0 * 23)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("algo", EXEC_ALGOS)
def test_gpuconv_execute_symbolic_forward_and_gradients(dtype, algo):
    y, dx, dw = _sym_expected()
    X, W, DY = (a.astype(dtype)[None, None] for a in (SYM_X, SYM_W, SYM_DY))
    dt = np.dtype(dtype)
    fwd = ConvSpec((3, 3), (2, 2), flip=True, dtype=dt)
    bwd_x = ConvSpec((2, 2), (2, 2), pad_lo=1, pad_hi=1, flip=False, dtype=dt)
    bwd_w = ConvSpec((3, 3), (2, 2), flip=False, dtype=dt)
    assert_close(execute(fwd, X, W, algo)[0, 0], y, dtype, 4, 23.0 * 41)
    assert_close(execute(bwd_x, DY, W, algo)[0, 0], dx, dtype, 4, 59.0 * 41)
    assert_close(_rot180(execute(bwd_w, X, DY, algo)[0, 0]), dw, dtype, 4, 59.0 * 23)


@pytest.mark.parametrize("p", G.PROPERTY_EXAMPLES, ids=lambda e: e["name"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_gpuconv_property_examples(p, dtype):
    g = _gpuconv()
    in1, in2, exp = _inputs(CONV_BY_NAME[p["example"]], dtype)
    sc = _scale(in1, in2)
    if p["property"] == "convolution_theorem":
        assert_close(g.convolve(in1, in2, mode="full", method="fft"), exp, dtype, in2.size, sc)
    elif p["property"] == "commutative":
        assert_close(g.convolve2d(in2, in1, "full"), exp, dtype, in2.size, sc)
        assert_close(g.convolve(in2, in1, mode="full"), exp, dtype, in2.size, sc)
    elif p["property"] == "separable":
        col, row = _arr(p["column"], dtype)[:, None], _arr(p["row"], dtype)[None, :]
        assert_close(g.convolve2d(_np(g.convolve2d(in1, col)), row), exp, dtype, in2.size, sc)
    else:
        raise AssertionError(p["property"])
