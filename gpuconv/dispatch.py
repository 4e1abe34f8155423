"""The algorithm registry, the chooser and the plan it returns.

Algorithms are registered by ``(device, name)`` (like opt_einsum's ``_PATH_OPTIONS``, one table per
device: ``'cpu'`` algorithms take and return NumPy arrays, ``'cuda'`` ones CuPy arrays).  Each one names the module
that implements it (imported on first use, so ``import gpuconv`` stays fast and never loads numba),
a cost function from :mod:`gpuconv._costs`, and whether it sums exactly (needed for integer
problems whose values would round in float64).  :func:`choose` ranks every registered algorithm
that supports a problem by its estimated time and returns a :class:`Plan` that says what it chose
and why; :func:`execute` runs a problem with a named algorithm or the chosen one.

Operations (``op``).  Besides the forward problem (``'forward'``: ``y`` from ``x`` and ``w``) every
algorithm is asked about the two transposed problems a gradient needs, on the *same* spec:

* ``'backward_data'``: ``dx`` (``spec.x_shape``) from ``dy`` (``spec.y_shape``) and ``w``, the
  transpose of the forward map in ``x``: ``dx[n, g*Cig+c, q] = sum dy[n, g*Cog+o, p] w~[g*Cog+o, c, j]``
  over every ``(o, p, j)`` with ``p*stride + j*dilation - pad_lo == q``;
* ``'backward_weight'``: ``dw`` (``spec.w_shape``) from ``x`` and ``dy``, the transpose in ``w``.

Nothing is conjugated (for real dtypes these are the gradients).  An algorithm module may
implement them natively (``run_backward_data(spec, dy, w)`` / ``run_backward_weight(spec, x, dy)``,
gated by ``supports_backward_data(spec)`` / ``supports_backward_weight(spec)`` returning a reason
or None); otherwise the dispatcher *remaps* them onto a forward problem the algorithm solves:

* backward_weight, any stride: batch and channel axes of ``x`` swapped (``(Cig, groups*N, ...)``,
  ``groups`` kept), ``dy`` channel-transposed as the kernel, stride and dilation exchanged, same
  padding (the unread tail of ``x`` cropped);
* backward_data, stride 1 only: full correlation of ``dy`` with the spatially reversed,
  channel-transposed kernel, padding ``dilation*(k-1) - pad`` (negative: ``dy`` is cropped).

With stride 1 the remap is preferred (it runs the tuned forward cores); with stride > 1
backward_data needs a native kernel (direct: a gather-form transposed kernel, im2col: col2im), and
an algorithm without one says why not.  Nothing ever builds a zero-inserted ``dy``.

The CUDA algorithms (:mod:`gpuconv.cuda`) take the same routes on CuPy arrays: im2col has native
backward passes (a GEMM into columns then col2im; im2col then a GEMM with dy), direct a native
gather-form transposed kernel for backward_data, and the others go through the remaps.  Their
cost model (:data:`CUDA_CONSTANTS`) is provisional until measured on a GPU.
"""

from __future__ import annotations

import importlib
import json
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from math import prod

import numpy as np

from . import _arrays, _cache, _costs, _epilogue, _memory, _warn
from ._spec import ConvSpec

#: the operations the dispatcher knows (see the module docstring).
OPS = ("forward", "backward_data", "backward_weight")


_MODULES: dict[str, object] = {}


def _imported(name: str):
    """The imported module ``name`` (import_module's own lookup costs more than a dict's, and
    'auto' asks for several modules at every call)."""
    mod = _MODULES.get(name)
    if mod is None:
        mod = _MODULES[name] = importlib.import_module(name)
    return mod


@dataclass(frozen=True)
class Algorithm:
    """One registered algorithm of the canonical problem on one device.

    ``op_costs`` maps an op to the cost function of the module's *native* implementation of it
    (a remapped op is estimated by ``cost`` on the remapped forward problem).
    """

    name: str
    device: str
    module: str
    cost: Callable[[ConvSpec, dict], float]
    exact: bool
    summary: str
    op_costs: tuple[tuple[str, Callable[[ConvSpec, dict], float]], ...] = ()
    op_modules: tuple[tuple[str, str], ...] = ()

    def _impl(self):
        return _imported(self.module)

    def _op_impl(self, op: str):
        """The module holding the native ``run_<op>`` (the algorithm's own module by default)."""
        return _imported(dict(self.op_modules).get(op, self.module))

    def supports(
        self, spec: ConvSpec, kernel: np.ndarray | None = None, op: str = "forward"
    ) -> str | None:
        """None if this algorithm can do ``op`` on ``spec``, else why not.

        ``kernel`` is the operand that plays the kernel's part (``w`` for forward and
        backward_data, ``dy`` for backward_weight); given, data-dependent algorithms (separable)
        can say whether they apply.
        """
        route = self.route(spec, op, kernel)
        return route[1] if route[0] == "none" else None

    def route(self, spec: ConvSpec, op: str = "forward", kernel: np.ndarray | None = None):
        """How ``op`` would run: ``('native', None)``, ``('remap', remap)``, ``('zero', None)``
        (the result is identically zero) or ``('none', reason)``."""
        _check_op(op)
        impl = self._impl()
        if op == "forward":
            reason = impl.supports(spec)
            if reason is None and kernel is not None and hasattr(impl, "supports_kernel"):
                reason = impl.supports_kernel(spec, kernel)
            if reason is not None:
                return ("none", reason)
            # a forward op module is a fast path for the problems it supports
            fast = self._op_impl(op)
            if fast is not impl and fast.supports(spec) is None:
                return ("fast", fast)
            return ("native", None)
        op_impl = self._op_impl(op)
        native = hasattr(op_impl, f"run_{op}")
        native_reason = None
        if native and hasattr(op_impl, f"supports_{op}"):
            native_reason = getattr(op_impl, f"supports_{op}")(spec)
        if op == "backward_weight":
            if native and native_reason is None:
                return ("native", None)
            remap = _BackwardWeightRemap.of(spec)
            if remap is None:
                return ("zero", None)
            why = remap.supported_by(impl, kernel)
            if why is None:
                return ("remap", remap)
            return ("none", native_reason or f"remapped onto a forward problem: {why}")
        # backward_data
        remap_reason = None
        if all(v == 1 for v in spec.stride):
            remap = _BackwardDataRemap.of(spec)
            why = remap.supported_by(impl, kernel)
            if why is None:
                return ("remap", remap)
            remap_reason = f"remapped onto a forward problem: {why}"
        if native:
            if native_reason is None:
                return ("native", None)
            return ("none", native_reason)
        if remap_reason is not None:
            return ("none", remap_reason)
        return (
            "none",
            f"backward_data with stride {spec.stride} needs a native transposed kernel, which "
            f"{self.name} has not; its remap onto a forward problem needs stride 1 (and a "
            "zero-inserted gradient is never built)",
        )

    def run(
        self,
        spec: ConvSpec,
        x: np.ndarray,
        w: np.ndarray,
        op: str = "forward",
        epilogue: tuple | None = None,
    ) -> np.ndarray:
        """``op`` on ``spec``: forward ``(x, w) -> y``, backward_data ``(dy, w) -> dx``,
        backward_weight ``(x, dy) -> dw``.

        ``epilogue`` (forward only): ``(bias or None, activation code, slope)`` of
        :mod:`gpuconv._epilogue`, applied to y in the convolution's own store by modules that
        fuse it (``FUSED_EPILOGUE``), else in one pass after it."""
        kind, how = self.route(spec, op)
        if self.device == "cpu":
            _memory.configure()
        if op == "forward":
            mod = how if kind == "fast" else self._impl()
            if epilogue is None or (epilogue[0] is None and not epilogue[1]):
                return mod.run(spec, x, w)
            bias, code, slope = epilogue
            if getattr(mod, "FUSED_EPILOGUE", False):
                return mod.run(spec, x, w, bias=bias, act=code, slope=slope)
            return _epilogue.apply(mod.run(spec, x, w), bias, code, slope)
        if epilogue is not None:
            raise ValueError(f"an epilogue applies to forward only, not {op}")
        if kind == "none":
            raise ValueError(f"algorithm {self.name!r} cannot do {op} of this problem: {how}")
        if kind == "zero":
            xp = _arrays.xp_of(x)
            return xp.zeros(spec.x_shape if op == "backward_data" else spec.w_shape, spec.dtype)
        if kind == "native":
            return getattr(self._op_impl(op), f"run_{op}")(spec, x, w)
        return how.run(self._impl(), x, w)

    def estimate(self, spec: ConvSpec, op: str = "forward", c: dict | None = None) -> float:
        """Estimated seconds of ``op`` on ``spec`` under the cost constants ``c`` (default: those
        in force for this algorithm's device): the algorithm's fixed overhead plus its work
        times its fitted efficiency scale."""
        c = constants(self.device) if c is None else c
        raw = self._estimate(spec, op, c)
        overhead = c.get(f"overhead_{self.name}", 0.0)
        scale = c.get(_costs.scale_key(self.name, spec.ndim, _costs._real_sfx(spec)), 1.0)
        if op != "forward":
            scale *= c.get(f"opscale_{self.name}_{op}", 1.0)
        return overhead + scale * max(raw - overhead, 0.0)

    def _estimate(self, spec: ConvSpec, op: str, c: dict) -> float:
        kind, how = self.route(spec, op)
        if op == "forward":
            if kind == "fast":
                return dict(self.op_costs).get("forward", self.cost)(spec, c)
            return self.cost(spec, c)
        if kind == "native":
            fn = dict(self.op_costs).get(op, self.cost)
            return fn(spec, c)
        if kind == "remap":
            return how.estimate(self, c)
        if kind == "zero":
            return float(prod(spec.w_shape)) * spec.dtype.itemsize * c["stream_byte"]
        raise ValueError(f"algorithm {self.name!r} cannot do {op} of this problem: {how}")


def _check_op(op) -> None:
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}; one of {', '.join(OPS)}")


@dataclass(frozen=True)
class _BackwardDataRemap:
    """backward_data of a stride-1 ``spec`` as the forward problem ``fwd`` on a crop of dy."""

    spec: ConvSpec
    fwd: ConvSpec
    crop: tuple[tuple[int, int], ...]  # dy[..., lo:hi] per spatial axis

    @staticmethod
    def of(spec: ConvSpec) -> _BackwardDataRemap:
        lo2, hi2, crop, in2 = [], [], [], []
        for n_out, k, d, lo, hi in zip(
            spec.out_shape, spec.kernel_shape, spec.dilation, spec.pad_lo, spec.pad_hi
        ):
            a, b = d * (k - 1) - lo, d * (k - 1) - hi
            c0, c1 = max(0, -a), max(0, -b)
            crop.append((c0, n_out - c1))
            lo2.append(max(a, 0))
            hi2.append(max(b, 0))
            in2.append(n_out - c0 - c1)
        fwd = ConvSpec(
            in_shape=tuple(in2),
            kernel_shape=spec.kernel_shape,
            batch=spec.batch,
            c_in=spec.c_out,
            c_out=spec.c_in,
            groups=spec.groups,
            dilation=spec.dilation,
            pad_lo=tuple(lo2),
            pad_hi=tuple(hi2),
            flip=not spec.flip,
            dtype=spec.dtype,
        )
        if fwd.out_shape != spec.in_shape:  # pragma: no cover - an internal invariant
            raise RuntimeError(f"backward-data remap: {fwd.out_shape} != {spec.in_shape}")
        return _BackwardDataRemap(spec, fwd, tuple(crop))

    def kernel(self, w: np.ndarray) -> np.ndarray:
        """``w`` (c_out, Cig, *k) with channels transposed per group: (c_in, Cog, *k)."""
        s = self.spec
        g = s.groups
        k = s.kernel_shape
        xp = _arrays.xp_of(w)
        w = xp.asarray(w).reshape((g, s.c_out // g, s.c_in // g) + k)
        return xp.ascontiguousarray(w.swapaxes(1, 2)).reshape((s.c_in, s.c_out // g) + k)

    def supported_by(self, impl, w) -> str | None:
        reason = impl.supports(self.fwd)
        if reason is None and w is not None and hasattr(impl, "supports_kernel"):
            reason = impl.supports_kernel(self.fwd, self.kernel(w))
        return reason

    def run(self, impl, dy: np.ndarray, w: np.ndarray) -> np.ndarray:
        xp = _arrays.xp_of(dy)
        dy = dy[(slice(None), slice(None)) + tuple(slice(a, b) for a, b in self.crop)]
        return impl.run(self.fwd, xp.ascontiguousarray(dy), self.kernel(w))

    def estimate(self, alg: Algorithm, c: dict) -> float:
        return alg.cost(self.fwd, c) + self.spec.min_bytes * c["stream_byte"]


@dataclass(frozen=True)
class _BackwardWeightRemap:
    """backward_weight of ``spec`` as the forward problem ``fwd`` (x and dy re-laid out)."""

    spec: ConvSpec
    fwd: ConvSpec
    keep: tuple[int, ...]  # x[..., :keep] per spatial axis (the tail no output reads is cut)

    @staticmethod
    def of(spec: ConvSpec) -> _BackwardWeightRemap | None:
        """The remap, or None when no output reads any input sample (dw is then zero)."""
        keep, hi2 = [], []
        for n, lo, hi, pad_n, r, s, o in zip(
            spec.in_shape,
            spec.pad_lo,
            spec.pad_hi,
            spec.padded_shape,
            spec.reach,
            spec.stride,
            spec.out_shape,
        ):
            excess = pad_n - r - s * (o - 1)  # padded samples after the last one read
            cut = max(0, excess - hi)
            if cut >= n or lo >= pad_n - excess:
                return None
            keep.append(n - cut)
            hi2.append(max(0, hi - excess))
        g = spec.groups
        fwd = ConvSpec(
            in_shape=tuple(keep),
            kernel_shape=spec.out_shape,
            batch=spec.c_in // g,
            c_in=g * spec.batch,
            c_out=spec.c_out,
            groups=g,
            stride=spec.dilation,
            dilation=spec.stride,
            pad_lo=spec.pad_lo,
            pad_hi=tuple(hi2),
            flip=False,
            dtype=spec.dtype,
        )
        if fwd.out_shape != spec.kernel_shape:  # pragma: no cover - an internal invariant
            raise RuntimeError(f"backward-weight remap: {fwd.out_shape} != {spec.kernel_shape}")
        return _BackwardWeightRemap(spec, fwd, tuple(keep))

    def kernel(self, dy: np.ndarray) -> np.ndarray:
        """dy (N, c_out, *out) as the kernel (c_out, N, *out)."""
        return _arrays.xp_of(dy).ascontiguousarray(dy.swapaxes(0, 1))

    def supported_by(self, impl, dy) -> str | None:
        reason = impl.supports(self.fwd)
        if reason is None and dy is not None and hasattr(impl, "supports_kernel"):
            reason = impl.supports_kernel(self.fwd, self.kernel(dy))
        return reason

    def run(self, impl, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
        s = self.spec
        g = s.groups
        xp = _arrays.xp_of(x)
        x = x[(slice(None), slice(None)) + tuple(slice(0, k) for k in self.keep)]
        # (N, g, Cig, *sp) -> (Cig, g, N, *sp) -> (Cig, g*N, *sp)
        x = x.reshape((s.batch, g, s.c_in // g) + self.keep)
        x = xp.ascontiguousarray(x.transpose((2, 1, 0) + tuple(range(3, 3 + s.ndim))))
        x = x.reshape((s.c_in // g, g * s.batch) + self.keep)
        y = impl.run(self.fwd, x, self.kernel(dy))  # (Cig, c_out, *k)
        dw = xp.ascontiguousarray(y.swapaxes(0, 1))
        if s.flip:
            dw = xp.ascontiguousarray(
                dw[(slice(None), slice(None)) + (slice(None, None, -1),) * s.ndim]
            )
        return dw

    def estimate(self, alg: Algorithm, c: dict) -> float:
        t = alg.cost(self.fwd, c)
        if alg.name == "direct":
            t *= _costs.narrow_output_penalty(self.fwd)
        return t + 2 * self.spec.min_bytes * c["stream_byte"]


_REGISTRY: dict[tuple[str, str], Algorithm] = {}

#: Rates of an NVIDIA H100 (SXM) for the CUDA algorithms' cost model: provisional, not measured
#: here (no GPU was at hand), derived from rough published figures: 2.9e12 B/s of HBM bandwidth,
#: 50e12 FLOP/s of fp32 GEMM (25e12 MAC/s), a 4320 x 4320 complex-to-complex cuFFT in about
#: 0.3 ms.  Units: seconds per unit of work, like :data:`gpuconv._costs.CPU_CONSTANTS`.
_CUFFT_REF_N = 4320 * 4320
CUDA_CONSTANTS: dict[str, float] = {
    "stream_byte": 1.0 / 2.9e12,
    # direct kernels run on the CUDA cores (no tensor cores): about a third of fp32 peak
    "direct_mac_f32": 1.0 / 10e12,
    "direct_mac_f64": 1.0 / 5e12,
    "direct_mac_c64": 4.0 / 10e12,
    "direct_mac_c128": 4.0 / 5e12,
    "direct_mac_i64": 1.0 / 1e12,
    # the generic (strided / dilated / multi-channel / 3-D) kernel: one thread per output
    "direct_generic_penalty": 2.0,
    "gemm_mac_f32": 1.0 / 25e12,
    # the column matrix's write + read at a third of copy speed: fitted to anchors.md's im2col +
    # cuBLAS times on the ResNet-50 layers (H100, batch 32: conv1 0.761 ms, 64 ch 0.713, 512 ch
    # 0.282 are within 10% with it; the 128 / 256 channel layers were slower still)
    "im2col_col_factor": 3.0,
    "gemm_mac_f64": 1.0 / 12e12,
    "gemm_mac_i64": 1.0 / 0.5e12,
    # a complex transform is two real units (as in the CPU model): 0.3 ms / (2 n log2 n)
    "fft_nlogn_f32": 0.3e-3 / (2 * _CUFFT_REF_N * math.log2(_CUFFT_REF_N)),
    "fft_nlogn_f64": 2 * 0.3e-3 / (2 * _CUFFT_REF_N * math.log2(_CUFFT_REF_N)),
    # spectral product kernel, memory bound: seconds per complex multiply-add
    "spectral_cmac": 1.0 / 0.5e12,
    # kernel launches, cuBLAS / cuFFT plan look-ups, Python
    "overhead_direct": 15e-6,
    "overhead_im2col": 40e-6,
    "overhead_fft": 60e-6,
    # separable: a launch per pass and input channel; the host factors every (o, c) slice (SVD,
    # 25-60 us each measured on the CPU side)
    "overhead_separable": 20e-6,
    "separable_launch": 5e-6,
    "separable_factor_slice": 30e-6,
    # overlap-save: ~20 CuPy calls a run (plans, gathers, transforms, products, scatters)
    "overhead_overlap_add": 120e-6,
    # implicit GEMM: this SIMT kernel's MAC rate against cuBLAS's (gemm_mac_*), a guess
    "igemm_penalty": 1.4,
    "overhead_implicit_gemm": 15e-6,
    **{
        _costs.scale_key(a, n, p): 1.0
        for a in ("direct", "fft", "im2col", "separable", "overlap_add", "implicit_gemm")
        for n in (1, 2, 3)
        for p in ("f32", "f64")
    },
    **{
        f"opscale_{a}_{op}": 1.0
        for a in ("direct", "fft", "im2col", "implicit_gemm")
        for op in ("backward_data", "backward_weight")
    },
}

#: the rates CUDA_CONSTANTS assume (same keys as gpuconv._rates.Rates), for `gpuconv tune`
CUDA_REFERENCE_RATES: dict[str, float] = {
    "copy_bytes_per_s": 2.9e12,
    "gemm_flops_f32": 50e12,
    "gemm_flops_f64": 24e12,
    "fft_nlogn_per_s_f32": 2 * _CUFFT_REF_N * math.log2(_CUFFT_REF_N) / 0.3e-3,
    "fft_nlogn_per_s_f64": _CUFFT_REF_N * math.log2(_CUFFT_REF_N) / 0.3e-3,
}

_BUILTIN: dict[str, dict[str, float]] = {"cpu": _costs.CPU_CONSTANTS, "cuda": CUDA_CONSTANTS}
_CONSTANTS: dict[str, dict[str, float]] = {d: dict(t) for d, t in _BUILTIN.items()}
#: device -> where its constants in force came from (absent until first use reads the cache)
_SOURCE: dict[str, str] = {}


def _cuda_direct_cost(spec: ConvSpec, c: dict[str, float]) -> float:
    from .cuda import direct

    t = spec.macs * c[f"direct_mac_{_costs._sfx(spec)}"]
    if all(r(spec) is not None for r in (direct.fast1d_reason, direct.fast2d_reason,
                                         direct.fast3d_reason)):  # fmt: skip
        t *= c["direct_generic_penalty"]
    return c["overhead_direct"] + t + spec.min_bytes * c["stream_byte"]


def _cuda_im2col_cost(spec: ConvSpec, c: dict[str, float]) -> float:
    cig = spec.c_in // spec.groups
    cols = spec.batch * spec.groups * cig * prod(spec.kernel_shape) * prod(spec.out_shape)
    col_bytes = cols * spec.dtype.itemsize
    sfx = _costs._sfx(spec)
    key = "gemm_mac_i64" if sfx == "i64" else f"gemm_mac_{_costs._real_sfx(spec)}"
    gemm = spec.macs * c[key] * (4.0 if spec.is_complex else 1.0)
    # the column matrix is written once and read by the GEMM at least once, both slower than a
    # copy (im2col_col_factor)
    return c["overhead_im2col"] + 2 * col_bytes * c["stream_byte"] * c["im2col_col_factor"] + gemm


def _cuda_direct_transposed_cost(spec: ConvSpec, c: dict[str, float]) -> float:
    """backward_data by the gather-form transposed kernel (as slow per MAC as the generic one)."""
    t = spec.macs * c[f"direct_mac_{_costs._sfx(spec)}"] * c["direct_generic_penalty"]
    return c["overhead_direct"] + t + spec.min_bytes * c["stream_byte"]


def _cuda_col2im_cost(spec: ConvSpec, c: dict[str, float]) -> float:
    """backward_data by the transposed GEMM into columns, then the col2im gather."""
    return _cuda_im2col_cost(spec, c) + prod(spec.x_shape) * spec.dtype.itemsize * c["stream_byte"]


def _cuda_im2col_weight_cost(spec: ConvSpec, c: dict[str, float]) -> float:
    """backward_weight by im2col: the same columns, contracted with dy instead of w."""
    return _cuda_im2col_cost(spec, c) + prod(spec.y_shape) * spec.dtype.itemsize * c["stream_byte"]


def _cuda_separable_cost(spec: ConvSpec, c: dict[str, float]) -> float:
    from .cuda import separable

    return separable.cost(spec, c)


def _cuda_overlap_add_cost(spec: ConvSpec, c: dict[str, float]) -> float:
    from .cuda import overlap_add

    return overlap_add.cost(spec, c)


def _cuda_implicit_gemm_cost(spec: ConvSpec, c: dict[str, float]) -> float:
    from .cuda import implicit_gemm

    return implicit_gemm.cost(spec, c)


def _cuda_fft_cost(spec: ConvSpec, c: dict[str, float]) -> float:
    from .cuda import fft

    real = not spec.is_complex
    shape = fft.lengths(spec, real)
    cig = spec.c_in // spec.groups
    cog = spec.c_out // spec.groups
    transforms = spec.batch * spec.c_in + spec.c_out * cig + spec.batch * spec.c_out
    unit = c[f"fft_nlogn_{_costs._real_sfx(spec)}"] * (1.0 if real else 2.0)
    n = prod(shape)
    n_freq = n if not real else n // 2
    product = spec.batch * spec.groups * cig * cog * n_freq * c["spectral_cmac"]
    return c["overhead_fft"] + transforms * n * math.log2(max(n, 2)) * unit + product


#: (device, algorithm, op, spec) -> (reason or None, estimated seconds): what an algorithm says
#: of a problem's shape does not change between calls, and recomputing it (FFT length searches,
#: block plans) costs ~0.3 ms a call; kernel-dependent checks are never cached
_ASSESSED: dict[tuple, tuple[str | None, float | None]] = {}
_ASSESSED_MAX = 4096


def register(algorithm: Algorithm) -> None:
    """Add an algorithm to the registry (a later one of the same device and name replaces it)."""
    _REGISTRY[(algorithm.device, algorithm.name)] = algorithm
    _ASSESSED.clear()


def algorithm_names(device: str = "cpu") -> list[str]:
    """Names of the registered algorithms of ``device``, in registration order.

    >>> algorithm_names()
    ['direct', 'im2col', 'fft', 'overlap_add', 'separable']
    >>> algorithm_names("cuda")
    ['direct', 'fft', 'im2col', 'implicit_gemm', 'overlap_add', 'separable']
    """
    return [a.name for a in _REGISTRY.values() if a.device == device]


def get_algorithm(name: str, device: str = "cpu") -> Algorithm:
    """The registered algorithm of ``device`` called ``name``; a ValueError listing the names
    otherwise."""
    try:
        return _REGISTRY[(device, name)]
    except (KeyError, TypeError):
        what = "algorithm" if device == "cpu" else f"{device} algorithm"
        elsewhere = [d for d, n in _REGISTRY if n == name and d != device]
        if elsewhere:
            where = "on the GPU (CuPy inputs or device='cuda')" if elsewhere == ["cuda"] else (
                f"on {', '.join(elsewhere)}"
            )  # fmt: skip
            raise ValueError(
                f"algorithm {name!r} runs only {where}; on {device}: "
                f"{', '.join(algorithm_names(device))}"
            ) from None
        raise ValueError(
            f"unknown {what} {name!r}; registered: {', '.join(algorithm_names(device))}"
        ) from None


def _check_device(device) -> None:
    if device not in _BUILTIN:
        raise ValueError(f"unknown device {device!r}; use 'cpu' or 'cuda'")


def _load_tuned(device: str) -> None:
    """Read ``gpuconv tune``'s constants for ``device`` from the cache, once per process."""
    if device in _SOURCE:
        return
    _SOURCE[device] = "built-in table"
    try:
        payload = _cache.load("constants", device)
    except (_arrays.CupyUnavailableError, _arrays.CudaUnavailableError):
        payload = None  # the GPU algorithms will say what is missing when run
    if payload is None:
        return
    values = payload.get("constants")
    bad = _bad_constants(device, values) or _implausible(device, values)
    if bad:
        _warn.warn(
            f"gpuconv ignores the tuned constants in {_cache.path('constants', device)}: {bad}; "
            "run `gpuconv tune` again",
            _cache.CacheWarning,
        )
        return
    _CONSTANTS[device].update({k: float(v) for k, v in values.items()})
    _SOURCE[device] = f"tuned {payload.get('created', '?')} ({_cache.path('constants', device)})"
    _ASSESSED.clear()


#: a tuned constant in a file further than this factor from the built-in one is taken for a
#: damaged file (:func:`set_constants` takes any positive value)
PLAUSIBLE = 1000.0


def _bad_constants(device: str, values) -> str | None:
    if not isinstance(values, dict):
        return "no table of constants"
    unknown = sorted(set(values) - set(_BUILTIN[device]))
    if unknown:
        return f"unknown constants {unknown}"
    for k, v in values.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            return f"constant {k} = {v!r} is not a positive number"
    return None


def plausible_range(device: str, key: str) -> tuple[float, float]:
    """The values a tuned file may hold for constant ``key`` (``gpuconv tune`` clamps to it)."""
    ref = _BUILTIN[device][key]
    return ref / PLAUSIBLE, ref * PLAUSIBLE


def _implausible(device: str, values: dict) -> str | None:
    """Why a file's constants look damaged: one too far from the built-in value."""
    for k, v in values.items():
        ref = _BUILTIN[device][k]
        lo, hi = plausible_range(device, k)
        if not lo <= v <= hi:
            return (
                f"constant {k} = {v!r} is more than {PLAUSIBLE:g}x away from the built-in "
                f"{ref:.3g} (no machine differs that much)"
            )
    return None


def constants(device: str = "cpu") -> dict[str, float]:
    """The cost model's constants in force for ``device`` (a copy): the built-in table, or what
    ``gpuconv tune`` measured on this machine (read from the cache on first use).

    >>> constants()["stream_byte"] > 0
    True
    """
    _check_device(device)
    _load_tuned(device)
    return dict(_CONSTANTS[device])


def constants_source(device: str = "cpu") -> str:
    """Where ``device``'s constants in force come from: the built-in table or a tuned file."""
    _check_device(device)
    _load_tuned(device)
    return _SOURCE[device]


def set_constants(device: str, values: dict[str, float]) -> None:
    """Replace some of ``device``'s cost constants for this process (``gpuconv tune`` saves them
    for later ones)."""
    _check_device(device)
    _load_tuned(device)
    bad = _bad_constants(device, values)
    if bad:
        raise ValueError(f"cost constants for {device}: {bad}")
    _CONSTANTS[device].update({k: float(v) for k, v in values.items()})
    _SOURCE[device] = "set in this process"
    _ASSESSED.clear()


def reset_constants(device: str = "cpu") -> None:
    """Back to the built-in table for ``device`` (ignoring any tuned file in this process)."""
    _check_device(device)
    _CONSTANTS[device] = dict(_BUILTIN[device])
    _SOURCE[device] = "built-in table"
    _ASSESSED.clear()


for _name, _module, _cost, _exact, _summary, _op_costs, _op_modules in [
    ("direct", "gpuconv.cpu.direct", _costs.direct_cost, True,
     "sliding sums, vectorised and register-blocked (numba)",
     (("forward", _costs.depthwise_cost), ("backward_data", _costs.direct_transposed_cost),
      ("backward_weight", _costs.depthwise_cost)),
     (("forward", "gpuconv.cpu.direct_depthwise"),
      ("backward_data", "gpuconv.cpu.direct_transposed"),
      ("backward_weight", "gpuconv.cpu.direct_depthwise"))),
    ("im2col", "gpuconv.cpu.im2col", _costs.im2col_cost, True,
     "column matrix (numba) times the kernel matrix (BLAS)",
     (("backward_data", _costs.col2im_cost), ("backward_weight", _costs.im2col_weight_cost)),
     ()),
    ("fft", "gpuconv.cpu.fft", _costs.fft_cost, False,
     "one transform of the whole padded input (scipy.fft, all cores)", (), ()),
    ("overlap_add", "gpuconv.cpu.overlap_add", _costs.overlap_add_cost, False,
     "batched transforms of blocks, kernel spectrum once (scipy.fft)", (), ()),
    ("separable", "gpuconv.cpu.separable", _costs.separable_cost, False,
     "a rank-1 kernel as one 1-D pass per axis (numba)", (), ()),
]:  # fmt: skip
    register(Algorithm(_name, "cpu", _module, _cost, _exact, _summary, _op_costs, _op_modules))

for _name, _cost, _exact, _summary, _op_costs in [
    ("direct", _cuda_direct_cost, True,
     "sliding sums in a CUDA kernel (tiled 2-D fast path, generic N-d kernel)",
     (("backward_data", _cuda_direct_transposed_cost),)),
    ("fft", _cuda_fft_cost, False, "cuFFT transforms and a spectral-product kernel", ()),
    ("im2col", _cuda_im2col_cost, True, "column matrix in a CUDA kernel times the kernel (cuBLAS)",
     (("backward_data", _cuda_col2im_cost), ("backward_weight", _cuda_im2col_weight_cost))),
    ("implicit_gemm", _cuda_implicit_gemm_cost, True,
     "implicit GEMM: the column matrix gathered into shared memory, never written (split K when "
     "the tiles are few)", ()),
    ("overlap_add", _cuda_overlap_add_cost, False,
     "overlap-save: batched cuFFT tiles, gather / scatter kernels, the spectral product", ()),
    ("separable", _cuda_separable_cost, False,
     "a rank-1 kernel as one 1-D CUDA pass per axis (factors found on the host)", ()),
]:  # fmt: skip
    register(Algorithm(_name, "cuda", f"gpuconv.cuda.{_name}", _cost, _exact, _summary, _op_costs))


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
    op: str = "forward"

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
        if self.op != "forward":
            what = {"backward_data": "dx from dy and w", "backward_weight": "dw from x and dy"}
            head = head.replace("Plan:", f"Plan ({self.op}, {what[self.op]}):", 1)
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
    op: str = "forward",
) -> Plan:
    """Rank every algorithm of ``device`` that can do ``op`` on ``spec`` by estimated time.

    ``kernel``, when given, lets data-dependent algorithms (separable) say whether they apply
    (for ``op='backward_weight'`` pass ``dy``, the operand that plays the kernel's part).
    ``exact`` keeps only algorithms that sum exactly (integers beyond float64's 2**53).

    >>> from gpuconv._spec import ConvSpec
    >>> choose(ConvSpec(in_shape=(1024, 1024), kernel_shape=(3, 3))).algorithm
    'direct'
    """
    _check_op(op)
    cands = []
    for name in algorithm_names(device):
        alg = _REGISTRY[(device, name)]
        if allowed is not None and name not in allowed:
            continue
        if exact and not alg.exact:
            cands.append(Candidate(name, None, "rounds; integer values too large for float64"))
            continue
        reason, seconds = _assess(alg, spec, op)
        if reason is None and kernel is not None and hasattr(alg._impl(), "supports_kernel"):
            reason = alg.supports(spec, kernel, op)
        cands.append(Candidate(name, None if reason else seconds, reason))
    ok = sorted((c for c in cands if c.seconds is not None), key=lambda c: c.seconds)
    if not ok:
        why = "; ".join(f"{c.name}: {c.reason}" for c in cands)
        what = "this problem" if op == "forward" else f"{op} of this problem"
        raise ValueError(f"no {device} algorithm supports {what} ({why})")
    best = ok[0]
    if len(ok) > 1:
        runner = ok[1]
        reason = (
            f"lowest estimate, {_fmt_seconds(best.seconds)}; next is {runner.name} at "
            f"{_fmt_seconds(runner.seconds)} ({runner.seconds / best.seconds:.1f}x)"
        )
    else:
        reason = f"the only algorithm that applies ({_fmt_seconds(best.seconds)})"
    return Plan(spec, best.name, reason, tuple(cands), op)


def _assess(alg: Algorithm, spec: ConvSpec, op: str) -> tuple[str | None, float | None]:
    key = (alg.device, alg.name, op, spec)
    hit = _ASSESSED.get(key)
    if hit is None:
        reason = alg.supports(spec, None, op)
        hit = (reason, None if reason else alg.estimate(spec, op))
        if len(_ASSESSED) >= _ASSESSED_MAX:
            _ASSESSED.clear()
        _ASSESSED[key] = hit
    return hit


def measure(
    spec: ConvSpec,
    x,
    w,
    names: list[str] | None = None,
    repeat: int = 3,
    op: str = "forward",
    device: str = "cpu",
    skip_factor: float | None = None,
    stat: str = "median",
) -> dict[str, float]:
    """Median (``stat='min'``: fastest) time in seconds of each named (default: every
    supporting) algorithm of ``device``.

    ``x`` and ``w`` are the operands of ``op`` (see :func:`execute`), NumPy arrays for the CPU
    and CuPy arrays for ``device='cuda'`` (timed with CUDA events).  With ``skip_factor``,
    algorithms estimated more than that many times slower than the best estimate are not run.

    >>> import numpy as np
    >>> from gpuconv._spec import ConvSpec
    >>> spec = ConvSpec(in_shape=(64,), kernel_shape=(3,))
    >>> sorted(measure(spec, np.ones((1, 1, 64)), np.ones((1, 1, 3)), ["direct", "fft"]))
    ['direct', 'fft']
    """
    from ._timing import time_on

    _check_op(op)
    est = {}
    for name in names or algorithm_names(device):
        alg = get_algorithm(name, device)
        if alg.supports(spec, w, op) is None:
            est[name] = alg.estimate(spec, op)
    if skip_factor is not None and est:
        best = min(est.values())
        est = {n: e for n, e in est.items() if e <= skip_factor * best}
    times = {}
    for name in est:
        alg = get_algorithm(name, device)
        run = lambda alg=alg: alg.run(spec, x, w, op)  # noqa: E731
        times[name] = time_on(device, run, repeat, warmup=1, stat=stat)
    return times


#: with method='benchmark', candidates estimated this many times slower than the best estimate
#: are not timed (no cost-model error this large was seen; timing them would only cost time)
BENCHMARK_SKIP = 10.0
#: most problem signatures remembered per device (the oldest are forgotten first)
AUTOTUNE_MAX = 4096

#: device ('cpu', or 'cuda' and the GPU's name, so that two GPU models never share a winner) ->
#: signature -> {"algorithm": winner, "seconds": {name: median seconds}}, oldest first
_AUTOTUNED: dict[str, dict[str, dict]] = {}
#: held while a remembered-choices table is read from disk, changed or bounded (threads share it)
_AUTOTUNE_LOCK = threading.RLock()


def _signature(spec: ConvSpec, op: str, exact: bool, allowed, eligible) -> str:
    fields = {k: getattr(spec, k) for k in spec.__dataclass_fields__}
    fields["dtype"] = str(spec.dtype)
    what = [op, bool(exact), sorted(allowed) if allowed else None, sorted(eligible), fields]
    return json.dumps(what, sort_keys=True, default=list)


def _table_key(device: str) -> str:
    if device == "cpu":
        return "cpu"
    from . import _arrays

    try:
        return _cache.device_id(device)
    except (_arrays.CupyUnavailableError, _arrays.CudaUnavailableError):
        return device  # measure() will say what is missing


def _autotune_table(device: str) -> dict[str, dict]:
    key = _table_key(device)
    with _AUTOTUNE_LOCK:
        table = _AUTOTUNED.get(key)
        if table is None:
            table = _valid_autotune(_read_autotune(device), device)
            _AUTOTUNED[key] = table
        return table


def _read_autotune(device: str, quiet: bool = False):
    from . import _arrays

    try:
        return _cache.load("autotune", device, quiet=quiet)
    except (_arrays.CupyUnavailableError, _arrays.CudaUnavailableError):
        return None  # measure() will say what is missing


def _valid_autotune(payload, device: str, quiet: bool = False) -> dict[str, dict]:
    if payload is None:
        return {}
    entries = payload.get("entries")
    if not isinstance(entries, dict):
        if not quiet:
            _cache.ignored("autotune", device, "it holds no table of entries")
        return {}
    good = {
        k: v
        for k, v in entries.items()
        if isinstance(v, dict) and isinstance(v.get("algorithm"), str)
    }
    if len(good) < len(entries) and not quiet:
        why = f"{len(entries) - len(good)} of its {len(entries)} entries are not choices"
        _cache.ignored("autotune", device, why)
    return _bounded(good)


def _bounded(table: dict[str, dict]) -> dict[str, dict]:
    """``table`` less its oldest entries beyond :data:`AUTOTUNE_MAX` (in place)."""
    while len(table) > AUTOTUNE_MAX:
        table.pop(next(iter(table)))
    return table


def _save_autotune(device: str, key: str, entry: dict) -> None:
    # merge with what other processes saved meanwhile (the first read already warned about a
    # bad file), then replace the file atomically
    merged = _valid_autotune(_read_autotune(device, quiet=True), device, quiet=True)
    with _AUTOTUNE_LOCK:
        mine = dict(_autotune_table(device))
    for k in mine:  # this process's choices are the newest
        merged.pop(k, None)
    merged.update(mine)
    merged.pop(key, None)
    merged[key] = entry
    try:
        _cache.save("autotune", device, {"entries": _bounded(merged)})
    except OSError as e:
        _warn.warn(
            f"gpuconv could not save benchmarked choices to {_cache.cache_dir()} ({e}); they "
            "are remembered in this process only (set GPUCONV_CACHE_DIR to a writable folder)",
            _cache.CacheWarning,
        )


def forget_benchmarks(device: str | None = None) -> None:
    """Forget, in this process, every choice ``method='benchmark'`` made (the cache file stays)."""
    if device is None:
        _AUTOTUNED.clear()
    else:
        for key in [k for k in _AUTOTUNED if k == device or k.startswith(f"{device} ")]:
            del _AUTOTUNED[key]


def benchmark(
    spec: ConvSpec,
    x,
    w,
    *,
    op: str = "forward",
    exact: bool = False,
    allowed: tuple[str, ...] | None = None,
    device: str = "cpu",
    repeat: int = 3,
) -> str:
    """The fastest algorithm for ``spec``, timed on these operands the first time this problem
    signature is seen, then remembered (in this process and in the cache file
    ``autotune-<device>.json``), like ``torch.backends.cudnn.benchmark``.

    The signature is the problem (shapes, stride, padding, dtype, op, ...) and the set of
    algorithms that apply to it, so a rank-1 kernel (where separable applies) and a full one of
    the same shape are timed separately.  Candidates estimated more than :data:`BENCHMARK_SKIP`
    times slower than the best estimate are not timed.

    >>> import numpy as np
    >>> from gpuconv._spec import ConvSpec
    >>> spec = ConvSpec(in_shape=(256, 256), kernel_shape=(3, 3))
    >>> benchmark(spec, np.ones((1, 1, 256, 256)), np.ones((1, 1, 3, 3))) in algorithm_names()
    True
    """
    plan = choose(spec, w, exact=exact, device=device, allowed=allowed, op=op)
    eligible = sorted(plan.estimates)
    if len(eligible) == 1:
        return eligible[0]
    key = _signature(spec, op, exact, allowed, eligible)
    table = _autotune_table(device)
    hit = table.get(key)
    if hit is not None and hit["algorithm"] in eligible:
        return hit["algorithm"]
    best = min(plan.estimates.values())
    names = [n for n in eligible if plan.estimates[n] <= BENCHMARK_SKIP * best]
    if len(names) == 1:
        return names[0]
    if device == "cuda":
        from ._arrays import require_cupy

        xp = require_cupy()
        x, w = xp.asarray(x, dtype=spec.dtype), xp.asarray(w, dtype=spec.dtype)
    times = measure(spec, x, w, names, repeat=repeat, op=op, device=device)
    winner = min(times, key=times.get)
    entry = {"algorithm": winner, "seconds": times}
    with _AUTOTUNE_LOCK:
        table.pop(key, None)
        table[key] = entry
        _bounded(table)
    _save_autotune(device, key, entry)
    return winner


def execute(
    spec: ConvSpec,
    x: np.ndarray,
    w: np.ndarray,
    algorithm: str = "auto",
    *,
    exact: bool = False,
    op: str = "forward",
    device: str = "cpu",
    epilogue: tuple | None = None,
    allowed: tuple[str, ...] | None = None,
    with_name: bool = False,
):
    """Solve ``spec`` for inputs ``x`` and ``w`` with ``algorithm``: a registered name, 'auto'
    (the cost model's choice among ``allowed``, default all; out of memory, the next one by
    estimate) or 'benchmark' (the fastest when timed, see :func:`benchmark`).  With
    ``with_name``, returns ``(result, name of the algorithm that computed it)``.

    ``epilogue`` (forward only): ``(bias or None, activation code, slope)``, see
    :meth:`Algorithm.run`; the bias must be on the computing device.

    ``device='cuda'`` runs a CUDA algorithm: the operands are taken as CuPy arrays (NumPy ones are
    copied to the GPU) and a CuPy array comes back.

    ``op`` (see the module docstring) says what the two operands are and what comes back:
    ``'forward'``: ``(x, w) -> y``; ``'backward_data'``: ``(dy, w) -> dx``;
    ``'backward_weight'``: ``(x, dy) -> dw``.

    >>> import numpy as np
    >>> from gpuconv._spec import ConvSpec
    >>> spec = ConvSpec(in_shape=(3,), kernel_shape=(2,), pad_lo=1, pad_hi=1, flip=True)
    >>> execute(spec, np.array([[[1.0, 2.0, 3.0]]]), np.array([[[1.0, 1.0]]]))[0, 0]
    array([1., 3., 5., 3.])
    """
    _check_op(op)
    if device == "cuda":
        xp = _arrays.require_cupy()  # takes CuPy arrays as they are, copies anything else over
        bias = epilogue[0] if epilogue else None
        # everything runs on the GPU the operands live on, whichever is current
        with xp.cuda.Device(_gpu_of(xp, x, w, bias)):
            y, name = _execute(spec, xp, x, w, algorithm, exact, op, device, epilogue, allowed)
    elif device != "cpu":
        raise ValueError(f"unknown device {device!r}; use 'cpu' or 'cuda'")
    else:
        y, name = _execute(spec, np, x, w, algorithm, exact, op, device, epilogue, allowed)
    return (y, name) if with_name else y


def _gpu_of(cp, *arrays) -> int:
    """The GPU the CuPy operands live on (the current one when none is a CuPy array)."""
    ids = sorted({a.device.id for a in arrays if _arrays.is_cupy_array(a)})
    if len(ids) > 1:
        raise ValueError(
            f"the operands live on different GPUs {ids}; copy them to one first (cupy.asarray "
            "inside `with cupy.cuda.Device(i):` copies an array to GPU i)"
        )
    return ids[0] if ids else cp.cuda.Device().id


def _execute(spec, xp, x, w, algorithm, exact, op, device, epilogue, allowed=None):
    (na, sa), (nb, sb) = {
        "forward": (("x", spec.x_shape), ("w", spec.w_shape)),
        "backward_data": (("dy", spec.y_shape), ("w", spec.w_shape)),
        "backward_weight": (("x", spec.x_shape), ("dy", spec.y_shape)),
    }[op]
    x, w = xp.asarray(x), xp.asarray(w)
    if x.shape != sa or w.shape != sb:
        raise ValueError(
            f"{na} {x.shape} and {nb} {w.shape} do not match the problem's {sa} and {sb}"
        )
    x = xp.asarray(x, dtype=spec.dtype)
    w = xp.asarray(w, dtype=spec.dtype)
    fallbacks: list[str] = []
    if algorithm == "auto":
        plan = choose(spec, w, exact=exact, op=op, device=device, allowed=allowed)
        algorithm = plan.algorithm
        fallbacks = sorted((n for n in plan.estimates if n != algorithm), key=plan.estimates.get)
    elif algorithm == "benchmark":
        algorithm = benchmark(spec, x, w, exact=exact, op=op, device=device, allowed=allowed)
    elif allowed is not None and algorithm not in allowed:
        raise ValueError(f"algorithm {algorithm!r} is not among the allowed {list(allowed)}")
    alg = get_algorithm(algorithm, device)
    reason = alg.supports(spec, w, op)
    if reason is not None:
        what = "solve this problem" if op == "forward" else f"do {op} of this problem"
        raise ValueError(f"algorithm {algorithm!r} cannot {what}: {reason}")
    if device != "cuda":
        return _run_on_cpu(spec, x, w, op, epilogue, alg, fallbacks)
    return _run_on_gpu(spec, x, w, op, epilogue, alg, fallbacks)


def _run_on_cpu(spec, x, w, op, epilogue, alg, fallbacks):
    """``alg.run`` on the CPU; out of memory (a transform's padded spectra can take many times
    the input), 'auto' tries the next algorithms by estimate (overlap-add's blocks and direct
    need little beyond the output), then raises a MemoryError that says what to do."""
    from ._grids import label

    tried, last = [], None
    for name in [alg.name, *fallbacks]:
        a = get_algorithm(name, "cpu")
        if name != alg.name and a.supports(spec, w, op) is not None:
            continue
        try:
            return a.run(spec, x, w, op, epilogue), name
        except MemoryError as e:
            tried.append(f"{name}: {type(e).__name__}: {e}"[:200])
            last = e
    need = sum(math.prod(s) for s in (spec.x_shape, spec.w_shape, spec.y_shape))
    names = [t.split(":")[0] for t in tried]
    light = [
        n
        for n in ("overlap_add", "direct")
        if n not in names
        and get_algorithm(n).supports(spec, w, op) is None
        and (get_algorithm(n).exact or spec.dtype.kind in "fc")
    ]
    hint = f", name a lighter algorithm ({' or '.join(light)})" if light else ""
    raise MemoryError(
        f"out of memory for {label(spec)} ({op}; its operands alone take "
        f"{need * spec.dtype.itemsize / 2**20:.0f} MiB); tried {'; '.join(tried)}. Free "
        f"memory, split the batch{hint}, or process the array in chunks (gpuconv.dask)"
    ) from last


def _gpu_out_of_memory(e: BaseException) -> bool:
    """Whether ``e`` is CuPy's or cuFFT's way of saying the device ran out of memory."""
    name = type(e).__name__
    return name == "OutOfMemoryError" or (name == "CuFFTError" and "ALLOC_FAILED" in str(e))


def _release_gpu_caches(cp) -> None:
    """Give back what CuPy keeps for reuse: cached blocks of its memory pool and cuFFT plans."""
    pool = getattr(cp, "get_default_memory_pool", None)
    if pool is not None:
        pool().free_all_blocks()
    cache = getattr(getattr(getattr(cp, "fft", None), "config", None), "get_plan_cache", None)
    if cache is not None:
        cache().clear()


def _run_on_gpu(spec, x, w, op, epilogue, alg, fallbacks):
    """``alg.run`` on the GPU; out of memory, it frees CuPy's caches and tries once more, then
    (for 'auto') the next algorithms by estimate, and at last raises a MemoryError that says what
    the problem needed and what to do."""
    from ._arrays import require_cupy
    from ._grids import label

    cp = require_cupy()
    tried = []
    for name in [alg.name, *fallbacks]:
        a = get_algorithm(name, "cuda")
        if name != alg.name and a.supports(spec, w, op) is not None:
            continue
        for _ in range(2 if name == alg.name else 1):
            try:
                return a.run(spec, x, w, op, epilogue), name
            except Exception as e:
                if not _gpu_out_of_memory(e):
                    raise
                tried.append(f"{name}: {type(e).__name__}: {e}")
                _release_gpu_caches(cp)
    need = sum(math.prod(s) for s in (spec.x_shape, spec.w_shape, spec.y_shape))
    raise MemoryError(
        f"the GPU ran out of memory for {label(spec)} ({op}; its operands alone take "
        f"{need * spec.dtype.itemsize / 2**20:.0f} MiB) with every algorithm tried, after "
        f"freeing CuPy's cached blocks and cuFFT plans: {'; '.join(tried)}. Free GPU memory "
        "(other arrays, other processes), split the batch, or process the array in chunks "
        "(gpuconv.dask)"
    ) from None
