"""Benchmark suites: every gpuconv algorithm beside the installed peers, on random inputs.

Each case is timed as the median of ``repeat`` runs after one warm-up run, and every result is
checked against a float64 reference before it is timed (a wrong answer is reported, not timed).
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import dispatch
from . import signal as gsignal

#: (name, image shape, kernel sizes, repeats) of each suite
SUITES: dict[str, tuple[tuple[int, ...], tuple[int, ...], int]] = {
    "quick": ((2048, 2048), (3, 5, 7, 11, 15, 31), 5),
    "signal": ((2048, 2048), (3, 5, 7, 9, 11, 15, 21, 31, 63), 7),
}

#: gpuconv algorithms estimated this many times slower than the best are not run
SKIP_FACTOR = 25.0


@dataclass
class Row:
    problem: str
    method: str
    ms: float | None
    note: str = ""


@dataclass
class Report:
    suite: str
    machine: dict
    rows: list[Row] = field(default_factory=list)

    def table(self) -> str:
        problems = list(dict.fromkeys(r.problem for r in self.rows))
        methods = list(dict.fromkeys(r.method for r in self.rows))
        cell = {(r.problem, r.method): r for r in self.rows}
        head = "| problem | " + " | ".join(methods) + " |"
        lines = [head, "|" + "---|" * (len(methods) + 1)]
        for p in problems:
            vals = []
            for m in methods:
                r = cell.get((p, m))
                if r is None:
                    vals.append("")
                elif r.ms is None:
                    vals.append(f"({r.note})")
                else:
                    vals.append(f"{r.ms:.2f}" + (f" ({r.note})" if r.note else ""))
            lines.append(f"| {p} | " + " | ".join(vals) + " |")
        return "\n".join(lines)

    def ratios(self) -> str:
        """The figures that matter for the CPU: gpuconv beside its peers, per problem."""
        cell = {(r.problem, r.method): r.ms for r in self.rows}
        pairs = [
            ("scipy.convolve / gpuconv.auto", "scipy.convolve", "gpuconv.auto"),
            ("gpuconv.direct / opencv.filter2D", "gpuconv.direct", "opencv.filter2D"),
            ("gpuconv.fft / scipy.fftconvolve", "gpuconv.fft", "scipy.fftconvolve"),
        ]
        lines = ["| problem | " + " | ".join(p[0] for p in pairs) + " |", "|---|---|---|---|"]
        for prob in dict.fromkeys(r.problem for r in self.rows):
            vals = []
            for _, a, b in pairs:
                ta, tb = cell.get((prob, a)), cell.get((prob, b))
                vals.append(f"{ta / tb:.2f}" if ta and tb else "-")
            lines.append(f"| {prob} | " + " | ".join(vals) + " |")
        return "\n".join(lines)


def _peers() -> dict[str, Callable]:
    import scipy.signal as ss

    peers = {
        "scipy.convolve": lambda a, k: ss.convolve(a, k, mode="same"),
        "scipy.fftconvolve": lambda a, k: ss.fftconvolve(a, k, mode="same"),
    }
    try:
        import cv2

        def filter2d(a, k):
            # filter2D correlates and anchors at the kernel centre: flip the kernel, and for even
            # sizes the anchor must be set to match scipy's 'same' window
            kf = np.ascontiguousarray(k[::-1, ::-1])
            anchor = (
                k.shape[1] - 1 - (k.shape[1] - 1) // 2,
                k.shape[0] - 1 - (k.shape[0] - 1) // 2,
            )
            return cv2.filter2D(a, -1, kf, anchor=anchor, borderType=cv2.BORDER_CONSTANT)

        peers["opencv.filter2D"] = filter2d
    except ImportError:
        pass
    return peers


def _time(fn: Callable[[], object], repeat: int) -> float:
    # two warm-ups: compilation and FFT plans, then the allocator's first large mmaps
    fn()
    fn()
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return float(np.median(runs)) * 1e3


def machine_info() -> dict:
    import numba
    import scipy

    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": dispatch._costs.cpu_threads(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "numba": numba.__version__,
    }
    try:
        import cv2

        info["opencv"] = cv2.__version__
    except ImportError:
        pass
    return info


def run_suite(
    suite: str = "quick",
    progress: Callable[[str], None] | None = None,
    sizes: tuple[int, ...] | None = None,
) -> Report:
    """Run a CPU suite and return its report (``gpuconv bench`` prints and saves it)."""
    shape, ks, repeat = SUITES[suite]
    ks = sizes or ks
    rng = np.random.default_rng(0)
    img = rng.standard_normal(shape).astype(np.float32)
    report = Report(suite, machine_info())
    peers = _peers()
    for k in ks:
        ker = rng.standard_normal((k, k)).astype(np.float32)
        problem = f"{shape[0]}x{shape[1]} f32 same k={k}"
        if progress:
            progress(problem)
        ref = gsignal.fftconvolve(img.astype(np.float64), ker.astype(np.float64), mode="same")
        tol = 1e-4 * float(np.abs(img).max() * np.abs(ker).sum())
        p = gsignal.plan(img, ker, "same")
        best = min(p.estimates.values())
        methods: dict[str, Callable] = {"gpuconv.auto": lambda: gsignal.convolve(img, ker, "same")}
        for c in p.candidates:
            if c.seconds is None:
                continue
            if c.seconds > SKIP_FACTOR * best:
                report.rows.append(
                    Row(problem, f"gpuconv.{c.name}", None, f"est. {c.seconds / best:.0f}x")
                )
                continue
            methods[f"gpuconv.{c.name}"] = lambda name=c.name: gsignal.convolve(
                img, ker, "same", method=name
            )
        for name, fn in peers.items():
            methods[name] = lambda fn=fn: fn(img, ker)
        for name, fn in methods.items():
            out = np.asarray(fn())
            err = float(np.abs(out.astype(np.float64) - ref).max())
            if out.shape != ref.shape or not err <= tol:
                report.rows.append(Row(problem, name, None, f"WRONG (err {err:.2g})"))
                continue
            note = p.algorithm if name == "gpuconv.auto" else ""
            report.rows.append(Row(problem, name, _time(fn, repeat), note))
    return report


def save(report: Report, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(
        f"# gpuconv bench: {report.suite}\n\nTimes in ms, median of repeats after a warm-up.\n\n"
        + report.table()
        + "\n\nRatios (time over time):\n\n"
        + report.ratios()
        + "\n"
    )
    (out / "results.json").write_text(
        json.dumps(
            {
                "suite": report.suite,
                "machine": report.machine,
                "rows": [asdict(r) for r in report.rows],
            },
            indent=2,
        )
    )
