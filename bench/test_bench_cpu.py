"""CPU benchmarks: every registered algorithm, 'auto' and the scipy / OpenCV peers on canonical
problems (``pytest bench/ --benchmark-only``; see bench/README.md).

Algorithms come from the registry at collection time, so a newly registered one is benchmarked
without touching this file.  Every result is checked against a float64 reference before it is
timed.
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

F32 = np.dtype(np.float32)
ALL_OPS = dispatch.OPS


class Problem(NamedTuple):
    name: str
    spec: ConvSpec
    ops: tuple[str, ...] = ("forward",)
    rank1: bool = False  # a separable kernel, so that 'separable' has something to do


PROBLEMS = [
    Problem("image-1024x1024-k3-f32", _same((1024, 1024), 3, F32)),
    Problem("image-1024x1024-k7-f32", _same((1024, 1024), 7, F32)),
    Problem("image-1024x1024-k31-f32", _same((1024, 1024), 31, F32)),
    Problem("image-1024x1024-k31-rank1-f32", _same((1024, 1024), 31, F32), rank1=True),
    Problem("signal-1M-k4095-full-f32", _full1(1_000_000, 4095, F32)),
    Problem("volume-64x64x64-k5-f32", _same((64, 64, 64), 5, F32)),
    Problem("cnn-8x64x56x56-64-k3-f32", _layer(8, 64, 64, 56, 3), ALL_OPS),
    Problem("cnn-depthwise-8x64x56x56-k3-f32", _layer(8, 64, 64, 56, 3, groups=64), ALL_OPS),
]
CASES = [pytest.param(p, op, id=f"{p.name}-{op}") for p in PROBLEMS for op in p.ops]
#: the problems the scipy.signal drop-ins are timed on beside their peers
DROPIN_PROBLEMS = [
    p for p in PROBLEMS if p.name in ("image-1024x1024-k7-f32", "image-1024x1024-k31-f32")
]


@pytest.mark.parametrize("name", dispatch.algorithm_names("cpu"))
@pytest.mark.parametrize(("problem", "op"), CASES)
def test_algorithm(benchmark, cases, problem, op, name):
    """One registered algorithm through dispatch.execute."""
    info = cases.gate("cpu", problem, name, op)
    a, b = cases.operands(problem, op)

    def fn():
        return dispatch.execute(problem.spec, a, b, name, op=op)

    checked = cases.check(fn(), problem, op, avoid=name)
    cases.time(benchmark, fn, problem, op, name, **checked, **info)


@pytest.mark.parametrize(("problem", "op"), CASES)
def test_auto(benchmark, cases, problem, op):
    """The dispatcher's own choice (its planning cost included, as a user pays it)."""
    info = cases.gate("cpu", problem, "auto", op)
    a, b = cases.operands(problem, op)

    def fn():
        return dispatch.execute(problem.spec, a, b, "auto", op=op)

    checked = cases.check(fn(), problem, op, avoid=info["chosen"])
    cases.time(benchmark, fn, problem, op, "auto", **checked, **info)


def _filter2d(x, w):
    import cv2

    # filter2D correlates around an anchor: flip the kernel and put the anchor where scipy's
    # 'same' window is (the centre for odd sizes)
    kh, kw = w.shape
    anchor = (kw - 1 - (kw - 1) // 2, kh - 1 - (kh - 1) // 2)
    kf = np.ascontiguousarray(w[::-1, ::-1])
    return cv2.filter2D(x, -1, kf, anchor=anchor, borderType=cv2.BORDER_CONSTANT)


def _scipy(fname):
    import scipy.signal

    fn = getattr(scipy.signal, fname)
    return lambda x, w: fn(x, w, mode="same")


DROPINS = {
    "gpuconv.convolve": lambda x, w: gpuconv.convolve(x, w, mode="same"),
    "scipy.signal.convolve": _scipy("convolve"),
    "scipy.signal.fftconvolve": _scipy("fftconvolve"),
    "cv2.filter2D": _filter2d,
}


@pytest.mark.parametrize("impl", list(DROPINS))
@pytest.mark.parametrize("problem", DROPIN_PROBLEMS, ids=lambda p: p.name)
def test_dropin(benchmark, cases, problem, impl):
    """gpuconv.convolve beside scipy.signal and OpenCV on a 2-D 'same' image filter (the same
    benchmark group as the algorithms, so they sit in one table)."""
    if impl == "cv2.filter2D":
        pytest.importorskip("cv2", reason="OpenCV is not installed (pip install '.[bench]')")
    x, w = cases.operands(problem, "forward")
    x2, w2 = x[0, 0], w[0, 0]
    peer = DROPINS[impl]

    def fn():
        return peer(x2, w2)

    checked = cases.check(fn()[None, None], problem, "forward")
    cases.time(benchmark, fn, problem, "forward", impl, **checked)
