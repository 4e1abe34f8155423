"""``gpuconv bench``: the report's numbers and files, on tiny problems (performance is never
asserted).  The GPU path runs on the fake CuPy of tests/fake_cupy.py (the kernel sources compiled
for the CPU, host timers standing in for CUDA events): that checks its structure, not the GPU."""

from __future__ import annotations

import io
import json
import sys
import time
import types

import numpy as np
import pytest
import scipy.ndimage
import scipy.signal

import gpuconv
from gpuconv import _arrays, _bench, _grids, _rates, _timing, cli, dispatch
from gpuconv._bench import Config, Layer, Row
from gpuconv._spec import ConvSpec

F32, F64, C64 = np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.complex64)
RATES = _rates.Rates("cpu", 20e9, 50e9, 25e9, 5e9, 3e9)

TINY_GRID = (
    _grids._same((40, 52), 5, F64),
    _grids._same((36, 36), 4, C64),
    _grids._full1(3000, 40, F32),
    _grids._same((12, 12, 12), 3, F32),
    _grids._layer(2, 8, 12, 10, 3, stride=2),
    _grids._layer(2, 6, 6, 9, 3, groups=6),
)
TINY_LAYERS = (Layer("tiny", 4, 6, 12, 3, stride=2), Layer("dw", 4, 4, 10, 3, groups=4))
TINY = dict(
    image=(40, 44),
    kernels=(3, 4, 9),
    signal=3000,
    taps=(8, 33),
    layers=TINY_LAYERS,
    batch=2,
    grid=TINY_GRID,
    repeat=1,
)


@pytest.fixture
def fixed_rates(monkeypatch):
    """Ceilings without measuring them (a second each), so that the floors are known."""
    monkeypatch.setattr(_rates, "measure", lambda device="cpu", repeat=5: RATES)


@pytest.fixture(scope="module")
def full_report():
    mp = pytest.MonkeyPatch()
    mp.setattr(_rates, "measure", lambda device="cpu", repeat=5: RATES)
    try:
        yield _bench.run_suite("full", "cpu", **TINY)
    finally:
        mp.undo()


# ---- pure functions ----------------------------------------------------------------------------


def _row(problem, method, ms, kind="gpuconv", choice=None, status="ok"):
    return Row("cpu", "s", problem, method, kind, ms, status=status, choice=choice)


def test_regret_summary_median_worst_and_undefined():
    rows = [
        # auto chose direct (2 ms), fft is fastest (1 ms): regret 2
        _row("A", "gpuconv.auto", 2.1, "auto", "direct"),
        _row("A", "gpuconv.direct", 2.0),
        _row("A", "gpuconv.fft", 1.0),
        _row("A", "scipy.convolve", 0.1, "peer"),  # peers never count
        # auto chose the fastest: 1
        _row("B", "gpuconv.auto", 1.3, "auto", "fft"),
        _row("B", "gpuconv.direct", 3.0),
        _row("B", "gpuconv.fft", 1.2),
        # the chosen algorithm's own row is used, not the auto row's second timing: 1.5
        _row("C", "gpuconv.auto", 0.9, "auto", "im2col"),
        _row("C", "gpuconv.im2col", 3.0),
        _row("C", "gpuconv.direct", 2.0),
        # auto's choice gave a wrong result: no regret, listed
        _row("D", "gpuconv.auto", None, "auto", "fft", status="WRONG"),
        _row("D", "gpuconv.fft", None, status="WRONG"),
        _row("D", "gpuconv.direct", 1.0),
        # nothing timed: left out
        _row("E", "gpuconv.auto", None, "auto", "direct", status="error"),
    ]
    s = _bench.regret_summary(rows)
    assert s["n"] == 3
    assert s["median"] == pytest.approx(1.5)
    assert s["worst"] == pytest.approx(2.0)
    assert s["worst_problem"] == "A"
    by = {p["problem"]: p for p in s["problems"]}
    assert by["A"]["fastest"] == "fft" and by["A"]["choice"] == "direct"
    assert by["B"]["regret"] == pytest.approx(1.0)
    assert by["C"]["regret"] == pytest.approx(1.5)
    assert [u["problem"] for u in s["undefined"]] == ["D"]


def test_regret_summary_empty():
    s = _bench.regret_summary([])
    assert s["n"] == 0 and s["median"] is None and s["worst"] is None


def test_crossovers():
    times = {
        3: {"direct": 1.0, "fft": 9.0, "im2col": None},
        7: {"direct": 2.0, "fft": 5.0},
        5: {"direct": 1.5, "fft": 8.0},
        11: {"direct": None, "fft": None},  # nothing timed: skipped over
        15: {"direct": 6.0, "fft": 4.0, "overlap_add": 3.0},
        31: {"direct": 30.0, "fft": 4.5, "overlap_add": 5.0},
    }
    assert _bench.crossovers(times) == [
        (7, 15, "direct", "overlap_add"),
        (15, 31, "overlap_add", "fft"),
    ]
    assert _bench.crossovers({}) == []
    assert _bench.crossovers({3: {"a": 1.0}}) == []


def test_progress_bar_lines_when_not_a_terminal():
    out = io.StringIO()
    bar = _bench.ProgressBar(out)
    bar(0, 2, "first")
    bar(0, 2, "first | gpuconv.fft", minor=True)  # per-method updates only on a terminal
    bar(1, 2, "second")
    bar(2, 2, "done")
    assert out.getvalue().splitlines() == ["[0/2] first", "[1/2] second", "[2/2] done"]


def test_progress_bar_redraws_one_line_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    bar = _bench.ProgressBar(out, width=10)
    bar(0, 4, "a")
    bar(1, 4, "b", minor=True)
    bar(4, 4, "done")
    text = out.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    assert "\r[..........] 0/4 a" in text and "\r[##........] 1/4 b" in text
    assert "\r[##########] 4/4 done" in text


# ---- the reference and the peers' alignment ----------------------------------------------------


@pytest.mark.parametrize("k", [3, 4])
def test_reference_is_scipy_same(rng, k):
    x = rng.standard_normal((17, 20))
    w = rng.standard_normal((k, k))
    spec = _bench._same_spec(x.shape, k)
    got = _bench.reference(spec, x.reshape(spec.x_shape), w.reshape(spec.w_shape))
    np.testing.assert_allclose(got[0, 0], scipy.signal.convolve(x, w, "same"), atol=1e-12)


@pytest.mark.parametrize(
    "spec",
    [
        ConvSpec(in_shape=(11, 13), kernel_shape=(3, 2), batch=2, c_in=4, c_out=6, groups=2,
                 stride=(2, 1), dilation=(1, 2), pad_lo=(1, 2), pad_hi=(0, 1)),
        ConvSpec(in_shape=(30,), kernel_shape=(5,), c_in=3, c_out=2, pad_lo=4, pad_hi=4, flip=True),
        ConvSpec(in_shape=(7, 6, 5), kernel_shape=(3, 3, 2), batch=2, dtype=np.complex128),
    ],
)  # fmt: skip
def test_reference_matches_the_direct_algorithm(rng, spec):
    x = _grids.random_operand(rng, spec.x_shape, spec.dtype)
    w = _grids.random_operand(rng, spec.w_shape, spec.dtype)
    ref = _bench.reference(spec, x, w)
    np.testing.assert_allclose(ref, dispatch.execute(spec, x, w, "direct"), atol=1e-10)
    assert _bench.tolerance(spec, x, w) > 0


@pytest.mark.parametrize("k", [3, 4, 5, 6])
def test_cupyx_peers_align_with_scipy_same(rng, k):
    # cupyx.scipy mirrors scipy: its peers' arguments are checked here with scipy's modules
    x = rng.standard_normal((19, 23))
    w = rng.standard_normal((k, k))
    want = scipy.signal.convolve(x, w, "same")
    for name, fn in _bench.cupyx_image_peers(scipy.signal, scipy.ndimage).items():
        np.testing.assert_allclose(fn(x, w), want, atol=1e-12, err_msg=name)
    s, h = rng.standard_normal(200), rng.standard_normal(k)
    for name, fn in _bench.signal_peers(scipy.signal, "cupyx").items():
        np.testing.assert_allclose(fn(s, h), np.convolve(s, h, "same"), atol=1e-12, err_msg=name)


# ---- a whole (tiny) run ------------------------------------------------------------------------


def test_full_suite_rows(full_report):
    r = full_report
    assert [(s.device, s.name) for s in r.sweeps] == [
        ("cpu", "image"), ("cpu", "signal"), ("cpu", "cnn"), ("cpu", "holdout"),
    ]  # fmt: skip
    bad = [(x.problem, x.method, x.note) for x in r.rows if x.status in ("WRONG", "error")]
    assert not bad
    for sw in r.sweeps:
        rows = r.sweep_rows(sw)
        problems = set(x.problem for x in rows)
        autos = [x for x in rows if x.kind == "auto"]
        assert len(autos) == len(problems)
        assert all(a.ms and a.choice in dispatch.algorithm_names() for a in autos)
        timed = [x for x in rows if x.kind == "gpuconv" and x.ms is not None]
        assert timed and all(x.est_s > 0 for x in timed)
        assert all(x.floor_s == max(x.mem_floor_s, x.arith_floor_s) for x in rows)
        assert all(x.fraction == pytest.approx(x.floor_s / (x.ms * 1e-3)) for x in timed)
    # the peers of each sweep are there, timed or saying why not
    methods = {(x.sweep, x.method): x for x in r.rows}
    assert methods[("image", "scipy.fftconvolve")].ms is not None
    assert ("image", "opencv.filter2D") in methods
    assert methods[("signal", "scipy.oaconvolve")].ms is not None
    torch_row = methods[("cnn", "torch.conv2d")]
    assert torch_row.ms is not None or torch_row.status == "not installed"
    # the held-out grid's auto row is the chosen algorithm's own row
    rows = {(x.problem, x.method): x for x in r.sweep_rows(r.sweeps[3])}
    for (problem, _), x in rows.items():
        if x.kind == "auto":
            assert x.ms == rows[(problem, f"gpuconv.{x.choice}")].ms


def test_full_suite_files(full_report, tmp_path, monkeypatch):
    from gpuconv import _plots

    monkeypatch.setattr(_plots, "missing", lambda: "skipped: matplotlib is not installed (test)")
    files = _bench.save(full_report, tmp_path)
    assert sorted(p.name for p in files) == ["report.md", "results.json"]
    md = (tmp_path / "report.md").read_text()
    for text in (
        "## Dispatcher regret", "cpu: median", "worst", "2-D image filtering", "1-D signal",
        "CNN layers", "Held-out problems", "memory floor ms", "GFLOP/s", "Ratios",
        "scipy.convolve / gpuconv.auto", "measured ceilings (cpu)", "numpy:", "scipy:",
        "Plots: skipped: matplotlib is not installed",
    ):  # fmt: skip
        assert text in md, text
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["suite"] == "full" and data["date"]
    assert data["machine"]["numpy"] == np.__version__
    assert data["machine"]["gpuconv"] == gpuconv.__version__
    assert data["rates"]["cpu"]["copy_bytes_per_s"] == RATES.copy_bytes_per_s
    reg = data["regret"]["cpu"]
    assert reg["n"] > 0 and reg["median"] >= 1.0 and reg["worst"] >= reg["median"]
    assert reg["worst_problem"] in {x["problem"] for x in data["rows"]}
    row = next(x for x in data["rows"] if x["method"] == "gpuconv.fft" and x["ms"])
    for key in ("problem", "k", "ms", "note", "est_s", "floor_s", "fraction", "gflops"):
        assert key in row
    assert all(x["ms"] is None or x["ms"] > 0 for x in data["rows"])
    assert any(x["ms"] is None and x["note"] for x in data["rows"])  # n/a rows say why


def test_plots_written(full_report, tmp_path):
    pytest.importorskip("matplotlib")
    files = _bench.save(full_report, tmp_path)
    pngs = sorted(p.name for p in files if p.suffix == ".png")
    assert pngs == [
        "floor-cpu-image.png", "floor-cpu-signal.png", "time-cpu-image.png", "time-cpu-signal.png",
    ]  # fmt: skip
    for name in pngs:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({name})" in (tmp_path / "report.md").read_text()
    assert json.loads((tmp_path / "results.json").read_text())["plots"] == pngs


def test_wrong_result_is_reported_not_timed(monkeypatch, fixed_rates):
    import gpuconv.cpu.fft as fft_mod

    calls = []

    def garbage(spec, x, w):
        calls.append(1)
        return np.ones(spec.y_shape, spec.dtype)

    monkeypatch.setattr(fft_mod, "run", garbage)
    r = _bench.run_suite("quick", "cpu", image=(32, 32), kernels=(5,), repeat=3)
    row = next(x for x in r.rows if x.method == "gpuconv.fft")
    assert row.status == "WRONG" and row.ms is None and "max error" in row.note
    assert len(calls) == 1  # checked once, never timed
    assert "gpuconv.fft, WRONG" in _bench.markdown(r)
    assert all(x.status != "WRONG" for x in r.rows if x.method != "gpuconv.fft")


def test_failing_method_is_reported(monkeypatch, fixed_rates):
    def boom(*a, **k):
        raise MemoryError("out of memory (test)")

    monkeypatch.setattr(_bench, "_image_peers", lambda device, a, k: {"peer.boom": boom})
    r = _bench.run_suite("quick", "cpu", image=(24, 24), kernels=(3,), repeat=1)
    row = next(x for x in r.rows if x.method == "peer.boom")
    assert row.status == "error" and "MemoryError" in row.note


def test_problem_that_cannot_be_set_up_is_reported(monkeypatch, fixed_rates):
    def no_memory(*a, **k):
        raise MemoryError("inputs do not fit (test)")

    monkeypatch.setattr(_bench, "_filter_case", no_memory)
    r = _bench.run_suite("quick", "cpu", image=(24, 24), kernels=(3, 5), repeat=1)
    assert [(x.problem, x.status) for x in r.rows] == [
        ("24x24 f32 same k=3", "error"),
        ("24x24 f32 same k=5", "error"),
    ]
    assert "MemoryError" in r.rows[0].note and r.regret()["cpu"]["n"] == 0
    assert "no problem had both" in _bench.markdown(r)


# ---- devices and the command -------------------------------------------------------------------


@pytest.fixture
def no_cupy(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # None in sys.modules blocks the import


def test_device_cuda_without_cupy_exits_2(no_cupy, capsys):
    assert cli.main(["bench", "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "CuPy" in err and _arrays.INSTALL_HINT in err
    with pytest.raises(_arrays.CupyUnavailableError):
        _bench.run_suite("quick", "cuda")


def test_device_all_without_cupy_runs_the_cpu_part(no_cupy, fixed_rates):
    r = _bench.run_suite("quick", "all", image=(24, 24), kernels=(3,), repeat=1)
    assert {x.device for x in r.rows} == {"cpu"}
    assert r.skipped and r.skipped[0].startswith("GPU part skipped: ") and "CuPy" in r.skipped[0]
    assert r.skipped[0] in _bench.markdown(r)


def test_cli_bench_tiny(monkeypatch, tmp_path, capsys, fixed_rates):
    monkeypatch.setattr(
        _bench, "config", lambda suite, device: Config(image=(32, 32), kernels=(3, 9, 11), repeat=1)
    )
    out = tmp_path / "out"
    assert cli.main(["bench", "--suite", "quick", "--out", str(out), "-k", "3", "5"]) == 0
    cap = capsys.readouterr()
    assert "| 32x32 f32 same k=3 |" in cap.out and "k=5" in cap.out and "k=9" not in cap.out
    assert "median" in cap.out and "worst" in cap.out
    assert "[0/2] 32x32 f32 same k=3" in cap.err and "[2/2] done" in cap.err
    assert (out / "report.md").exists() and (out / "results.json").exists()


def test_k_sets_both_kernel_size_sweeps(monkeypatch, fixed_rates):
    small = Config(image=(24, 24), kernels=(3, 9), signal=300, taps=(8, 16), repeat=1)
    monkeypatch.setattr(_bench, "config", lambda suite, device: small)
    r = _bench.run_suite("signal", "cpu", sizes=(5,))
    assert sorted({x.problem for x in r.rows}) == ["24x24 f32 same k=5", "300 f32 same taps=5"]


@pytest.mark.parametrize("suite", ["cnn", "regret"])
def test_k_is_refused_by_suites_without_a_kernel_size_sweep(suite, monkeypatch, capsys):
    monkeypatch.setattr(_bench, "run_suite", lambda *a, **k: pytest.fail("measured"))
    assert cli.main(["bench", "--suite", suite, "-k", "3"]) == 2
    err = capsys.readouterr().err
    assert "-k" in err and f"the {suite} suite has none" in err


@pytest.mark.parametrize(
    "argv, says",
    [
        (["bench", "-k", "0"], "0 is not a positive integer"),
        (["bench", "-k", "3", "-2"], "-2 is not a positive integer"),
        (["tune", "--repeat", "0"], "0 is not a positive integer"),
        (["tune", "--repeat", "x"], "'x' is not an integer"),
    ],
)
def test_cli_rejects_bad_numbers(argv, says, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2 and says in capsys.readouterr().err


def test_cli_checks_the_folders_before_measuring(monkeypatch, tmp_path, capsys):
    def measure(*args, **kwargs):
        raise AssertionError("measured before the folder was checked")

    monkeypatch.setattr(_bench, "run_suite", measure)
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    assert cli.main(["bench", "--out", str(a_file)]) == 2
    assert f"--out {a_file} is not a writable folder" in capsys.readouterr().err
    assert cli.main(["bench", "--out", str(a_file / "below")]) == 2
    from gpuconv import _tune

    monkeypatch.setattr(_tune, "tune", measure)
    monkeypatch.setenv("GPUCONV_CACHE_DIR", str(a_file / "cache"))
    monkeypatch.delenv("GPUCONV_CACHE", raising=False)
    assert cli.main(["tune"]) == 2
    err = capsys.readouterr().err
    assert "cache folder" in err and "GPUCONV_CACHE_DIR" in err and "--no-save" in err


def test_python_dash_m_gpuconv_runs_the_command():
    import subprocess

    r = subprocess.run([sys.executable, "-m", "gpuconv", "bench", "-k", "0"], capture_output=True,
                       text=True)  # fmt: skip
    assert r.returncode == 2 and "positive integer" in r.stderr


# ---- the GPU path on a fake CuPy ---------------------------------------------------------------


def _fake_cupy_with_events(monkeypatch):
    from tests.fake_cupy import make_routing_cupy

    fake = make_routing_cupy()

    class Event:
        def __init__(self, *args, **kwargs):
            pass

        def record(self, stream=None):
            self.t = time.perf_counter()

        def synchronize(self):
            pass

    stream = types.SimpleNamespace(synchronize=lambda: None, wait_event=lambda event: None)
    fake.cuda.Event = Event
    fake.cuda.get_current_stream = lambda: stream
    fake.cuda.get_elapsed_time = lambda a, b: (b.t - a.t) * 1e3
    fake.cuda.runtime.getDeviceProperties = lambda i: {"name": b"Fake GPU", "major": 9}
    fake.cuda.runtime.runtimeGetVersion = lambda: 13000
    fake.cuda.runtime.driverGetVersion = lambda: 13000
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setitem(sys.modules, "cupyx", None)
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setattr(_rates, "measure", lambda device="cpu", repeat=5: RATES)
    return fake


def test_cuda_path_structure_on_a_fake_cupy(monkeypatch):
    from gpuconv.cuda import _loader

    fake = _fake_cupy_with_events(monkeypatch)
    _loader.clear_cache()
    try:
        r = _bench.run_suite(
            "full",
            "cuda",
            image=(24, 26),
            kernels=(3, 4),
            signal=300,
            taps=(8,),
            layers=TINY_LAYERS[:1],
            grid=TINY_GRID[:1],
            repeat=1,
        )
    finally:
        _loader.clear_cache()
    assert fake.launches, "nothing ran on the (fake) GPU"
    assert {x.device for x in r.rows} == {"cuda"}
    assert r.machine["gpu"]["name"] == "Fake GPU"
    bad = [(x.problem, x.method, x.note) for x in r.rows if x.status in ("WRONG", "error")]
    assert not bad
    names = {x.method for x in r.rows}
    assert {f"gpuconv.{n}" for n in dispatch.algorithm_names("cuda")} <= names
    for peer in ("cupyx.convolve2d", "cupyx.ndimage.convolve", "cupyx.oaconvolve", "torch.conv2d"):
        row = next(x for x in r.rows if x.method == peer)
        assert row.status == "not installed" and row.ms is None
    assert all(x.choice in dispatch.algorithm_names("cuda") for x in r.rows if x.kind == "auto")
    assert r.regret()["cuda"]["n"] == len({(x.sweep, x.problem) for x in r.rows})


# ---- auto's choice against the fastest, timed in turns -----------------------------------------


def test_time_interleaved_takes_turns():
    calls = []
    fns = [lambda: calls.append("a"), lambda: calls.append("b"), lambda: calls.append("c")]
    times = _timing.time_interleaved("cpu", fns, repeat=4, rounds=3)
    assert len(times) == 3 and all(t >= 0 for t in times)
    # turns of blocks: one untimed warm-up run (WARMUP_S is 0 here), then 2, 1 and 1 timed runs
    turns = [[f] * (1 + n) for n in (2, 1, 1) for f in "abc"]
    assert calls == [c for block in turns for c in block]
    with pytest.raises(ValueError, match="'gpu'"):
        _timing.time_interleaved("gpu", fns)


def _confirm_case(chosen_ms, fastest_ms):
    """A case where auto chose direct (timed ``chosen_ms`` alone) and fft timed fastest."""
    spec = _grids._same((8, 8), 3, F64)
    methods = {
        "gpuconv.direct": _bench.Method("gpuconv", fn=lambda: "direct"),
        "gpuconv.fft": _bench.Method("gpuconv", fn=lambda: "fft"),
        "gpuconv.im2col": _bench.Method("gpuconv", fn=lambda: "im2col"),
        "gpuconv.auto": _bench.Method("auto", choice="direct", alias="gpuconv.direct"),
    }
    case = _bench.Case("P", 3, spec, np.zeros(1), np.zeros(1), methods)
    rows = {
        "gpuconv.direct": _row("P", "gpuconv.direct", chosen_ms),
        "gpuconv.fft": _row("P", "gpuconv.fft", fastest_ms),
        "gpuconv.im2col": _row("P", "gpuconv.im2col", 9.0),
        "gpuconv.auto": _row("P", "gpuconv.auto", chosen_ms, "auto", "direct"),
    }
    return case, rows


def test_confirm_choice_retimes_the_choice_and_the_fastest_in_turns(monkeypatch):
    seen = []

    def in_turns(device, fns, repeat, rounds):
        seen.append(([f() for f in fns], repeat, rounds))
        return [1.1e-3, 1.2e-3, 1.15e-3][: len(fns)]  # in turns, the choice is the fastest

    monkeypatch.setattr(_timing, "time_interleaved", in_turns)
    case, rows = _confirm_case(2.0, 1.0)
    _bench._confirm_choice(rows, case, repeat=5)
    assert seen == [(["direct", "fft"], 5 * _bench.CONFIRM_REPEAT, _bench.CONFIRM_TURNS)]
    assert rows["gpuconv.direct"].ms == pytest.approx(1.1)
    assert rows["gpuconv.fft"].ms == pytest.approx(1.2)
    assert rows["gpuconv.auto"].ms == pytest.approx(1.1)  # the auto row is the choice's row
    assert rows["gpuconv.im2col"].ms == 9.0
    assert "re-timed in turns with fft (2.00 ms timed alone)" in rows["gpuconv.direct"].note
    assert "re-timed in turns with direct (1.00 ms timed alone)" in rows["gpuconv.fft"].note
    s = _bench.regret_summary(rows.values())
    assert s["worst"] == pytest.approx(1.0)


def test_confirm_choice_retimes_every_algorithm_that_timed_faster(monkeypatch):
    seen = []

    def in_turns(device, fns, repeat, rounds):
        seen.append([f() for f in fns])
        return [2.0e-3, 1.9e-3, 1.5e-3]

    monkeypatch.setattr(_timing, "time_interleaved", in_turns)
    case, rows = _confirm_case(2.0, 1.0)
    rows["gpuconv.im2col"].ms = 1.2  # also faster than the choice alone
    _bench._confirm_choice(rows, case, repeat=5)
    assert seen == [["direct", "fft", "im2col"]]  # the choice, then the faster ones, fastest first
    s = _bench.regret_summary(rows.values())
    assert s["worst"] == pytest.approx(2.0 / 1.5) and s["problems"][0]["fastest"] == "im2col"


def test_confirm_choice_keeps_a_real_loss_and_leaves_a_win_alone(monkeypatch):
    monkeypatch.setattr(_timing, "time_interleaved", lambda d, fns, r, rounds: [3.0e-3, 1.0e-3])
    case, rows = _confirm_case(2.0, 1.0)
    _bench._confirm_choice(rows, case, repeat=5)
    assert _bench.regret_summary(rows.values())["worst"] == pytest.approx(3.0)

    def never(*a):
        raise AssertionError("auto's choice timed fastest: nothing to re-time")

    monkeypatch.setattr(_timing, "time_interleaved", never)
    case, rows = _confirm_case(1.0, 2.0)
    _bench._confirm_choice(rows, case, repeat=5)
    assert rows["gpuconv.direct"].ms == 1.0 and rows["gpuconv.direct"].note == ""
