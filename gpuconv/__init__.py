"""gpuconv: fast convolutions on CPU and GPU behind one API.

The scipy.signal drop-ins (``convolve``, ``correlate``, ``convolve2d``, ``correlate2d``,
``fftconvolve``, ``oaconvolve``, ``choose_conv_method``) take the same arguments and return the same
shapes and dtypes as scipy.signal 1.17; ``plan`` says which algorithm a call would run and why.
"""

from . import dispatch
from .dispatch import Plan, algorithm_names
from .nn import (
    conv1d,
    conv1d_input,
    conv1d_weight,
    conv2d,
    conv2d_input,
    conv2d_weight,
    conv3d,
    conv3d_input,
    conv3d_weight,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
)
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
    "conv1d",
    "conv1d_input",
    "conv1d_weight",
    "conv2d",
    "conv2d_input",
    "conv2d_weight",
    "conv3d",
    "conv3d_input",
    "conv3d_weight",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "convolve",
    "convolve2d",
    "correlate",
    "correlate2d",
    "fftconvolve",
    "oaconvolve",
    "plan",
]

# `gpuconv tune`'s constants for this CPU are read here, so that a damaged file warns at import;
# a GPU's are read when the GPU is first used (importing never queries a device)
dispatch._load_tuned("cpu")
