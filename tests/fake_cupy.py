"""A fake CuPy for testing gpuconv's GPU host code without a GPU.

NumPy arrays stand in for device arrays.  ``RawModule`` parses the kernels' C signatures from the
assembled source, and every kernel launch is checked against its signature (argument count,
pointer dtypes and contiguity, np.int32 / np.int64 / np.float64 scalars exactly) and recorded in
``fake.launches`` before it runs: the launch executes the *real* CUDA kernel source compiled for
the CPU by the host C++ compiler (tests/cuda_host), over the grid and block the host code asked
for.  Outputs the tests poison first (``poison``) then show an element no launch wrote, a wrong
argument or a short grid; the canary guards around every array catch writes out of bounds.  A
launch with no host compiler skips the test.

``make_fake_cupy`` gives the bare module (its arrays are plain ``numpy.ndarray``);
``make_routing_cupy`` makes every array it returns a ``DeviceArray``, which gpuconv takes for a
CuPy array, so the public fronts route onto the GPU path and return "device" arrays.

What this cannot show: races, warp semantics, the memory model and speed.  Those need a GPU:
tests/test_gpu.py on a device and compute-sanitizer through ci/gpu-check.
"""

from __future__ import annotations

import ctypes
import re
import types

import numpy as np
import pytest

from tests import cuda_host

# ---------------------------------------------------------------------------------------------
# kernel signatures parsed from the CUDA sources

_CTYPES = {
    "float": np.float32,
    "double": np.float64,
    "float2": np.complex64,
    "double2": np.complex128,
    "long long": np.int64,
    "int": np.int32,
}


def _param_type(param: str, T: str) -> tuple[str, bool]:
    p = re.sub(r"\bT\b", T, param)
    p = p.replace("__restrict__", "").replace("const", "")
    ptr = "*" in p
    p = p.replace("*", " ")
    words = p.split()[:-1]  # drop the parameter name
    return " ".join(words), ptr


def kernel_signatures(code: str) -> dict[str, list[tuple[str, bool]]]:
    """{kernel: [(C base type, is_pointer), ...]} of every extern "C" kernel defined through a
    ``#define DEFINE_X(SUFFIX, T)`` macro instantiated as ``DEFINE_X(suffix, type)``."""
    text = re.sub(r"\\\n", " ", code)
    sigs = {}
    for m in re.finditer(r"^#define\s+(DEFINE_\w+)\(SUFFIX,\s*T\)(.*)$", text, re.M):
        macro, body = m.group(1), m.group(2)
        for inst in re.finditer(rf"^\s*{macro}\((\w+),\s*([\w ]+?)\)\s*$", text, re.M):
            suffix, T = inst.group(1), inst.group(2).strip()
            for km in re.finditer(r"(\w+)##SUFFIX\s*\(([^)]*)\)", body):
                params = [p.strip() for p in km.group(2).split(",")]
                sigs[km.group(1) + suffix] = [_param_type(p, T) for p in params]
    return sigs


# ---------------------------------------------------------------------------------------------
# the fake module


class FakeCompileError(Exception):
    def get_message(self):
        return str(self)


def _header_defines(code: str) -> dict[str, int]:
    out = {}
    for line in code.splitlines():
        m = re.match(r"#define (\w+) (-?\d+)$", line)
        if not m:
            break
        out[m.group(1)] = int(m.group(2))
    return out


class HostPtr:
    """``module.get_global(name)`` of a host-compiled module: writes the library's symbol."""

    def __init__(self, lib, name):
        self.address = cuda_host.symbol_address(lib, name)

    def copy_from_device_async(self, src, size, stream=None):
        data = np.ascontiguousarray(src).view(np.uint8).reshape(-1)[:size]
        ctypes.memmove(self.address, data.ctypes.data, size)


class FakeModule:
    """``cupy.RawModule``: the kernel signatures of the source, the source compiled for the CPU
    on first use."""

    def __init__(self, fake, code, options):
        self.fake, self.code, self.options = fake, code, tuple(options)
        self.defines = _header_defines(code)
        self.sigs = kernel_signatures(code)
        self.lib = None
        fake.compiled.append(self)

    def host_lib(self):
        """The source compiled for the CPU (tests/cuda_host), once per module; skips the test
        when there is no host C++ compiler."""
        if self.lib is None:
            if cuda_host.compiler() is None:
                pytest.skip("no host C++ compiler (g++) to run the CUDA kernel sources on the CPU")
            incs = [o[2:] for o in self.options if o.startswith("-I")]
            self.lib = cuda_host.build(self.code, incs)
        return self.lib

    def get_function(self, name):
        if "this is not C++" in self.code:
            raise FakeCompileError("fake NVRTC log: error: expected a ';'")
        if name not in self.sigs:
            raise RuntimeError(f"CUDA_ERROR_NOT_FOUND: {name}")
        return FakeKernel(self, name, self.sigs[name])

    def get_global(self, name):
        assert name == "c_filter"
        return HostPtr(self.host_lib(), name)


class FakeKernel:
    """``RawModule.get_function(name)``: checks the arguments against the C signature, records
    the launch, and runs the kernel compiled for the CPU."""

    def __init__(self, module, name, sig):
        self.module, self.name, self.sig = module, name, sig

    def __call__(self, grid, block, args):
        assert len(grid) == 3 and len(block) == 3
        assert all(type(v) is int for v in grid + block), (grid, block)
        assert len(args) == len(self.sig), (self.name, len(args), len(self.sig))
        for i, ((ctype, ptr), a) in enumerate(zip(self.sig, args)):
            if ptr:
                assert a is None or isinstance(a, np.ndarray), (self.name, i, type(a))
                if a is not None:
                    assert a.dtype == _CTYPES[ctype], (self.name, i, a.dtype, ctype)
                    assert a.flags.c_contiguous, (self.name, i)
            else:
                assert type(a) is _CTYPES[ctype], (self.name, i, type(a), ctype)
        self.module.fake.launches.append((self.name, grid, block))
        lib = self.module.host_lib()
        cuda_host.launch(lib, self.name, grid, block, args, "__syncthreads" in self.module.code)


class FakeDevice:
    """cupy.cuda.Device(): device 0 (compute capability 9.0), usable as a context manager."""

    id = 0
    compute_capability = "90"

    def __init__(self, *args):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class FakeEvent:
    """cupy.cuda.Event: ``record(stream)`` notes the stream (launches run at once here)."""

    def __init__(self, *args, **kwargs):
        self.stream = None

    def record(self, stream=None):
        self.stream = stream

    def synchronize(self):
        pass


class FakeStream:
    """cupy.cuda.Stream: ``waited`` lists the events it was told to wait for."""

    def __init__(self):
        self.waited = []

    def wait_event(self, event):
        self.waited.append(event)


def make_fake_cupy():
    """A module to install as ``sys.modules["cupy"]``: NumPy under CuPy's names (the module's
    ``__getattr__`` forwards to numpy), ``RawModule`` as above, ``compiled`` (every module built)
    and ``launches`` ((kernel, grid, block) of every launch)."""
    fake = types.ModuleType("cupy")
    fake.__getattr__ = lambda name: getattr(np, name)
    fake.ndarray = np.ndarray
    fake.fft = np.fft
    fake.compiled = []
    fake.launches = []
    stream = FakeStream()
    fake.cuda = types.SimpleNamespace(
        Device=FakeDevice,
        Event=FakeEvent,
        Stream=FakeStream,
        stream=stream,  # the current stream (tests swap it)
        get_current_stream=lambda: fake.cuda.stream,
        runtime=types.SimpleNamespace(
            getDeviceCount=lambda: 1, getDeviceProperties=lambda i: {"name": b"Fake GPU"}
        ),
        compiler=types.SimpleNamespace(CompileException=FakeCompileError),
    )
    fake.RawModule = lambda code, options=(): FakeModule(fake, code, options)
    return fake


# ---------------------------------------------------------------------------------------------
# arrays that look like CuPy arrays


class DeviceArray(np.ndarray):
    """A NumPy array that gpuconv takes for a CuPy array."""

    def get(self):
        return np.array(self)

    @property
    def device(self):  # cupy.ndarray.device is a cupy.cuda.Device (numpy's is the string 'cpu')
        return FakeDevice()


DeviceArray.__module__ = "cupy"
DeviceArray.__qualname__ = DeviceArray.__name__ = "ndarray"


def _dev(v):
    if isinstance(v, np.ndarray) and not isinstance(v, DeviceArray):
        return v.view(DeviceArray)
    return v


def make_routing_cupy():
    """``make_fake_cupy`` whose every array is a ``DeviceArray`` (what its numpy functions
    return included), with ``asnumpy`` giving plain NumPy arrays back."""
    fake = make_fake_cupy()

    def module_getattr(name):
        f = getattr(np, name)
        if callable(f) and not isinstance(f, type):
            return lambda *a, **k: _dev(f(*a, **k))
        return f

    fake.__getattr__ = module_getattr
    fake.ndarray = DeviceArray
    fake.asnumpy = lambda a: np.array(a)
    return fake


def poison(spec):
    """An output array of ``spec`` filled with NaN (a sentinel for integers), so an element no
    launch writes fails the comparison."""
    if spec.dtype.kind == "i":
        return np.full(spec.y_shape, np.iinfo(np.int64).min + 7, dtype=spec.dtype)
    return np.full(spec.y_shape, np.nan, dtype=spec.dtype)
