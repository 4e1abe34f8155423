"""The cache (tuned constants, benchmarked choices), `gpuconv tune`, method='benchmark', `info`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import gpuconv
from gpuconv import _cache, _costs, _grids, _tune, cli, dispatch
from gpuconv._spec import ConvSpec
from tests.conftest import assert_conv_equal, random_array

ROOT = Path(__file__).resolve().parent.parent


def _oracle(a, k, mode):
    import scipy.signal

    return scipy.signal.convolve(a, k, mode=mode, method="direct")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A private, empty cache folder; the dispatcher's state restored afterwards."""
    monkeypatch.setenv("GPUCONV_CACHE_DIR", str(tmp_path))
    dispatch.reset_constants("cpu")
    dispatch._SOURCE.pop("cpu")  # read the (empty) folder again on first use
    dispatch.forget_benchmarks()
    yield tmp_path
    dispatch.reset_constants("cpu")
    dispatch.forget_benchmarks()


# --- the cache files ---------------------------------------------------------------------------


def test_cache_round_trip_is_atomic(cache):
    p = _cache.save("autotune", "cpu", {"entries": {"a": {"algorithm": "fft"}}})
    assert p.parent == cache and p.name.startswith("autotune-cpu-")
    assert _cache.load("autotune", "cpu") == {"entries": {"a": {"algorithm": "fft"}}}
    assert [f.name for f in cache.iterdir()] == [p.name]  # no temporary file left behind
    doc = json.loads(p.read_text())
    assert doc["gpuconv"] == gpuconv.__version__
    assert doc["device"] == _cache.device_id("cpu")


@pytest.mark.parametrize(
    "mangle, why",
    [
        (lambda d: "{not json", "not valid UTF-8 JSON"),
        (lambda d: json.dumps([1, 2]), "not a gpuconv cache file"),
        (lambda d: json.dumps({**d, "format": 99}), "format"),
        (lambda d: json.dumps({**d, "kind": "constants"}), "not a gpuconv autotune file"),
        (lambda d: json.dumps({**d, "gpuconv": "0.0.1"}), "written by gpuconv 0.0.1"),
        (lambda d: json.dumps({**d, "device": "cpu Z80 x1 threads"}), "measured on 'cpu Z80"),
    ],
)
def test_corrupt_or_foreign_files_are_ignored_with_a_warning(cache, mangle, why):
    p = _cache.save("autotune", "cpu", {"entries": {}})
    p.write_text(mangle(json.loads(p.read_text())))
    with pytest.warns(_cache.CacheWarning, match=why):
        assert _cache.load("autotune", "cpu") is None


@pytest.mark.parametrize(
    "raw, why",
    [(b"\xff\xfe{}", "UnicodeDecodeError"), (b"[" * 100_000 + b"]" * 100_000, "RecursionError")],
)
def test_undecodable_files_are_ignored_with_a_warning(cache, raw, why):
    p = _cache.save("constants", "cpu", {"constants": {}})
    p.write_bytes(raw)
    with pytest.warns(_cache.CacheWarning, match=why):
        assert _cache.load("constants", "cpu") is None


def test_cache_files_are_as_readable_as_any_file_the_umask_allows(cache):
    old = os.umask(0o022)
    try:
        p = _cache.save("autotune", "cpu", {"entries": {}})
    finally:
        os.umask(old)
    assert p.stat().st_mode & 0o777 == 0o644  # mkstemp's 0600 would hide it from a shared folder


@pytest.mark.parametrize(
    "entries, why",
    [([1, 2], "holds no table of entries"), ({"a": {"algorithm": "fft"}, "b": 3}, "1 of its 2")],
)
def test_bad_autotune_entries_warn_once_at_the_callers_line(cache, rng, entries, why):
    doc_path = _cache.save("autotune", "cpu", {"entries": entries})
    a, k = random_array(rng, (40, 40), np.float64), random_array(rng, (5, 5), np.float64)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        gpuconv.convolve(a, k, method="benchmark")  # reads the file, then saves the winner
    cache_warnings = [w for w in seen if issubclass(w.category, _cache.CacheWarning)]
    assert len(cache_warnings) == 1 and why in str(cache_warnings[0].message)
    assert cache_warnings[0].filename == __file__  # the user's line, not gpuconv's
    assert len(_cache.load("autotune", "cpu")["entries"]) >= 1  # rewritten with valid entries
    assert doc_path.exists()


def test_remembered_choices_are_bounded_in_memory_too(cache, monkeypatch, rng):
    monkeypatch.setattr(dispatch, "AUTOTUNE_MAX", 3)
    monkeypatch.setattr(dispatch, "measure", _fake_measure("fft", []))
    for n in range(20, 26):
        gpuconv.convolve(np.ones(n), np.ones(5), method="benchmark")
    assert len(dispatch._autotune_table("cpu")) == 3
    assert len(_cache.load("autotune", "cpu")["entries"]) == 3


def test_cache_can_be_switched_off(cache, monkeypatch):
    monkeypatch.setenv("GPUCONV_CACHE", "off")
    assert _cache.save("constants", "cpu", {"constants": {}}) is None
    assert list(cache.iterdir()) == []


# --- tuned constants are read on first use --------------------------------------------------


def _write_constants(values: dict) -> Path:
    return _cache.save("constants", "cpu", {"constants": values, "created": "2026-11-23T00:00"})


def test_tuned_constants_are_in_force_after_loading(cache):
    spec = ConvSpec(in_shape=(512, 512), kernel_shape=(3, 3), pad_lo=1, pad_hi=1)
    assert dispatch.choose(spec).algorithm == "direct"
    dispatch._SOURCE.pop("cpu")
    _write_constants({"scale_direct_2d_f64": 1e3})  # this machine's direct core is ~800x slower
    assert dispatch.constants()["scale_direct_2d_f64"] == 1e3
    assert dispatch.constants_source().startswith("tuned 2026-11-23")
    assert dispatch.choose(spec).algorithm != "direct"


def test_a_new_process_reads_the_tuned_constants(cache):
    _write_constants({"stream_byte": 1.25e-9})
    code = "from gpuconv import dispatch; print(dispatch.constants()['stream_byte'], dispatch.constants_source())"
    env = {**os.environ, "GPUCONV_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    value, source = out.stdout.split(" ", 1)
    assert float(value) == 1.25e-9 and source.startswith("tuned")


@pytest.mark.parametrize(
    "values, why",
    [
        ({"no_such_constant": 1.0}, "unknown constants"),
        ({"stream_byte": -1.0}, "positive"),
        ({"stream_byte": True}, "stream_byte = True is not a positive number"),
        ({"overhead_fft": 1e300}, "overhead_fft = 1e\\+300 is more than 1000x away"),
        ({"scale_fft_2d_f32": 1e-300}, "scale_fft_2d_f32 = 1e-300 is more than 1000x away"),
    ],
)
def test_invalid_tuned_constants_are_ignored_with_a_warning(cache, values, why):
    _write_constants(values)
    with pytest.warns(_cache.CacheWarning, match=why):
        c = dispatch.constants()
    assert c == _costs.CPU_CONSTANTS
    assert dispatch.constants_source() == "built-in table"


def test_set_constants_rejects_bad_values(cache):
    with pytest.raises(ValueError, match="unknown constants"):
        dispatch.set_constants("cpu", {"nope": 1.0})
    with pytest.raises(ValueError, match="positive"):
        dispatch.set_constants("cpu", {"stream_byte": float("nan")})
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        dispatch.constants("tpu")


# --- gpuconv tune ---------------------------------------------------------------------------


def test_rescale_follows_the_measured_rates():
    ref = _costs.CPU_REFERENCE_RATES
    rates = {k: 2 * v for k, v in ref.items()}  # a machine twice as fast at everything
    c = _tune.rescale("cpu", rates)
    for key in _tune.RATE_OF:
        assert c[key] == pytest.approx(_costs.CPU_CONSTANTS[key] / 2)
    for key, (rate, units) in _tune.MEASURED.items():
        assert c[key] == pytest.approx(units / rates[rate])
    assert c["overhead_direct"] == _costs.CPU_CONSTANTS["overhead_direct"]
    assert all(v == 1.0 for k, v in c.items() if k.startswith("scale_"))


def _sample(ndim, seconds, work, dtype=np.float64):
    spec = ConvSpec(in_shape=(16,) * ndim, kernel_shape=(3,) * ndim, dtype=dtype)
    return _tune.Sample(spec, seconds, work, dict(work))


def test_fit_recovers_overhead_and_scales_exactly():
    # times made by a known model: direct = 5 us + 2 * work (2-D f64), 3 * work (2-D f32);
    # fft = 50 us + 0.5 * work (1-D f64)
    rng = np.random.default_rng(0)
    samples = []
    for _ in range(6):
        v = float(rng.uniform(1e-5, 1e-2))
        samples.append(_sample(2, {"direct": 5e-6 + 2 * v}, {"direct": v}))
        samples.append(_sample(2, {"direct": 5e-6 + 3 * v}, {"direct": v}, np.float32))
        samples.append(_sample(1, {"fft": 50e-6 + 0.5 * v}, {"fft": v}))
    c = _tune.fit(samples, "cpu")
    assert c["overhead_direct"] == pytest.approx(5e-6, rel=1e-6)
    assert c["scale_direct_2d_f64"] == pytest.approx(2.0, rel=1e-6)
    assert c["scale_direct_2d_f32"] == pytest.approx(3.0, rel=1e-6)
    assert c["overhead_fft"] == pytest.approx(50e-6, rel=1e-6)
    assert c["scale_fft_1d_f64"] == pytest.approx(0.5, rel=1e-6)
    # groups without samples: the other precision, else the median of the fitted ones, else 1
    assert c["scale_fft_1d_f32"] == pytest.approx(0.5, rel=1e-6)
    assert c["scale_direct_3d_f64"] == pytest.approx(2.5, rel=1e-6)
    assert c["scale_im2col_2d_f32"] == 1.0 and "overhead_im2col" not in c


def test_fit_keeps_overheads_non_negative():
    # a model with no fixed cost at all: the overhead is clamped to a tiny positive number
    samples = [_sample(2, {"direct": 2 * v}, {"direct": v}) for v in (1e-4, 1e-3, 1e-2)]
    c = _tune.fit(samples, "cpu")
    assert 0 < c["overhead_direct"] <= 1e-6
    assert c["scale_direct_2d_f64"] == pytest.approx(2.0, rel=1e-3)


def test_regret_is_picked_time_over_fastest():
    samples = [
        _sample(2, {"direct": 2.0, "fft": 1.0}, {"direct": 1.0, "fft": 1.5}),
        _sample(2, {"direct": 1.0, "fft": 3.0}, {"direct": 1.0, "fft": 1.5}),
    ]
    c = {k: v for k, v in _costs.CPU_CONSTANTS.items()}
    c.update({k: 1.0 for k in c if k.startswith("scale_")})
    assert _tune.regret(samples, c) == [2.0, 1.0]
    c["scale_direct_2d_f64"] = 2.0
    assert _tune.regret(samples, c) == [1.0, 3.0]
    assert _tune.regret(samples, None) == [2.0, 1.0]  # the prior estimates


def test_tune_measures_fits_saves_and_puts_in_force(cache):
    grid = [
        ConvSpec(in_shape=(96, 96), kernel_shape=(3, 3), pad_lo=1, pad_hi=1),
        ConvSpec(in_shape=(64, 64), kernel_shape=(17, 17), dtype=np.float32),
        ConvSpec(in_shape=(5000,), kernel_shape=(40,), dtype=np.float32),
    ]
    seen = []
    result = _tune.tune("cpu", grid=grid, repeat=1, progress=lambda i, n, s: seen.append(i))
    assert seen == [0, 1, 2, 3]
    assert result.rates.copy_bytes_per_s > 1e8 and result.rates.gemm_flops_f32 > 1e8
    assert len(result.samples) == 3 and all(s.seconds for s in result.samples)
    for s in result.samples:  # every timed algorithm applies, and the fastest was timed
        assert set(s.seconds) <= set(dispatch.algorithm_names())
    assert all(s.work[n] > 0 for s in result.samples for n in s.seconds)
    assert result.constants["scale_direct_2d_f64"] > 0 and result.constants["overhead_fft"] > 0
    assert dispatch.constants() == result.constants  # in force in this process
    assert Path(result.path).exists()
    saved = _cache.load("constants", "cpu")
    assert saved["constants"] == result.constants
    assert len(saved["samples"]) == 3
    assert "efficiency scales" in result.summary() and result.path in result.summary()
    assert len(result.regret_after) == 3 and min(result.regret_after) >= 1.0


def test_grids_are_disjoint_and_valid():
    for dev in ("cpu", "cuda"):
        cal, hold = _grids.calibration(dev), _grids.holdout(dev)
        assert len(cal) >= 30 and len(hold) >= 30
        assert not set(cal) & set(hold)
        assert {s.ndim for s in hold} == {1, 2, 3}


# --- method='benchmark' -------------------------------------------------------------------------


def _fake_measure(winner, calls):
    def measure(spec, x, w, names=None, repeat=3, op="forward", device="cpu", skip_factor=None):
        calls.append(tuple(names))
        return {n: (0.001 if n == winner else 0.002) for n in names}

    return measure


def test_benchmark_times_once_remembers_in_memory_and_on_disk(cache, monkeypatch, rng):
    calls = []
    monkeypatch.setattr(dispatch, "measure", _fake_measure("fft", calls))
    a = random_array(rng, (64, 80), np.float64)
    k = random_array(rng, (5, 5), np.float64)
    expected = _oracle(a, k, "full")
    for _ in range(3):
        y = gpuconv.convolve(a, k, method="benchmark")
        assert_conv_equal(y, expected, a, k)
    assert len(calls) == 1 and "fft" in calls[0] and "direct" in calls[0]
    assert gpuconv.plan(a, k).algorithm == "direct"  # 'auto' still follows the cost model
    # a new process (here: memory forgotten) reads the winner from disk and does not time again
    dispatch.forget_benchmarks()
    spec, x, w = _spec_operands(a, k)
    assert dispatch.benchmark(spec, x, w) == "fft"
    assert len(calls) == 1
    entries = _cache.load("autotune", "cpu")["entries"]
    assert [e["algorithm"] for e in entries.values()] == ["fft"]


def _spec_operands(a, k):
    spec = ConvSpec(in_shape=a.shape, kernel_shape=k.shape, pad_lo=(4, 4), pad_hi=(4, 4), flip=True)
    return spec, a[None, None], k[None, None]


def test_benchmark_signature_includes_the_applicable_algorithms(cache, monkeypatch, rng):
    calls = []
    monkeypatch.setattr(dispatch, "measure", _fake_measure("separable", calls))
    a = random_array(rng, (300, 300), np.float64)
    rank1 = np.outer(random_array(rng, 9, np.float64), random_array(rng, 9, np.float64))
    full = random_array(rng, (9, 9), np.float64)
    assert_conv_equal(
        gpuconv.convolve(a, rank1, "same", method="benchmark"),
        _oracle(a, rank1, "same"), a, rank1,
    )  # fmt: skip
    assert_conv_equal(
        gpuconv.convolve(a, full, "same", method="benchmark"),
        _oracle(a, full, "same"), a, full,
    )  # fmt: skip
    assert len(calls) == 2
    assert "separable" in calls[0] and "separable" not in calls[1]


def test_benchmark_really_times_and_picks_the_fastest(cache, rng):
    x = random_array(rng, (2, 8, 24, 24), np.float32)
    w = random_array(rng, (16, 8, 3, 3), np.float32)
    y = gpuconv.conv2d(x, w, padding=1, algorithm="benchmark")
    atol = 8 * 9 * np.finfo(np.float32).eps * np.abs(x).max() * np.abs(w).max()
    np.testing.assert_allclose(y, gpuconv.conv2d(x, w, padding=1), rtol=0, atol=atol)
    (entry,) = dispatch._AUTOTUNED["cpu"].values()
    assert entry["algorithm"] == min(entry["seconds"], key=entry["seconds"].get)
    assert all(t > 0 for t in entry["seconds"].values())
    dx = gpuconv.conv2d_input(x.shape, w, y, padding=1, algorithm="benchmark")
    expected = gpuconv.conv2d_input(x.shape, w, y, padding=1, algorithm="im2col")
    # float32 sums of 16*9 products of magnitudes up to max|y| max|w|: rounding scales with them
    atol = 16 * 9 * np.finfo(np.float32).eps * np.abs(y).max() * np.abs(w).max()
    np.testing.assert_allclose(dx, expected, rtol=0, atol=atol)
    assert len(dispatch._AUTOTUNED["cpu"]) == 2  # forward and backward_data are separate


def test_benchmark_respects_exactness(cache, monkeypatch, rng):
    calls = []
    monkeypatch.setattr(dispatch, "measure", _fake_measure("fft", calls))
    a = np.full((40, 40), 2**50 + 1, dtype=np.int64)  # sums beyond 2**53
    k = np.ones((3, 3), dtype=np.int64)
    y = gpuconv.convolve(a, k, method="benchmark")
    np.testing.assert_array_equal(y, _oracle(a, k, "full"))
    assert all("fft" not in c for c in calls)


def test_unknown_method_names_benchmark_as_allowed():
    with pytest.raises(ValueError, match="benchmark"):
        gpuconv.convolve([1.0, 2.0], [1.0], method="benchmrk")


# --- the command line ------------------------------------------------------------------------


def test_cli_tune_and_info(cache, monkeypatch, capsys):
    tiny = [ConvSpec(in_shape=(64, 64), kernel_shape=(3, 3), pad_lo=1, pad_hi=1)]
    monkeypatch.setattr(_grids, "calibration", lambda device="cpu": tiny)
    assert cli.main(["tune", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "copy bandwidth" in out and "saved to" in out
    fitted = [ln.split() for ln in out.splitlines() if ln.startswith("  scale_")]
    assert fitted and all(len(f) == 2 and float(f[1]) > 0 for f in fitted)  # name, space, value
    assert any(p.name.startswith("constants-cpu-") for p in cache.iterdir())
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert str(cache) in out and "cost constants: tuned" in out
    assert f"gpuconv: {gpuconv.__version__}" in out


def test_cli_tune_cuda_without_gpu_says_what_is_missing(cache, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    assert cli.main(["tune", "--device", "cuda"]) == 2
    assert "CuPy" in capsys.readouterr().err


def test_warnings_do_not_fire_on_a_clean_cache(cache):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dispatch.constants()
        gpuconv.convolve(np.ones(10), np.ones(3), method="benchmark")


# --- malloc thresholds ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "env, expect",
    [
        ({}, "glibc mmap threshold 64 MiB"),
        ({"GPUCONV_MALLOC": "system"}, "left alone (GPUCONV_MALLOC=system)"),
        ({"MALLOC_MMAP_THRESHOLD_": "1000000"}, "left alone (MALLOC_"),
    ],
)
def test_malloc_thresholds_are_raised_once_unless_told_not_to(env, expect):
    import platform

    if platform.libc_ver()[0] != "glibc" and not env:
        pytest.skip("not glibc: nothing to configure")
    code = (
        "import numpy as np, gpuconv; from gpuconv import _memory\n"
        "assert _memory._state is None  # importing gpuconv changes nothing\n"
        "gpuconv.convolve(np.ones(100), np.ones(5))\n"
        "first = _memory._state; assert _memory.configure() == first\n"
        "print(first)"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GPUCONV_MALLOC"))}
    env = {**clean, **env, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(expect)


def test_backward_ops_get_their_own_factor():
    # forward: direct = 5 us + 2 * work; backward_data runs 1.5x slower than that predicts
    fwd = [_sample(2, {"direct": 5e-6 + 2 * v}, {"direct": v}) for v in (1e-4, 1e-3, 1e-2)]
    bwd = []
    for v in (2e-4, 3e-3):
        s = _sample(2, {"direct": 5e-6 + 1.5 * 2 * v}, {"direct": v})
        s.op = "backward_data"
        bwd.append(s)
    c = _tune.fit(fwd + bwd, "cpu")
    assert c["scale_direct_2d_f64"] == pytest.approx(2.0, rel=1e-3)
    assert c["opscale_direct_backward_data"] == pytest.approx(1.5, rel=1e-3)
    assert "opscale_direct_backward_weight" not in c  # never measured: the table's value stays
    full = {**_costs.CPU_CONSTANTS, **c}
    assert _tune.regret(bwd, full) == [1.0, 1.0]
    spec = bwd[0].spec
    est = dispatch.get_algorithm("direct").estimate(spec, "backward_data", full)
    raw = dispatch.get_algorithm("direct").estimate(spec, "forward", full)
    assert est > raw  # the factor is applied to the backward pass only


def test_tune_cuda_runs_on_a_fake_cupy_and_saves_per_device(cache, monkeypatch):
    """The GPU tune path end to end on the NumPy-backed fake CuPy (the kernels compiled for the
    CPU, stand-in CUDA events): every CUDA algorithm timed, constants fitted and saved under the GPU's name.
    The figures mean nothing here; a GPU session runs the real thing (ci/gpu-check)."""

    from gpuconv.cuda import _loader
    from tests.test_bench_report import TINY_GRID, _fake_cupy_with_events

    fake = _fake_cupy_with_events(monkeypatch)
    _loader.clear_cache()
    try:
        result = _tune.tune("cuda", grid=list(TINY_GRID[:3]), repeat=1)
    finally:
        _loader.clear_cache()
        dispatch.reset_constants("cuda")
    assert fake.launches
    timed = {n for s in result.samples for n in s.seconds}
    assert {"direct", "fft", "im2col"} <= timed <= set(dispatch.algorithm_names("cuda"))
    assert Path(result.path).name == "constants-cuda-fake-gpu-sm-90.json"
    assert result.constants["overhead_direct"] > 0


def test_remembered_gpu_choices_are_kept_per_gpu_model(cache, monkeypatch):
    """Two GPU models in one process never share a benchmarked winner (nor a cache file)."""
    current = {"name": "cuda A100 sm_80"}
    monkeypatch.setattr(_cache, "device_id", lambda device: current["name"])
    a = dispatch._autotune_table("cuda")
    a["sig"] = {"algorithm": "fft"}
    current["name"] = "cuda H100 sm_90"
    b = dispatch._autotune_table("cuda")
    assert b is not a and "sig" not in b
    current["name"] = "cuda A100 sm_80"
    assert dispatch._autotune_table("cuda") is a
    dispatch.forget_benchmarks("cuda")
    assert not any(k.startswith("cuda") for k in dispatch._AUTOTUNED)


def test_import_reads_the_cpu_constants_and_warns_at_the_import_line(cache, tmp_path):
    _write_constants({"stream_byte": 1.25e-9})
    env = {**os.environ, "GPUCONV_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    code = (
        "import gpuconv.dispatch as d, sys; "
        "print(d._SOURCE.get('cpu', '-').split(' ')[0], d._CONSTANTS['cpu']['stream_byte'], "
        "'numba' in sys.modules, 'cupy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["tuned", "1.25e-09", "False", "False"], out.stderr
    _write_constants({"stream_byte": True})
    script = tmp_path / "user_script.py"
    script.write_text("import warnings\nwarnings.simplefilter('always')\nimport gpuconv\n")
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True)
    assert out.returncode == 0
    assert f"{script}:3: CacheWarning: gpuconv ignores the tuned constants" in out.stderr


def test_tune_keeps_what_it_saves_loadable(cache, monkeypatch):
    """A fitted value beyond what a file may hold is clamped and reported, so that the next
    process loads the file instead of refusing it as damaged."""
    grid = [ConvSpec(in_shape=(96, 96), kernel_shape=(3, 3), pad_lo=1, pad_hi=1)]
    monkeypatch.setattr(
        _tune, "fit", lambda samples, device: {"opscale_direct_backward_data": 1e-9}
    )
    result = _tune.tune("cpu", grid=grid, repeat=1)
    lo, _hi = dispatch.plausible_range("cpu", "opscale_direct_backward_data")
    assert result.constants["opscale_direct_backward_data"] == lo
    assert result.clamped == {"opscale_direct_backward_data": 1e-9}
    assert "clamped opscale_direct_backward_data: fitted 1e-09" in result.summary()
    dispatch._SOURCE.pop("cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dispatch.constants()["opscale_direct_backward_data"] == lo


def test_remembered_choices_survive_threads_at_the_bound(cache, monkeypatch):
    import threading

    monkeypatch.setattr(dispatch, "AUTOTUNE_MAX", 3)
    monkeypatch.setattr(dispatch, "measure", _fake_measure("fft", []))
    errors = []

    def work(t):
        try:
            for n in range(150):
                spec = ConvSpec(in_shape=(20 + 200 * t + n,), kernel_shape=(5,))
                dispatch.benchmark(spec, np.ones((1, 1, spec.in_shape[0])), np.ones((1, 1, 5)))
        except Exception as e:  # noqa: BLE001 - any exception is the failure
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, inside the table's updates too
    try:
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    finally:
        sys.setswitchinterval(old)
    assert errors == [] and len(dispatch._autotune_table("cpu")) == 3


def test_remembered_choices_keep_their_age_order_on_disk(cache, monkeypatch):
    monkeypatch.setattr(dispatch, "AUTOTUNE_MAX", 2)
    monkeypatch.setattr(dispatch, "measure", _fake_measure("fft", []))
    specs = [ConvSpec(in_shape=(n,), kernel_shape=(5,)) for n in (90, 30, 60)]
    for spec in specs[:2]:
        dispatch.benchmark(spec, np.ones((1, 1, spec.in_shape[0])), np.ones((1, 1, 5)))
    dispatch.forget_benchmarks()  # a new process
    dispatch.benchmark(specs[2], np.ones((1, 1, 60)), np.ones((1, 1, 5)))
    kept = [json.loads(k)[-1]["in_shape"] for k in _cache.load("autotune", "cpu")["entries"]]
    assert kept == [[30], [60]]  # the oldest (90) went, whatever the keys' sort order


def test_execute_keeps_to_the_allowed_algorithms(cache, rng):
    spec = ConvSpec(in_shape=(2000,), kernel_shape=(300,))
    x, w = rng.standard_normal((1, 1, 2000)), rng.standard_normal((1, 1, 300))
    only = ("direct", "im2col")
    _y, name = dispatch.execute(spec, x, w, "benchmark", allowed=only, with_name=True)
    assert name in only
    with pytest.raises(ValueError, match="'fft' is not among the allowed"):
        dispatch.execute(spec, x, w, "fft", allowed=only)


# --- the OpenBLAS kernels note -------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags, cores, coretype, says",
    [
        ({"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"}, ["Haswell"], "Haswell",
         "OPENBLAS_CORETYPE=Haswell is set"),
        ({"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"}, ["Zen"], None,
         "OPENBLAS_CORETYPE=SKYLAKEX before Python starts"),
        ({"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"}, ["SkylakeX"], None, None),
        ({"avx2", "fma"}, ["Haswell"], "Haswell", None),  # AVX2 is all this CPU has
    ],
)  # fmt: skip
def test_openblas_note(monkeypatch, flags, cores, coretype, says):
    from gpuconv import _blas

    monkeypatch.setattr(_blas, "_cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(
        _blas, "loaded_cores", lambda: {f"/lib{i}.so": c for i, c in enumerate(cores)}
    )
    if coretype:
        monkeypatch.setenv("OPENBLAS_CORETYPE", coretype)
    else:
        monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    note = _blas.advice()
    assert (note is None) if says is None else (says in note and "AVX2" in note)


def test_openblas_kernels_are_found_where_numpy_uses_openblas():
    from gpuconv import _blas

    np.ones((8, 8)) @ np.ones((8, 8))
    cores = _blas.loaded_cores()
    config = str(np.show_config(mode="dicts")).lower()
    if "openblas" not in config or not sys.platform.startswith("linux"):
        pytest.skip("numpy is not linked to OpenBLAS on Linux here")
    assert cores and all(c and c != "?" for c in cores.values())
    assert _blas.summary().split(" ")[0] in cores.values()
