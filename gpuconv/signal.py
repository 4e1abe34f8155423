"""Drop-ins for scipy.signal's convolution functions, with scipy 1.17's semantics.

Each public function is thin: it checks its arguments the way scipy does (same exception types
and messages), maps the call onto one :class:`~gpuconv._spec.ConvSpec` and lets
:mod:`gpuconv.dispatch` solve it.  The argument handling follows scipy's ``_signaltools.py``
(BSD-3-Clause, Copyright (c) 2001-2002 Enthought, Inc. and 2003-2024 SciPy Developers) so that the
shapes, dtypes and corner cases agree; the computation is gpuconv's own.

Arrays whose result dtype gpuconv does not compute natively (float16 for the sum-based methods,
long double, object) are handed to scipy.signal unchanged, so their semantics are scipy's by
construction.

Devices.  Every front takes a keyword-only ``device``: ``None`` (the default) follows the inputs
(CuPy arrays are computed on the GPU and a CuPy array comes back), ``'cuda'`` also moves NumPy
inputs to the GPU and returns NumPy, ``'cpu'`` refuses CuPy inputs.  The argument checks run on
whichever arrays were given; :func:`_solve` is the one place that picks the device's algorithms.
Inputs that only scipy computes (exotic dtypes, empty arrays) are a TypeError with CuPy inputs.
"""

from __future__ import annotations

import math
import operator
import warnings
from collections.abc import Sequence

import numpy as np

from . import _arrays, _warn, dispatch
from ._spec import ConvSpec

__all__ = [
    "choose_conv_method",
    "convolve",
    "convolve2d",
    "correlate",
    "correlate2d",
    "fftconvolve",
    "oaconvolve",
    "plan",
]

_MODES = ("valid", "same", "full")
_BOUNDARIES = {
    "fill": "fill",
    "pad": "fill",
    "wrap": "wrap",
    "circular": "wrap",
    "symm": "symmetric",
    "symmetric": "symmetric",
}
_NATIVE = {np.dtype(t) for t in (np.float32, np.float64, np.complex64, np.complex128)}


# ---------------------------------------------------------------------------------------------
# dtypes


def _native(dt: np.dtype) -> bool:
    """Whether gpuconv computes results of dtype ``dt`` itself (exactly, for integers)."""
    return dt in _NATIVE or (dt.kind in "biu" and dt.itemsize <= 8)


def _compute_dtype(rt: np.dtype) -> np.dtype:
    """Integers and bools sum exactly in int64 (wrap-around then matches any narrower type)."""
    return np.dtype(np.int64) if rt.kind in "biu" else rt


def _exact_needed(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether an integer convolution of ``a`` with ``b`` (every axis convolved) must be summed
    exactly, because a float64 FFT's error could reach 0.5 and round a sample to the wrong
    integer.

    scipy's rule (``max|a| max|b| min(size) < 2**53``) only says the sums fit in float64; an
    FFT's rounding error is larger, and with it scipy's integers can be off by several units.
    The bound here is rigorous.  A float64 FFT of length ``N`` errs by at most
    ``k eps ||x||_2 sqrt(N)`` in 2-norm and by ``k eps ||x||_1`` in each frequency
    (``k = 5 log2 N``).  With ``u`` the larger input and ``v`` the smaller, the two transforms,
    the product and the inverse put the result within ``(3k + 1) eps ||u||_2 ||v||_1`` of the
    exact one.  ``||u||_2 <= max|u| sqrt(size)`` and ``||v||_1 <= max|v| size``.  Images and
    counts (8- or 16-bit values, small kernels) stay far below it and may use an FFT.

    Only integer results ask for it (float inputs may hold NaN; bool sums are always small).
    """
    if np.result_type(a.dtype, b.dtype).kind not in "iu":
        return False
    amax = _largest_magnitude(a)
    bmax = _largest_magnitude(b)
    if amax == 0 or bmax == 0:
        return False
    n = math.prod(p + q - 1 for p, q in zip(a.shape, b.shape))
    k = 5.0 * math.log2(max(n, 2))
    norms = float(amax) * float(bmax) * math.sqrt(max(a.size, b.size)) * min(a.size, b.size)
    return (3.0 * k + 1.0) * 2.0**-52 * norms >= 0.25  # rounding needs the error below 0.5


def _largest_magnitude(a: np.ndarray) -> int:
    """max |a| as a Python int (abs() of an int64 array wraps at -2**63)."""
    return max(abs(int(a.max())), abs(int(a.min()))) if a.size else 0


def _finish(y: np.ndarray, rt: np.dtype, algorithm: str) -> np.ndarray:
    """Cast a computed result to the result dtype (integers rounded if a float path made them)."""
    xp = _arrays.xp_of(y)
    if rt == np.bool_:
        return xp.ascontiguousarray(y != 0)
    if y.dtype.kind == "f" and rt.kind in "iu":
        y = xp.rint(y)
    return xp.ascontiguousarray(y.astype(rt, copy=False))


# ---------------------------------------------------------------------------------------------
# devices


def _device(device, *arrays) -> str:
    """'cpu' or 'cuda': where a front with these inputs and ``device=`` computes."""
    return _arrays.resolve_device(*arrays, device=device)


def _asarray(a):
    """``a`` as an array: a CuPy array stays one (NumPy cannot convert it implicitly)."""
    return a if _arrays.is_cupy_array(a) else np.asarray(a)


def _xp(*arrays):
    return _arrays.xp_of(next((a for a in arrays if _arrays.is_cupy_array(a)), None))


# ---------------------------------------------------------------------------------------------
# the one place where a scipy-style call becomes a canonical problem


def _algorithm_names() -> list[str]:
    """Every registered algorithm name, CPU and CUDA (the device is known only later)."""
    return list(dict.fromkeys(dispatch.algorithm_names("cpu") + dispatch.algorithm_names("cuda")))


def _method_names() -> tuple[str, ...]:
    return ("auto", "direct", "fft", "benchmark", *_algorithm_names())


def _check_method(method) -> None:
    if not isinstance(method, str) or method not in _method_names():
        raise ValueError(
            "Acceptable method flags are 'auto', 'direct', or 'fft'."
            " (gpuconv also accepts 'benchmark' and"
            f" {', '.join(_algorithm_names())}; got {method!r})"
        )


def _layout(in1: np.ndarray, in2: np.ndarray, axes: Sequence[int]):
    """Map the broadcast (non-convolved) axes onto batch, channels or groups.

    Returns (x, w, spec kwargs, broadcast shape) with x of shape (batch, c_in, *spatial) and w of
    shape (c_out, c_in // groups, *kernel).
    """
    nd = in1.ndim
    rest = [a for a in range(nd) if a not in axes]
    order = rest + list(axes)
    a = in1.transpose(order)
    b = in2.transpose(order)
    bshape = tuple(max(in1.shape[i], in2.shape[i]) for i in rest)
    nb = math.prod(bshape)
    sp1, sp2 = a.shape[len(rest) :], b.shape[len(rest) :]
    if all(in2.shape[i] == 1 for i in rest):
        x = a.reshape((nb, 1) + sp1)
        w = b.reshape((1, 1) + sp2)
        kw = dict(batch=nb)
    elif all(in1.shape[i] == 1 for i in rest):
        x = a.reshape((1, 1) + sp1)
        w = b.reshape((nb, 1) + sp2)
        kw = dict(c_out=nb)
    else:
        x = _arrays.xp_of(a).broadcast_to(a, bshape + sp1).reshape((1, nb) + sp1)
        w = _arrays.xp_of(b).broadcast_to(b, bshape + sp2).reshape((nb, 1) + sp2)
        kw = dict(c_in=nb, c_out=nb, groups=nb)
    return x, w, kw, bshape, rest


def _solve(
    in1: np.ndarray,
    in2: np.ndarray,
    axes: Sequence[int],
    pad_lo: Sequence[int],
    pad_hi: Sequence[int],
    flip: bool,
    method: str,
    out_dtype: np.dtype,
    exact: bool = False,
    plan_only: bool = False,
    fallback: str | None = None,
    device: str = "cpu",
):
    """Solve a linear convolution (``flip``) or correlation of in1 with in2 along ``axes``.

    The other axes broadcast.  A named ``method`` that cannot solve the problem gives way to
    ``fallback`` when one is named (oaconvolve's single block is an FFT).  Returns the result in
    ``out_dtype`` with the axes in their original order, or the dispatcher's Plan when
    ``plan_only``.  ``device`` ('cpu' or 'cuda', see :func:`_device`) picks the algorithms: on
    'cuda' the result is a CuPy array when an input was one, else it is copied back to the host.
    """
    cd = _compute_dtype(out_dtype)
    x, w, kw, bshape, rest = _layout(in1, in2, axes)
    spec = ConvSpec(
        in_shape=x.shape[2:],
        kernel_shape=w.shape[2:],
        pad_lo=tuple(pad_lo),
        pad_hi=tuple(pad_hi),
        flip=flip,
        dtype=cd,
        **kw,
    )
    allowed = ("direct", "im2col") if method == "direct" else None
    if allowed and cd.kind == "c" and not plan_only and not _all_finite(x, w):
        # BLAS's complex products turn inf * (1 + 0j) into nan + nanj where scipy's direct sum
        # (and gpuconv's) gives inf + nanj
        allowed = ("direct",)
    if method == "fft":
        allowed = ("fft",)
    if fallback and method not in ("auto", "direct", "benchmark"):
        if (
            method not in dispatch.algorithm_names(device)
            or dispatch.get_algorithm(method, device).supports(spec, w) is not None
        ):
            method = fallback
    if plan_only:
        return dispatch.choose(spec, w, exact=exact, allowed=allowed, device=device)
    x = x.astype(spec.dtype, copy=False)
    w = w.astype(spec.dtype, copy=False)
    if method == "benchmark":
        name = dispatch.benchmark(spec, x, w, exact=exact, device=device)
    else:
        name = "auto" if method in ("auto", "direct") else method
    y, name = dispatch.execute(
        spec, x, w, name, exact=exact, allowed=allowed, device=device, with_name=True
    )
    # (batch, c_out, *out) back to the broadcast axes followed by the convolved axes
    y = y.reshape(bshape + spec.out_shape)
    nd = in1.ndim
    order = rest + list(axes)
    inverse = [order.index(i) for i in range(nd)]
    y = _finish(y.transpose(inverse), out_dtype, name)
    if device == "cuda" and not (_arrays.is_cupy_array(in1) or _arrays.is_cupy_array(in2)):
        y = _arrays.to_host(y)  # device='cuda' with host inputs: the result goes back
    return y, name


def _all_finite(*arrays) -> bool:
    return all(bool(_arrays.xp_of(a).isfinite(a).all()) for a in arrays)


def _mode_window(mode: str, n1: int, n2: int) -> tuple[int, int]:
    """(start, length) of scipy's full / same / valid output within the full convolution."""
    if mode == "full":
        return 0, n1 + n2 - 1
    if mode == "same":
        return (n2 - 1) // 2, n1
    return n2 - 1, n1 - n2 + 1


def _solve_window(
    a, b, axes, mode, method, out_dtype, exact=False, plan_only=False, fallback=None, device="cpu"
):
    """Convolve a with b along ``axes`` (other axes broadcast), keeping scipy's ``mode`` window.

    Convolution commutes, so the larger operand becomes the canonical input and the smaller the
    kernel, whichever argument each was; the input is cropped to the samples the window reads
    and the rest is zero padding (so a short in1 with a long in2 costs what the reverse does).
    """
    windows = [_mode_window(mode, a.shape[i], b.shape[i]) for i in axes]
    span = [math.prod(t.shape[i] for i in axes) for t in (a, b)]
    x, w = (a, b) if span[0] >= span[1] else (b, a)
    if w.dtype.kind in "fc" and not np.isfinite(w).all() and np.isfinite(x).all():
        # a NaN/inf belongs in the input, where the zero padding never multiplies it: terms
        # outside the inputs do not exist in scipy's sums (0 * inf would be NaN)
        x, w = w, x
    crop = [slice(None)] * x.ndim
    pad_lo, pad_hi = [], []
    for ax, (start, m) in zip(axes, windows):
        n, k = x.shape[ax], w.shape[ax]
        lo, hi = max(0, start - k + 1), min(n, start + m)
        crop[ax] = slice(lo, hi)
        pad_lo.append(k - 1 + lo - start)
        pad_hi.append(m + k - 1 - (hi - lo) - pad_lo[-1])
    return _solve(
        x[tuple(crop)], w, axes, pad_lo, pad_hi, True, method, out_dtype,
        exact=exact, plan_only=plan_only, fallback=fallback, device=device,
    )  # fmt: skip


def _mode_pads(mode: str, n: int, k: int) -> tuple[int, int]:
    """Padding of a convolution (kernel flipped) giving scipy's full / same / valid window."""
    if mode == "full":
        return k - 1, k - 1
    if mode == "same":
        start = (k - 1) // 2
        return k - 1 - start, start
    return 0, 0


def _inputs_swap_needed(mode, shape1, shape2, axes=None) -> bool:
    if mode != "valid" or not shape1:
        return False
    if axes is None:
        axes = range(len(shape1))
    ok1 = all(shape1[i] >= shape2[i] for i in axes)
    ok2 = all(shape2[i] >= shape1[i] for i in axes)
    if not (ok1 or ok2):
        raise ValueError(
            "For 'valid' mode, one must be at least as large as the other in every dimension"
            f" (shapes {tuple(shape1)} and {tuple(shape2)})"
        )
    return not ok1


def _reverse_and_conj(x: np.ndarray) -> np.ndarray:
    x = x[(slice(None, None, -1),) * x.ndim]
    return np.conj(x) if x.dtype.kind == "c" else x


def _scipy(*arrays):
    """scipy.signal, for inputs gpuconv hands to it (host arrays only)."""
    for a in arrays:
        if _arrays.is_cupy_array(a):
            raise TypeError(
                f"gpuconv computes these inputs (dtype {a.dtype}, shape {a.shape}) with "
                "scipy.signal on the host only, not for CuPy arrays; pass NumPy arrays "
                "(a.get() copies a CuPy array to the host)"
            )
    import scipy.signal

    return scipy.signal


# ---------------------------------------------------------------------------------------------
# convolve / correlate (N-d)


def _prepare_nd(in1, in2, mode, method, correlate):
    """Common checks of convolve/correlate.  Returns (volume, kernel, result dtype) or a value."""
    volume = _asarray(in1)
    kernel = _asarray(in2)
    if volume.ndim == kernel.ndim == 0:
        return None, None, (volume * (np.conj(kernel) if correlate else kernel))
    if volume.ndim != kernel.ndim:
        if correlate:
            raise ValueError(
                "in1 and in2 should have the same dimensionality"
                f" (in1 has shape {volume.shape}, in2 {kernel.shape})"
            )
        raise ValueError(
            "volume and kernel should have the same dimensionality"
            f" (in1 has shape {volume.shape}, in2 {kernel.shape})"
        )
    if mode not in _MODES:
        raise ValueError(f"Acceptable mode flags are 'valid', 'same', or 'full', not mode={mode!r}")
    _check_method(method)
    return volume, kernel, None


def _conv_nd(volume, kernel, mode, method, plan_only=False, device="cpu"):
    """convolve() once arguments are checked and correlate() is rewritten as a convolution."""
    if _inputs_swap_needed(mode, volume.shape, kernel.shape):
        volume, kernel = kernel, volume
    rt = np.result_type(volume.dtype, kernel.dtype)
    if not _native(rt) or volume.dtype.kind not in "biufc" or kernel.dtype.kind not in "biufc":
        if plan_only:
            raise TypeError(f"gpuconv plans no computation for dtype {rt}; scipy.signal runs it")
        sp = _scipy(volume, kernel)
        return sp.convolve(volume, kernel, mode=mode, method=_scipy_method(method)), "scipy"
    axes = list(range(volume.ndim))
    exact = _exact_needed(volume, kernel)
    if (
        method == "fft"
        and rt.kind in "biu"
        and all(min(p, q) == 1 for p, q in zip(volume.shape, kernel.shape))
    ):
        # scipy's fftconvolve transforms no axis where an input has length 1; with none left it
        # multiplies in the integer dtype, exactly (and wrapping), and so does direct
        method, exact = "direct", True
    # overlap-add over one block that covers the input is the FFT convolution (as oaconvolve)
    fallback = "fft" if method == "overlap_add" else None
    return _solve_window(
        volume, kernel, axes, mode, method, rt, exact, plan_only, fallback=fallback, device=device
    )


def _scipy_method(method: str) -> str:
    """The scipy method of a gpuconv method, for dtypes gpuconv hands to scipy.signal."""
    if method in ("fft", "overlap_add"):
        return "fft"
    return "auto" if method in ("auto", "benchmark") else "direct"


def convolve(in1, in2, mode: str = "full", method: str = "auto", *, device=None) -> np.ndarray:
    """Convolve two N-dimensional arrays, as ``scipy.signal.convolve``.

    ``method`` is 'auto' (gpuconv's cost model), 'direct', 'fft', 'benchmark' (time the
    candidates once per problem signature and remember the fastest, in this process and on disk)
    or any gpuconv algorithm name (``gpuconv.dispatch.algorithm_names()``; on the GPU
    ``algorithm_names('cuda')``).  ``device``: None (follow the inputs), 'cpu' or 'cuda' (see
    the module docstring).

    >>> convolve([1, 2, 3], [0, 1, 0.5])
    array([0. , 1. , 2.5, 4. , 1.5])
    """
    dev = _device(device, in1, in2)
    volume, kernel, scalar = _prepare_nd(in1, in2, mode, method, correlate=False)
    if scalar is not None:
        return scalar
    if volume.size == 0 or kernel.size == 0:  # scipy's direct answer or error for empty inputs
        sp = _scipy(volume, kernel)
        return sp.convolve(volume, kernel, mode=mode, method="direct")
    if _scipy_direct_1d(volume, kernel, method, dev):
        return _scipy(volume, kernel).convolve(volume, kernel, mode=mode, method="direct")
    out, name = _conv_nd(volume, kernel, mode, method, device=dev)
    _warn_non_finite(out, name)
    return out


def _scipy_direct_1d(volume, kernel, method: str, device: str) -> bool:
    """Whether scipy's 1-D ``method='direct'`` answer can differ from gpuconv's: only when both
    inputs hold NaN/inf (gpuconv puts a lone one in the input, where the zero padding never
    multiplies it; with two, the kernel's would, where scipy's ``numpy.convolve`` does not).
    scipy then computes it, as it would."""
    if method != "direct" or device != "cpu" or volume.ndim != 1 or kernel.ndim != 1:
        return False
    return all(a.dtype.kind in "fc" and not np.isfinite(a).all() for a in (volume, kernel))


def _warn_non_finite(out: np.ndarray, name: str) -> None:
    """scipy's warning when an FFT path's first output is NaN or inf."""
    if name in ("fft", "overlap_add") and out.size:
        first = out.reshape(-1)[0]
        if np.isnan(first) or np.isinf(first):
            _warn.warn(
                "Use of fft convolution on input with NAN or inf results in NAN or inf output. "
                "Consider using method='direct' instead.",
                RuntimeWarning,
            )


def correlate(in1, in2, mode: str = "full", method: str = "auto", *, device=None) -> np.ndarray:
    """Cross-correlate two N-dimensional arrays, as ``scipy.signal.correlate`` (in2 conjugated).

    ``device``: None (follow the inputs), 'cpu' or 'cuda' (see the module docstring).

    >>> correlate([1, 2, 3], [0, 1, 0.5])
    array([0.5, 2. , 3.5, 3. , 0. ])
    """
    dev = _device(device, in1, in2)
    volume, kernel, scalar = _prepare_nd(in1, in2, mode, method, correlate=True)
    if scalar is not None:
        return scalar
    if volume.size == 0 or kernel.size == 0:  # scipy's direct answer or error for empty inputs
        sp = _scipy(volume, kernel)
        return sp.correlate(volume, kernel, mode=mode, method="direct")
    if _scipy_direct_1d(volume, kernel, method, dev):
        return _scipy(volume, kernel).correlate(volume, kernel, mode=mode, method="direct")
    out, name = _conv_nd(volume, _reverse_and_conj(kernel), mode, method, device=dev)
    _warn_non_finite(out, name)
    return out


# ---------------------------------------------------------------------------------------------
# convolve2d / correlate2d


def _fill_scalar(fillvalue, rt: np.dtype):
    """The fill value as a scalar of the result dtype, converted as scipy's C code does."""
    try:
        if isinstance(fillvalue, np.ndarray) and not np.can_cast(fillvalue.dtype, rt, "safe"):
            raise TypeError  # an array converts to the output type only by a safe cast
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
            fill = np.array(fillvalue, dtype=rt)
    except Exception:
        # scipy's second try, to complex (an array again only by a safe cast): its error if
        # this fails
        if isinstance(fillvalue, np.ndarray) and not np.can_cast(
            fillvalue.dtype, np.complex128, "safe"
        ):
            raise TypeError(
                f"could not cast `fillvalue` (an array of dtype {fillvalue.dtype}) to the output "
                f"type {rt} or to complex128 under the 'safe' rule; pass a number"
            ) from None
        np.array(fillvalue, dtype=np.complex128)
        raise ValueError(
            "could not cast `fillvalue` directly to the output type (it was first converted "
            f"to complex). (fillvalue={fillvalue!r}, output dtype {rt})"
        ) from None
    if fill.size != 1:
        if fill.size == 0:
            raise ValueError("`fillvalue` cannot be an empty array.")
        raise ValueError(
            f"`fillvalue` must be scalar or an array with one element. (got shape {fill.shape})"
        )
    return fill.reshape(()).item()


def _conv2d(in1, in2, mode, boundary, fillvalue, correlate, device=None):
    name = "correlate2d" if correlate else "convolve2d"
    dev = _device(device, in1, in2)
    a = _asarray(in1)
    b = _asarray(in2)
    if not a.ndim == b.ndim == 2:
        raise ValueError(
            f"{name} inputs must both be 2-D arrays (got shapes {a.shape} and {b.shape})"
        )
    swapped = _inputs_swap_needed(mode, a.shape, b.shape)
    if swapped:
        a, b = b, a
    if mode not in _MODES:
        raise ValueError(f"Acceptable mode flags are 'valid', 'same', or 'full', not mode={mode!r}")
    if boundary not in _BOUNDARIES:
        allowed = (
            "Acceptable boundary flags are 'fill', 'circular' (or 'wrap'), and "
            f"'symmetric' (or 'symm'), not boundary={boundary!r}"
        )
        if boundary == "reflect":
            raise ValueError(f"Incorrect boundary value. {allowed}")
        raise ValueError(allowed)
    rt = np.result_type(a.dtype, b.dtype)
    if rt == np.bool_ or rt == np.float16 or rt.kind not in "iufc":
        raise ValueError(
            f"{name} not available for this type. (dtype {rt}: use integer, float32/64 or "
            "complex inputs)"
        )
    fv = _fill_scalar(fillvalue, rt) if _BOUNDARIES[boundary] == "fill" else 0
    if (a.size == 0 or b.size == 0) and _BOUNDARIES[boundary] != "fill":
        # scipy.signal's C code divides by the empty size here and kills the process (SIGFPE)
        raise ValueError(
            f"{name}: boundary={boundary!r} wraps or mirrors in1, which needs both inputs "
            f"non-empty (shapes {a.shape} and {b.shape}); use boundary='fill'"
        )
    if not _native(rt) or a.size == 0 or b.size == 0:  # scipy's own answer, as it gives it
        sp = _scipy(a, b)
        f = sp.correlate2d if correlate else sp.convolve2d
        out = f(a, b, mode=mode, boundary=boundary, fillvalue=fillvalue)
        return out[::-1, ::-1].copy() if swapped and correlate else out
    if correlate:
        b = np.conj(b) if b.dtype.kind == "c" else b
    pads = []
    for n, k in zip(a.shape, b.shape):
        lo, hi = _mode_pads(mode, n, k)
        if correlate:
            lo, hi = hi, lo  # correlate2d centres its window at i - (M-1)//2 (scipy issue 1968)
        pads.append((lo, hi))
    kind = _BOUNDARIES[boundary]
    xp = _arrays.xp_of(a)
    if mode != "valid" and (kind != "fill" or fv != 0):
        if kind == "fill":
            a = xp.pad(a.astype(rt, copy=False), pads, mode="constant", constant_values=fv)
        else:
            a = xp.pad(a, pads, mode=kind)
        pads = [(0, 0), (0, 0)]
    # scipy's convolve2d sums directly: a NaN/inf stays local and float32 keeps its accuracy,
    # so an FFT (one NaN spreads to the whole output) is never picked here
    out, _ = _solve(
        a,
        b,
        [0, 1],
        [p[0] for p in pads],
        [p[1] for p in pads],
        not correlate,
        "direct",
        rt,
        exact=_exact_needed(a, b),
        device=dev,
    )
    if swapped and correlate:
        out = _arrays.xp_of(out).ascontiguousarray(out[::-1, ::-1])
    return out


def convolve2d(
    in1, in2, mode: str = "full", boundary: str = "fill", fillvalue=0, *, device=None
) -> np.ndarray:
    """Convolve two 2-D arrays, as ``scipy.signal.convolve2d`` (boundary fill / wrap / symm).

    ``device``: None (follow the inputs), 'cpu' or 'cuda' (see the module docstring).

    >>> convolve2d([[1, 2], [3, 4]], [[1, 1]], mode="same", boundary="wrap")
    array([[3, 3],
           [7, 7]])
    """
    return _conv2d(in1, in2, mode, boundary, fillvalue, correlate=False, device=device)


def correlate2d(
    in1, in2, mode: str = "full", boundary: str = "fill", fillvalue=0, *, device=None
) -> np.ndarray:
    """Cross-correlate two 2-D arrays, as ``scipy.signal.correlate2d`` (in2 conjugated).

    ``device``: None (follow the inputs), 'cpu' or 'cuda' (see the module docstring).

    >>> correlate2d([[1, 2], [3, 4]], [[1, -1]], mode="valid")
    array([[-1],
           [-1]])
    """
    return _conv2d(in1, in2, mode, boundary, fillvalue, correlate=True, device=device)


# ---------------------------------------------------------------------------------------------
# fftconvolve / oaconvolve


def _norm_axes(ndim: int, axes) -> list[int]:
    if axes is None:
        return list(range(ndim))
    if np.isscalar(axes):
        axes = [axes]
    try:
        axes = [operator.index(a) for a in axes]
    except TypeError:
        raise ValueError(f"axes must be a scalar or iterable of integers (got {axes!r})") from None
    if any(a < -ndim or a >= ndim for a in axes):
        raise ValueError(
            f"axes exceeds dimensionality of input (axes {axes} for {ndim}-D inputs: each must be "
            f"in [{-ndim}, {ndim - 1}])"
        )
    axes = [a % ndim for a in axes]
    if len(set(axes)) != len(axes):
        raise ValueError(f"all axes must be unique (got {axes} after wrapping negatives)")
    return axes


def _freq_dtype(dt: np.dtype) -> np.dtype:
    """The dtype scipy.fft computes an input of dtype ``dt`` in (its real flavour)."""
    if dt.kind in "biu":
        return np.dtype(np.float64)
    if dt == np.float16:
        return np.dtype(np.float32)
    return dt


def _fft_front(in1, in2, mode, axes, algorithm, device=None):
    dev = _device(device, in1, in2)
    a = _asarray(in1)
    b = _asarray(in2)
    if a.ndim == b.ndim == 0:
        return a * b
    if a.ndim != b.ndim:
        raise ValueError(
            f"in1 and in2 should have the same dimensionality (shapes {a.shape} and {b.shape})"
        )
    if a.size == 0 or b.size == 0:
        return _xp(a, b).asarray([])
    if algorithm == "overlap_add" and a.shape == b.shape:
        algorithm = "fft"
    noaxes = axes is None
    axes = _norm_axes(a.ndim, axes)
    if not noaxes and not len(axes):
        raise ValueError("when provided, axes cannot be empty")
    s1, s2 = a.shape, b.shape
    axes = [ax for ax in axes if s1[ax] != 1 and s2[ax] != 1]
    if algorithm == "overlap_add":
        axes.sort()
    if not all(s1[i] == s2[i] or s1[i] == 1 or s2[i] == 1 for i in range(a.ndim) if i not in axes):
        raise ValueError(f"incompatible shapes for in1 and in2: {s1} and {s2}")
    if _inputs_swap_needed(mode, s1, s2, axes=axes):
        a, b = b, a
        s1, s2 = s2, s1
    if mode not in _MODES:
        raise ValueError(f"acceptable mode flags are 'valid', 'same', or 'full', not mode={mode!r}")
    if mode == "same":
        # a broadcast axis where in1 has length 1 keeps the centre of in2 (scipy's _centered)
        idx = tuple(
            slice((s2[i] - 1) // 2, (s2[i] - 1) // 2 + 1)
            if i not in axes and s1[i] == 1 and s2[i] > 1
            else slice(None)
            for i in range(a.ndim)
        )
        b = b[idx]
    if not axes:  # nothing to transform: scipy multiplies, in the inputs' own dtype
        return _xp(a, b).ascontiguousarray(a * b)
    rt = np.result_type(_freq_dtype(a.dtype), _freq_dtype(b.dtype))
    if rt not in _NATIVE:
        sp = _scipy(a, b)
        f = sp.oaconvolve if algorithm == "overlap_add" else sp.fftconvolve
        return f(a, b, mode=mode, axes=axes)
    a, b = a.astype(rt, copy=False), b.astype(rt, copy=False)
    return _solve_window(a, b, axes, mode, algorithm, rt, fallback="fft", device=dev)[0]


def fftconvolve(in1, in2, mode: str = "full", axes=None, *, device=None) -> np.ndarray:
    """Convolve two N-dimensional arrays with FFTs, as ``scipy.signal.fftconvolve``.

    Axes not in ``axes`` broadcast.  float32 stays float32; integers compute in float64.
    ``device``: None (follow the inputs), 'cpu' or 'cuda' (see the module docstring).

    >>> fftconvolve([1.0, 2.0, 3.0], [1.0, 1.0]).round(12)
    array([1., 3., 5., 3.])
    """
    return _fft_front(in1, in2, mode, axes, "fft", device=device)


def oaconvolve(in1, in2, mode: str = "full", axes=None, *, device=None) -> np.ndarray:
    """Convolve two N-dimensional arrays by overlap-add, as ``scipy.signal.oaconvolve``.

    On the GPU it runs the CUDA overlap-save algorithm (batched cuFFT tiles); like scipy, a
    problem one block covers runs as one FFT.

    >>> oaconvolve(np.ones(8), np.ones(3), mode="valid").round(12)
    array([3., 3., 3., 3., 3., 3.])
    """
    return _fft_front(in1, in2, mode, axes, "overlap_add", device=device)


# ---------------------------------------------------------------------------------------------
# choosing


def choose_conv_method(in1, in2, mode: str = "full", measure: bool = False):
    """The fastest method for ``convolve(in1, in2, mode)``, as ``scipy.signal.choose_conv_method``.

    Returns a gpuconv algorithm name ('direct', 'fft', 'im2col', 'overlap_add', 'separable'),
    each of which ``convolve``/``correlate`` accept as ``method``.  With ``measure=True`` every
    applicable algorithm is timed (median of repeats after a warm-up) and ``(name, times)`` is
    returned, ``times`` mapping names to seconds.

    >>> choose_conv_method(np.ones(1000), np.ones(5)) in gpuconv.algorithm_names()
    True
    """
    volume = np.asarray(in1)
    kernel = np.asarray(in2)
    if not _plannable(volume, kernel, mode):
        # inputs gpuconv hands to scipy (or rejects as scipy does): scipy's own answer
        return _scipy().choose_conv_method(volume, kernel, mode=mode, measure=measure)
    if measure:
        from ._timing import time_cpu

        p = plan(volume, kernel, mode)
        times = {
            c.name: time_cpu(lambda n=c.name: convolve(volume, kernel, mode, n), 3)
            for c in p.candidates
            if c.seconds is not None
        }
        return min(times, key=times.get), times
    if np.result_type(volume, kernel) == np.bool_:
        return "direct"
    return plan(volume, kernel, mode).algorithm


def _plannable(volume: np.ndarray, kernel: np.ndarray, mode) -> bool:
    """Whether gpuconv itself computes ``convolve(volume, kernel, mode)``."""
    if volume.ndim != kernel.ndim or volume.ndim == 0 or not volume.size or not kernel.size:
        return False
    if mode not in _MODES or volume.dtype.kind not in "biufc" or kernel.dtype.kind not in "biufc":
        return False
    if mode == "valid":
        pairs = list(zip(volume.shape, kernel.shape))
        if not (all(n >= k for n, k in pairs) or all(k >= n for n, k in pairs)):
            return False
    return _native(np.result_type(volume, kernel))


def plan(in1, in2, mode: str = "full", *, correlate: bool = False, device=None) -> dispatch.Plan:
    """What ``convolve`` (or ``correlate``) would run on these inputs, and why.

    ``device`` as for ``convolve``: CuPy inputs (or 'cuda') plan among the CUDA algorithms.

    The returned :class:`~gpuconv.dispatch.Plan` holds the chosen algorithm, the estimated time
    of every candidate (or why it does not apply) and a one-line reason.

    >>> p = plan(np.ones((512, 512), np.float32), np.ones((3, 3), np.float32), "same")
    >>> p.algorithm in gpuconv.algorithm_names()
    True
    >>> print(p)  # doctest: +SKIP
    Plan: 2-D 512x512 convolved with 3x3, float32
      chosen: direct - lowest estimate, 53.2 us; next is separable at 174.6 us (3.3x)
      * direct          53.2 us
        im2col         598.1 us
        fft             1.50 ms
        overlap_add     1.43 ms
        separable      174.6 us
    """
    dev = _device(device, in1, in2)
    volume, kernel, scalar = _prepare_nd(in1, in2, mode, "auto", correlate=correlate)
    if scalar is not None:
        raise ValueError("plan needs arrays of at least one dimension")
    if correlate:
        kernel = _reverse_and_conj(kernel)
    return _conv_nd(volume, kernel, mode, "auto", plan_only=True, device=dev)
