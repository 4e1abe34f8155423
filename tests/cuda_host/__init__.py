"""Run gpuconv's CUDA kernel sources on the CPU: compile them with the host C++ compiler against
``cuda_host.h`` (a small CUDA shim) and launch them through ctypes.

The fake CuPy of tests/fake_cupy.py hands every kernel launch here, so the host paths of
the GPU algorithms are tested against the *real* device code (indexing, bounds, zero padding,
tiling, grid strides, barrier phases) on a machine without a GPU.  What it cannot show (warp
semantics, the memory model, speed; races only through a changed order, see below) needs a GPU: tests/test_gpu.py and compute-sanitizer
in ci/gpu-check.

Each pointer argument is copied into a buffer with guard zones filled with a canary before the
launch and checked after it, so a write outside an array fails the test instead of corrupting
the heap; reads outside an array read the canary (all ones: NaN as a float) and show up as wrong numbers.
``GPUCONV_HOST_ORDER=reverse`` / ``shuffle`` changes the order of the blocks and of the threads
inside every barrier phase, so a missing ``__syncthreads`` changes the results (see cuda_host.h).
Vector loads and stores are checked for the alignment a GPU requires, and
``GPUCONV_HOST_MISALIGN=1`` shifts every array off the 16-byte boundary (see below).  Under
AddressSanitizer (``ci/host-asan.sh``: GPUCONV_HOST_ASAN=1, libasan preloaded) the guard zones
are poisoned too, so any read or write outside an array stops the run with ASan's report.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

SHIM = Path(__file__).with_name("cuda_host.h")
#: bytes of canary on each side of every array a kernel gets
GUARD = 1 << 14
#: all ones: a float read from a guard zone is a NaN (an int64 is -1), so a read outside an
#: array that reaches a result shows in the numbers even without AddressSanitizer
CANARY = 0xFF
FLAGS = ("-std=c++17", "-O1", "-shared", "-fPIC", "-w", "-x", "c++")
#: GPUCONV_HOST_ASAN=1 (with libasan preloaded, as ci/host-asan.sh does): the kernels are built with
#: AddressSanitizer and the guard zones are poisoned, so any read or write outside an array
#: stops the test with ASan's report -- the host's stand-in for compute-sanitizer memcheck
ASAN = os.environ.get("GPUCONV_HOST_ASAN") == "1"
if ASAN:
    FLAGS = FLAGS + ("-fsanitize=address", "-fno-omit-frame-pointer")


def _asan_api():
    """(poison, unpoison) of the preloaded AddressSanitizer runtime, or None."""
    if not ASAN:
        return None
    try:
        proc = ctypes.CDLL(None)
        poison, unpoison = proc.__asan_poison_memory_region, proc.__asan_unpoison_memory_region
    except (OSError, AttributeError):
        raise RuntimeError(
            "GPUCONV_HOST_ASAN=1 needs the AddressSanitizer runtime preloaded: "
            'LD_PRELOAD="$(gcc -print-file-name=libasan.so)" ASAN_OPTIONS=detect_leaks=0'
        ) from None
    for f in (poison, unpoison):
        f.argtypes, f.restype = (ctypes.c_void_p, ctypes.c_size_t), None
    return poison, unpoison


#: GPUCONV_HOST_MISALIGN=1: every array starts one element past a 256-byte boundary (as a CuPy
#: view such as ``x[1:]`` does) instead of on it, so the kernels' scalar fallbacks for data that
#: is not 16-byte aligned run, and a vector access the alignment checks let through fails
MISALIGN = os.environ.get("GPUCONV_HOST_MISALIGN") == "1"

_lock = threading.Lock()
_libs: dict[str, ctypes.CDLL] = {}
_launch_lock = threading.Lock()


def compiler() -> str | None:
    """The host C++ compiler ($CXX, else g++ or c++), or None."""
    for name in (os.environ.get("CXX"), "g++", "c++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _build_dir() -> Path:
    d = Path(tempfile.gettempdir()) / f"gpuconv-host-kernels-{os.getuid()}"
    d.mkdir(exist_ok=True)
    return d


_KERNEL = re.compile(r'extern\s+"C"\s+void\s+(\w+)\s*\(')


def kernel_names(preprocessed: str) -> list[str]:
    """Every extern "C" kernel of a preprocessed source (the shim's macros expanded)."""
    return sorted(set(_KERNEL.findall(preprocessed)))


def _launchers(names: list[str]) -> str:
    return "".join(
        f'\nextern "C" int gpuconv_launch_{n}(const unsigned* g, const unsigned* b, void** a, '
        f"int s) {{ return gpuconv_host::run_grid(&{n}, g, b, a, s); }}"
        for n in names
    )


def build(code: str, include_dirs=()) -> ctypes.CDLL:
    """The shared library of ``code`` (an assembled kernel source), compiled once per text."""
    cxx = compiler()
    if cxx is None:
        raise RuntimeError("no host C++ compiler (g++) to run the kernels on the CPU")
    incs = tuple(f"-I{Path(d).as_posix()}" for d in include_dirs)
    head = f'#include "{SHIM.as_posix()}"\n' + code
    # the headers the source includes are part of what is compiled: an edit must rebuild
    headers = [p.read_text() for d in include_dirs for p in sorted(Path(d).glob("*.cuh"))]
    key = hashlib.sha256(
        "\0".join((head, SHIM.read_text(), cxx, *FLAGS, *incs, *headers)).encode()
    ).hexdigest()[:24]
    with _lock:
        lib = _libs.get(key)
    if lib is not None:
        return lib
    out = _build_dir() / f"k-{key}.so"
    if not out.exists():
        tag = f"{os.getpid()}-{threading.get_ident()}"
        src = _build_dir() / f"k-{key}-{tag}.cpp"
        try:
            src.write_text(head)
            pre = subprocess.run(
                [cxx, "-E", "-std=c++17", "-x", "c++", *incs, str(src)],
                capture_output=True,
                text=True,
            )
            if pre.returncode != 0:
                raise RuntimeError(f"host preprocessing failed:\n{pre.stderr[-4000:]}")
            src.write_text(head + _launchers(kernel_names(pre.stdout)) + "\n")
            tmp = out.with_suffix(f".{tag}.tmp")
            r = subprocess.run(
                [cxx, *FLAGS, *incs, str(src), "-o", str(tmp)], capture_output=True, text=True
            )
            if r.returncode != 0:
                raise RuntimeError(f"host compile of the kernel source failed:\n{r.stderr[-4000:]}")
            os.replace(tmp, out)
        finally:
            src.unlink(missing_ok=True)
    with _lock:
        return _libs.setdefault(key, ctypes.CDLL(str(out)))


def symbol_address(lib: ctypes.CDLL, name: str) -> int:
    """Address of the global ``name`` (e.g. ``__constant__ c_filter``) in ``lib``."""
    return ctypes.addressof(ctypes.c_char.in_dll(lib, name))


_SCALARS = {
    np.dtype(np.int32): ctypes.c_int32,
    np.dtype(np.int64): ctypes.c_int64,
    np.dtype(np.float32): ctypes.c_float,
    np.dtype(np.float64): ctypes.c_double,
}


class _Guarded:
    """A copy of an array inside canary guard zones; ``finish`` checks them and copies back."""

    def __init__(self, a: np.ndarray, name: str, index: int):
        self.a, self.what = a, f"{name} argument {index}"
        n = a.nbytes
        self.raw = np.full(n + 2 * GUARD + 256, CANARY, dtype=np.uint8)
        off = (-self.raw.ctypes.data) % 256 + GUARD  # 256-byte aligned, like cudaMalloc
        if MISALIGN and a.itemsize < 16:
            off += a.itemsize
        self.off, self.n = off, n
        self.raw[off : off + n] = np.ascontiguousarray(a).view(np.uint8).reshape(-1)
        self.ptr = ctypes.c_void_p(self.raw.ctypes.data + off)
        self.asan = _asan_api()
        if self.asan:  # ASan's shadow works in 8-byte granules: poison whole ones only
            base = self.raw.ctypes.data
            end = base + off + n
            hi = (end + 7) & ~7
            self.asan[0](base, off)
            self.asan[0](hi, base + self.raw.nbytes - hi)

    def finish(self) -> None:
        if self.asan:
            self.asan[1](self.raw.ctypes.data, self.raw.nbytes)
        lo = self.raw[: self.off]
        hi = self.raw[self.off + self.n :]
        if (lo != CANARY).any() or (hi != CANARY).any():
            bad_lo = int(np.count_nonzero(lo != CANARY))
            bad_hi = int(np.count_nonzero(hi != CANARY))
            raise AssertionError(
                f"{self.what}: the kernel wrote outside the array ({bad_lo} bytes before it, "
                f"{bad_hi} after it)"
            )
        if not self.n:
            return
        data = self.raw[self.off : self.off + self.n]
        if not self.a.flags.writeable:  # an input view (np.broadcast_to ...): must be unchanged
            if not np.array_equal(np.ascontiguousarray(self.a).view(np.uint8).reshape(-1), data):
                raise AssertionError(f"{self.what}: the kernel wrote into a read-only input")
            return
        self.a.view(np.uint8).reshape(-1)[...] = data


def launch(lib: ctypes.CDLL, name: str, grid, block, args, may_sync: bool) -> None:
    """Run kernel ``name`` of ``lib`` over ``grid`` x ``block`` with ``args`` (NumPy arrays or
    None for pointers, NumPy scalars for values)."""
    fn = getattr(lib, f"gpuconv_launch_{name}")
    fn.restype = ctypes.c_int
    store, guarded = [], []
    for i, a in enumerate(args):
        if a is None:
            store.append(ctypes.c_void_p(0))
        elif isinstance(a, np.ndarray):
            if not a.flags.c_contiguous:
                raise AssertionError(f"{name} argument {i} is not C-contiguous")
            g = _Guarded(a, name, i)
            guarded.append(g)
            store.append(g.ptr)
        else:
            store.append(_SCALARS[np.dtype(type(a))](a))
    argv = (ctypes.c_void_p * len(store))(*(ctypes.addressof(s) for s in store))
    g3 = (ctypes.c_uint * 3)(*grid)
    b3 = (ctypes.c_uint * 3)(*block)
    with _launch_lock:  # the shim's scheduler, shared memory and thread indices are global
        err = fn(g3, b3, argv, int(may_sync))
    for g in guarded:
        g.finish()
    if err == 1:
        raise AssertionError(f"{name} called __syncthreads() but was launched as sync-free")
    if err == 4:
        raise AssertionError(
            f"{name}: a vector load or store at an address that is not a multiple of its size "
            "(a misaligned-address fault on a GPU)"
        )
    if err == 3:
        raise AssertionError(
            f"GPUCONV_HOST_ORDER={os.environ.get('GPUCONV_HOST_ORDER')!r}: use plain, reverse "
            "or shuffle"
        )
    if err:
        raise AssertionError(f"{name}: launch rejected (grid {tuple(grid)}, block {tuple(block)})")


def prebuild(jobs: int | None = None) -> None:
    """Compile every (source, defines) of ``gpuconv.cuda._build.variants()`` for the CPU, a few
    compiler processes at a time (the first test run pays it; later runs find the libraries)."""
    from concurrent.futures import ThreadPoolExecutor

    from gpuconv import _kernels
    from gpuconv.cuda import _build, _loader

    inc = [_kernels.source_dir()]
    codes = [_loader.assemble_source(src, defs) for src, defs, _ in _build.variants()]
    with ThreadPoolExecutor(jobs or os.cpu_count() or 2) as pool:
        list(pool.map(lambda c: build(c, inc), codes))
