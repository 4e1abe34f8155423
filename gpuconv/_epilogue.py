"""The epilogue of a forward convolution: bias and an activation in one pass over the output.

``activation`` is None, ``'relu'``, ``'leaky_relu'`` (``negative_slope``), ``'sigmoid'`` or
``'tanh'``, applied after the bias as ``torch.nn.functional`` defines them (NaN stays NaN).  On
the CPU one numba pass over the output (:mod:`gpuconv.cpu.epilogue`), on the GPU one kernel
(``kernels_cuda/epilogue.cu``); the output is read and written once either way, instead of once
per operation.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

#: activation name -> the code the CPU and CUDA kernels switch on (0: none)
ACTIVATIONS = {"relu": 1, "leaky_relu": 2, "sigmoid": 3, "tanh": 4}


def check(fn: str, activation, negative_slope, dtype) -> tuple[int, float]:
    """``(code, slope)`` of ``activation`` for a result of ``dtype``, or the error naming it.

    >>> check("conv2d", "leaky_relu", 0.2, np.float32)
    (2, 0.2)
    """
    if activation is None:
        code = 0
    elif isinstance(activation, str) and activation in ACTIVATIONS:
        code = ACTIVATIONS[activation]
    else:
        names = ", ".join(["None"] + [repr(a) for a in ACTIVATIONS])
        raise ValueError(f"{fn}: activation must be one of {names}, got {activation!r}")
    if isinstance(negative_slope, bool) or not isinstance(negative_slope, numbers.Real):
        raise TypeError(
            f"{fn}: negative_slope must be a real number, got {negative_slope!r} "
            f"of type {type(negative_slope).__name__}"
        )
    slope = float(negative_slope)
    if not math.isfinite(slope):
        raise ValueError(f"{fn}: negative_slope must be finite, got {negative_slope!r}")
    if code and np.dtype(dtype).kind == "c":
        raise ValueError(
            f"{fn}: activation {activation!r} is not defined for a complex result ({dtype}); "
            "use activation=None"
        )
    return code, slope


def apply(y, bias, code: int, slope: float):
    """``act(y + bias[channel])`` in place on ``y`` of shape (N, C, *spatial); returns ``y``.

    NumPy arrays run the numba pass, CuPy arrays the CUDA kernel; without an activation the bias
    is a plain broadcast add (any dtype).
    """
    nd = y.ndim - 2
    if code == 0:
        if bias is not None:
            y += bias.reshape((1, -1) + (1,) * nd)
        return y
    from . import _arrays

    xp = _arrays.xp_of(y)
    if _arrays.is_cupy_array(y):
        from .cuda import epilogue
    else:
        from .cpu import epilogue
    if not y.flags.c_contiguous:  # an algorithm may hand back a transposed view
        y = xp.ascontiguousarray(y)
    epilogue.apply(y, bias, code, slope)
    return y
