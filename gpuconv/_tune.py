"""``gpuconv tune``: measure this machine and fit the dispatcher's cost constants to it.

Two steps.  First the machine's ceilings (:mod:`gpuconv._rates`: copy bandwidth, GEMM rate, FFT
rate) set the rate constants they measure directly (seconds per byte streamed, per GEMM
multiply-add, per FFT ``n log2 n``) and rescale the others by the ratio of this machine's figure to
the reference machine's.  Then every algorithm is timed on the calibration grid
(:func:`gpuconv._grids.calibration`) and, per algorithm, its fixed overhead and its efficiency per
number of spatial axes and precision (``scale_<algorithm>_<n>d_<f32|f64>``) are fitted together
by non-negative least squares on relative error: ``time ~ overhead + scale * work``, where
``work`` is the model's estimate less its overhead.  The result is saved per device and gpuconv
version in the cache (:mod:`gpuconv._cache`) and read by the next process that dispatches on that
device.
"""

from __future__ import annotations

import datetime
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import _cache, _costs, _grids, _rates, dispatch
from ._spec import ConvSpec

#: constants a ceiling measures directly: constant -> (rate, units of work per rate unit)
MEASURED: dict[str, tuple[str, float]] = {
    "stream_byte": ("copy_bytes_per_s", 1.0),
    "gemm_mac_f32": ("gemm_flops_f32", 2.0),
    "gemm_mac_f64": ("gemm_flops_f64", 2.0),
    "fft_nlogn_f32": ("fft_nlogn_per_s_f32", 1.0),
    "fft_nlogn_f64": ("fft_nlogn_per_s_f64", 1.0),
}

#: rate-like constants no ceiling measures -> the measured rate they scale inversely with
RATE_OF: dict[str, str] = {
    "im2col_byte": "copy_bytes_per_s",
    "spectral_cmac": "copy_bytes_per_s",
    "direct_mac_f32": "gemm_flops_f32",
    "direct_mac_c64": "gemm_flops_f32",
    "direct_mac_f64": "gemm_flops_f64",
    "direct_mac_c128": "gemm_flops_f64",
    "direct_mac_i64": "gemm_flops_f64",
    "gemm_mac_i64": "gemm_flops_f64",
}

#: algorithms estimated this many times slower than the best are not timed (they cannot win)
SKIP_FACTOR = 30.0


#: a ceiling that moves more than this between the start and the end of a run means a busy machine
BUSY_DRIFT = 0.35

#: the constants ``gpuconv tune`` fits (the others it measures or rescales), printed by it
_FITTED = ("overhead_", "scale_", "opscale_")


def _best(a: _rates.Rates, b: _rates.Rates) -> _rates.Rates:
    da, db = a.as_dict(), b.as_dict()
    return _rates.Rates(**{k: v if k == "device" else max(v, db[k]) for k, v in da.items()})


def _drift(a: _rates.Rates, b: _rates.Rates) -> float:
    da, db = a.as_dict(), b.as_dict()
    return max(abs(da[k] - db[k]) / max(da[k], db[k]) for k in da if k != "device")


def reference_rates(device: str) -> dict[str, float]:
    return _costs.CPU_REFERENCE_RATES if device == "cpu" else dispatch.CUDA_REFERENCE_RATES


def rescale(device: str, rates: dict[str, float]) -> dict[str, float]:
    """The built-in constants of ``device`` with every rate-like one set from (or rescaled to)
    ``rates`` and every efficiency scale reset to 1.

    >>> ref = _costs.CPU_REFERENCE_RATES
    >>> c = rescale("cpu", {**ref, "copy_bytes_per_s": 2e10})
    >>> c["stream_byte"], c["im2col_byte"] == _costs.CPU_CONSTANTS["im2col_byte"] * ref["copy_bytes_per_s"] / 2e10
    (5e-11, True)
    """
    ref = reference_rates(device)
    out = dict(dispatch._BUILTIN[device])
    for key, (rate, units) in MEASURED.items():
        if key in out:
            out[key] = units / rates[rate]
    for key, rate in RATE_OF.items():
        if key in out:
            out[key] *= ref[rate] / rates[rate]
    for key in out:
        if key.startswith("scale_"):
            out[key] = 1.0
    return out


@dataclass
class Sample:
    """One calibration problem, per timed algorithm: measured seconds, the model's work part of
    the estimate (seconds, overhead excluded, efficiency 1) and the estimate of the constants in
    force before tuning."""

    spec: ConvSpec
    seconds: dict[str, float]
    work: dict[str, float]
    prior: dict[str, float] = field(default_factory=dict)
    op: str = "forward"

    @property
    def label(self) -> str:
        return _grids.label(self.spec) + ("" if self.op == "forward" else f" {self.op}")

    @property
    def group(self) -> tuple[int, str]:
        return self.spec.ndim, _costs._real_sfx(self.spec)


def fit(samples: list[Sample], device: str) -> dict[str, float]:
    """Per algorithm: ``overhead_<name>`` and ``scale_<name>_<n>d_<p>`` minimising the squared
    relative error of ``overhead + scale * work`` over the samples (non-negative least squares).
    A group (spatial axes, precision) without samples takes the other precision's scale, else the
    median of the algorithm's fitted scales, else 1."""
    from scipy.optimize import nnls

    out: dict[str, float] = {}
    forward = [s for s in samples if s.op == "forward"]
    for name in dispatch.algorithm_names(device):
        rows = [s for s in forward if name in s.seconds]
        groups = sorted({s.group for s in rows})
        fitted: dict[tuple[int, str], float] = {}
        if rows:
            a = np.zeros((len(rows), 1 + len(groups)))
            for i, s in enumerate(rows):
                t = s.seconds[name]
                a[i, 0] = 1.0 / t
                a[i, 1 + groups.index(s.group)] = s.work[name] / t
            x, _ = nnls(a, np.ones(len(rows)))
            out[f"overhead_{name}"] = max(float(x[0]), 1e-7)
            fitted = {g: float(v) for g, v in zip(groups, x[1:]) if v > 0}
        default = float(statistics.median(fitted.values())) if fitted else 1.0
        for nd in (1, 2, 3):
            for p, other in (("f32", "f64"), ("f64", "f32")):
                value = fitted.get((nd, p), fitted.get((nd, other), default))
                out[_costs.scale_key(name, nd, p)] = value
    out.update(_fit_ops(samples, device, out))
    return out


def _fit_ops(samples: list[Sample], device: str, c: dict[str, float]) -> dict[str, float]:
    """``opscale_<name>_<op>`` of the backward passes: the median of measured over predicted
    work, the prediction being the forward fit's (an op's own kernels, remaps and extra passes
    run at their own efficiency)."""
    ratios: dict[str, list[float]] = {}
    for s in samples:
        if s.op == "forward":
            continue
        for name, t in s.seconds.items():
            o = c.get(f"overhead_{name}", 0.0)
            predicted = c.get(_costs.scale_key(name, *s.group), 1.0) * s.work[name]
            if predicted > 0:
                ratios.setdefault(f"opscale_{name}_{s.op}", []).append(max(t - o, 0.0) / predicted)
    return {k: max(float(statistics.median(v)), 1e-3) for k, v in ratios.items()}


def regret(samples: list[Sample], c: dict[str, float] | None) -> list[float]:
    """Per problem: the measured time of the algorithm the constants ``c`` would pick over the
    fastest (``c=None``: the pick of the constants in force before tuning)."""
    out = []
    for s in samples:
        # only timed candidates: the others had hopeless estimates
        if c is None:
            est = {n: s.prior[n] for n in s.seconds}
        else:
            est = {
                n: c[f"overhead_{n}"]
                + c[_costs.scale_key(n, *s.group)] * c.get(f"opscale_{n}_{s.op}", 1.0) * s.work[n]
                for n in s.seconds
            }
        pick = min(est, key=est.get)
        out.append(s.seconds[pick] / min(s.seconds.values()))
    return out


@dataclass
class TuneResult:
    device: str
    rates: _rates.Rates
    constants: dict[str, float]
    samples: list[Sample] = field(default_factory=list)
    regret_before: list[float] = field(default_factory=list)
    regret_after: list[float] = field(default_factory=list)
    path: str | None = None
    #: largest relative change of a ceiling between the start and the end of the run
    drift: float = 0.0
    clamped: dict[str, float] = field(default_factory=dict)  # fitted values out of range

    def summary(self) -> str:
        r = self.rates
        lines = [
            f"device: {_cache.device_id(self.device)}",
            f"copy bandwidth {r.copy_bytes_per_s / 1e9:.1f} GB/s, GEMM "
            f"{r.gemm_flops_f32 / 1e9:.0f} / {r.gemm_flops_f64 / 1e9:.0f} GFLOP/s (f32 / f64), "
            f"FFT {r.fft_nlogn_per_s_f32 / 1e9:.1f} / {r.fft_nlogn_per_s_f64 / 1e9:.1f} "
            "G n log2 n / s",
            "fitted overheads and efficiency scales:",
        ]
        shown = {k: v for k, v in self.constants.items() if k.startswith(_FITTED)}
        width = max(map(len, shown), default=0) + 2
        for k, v in sorted(shown.items()):
            value = f"{v * 1e6:.1f} us" if k.startswith("overhead_") else f"{v:.2f}"
            lines.append(f"  {k:<{width}}{value}")
        for what, reg in (("previous", self.regret_before), ("tuned", self.regret_after)):
            if reg:
                lines.append(
                    f"regret on the calibration grid with the {what} constants: median "
                    f"{statistics.median(reg):.2f}, worst {max(reg):.2f} ({len(reg)} problems)"
                )
        for k, v in sorted(self.clamped.items()):
            lines.append(
                f"clamped {k}: fitted {v:.3g}, kept {self.constants[k]:.3g} (the file may hold "
                f"{dispatch.PLAUSIBLE:g}x the built-in value at most)"
            )
        if self.drift > BUSY_DRIFT:
            lines.append(
                f"WARNING: the machine's ceilings changed by {self.drift:.0%} during the run: "
                "something else was using it; run `gpuconv tune` again when it is idle"
            )
        lines.append(f"saved to {self.path}" if self.path else "not saved")
        return "\n".join(lines)


def _operands(spec: ConvSpec, rng, xp, op: str = "forward", rank1: bool = False):
    """Random operands of ``op`` on ``spec`` (a rank-1 kernel when asked)."""

    def draw(shape):
        return _grids.random_operand(rng, shape, spec.dtype)

    w = draw(spec.w_shape)
    if rank1:  # an outer product of one vector per axis
        w = np.ones(spec.w_shape, spec.dtype)
        for ax, k in enumerate(spec.kernel_shape):
            shape = [1] * len(spec.w_shape)
            shape[2 + ax] = k
            w = w * draw(k).reshape(shape)
    if op == "backward_data":
        return xp.asarray(draw(spec.y_shape)), xp.asarray(w)
    if op == "backward_weight":
        return xp.asarray(draw(spec.x_shape)), xp.asarray(draw(spec.y_shape))
    return xp.asarray(draw(spec.x_shape)), xp.asarray(w)


def tune(
    device: str = "cpu",
    *,
    repeat: int = 5,
    grid: list[ConvSpec] | None = None,
    save: bool = True,
    progress: Callable[[int, int, str], None] | None = None,
) -> TuneResult:
    """Measure ``device``, fit its cost constants, put them in force and (``save``) cache them.

    >>> result = tune("cpu", grid=[], save=False)  # doctest: +SKIP
    """
    xp = np
    if device == "cuda":
        from ._arrays import require_cupy

        xp = require_cupy()
    elif device != "cpu":
        raise ValueError(f"unknown device {device!r}; use 'cpu' or 'cuda'")
    # a ceiling is the best the machine does: the better of two measurements
    rates = _best(_rates.measure(device), _rates.measure(device))
    c0 = rescale(device, rates.as_dict())
    if grid is None:
        grid = [(s, "forward", False) for s in _grids.calibration(device)]
        grid += [(s, "forward", True) for s in _grids.calibration_rank1(device)]
        grid += [(s, op, False) for s, op in _grids.calibration_ops(device)]
    else:
        grid = [(s, "forward", False) for s in grid]
    rng = np.random.default_rng(0)
    samples = []
    for i, (spec, op, rank1) in enumerate(grid):
        if progress:
            what = (" rank-1 kernel" if rank1 else "") + ("" if op == "forward" else f" {op}")
            progress(i, len(grid), _grids.label(spec) + what)
        a, b = _operands(spec, rng, xp, op, rank1)
        est = {}
        for name in dispatch.algorithm_names(device):
            alg = dispatch.get_algorithm(name, device)
            if alg.supports(spec, b, op) is None:
                est[name] = alg.estimate(spec, op, c0)
        if not est:
            continue
        best = min(est.values())
        names = [n for n, e in est.items() if e <= SKIP_FACTOR * best]
        # the fastest run, not the median: a fit must not learn a busy moment of the machine
        secs = dispatch.measure(spec, a, b, names, repeat, op, device, stat="min")
        prior = {n: dispatch.get_algorithm(n, device).estimate(spec, op) for n in secs}
        work = {n: est[n] - c0[f"overhead_{n}"] for n in secs}
        samples.append(Sample(spec, secs, work, prior, op))
    if progress:
        progress(len(grid), len(grid), "done")
    drift = _drift(rates, _rates.measure(device))
    fitted = {**c0, **fit(samples, device)}
    clamped = {}
    for k, v in fitted.items():  # a file holding more than this would be refused as damaged
        lo, hi = dispatch.plausible_range(device, k)
        if not lo <= v <= hi:
            clamped[k] = v
            fitted[k] = min(max(v, lo), hi)
    result = TuneResult(
        device,
        rates,
        fitted,
        samples,
        regret(samples, None),
        regret(samples, fitted),
        drift=drift,
        clamped=clamped,
    )
    dispatch.set_constants(device, fitted)
    if save:
        payload = _payload(result)
        p = _cache.save("constants", device, payload)
        if p is not None:
            result.path = str(p)
            dispatch._SOURCE[device] = f"tuned {payload['created']} ({p})"
    return result


def _payload(result: TuneResult) -> dict:
    return {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "constants": result.constants,
        "rates": result.rates.as_dict(),
        "samples": [
            {
                "problem": s.label,
                "op": s.op,
                "seconds": s.seconds,
                "work": s.work,
                "prior": s.prior,
            }
            for s in result.samples
        ],
        "regret_calibration": result.regret_after,
    }
