"""gpuconv: fast convolutions on CPU and GPU behind one API.

The scipy.signal drop-ins (``convolve``, ``correlate``, ``convolve2d``, ``correlate2d``,
``fftconvolve``, ``oaconvolve``, ``choose_conv_method``) take the same arguments and return the same
shapes and dtypes as scipy.signal 1.17; ``plan`` says which algorithm a call would run and why.
"""

from .dispatch import Plan, algorithm_names
from .signal import (
    choose_conv_method,
    convolve,
    convolve2d,
    correlate,
    correlate2d,
    fftconvolve,
    oaconvolve,
    plan,
)

__version__ = "0.1.0"

__all__ = [
    "Plan",
    "algorithm_names",
    "choose_conv_method",
    "convolve",
    "convolve2d",
    "correlate",
    "correlate2d",
    "fftconvolve",
    "oaconvolve",
    "plan",
]
