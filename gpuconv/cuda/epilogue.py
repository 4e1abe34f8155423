"""Bias and activation in one kernel over a convolution's output (kernels_cuda/epilogue.cu)."""

from __future__ import annotations

import numpy as np

from .._arrays import require_cupy
from . import _build, _loader

SOURCE = "epilogue.cu"
_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}


def launch_config(planes: int, spatial: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(grid, block): planes along y (grid-stride beyond 65535), a plane's elements along x."""
    b = _build.EPILOGUE_BLOCK
    gx = max(1, min(-(-spatial // b), 2**31 - 1))
    return (gx, max(1, min(planes, _build.GRID_YZ_MAX)), 1), (b, 1, 1)


def apply(y, bias, code: int, slope: float) -> None:
    """``act(y + bias)`` in place on the CuPy array ``y`` (N, C, *spatial), C-contiguous."""
    cp = require_cupy()
    suffix = _SUFFIX.get(np.dtype(y.dtype))
    if suffix is None or not y.flags.c_contiguous:
        raise TypeError(f"the epilogue needs a C-contiguous float32/float64 output, got {y.dtype}")
    n, c = y.shape[:2]
    planes = n * c
    spatial = y.size // max(planes, 1)
    if y.size == 0:
        return
    b = None if bias is None else cp.ascontiguousarray(cp.asarray(bias, dtype=y.dtype))
    kern = _loader.get_function(SOURCE, f"bias_act_{suffix}", _build.epilogue_defines())
    grid, block = launch_config(planes, spatial)
    # None: a NULL bias pointer, as gpuconv.cuda.direct passes its filter
    args = (y, b, np.int64(planes), np.int32(c), np.int64(spatial), np.int32(code),
            y.dtype.type(slope))  # fmt: skip
    _loader.launch(kern, grid, block, args)
