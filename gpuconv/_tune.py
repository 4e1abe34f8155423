"""``gpuconv tune``: measure this machine and fit the dispatcher's cost constants to it.

Two steps.  First the machine's ceilings (:mod:`gpuconv._rates`: copy bandwidth, GEMM rate, FFT
rate) rescale every rate-like constant of the built-in table by the ratio of this machine's figure
to the reference machine's (the table's constants keep their shape: a machine with twice the
bandwidth streams every byte twice as fast).  Then every algorithm is timed on the calibration
grid (:func:`gpuconv._grids.calibration`), and each algorithm's efficiency per number of spatial
axes (``scale_<algorithm>_<n>d``) becomes the median of its measured time over its estimate.  The
result is saved per device and gpuconv version in the cache (:mod:`gpuconv._cache`) and read by
the next process that dispatches on that device.
"""

from __future__ import annotations

import datetime
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import _cache, _costs, _grids, _rates, dispatch
from ._spec import ConvSpec

#: rate-like constant -> the measured rate it scales inversely with
RATE_OF: dict[str, str] = {
    "stream_byte": "copy_bytes_per_s",
    "im2col_byte": "copy_bytes_per_s",
    "spectral_cmac": "copy_bytes_per_s",
    "direct_mac_f32": "gemm_flops_f32",
    "direct_mac_c64": "gemm_flops_f32",
    "direct_mac_f64": "gemm_flops_f64",
    "direct_mac_c128": "gemm_flops_f64",
    "direct_mac_i64": "gemm_flops_f64",
    "gemm_mac_f32": "gemm_flops_f32",
    "gemm_mac_f64": "gemm_flops_f64",
    "gemm_mac_i64": "gemm_flops_f64",
    "fft_nlogn_f32": "fft_nlogn_per_s_f32",
    "fft_nlogn_f64": "fft_nlogn_per_s_f64",
}

#: algorithms estimated this many times slower than the best are not timed (they cannot win)
SKIP_FACTOR = 30.0


#: a ceiling that moves more than this between the start and the end of a run means a busy machine
BUSY_DRIFT = 0.25


def _drift(a: _rates.Rates, b: _rates.Rates) -> float:
    da, db = a.as_dict(), b.as_dict()
    return max(abs(da[k] - db[k]) / max(da[k], db[k]) for k in da if k != "device")


def reference_rates(device: str) -> dict[str, float]:
    return _costs.CPU_REFERENCE_RATES if device == "cpu" else dispatch.CUDA_REFERENCE_RATES


def rescale(device: str, rates: dict[str, float]) -> dict[str, float]:
    """The built-in constants of ``device`` with every rate-like one rescaled to ``rates`` and
    every efficiency scale reset to 1.

    >>> ref = _costs.CPU_REFERENCE_RATES
    >>> c = rescale("cpu", {**ref, "copy_bytes_per_s": 2 * ref["copy_bytes_per_s"]})
    >>> c["stream_byte"] == _costs.CPU_CONSTANTS["stream_byte"] / 2
    True
    """
    ref = reference_rates(device)
    out = dict(dispatch._BUILTIN[device])
    for key, rate in RATE_OF.items():
        if key in out:
            out[key] *= ref[rate] / rates[rate]
    for key in out:
        if key.startswith("scale_"):
            out[key] = 1.0
    return out


@dataclass
class Sample:
    """One calibration problem: measured and estimated (unscaled) seconds per algorithm."""

    spec: ConvSpec
    seconds: dict[str, float]
    estimates: dict[str, float]
    prior: dict[str, float] = field(default_factory=dict)  # estimates of the constants before

    @property
    def label(self) -> str:
        return problem_label(self.spec)


def problem_label(spec: ConvSpec) -> str:
    """A short description of a problem for tables and logs.

    >>> problem_label(ConvSpec(in_shape=(64, 64), kernel_shape=(3, 3)))
    '2-D 64x64 k=3x3 float32'
    """
    text = (
        f"{spec.ndim}-D {'x'.join(map(str, spec.in_shape))} "
        f"k={'x'.join(map(str, spec.kernel_shape))} {spec.dtype}"
    )
    if spec.batch > 1 or spec.c_in > 1 or spec.c_out > 1:
        text += f" b{spec.batch} {spec.c_in}->{spec.c_out}"
    if spec.groups > 1:
        text += f" g{spec.groups}"
    if any(s > 1 for s in spec.stride):
        text += f" s{spec.stride[0]}"
    return text


def fit_scales(samples: list[Sample], device: str) -> dict[str, float]:
    """Each algorithm's ``scale_<name>_<n>d``: the median of measured over estimated seconds on
    the problems with ``n`` spatial axes (at least two of them), else over all its problems."""
    ratios: dict[tuple[str, int], list[float]] = {}
    for s in samples:
        for name, t in s.seconds.items():
            ratios.setdefault((name, s.spec.ndim), []).append(t / s.estimates[name])
    scales = {}
    for name in dispatch.algorithm_names(device):
        everything = [r for (n, _), rs in ratios.items() if n == name for r in rs]
        for nd in (1, 2, 3):
            own = ratios.get((name, nd), [])
            pool = own if len(own) >= 2 else everything
            key = f"scale_{name}_{nd}d"
            scales[key] = float(statistics.median(pool)) if pool else 1.0
    return scales


def regret(samples: list[Sample], c: dict[str, float] | None) -> list[float]:
    """Per problem: the measured time of the algorithm the scales in ``c`` would pick over the
    fastest (``c=None``: the pick of the constants in force before tuning)."""
    out = []
    for s in samples:
        # only timed candidates: the others had hopeless estimates
        if c is None:
            est = {n: s.prior[n] for n in s.seconds}
        else:
            est = {n: s.estimates[n] * c.get(f"scale_{n}_{s.spec.ndim}d", 1.0) for n in s.seconds}
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

    def summary(self) -> str:
        r = self.rates
        lines = [
            f"device: {_cache.device_id(self.device)}",
            f"copy bandwidth {r.copy_bytes_per_s / 1e9:.1f} GB/s, GEMM "
            f"{r.gemm_flops_f32 / 1e9:.0f} / {r.gemm_flops_f64 / 1e9:.0f} GFLOP/s (f32 / f64), "
            f"FFT {r.fft_nlogn_per_s_f32 / 1e9:.1f} / {r.fft_nlogn_per_s_f64 / 1e9:.1f} "
            "G n log2 n / s",
            "efficiency scales (measured / estimated):",
        ]
        for k, v in sorted(self.constants.items()):
            if k.startswith("scale_") and v != 1.0:
                lines.append(f"  {k:<24}{v:.2f}")
        for what, reg in (("previous", self.regret_before), ("tuned", self.regret_after)):
            if reg:
                lines.append(
                    f"regret on the calibration grid with the {what} constants: median "
                    f"{statistics.median(reg):.2f}, worst {max(reg):.2f} ({len(reg)} problems)"
                )
        if self.drift > BUSY_DRIFT:
            lines.append(
                f"WARNING: the machine's ceilings changed by {self.drift:.0%} during the run: "
                "something else was using it; run `gpuconv tune` again when it is idle"
            )
        lines.append(f"saved to {self.path}" if self.path else "not saved")
        return "\n".join(lines)


def _operands(spec: ConvSpec, rng, xp):
    def draw(shape):
        a = rng.standard_normal(shape)
        if spec.is_complex:
            a = a + 1j * rng.standard_normal(shape)
        return xp.asarray(a.astype(spec.dtype))

    return draw(spec.x_shape), draw(spec.w_shape)


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
    rates = _rates.measure(device)
    c0 = rescale(device, rates.as_dict())
    grid = _grids.calibration(device) if grid is None else grid
    rng = np.random.default_rng(0)
    samples = []
    for i, spec in enumerate(grid):
        if progress:
            progress(i, len(grid), problem_label(spec))
        x, w = _operands(spec, rng, xp)
        est = {}
        for name in dispatch.algorithm_names(device):
            alg = dispatch.get_algorithm(name, device)
            if alg.supports(spec, w) is None:
                est[name] = alg.estimate(spec, "forward", c0)
        best = min(est.values())
        names = [n for n, e in est.items() if e <= SKIP_FACTOR * best]
        # the fastest run, not the median: a fit must not learn a busy moment of the machine
        secs = dispatch.measure(spec, x, w, names, repeat=repeat, device=device, stat="min")
        prior = {n: dispatch.get_algorithm(n, device).estimate(spec) for n in secs}
        samples.append(Sample(spec, secs, {n: est[n] for n in secs}, prior))
    if progress:
        progress(len(grid), len(grid), "done")
    drift = _drift(rates, _rates.measure(device))
    fitted = {**c0, **fit_scales(samples, device)}
    result = TuneResult(
        device, rates, fitted, samples, regret(samples, None), regret(samples, fitted), drift=drift
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
            {"problem": s.label, "seconds": s.seconds, "estimates": s.estimates}
            for s in result.samples
        ],
        "regret_calibration": result.regret_after,
    }
