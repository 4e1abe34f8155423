"""GPU benchmarks: every registered CUDA algorithm, 'auto' and the cupyx peers on canonical
problems (``pytest bench/test_bench_gpu.py --benchmark-only``; see bench/README.md).

Every test takes the ``device`` fixture (tests/conftest.py), so without CuPy or a CUDA device it
skips with the reason.  Operands are CuPy arrays copied over before timing; each timed call ends
with a synchronize of the current stream, so a round is the GPU work, not its launch.  Results are
checked against a float64 reference computed on the CPU before anything is timed.  The problems
are the CPU suite's scaled up (as gpuconv._grids does for the GPU) so that launches do not
dominate.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest

import gpuconv
from gpuconv import dispatch
from gpuconv._grids import _full1, _layer, _same
from gpuconv._spec import ConvSpec

# without pytest-benchmark there is no `benchmark` fixture: skip the module with the reason
pytest.importorskip(
    "pytest_benchmark", reason="the benchmarks need pytest-benchmark (pip install '.[bench]')"
)

pytestmark = pytest.mark.gpu

F32 = np.dtype(np.float32)
ALL_OPS = dispatch.OPS


class Problem(NamedTuple):
    name: str
    spec: ConvSpec
    ops: tuple[str, ...] = ("forward",)
    rank1: bool = False


PROBLEMS = [
    Problem("image-4096x4096-k3-f32", _same((4096, 4096), 3, F32)),
    Problem("image-4096x4096-k7-f32", _same((4096, 4096), 7, F32)),
    Problem("image-4096x4096-k31-f32", _same((4096, 4096), 31, F32)),
    Problem("signal-4M-k4095-full-f32", _full1(4_000_000, 4095, F32)),
    Problem("volume-256x256x256-k5-f32", _same((256, 256, 256), 5, F32)),
    # the backward ops too: im2col natively, direct and fft through the remaps (or the reason)
    Problem("cnn-32x64x56x56-64-k3-f32", _layer(32, 64, 64, 56, 3), ALL_OPS),
    Problem("cnn-depthwise-32x64x56x56-k3-f32", _layer(32, 64, 64, 56, 3, groups=64), ALL_OPS),
]
CASES = [pytest.param(p, op, id=f"{p.name}-{op}") for p in PROBLEMS for op in p.ops]
DROPIN_PROBLEMS = [
    p for p in PROBLEMS if p.name in ("image-4096x4096-k7-f32", "image-4096x4096-k31-f32")
]


def _synchronized(call):
    """``call`` followed by a wait for the current stream, so the timer sees the GPU work."""
    import cupy

    def fn():
        out = call()
        cupy.cuda.get_current_stream().synchronize()
        return out

    return fn


def _on_device(cases, problem, op):
    import cupy

    return tuple(cupy.asarray(v) for v in cases.operands(problem, op))


@pytest.mark.parametrize("name", dispatch.algorithm_names("cuda"))
@pytest.mark.parametrize(("problem", "op"), CASES)
def test_algorithm(device, benchmark, cases, problem, op, name):
    """One registered CUDA algorithm through dispatch.execute(..., device='cuda')."""
    import cupy

    info = cases.gate("cuda", problem, name, op)
    a, b = _on_device(cases, problem, op)
    fn = _synchronized(lambda: dispatch.execute(problem.spec, a, b, name, op=op, device="cuda"))
    checked = cases.check(cupy.asnumpy(fn()), problem, op)
    cases.time(benchmark, fn, problem, op, name, target="cuda", **checked, **info)


@pytest.mark.parametrize(("problem", "op"), CASES)
def test_auto(device, benchmark, cases, problem, op):
    """The CUDA dispatcher's own choice (planning cost included)."""
    import cupy

    info = cases.gate("cuda", problem, "auto", op)
    a, b = _on_device(cases, problem, op)
    fn = _synchronized(lambda: dispatch.execute(problem.spec, a, b, "auto", op=op, device="cuda"))
    checked = cases.check(cupy.asnumpy(fn()), problem, op)
    cases.time(benchmark, fn, problem, op, "auto", target="cuda", **checked, **info)


def _cupyx(module, fname, **kw):
    def peer(x, w):
        mod = pytest.importorskip(module, reason=f"{module} is not importable")
        return getattr(mod, fname)(x, w, **kw)

    return peer


DROPINS = {
    "gpuconv.convolve": lambda x, w: gpuconv.convolve(x, w, mode="same"),
    "cupyx.scipy.signal.convolve": _cupyx("cupyx.scipy.signal", "convolve", mode="same"),
    "cupyx.scipy.signal.fftconvolve": _cupyx("cupyx.scipy.signal", "fftconvolve", mode="same"),
    # odd kernels only: ndimage centres the window as scipy's 'same' does for odd sizes
    "cupyx.scipy.ndimage.convolve": _cupyx("cupyx.scipy.ndimage", "convolve", mode="constant"),
}


@pytest.mark.parametrize("impl", list(DROPINS))
@pytest.mark.parametrize("problem", DROPIN_PROBLEMS, ids=lambda p: p.name)
def test_dropin(device, benchmark, cases, problem, impl):
    """gpuconv.convolve on CuPy arrays beside cupyx's convolutions (the same benchmark group as
    the algorithms)."""
    import cupy

    x, w = _on_device(cases, problem, "forward")
    x2, w2 = x[0, 0], w[0, 0]
    peer = DROPINS[impl]
    fn = _synchronized(lambda: peer(x2, w2))
    checked = cases.check(cupy.asnumpy(fn())[None, None], problem, "forward")
    cases.time(benchmark, fn, problem, "forward", impl, target="cuda", **checked)
