"""Which array module an input belongs to, and access to CuPy when a GPU path is asked for.

Nothing here imports CuPy unless an input already is a CuPy array (then CuPy is loaded anyway) or
:func:`require_cupy` is called, and nothing queries a device at import time.
"""

from __future__ import annotations

import importlib
import sys

#: what to install, in every message that says CuPy is missing.
INSTALL_HINT = (
    'install CuPy for your CUDA toolkit: pip install "gpuconv[cuda12]" (CUDA 12.x) or '
    'pip install "gpuconv[cuda13]" (CUDA 13.x)'
)


class CupyUnavailableError(ImportError):
    """CuPy is not installed (or cannot be imported)."""


class CudaUnavailableError(RuntimeError):
    """CuPy imports, but no CUDA device / driver can be used."""


def is_cupy_array(x) -> bool:
    """Whether ``x`` is a CuPy array, judged by its class's module (no import of CuPy)."""
    mod = getattr(type(x), "__module__", "") or ""
    return mod == "cupy" or mod.startswith("cupy.") or mod.startswith("cupy_")


def _describe(x) -> str:
    t = type(x)
    return f"{t.__module__}.{t.__qualname__}"


def array_module(*arrays, device: str | None = None) -> str:
    """``'cupy'`` if the arrays are CuPy arrays, ``'numpy'`` otherwise (lists, scalars, NumPy).

    ``device`` ('cpu' / 'numpy' or 'cuda' / 'gpu' / 'cupy'), when given, must agree with the inputs.
    Raises TypeError for a mix of NumPy (host) and CuPy (device) arrays, naming both types.

    >>> import numpy as np
    >>> array_module(np.zeros(3), [1.0, 2.0])
    'numpy'
    """
    host = dev = None
    for i, a in enumerate(arrays):
        if a is None:
            continue
        if is_cupy_array(a):
            dev = dev or (i, a)
        elif hasattr(a, "__array__") or hasattr(a, "__array_interface__"):
            host = host or (i, a)
    if host is not None and dev is not None:
        (ih, h), (id_, d) = host, dev
        raise TypeError(
            f"inputs live on different devices: argument {ih} is a host array "
            f"({_describe(h)}) and argument {id_} is a device array ({_describe(d)}); move one "
            "of them first: cupy.asarray(a) copies a NumPy array to the GPU, a.get() (or "
            "cupy.asnumpy(a)) copies a CuPy array to the host"
        )
    found = "cupy" if dev is not None else "numpy"
    if device is not None:
        want = str(device).lower()
        if want in ("cuda", "gpu", "cupy"):
            want = "cupy"
        elif want in ("cpu", "numpy", "host"):
            want = "numpy"
        else:
            raise ValueError(f"unknown device {device!r}; use 'cpu' or 'cuda'")
        if dev is not None and want == "numpy":
            raise TypeError(
                f"device='cpu' but argument {dev[0]} is a CuPy array ({_describe(dev[1])}); "
                "copy it to the host with a.get() or drop device="
            )
        if host is not None and want == "cupy":
            raise TypeError(
                f"device='cuda' but argument {host[0]} is a host array ({_describe(host[1])}); "
                "copy it to the GPU with cupy.asarray(a) or drop device="
            )
        found = want
    return found


#: the cupy module objects whose device was found usable (checked once per process), by id; the
#: module is kept so that its id cannot be reused by another (e.g. a test's stand-in) module.
_usable: dict[int, object] = {}


def require_cupy():
    """The ``cupy`` module with a usable CUDA device, else an error saying what is missing.

    CupyUnavailableError (an ImportError) when CuPy is not installed or fails to import;
    CudaUnavailableError (a RuntimeError) naming the driver's error when there is no usable device.
    """
    try:
        cp = sys.modules.get("cupy") or importlib.import_module("cupy")
    except ImportError as e:
        raise CupyUnavailableError(
            f"the GPU path needs CuPy, which is not importable ({e}); {INSTALL_HINT}"
        ) from e
    if cp is None:  # sys.modules["cupy"] = None blocks the import
        raise CupyUnavailableError(
            f"the GPU path needs CuPy, which is not installed; {INSTALL_HINT}"
        )
    if id(cp) in _usable:
        return cp
    try:
        n = cp.cuda.runtime.getDeviceCount()
    except Exception as e:  # CUDARuntimeError: no driver, driver too old, no device ...
        raise CudaUnavailableError(
            f"CuPy {getattr(cp, '__version__', '?')} is installed but no CUDA device is usable: "
            f"{type(e).__name__}: {e}. Check the NVIDIA driver (nvidia-smi) and that the CuPy "
            f"package matches the CUDA version the driver supports ({INSTALL_HINT})"
        ) from e
    if n < 1:
        raise CudaUnavailableError(
            "CuPy is installed but the CUDA driver reports no device (getDeviceCount() == 0); "
            "check nvidia-smi and CUDA_VISIBLE_DEVICES"
        )
    _usable[id(cp)] = cp
    return cp


#: the values the fronts' ``device=`` keyword accepts.
DEVICES = ("cpu", "cuda", None)


def resolve_device(*arrays, device: str | None = None) -> str:
    """Where a front computes: ``'cpu'`` or ``'cuda'``, from its inputs and ``device=``.

    ``device=None`` follows the inputs (CuPy arrays: 'cuda', anything else: 'cpu');
    ``device='cuda'`` also takes host inputs (the caller copies them over and the result back);
    ``device='cpu'`` refuses CuPy inputs.  A mix of host and CuPy arrays is a TypeError
    (:func:`array_module`); asking for the GPU without CuPy or a device raises
    :func:`require_cupy`'s error.

    >>> import numpy as np
    >>> resolve_device(np.zeros(3), [1.0])
    'cpu'
    """
    if device not in DEVICES:
        raise ValueError(
            f"unknown device {device!r}; use 'cpu', 'cuda' or None (follow the inputs)"
        )
    found = array_module(*arrays)
    if device == "cpu" and found == "cupy":
        i, a = next((i, a) for i, a in enumerate(arrays) if is_cupy_array(a))
        raise TypeError(
            f"device='cpu' but argument {i} is a CuPy array ({_describe(a)}); pass NumPy arrays "
            "(a.get() copies a CuPy array to the host) or use device='cuda'"
        )
    if device == "cuda" or found == "cupy":
        require_cupy()
        return "cuda"
    return "cpu"


def xp_of(a):
    """The array module of ``a``: ``cupy`` for a CuPy array, ``numpy`` otherwise."""
    if is_cupy_array(a):
        return require_cupy()
    import numpy

    return numpy


def to_host(a):
    """A CuPy array copied to a NumPy array (anything else unchanged)."""
    if is_cupy_array(a):
        return require_cupy().asnumpy(a)
    return a


def to_device(a, dtype=None):
    """``a`` as a CuPy array (NumPy arrays and lists are copied to the GPU)."""
    return require_cupy().asarray(a, dtype=dtype)
