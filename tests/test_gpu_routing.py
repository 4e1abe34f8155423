"""Routing of the public fronts onto the GPU (``device=`` and CuPy inputs), without a GPU.

The fake CuPy of tests/fake_cupy.py (``make_routing_cupy``: NumPy arrays as device arrays, an
ndarray subclass whose class lives in module ``cupy`` so gpuconv takes it for a CuPy array) is
installed: every array the fake module returns is one, and ``asnumpy``/``.get()`` give plain NumPy
arrays back.  That checks which way a call goes and what type comes back; the kernel launches run
the real kernel sources compiled for the CPU (tests/cuda_host), so the numbers are the device
code's too.  Races and speed need a GPU (the ``gpu``-marked tests at the end, ci/gpu-check).
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

import gpuconv
from gpuconv import _arrays, dispatch, nn, signal
from gpuconv.cuda import _loader
from tests.conftest import assert_conv_equal, random_array
from tests.fake_cupy import make_routing_cupy


@pytest.fixture
def cp(monkeypatch):
    fake = make_routing_cupy()
    monkeypatch.setitem(sys.modules, "cupy", fake)
    _loader.clear_cache()
    yield fake
    _loader.clear_cache()


def _is_device(a) -> bool:
    return _arrays.is_cupy_array(a)


def _host(a) -> np.ndarray:
    return np.array(a)


FRONTS = {
    "convolve": (lambda a, b, **k: signal.convolve(a, b, "same", **k), 1),
    "correlate": (lambda a, b, **k: signal.correlate(a, b, "full", **k), 1),
    "convolve_2d": (lambda a, b, **k: signal.convolve(a, b, "valid", **k), 2),
    "convolve_fft": (lambda a, b, **k: signal.convolve(a, b, "full", "fft", **k), 2),
    "convolve2d": (lambda a, b, **k: signal.convolve2d(a, b, "same", **k), 2),
    "convolve2d_symm": (lambda a, b, **k: signal.convolve2d(a, b, boundary="symm", **k), 2),
    "correlate2d": (lambda a, b, **k: signal.correlate2d(a, b, "full", **k), 2),
    "fftconvolve": (lambda a, b, **k: signal.fftconvolve(a, b, "same", **k), 2),
    "fftconvolve_axes": (lambda a, b, **k: signal.fftconvolve(a, b[:1], axes=1, **k), 2),
    "oaconvolve": (lambda a, b, **k: signal.oaconvolve(a, b, "full", **k), 2),
}


def _operands(rng, nd, dtype=np.float64):
    shape = (23,) if nd == 1 else (13, 17)
    kshape = (4,) if nd == 1 else (3, 3)
    return random_array(rng, shape, dtype), random_array(rng, kshape, dtype)


@pytest.mark.parametrize("front", sorted(FRONTS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex64, np.int64])
def test_cupy_in_cupy_out(cp, rng, front, dtype):
    f, nd = FRONTS[front]
    a, b = _operands(rng, nd, dtype)
    expected = f(a, b)
    got = f(cp.asarray(a), cp.asarray(b))
    assert _is_device(got), type(got)
    assert cp.launches, "nothing ran on the (fake) GPU"
    assert_conv_equal(_host(got), expected, a, b)


@pytest.mark.parametrize("front", ["convolve", "convolve2d", "fftconvolve"])
def test_device_cuda_with_numpy_inputs_returns_numpy(cp, rng, front):
    f, nd = FRONTS[front]
    a, b = _operands(rng, nd)
    got = f(a, b, device="cuda")
    assert type(got) is np.ndarray
    assert cp.launches, "nothing ran on the (fake) GPU"
    assert_conv_equal(got, f(a, b), a, b)


def test_lists_follow_a_cupy_operand(cp, rng):
    a = random_array(rng, (20,), np.float64)
    got = signal.convolve(cp.asarray(a), [1.0, -2.0, 0.5])
    assert _is_device(got)
    assert_conv_equal(_host(got), signal.convolve(a, [1.0, -2.0, 0.5]), a, np.ones(3))


def test_numpy_inputs_stay_on_the_cpu(cp, rng):
    a, b = _operands(rng, 2)
    for f, _ in FRONTS.values():
        assert type(f(a, b)) is np.ndarray
        assert type(f(a, b, device="cpu")) is np.ndarray
    assert type(nn.conv2d(a[None, None], b[None, None])) is np.ndarray
    assert not cp.launches


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_cupy_in_cupy_out(cp, rng, dtype):
    x = random_array(rng, (2, 4, 9, 10), dtype)
    w = random_array(rng, (6, 2, 3, 3), dtype)
    bias = random_array(rng, (6,), dtype)
    kw = dict(stride=(1, 2), padding=1, groups=2)
    expected = nn.conv2d(x, w, bias, **kw)
    got = nn.conv2d(cp.asarray(x), cp.asarray(w), cp.asarray(bias), **kw)
    assert _is_device(got)
    assert cp.launches
    assert_conv_equal(_host(got), expected, x, w)
    # unbatched input, reflect padding (the pad runs on the device module)
    expected = nn.conv2d(x[0], w, padding=2, groups=2, padding_mode="reflect")
    got = nn.conv2d(cp.asarray(x[0]), cp.asarray(w), padding=2, groups=2, padding_mode="reflect")
    assert _is_device(got)
    assert_conv_equal(_host(got), expected, x, w)


def test_conv_device_cuda_numpy_in_numpy_out(cp, rng):
    x = random_array(rng, (1, 3, 8, 8), np.float32)
    w = random_array(rng, (2, 3, 3, 3), np.float32)
    bias = np.array([1.0, -1.0], np.float32)
    got = nn.conv2d(x, w, bias, padding="same", device="cuda")
    assert type(got) is np.ndarray
    assert cp.launches
    assert_conv_equal(got, nn.conv2d(x, w, bias, padding="same"), x, w)
    got = nn.conv1d(x[:, :, 0], w[:, :, 0], device="cuda", algorithm="im2col")
    assert type(got) is np.ndarray
    assert_conv_equal(got, nn.conv1d(x[:, :, 0], w[:, :, 0]), x, w)


def test_mixed_inputs_are_a_type_error(cp, rng):
    a, b = _operands(rng, 2)
    for f, _ in FRONTS.values():
        with pytest.raises(TypeError, match="different devices"):
            f(a, cp.asarray(b))
        with pytest.raises(TypeError, match="different devices"):
            f(cp.asarray(a), b, device="cuda")
    x = random_array(rng, (1, 1, 6, 6), np.float64)
    with pytest.raises(TypeError, match="different devices"):
        nn.conv2d(cp.asarray(x), np.ones((1, 1, 3, 3)))
    with pytest.raises(TypeError, match="different devices"):
        nn.conv2d(cp.asarray(x), cp.ones((1, 1, 3, 3)), np.ones(1))


def test_device_cpu_with_cupy_inputs_is_a_type_error(cp, rng):
    a, b = _operands(rng, 2)
    for f, _ in FRONTS.values():
        with pytest.raises(TypeError, match="device='cuda'") as e:
            f(cp.asarray(a), cp.asarray(b), device="cpu")
        assert "NumPy" in str(e.value)
    with pytest.raises(TypeError, match="device='cuda'"):
        nn.conv2d(cp.asarray(a[None, None]), cp.asarray(b[None, None]), device="cpu")
    assert not cp.launches


def test_unknown_device_names_the_allowed_values(rng):
    a, b = _operands(rng, 2)
    for f, _ in FRONTS.values():
        with pytest.raises(ValueError, match="'cpu', 'cuda' or None"):
            f(a, b, device="bogus")
    with pytest.raises(ValueError, match="'cpu', 'cuda' or None"):
        nn.conv2d(a[None, None], b[None, None], device="bogus")
    with pytest.raises(ValueError, match="'cpu', 'cuda' or None"):
        signal.plan(a, b, device="gpu0")


def test_device_cuda_without_cupy(monkeypatch, rng):
    monkeypatch.setitem(sys.modules, "cupy", None)
    a, b = _operands(rng, 2)
    with pytest.raises(ImportError, match="gpuconv\\[cuda12\\]"):
        signal.convolve(a, b, device="cuda")
    with pytest.raises(ImportError, match="gpuconv\\[cuda12\\]"):
        nn.conv2d(a[None, None], b[None, None], device="cuda")


def test_device_cuda_without_a_device(monkeypatch, rng):
    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 0))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    a, b = _operands(rng, 1)
    with pytest.raises(RuntimeError, match="no device"):
        signal.fftconvolve(a, b, device="cuda")


def test_plan_for_cupy_inputs_lists_only_cuda_candidates(cp, rng):
    a, b = _operands(rng, 2, np.float32)
    p = signal.plan(cp.asarray(a), cp.asarray(b), "same")
    assert [c.name for c in p.candidates] == dispatch.algorithm_names("cuda")
    assert p.algorithm in dispatch.algorithm_names("cuda")
    assert p.estimates  # every candidate has an estimate here
    p = signal.plan(a, b, "same", device="cuda")
    assert [c.name for c in p.candidates] == dispatch.algorithm_names("cuda")
    p = signal.plan(a, b, "same")
    assert [c.name for c in p.candidates] == dispatch.algorithm_names()
    assert not cp.launches


def test_scipy_only_inputs_with_cupy_are_a_type_error(cp):
    h = np.ones(5, np.float16)
    for f in (signal.convolve, signal.correlate):
        with pytest.raises(TypeError, match="scipy.signal on the host"):
            f(cp.asarray(h), cp.asarray(h))
        with pytest.raises(TypeError, match="scipy.signal on the host"):
            f(cp.zeros(0), cp.ones(3))
    with pytest.raises(TypeError, match="scipy.signal on the host"):
        signal.convolve2d(cp.zeros((0, 3)), cp.ones((2, 2)))


GRAD_CASES = [
    dict(x=(2, 4, 9, 8), w=(6, 2, 3, 3), stride=1, padding=1, dilation=1, groups=2),
    dict(x=(2, 3, 11, 10), w=(4, 3, 3, 2), stride=2, padding=(1, 0), dilation=1, groups=1),
    dict(x=(1, 2, 12, 13), w=(2, 1, 3, 3), stride=1, padding=2, dilation=2, groups=2),
    dict(x=(3, 2, 17), w=(3, 2, 4), stride=3, padding=2, dilation=1, groups=1),
    dict(x=(1, 2, 6, 7, 5), w=(2, 2, 2, 3, 2), stride=(1, 2, 1), padding=1, dilation=1, groups=1),
]


@pytest.mark.parametrize("algorithm", ["auto", "direct", "fft", "im2col"])
@pytest.mark.parametrize("case", GRAD_CASES, ids=lambda c: f"x{c['x']}-s{c['stride']}")
def test_backward_ops_on_the_gpu(cp, rng, algorithm, case):
    """conv*_input, conv*_weight and conv_transpose* on CuPy arrays give the CPU's gradients (the
    kernels run compiled for the CPU); an algorithm that cannot do a pass says why."""
    nd = len(case["x"]) - 2
    dtype = np.float64
    x = random_array(rng, case["x"], dtype)
    w = random_array(rng, case["w"], dtype)
    kw = {k: case[k] for k in ("stride", "padding", "dilation", "groups")}
    y = getattr(nn, f"conv{nd}d")(x, w, **kw)
    dy = random_array(rng, y.shape, dtype)
    calls = {
        "input": lambda a, **o: getattr(nn, f"conv{nd}d_input")(x.shape, w if a is None else a[0],
                                                                dy if a is None else a[1], **kw, **o),
        "weight": lambda a, **o: getattr(nn, f"conv{nd}d_weight")(x if a is None else a[0], w.shape,
                                                                  dy if a is None else a[1], **kw, **o),
    }  # fmt: skip
    operands = {"input": (w, dy), "weight": (x, dy)}
    for which, call in calls.items():
        expected = call(None)
        dev_in = tuple(cp.asarray(a) for a in operands[which])
        try:
            got = call(dev_in, algorithm=algorithm)
        except ValueError as e:
            assert algorithm == "fft" and "cannot do backward" in str(e), e
            continue
        assert _is_device(got) and got.dtype == dtype and got.shape == expected.shape
        assert_conv_equal(_host(got), expected, x, w)
        back = call(None, algorithm=algorithm, device="cuda")  # NumPy in, NumPy out
        assert type(back) is np.ndarray
        assert_conv_equal(back, expected, x, w)
    if case["groups"] == 1 and nd == 2:
        t = nn.conv_transpose2d(dy, w, stride=case["stride"], padding=case["padding"],
                                dilation=case["dilation"])  # fmt: skip
        tg = nn.conv_transpose2d(cp.asarray(dy), cp.asarray(w), stride=case["stride"],
                                 padding=case["padding"], dilation=case["dilation"])  # fmt: skip
        assert _is_device(tg)
        assert_conv_equal(_host(tg), t, dy, w)


def test_gpu_backward_routes():
    spec = gpuconv._spec.ConvSpec(in_shape=(8, 8), kernel_shape=(3, 3), stride=2)
    im2col = dispatch.get_algorithm("im2col", "cuda")
    assert im2col.route(spec, "backward_data")[0] == "native"
    assert im2col.route(spec, "backward_weight")[0] == "native"
    direct = dispatch.get_algorithm("direct", "cuda")
    assert direct.route(spec, "backward_data")[0] == "native"  # the transposed kernel
    assert direct.route(spec, "backward_weight")[0] == "remap"
    stride1 = gpuconv._spec.ConvSpec(in_shape=(8, 8), kernel_shape=(3, 3))
    assert direct.route(stride1, "backward_data")[0] == "remap"  # can take the fast 2-D path
    fft = dispatch.get_algorithm("fft", "cuda")
    assert "stride" in fft.supports(spec, op="backward_data")


def test_registry_by_device():
    assert dispatch.algorithm_names() == dispatch.algorithm_names("cpu")
    assert "overlap_add" in dispatch.algorithm_names()
    cuda = dispatch.algorithm_names("cuda")
    assert set(cuda) == {"direct", "fft", "im2col", "implicit_gemm", "overlap_add", "separable"}
    for name in cuda:
        alg = dispatch.get_algorithm(name, "cuda")
        assert (alg.device, alg.module) == ("cuda", f"gpuconv.cuda.{name}")
        if name in dispatch.algorithm_names("cpu"):  # the CPU twin's exactness
            assert alg.exact == dispatch.get_algorithm(name).exact
    with pytest.raises(ValueError, match="unknown cuda algorithm 'winograd'"):
        dispatch.get_algorithm("winograd", "cuda")
    assert set(dispatch.constants("cuda")) >= {"stream_byte", "fft_nlogn_f32", "gemm_mac_f32"}


def test_named_separable_on_the_gpu(cp, rng):
    a, b = _operands(rng, 2)
    with pytest.raises(ValueError, match="not rank 1"):
        signal.convolve(cp.asarray(a), cp.asarray(b), method="separable")
    with pytest.raises(ValueError, match="not rank 1"):
        nn.conv2d(cp.asarray(a[None, None]), cp.asarray(b[None, None]), algorithm="separable")
    k = np.outer(rng.standard_normal(3), rng.standard_normal(4))
    got = signal.convolve(cp.asarray(a), cp.asarray(k), method="separable")
    assert _is_device(got)
    assert_conv_equal(_host(got), signal.convolve(a, k), a, k)
    assert any(name.startswith("sep_pass_") for name, _, _ in cp.launches)


# ---------------------------------------------------------------------------------------------
# the same on a real GPU


@pytest.mark.gpu
def test_gpu_cupy_in_cupy_out(device, rng):
    import cupy

    for front in ("convolve", "correlate", "convolve2d", "fftconvolve", "oaconvolve"):
        f, nd = FRONTS[front]
        a, b = _operands(rng, nd)
        got = f(cupy.asarray(a), cupy.asarray(b))
        assert isinstance(got, cupy.ndarray), front
        assert_conv_equal(cupy.asnumpy(got), f(a, b), a, b)


@pytest.mark.gpu
def test_gpu_device_cuda_numpy_in_numpy_out(device, rng):
    import cupy

    x = random_array(rng, (2, 4, 12, 12), np.float32)
    w = random_array(rng, (8, 4, 3, 3), np.float32)
    got = nn.conv2d(x, w, padding=1, device="cuda")
    assert type(got) is np.ndarray
    assert_conv_equal(got, nn.conv2d(x, w, padding=1), x, w)
    got = nn.conv2d(cupy.asarray(x), cupy.asarray(w), padding=1)
    assert isinstance(got, cupy.ndarray)
    with pytest.raises(TypeError, match="device='cuda'"):
        nn.conv2d(cupy.asarray(x), cupy.asarray(w), device="cpu")
    with pytest.raises(TypeError, match="different devices"):
        signal.convolve(cupy.asarray(x[0, 0]), w[0, 0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", [None, "relu", "leaky_relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("algorithm", ["direct", "im2col", "fft"])
@pytest.mark.parametrize("groups", [1, 3])
def test_epilogue_on_the_gpu_path(cp, rng, dtype, activation, with_bias, algorithm, groups):
    """Bias and activation on the GPU give the CPU pass's result: fused into the store of the
    algorithms that can (no bias_act launch), one bias_act pass after the others."""
    x = random_array(rng, (2, 3, 7, 6), dtype)
    w = random_array(rng, (3 if groups == 3 else 4, 3 // groups, 3, 3), dtype)
    b = random_array(rng, (w.shape[0],), dtype) if with_bias else None
    kw = dict(padding=1, groups=groups, activation=activation, negative_slope=0.2)
    expected = gpuconv.conv2d(x, w, b, **kw)
    y = gpuconv.conv2d(x, w, b, device="cuda", algorithm=algorithm, **kw)
    assert type(y) is np.ndarray  # device='cuda' with NumPy inputs: NumPy back
    np.testing.assert_allclose(y, expected, rtol=0, atol=64 * np.finfo(dtype).eps * 4**2 * 27)
    launched = {name for name, _, _ in cp.launches}
    fused = getattr(dispatch.get_algorithm(algorithm, "cuda")._impl(), "FUSED_EPILOGUE", False)
    assert ("bias_act_" + ("f32" if dtype == np.float32 else "f64") in launched) == (
        activation is not None and not fused
    )


class OutOfMemoryError(Exception):
    """Stands in for cupy.cuda.memory.OutOfMemoryError (matched by name)."""


def test_gpu_out_of_memory_falls_back_then_says_what_to_do(cp, rng, monkeypatch):
    from gpuconv.cuda import fft, im2col

    spec = gpuconv._spec.ConvSpec(in_shape=(40, 40), kernel_shape=(9, 9), pad_lo=4, pad_hi=4)
    x = random_array(rng, spec.x_shape, np.float64)
    w = random_array(rng, spec.w_shape, np.float64)
    calls = []

    def oom(name):
        def run(*a, **k):
            calls.append(name)
            raise OutOfMemoryError("Out of memory allocating 1,073,741,824 bytes")

        return run

    monkeypatch.setattr(fft, "run", oom("fft"))
    monkeypatch.setattr(im2col, "run", oom("im2col"))
    # 'auto' choosing fft: tried twice (after freeing the caches), then the next by estimate
    monkeypatch.setattr(dispatch, "choose", lambda *a, **k: dispatch.Plan(
        spec, "fft", "test", tuple(dispatch.Candidate(n, s) for n, s in
                                   [("fft", 1e-6), ("im2col", 2e-6), ("direct", 3e-6)])))  # fmt: skip
    y = dispatch.execute(spec, cp.asarray(x), cp.asarray(w), device="cuda")
    assert calls == ["fft", "fft", "im2col"]
    assert_conv_equal(_host(y), dispatch.execute(spec, x, w, "direct"), x, w)
    # a named algorithm has no fallback: a MemoryError that says what to do
    with pytest.raises(MemoryError, match="gpuconv.dask") as e:
        dispatch.execute(spec, cp.asarray(x), cp.asarray(w), "fft", device="cuda")
    assert "fft: OutOfMemoryError" in str(e.value) and "split the batch" in str(e.value)


def test_operands_on_two_gpus_are_refused_and_one_gpu_is_used():
    array = type("ndarray", (), {"__module__": "cupy"})  # what is_cupy_array recognises
    a, b = array(), array()
    a.device, b.device = types.SimpleNamespace(id=1), types.SimpleNamespace(id=0)
    with pytest.raises(ValueError, match=r"different GPUs \[0, 1\]"):
        dispatch._gpu_of(None, a, b, None)
    assert dispatch._gpu_of(None, a, np.zeros(3), None) == 1
    current = types.SimpleNamespace(
        cuda=types.SimpleNamespace(Device=lambda: types.SimpleNamespace(id=3))
    )
    assert dispatch._gpu_of(current, np.zeros(3), None) == 3


@pytest.mark.parametrize("fn", ["convolve", "correlate"])
def test_gpu_only_method_names_reach_the_gpu(fn, monkeypatch, rng):
    # the method check ran before the device was known and knew only the CPU names
    monkeypatch.setitem(sys.modules, "cupy", make_routing_cupy())
    _loader.clear_cache()
    a = random_array(rng, (20, 20), np.float32)
    k = random_array(rng, (3, 3), np.float32)
    got = getattr(gpuconv, fn)(a, k, method="implicit_gemm", device="cuda")
    assert_conv_equal(got, getattr(gpuconv, fn)(a, k), a, k)


def test_a_gpu_only_name_on_the_cpu_says_where_it_runs():
    with pytest.raises(ValueError, match="'implicit_gemm' runs only on the GPU.*on cpu: direct"):
        gpuconv.convolve(np.ones((8, 8)), np.ones((3, 3)), method="implicit_gemm")


def test_broadcast_inputs_on_the_gpu_path(monkeypatch, rng):
    # oaconvolve broadcasts a non-convolved axis with np.broadcast_to: a read-only view reaches
    # the (fake) device; the result must match the CPU
    monkeypatch.setitem(sys.modules, "cupy", make_routing_cupy())
    _loader.clear_cache()
    a = random_array(rng, (2, 11), np.float64)
    k = random_array(rng, (2, 17), np.float64)
    for fn in ("oaconvolve", "fftconvolve"):
        got = getattr(gpuconv, fn)(a, k, axes=[1], device="cuda")
        assert_conv_equal(got, getattr(gpuconv, fn)(a, k, axes=[1]), a, k)


def test_constant_filter_copies_wait_for_the_last_reader_on_any_stream(monkeypatch, rng):
    # one __constant__ filter per module serves every stream: the copy for a launch on stream B
    # must wait for the kernel that last read it on stream A
    fake = make_routing_cupy()
    monkeypatch.setitem(sys.modules, "cupy", fake)
    _loader.clear_cache()
    a, b = fake.cuda.Stream(), fake.cuda.Stream()
    x = random_array(rng, (64, 64), np.float32)
    k1, k2 = (random_array(rng, (3, 3), np.float32) for _ in range(2))
    fake.cuda.stream = a
    y1 = gpuconv.convolve(x, k1, "same", method="direct", device="cuda")
    assert any(name.startswith("direct2d_") for name, _, _ in fake.launches)
    fake.cuda.stream = b
    y2 = gpuconv.convolve(x, k2, "same", method="direct", device="cuda")
    assert b.waited and b.waited[-1].stream is a
    assert_conv_equal(y1, gpuconv.convolve(x, k1, "same"), x, k1)
    assert_conv_equal(y2, gpuconv.convolve(x, k2, "same"), x, k2)
