"""Which kernels the loaded OpenBLAS runs, and a note when they waste an AVX-512 CPU.

OpenBLAS picks its kernels when it is loaded, from the CPU it recognises or from
``OPENBLAS_CORETYPE``.  Some machines set ``OPENBLAS_CORETYPE=Haswell`` on purpose (older OpenBLAS
builds compute wrong results or crash on some processors), and some builds do not recognise a new
AVX-512 CPU: either way the AVX2 kernels run at half the FMA width.  On this project's Zen 5
machine numpy 2's OpenBLAS ran float32 GEMM at 227 GFLOP/s with ``Haswell`` and 408-447 with its
own choice (``SkylakeX``); im2col's CNN layers ran 25-45 % faster.  The choice cannot change once
numpy is imported, so gpuconv only says so (``gpuconv info``, every ``gpuconv bench`` report),
which explains a low GEMM ceiling.  Linux only (the loaded libraries are read from
/proc/self/maps).
"""

from __future__ import annotations

import ctypes
import os
from functools import cache

#: the exported names of ``openblas_get_corename`` in the builds numpy and scipy ship
_CORENAME = (
    "openblas_get_corename",
    "openblas_get_corename64_",
    "scipy_openblas_get_corename64_",
    "scipy_openblas_get_corename",
)

#: AVX-512 subsets OpenBLAS's SkylakeX kernels use
_AVX512 = ("avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd")


def loaded_cores() -> dict[str, str]:
    """Each loaded OpenBLAS library's path and the kernels (core name) it runs."""
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({ln.split()[-1] for ln in f if "openblas" in ln.lower() and ".so" in ln})
    except OSError:
        return {}
    cores = {}
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _CORENAME:
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                cores[path] = (fn() or b"?").decode(errors="replace")
                break
    return cores


@cache
def _cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def summary() -> str:
    """The loaded OpenBLAS libraries' kernels, e.g. ``'SkylakeX'`` (empty when none is found)."""
    cores = sorted(set(loaded_cores().values()))
    forced = os.environ.get("OPENBLAS_CORETYPE")
    text = ", ".join(cores)
    return f"{text} (OPENBLAS_CORETYPE={forced})" if text and forced else text


def advice() -> str | None:
    """A note when the loaded OpenBLAS runs AVX2 kernels on an AVX-512 CPU, else None."""
    if not set(_AVX512) <= _cpu_flags():
        return None
    slow = sorted({core for core in loaded_cores().values() if core.lower() in ("haswell", "zen")})
    if not slow:
        return None
    forced = os.environ.get("OPENBLAS_CORETYPE")
    why = (
        f"OPENBLAS_CORETYPE={forced} is set"
        if forced
        else "OpenBLAS did not recognise this CPU; OPENBLAS_CORETYPE=SKYLAKEX before Python starts"
        " selects them"
    )
    return (
        f"OpenBLAS runs its {slow[0]} (AVX2) kernels on this AVX-512 CPU, not its AVX-512 ones: "
        f"{why}. Those ran float32 GEMM 1.8x faster on a Zen 5 (im2col and the CNN layers "
        "25-45 %); some machines set the variable on purpose, as older OpenBLAS builds fail on "
        "some processors"
    )
