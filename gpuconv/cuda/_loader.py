"""The one loader of gpuconv's CUDA kernels: kernels_cuda/*.cu -> cupy.RawModule -> kernel.

``get_function(source, kernel, defines)`` reads the source through :mod:`gpuconv._kernels`,
prepends :func:`gpuconv.cuda._build.defines_header` (the same text ``ci/check_kernels.py``
compiles), builds a ``cupy.RawModule`` compiled by NVRTC with :data:`OPTIONS` plus ``-I`` the
source folder, and caches the module per (device, source, defines, options) for this process;
CuPy's own disk cache (``~/.cupy/kernel_cache``) spares later processes the compile.  A compile
failure raises :class:`KernelCompileError` naming the kernel, source, defines and options with
the compiler's log.  CuPy is imported only when a kernel is asked for.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from gpuconv import _kernels
from gpuconv._arrays import require_cupy
from gpuconv.cuda import _build

#: NVRTC options of every module (the include path of the sources is added per call).
#: -default-device: NVRTC before 13 takes an unannotated function (the generic lambdas that
#: unroll the fast direct kernel's taps) as host code and refuses it in JIT mode.  CuPy 14 adds
#: the same flag itself (--device-as-default-execution-space, not on its jitify path); passing
#: it here keeps the sources compiling whatever CuPy adds (NVRTC accepts it twice).
OPTIONS: tuple[str, ...] = ("-std=c++17", "-default-device")


class KernelCompileError(RuntimeError):
    """NVRTC could not compile a kernel source (the message carries the compiler log)."""


def module_options(directory: Path | str | None = None) -> tuple[str, ...]:
    """The full option tuple for sources in ``directory`` (default: the installed sources)."""
    d = Path(directory) if directory is not None else _kernels.source_dir()
    return OPTIONS + (f"-I{d.as_posix()}",)


def assemble_source(source_name: str, defines: dict, directory: Path | str | None = None) -> str:
    """The exact text compiled for (source, defines): defines header, a #line, the file.

    Pure (reads one file): the loader and the tests share it, and ``ci/check_kernels.py`` builds
    the same text for nvcc.
    """
    d = Path(directory) if directory is not None else _kernels.source_dir()
    path = d / source_name
    if not path.is_file():
        raise FileNotFoundError(
            f"kernel source {source_name!r} not found in {d} (gpuconv._kernels.source_dir())"
        )
    return _build.defines_header(defines) + f'#line 1 "{path.as_posix()}"\n' + path.read_text()


def cache_key(device_id: int, source_name: str, defines: dict, options, directory=None) -> tuple:
    return (
        int(device_id),
        str(Path(directory)) if directory is not None else None,
        source_name,
        tuple((str(k), str(v)) for k, v in defines.items()),
        tuple(options),
    )


_modules: dict[tuple, object] = {}
_functions: dict[tuple, object] = {}
_lock = threading.Lock()


def _describe(source_name, kernel_name, defines, options) -> str:
    defs = ", ".join(f"{k}={v}" for k, v in defines.items()) or "(none)"
    return (
        f"kernel {kernel_name!r} of {source_name} with defines {defs} and NVRTC options "
        f"{' '.join(options)}"
    )


def get_module(source_name: str, defines: dict, directory: Path | str | None = None):
    """The (cached) ``cupy.RawModule`` of ``source_name`` with ``defines`` on the current device.

    Compilation is lazy in CuPy (at the first get_function / get_global).
    """
    cp = require_cupy()
    options = module_options(directory)
    key = cache_key(cp.cuda.Device().id, source_name, defines, options, directory)
    mod = _modules.get(key)
    if mod is None:
        code = assemble_source(source_name, defines, directory)
        mod = cp.RawModule(code=code, options=options)
        with _lock:
            mod = _modules.setdefault(key, mod)
    return mod


def _compile_errors(cp) -> tuple:
    errs = []
    compiler = getattr(getattr(cp, "cuda", None), "compiler", None)
    exc = getattr(compiler, "CompileException", None)
    if isinstance(exc, type):
        errs.append(exc)
    return tuple(errs)


def get_function(
    source_name: str, kernel_name: str, defines: dict, directory: Path | str | None = None
):
    """The compiled kernel ``kernel_name`` of ``source_name`` under ``defines`` (cached).

    Call it as ``kern(grid, block, args)`` (CuPy's RawKernel; launched on the current stream).
    """
    cp = require_cupy()
    options = module_options(directory)
    key = cache_key(cp.cuda.Device().id, source_name, defines, options, directory) + (kernel_name,)
    fn = _functions.get(key)
    if fn is not None:
        return fn
    mod = get_module(source_name, defines, directory)
    what = _describe(source_name, kernel_name, defines, options)
    errs = _compile_errors(cp)
    try:
        fn = mod.get_function(kernel_name)
    except errs as e:  # NVRTC failed: the log is in the message
        log = e.get_message() if hasattr(e, "get_message") else str(e)
        _drop_module(source_name, defines, directory, cp)
        raise KernelCompileError(f"could not compile {what}:\n{log}") from e
    except Exception as e:  # e.g. the kernel name is not in the module (CUDA_ERROR_NOT_FOUND)
        if "CompileException" in type(e).__name__:
            _drop_module(source_name, defines, directory, cp)
            raise KernelCompileError(f"could not compile {what}:\n{e}") from e
        raise RuntimeError(f"could not load {what}: {type(e).__name__}: {e}") from e
    with _lock:
        fn = _functions.setdefault(key, fn)
    return fn


def _drop_module(source_name, defines, directory, cp) -> None:
    key = cache_key(cp.cuda.Device().id, source_name, defines, module_options(directory), directory)
    with _lock:
        _modules.pop(key, None)


_constant_locks: dict[int, threading.Lock] = {}
_constant_readers: dict[int, object] = {}  # id(module) -> Event after its last reading kernel


@contextlib.contextmanager
def constant_upload(module, name: str, array):
    """Copy ``array`` into ``__constant__ name`` of ``module`` for the launch made inside the
    ``with`` block.

    A module's constant memory is one buffer for every stream: a copy on stream B could land
    while a kernel on stream A still reads the previous filter.  So the copy first waits (on
    the GPU, not the host) for the last kernel that read this module's constant on any stream,
    a lock keeps other threads from copying between this copy and this launch, and the launch's
    completion becomes the next copy's wait.
    """
    cp = require_cupy()
    key = id(module)
    with _lock:
        lock = _constant_locks.setdefault(key, threading.Lock())
    with lock:
        stream = cp.cuda.get_current_stream()
        last = _constant_readers.get(key)
        if last is not None:
            stream.wait_event(last)
        set_constant(module, name, array)
        yield
        done = cp.cuda.Event(disable_timing=True)
        done.record(stream)
        _constant_readers[key] = done


def set_constant(module, name: str, array) -> None:
    """Copy the C-contiguous device array ``array`` to the start of ``__constant__`` ``name``.

    An asynchronous device-to-device copy on the current stream, so it is ordered before the
    kernels launched after it on that stream.  The symbol's size is the caller's to respect.
    """
    cp = require_cupy()
    ptr = module.get_global(name)
    ptr.copy_from_device_async(array.data, array.nbytes, cp.cuda.get_current_stream())


def clear_cache() -> None:
    """Forget every module of this process (CuPy's disk cache stays)."""
    with _lock:
        _modules.clear()
        _functions.clear()
        _constant_locks.clear()
        _constant_readers.clear()


def launch(kernel, grid, block, args) -> None:
    """Launch ``kernel`` with 3-tuples grid / block (checked against CUDA's limits) on the
    current stream."""
    grid = tuple(int(g) for g in grid) + (1,) * (3 - len(grid))
    block = tuple(int(b) for b in block) + (1,) * (3 - len(block))
    if not (1 <= grid[0] <= 2**31 - 1 and 1 <= grid[1] <= 65535 and 1 <= grid[2] <= 65535):
        raise ValueError(f"grid {grid} is outside CUDA's limits")
    if min(block) < 1 or block[0] * block[1] * block[2] > 1024 or block[2] > 64:
        raise ValueError(f"block {block} is outside CUDA's limits")
    kernel(grid, block, tuple(args))


def compile_report() -> list[tuple[str, str, str | None]]:
    """Compile every kernel the library uses on the current device: ``(source, kernel, error or
    None)`` per kernel (``gpuconv info`` prints it)."""
    from . import _build

    out = []
    for source, defines, names in _build.variants():
        for name in names:
            try:
                get_function(source, name, defines)
                out.append((source, name, None))
            except (KernelCompileError, RuntimeError) as e:
                out.append((source, name, str(e).splitlines()[0]))
    return out
