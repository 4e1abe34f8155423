"""gpuconv.cuda.separable: the host side against the fake CuPy of tests/fake_cupy.py (no GPU
needed), and the real kernels against the CPU algorithm on a device (skipped without one).

The fake checks every ``sep_pass_*`` launch against the C signature parsed from
kernels_cuda/separable.cu and runs the real kernel source compiled for the CPU (tests/cuda_host);
outputs are poisoned (NaN) first, so an unwritten element, a wrong plane mapping, filter, padding
or accumulation, or a short grid fails the comparison with the reference.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from gpuconv import _epilogue
from gpuconv._spec import ConvSpec
from gpuconv.cpu import separable as cpu_separable
from gpuconv.cuda import _build, _loader
from gpuconv.cuda import separable as sep
from tests.conftest import assert_conv_equal, random_array
from tests.fake_cupy import kernel_signatures, poison
from tests.reference import reference

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]


# ---------------------------------------------------------------------------------------------
# problems


def rank1_kernel(rng, spec: ConvSpec) -> np.ndarray:
    """A random kernel of ``spec`` whose every (o, c) slice is an outer product."""
    w = np.empty(spec.w_shape, dtype=spec.dtype)
    for o in range(spec.w_shape[0]):
        for c in range(spec.w_shape[1]):
            t = np.ones((), dtype=spec.dtype)
            for k in spec.kernel_shape:
                t = np.multiply.outer(t, random_array(rng, (k,), spec.dtype, scale=1.0))
            w[o, c] = t
    return w


SPECS = [
    dict(in_shape=(12, 13), kernel_shape=(3, 5), pad_lo=(1, 2), pad_hi=(1, 2), flip=True),
    dict(in_shape=(12, 13), kernel_shape=(4, 2), pad_lo=(2, 0), pad_hi=(1, 1)),  # even kernels
    dict(in_shape=(10, 11), kernel_shape=(3, 3), stride=(2, 3), dilation=(2, 1),
         pad_lo=(0, 4), pad_hi=(5, 0), batch=2),  # stride == dilation on axis 0: sliding window
    dict(in_shape=(20, 9), kernel_shape=(3, 4), stride=(1, 2), dilation=(3, 1), pad_lo=2),
    dict(in_shape=(3, 4), kernel_shape=(6, 7), pad_lo=(4, 3), pad_hi=(2, 5), flip=True),
    dict(in_shape=(9, 10), kernel_shape=(3, 3), pad_lo=1, pad_hi=1, batch=2, c_in=3, c_out=3,
         groups=3, flip=True),  # depthwise
    dict(in_shape=(9, 10), kernel_shape=(3, 2), pad_lo=1, pad_hi=(1, 0), batch=2, c_in=2,
         c_out=4, groups=2),  # depthwise, multiplier 2
    dict(in_shape=(7, 8), kernel_shape=(3, 3), stride=2, pad_lo=1, pad_hi=2, batch=2, c_in=4,
         c_out=6, groups=2),  # channels summed within groups
    dict(in_shape=(6, 5), kernel_shape=(2, 3), c_in=3, c_out=2, pad_lo=(1, 0)),  # dense channels
    dict(in_shape=(17, 1), kernel_shape=(4, 1), pad_lo=(3, 0), pad_hi=(1, 0), batch=3),  # W == 1
    dict(in_shape=(3, 2100), kernel_shape=(2, 9), pad_lo=(0, 4), pad_hi=(1, 4)),  # long rows
    dict(in_shape=(2, 50), kernel_shape=(2, 9), dilation=(1, 1000), pad_lo=(0, 4000),
         pad_hi=(1, 4000)),  # halo too wide for shared memory: global reads
    dict(in_shape=(6, 7, 8), kernel_shape=(3, 2, 4), pad_lo=(1, 0, 2), pad_hi=(1, 1, 1),
         flip=True),
    dict(in_shape=(6, 7, 8), kernel_shape=(2, 3, 3), stride=(2, 1, 3), dilation=(1, 2, 1),
         pad_lo=(0, 3, 1), pad_hi=(4, 0, 2), batch=2, c_in=2, c_out=2),
    dict(in_shape=(2, 3, 4), kernel_shape=(4, 5, 1), pad_lo=(2, 3, 0), pad_hi=(3, 2, 0), c_in=2,
         c_out=2, groups=2),
    dict(in_shape=(3, 4, 3, 5), kernel_shape=(2, 1, 3, 2), stride=(1, 2, 1, 2),
         pad_lo=(1, 0, 1, 0), pad_hi=(0, 0, 2, 1), flip=True),  # 4-D
]  # fmt: skip


def _ids(d):
    return ",".join(f"{k}={v}" for k, v in d.items())


def _check(spec, rng, **kw):
    x = random_array(rng, spec.x_shape, spec.dtype)
    w = rank1_kernel(rng, spec)
    out = poison(spec)
    y = sep.run(spec, x, w, out=out, **kw)
    assert y is out
    assert_conv_equal(y, reference(spec, x, w).astype(spec.dtype), x, w)
    return x, w, y


# ---------------------------------------------------------------------------------------------
# the host path against the fake


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kw", SPECS, ids=_ids)
def test_fake_separable_matches_reference(fake_cupy, rng, kw, dtype):
    spec = ConvSpec(dtype=dtype, **kw)
    assert sep.supports(spec) is None
    x, w, _ = _check(spec, rng)
    launches = fake_cupy.launches
    assert {n for n, _, _ in launches} == {f"sep_pass_{sep.suffix(spec)}"}
    assert len(launches) == spec.ndim * (spec.c_in // spec.groups)
    # without out: a fresh array
    y2 = sep.run(spec, x, w)
    assert_conv_equal(y2, reference(spec, x, w).astype(spec.dtype), x, w)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("activation", [None, "relu", "leaky_relu", "sigmoid", "tanh"])
@pytest.mark.parametrize(
    "kw",
    [
        dict(in_shape=(9, 10), kernel_shape=(3, 3), pad_lo=1, pad_hi=1, batch=2, c_in=3,
             c_out=3, groups=3),
        dict(in_shape=(7, 8), kernel_shape=(3, 2), stride=2, batch=2, c_in=4, c_out=6, groups=2),
        dict(in_shape=(5, 6, 7), kernel_shape=(2, 3, 2), c_in=2, c_out=3, pad_lo=1),
    ],
    ids=_ids,
)  # fmt: skip
def test_fake_fused_epilogue(fake_cupy, rng, kw, activation, dtype):
    spec = ConvSpec(dtype=dtype, **kw)
    code, slope = _epilogue.check("test", activation, 0.1, dtype)
    x = random_array(rng, spec.x_shape, spec.dtype)
    w = rank1_kernel(rng, spec)
    bias = random_array(rng, (spec.c_out,), spec.dtype)
    want = _epilogue.apply(reference(spec, x, w).astype(dtype), bias, code, slope)
    out = poison(spec)
    y = sep.run(spec, x, w, out=out, bias=bias, act=code, slope=slope)
    assert y is out
    assert_conv_equal(y, want, x, w)
    # the epilogue rides on the very last launch only
    cig = spec.c_in // spec.groups
    assert len(fake_cupy.launches) == spec.ndim * cig


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128], ids=lambda d: np.dtype(d).name)
def test_fake_bias_complex(fake_cupy, rng, dtype):
    spec = ConvSpec(in_shape=(8, 9), kernel_shape=(3, 2), c_in=2, c_out=4, groups=2, dtype=dtype)
    x = random_array(rng, spec.x_shape, dtype)
    w = rank1_kernel(rng, spec)
    bias = random_array(rng, (spec.c_out,), dtype)
    want = reference(spec, x, w).astype(dtype) + bias[None, :, None, None]
    y = sep.run(spec, x, w, out=poison(spec), bias=bias)
    assert_conv_equal(y, want, x, w)
    with pytest.raises(ValueError, match="complex"):
        sep.run(spec, x, w, act=1)


def test_fake_precomputed_factors(fake_cupy, rng):
    spec = ConvSpec(in_shape=(9, 11), kernel_shape=(3, 4), c_in=2, c_out=2, flip=True)
    x = random_array(rng, spec.x_shape, spec.dtype)
    w = rank1_kernel(rng, spec)
    facs = cpu_separable.kernel_factors(spec, w)
    y = sep.run(spec, x, np.zeros_like(w), out=poison(spec), factors=facs)  # w is not read
    assert_conv_equal(y, reference(spec, x, w), x, w)
    with pytest.raises(ValueError, match="factors"):
        sep.run(spec, x, w, factors=facs[:1])
    with pytest.raises(ValueError, match="shape"):
        sep.run(spec, x, w, factors=[f[:, :1] for f in facs])


def test_fake_rank2_kernel_is_declined(fake_cupy, rng):
    spec = ConvSpec(in_shape=(8, 8), kernel_shape=(3, 3), c_in=2, c_out=2, groups=2)
    w = rank1_kernel(rng, spec)
    assert sep.supports_kernel(spec, w) is None
    w[1, 0] += np.outer([1.0, 0, 0], [0, 0, 1.0])  # slice (1, 0) becomes rank 2
    reason = sep.supports_kernel(spec, w)
    assert reason is not None and "o=1, c=0" in reason and "rank 1" in reason
    with pytest.raises(ValueError, match="rank 1"):
        sep.run(spec, random_array(rng, spec.x_shape, spec.dtype), w)
    assert fake_cupy.launches == []


def test_fake_checks_arguments(fake_cupy, rng):
    spec = ConvSpec(in_shape=(5, 6), kernel_shape=(3, 3), dtype=np.float32)
    x = random_array(rng, spec.x_shape, spec.dtype)
    w = rank1_kernel(rng, spec)
    with pytest.raises(ValueError, match="out has shape"):
        sep.run(spec, x, w, out=np.empty((1, 1, 2, 2), np.float32))
    with pytest.raises(ValueError, match="dtype"):
        sep.run(spec, x, w, out=np.empty(spec.y_shape, np.float64))
    with pytest.raises(ValueError, match="act"):
        sep.run(spec, x, w, act=7)
    with pytest.raises(ValueError, match="bias"):
        sep.run(spec, x, w, bias=np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="do not match"):
        sep.run(spec, x[:, :, :4], w)


def test_supports_reasons():
    assert "int64" in sep.supports(ConvSpec(in_shape=(5, 5), kernel_shape=(3, 3), dtype=np.int64))
    assert "2 spatial axes" in sep.supports(ConvSpec(in_shape=(9,), kernel_shape=(3,)))
    assert sep.supports(ConvSpec(in_shape=(5, 5, 5, 5, 5), kernel_shape=(2,) * 5)) is None
    big = ConvSpec(in_shape=(1 << 15, 1 << 15), kernel_shape=(1, 1))
    assert "plane" in sep.supports(big)
    far = ConvSpec(in_shape=(2, 2**28), kernel_shape=(1, 2), stride=(1, 2**21))
    assert "32-bit" in sep.supports(far)


def test_launch_geometry():
    opt = sep.outputs_per_thread(4)
    # short rows: several rows to a block, just enough lanes per row
    assert sep.last_axis_tpr(8, 3, 1, 1, 4) == -(-8 // opt)
    assert sep.last_axis_tpr(10**6, 3, 1, 1, 4) == _build.SEP_BLOCK
    assert sep.staged_fits(_build.SEP_BLOCK, 9, 1, 1, 16)
    # a halo wider than the shared buffer: global reads
    assert not sep.staged_fits(sep.last_axis_tpr(50, 9, 1, 1000, 4), 9, 1, 1000, 4)
    # a halo that fits only with wide tiles
    assert not sep.staged_fits(sep.last_axis_tpr(40, 1, 1, 1, 4), 30, 1, 10, 4)
    tpr = sep.last_axis_tpr(40, 30, 1, 10, 4)
    assert tpr == _build.SEP_BLOCK and sep.staged_fits(tpr, 30, 1, 10, 4)
    assert sep.flat_grid(5) == (5, 1, 1)
    gx, gy, _ = sep.flat_grid(2**32)
    assert gx * gy >= 2**32 and gy <= 65535


def test_kernel_source_declares_every_entry_point():
    source, defines, names = next(v for v in _build.variants() if v[0] == "separable.cu")
    sigs = kernel_signatures(_loader.assemble_source(source, defines))
    for n in names:
        assert n in sigs
        assert len(sigs[n]) == 24
        assert sigs[n][:3] == [(sigs[n][0][0], True)] * 3 and sigs[n][21] == sigs[n][0]
        assert sigs[n][-1] == ("double", False)  # slope, as the direct kernels take it
    assert sigs["sep_pass_c64"][0] == ("float2", True)
    text = _loader.assemble_source(source, defines)
    for name, value in defines.items():
        assert f"#define {name} {value}" in text
        assert f"#ifndef {name}" in text  # every knob has a default in the source


def test_cost_is_sane():
    c = {
        "overhead_separable": 20e-6,
        "separable_launch": 4e-6,
        "separable_factor_slice": 30e-6,
        "direct_mac_f32": 1 / 10e12,
        "direct_mac_f64": 1 / 5e12,
        "direct_mac_c64": 4 / 10e12,
        "direct_mac_c128": 4 / 5e12,
        "stream_byte": 1 / 2.9e12,
    }
    small = ConvSpec(in_shape=(64, 64), kernel_shape=(7, 7), dtype=np.float32)
    large = ConvSpec(in_shape=(4096, 4096), kernel_shape=(7, 7), dtype=np.float32)
    dw = ConvSpec(in_shape=(64, 64), kernel_shape=(7, 7), c_in=4, c_out=8, dtype=np.float32)
    t_small, t_large = sep.cost(small, c), sep.cost(large, c)
    assert 0 < t_small < t_large
    # memory bound at 4096^2: two passes, each reading and writing a plane (4 bytes a sample)
    stream = 4 * 4096 * 4096 * 4 * c["stream_byte"]
    assert stream < t_large < 2 * stream
    assert sep.cost(dw, c) > t_small  # 4 input channels: 8 launches, 32 separable convolutions
    wide = ConvSpec(in_shape=(64, 64), kernel_shape=(7, 7), dtype=np.complex128)
    assert sep.cost(wide, c) > t_small
    assert all(k in c for k in ("overhead_separable", "separable_launch"))


# ---------------------------------------------------------------------------------------------
# the real kernels, on a device


DEVICE_SPECS = [
    *SPECS,
    dict(in_shape=(512, 700), kernel_shape=(15, 15), pad_lo=7, pad_hi=7, flip=True, batch=2),
    dict(in_shape=(40, 50, 60), kernel_shape=(5, 5, 5), pad_lo=2, pad_hi=2, c_in=3, c_out=3,
         groups=3),
]  # fmt: skip


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kw", DEVICE_SPECS, ids=_ids)
def test_device_matches_cpu(device, rng, kw, dtype):
    import cupy as cp

    spec = ConvSpec(dtype=dtype, **kw)
    x = random_array(rng, spec.x_shape, spec.dtype)
    w = rank1_kernel(rng, spec)
    assert sep.supports_kernel(spec, cp.asarray(w)) is None
    out = cp.full(spec.y_shape, np.nan, dtype=spec.dtype)
    y = sep.run(spec, cp.asarray(x), cp.asarray(w), out=out)
    assert y is out
    got = cp.asnumpy(y)
    assert_conv_equal(got, reference(spec, x, w).astype(dtype), x, w)
    assert_conv_equal(got, cpu_separable.run(spec, x, w), x, w)
    if not spec.is_complex and math.prod(spec.y_shape) < 10**6:
        bias = random_array(rng, (spec.c_out,), dtype)
        for code in _epilogue.ACTIVATIONS.values():
            want = _epilogue.apply(cpu_separable.run(spec, x, w), bias, code, 0.1)
            y = sep.run(spec, cp.asarray(x), cp.asarray(w), bias=cp.asarray(bias), act=code,
                        slope=0.1)  # fmt: skip
            assert_conv_equal(cp.asnumpy(y), want, x, w)
