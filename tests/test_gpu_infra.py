"""CPU-only checks of the GPU back end's host side (no CuPy, no device needed).

* gpuconv._arrays: which module an input belongs to, the mixed-input error, require_cupy's errors.
* gpuconv.cuda._loader: the compiled text, the cache key, the compile-error message.
* importing gpuconv.cuda.* imports no CuPy.
* The kernel signatures parsed from the CUDA sources.
* The whole host path of every GPU algorithm against the fake CuPy of tests/fake_cupy.py: NumPy
  arrays stand in for device arrays, each kernel launch is checked against the kernel's C
  signature (argument count, pointer dtypes, np.int32 / np.int64 scalars exactly) and then runs
  the real kernel source compiled for the CPU (tests/cuda_host).  Outputs are poisoned first, so
  an element no launch writes, a wrong argument or a short grid fails.  Races, warp semantics and
  speed need a GPU (tests/test_gpu.py, ci/gpu-check); without a host C++ compiler the launching
  tests skip.
"""

from __future__ import annotations

import subprocess
import sys
import types

import numpy as np
import pytest

from gpuconv import _arrays, _kernels
from gpuconv._spec import ConvSpec
from gpuconv.cuda import _build, _loader
from tests.conftest import assert_conv_equal, random_array
from tests.fake_cupy import kernel_signatures, make_fake_cupy, poison
from tests.reference import reference

# ---------------------------------------------------------------------------------------------
# _arrays


def _fake_cupy_array_class():
    cls = type("ndarray", (), {"shape": (3,), "dtype": np.dtype(np.float32)})
    cls.__module__ = "cupy"
    return cls


def test_array_module_numpy_and_lists():
    assert _arrays.array_module(np.zeros(2), [1.0], 3.0) == "numpy"
    assert _arrays.array_module() == "numpy"
    assert _arrays.array_module(np.zeros(2), device="cpu") == "numpy"


def test_array_module_cupy_without_importing_cupy(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # any import attempt would fail
    a = _fake_cupy_array_class()()
    assert _arrays.is_cupy_array(a)
    assert _arrays.array_module(a, a) == "cupy"
    assert _arrays.array_module(a, device="cuda") == "cupy"


def test_array_module_mixed_inputs_name_both_types():
    a = _fake_cupy_array_class()()
    with pytest.raises(TypeError) as e:
        _arrays.array_module(np.zeros(3), a)
    msg = str(e.value)
    assert "numpy.ndarray" in msg and "cupy.ndarray" in msg
    assert "cupy.asarray" in msg and ".get()" in msg


def test_array_module_device_disagrees():
    a = _fake_cupy_array_class()()
    with pytest.raises(TypeError, match="device='cpu'"):
        _arrays.array_module(a, device="cpu")
    with pytest.raises(TypeError, match="device='cuda'"):
        _arrays.array_module(np.zeros(2), device="cuda")
    with pytest.raises(ValueError, match="unknown device"):
        _arrays.array_module(np.zeros(2), device="tpu")


def test_require_cupy_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    with pytest.raises(ImportError) as e:
        _arrays.require_cupy()
    msg = str(e.value)
    assert "CuPy" in msg and 'pip install "gpuconv[cuda12]"' in msg and "[cuda13]" in msg


def test_require_cupy_no_driver(monkeypatch):
    class DriverError(Exception):
        pass

    def no_device():
        raise DriverError("cudaErrorInsufficientDriver: CUDA driver version is insufficient")

    fake = types.ModuleType("cupy")
    fake.__version__ = "14.0.0"
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=no_device))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    with pytest.raises(RuntimeError) as e:
        _arrays.require_cupy()
    msg = str(e.value)
    assert "cudaErrorInsufficientDriver" in msg and "DriverError" in msg and "14.0.0" in msg


def test_require_cupy_zero_devices(monkeypatch):
    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 0))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    with pytest.raises(RuntimeError, match="no device"):
        _arrays.require_cupy()


def test_importing_gpu_modules_imports_no_cupy():
    code = (
        "import sys\n"
        "import gpuconv, gpuconv._arrays, gpuconv.cuda, gpuconv.cuda._build, gpuconv.cuda._loader\n"
        "import gpuconv.cuda.direct, gpuconv.cuda.fft, gpuconv.cuda.im2col\n"
        "from gpuconv.cuda import implicit_gemm, overlap_add, separable\n"
        "from gpuconv._spec import ConvSpec\n"
        "s = ConvSpec(in_shape=(8, 8), kernel_shape=(3, 3))\n"
        "for m in (gpuconv.cuda.direct, gpuconv.cuda.fft, gpuconv.cuda.im2col):\n"
        "    assert m.supports(s) is None, m\n"
        "s = ConvSpec(in_shape=(30, 30), kernel_shape=(3, 3), c_in=8, c_out=8)\n"
        "assert implicit_gemm.supports(s) is None\n"
        "assert implicit_gemm.choose_tile(s) == (64, 64)\n"
        "assert overlap_add.supports(ConvSpec(in_shape=(3000,), kernel_shape=(31,))) is None\n"
        "bad = [m for m in sys.modules if m == 'cupy' or m.startswith(('cupy.', 'cupyx'))]\n"
        "assert not bad, bad\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


# ---------------------------------------------------------------------------------------------
# _loader: source assembly, cache key, compile errors


def test_assemble_source_prepends_defines_and_line():
    text = _loader.assemble_source("spectral.cu", {"CO_PER_THREAD": 2, "SPECTRAL_BLOCK": 128})
    lines = text.splitlines()
    assert lines[0] == "#define CO_PER_THREAD 2"
    assert lines[1] == "#define SPECTRAL_BLOCK 128"
    path = (_kernels.source_dir() / "spectral.cu").as_posix()
    assert lines[2] == f'#line 1 "{path}"'
    assert text.endswith((_kernels.source_dir() / "spectral.cu").read_text())


def test_assemble_source_matches_ci_check():
    """ci/check_kernels.py compiles the same text (its own copy of the assembly)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("check_kernels", "ci/check_kernels.py")
    if spec is None or not _kernels.source_dir().name == "kernels_cuda":
        pytest.skip("not a checkout")
    src = (spec.loader.get_data(spec.origin)).decode()
    assert "build.defines_header(defines) + f'#line 1" in src


def test_assemble_source_missing_file():
    with pytest.raises(FileNotFoundError, match="nope.cu"):
        _loader.assemble_source("nope.cu", {})


def test_defines_header_rejects_bad_macros():
    with pytest.raises(ValueError):
        _build.defines_header({"1BAD": 1})
    with pytest.raises(ValueError):
        _build.defines_header({"A": "1\n#define B 2"})
    assert _build.defines_header({"A": True, "B": 3}) == "#define A 1\n#define B 3\n"


def test_module_options_and_cache_key(tmp_path):
    opts = _loader.module_options()
    assert opts[0] == "-std=c++17"
    assert opts[-1] == f"-I{_kernels.source_dir().as_posix()}"
    k1 = _loader.cache_key(0, "direct.cu", {"KH": 3}, opts)
    assert k1 == _loader.cache_key(0, "direct.cu", {"KH": 3}, opts)
    assert k1 != _loader.cache_key(1, "direct.cu", {"KH": 3}, opts)
    assert k1 != _loader.cache_key(0, "direct.cu", {"KH": 5}, opts)
    assert k1 != _loader.cache_key(0, "direct.cu", {"KH": 3}, opts, tmp_path)


def test_kernel_sources_include_only_their_own_headers():
    # CuPy compiles with NVRTC, which has no host C++ headers: an #include <...> that nvcc
    # (CI's compile check) accepts would fail at run time on the GPU
    import re

    from gpuconv import _kernels

    sources = {p.name for p in _kernels.sources()}
    for path in _kernels.sources():
        for line in path.read_text().splitlines():
            m = re.match(r"\s*#\s*include\s*(.*)", line)
            if m:
                inc = m.group(1).strip()
                assert inc.startswith('"') and inc.strip('"') in sources, (path.name, line)


def test_every_variant_source_exists_and_kernels_are_declared():
    for source, defines, names in _build.variants():
        sigs = kernel_signatures(_loader.assemble_source(source, defines))
        for n in names:
            assert n in sigs, (source, n)


def test_kernel_compile_error_names_kernel_defines_options(monkeypatch, tmp_path):
    fake = make_fake_cupy()
    monkeypatch.setitem(sys.modules, "cupy", fake)
    _loader.clear_cache()
    (tmp_path / "broken.cu").write_text('extern "C" __global__ void k() { this is not C++; }\n')
    with pytest.raises(_loader.KernelCompileError) as e:
        _loader.get_function("broken.cu", "k", {"MY_DEFINE": 7}, directory=tmp_path)
    msg = str(e.value)
    assert "'k'" in msg and "broken.cu" in msg and "MY_DEFINE=7" in msg
    assert "-std=c++17" in msg and f"-I{tmp_path.as_posix()}" in msg
    assert "fake NVRTC log" in msg
    assert isinstance(e.value, RuntimeError)
    _loader.clear_cache()


def test_loader_caches_modules_and_functions(monkeypatch):
    fake = make_fake_cupy()
    monkeypatch.setitem(sys.modules, "cupy", fake)
    _loader.clear_cache()
    d = _build.spectral_defines()
    f1 = _loader.get_function("spectral.cu", "spectral_c64", d)
    f2 = _loader.get_function("spectral.cu", "spectral_c64", dict(d))
    assert f1 is f2
    assert _loader.get_module("spectral.cu", d) is f1.module
    assert len(fake.compiled) == 1
    _loader.clear_cache()


def test_launch_checks_limits():
    with pytest.raises(ValueError, match="grid"):
        _loader.launch(lambda *a: None, (1, 70000, 1), (32, 1, 1), ())
    with pytest.raises(ValueError, match="block"):
        _loader.launch(lambda *a: None, (1, 1, 1), (64, 32, 1), ())


# ---------------------------------------------------------------------------------------------
# kernel signatures parsed from the CUDA sources


def test_signature_parser_reads_known_kernels():
    sigs = kernel_signatures(_loader.assemble_source("spectral.cu", _build.spectral_defines()))
    assert sigs["spectral_c64"] == [
        ("float2", True), ("float2", True), ("float2", True), ("long long", False),
        ("int", False), ("int", False), ("int", False), ("int", False),
    ]  # fmt: skip
    d = kernel_signatures(_loader.assemble_source("direct.cu", _build.fast2d_defines(3, 3)))
    assert d["direct2d_i64"][:4] == [
        ("long long", True),
        ("long long", True),
        ("long long", True),
        ("long long", False),
    ]
    assert len(d["direct3d_generic_f32"]) == 29


# ---------------------------------------------------------------------------------------------
# the host paths of the GPU algorithms, run against the fake

DTYPES = [np.float32, np.float64, np.complex64, np.complex128, np.int64]

SPECS = [
    dict(in_shape=(9, 11), kernel_shape=(3, 3), pad_lo=1, pad_hi=1, flip=True),  # fast, const
    dict(in_shape=(40, 37), kernel_shape=(5, 5), pad_lo=(2, 3), pad_hi=(0, 4)),  # several tiles
    dict(in_shape=(7, 8), kernel_shape=(4, 4), batch=2, c_in=3, c_out=3, groups=3, flip=True),
    dict(in_shape=(6, 7), kernel_shape=(2, 3), batch=2, c_in=2, c_out=4, groups=2),  # generic
    dict(in_shape=(10, 9), kernel_shape=(3, 2), stride=(2, 1), dilation=(1, 2), pad_lo=2),
    dict(
        in_shape=(17,), kernel_shape=(4,), batch=3, c_in=2, c_out=3, pad_lo=3, pad_hi=1, flip=True
    ),
    dict(in_shape=(5,), kernel_shape=(9,), pad_lo=6, pad_hi=6),  # kernel longer than x (aliasing)
    dict(in_shape=(5, 6, 4), kernel_shape=(2, 3, 2), c_in=2, c_out=2, stride=(1, 2, 1), pad_lo=1),
    dict(in_shape=(6, 5), kernel_shape=(1, 1), batch=2, c_in=4, c_out=6, groups=2),  # pointwise
    dict(in_shape=(33, 70), kernel_shape=(15, 15), pad_lo=7, pad_hi=7, flip=True),
]


def _check_alg(module, spec, rng, **budget):
    x = random_array(rng, spec.x_shape, spec.dtype)
    w = random_array(rng, spec.w_shape, spec.dtype)
    out = poison(spec)
    y = module.run(spec, x, w, out=out)
    assert y is out
    assert_conv_equal(y, reference(spec, x, w).astype(spec.dtype), x, w)
    y2 = module.run(spec, x, w)
    assert_conv_equal(y2, reference(spec, x, w).astype(spec.dtype), x, w)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", SPECS, ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()))
def test_fake_direct(fake_cupy, rng, kw, dtype):
    from gpuconv.cuda import direct

    spec = ConvSpec(dtype=dtype, **kw)
    _check_alg(direct, spec, rng)
    names = {n.rsplit("_", 1)[0] for n, _, _ in fake_cupy.launches}
    if direct.fast2d_reason(spec) is None:
        assert names == {"direct2d"}
    elif direct.fast1d_reason(spec) is None:
        assert names == {"direct1d"}
    elif direct.fast3d_reason(spec) is None:
        assert names == {"direct3d_fast"}
    else:
        assert names == {"direct3d_generic"}


def test_fake_direct_uses_constant_and_pointer_paths(fake_cupy, rng):
    from gpuconv.cuda import direct

    single = ConvSpec(in_shape=(9, 9), kernel_shape=(3, 3), flip=True, dtype=np.float32)
    depthwise = ConvSpec(
        in_shape=(9, 9), kernel_shape=(3, 3), c_in=2, c_out=2, groups=2, dtype=np.float32
    )
    assert direct.fast2d_reason(single) is None and direct.fast2d_reason(depthwise) is None
    _check_alg(direct, single, rng)
    _check_alg(direct, depthwise, rng)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", SPECS, ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()))
def test_fake_fft(fake_cupy, rng, kw, dtype, monkeypatch):
    from gpuconv.cuda import fft

    monkeypatch.setattr(fft, "MEMORY_BUDGET", 1)  # one batch item per chunk
    spec = ConvSpec(dtype=dtype, **kw)
    _check_alg(fft, spec, rng)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", SPECS, ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()))
def test_fake_im2col(fake_cupy, rng, kw, dtype, monkeypatch):
    from gpuconv.cuda import im2col

    monkeypatch.setattr(im2col, "WORKSPACE_BUDGET", 1)  # one batch item per chunk
    spec = ConvSpec(dtype=dtype, **kw)
    _check_alg(im2col, spec, rng)


def test_fake_col2im_is_the_adjoint(fake_cupy, rng):
    from gpuconv.cuda import im2col

    spec = ConvSpec(
        in_shape=(6, 7), kernel_shape=(3, 2), batch=2, c_in=2, stride=(2, 1), dilation=(1, 2),
        pad_lo=1, pad_hi=2,
    )  # fmt: skip
    x = rng.standard_normal(spec.x_shape)
    col = im2col.im2col(spec, x)
    c = rng.standard_normal(col.shape)
    back = im2col.col2im(spec, c)
    assert np.isclose(np.vdot(col, c), np.vdot(x, back))


def test_fft_lengths_are_safe_and_smooth():
    from gpuconv.cuda import fft

    for kw in SPECS:
        spec = ConvSpec(**kw)
        for real in (True, False):
            L = fft.lengths(spec, real)
            for a, n in enumerate(L):
                assert n >= spec.in_shape[a] + max(spec.pad_lo[a], spec.pad_hi[a])
                assert n >= spec.padded_shape[a] - spec.reach[a] + 1
                assert fft._factor7(n) is not None
            if real:
                assert L[-1] % 2 == 0 or L[-1] == 1


def test_out_argument_is_checked(fake_cupy, rng):
    from gpuconv.cuda import direct, fft, im2col

    spec = ConvSpec(in_shape=(5, 5), kernel_shape=(3, 3), dtype=np.float32)
    x = random_array(rng, spec.x_shape, spec.dtype)
    w = random_array(rng, spec.w_shape, spec.dtype)
    for m in (direct, fft, im2col):
        with pytest.raises(ValueError, match="out has shape"):
            m.run(spec, x, w, out=np.empty((1, 1, 4, 4), np.float32))
        with pytest.raises(ValueError, match="dtype"):
            m.run(spec, x, w, out=np.empty(spec.y_shape, np.float64))
        with pytest.raises(ValueError, match="contiguous"):
            m.run(spec, x, w, out=np.empty((1, 1, 3, 6), np.float32)[..., ::2])


def test_supports_reasons():
    from gpuconv.cuda import direct, fft, im2col

    s4 = ConvSpec(in_shape=(3, 3, 3, 3), kernel_shape=(1, 1, 1, 1))
    assert "spatial axes" in direct.supports(s4)
    assert "spatial axes" in im2col.supports(s4)
    s = ConvSpec(in_shape=(8, 8), kernel_shape=(6, 6))
    assert "no compiled 6x6" in direct.fast2d_reason(s)
    s = ConvSpec(in_shape=(8, 8), kernel_shape=(3, 3), stride=2)
    assert "stride" in direct.fast2d_reason(s)
    s = ConvSpec(in_shape=(8, 8), kernel_shape=(3, 3), c_in=2, c_out=4, groups=2)
    assert "depthwise" in direct.fast2d_reason(s)
    big = ConvSpec(in_shape=(64, 64), kernel_shape=(32, 32), c_in=4096, c_out=4096)
    assert "GiB" in fft.supports(big)
