"""Every GPU algorithm on random problems that no other test names, against the float64 reference.

Seeded random ConvSpecs (1 to 3 spatial axes, odd and even kernels, kernels longer than the input,
stride, dilation, asymmetric padding, groups, batch, flip, every dtype the algorithm takes), each
run through the registry's GPU algorithm on the ``gpu`` fixture: the real device, or the kernel
sources compiled for the CPU.  Forward passes, then the backward passes the dispatcher routes
(natively or by remap).  A problem an algorithm declines is skipped for it, with the reason
checked to be a string; nothing else may fail.
"""

from __future__ import annotations

import numpy as np
import pytest

from gpuconv import dispatch
from gpuconv._spec import ConvSpec
from gpuconv.cuda import _build
from gpuconv.cuda import direct as cuda_direct
from tests.conftest import assert_conv_equal, random_array
from tests.reference import reference

pytestmark = pytest.mark.gpu

DTYPES = [np.float32, np.float64, np.complex64, np.complex128, np.int64]
CASES = 40
STRIDED_CASES = 15


def random_spec(rng: np.random.Generator, dtype) -> ConvSpec:
    """A small random canonical problem (drawn again until its output is not empty)."""
    for _ in range(100):
        spec = _draw(rng, dtype)
        if spec is not None:
            return spec
    raise AssertionError("no valid problem in 100 draws")


def _draw(rng: np.random.Generator, dtype) -> ConvSpec | None:
    nd = int(rng.integers(1, 4))
    size_hi = {1: 40, 2: 14, 3: 7}[nd]
    in_shape = tuple(int(rng.integers(1, size_hi)) for _ in range(nd))
    kernel = tuple(int(rng.integers(1, min(9, size_hi))) for _ in range(nd))
    stride = tuple(int(rng.choice([1, 1, 2, 3])) for _ in range(nd))
    dilation = tuple(int(rng.choice([1, 1, 2])) for _ in range(nd))
    pad_lo = tuple(int(rng.integers(0, 5)) for _ in range(nd))
    pad_hi = tuple(int(rng.integers(0, 5)) for _ in range(nd))
    groups = int(rng.choice([1, 1, 2, 3]))
    cig, cog = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    try:
        spec = ConvSpec(
            in_shape=in_shape, kernel_shape=kernel, batch=int(rng.integers(1, 4)),
            c_in=groups * cig, c_out=groups * cog, groups=groups, stride=stride,
            dilation=dilation, pad_lo=pad_lo, pad_hi=pad_hi, flip=bool(rng.integers(0, 2)),
            dtype=dtype,
        )  # fmt: skip
    except ValueError:  # the dilated kernel is longer than the padded input
        return None
    return spec


def _cases():
    for name in dispatch.algorithm_names("cuda"):
        for i in range(CASES):
            yield pytest.param(name, i, id=f"{name}-{i}")


@pytest.mark.parametrize(("name", "case"), list(_cases()))
def test_gpu_algorithm_on_random_problems(gpu, name, case):
    _run_every_pass(gpu, name, case)


@pytest.mark.parametrize(("name", "case"), [p for p in _cases() if p.values[1] < STRIDED_CASES])
def test_gpu_algorithm_grid_strided(gpu, name, case, monkeypatch):
    """grid.y / grid.z capped at 2 (CUDA's cap is 65535): every kernel's grid-stride loop runs on
    small problems, a block reusing its shared tile for a second plane or item (the barrier
    after the tile's last read guards that)."""
    monkeypatch.setattr(_build, "GRID_YZ_MAX", 2)
    monkeypatch.setattr(cuda_direct, "_GENERIC_MAX_GRID_X", 2)
    _run_every_pass(gpu, name, case + 500)


def _run_every_pass(gpu, name, case):
    rng = np.random.default_rng(1000 * case + 17)
    dtype = DTYPES[case % len(DTYPES)]
    spec = random_spec(rng, dtype)
    alg = dispatch.get_algorithm(name, "cuda")
    x = random_array(rng, spec.x_shape, spec.dtype)
    w = random_array(rng, spec.w_shape, spec.dtype)
    if name == "separable" and spec.ndim >= 2 and spec.dtype.kind in "fc":
        # a rank-1 kernel per (o, c) slice, so the algorithm applies
        w = np.ones(spec.w_shape, dtype=spec.dtype)
        for a in range(spec.ndim):
            f = random_array(rng, (spec.kernel_shape[a],), spec.dtype)
            w = w * f.reshape((1, 1) + tuple(-1 if b == a else 1 for b in range(spec.ndim)))
    ran = 0
    for op, a, b in [
        ("forward", x, w),
        ("backward_data", random_array(rng, spec.y_shape, spec.dtype), w),
        ("backward_weight", x, random_array(rng, spec.y_shape, spec.dtype)),
    ]:
        reason = alg.supports(spec, b if op != "backward_weight" else b, op)
        if reason is not None:
            assert isinstance(reason, str) and reason
            continue
        got = alg.run(spec, gpu.asarray(a), gpu.asarray(b), op)
        assert isinstance(got, gpu.ndarray) and got.dtype == spec.dtype, op
        if op == "forward":
            want = reference(spec, a, b).astype(spec.dtype)
        else:  # the CPU's direct passes, themselves checked against the reference elsewhere
            want = dispatch.execute(spec, a, b, "direct", op=op)
        assert_conv_equal(gpu.asnumpy(got), want, a, b)
        ran += 1
    if not ran:
        pytest.skip(f"{name} takes none of this problem's passes")
