"""gpuconv.cuda.implicit_gemm (kernels_cuda/igemm.cu): every variant against tests/reference.py.

Tests taking ``gpu`` run on a CUDA device (``[cuda]``, skipped without one) and on the CPU
(``[host]``), where the fake CuPy of tests/fake_cupy.py checks each launch against the kernel's C
signature and runs the real kernel source compiled for the CPU (tests/cuda_host: the 256 threads
of a block as coroutines switching at __syncthreads, canary guards around every array).  Outputs
are poisoned with NaN and passed as ``out=``, so an element no block writes, a wrong tile
mapping, a missed tail (M: Cog past the tile, N: batch * P past it, K: Cig * taps not a multiple
of 8), a wrong padding / stride / dilation / group offset or a short grid fails the comparison.
Problems are kept small: the emulation costs about a microsecond per thread switch.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from gpuconv import _epilogue, dispatch
from gpuconv._spec import ConvSpec
from gpuconv.cuda import _build, _loader
from gpuconv.cuda import implicit_gemm as ig
from tests.conftest import assert_conv_equal, random_array
from tests.fake_cupy import kernel_signatures
from tests.reference import reference

pytestmark = pytest.mark.gpu

#: variant id -> (dtype, forced tile or None, forced K splits or None): None is the planner's
VARIANTS = {
    "f32-128x128": (np.float32, (128, 128), 1),
    "f32-64x128": (np.float32, (64, 128), 1),
    "f32-auto": (np.float32, None, None),
    "f64-64x64": (np.float64, (64, 64), 1),
    # split K: partial sums in a workspace, igemm_reduce_*; 3 splits of K = 9 (two steps) leave
    # the last one empty (it writes zeros)
    "f32-128x128-split3": (np.float32, (128, 128), 3),
    "f32-64x128-split2": (np.float32, (64, 128), 2),
    "f64-64x64-split3": (np.float64, (64, 64), 3),
}

CASES = [
    # 1-D: channels, batch, asymmetric padding, convolution (flip)
    dict(in_shape=(17,), kernel_shape=(4,), batch=3, c_in=2, c_out=3, pad_lo=3, pad_hi=1,
         flip=True),
    # 1-D stride + dilation, K = 21 (tail), N = 2 * 63 (tail)
    dict(in_shape=(200,), kernel_shape=(7,), batch=2, c_in=3, c_out=5, stride=3, dilation=2,
         pad_lo=5, pad_hi=2),
    # ResNet-like 3x3 pad 1, 64 -> 64 at 14x14: K = 576, P = 196 (vector stores), N tiles
    # straddling batch items
    dict(in_shape=(14, 14), kernel_shape=(3, 3), batch=2, c_in=64, c_out=64, pad_lo=1, pad_hi=1),
    # ResNet conv1-like: 3 -> 16 at 23x23, 7x7 stride 2 pad 3: K = 147, P = 144
    dict(in_shape=(23, 23), kernel_shape=(7, 7), batch=2, c_in=3, c_out=16, stride=2, pad_lo=3,
         pad_hi=3),
    # ResNet 1x1 256 -> 64 at 7x7: P = 49 (scalar stores), N = 98
    dict(in_shape=(7, 7), kernel_shape=(1, 1), batch=2, c_in=256, c_out=64),
    # groups with stride and dilation
    dict(in_shape=(9, 10), kernel_shape=(3, 2), batch=2, c_in=6, c_out=4, groups=2,
         stride=(2, 1), dilation=(1, 2), pad_lo=1, pad_hi=(2, 0), flip=True),
    # depthwise (Cig = Cog = 1: one row of a tile, K = 9)
    dict(in_shape=(11, 12), kernel_shape=(3, 3), batch=2, c_in=5, c_out=5, groups=5, pad_lo=1,
         pad_hi=1),
    # M tail: Cog = 130 is two 128-row tiles (three 64-row ones), the last nearly empty
    dict(in_shape=(6, 7), kernel_shape=(3, 3), c_in=3, c_out=130, pad_lo=1),
    # padding wider than the input
    dict(in_shape=(4, 5), kernel_shape=(3, 3), c_in=2, c_out=3, pad_lo=4, pad_hi=4, flip=True),
    # no tails: K = 8, N = 256 = 2 x 128, Cog = 64
    dict(in_shape=(16, 16), kernel_shape=(1, 1), c_in=8, c_out=64),
    # 3-D: stride, dilation, asymmetric padding, flip, batch
    dict(in_shape=(5, 6, 7), kernel_shape=(3, 2, 3), batch=2, c_in=2, c_out=3, stride=(1, 2, 1),
         dilation=(2, 1, 1), pad_lo=(2, 0, 1), pad_hi=(1, 1, 0), flip=True),
    # 3-D grouped, 1x1x1 taps along one axis
    dict(in_shape=(4, 5, 6), kernel_shape=(2, 1, 3), c_in=4, c_out=6, groups=2, pad_lo=1),
]  # fmt: skip


def _ids(d):
    return ",".join(f"{k}={v}" for k, v in d.items())


def _run_checked(gpu, spec, rng, tile=None, splits=None, **epi):
    """Run into a poisoned ``out``; return (x, w, result as NumPy)."""
    x = random_array(rng, spec.x_shape, spec.dtype)
    w = random_array(rng, spec.w_shape, spec.dtype)
    out = gpu.full(spec.y_shape, np.nan, dtype=spec.dtype)
    y = ig.run(spec, gpu.asarray(x), gpu.asarray(w), out=out, tile=tile, splits=splits, **epi)
    assert y is out
    return x, w, gpu.asnumpy(y)


def _expected_launches(spec, pl, nbs=None):
    s = ig.suffix(spec)
    out = []
    for nb in nbs or [spec.batch]:
        out.append((f"igemm_{s}", *ig.launch_config(spec, nb, pl.bm, pl.bn, pl.splits)))
        if pl.splits > 1:
            out.append((f"igemm_reduce_{s}", *ig.reduce_config(spec, nb)))
    return out


def _launches(gpu):
    """The fake's launch log ([host]); None on a real device."""
    return getattr(gpu, "launches", None)


# ---------------------------------------------------------------------------------------------
# correctness of every variant


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("kw", CASES, ids=_ids)
def test_matches_reference(gpu, rng, kw, variant):
    dtype, tile, splits = VARIANTS[variant]
    spec = ConvSpec(dtype=dtype, **kw)
    assert ig.supports(spec) is None
    x, w, got = _run_checked(gpu, spec, rng, tile, splits)
    want = reference(spec, x, w).astype(spec.dtype)
    assert_conv_equal(got, want, x, w)
    log = _launches(gpu)
    if log is not None:
        assert log == _expected_launches(spec, ig.plan(spec, tile=tile, splits=splits))
    # and without out=: a fresh array
    y2 = ig.run(spec, gpu.asarray(x), gpu.asarray(w), tile=tile, splits=splits)
    assert isinstance(y2, gpu.ndarray) and y2.dtype == spec.dtype
    assert_conv_equal(gpu.asnumpy(y2), want, x, w)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("activation", [None, "relu", "leaky_relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("splits", [1, 2], ids=["whole-K", "split-K"])
def test_fused_epilogue(gpu, rng, dtype, activation, with_bias, splits):
    # P = 30: scalar stores; Cog = 5 and K = 18: M and K tails
    spec = ConvSpec(in_shape=(5, 6), kernel_shape=(3, 3), batch=2, c_in=2, c_out=5, pad_lo=1,
                    pad_hi=1, flip=True, dtype=dtype)  # fmt: skip
    code, slope = _epilogue.check("test", activation, 0.1, dtype)
    bias = random_array(rng, (spec.c_out,), dtype) if with_bias else None
    epi = dict(bias=None if bias is None else gpu.asarray(bias), act=code, slope=slope)
    x, w, got = _run_checked(gpu, spec, rng, splits=splits, **epi)
    want = _epilogue.apply(reference(spec, x, w).astype(dtype), bias, code, slope)
    assert_conv_equal(got, want, x, w)


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_fused_epilogue_vector_stores(gpu, rng, activation):
    """P = 64: the vector-store path of the epilogue, across groups."""
    spec = ConvSpec(in_shape=(8, 8), kernel_shape=(3, 3), batch=2, c_in=4, c_out=6, groups=2,
                    pad_lo=1, pad_hi=1, dtype=np.float32)  # fmt: skip
    code, slope = _epilogue.check("test", activation, 0.1, spec.dtype)
    bias = random_array(rng, (spec.c_out,), spec.dtype)
    x, w, got = _run_checked(gpu, spec, rng, bias=gpu.asarray(bias), act=code, slope=slope)
    want = _epilogue.apply(reference(spec, x, w).astype(spec.dtype), bias, code, slope)
    assert_conv_equal(got, want, x, w)


def test_nan_stays_in_its_outputs(gpu, rng):
    """A NaN in x reaches exactly the outputs whose window holds it (no tile-wide spread), and
    every activation keeps it."""
    spec = ConvSpec(in_shape=(9, 9), kernel_shape=(3, 3), c_in=2, c_out=3, dtype=np.float32)
    x = random_array(rng, spec.x_shape, spec.dtype)
    x[0, 1, 4, 4] = np.nan
    w = random_array(rng, spec.w_shape, spec.dtype)
    want = np.isnan(reference(spec, x, w))
    for code in (0, 1, 2, 3, 4):
        y = gpu.asnumpy(ig.run(spec, gpu.asarray(x), gpu.asarray(w), act=code, slope=0.1))
        np.testing.assert_array_equal(np.isnan(y), want)
    assert want.sum() == 3 * 9


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_non_finite_values_stay_in_their_outputs(gpu, rng, variant):
    """inf in x and w reach exactly the outputs the reference gives inf / NaN.  The K-tail rows of
    a step (K = 9 here) multiply a zero from one operand by whatever the other holds there: w of
    the next output channel, x of the next group or batch item; unguarded, an inf there would
    turn unrelated outputs into NaN."""
    dtype, tile, splits = VARIANTS[variant]
    spec = ConvSpec(in_shape=(6, 7), kernel_shape=(3, 3), batch=2, c_in=2, c_out=6, groups=2,
                    pad_lo=1, pad_hi=1, dtype=dtype)  # fmt: skip
    x = random_array(rng, spec.x_shape, dtype)
    w = random_array(rng, spec.w_shape, dtype)
    x[0, 1, 3, 3] = np.inf  # read by group 0's K tail (channel Cig) if unguarded
    x[1, 0, 2, 4] = np.inf  # read by batch item 0, group 1's K tail
    w[3, 0, 0, 0] = np.inf  # read by output channel 2's K tail (the next row of w~)
    want = reference(spec, x, w)
    out = gpu.full(spec.y_shape, 7.0, dtype=dtype)
    got = gpu.asnumpy(ig.run(spec, gpu.asarray(x), gpu.asarray(w), out=out, tile=tile,
                             splits=splits))  # fmt: skip
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    assert np.isfinite(want[:, :3]).sum() > 0 and np.isfinite(want).sum() < want.size


@pytest.mark.parametrize("splits", [1, 2])
def test_batch_chunks(gpu, rng, monkeypatch, splits):
    """Launches of at most MAX_N columns: 5 items of P = 20 in chunks of 2, 2, 1 (the workspace
    of split K sized for a chunk and reused)."""
    spec = ConvSpec(in_shape=(6, 7), kernel_shape=(3, 3), batch=5, c_in=3, c_out=4, stride=(1, 2),
                    pad_lo=(0, 1), dtype=np.float32)  # fmt: skip
    monkeypatch.setattr(ig, "MAX_N", 2 * math.prod(spec.out_shape) + 1)
    assert ig.batch_chunk(spec) == 2
    bias = random_array(rng, (spec.c_out,), spec.dtype)
    x, w, got = _run_checked(gpu, spec, rng, splits=splits, bias=gpu.asarray(bias), act=2,
                             slope=0.25)  # fmt: skip
    want = _epilogue.apply(reference(spec, x, w).astype(spec.dtype), bias, 2, 0.25)
    assert_conv_equal(got, want, x, w)
    log = _launches(gpu)
    if log is not None:
        pl = ig.plan(spec, splits=splits)
        assert log == _expected_launches(spec, pl, [2, 2, 1])


def test_more_splits_than_steps(gpu, rng):
    """K = 12 is two steps; 7 splits leave five ranges empty, which must add zeros."""
    spec = ConvSpec(in_shape=(7,), kernel_shape=(3,), batch=2, c_in=4, c_out=3, pad_lo=1,
                    dtype=np.float64)  # fmt: skip
    b = random_array(rng, (spec.c_out,), spec.dtype)
    x, w, got = _run_checked(gpu, spec, rng, splits=7, bias=gpu.asarray(b), act=4)
    want = _epilogue.apply(reference(spec, x, w), b, 4, 0.0)
    assert_conv_equal(got, want, x, w)


@pytest.mark.parametrize(("tile", "splits"), [((128, 128), 1), ((64, 128), 1), ((64, 128), 2)])
def test_grid_strided(gpu, rng, monkeypatch, tile, splits):
    """grid.y and grid.z capped at 1: one block column loops over every M tile, group and K
    split (and the reduce's grid.y over every plane)."""
    spec = ConvSpec(in_shape=(5, 6), kernel_shape=(2, 3), batch=2, c_in=6, c_out=390, groups=3,
                    pad_lo=1, dtype=np.float32)  # fmt: skip
    monkeypatch.setattr(_build, "GRID_YZ_MAX", 1)
    x, w, got = _run_checked(gpu, spec, rng, tile, splits)
    assert_conv_equal(got, reference(spec, x, w).astype(spec.dtype), x, w)
    log = _launches(gpu)
    if log is not None:
        assert log[0][1][1:] == (1, 1) and all(g[1] == 1 for _, g, _ in log)


def test_unaligned_out_takes_scalar_stores(gpu, rng):
    """``out`` one element past a 16-byte boundary (a device pointer the vector stores cannot
    take; the host shim re-aligns copies, so there it checks the plumbing only)."""
    spec = ConvSpec(in_shape=(8, 8), kernel_shape=(3, 3), c_in=2, c_out=3, pad_lo=1, pad_hi=1,
                    dtype=np.float32)  # fmt: skip
    x = random_array(rng, spec.x_shape, spec.dtype)
    w = random_array(rng, spec.w_shape, spec.dtype)
    buf = gpu.full(math.prod(spec.y_shape) + 1, np.nan, dtype=spec.dtype)
    out = buf[1:].reshape(spec.y_shape)
    y = ig.run(spec, gpu.asarray(x), gpu.asarray(w), out=out)
    assert_conv_equal(gpu.asnumpy(y), reference(spec, x, w).astype(spec.dtype), x, w)
    assert np.isnan(gpu.asnumpy(buf)[0])


def test_argument_errors(gpu, rng):
    spec = ConvSpec(in_shape=(6, 6), kernel_shape=(3, 3), c_out=2, dtype=np.float32)
    x = gpu.asarray(random_array(rng, spec.x_shape, spec.dtype))
    w = gpu.asarray(random_array(rng, spec.w_shape, spec.dtype))
    with pytest.raises(ValueError, match="bias has 3 elements"):
        ig.run(spec, x, w, bias=gpu.zeros(3, np.float32))
    with pytest.raises(ValueError, match="out has shape"):
        ig.run(spec, x, w, out=gpu.empty((1, 2, 3), np.float32))
    with pytest.raises(ValueError, match="do not match"):
        ig.run(spec, w, x)
    with pytest.raises(ValueError, match="no implicit-GEMM variant f32 32x32"):
        ig.run(spec, x, w, tile=(32, 32))
    with pytest.raises(ValueError, match="splits must be >= 1"):
        ig.run(spec, x, w, splits=0)
    bad = ConvSpec(in_shape=(6, 6), kernel_shape=(3, 3), dtype=np.complex64)
    with pytest.raises(ValueError, match="implicit-GEMM kernel cannot"):
        ig.run(bad, gpu.zeros(bad.x_shape, bad.dtype), gpu.zeros(bad.w_shape, bad.dtype))


# ---------------------------------------------------------------------------------------------
# host-side pieces (no kernel runs)


def test_supports_reasons():
    assert "float32 and float64 only" in ig.supports(
        ConvSpec(in_shape=(5,), kernel_shape=(3,), dtype=np.complex64)
    )
    assert "float32 and float64 only" in ig.supports(
        ConvSpec(in_shape=(5,), kernel_shape=(3,), dtype=np.complex128)
    )
    assert "float32 and float64 only" in ig.supports(
        ConvSpec(in_shape=(5,), kernel_shape=(3,), dtype=np.int64)
    )
    four = ConvSpec(in_shape=(3, 4, 3, 5), kernel_shape=(2, 1, 3, 2), dtype=np.float32)
    assert "4 spatial axes" in ig.supports(four)
    assert "outputs per plane" in ig.supports(ConvSpec(in_shape=(2**31,), kernel_shape=(1,)))
    far = ConvSpec(in_shape=(10,), kernel_shape=(2,), stride=2**20, pad_lo=2**30, dtype=np.float32)
    assert "32-bit index range" in ig.supports(far)
    wide = ConvSpec(in_shape=(4, 4), kernel_shape=(1, 1), c_in=2**31, dtype=np.float32)
    assert "inner dimension" in ig.supports(wide)
    assert ig.supports(ConvSpec(in_shape=(4, 5, 6), kernel_shape=(2, 2, 2))) is None


def test_variants_and_defines():
    vs = ig.variants()
    assert [(d["IG_BM"], d["IG_BN"], names) for _, d, names in vs] == [
        (128, 128, ["igemm_f32", "igemm_reduce_f32"]),
        (64, 128, ["igemm_f32", "igemm_reduce_f32"]),
        (64, 64, ["igemm_f64", "igemm_reduce_f64"]),
    ]
    assert ig.igemm_defines(64, 64, "float64") == ig.igemm_defines(64, 64, "f64")
    assert ig.igemm_defines(64, 64, np.dtype(np.float64))["IG_F64"] == 1
    with pytest.raises(ValueError, match="no implicit-GEMM variant"):
        ig.igemm_defines(128, 128, "f64")
    T = {"f32": "float", "f64": "double"}
    for source, defines, _ in vs:
        text = _loader.assemble_source(source, defines)
        for name, value in defines.items():
            assert f"#define {name} {value}" in text
        sigs = kernel_signatures(text)
        for s, t in T.items():
            sig = sigs[f"igemm_{s}"]
            assert len(sig) == 29
            assert sig[:3] == [(t, True)] * 3
            assert sig[3:26] == [("int", False)] * 23
            assert sig[26:] == [(t, True), ("int", False), ("double", False)]
            red = sigs[f"igemm_reduce_{s}"]
            assert red == [(t, True)] * 2 + [("int", False)] * 4 + sig[26:]
    for knob in ("IG_BM", "IG_BN", "IG_MIN_BLOCKS", "IG_KU"):
        assert f"#ifndef {knob}" in _loader.assemble_source(ig.SOURCE, {})


def test_kernel_args_and_launch_config():
    spec = ConvSpec(in_shape=(9, 10), kernel_shape=(3, 2), batch=4, c_in=6, c_out=140, groups=2,
                    stride=(2, 1), dilation=(1, 2), pad_lo=(1, 0), pad_hi=2)  # fmt: skip
    args = ig.kernel_args(spec, "x", "w", "y", 3, 5, ("b", np.int32(1), np.float64(0.5)))
    assert all(type(a) is np.int32 for a in args[3:26])
    ints = [int(a) for a in args[3:26]]
    assert ints == [3, 6, 140, 2, 1, 9, 10, 1, *spec.out_shape, 1, 3, 2, 1, 2, 1, 1, 1, 2,
                    0, 1, 0, 5]  # fmt: skip
    assert args[:3] == ("x", "w", "y") and args[26] == "b"
    assert ig.kernel_args(spec, "x", "w", "y", 3, 1)[26:] == ig.NO_EPILOGUE
    P = math.prod(spec.out_shape)
    grid, block = ig.launch_config(spec, 3, 64, 128)
    assert block == (256, 1, 1)
    assert grid == (-(-3 * P // 128), 2, 2)  # Cog = 70: two 64-row tiles; two groups
    assert ig.launch_config(spec, 3, 64, 128, 4)[0][2] == 8  # groups * splits
    big = ConvSpec(in_shape=(2, 2), kernel_shape=(1, 1), c_in=70000, c_out=70000, groups=70000)
    assert ig.launch_config(big, 1, 64, 64)[0][1:] == (1, 65535)
    rargs = ig.reduce_args(spec, "ws", "y", 3, 5, ("b", np.int32(1), np.float64(0.5)))
    assert [int(a) for a in rargs[2:6]] == [5, 3 * 140, 140, P]
    rgrid, _ = ig.reduce_config(spec, 3)
    assert rgrid == (1, 3 * 140, 1)
    assert ig.reduce_config(big, 1)[0][1] == 65535


def _layer(cin, cout, hw, k, s=1, batch=32, dtype=np.float32):
    return ConvSpec(in_shape=(hw, hw), kernel_shape=(k, k), batch=batch, c_in=cin, c_out=cout,
                    stride=s, pad_lo=k // 2, pad_hi=k // 2, dtype=dtype)  # fmt: skip


RESNET50 = [  # (C_in, C_out, size, kernel, stride) of /work/shared/anchors.md "CNN layers"
    (3, 64, 224, 7, 2),
    (64, 64, 56, 3, 1),
    (128, 128, 28, 3, 1),
    (256, 256, 14, 3, 1),
    (512, 512, 7, 3, 1),
    (256, 64, 56, 1, 1),
]


def test_plan():
    P = ig.IgPlan
    assert ig.plan(_layer(64, 64, 56, 3, dtype=np.float64)) == P(64, 64, 1)
    assert ig.plan(_layer(3, 64, 224, 7, 2)) == P(64, 128, 1)  # Cog <= 64
    assert ig.plan(_layer(256, 64, 56, 1)) == P(64, 128, 1)
    # many tiles: the 128 x 128 tile's efficiency wins, no split
    assert ig.plan(_layer(128, 128, 56, 3)) == P(128, 128, 1)
    # few tiles (196, 98, 52 of 128 x 128 for 132 SMs): K split until the SMs are busy
    assert ig.plan(_layer(128, 128, 28, 3)) == P(128, 128, 2)
    assert ig.plan(_layer(256, 256, 14, 3)) == P(128, 128, 4)
    assert ig.plan(_layer(512, 512, 7, 3)) == P(128, 128, 5)
    # forced choices; the model is pure and sees the SM count
    assert ig.plan(_layer(512, 512, 7, 3), tile=(64, 128)).bm == 64
    assert ig.plan(_layer(512, 512, 7, 3), splits=1).splits == 1
    assert ig.choose_tile(_layer(512, 512, 7, 3)) == (128, 128)
    s = _layer(256, 256, 28, 3)
    assert ig.tile_model(s, 128, 128, 1, 10) < ig.tile_model(s, 128, 128, 1, 5)
    # a problem with one K step is never split; no split leaves an empty range
    assert ig.split_options(_layer(8, 8, 7, 1, batch=1)) == [1]
    for spec in (_layer(512, 512, 7, 3), _layer(3, 5, 9, 3, batch=1)):
        steps = ig._steps(spec)
        for k in ig.split_options(spec):
            assert (k - 1) * -(-steps // k) < steps


def test_split_options_respect_the_workspace_budget(monkeypatch):
    spec = _layer(512, 512, 7, 3)
    y_bytes = math.prod(spec.y_shape) * 4
    monkeypatch.setattr(ig, "WORKSPACE_BUDGET", 3 * y_bytes)
    assert ig.split_options(spec) == [1, 2, 3]
    assert ig.plan(spec).splits <= 3


def _constants():
    c = dict(dispatch.CUDA_CONSTANTS)
    c.setdefault("igemm_penalty", 1.4)
    c.setdefault("overhead_implicit_gemm", 15e-6)
    return c


def test_cost_is_sane():
    c = _constants()
    s = _layer(64, 64, 56, 3)
    t = ig.cost(s, c)
    assert 0 < t < math.inf
    # at least the MACs at the penalised cuBLAS rate, the bytes, the overhead
    floor = s.macs * c["gemm_mac_f32"] * c["igemm_penalty"] + s.min_bytes * c["stream_byte"]
    assert floor + c["overhead_implicit_gemm"] <= t < 1.5 * floor
    c2 = dict(c, overhead_implicit_gemm=c["overhead_implicit_gemm"] + 1.0)
    assert ig.cost(s, c2) == pytest.approx(t + 1.0)
    c3 = dict(c, igemm_penalty=2 * c["igemm_penalty"])
    assert ig.cost(s, c3) > 1.8 * (t - s.min_bytes * c["stream_byte"])
    # float64: the f64 GEMM rate
    assert ig.cost(_layer(64, 64, 56, 3, dtype=np.float64), c) > t
    # tails: Cog = 3 fills 3 rows of a 64-row tile, so a MAC costs about 20x as much
    thin = _layer(64, 3, 56, 3)
    per_mac = (t - c["overhead_implicit_gemm"]) / s.macs
    thin_per_mac = (ig.cost(thin, c) - c["overhead_implicit_gemm"]) / thin.macs
    assert thin_per_mac > 10 * per_mac
    # split K pays for its partial results and reduce launch
    big = _layer(512, 512, 7, 3)
    pl = ig.plan(big)
    assert pl.splits > 1
    whole = ig.plan_seconds(big, ig.IgPlan(pl.bm, pl.bn, 1), c)
    assert ig.cost(big, c) < whole
    extra = 2 * pl.splits * math.prod(big.y_shape) * 4 * c["stream_byte"] + ig.REDUCE_LAUNCH
    base = ig.tile_model(big, pl.bm, pl.bn, pl.splits) * ig.DEFAULT_SMS
    base = base * c["gemm_mac_f32"] * c["igemm_penalty"]
    base += big.min_bytes * c["stream_byte"] + c["overhead_implicit_gemm"]
    assert ig.cost(big, c) == pytest.approx(base + extra)
    # declined problems cost inf
    assert ig.cost(ConvSpec(in_shape=(5,), kernel_shape=(3,), dtype=np.complex64), c) == math.inf


@pytest.mark.parametrize("layer", RESNET50, ids=lambda v: "x".join(map(str, v)))
def test_cost_of_resnet_layers(layer):
    """The model's estimates at batch 32 (predictions: bench/NOTES-gpu-implicit-gemm.md) lie
    between the arithmetic floor at the measured cuBLAS rate and 2x cuDNN's measured time, and
    under the generic direct kernel's."""
    spec = _layer(*layer)
    c = _constants()
    t = ig.cost(spec, c)
    cudnn = {224: 0.397e-3, 56: 0.265e-3, 28: 0.162e-3, 14: 0.202e-3, 7: 0.320e-3}[layer[2]]
    if layer[3] == 1:
        cudnn = 0.134e-3
    assert spec.macs * c["gemm_mac_f32"] < t < 2 * cudnn
    assert t < dispatch._cuda_direct_cost(spec, c)


# ---------------------------------------------------------------------------------------------
# nvcc: every variant compiles for sm_80 and sm_90 with no spill and no stack frame

_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")


def _ptxas(tmp_path, source, defines, arch, job):
    src = tmp_path / f"igemm_{job}.cu"
    src.write_text(_loader.assemble_source(source, defines))
    inc = _loader.module_options()[-1]
    cmd = ["nvcc", "-std=c++17", f"-arch={arch}", "-cubin", "-Xptxas", "-v", inc, "-o",
           str(tmp_path / f"igemm_{job}.cubin"), str(src)]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_every_variant_compiles_without_spills(tmp_path):
    jobs = [(v, arch) for v in ig.variants() for arch in ("sm_80", "sm_90")]
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(lambda ij: _ptxas(tmp_path, *ij[1][0][:2], ij[1][1], ij[0]), enumerate(jobs))
        )
    for ((_, defines, names), arch), (rc, log) in zip(jobs, results):
        what = f"{defines} {arch}"
        assert rc == 0, f"{what}:\n{log}"
        assert [n for n in names if f"'{n}'" not in log] == [], what
        frames = [m.groups() for m in _FRAME.finditer(log)]
        assert len(frames) == len(names), (what, log)
        assert all(f == ("0", "0", "0") for f in frames), (what, log)


# ---------------------------------------------------------------------------------------------
# on a device: the ResNet-50 layers at batch 2 and every variant


@pytest.mark.parametrize("layer", RESNET50, ids=lambda v: "x".join(map(str, v)))
def test_device_resnet_layers(device, rng, layer):
    import cupy as cp

    spec = _layer(*layer, batch=2)
    x = random_array(rng, spec.x_shape, spec.dtype)
    w = random_array(rng, spec.w_shape, spec.dtype)
    b = random_array(rng, (spec.c_out,), spec.dtype)
    want = reference(spec, x, w).astype(spec.dtype)
    xd, wd = cp.asarray(x), cp.asarray(w)
    for tile in ig.tiles_for(spec):
        for splits in (1, 3):
            out = cp.full(spec.y_shape, np.nan, dtype=spec.dtype)
            y = ig.run(spec, xd, wd, out=out, tile=tile, splits=splits)
            assert_conv_equal(cp.asnumpy(y), want, x, w)
    expect = _epilogue.apply(want.copy(), b, 1, 0.0)
    for splits in (1, 3):
        y = ig.run(spec, xd, wd, bias=cp.asarray(b), act=1, splits=splits)
        assert_conv_equal(cp.asnumpy(y), expect, x, w)
