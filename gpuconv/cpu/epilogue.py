"""Bias and activation in one parallel pass over a convolution's output (see gpuconv._epilogue)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def _pass(y3, bias, code, slope, zero, one):
    c_out = y3.shape[1]
    for pc in prange(y3.shape[0] * c_out):
        n = pc // c_out
        c = pc - n * c_out
        b = bias[c]
        for s in range(y3.shape[2]):
            v = y3[n, c, s] + b
            if code == 1:
                if v < zero:  # NaN stays NaN, as in torch
                    v = zero
            elif code == 2:
                if v < zero:
                    v = v * slope
            elif code == 3:
                v = one / (one + math.exp(-v))
            elif code == 4:
                v = math.tanh(v)
            y3[n, c, s] = v


def apply(y: np.ndarray, bias, code: int, slope: float) -> None:
    """``act(y + bias)`` in place; ``y`` (N, C, *spatial) float32 or float64, C-contiguous."""
    if not (y.flags.c_contiguous and y.dtype in (np.float32, np.float64)):
        raise TypeError(f"the epilogue needs a C-contiguous float32/float64 output, got {y.dtype}")
    if y.size == 0:  # an empty batch (or spatial axis): nothing to do, nothing to reshape
        return
    n, c = y.shape[:2]
    t = y.dtype.type
    b = np.zeros(c, y.dtype) if bias is None else np.ascontiguousarray(bias, dtype=y.dtype)
    _pass(y.reshape(n, c, -1), b, code, t(slope), t(0), t(1))
