"""gpuconv.cuda.overlap_add (GPU overlap-save): host code against the fake CuPy, plan and cost
sanity, and one test on a real device (skipped without one).

The fake (tests/fake_cupy.py) checks every launch against the kernel's C signature parsed from
kernels_cuda/tiles.cu and runs the real kernel source compiled for the CPU (tests/cuda_host);
outputs are poisoned first, so an element no launch writes, a wrong argument or a short grid
fails.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys

import numpy as np
import pytest

from gpuconv import _epilogue
from gpuconv._spec import ConvSpec
from gpuconv.cuda import _build, _loader
from gpuconv.cuda import fft as cuda_fft
from gpuconv.cuda import overlap_add as oa
from tests.conftest import assert_conv_equal, random_array
from tests.fake_cupy import kernel_signatures, poison
from tests.reference import reference

TILES_KERNELS = next(v for v in _build.variants() if v[0] == "tiles.cu")[2]

DTYPES = [np.float32, np.float64, np.complex64, np.complex128, np.int64]


@pytest.fixture
def forced(monkeypatch):
    """forced(lengths): make the planner return these tile lengths (None: its own choice)."""

    def force(lengths):
        if lengths is not None:
            monkeypatch.setattr(oa, "_choose", lambda spec: tuple(lengths))

    return force


def _chunk_budget(monkeypatch, spec, items_per_chunk):
    pl = oa.plan(spec)
    monkeypatch.setattr(oa, "MEMORY_BUDGET", items_per_chunk * oa.item_bytes(spec, pl))
    assert oa.items_chunk(spec, pl) == min(items_per_chunk, spec.batch * pl.ntiles)
    return pl


# ---------------------------------------------------------------------------------------------
# the host path against the fake: reference, all dtypes, forced and natural plans, chunks

#: (problem, tile lengths to force or None for the planner's own choice)
CASES = [
    # 1-D: channels and batch; kernel longer than the input; stride + dilation; B = 1
    (dict(in_shape=(50,), kernel_shape=(7,), batch=2, c_in=2, c_out=3, pad_lo=3, pad_hi=3,
          flip=True), (16,)),
    (dict(in_shape=(5,), kernel_shape=(9,), pad_lo=6, pad_hi=6), (12,)),
    (dict(in_shape=(100,), kernel_shape=(7,), stride=3, dilation=2, pad_lo=5, pad_hi=2), (20,)),
    (dict(in_shape=(20,), kernel_shape=(5,), batch=2, pad_lo=1, flip=True), (6,)),
    # 2-D: odd / even kernels, asymmetric padding, groups, one axis whole, stride + dilation
    (dict(in_shape=(40, 37), kernel_shape=(5, 5), pad_lo=(2, 3), pad_hi=(0, 4)), (16, 12)),
    (dict(in_shape=(23, 29), kernel_shape=(4, 6), batch=2, c_in=4, c_out=6, groups=2, pad_lo=2,
          pad_hi=1, flip=True), (12, 16)),
    (dict(in_shape=(9, 60), kernel_shape=(3, 5), c_out=2), (10, 16)),
    (dict(in_shape=(31, 34), kernel_shape=(3, 4), stride=(2, 3), dilation=(2, 1), pad_lo=(1, 2),
          pad_hi=(3, 0)), (14, 18)),
    (dict(in_shape=(17, 19), kernel_shape=(3, 3), batch=3, c_in=3, c_out=3, groups=3, pad_lo=1,
          pad_hi=1), (8, 8)),
    (dict(in_shape=(30, 30), kernel_shape=(11, 11), pad_lo=5, pad_hi=5, flip=True), (12, 12)),
    # 3-D
    (dict(in_shape=(9, 10, 11), kernel_shape=(3, 2, 4), c_in=2, c_out=2, stride=(1, 2, 1),
          pad_lo=1), (6, 8, 8)),
    (dict(in_shape=(7, 8, 9), kernel_shape=(2, 3, 2), dilation=(2, 1, 3), batch=2, c_in=2,
          c_out=4, groups=2, pad_lo=(1, 0, 2), pad_hi=(0, 1, 1), flip=True), (5, 6, 8)),
    # tiles wider than one block along x (several x blocks in the gather and the scatter)
    (dict(in_shape=(1500,), kernel_shape=(40,), stride=2, pad_lo=20, pad_hi=19), (600,)),
    (dict(in_shape=(12, 700), kernel_shape=(3, 31), c_out=2, pad_lo=(1, 15), pad_hi=(1, 15)),
     (14, 512)),
    # the planner's own tiles
    (dict(in_shape=(3000,), kernel_shape=(31,), pad_lo=15, pad_hi=15, flip=True), None),
    (dict(in_shape=(300, 280), kernel_shape=(17, 17), pad_lo=8, pad_hi=8, flip=True), None),
]  # fmt: skip


def _case_id(case):
    kw, lengths = case
    return ",".join(f"{k}={v}" for k, v in kw.items()) + f",L={lengths}"


def _run_checked(spec, rng, **epi):
    x = random_array(rng, spec.x_shape, spec.dtype)
    w = random_array(rng, spec.w_shape, spec.dtype)
    want = reference(spec, x, w).astype(spec.dtype)
    out = poison(spec)
    y = oa.run(spec, x, w, out=out, **epi)
    assert y is out
    return x, w, y, want


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_fake_overlap_save_matches_reference(fake_cupy, forced, rng, monkeypatch, case, dtype):
    kw, lengths = case
    spec = ConvSpec(dtype=dtype, **kw)
    forced(lengths)
    assert oa.supports(spec) is None
    pl = _chunk_budget(monkeypatch, spec, 3)  # 3 items a chunk: chunks start inside batch items
    x, w, y, want = _run_checked(spec, rng)
    assert_conv_equal(y, want, x, w)
    items = spec.batch * pl.ntiles
    names = [n for n, _, _ in fake_cupy.launches]
    chunks = -(-items // 3)
    sfx = {"float32": "f32", "float64": "f64", "complex64": "c64", "complex128": "c128",
           "int64": "i64"}[spec.dtype.name]  # fmt: skip
    assert names.count(f"tiles_gather_{sfx}") == chunks
    assert names.count(f"tiles_scatter_{sfx}") == chunks
    assert sum(n.startswith("spectral_") for n in names) == chunks
    # and without out= (one chunk)
    monkeypatch.setattr(oa, "MEMORY_BUDGET", 1 << 30)
    y2 = oa.run(spec, x, w)
    assert_conv_equal(y2, want, x, w)


@pytest.mark.parametrize("per_chunk", [1, 2, 5, 7, 1000])
def test_fake_chunk_sizes(fake_cupy, forced, rng, monkeypatch, per_chunk):
    """Chunks of 1, 2, 5, 7 items over 2 batch items of 3 x 4 tiles (and one chunk)."""
    spec = ConvSpec(in_shape=(20, 30), kernel_shape=(5, 4), batch=2, c_in=2, c_out=3, pad_lo=2,
                    pad_hi=(2, 1), dtype=np.float64)  # fmt: skip
    forced((11, 12))
    pl = _chunk_budget(monkeypatch, spec, per_chunk)
    assert pl.tiles == (3, 4)
    x, w, y, want = _run_checked(spec, rng)
    assert_conv_equal(y, want, x, w)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", [None, "relu", "leaky_relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("with_bias", [True, False])
def test_fake_fused_epilogue(fake_cupy, forced, rng, monkeypatch, dtype, activation, with_bias):
    spec = ConvSpec(in_shape=(21, 26), kernel_shape=(4, 5), batch=2, c_in=2, c_out=3, pad_lo=2,
                    pad_hi=1, stride=(1, 2), flip=True, dtype=dtype)  # fmt: skip
    forced((10, 12))
    _chunk_budget(monkeypatch, spec, 4)
    code, slope = _epilogue.check("test", activation, 0.1, dtype)
    bias = random_array(rng, (spec.c_out,), dtype) if with_bias else None
    x, w, y, want = _run_checked(spec, rng, bias=bias, act=code, slope=slope)
    want = _epilogue.apply(want, bias, code, slope)
    assert_conv_equal(y, want, x, w)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128, np.int64])
def test_fake_bias_for_complex_and_int(fake_cupy, forced, rng, dtype):
    spec = ConvSpec(in_shape=(19,), kernel_shape=(6,), batch=2, c_in=2, c_out=3, pad_lo=3,
                    dtype=dtype)  # fmt: skip
    forced((12,))
    bias = random_array(rng, (spec.c_out,), dtype)
    x, w, y, want = _run_checked(spec, rng, bias=bias)
    assert_conv_equal(y, want + bias[None, :, None], x, w)


def test_fake_epilogue_errors(fake_cupy, forced, rng):
    forced((12,))
    for dtype in (np.complex64, np.int64):
        spec = ConvSpec(in_shape=(19,), kernel_shape=(6,), dtype=dtype)
        x = random_array(rng, spec.x_shape, dtype)
        w = random_array(rng, spec.w_shape, dtype)
        with pytest.raises(ValueError, match="activation"):
            oa.run(spec, x, w, act=1)
    spec = ConvSpec(in_shape=(19,), kernel_shape=(6,), c_out=2, dtype=np.float32)
    x = random_array(rng, spec.x_shape, spec.dtype)
    w = random_array(rng, spec.w_shape, spec.dtype)
    with pytest.raises(ValueError, match="bias has 3 elements"):
        oa.run(spec, x, w, bias=np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="activation code"):
        oa.run(spec, x, w, act=9)
    with pytest.raises(ValueError, match="out has shape"):
        oa.run(spec, x, w, out=np.empty((1, 2, 3), np.float32))


def test_fake_nan_stays_nan(fake_cupy, forced, rng):
    """A NaN in x spreads over its tiles' outputs (an FFT mixes a tile); every activation keeps
    exactly those NaN."""
    spec = ConvSpec(in_shape=(30,), kernel_shape=(5,), dtype=np.float32)
    forced((12,))
    x = random_array(rng, spec.x_shape, spec.dtype)
    x[0, 0, 10] = np.nan
    w = random_array(rng, spec.w_shape, spec.dtype)
    nan = np.isnan(oa.run(spec, x, w))
    assert nan.any() and not nan.all()
    for code in (1, 2, 3, 4):
        y = oa.run(spec, x, w, act=code, slope=0.1)
        np.testing.assert_array_equal(np.isnan(y), nan)


# ---------------------------------------------------------------------------------------------
# supports, plan, cost


def test_supports_declines_when_no_axis_is_split():
    small = ConvSpec(in_shape=(16, 16), kernel_shape=(3, 3))
    reason = oa.supports(small)
    assert reason is not None and "one tile" in reason and "'fft'" in reason
    assert not any(oa.plan(small).split)
    assert "spatial axes" in oa.supports(ConvSpec(in_shape=(3, 3, 3, 3), kernel_shape=(1,) * 4))
    assert oa.cost(ConvSpec(in_shape=(3, 3, 3, 3), kernel_shape=(1,) * 4), {}) == math.inf


def test_run_refuses_what_supports_declines(fake_cupy):
    spec = ConvSpec(in_shape=(16, 16), kernel_shape=(3, 3))
    with pytest.raises(ValueError, match="overlap-save"):
        oa.run(spec, np.zeros(spec.x_shape), np.zeros(spec.w_shape))


PLAN_SPECS = [
    dict(in_shape=(4096, 4096), kernel_shape=(31, 31), pad_lo=15, pad_hi=15, flip=True),
    dict(in_shape=(4096, 4096), kernel_shape=(15, 15), pad_lo=7, pad_hi=7),
    dict(in_shape=(2000, 3000), kernel_shape=(63, 9), pad_lo=(31, 4), pad_hi=(31, 4)),
    dict(in_shape=(1 << 20,), kernel_shape=(1001,), pad_lo=500, pad_hi=500),
    dict(in_shape=(100000,), kernel_shape=(64,), stride=4, dilation=3),
    dict(in_shape=(256, 256, 256), kernel_shape=(9, 9, 9), pad_lo=4, pad_hi=4),
    dict(in_shape=(64, 2048), kernel_shape=(5, 101), batch=4, c_in=3, c_out=5),
    dict(in_shape=(1000, 1000), kernel_shape=(21, 21), stride=3, pad_lo=10, pad_hi=10),
]


@pytest.mark.parametrize("dtype", [np.float32, np.complex128, np.int64])
@pytest.mark.parametrize("kw", PLAN_SPECS, ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()))
def test_plan_sanity(kw, dtype):
    spec = ConvSpec(dtype=dtype, **kw)
    pl = oa.plan(spec)
    real = spec.dtype.kind != "c"
    plain = cuda_fft.lengths(spec, real)
    assert any(pl.split), pl
    assert oa.supports(spec) is None
    for a in range(spec.ndim):
        L, B, T, need, R = pl.lengths[a], pl.valid[a], pl.tiles[a], pl.need[a], spec.reach[a]
        assert cuda_fft._factor7(L) is not None
        assert B == L - R + 1 >= 1
        assert need == (spec.out_shape[a] - 1) * spec.stride[a] + 1
        assert T * B >= need > (T - 1) * B  # the tiles cover the output, none is surplus
        if pl.split[a]:
            assert oa.MIN_TILE <= L < plain[a]
        if real and a == spec.ndim - 1:
            assert L % 2 == 0
    assert oa.plan(spec) is not None and oa.plan(spec) == pl  # cached, deterministic
    c = dict(oa.PLAN_CONSTANTS)
    t = oa.cost(spec, c)
    assert 0 < t < math.inf
    c["overhead_overlap_add"] += 1.0
    chunks = -(-spec.batch * pl.ntiles // oa.items_chunk(spec, pl))
    assert oa.cost(spec, c) == pytest.approx(t + 1.0 + 0.25 * (chunks - 1))


def test_plan_of_the_target_problem():
    """4096^2 float32 'same' with 31 x 31: tiles of a few hundred, all split, the model's estimate
    well under cupyx fftconvolve's ~1.5 ms (a prediction: see bench/NOTES-gpu-overlap-save.md)."""
    spec = ConvSpec(**PLAN_SPECS[0], dtype=np.float32)
    pl = oa.plan(spec)
    assert all(128 <= L <= 1024 for L in pl.lengths)
    assert oa.cost(spec, oa.PLAN_CONSTANTS) < 1.5e-3 / 2


def test_make_plan_checks_lengths():
    spec = ConvSpec(in_shape=(50,), kernel_shape=(9,))
    with pytest.raises(ValueError, match="shorter than the kernel reach"):
        oa.make_plan(spec, (8,))
    with pytest.raises(ValueError, match="spatial axes"):
        oa.make_plan(spec, (16, 16))
    pl = oa.make_plan(spec, (9,))
    assert pl.valid == (1,) and pl.tiles == (42,)


def test_tiles_launch_covers_the_width():
    for width in (1, 5, 31, 32, 33, 100, 255, 256, 257, 288, 448, 1000, 4097):
        for rows in (1, 7, 10**6):
            grid, block = oa.tiles_launch(width, rows, 10**6)
            assert grid[0] * block[0] >= width > (grid[0] - 1) * block[0]
            assert block[0] % 32 == 0 and block[0] * block[1] <= _build.TILES_THREADS
            assert grid[1] <= 65535 and grid[2] == 65535


def test_tiles_kernels_are_declared_for_every_dtype():
    sigs = kernel_signatures(_loader.assemble_source(oa.SOURCE, _build.tiles_defines()))
    for name in TILES_KERNELS:
        assert name in sigs, name
    assert sigs["tiles_gather_i64"][:2] == [("long long", True), ("double", True)]
    assert sigs["tiles_scatter_i64"][:3] == [("double", True), ("long long", True),
                                            ("long long", True)]  # fmt: skip
    assert len(sigs["tiles_gather_f32"]) == 2 + 19
    assert sigs["tiles_scatter_c64"][-1] == ("double", False)


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_tiles_cu_compiles_without_spills(tmp_path):
    """nvcc for sm_90: every entry point compiles, no spill, no stack frame (ci/check_kernels.py
    checks sm_80 too once the variant is registered)."""
    src = tmp_path / "tiles.cu"
    src.write_text(_loader.assemble_source(oa.SOURCE, _build.tiles_defines()))
    inc = _loader.module_options()[-1]
    cmd = ["nvcc", "-std=c++17", "-arch=sm_90", "-cubin", "-Xptxas", "-v", inc, "-o",
           str(tmp_path / "tiles.cubin"), str(src)]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    log = r.stdout + r.stderr
    for name in TILES_KERNELS:
        assert f"'{name}'" in log, name
    assert "bytes spill" in log
    frames = [ln for ln in log.splitlines() if "stack frame" in ln]
    assert len(frames) == len(TILES_KERNELS)
    assert all(ln.split()[0] == "0" and "0 bytes spill stores, 0 bytes spill loads" in ln
               for ln in frames), frames  # fmt: skip


# ---------------------------------------------------------------------------------------------
# on a device


@pytest.mark.gpu
def test_gpu_overlap_save_matches_cpu(device, rng, monkeypatch):
    import cupy as cp

    from gpuconv.cpu import fft as cpu_fft

    specs = [
        (ConvSpec(in_shape=(512, 512), kernel_shape=(31, 31), pad_lo=15, pad_hi=15, flip=True,
                  dtype=np.float32), None),
        (ConvSpec(in_shape=(3000,), kernel_shape=(31,), batch=2, c_in=2, c_out=3, pad_lo=15,
                  pad_hi=15, dtype=np.complex128), None),
        *[(ConvSpec(dtype=d, **kw), L) for kw, L in CASES if L is not None for d in DTYPES],
    ]  # fmt: skip
    planner = oa._choose
    for spec, lengths in specs:
        monkeypatch.setattr(oa, "_choose", planner if lengths is None else lambda s: lengths)
        monkeypatch.setattr(oa, "MEMORY_BUDGET", 3 * oa.item_bytes(spec, oa.plan(spec)))
        x = random_array(rng, spec.x_shape, spec.dtype)
        w = random_array(rng, spec.w_shape, spec.dtype)
        out = cp.asarray(poison(spec))
        y = oa.run(spec, cp.asarray(x), cp.asarray(w), out=out)
        assert y is out
        got = cp.asnumpy(y)
        assert_conv_equal(got, reference(spec, x, w).astype(spec.dtype), x, w)
        if cpu_fft.supports(spec) is None and spec.dtype in (np.float64, np.complex128):
            cpu = np.asarray(cpu_fft.run(spec, x, w)).astype(spec.dtype)
            assert_conv_equal(got, cpu, x, w)
    # the fused epilogue against the CPU pass
    spec = ConvSpec(in_shape=(200, 300), kernel_shape=(15, 15), batch=2, c_in=3, c_out=4,
                    pad_lo=7, pad_hi=7, dtype=np.float32)  # fmt: skip
    monkeypatch.setattr(oa, "_choose", lambda s: (64, 64))
    x = random_array(rng, spec.x_shape, spec.dtype)
    w = random_array(rng, spec.w_shape, spec.dtype)
    b = random_array(rng, (spec.c_out,), spec.dtype)
    want = reference(spec, x, w).astype(spec.dtype)
    for code in (0, 1, 2, 3, 4):
        y = oa.run(spec, cp.asarray(x), cp.asarray(w), bias=cp.asarray(b), act=code, slope=0.1)
        expect = _epilogue.apply(want.copy(), b, code, 0.1)
        atol = 64 * np.finfo(np.float32).eps * float(np.abs(x).max() * np.abs(w).sum() + 1)
        np.testing.assert_allclose(cp.asnumpy(y), expect, rtol=1e-5, atol=atol)


@pytest.mark.parametrize("dtype", [np.float32, np.complex128, np.int64],
                         ids=lambda d: np.dtype(d).name)  # fmt: skip
def test_fake_cupyx_transform_branch(fake_cupy, forced, rng, monkeypatch, dtype):
    """The transforms a real CuPy takes (cupyx.scipy.fft with overwrite_x, the inverse with
    norm='forward'), here scipy.fft with the same signature: same results as the other branch."""
    import types

    import scipy.fft

    fft = types.SimpleNamespace(**{n: getattr(np.fft, n) for n in dir(np.fft) if "fft" in n})
    fft.config = types.SimpleNamespace()  # marks CuPy's own fft module
    monkeypatch.setattr(fake_cupy, "fft", fft, raising=False)
    cupyx = types.ModuleType("cupyx")
    cupyx.scipy = types.ModuleType("cupyx.scipy")
    cupyx.scipy.fft = scipy.fft
    for name, mod in [
        ("cupyx", cupyx),
        ("cupyx.scipy", cupyx.scipy),
        ("cupyx.scipy.fft", scipy.fft),
    ]:
        monkeypatch.setitem(sys.modules, name, mod)
    calls = []
    real_irfftn, real_ifftn = scipy.fft.irfftn, scipy.fft.ifftn
    monkeypatch.setattr(
        scipy.fft, "irfftn", lambda *a, **k: calls.append(k) or real_irfftn(*a, **k)
    )
    monkeypatch.setattr(scipy.fft, "ifftn", lambda *a, **k: calls.append(k) or real_ifftn(*a, **k))
    spec = ConvSpec(in_shape=(40, 37), kernel_shape=(5, 5), batch=2, c_in=2, c_out=3,
                    pad_lo=(2, 3), pad_hi=(0, 4), flip=True, dtype=dtype)  # fmt: skip
    forced((16, 12))
    x, w, y, want = _run_checked(spec, rng)
    assert_conv_equal(y, want, x, w)
    assert calls and all(k.get("norm") == "forward" and k.get("overwrite_x") for k in calls)
