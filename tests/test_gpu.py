"""GPU algorithms (gpuconv.cuda.*) against tests/reference.py and the CPU algorithms.

Tests taking the ``gpu`` fixture run twice: on a CUDA device (``[cuda]``, skipped with the reason
when CuPy or a device is missing) and on the CPU (``[host]``), where a fake CuPy runs the same
kernel sources compiled by the host C++ compiler (tests/cuda_host): the device code's indexing,
bounds and barrier phases are checked on any machine, its races and speed only on a GPU.  Tests
taking ``device`` need the real thing (streams, NVRTC, grids too large to emulate).  All are
marked ``gpu`` (``python -m pytest -m gpu tests/test_gpu.py``, or ``ci/gpu-check``).  Outputs are poisoned (NaN, or a sentinel for int64) and passed as ``out=`` so
an element a kernel never writes fails the comparison.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from gpuconv._spec import ConvSpec
from gpuconv.cuda import _build
from tests.conftest import assert_conv_equal, random_array
from tests.reference import reference

pytestmark = pytest.mark.gpu

ALGORITHMS = ["direct", "fft", "im2col", "overlap_add"]
DTYPES = [np.float32, np.float64, np.complex64, np.complex128, np.int64]
SENTINEL = np.iinfo(np.int64).min + 7

SPECS = [
    # 1-D
    dict(in_shape=(17,), kernel_shape=(4,), batch=3, c_in=2, c_out=3, pad_lo=3, pad_hi=1, flip=True),
    dict(in_shape=(5,), kernel_shape=(9,), pad_lo=6, pad_hi=6),
    dict(in_shape=(1000,), kernel_shape=(31,), stride=3, dilation=2, pad_lo=20, pad_hi=5),
    # 1-D fast path: several tiles, taps in chunks of OPT plus a remainder, depthwise, the
    # longest halo a tile holds (and one tap more: the generic kernel)
    dict(in_shape=(5000,), kernel_shape=(31,), pad_lo=15, pad_hi=15, flip=True),
    dict(in_shape=(700,), kernel_shape=(13,), batch=2, c_in=3, c_out=3, groups=3, pad_lo=2),
    dict(in_shape=(3000,), kernel_shape=(1025,), pad_lo=512, pad_hi=512),
    dict(in_shape=(2600,), kernel_shape=(2049,), pad_lo=2048, pad_hi=3, flip=True),
    dict(in_shape=(2600,), kernel_shape=(2050,), pad_lo=100, pad_hi=7),
    # 2-D fast path: every compiled size, single channel (constant filter) and depthwise
    *[dict(in_shape=(45, 67), kernel_shape=(k, k), pad_lo=k // 2, pad_hi=(k - 1) // 2, flip=True)
      for k in _build.FAST2D_SIZES],
    dict(in_shape=(40, 64), kernel_shape=(5, 5), batch=2, c_in=3, c_out=3, groups=3),
    dict(in_shape=(33, 32), kernel_shape=(3, 3), pad_lo=(0, 2), pad_hi=(4, 0)),  # vector loads
    dict(in_shape=(9, 11), kernel_shape=(7, 7), pad_lo=9, pad_hi=9),  # padding wider than x
    # 2-D generic: sizes with no variant, stride, dilation, groups, channels
    dict(in_shape=(20, 21), kernel_shape=(6, 6), pad_lo=3, pad_hi=2, flip=True),
    dict(in_shape=(30, 31), kernel_shape=(17, 17), pad_lo=8, pad_hi=8),
    dict(in_shape=(6, 7), kernel_shape=(2, 3), batch=2, c_in=2, c_out=4, groups=2),
    dict(in_shape=(10, 9), kernel_shape=(3, 2), stride=(2, 1), dilation=(1, 2), pad_lo=2),
    dict(in_shape=(14, 14), kernel_shape=(3, 3), batch=2, c_in=8, c_out=6, pad_lo=1, pad_hi=1),
    dict(in_shape=(6, 5), kernel_shape=(1, 1), batch=2, c_in=4, c_out=6, groups=2),
    # 3-D
    dict(in_shape=(5, 6, 4), kernel_shape=(2, 3, 2), c_in=2, c_out=2, stride=(1, 2, 1), pad_lo=1),
    dict(in_shape=(8, 9, 10), kernel_shape=(3, 3, 3), batch=2, pad_lo=1, pad_hi=1, flip=True),
    # 3-D fast path: several bricks on every axis, uneven extents, depthwise, the longest
    # kernel a brick holds for each element size, and one tap more (the generic kernel)
    dict(in_shape=(11, 13, 70), kernel_shape=(3, 4, 2), pad_lo=(1, 2, 0), pad_hi=(1, 1, 1)),
    dict(in_shape=(7, 9, 35), kernel_shape=(3, 3, 3), batch=2, c_in=2, c_out=2, groups=2,
         pad_lo=1, pad_hi=1, flip=True),
    dict(in_shape=(9, 12, 40), kernel_shape=(5, 5, 5), pad_lo=2, pad_hi=2),
    dict(in_shape=(10, 12, 40), kernel_shape=(7, 7, 7), pad_lo=3, pad_hi=3, flip=True),
    dict(in_shape=(10, 12, 40), kernel_shape=(9, 9, 9), pad_lo=4, pad_hi=4),
    dict(in_shape=(10, 12, 40), kernel_shape=(9, 10, 9), pad_lo=4, pad_hi=4),
]  # fmt: skip


def _ids(d):
    return ",".join(f"{k}={v}" for k, v in d.items())


def _poisoned(cp, spec):
    fill = SENTINEL if spec.dtype.kind == "i" else np.nan
    return cp.full(spec.y_shape, fill, dtype=spec.dtype)


def _inputs(rng, spec):
    return random_array(rng, spec.x_shape, spec.dtype), random_array(rng, spec.w_shape, spec.dtype)


def _check(name, spec, rng, compare_cpu=True):
    import cupy as cp

    mod = importlib.import_module(f"gpuconv.cuda.{name}")
    reason = mod.supports(spec)
    if reason is not None:
        pytest.skip(reason)
    x, w = _inputs(rng, spec)
    out = _poisoned(cp, spec)
    y = mod.run(spec, cp.asarray(x), cp.asarray(w), out=out)
    assert y is out
    got = cp.asnumpy(y)
    want = reference(spec, x, w).astype(spec.dtype)
    assert_conv_equal(got, want, x, w)
    if compare_cpu:
        cpu = importlib.import_module(f"gpuconv.cpu.{name}")
        if cpu.supports(spec) is None:
            assert_conv_equal(got, np.asarray(cpu.run(spec, x, w)).astype(spec.dtype), x, w)
    # and without out=
    y2 = mod.run(spec, cp.asarray(x), cp.asarray(w))
    assert isinstance(y2, cp.ndarray) and y2.dtype == spec.dtype
    assert_conv_equal(cp.asnumpy(y2), want, x, w)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kw", SPECS, ids=_ids)
@pytest.mark.parametrize("name", ALGORITHMS)
def test_gpu_matches_reference_and_cpu(gpu, rng, name, kw, dtype):
    _check(name, ConvSpec(dtype=dtype, **kw), rng, compare_cpu=dtype in (np.float64, np.int64))


@pytest.mark.parametrize("name", ALGORITHMS)
def test_gpu_chunked_batches(gpu, rng, name, monkeypatch):
    mod = importlib.import_module(f"gpuconv.cuda.{name}")
    for attr in ("MEMORY_BUDGET", "WORKSPACE_BUDGET"):
        if hasattr(mod, attr):
            monkeypatch.setattr(mod, attr, 1)
    spec = ConvSpec(in_shape=(12, 13), kernel_shape=(3, 3), batch=5, c_in=2, c_out=3, pad_lo=1,
                    dtype=np.float64)  # fmt: skip
    _check(name, spec, rng, compare_cpu=False)


@pytest.mark.parametrize("dtype", [np.float32, np.complex128])
def test_direct_many_planes_grid_strided(device, rng, dtype):
    # more than 65535 planes: blockIdx.z (fast) / blockIdx.y (generic) stride over them
    fast = ConvSpec(in_shape=(4, 5), kernel_shape=(3, 3), batch=66000, pad_lo=1, dtype=dtype)
    generic = ConvSpec(in_shape=(4, 5), kernel_shape=(2, 2), batch=33000, c_out=2, stride=2,
                       dtype=dtype)  # fmt: skip
    _check("direct", fast, rng, compare_cpu=False)
    _check("direct", generic, rng, compare_cpu=False)


def test_direct_constant_filter_is_updated_between_calls(gpu, rng):
    """Two single-channel problems back to back (same module, different filters, no sync)."""
    import cupy as cp

    from gpuconv.cuda import direct

    spec = ConvSpec(in_shape=(50, 64), kernel_shape=(5, 5), pad_lo=2, pad_hi=2, dtype=np.float32)
    x = random_array(rng, spec.x_shape, spec.dtype)
    ws = [random_array(rng, spec.w_shape, spec.dtype) for _ in range(3)]
    xd = cp.asarray(x)
    ys = [direct.run(spec, xd, cp.asarray(w)) for w in ws]
    for w, y in zip(ws, ys):
        assert_conv_equal(cp.asnumpy(y), reference(spec, x, w).astype(spec.dtype), x, w)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_gpu_on_a_non_default_stream(device, rng, name):
    import cupy as cp

    mod = importlib.import_module(f"gpuconv.cuda.{name}")
    spec = ConvSpec(in_shape=(64, 64), kernel_shape=(7, 7), pad_lo=3, pad_hi=3, dtype=np.float32)
    x, w = _inputs(rng, spec)
    s = cp.cuda.Stream(non_blocking=True)
    with s:
        y = mod.run(spec, cp.asarray(x), cp.asarray(w), out=_poisoned(cp, spec))
    s.synchronize()
    assert_conv_equal(cp.asnumpy(y), reference(spec, x, w).astype(spec.dtype), x, w)


def test_col2im_is_the_adjoint_of_im2col(gpu, rng):
    import cupy as cp

    from gpuconv.cuda import im2col

    spec = ConvSpec(in_shape=(9, 10), kernel_shape=(3, 2), batch=2, c_in=3, stride=(2, 1),
                    dilation=(1, 2), pad_lo=1, pad_hi=2)  # fmt: skip
    x = cp.asarray(rng.standard_normal(spec.x_shape))
    col = im2col.im2col(spec, x)
    c = cp.asarray(rng.standard_normal(col.shape))
    back = im2col.col2im(spec, c, out=cp.full(spec.x_shape, np.nan))
    assert not bool(cp.isnan(back).any())
    lhs, rhs = float(cp.vdot(col, c)), float(cp.vdot(x, back))
    assert np.isclose(lhs, rhs, rtol=1e-12, atol=1e-9)


def test_mixed_inputs_raise(device):
    import cupy as cp

    from gpuconv._arrays import array_module

    with pytest.raises(TypeError, match="cupy.asarray"):
        array_module(np.zeros(3), cp.zeros(3))
    assert array_module(cp.zeros(3), cp.ones(2)) == "cupy"


def test_broken_kernel_source_names_kernel_and_options(device, tmp_path):
    from gpuconv.cuda import _loader

    (tmp_path / "broken.cu").write_text(
        '#include "common.cuh"\nextern "C" __global__ void broken_k(float* p) { p[0] = nope; }\n'
    )
    (tmp_path / "common.cuh").write_text("#pragma once\n")
    with pytest.raises(_loader.KernelCompileError) as e:
        _loader.get_function("broken.cu", "broken_k", {"SOME_DEFINE": 3}, directory=tmp_path)
    msg = str(e.value)
    assert "broken_k" in msg and "broken.cu" in msg and "SOME_DEFINE=3" in msg
    assert "-std=c++17" in msg and "nope" in msg


def test_every_variant_compiles_under_nvrtc(device):
    from gpuconv.cuda import _loader

    for source, defines, names in _build.variants():
        for n in names:
            assert _loader.get_function(source, n, defines) is not None
    # cached: the same object again
    src, defs, names = _build.variants()[0]
    assert _loader.get_function(src, names[0], defs) is _loader.get_function(src, names[0], defs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", [None, "relu", "leaky_relu", "sigmoid", "tanh"])
def test_gpu_bias_activation_epilogue(gpu, rng, dtype, activation):
    """conv2d's bias + activation kernel on the GPU gives the CPU pass's result."""
    import cupy as cp

    import gpuconv

    x = random_array(rng, (3, 4, 33, 40), dtype)
    w = random_array(rng, (6, 4, 3, 3), dtype)
    b = random_array(rng, (6,), dtype)
    kw = dict(padding=1, activation=activation, negative_slope=0.1)
    expected = gpuconv.conv2d(x, w, b, **kw)
    y = gpuconv.conv2d(cp.asarray(x), cp.asarray(w), cp.asarray(b), **kw)
    assert isinstance(y, cp.ndarray) and y.dtype == dtype
    atol = 64 * np.finfo(dtype).eps * float(np.abs(x).max() * np.abs(w).sum(axis=(1, 2, 3)).max())
    np.testing.assert_allclose(cp.asnumpy(y), expected, rtol=0, atol=atol)


GRAD_SPECS = [
    dict(in_shape=(11, 10), kernel_shape=(3, 2), batch=2, c_in=3, c_out=4, stride=2, pad_lo=1),
    dict(in_shape=(12, 13), kernel_shape=(3, 3), batch=1, c_in=4, c_out=4, groups=4, stride=2,
         pad_lo=1, pad_hi=1),
    dict(in_shape=(17,), kernel_shape=(4,), batch=3, c_in=2, c_out=6, groups=2, stride=3,
         dilation=2, pad_lo=2, pad_hi=3, flip=True),
    dict(in_shape=(6, 7, 5), kernel_shape=(2, 3, 2), c_in=2, c_out=2, stride=(1, 2, 1), pad_lo=1),
    dict(in_shape=(9, 9), kernel_shape=(1, 1), batch=2, c_in=4, c_out=3, stride=2),
]  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.int64],
                         ids=lambda d: np.dtype(d).name)  # fmt: skip
@pytest.mark.parametrize("kw", GRAD_SPECS, ids=_ids)
@pytest.mark.parametrize(("name", "op"), [("direct", "backward_data"), ("im2col", "backward_data"),
                                          ("im2col", "backward_weight")])  # fmt: skip
def test_gpu_native_backward_passes(gpu, rng, name, op, kw, dtype):
    """The GPU's native transposed kernels against the CPU's passes (strided problems, where no
    remap onto a forward problem exists)."""
    from gpuconv import dispatch

    spec = ConvSpec(dtype=dtype, **kw)
    x = random_array(rng, spec.x_shape, spec.dtype)
    w = random_array(rng, spec.w_shape, spec.dtype)
    dy = random_array(rng, spec.y_shape, spec.dtype)
    a, b = (dy, w) if op == "backward_data" else (x, dy)
    alg = dispatch.get_algorithm(name, "cuda")
    assert alg.route(spec, op)[0] == "native"
    got = alg.run(spec, gpu.asarray(a), gpu.asarray(b), op)
    assert isinstance(got, gpu.ndarray) and got.dtype == spec.dtype
    want = dispatch.execute(spec, a, b, "direct", op=op)  # the CPU's native passes
    assert_conv_equal(gpu.asnumpy(got), want, a, b)


FAST_MULTI_PLANE = [
    ((300,), (15,), 1),
    ((300,), (7,), 3),
    ((40, 37), (3, 3), 1),
    ((40, 37), (5, 5), 3),
    ((9, 10, 11), (3, 3, 3), 1),
    ((9, 10, 11), (3, 3, 3), 3),
]


@pytest.mark.parametrize(("shape", "kernel", "groups"), FAST_MULTI_PLANE)
@pytest.mark.parametrize("dtype", [np.float32, np.complex128])
def test_fast_direct_kernels_reuse_their_tile_for_the_next_plane(
    gpu, rng, monkeypatch, shape, kernel, groups, dtype
):
    """grid.y / grid.z capped at 2, so each block of the fast 1-D / 2-D / 3-D kernels stages
    several planes (or z bricks) in turn through one shared tile: without the barrier after the
    tile's last read a fast thread overwrites what a slow one still reads."""
    from gpuconv import dispatch
    from gpuconv.cuda import direct as cuda_direct

    monkeypatch.setattr(_build, "GRID_YZ_MAX", 2)
    spec = ConvSpec(in_shape=shape, kernel_shape=kernel, batch=3, c_in=groups, c_out=groups,
                    groups=groups, pad_lo=tuple(k // 2 for k in kernel),
                    pad_hi=tuple((k - 1) // 2 for k in kernel), dtype=dtype)  # fmt: skip
    reason = {1: cuda_direct.fast1d_reason, 2: cuda_direct.fast2d_reason,
              3: cuda_direct.fast3d_reason}[len(shape)](spec)  # fmt: skip
    assert reason is None, reason
    x = random_array(rng, spec.x_shape, dtype)
    w = random_array(rng, spec.w_shape, dtype)
    got = dispatch.get_algorithm("direct", "cuda").run(spec, gpu.asarray(x), gpu.asarray(w))
    assert_conv_equal(gpu.asnumpy(got), reference(spec, x, w).astype(dtype), x, w)
