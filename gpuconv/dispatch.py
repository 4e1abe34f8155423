"""The algorithm registry, the chooser and the plan it returns.

Algorithms are registered by name (like opt_einsum's ``_PATH_OPTIONS``).  Each one names the module
that implements it (imported on first use, so ``import gpuconv`` stays fast and never loads numba),
a cost function from :mod:`gpuconv._costs`, and whether it sums exactly (needed for integer
problems whose values would round in float64).  :func:`choose` ranks every registered algorithm
that supports a problem by its estimated time and returns a :class:`Plan` that says what it chose
and why; :func:`execute` runs a problem with a named algorithm or the chosen one.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import _costs
from ._spec import ConvSpec


@dataclass(frozen=True)
class Algorithm:
    """One registered algorithm of the canonical problem on one device."""

    name: str
    device: str
    module: str
    cost: Callable[[ConvSpec, dict], float]
    exact: bool
    summary: str

    def _impl(self):
        return importlib.import_module(self.module)

    def supports(self, spec: ConvSpec, kernel: np.ndarray | None = None) -> str | None:
        """None if this algorithm can solve ``spec`` (with this kernel, if given), else why not."""
        impl = self._impl()
        reason = impl.supports(spec)
        if reason is None and kernel is not None and hasattr(impl, "supports_kernel"):
            reason = impl.supports_kernel(spec, kernel)
        return reason

    def run(self, spec: ConvSpec, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        return self._impl().run(spec, x, w)

    def estimate(self, spec: ConvSpec) -> float:
        return self.cost(spec, constants(self.device))


_REGISTRY: dict[str, Algorithm] = {}
_CONSTANTS: dict[str, dict[str, float]] = {"cpu": dict(_costs.CPU_CONSTANTS)}


def register(algorithm: Algorithm) -> None:
    """Add an algorithm to the registry (a later one of the same name replaces it)."""
    _REGISTRY[algorithm.name] = algorithm


def algorithm_names(device: str = "cpu") -> list[str]:
    """Names of the registered algorithms of ``device``, in registration order.

    >>> algorithm_names()
    ['direct', 'im2col', 'fft', 'overlap_add', 'separable']
    """
    return [a.name for a in _REGISTRY.values() if a.device == device]


def get_algorithm(name: str) -> Algorithm:
    """The registered algorithm called ``name``; a ValueError listing the names otherwise."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown algorithm {name!r}; registered: {', '.join(_REGISTRY)}"
        ) from None


def constants(device: str = "cpu") -> dict[str, float]:
    """The cost model's constants in force for ``device`` (a copy)."""
    return dict(_CONSTANTS[device])


def set_constants(device: str, values: dict[str, float]) -> None:
    """Replace some of ``device``'s cost constants (used by calibration)."""
    unknown = set(values) - set(_CONSTANTS[device])
    if unknown:
        raise ValueError(f"unknown cost constants for {device}: {sorted(unknown)}")
    _CONSTANTS[device].update({k: float(v) for k, v in values.items()})


for _name, _module, _cost, _exact, _summary in [
    ("direct", "gpuconv.cpu.direct", _costs.direct_cost, True,
     "sliding sums, vectorised and register-blocked (numba)"),
    ("im2col", "gpuconv.cpu.im2col", _costs.im2col_cost, True,
     "column matrix (numba) times the kernel matrix (BLAS)"),
    ("fft", "gpuconv.cpu.fft", _costs.fft_cost, False,
     "one transform of the whole padded input (scipy.fft, all cores)"),
    ("overlap_add", "gpuconv.cpu.overlap_add", _costs.overlap_add_cost, False,
     "batched transforms of blocks, kernel spectrum once (scipy.fft)"),
    ("separable", "gpuconv.cpu.separable", _costs.separable_cost, False,
     "a rank-1 kernel as one 1-D pass per axis (numba)"),
]:  # fmt: skip
    register(Algorithm(_name, "cpu", _module, _cost, _exact, _summary))


@dataclass(frozen=True)
class Candidate:
    name: str
    seconds: float | None
    reason: str | None = None  # why it was not eligible, when seconds is None


@dataclass(frozen=True)
class Plan:
    """What the dispatcher chose for one problem, and what every candidate would have cost.

    ``repr(plan)`` is a short report for a person; ``plan.algorithm`` the chosen name.
    """

    spec: ConvSpec
    algorithm: str
    reason: str
    candidates: tuple[Candidate, ...] = field(default=())

    @property
    def estimates(self) -> dict[str, float]:
        """Estimated seconds of every eligible candidate."""
        return {c.name: c.seconds for c in self.candidates if c.seconds is not None}

    def __repr__(self) -> str:
        s = self.spec
        dims = "x".join(map(str, s.in_shape))
        kdims = "x".join(map(str, s.kernel_shape))
        extra = []
        if s.batch > 1 or s.c_in > 1 or s.c_out > 1:
            extra.append(f"batch {s.batch}, {s.c_in}->{s.c_out} ch")
        if s.groups > 1:
            extra.append(f"groups {s.groups}")
        if any(v > 1 for v in s.stride):
            extra.append(f"stride {s.stride}")
        if any(v > 1 for v in s.dilation):
            extra.append(f"dilation {s.dilation}")
        head = (
            f"Plan: {s.ndim}-D {dims} {'convolved' if s.flip else 'correlated'} with {kdims}, "
            f"{s.dtype}" + (f" ({', '.join(extra)})" if extra else "")
        )
        lines = [head, f"  chosen: {self.algorithm} - {self.reason}"]
        for c in self.candidates:
            mark = "*" if c.name == self.algorithm else " "
            cost = _fmt_seconds(c.seconds) if c.seconds is not None else "-"
            why = f"  ({c.reason})" if c.reason else ""
            lines.append(f"  {mark} {c.name:<12}{cost:>11}{why}")
        return "\n".join(lines)


def _fmt_seconds(t: float) -> str:
    if t < 1e-3:
        return f"{t * 1e6:.1f} us"
    if t < 1:
        return f"{t * 1e3:.2f} ms"
    return f"{t:.2f} s"


def choose(
    spec: ConvSpec,
    kernel: np.ndarray | None = None,
    *,
    exact: bool = False,
    device: str = "cpu",
    allowed: tuple[str, ...] | None = None,
) -> Plan:
    """Rank every algorithm of ``device`` that supports ``spec`` by estimated time.

    ``kernel``, when given, lets data-dependent algorithms (separable) say whether they apply.
    ``exact`` keeps only algorithms that sum exactly (integers beyond float64's 2**53).

    >>> from gpuconv._spec import ConvSpec
    >>> choose(ConvSpec(in_shape=(4096,), kernel_shape=(3,))).algorithm
    'direct'
    """
    cands = []
    for name in algorithm_names(device):
        alg = _REGISTRY[name]
        if allowed is not None and name not in allowed:
            continue
        if exact and not alg.exact:
            cands.append(Candidate(name, None, "rounds; integer values too large for float64"))
            continue
        reason = alg.supports(spec, kernel)
        if reason is not None:
            cands.append(Candidate(name, None, reason))
            continue
        cands.append(Candidate(name, alg.estimate(spec)))
    ok = sorted((c for c in cands if c.seconds is not None), key=lambda c: c.seconds)
    if not ok:
        why = "; ".join(f"{c.name}: {c.reason}" for c in cands)
        raise ValueError(f"no {device} algorithm supports this problem ({why})")
    best = ok[0]
    if len(ok) > 1:
        runner = ok[1]
        reason = (
            f"lowest estimate, {_fmt_seconds(best.seconds)}; next is {runner.name} at "
            f"{_fmt_seconds(runner.seconds)} ({runner.seconds / best.seconds:.1f}x)"
        )
    else:
        reason = f"the only algorithm that applies ({_fmt_seconds(best.seconds)})"
    return Plan(spec, best.name, reason, tuple(cands))


def measure(
    spec: ConvSpec,
    x: np.ndarray,
    w: np.ndarray,
    names: list[str] | None = None,
    repeat: int = 3,
) -> dict[str, float]:
    """Median wall time in seconds of each named (default: every supporting) algorithm."""
    times = {}
    for name in names or algorithm_names():
        alg = get_algorithm(name)
        if alg.supports(spec, w) is not None:
            continue
        alg.run(spec, x, w)  # warm-up: compilation, caches, FFT plans
        runs = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            alg.run(spec, x, w)
            runs.append(time.perf_counter() - t0)
        times[name] = float(np.median(runs))
    return times


def execute(
    spec: ConvSpec,
    x: np.ndarray,
    w: np.ndarray,
    algorithm: str = "auto",
    *,
    exact: bool = False,
) -> np.ndarray:
    """Solve ``spec`` for inputs ``x`` and ``w`` with ``algorithm`` (a registered name or 'auto').

    >>> import numpy as np
    >>> from gpuconv._spec import ConvSpec
    >>> spec = ConvSpec(in_shape=(3,), kernel_shape=(2,), pad_lo=1, pad_hi=1, flip=True)
    >>> execute(spec, np.array([[[1.0, 2.0, 3.0]]]), np.array([[[1.0, 1.0]]]))[0, 0]
    array([1., 3., 5., 3.])
    """
    if x.shape != spec.x_shape or w.shape != spec.w_shape:
        raise ValueError(
            f"x {x.shape} and w {w.shape} do not match the problem's {spec.x_shape} and "
            f"{spec.w_shape}"
        )
    x = np.asarray(x, dtype=spec.dtype)
    w = np.asarray(w, dtype=spec.dtype)
    if algorithm == "auto":
        algorithm = choose(spec, w, exact=exact).algorithm
    alg = get_algorithm(algorithm)
    reason = alg.supports(spec, w)
    if reason is not None:
        raise ValueError(f"algorithm {algorithm!r} cannot solve this problem: {reason}")
    return alg.run(spec, x, w)
