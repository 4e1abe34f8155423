"""Shared machinery of the pytest-benchmark suites in bench/ (see bench/README.md).

Each test module skips itself when pytest-benchmark is missing (a skip raised while pytest loads
this conftest would abort the run instead).

The ``cases`` fixture makes random operands, computes float64 references, decides what is not
worth running (the algorithm's own reason, or a cost estimate far above the best one) and times a
checked callable with ``benchmark.pedantic``.  The random inputs, tolerances and the ``device``
fixture are the test suite's own (tests/conftest.py, tests/reference.py, tests/test_nn.py).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

# `pytest bench/` puts bench/ on sys.path, not the checkout (gpuconv is not installed in dev)
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from gpuconv import dispatch  # noqa: E402
from gpuconv._spec import ConvSpec  # noqa: E402
from tests.conftest import device, random_array  # noqa: E402, F401  (device: re-exported fixture)
from tests.reference import reference  # noqa: E402
from tests.test_nn import tolerance  # noqa: E402

#: an algorithm estimated more than this many times slower than the best estimate is not run
SKIP_FACTOR = 30.0
#: forward problems up to this many MACs are checked against tests/reference.py (einsum, slow);
#: bigger ones against another gpuconv algorithm run in float64
REFERENCE_MACS = 60e6
#: seconds of timed rounds aimed at per benchmark, and the bounds on the number of rounds
TARGET_SECONDS = 1.0
MIN_ROUNDS, MAX_ROUNDS = 5, 50


def _float64(spec: ConvSpec) -> ConvSpec:
    return dataclasses.replace(spec, dtype=np.complex128 if spec.is_complex else np.float64)


def _n_terms(spec: ConvSpec, op: str) -> int:
    """Products summed into one output element of ``op`` (for the rounding tolerance)."""
    k = math.prod(spec.kernel_shape)
    if op == "forward":
        return spec.c_in // spec.groups * k
    if op == "backward_data":
        return spec.c_out // spec.groups * k
    return spec.batch * math.prod(spec.out_shape)


class Cases:
    """Operands and references per (problem, op), computed once per session."""

    def __init__(self):
        self._operands: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._references: dict[tuple, np.ndarray] = {}

    def operands(self, problem, op: str) -> tuple[np.ndarray, np.ndarray]:
        """The two NumPy operands of ``op`` (see dispatch.execute) for ``problem``."""
        key = (problem.name, problem.spec, problem.rank1)
        if key not in self._operands:
            spec = problem.spec
            rng = np.random.default_rng(zlib.crc32(problem.name.encode()))  # same inputs every run
            x = random_array(rng, spec.x_shape, spec.dtype)
            if problem.rank1:  # a separable kernel (blurs, Sobel): random outer product
                parts = [random_array(rng, (k,), spec.dtype) for k in spec.kernel_shape]
                w = np.einsum(",".join("ijkl"[: len(parts)]), *parts).reshape(spec.w_shape)
            else:
                w = random_array(rng, spec.w_shape, spec.dtype)
            dy = random_array(rng, spec.y_shape, spec.dtype)
            self._operands[key] = (x, w, dy)
        x, w, dy = self._operands[key]
        return {"forward": (x, w), "backward_data": (dy, w), "backward_weight": (x, dy)}[op]

    def reference(self, problem, op: str, avoid: str | None = None) -> tuple[np.ndarray, str]:
        """The float64 result of ``op`` and what computed it: tests/reference.py for small
        forward problems, else the best-estimated CPU algorithm other than ``avoid`` (so that an
        algorithm is never its own reference) run in float64."""
        spec = problem.spec
        a, b = self.operands(problem, op)
        if op == "forward" and spec.macs <= REFERENCE_MACS:
            how = "tests/reference.py"
        else:
            names = tuple(n for n in dispatch.algorithm_names("cpu") if n != avoid)
            wide = _float64(spec)
            how = dispatch.choose(wide, b.astype(wide.dtype), op=op, allowed=names).algorithm
        key = (problem.name, problem.spec, problem.rank1, op, how)
        if key not in self._references:
            if how == "tests/reference.py":
                ref = reference(spec, a, b)
            else:
                wide = _float64(spec)
                a64, b64 = a.astype(wide.dtype), b.astype(wide.dtype)
                ref = dispatch.execute(wide, a64, b64, how, op=op)
            self._references[key] = ref
        return self._references[key], how

    def check(self, out, problem, op: str, avoid: str | None = None) -> dict:
        """Fail unless ``out`` (NumPy) is ``op``'s result to rounding; else the figures of the
        check for extra_info."""
        spec = problem.spec
        ref, how = self.reference(problem, op, avoid)
        a, b = self.operands(problem, op)
        out = np.asarray(out)
        assert out.shape == ref.shape, f"shape {out.shape}, expected {ref.shape}"
        assert out.dtype == spec.dtype, f"dtype {out.dtype}, expected {spec.dtype}"
        atol = tolerance(spec.dtype, a, b, n_terms=_n_terms(spec, op))
        err = float(np.max(np.abs(out.astype(ref.dtype) - ref)))
        assert err <= atol, f"wrong result: max error {err:.3g} > {atol:.3g} (against {how})"
        return {"reference": how, "max_abs_error": err, "atol": atol}

    def gate(self, target: str, problem, name: str, op: str) -> dict:
        """Skip unless ``name`` runs ``op`` on ``problem`` on ``target`` ('cpu' or 'cuda') and is
        estimated within SKIP_FACTOR of the best; else the cost model's figures for extra_info."""
        spec = problem.spec
        _, b = self.operands(problem, op)
        if name != "auto":
            reason = dispatch.get_algorithm(name, target).supports(spec, b, op)
            if reason is not None:
                pytest.skip(reason if reason.startswith(name) else f"{name}: {reason}")
        try:
            plan = dispatch.choose(spec, b, op=op, device=target)
        except ValueError as e:  # nothing on this device does it: the dispatcher says why
            pytest.skip(str(e))
        best_name = plan.algorithm
        best = plan.estimates[best_name]
        if name == "auto":
            return {"chosen": best_name, "estimate_s": best}
        est = plan.estimates.get(name)
        if est is None:  # pragma: no cover - choose() and supports() disagree
            est = dispatch.get_algorithm(name, target).estimate(spec, op)
        if est > SKIP_FACTOR * best:
            pytest.skip(
                f"{name}: the cost model estimates {est * 1e3:.3g} ms, {est / best:.0f}x the best "
                f"({best_name}, {best * 1e3:.3g} ms); over {SKIP_FACTOR:.0f}x is not run to keep "
                "the suite short"
            )
        return {"estimate_s": est, "best": best_name, "best_estimate_s": best}

    def time(self, benchmark, fn, problem, op: str, method: str, target: str = "cpu", **info):
        """Time ``fn`` (already checked; on the GPU it synchronizes) with a warm-up round and
        enough rounds for about TARGET_SECONDS, and record the problem, method and figures."""
        spec = problem.spec
        t0 = time.perf_counter()
        fn()  # one untimed run to size the rounds (compilation, FFT plans are behind us)
        probe = time.perf_counter() - t0
        rounds = max(MIN_ROUNDS, min(MAX_ROUNDS, math.ceil(TARGET_SECONDS / max(probe, 1e-6))))
        benchmark.group = f"{target} {problem.name} {op}"
        benchmark.extra_info.update(
            problem=problem.name,
            spec=repr(spec),
            op=op,
            method=method,
            device=target,
            dtype=str(spec.dtype),
            flops=spec.flops,
            **info,
        )
        benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)
        stats = getattr(benchmark, "stats", None)  # None with --benchmark-disable
        if stats is not None:
            benchmark.extra_info["gflop_per_s"] = spec.flops / stats.stats.median / 1e9


@pytest.fixture(scope="session")
def cases() -> Cases:
    return Cases()
