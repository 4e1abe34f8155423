"""Convolution of Dask arrays, chunk by chunk with halos, on CPU or GPU chunks.

``import gpuconv.dask`` (needs ``pip install "gpuconv[dask]"``; ``import gpuconv`` never imports
Dask).  Every function takes a :class:`dask.array.Array` (a NumPy or CuPy array is wrapped with
``dask.array.from_array(chunks="auto")``) and an in-memory kernel, and returns a lazy Dask array
with exactly the shape, dtype and values of the in-memory gpuconv (and scipy.signal) call on the
whole array.  Nothing is computed until ``.compute()`` (or ``store``, ``persist``...).

=======================================  ==================================================
``convolve``, ``correlate``              :func:`gpuconv.convolve` / :func:`gpuconv.correlate`
``convolve2d``, ``correlate2d``          boundaries 'fill' (``fillvalue``), 'wrap', 'symm'
``fftconvolve``, ``oaconvolve``          ``axes``; the other axes broadcast and chunk freely
``conv1d``, ``conv2d``, ``conv3d``       torch-shaped, the batch axis split across chunks
=======================================  ==================================================

The halo logic
--------------
Every scipy mode is a *'valid'* convolution of a padded array: along a convolved axis with a
kernel of length ``m``, pad the input by ``(pl, ph)`` -- ``(m-1, m-1)`` for 'full',
``(m//2, (m-1)//2)`` for 'same' (``((m-1)//2, m//2)`` for ``correlate2d``, whose even-kernel
window sits one sample later, scipy issue 1968), nothing for 'valid' -- with the boundary rule,
and output ``i`` reads padded samples ``i ... i+m-1``.  A constant boundary (zeros; convolve2d's
``fillvalue``) needs no data, so the chunks at the array's edges pad themselves inside their
task; 'wrap' and 'symm' are built lazily from slices of the array (numpy.pad's 'wrap' and
'symmetric', as in scipy, even for kernels longer than the array) and merged into the first
and last chunks.

Then :func:`dask.array.map_overlap` with ``boundary='none'`` gives each chunk ``lo`` samples of its
left neighbour and ``hi`` of its right one, ``lo + hi = m - 1`` (the kernel's reach on each side:
``m//2`` before and ``(m-1)//2`` after, swapped for ``correlate2d``; asymmetric for even ``m``), and
each chunk is convolved in memory with ``mode='valid'`` by gpuconv's own function, so the
dispatcher picks the algorithm per chunk.  A chunk of length ``c`` then yields exactly ``c``
outputs (the first yields ``c - lo`` and the last ``c - hi``, which their padding makes up for), so
'same' keeps the input's chunks and every output chunk is known before anything runs.

Chunks smaller than the halo (one-element-thick chunks, kernels longer than a chunk) are merged
with their neighbours, with a :class:`RechunkWarning` saying so; an axis shorter than the kernel
ends up in one chunk.  'valid' where the in-memory kernel is at least as long as the Dask array
on every convolved axis (scipy swaps the operands then) computes each convolved axis in one
chunk: the Dask array is then no larger than the kernel there.

Devices
-------
Chunks follow their own array type: CuPy-backed chunks (``x.map_blocks(cupy.asarray)``, detected
from ``x._meta``) are convolved on the GPU by gpuconv's CUDA algorithms and CuPy chunks come back;
the kernel is copied to each device once per process and kept there.  NumPy chunks run on the
CPU.  A kernel given as a CuPy array is copied to the host for NumPy chunks.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

try:
    import dask
    import dask.array as da
    from dask.array.utils import meta_from_array
except ImportError as e:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        f'gpuconv.dask needs Dask ({e}); install it with: pip install "gpuconv[dask]"'
    ) from e

from . import _arrays, _threads, _warn
from . import nn as _nn
from . import signal as _signal

__all__ = [
    "RechunkWarning",
    "conv1d",
    "conv2d",
    "conv3d",
    "convolve",
    "convolve2d",
    "correlate",
    "correlate2d",
    "fftconvolve",
    "oaconvolve",
]


class RechunkWarning(UserWarning):
    """The input's chunks were changed to give every chunk its halo (or one chunk per axis)."""


# ---------------------------------------------------------------------------------------------
# arguments


def _as_dask(fn: str, name: str, a) -> da.Array:
    """``a`` as a Dask array with known chunks; in-memory arrays are wrapped (auto chunks)."""
    if isinstance(a, da.Array):
        if any(math.isnan(c) for cs in a.chunks for c in cs):
            raise ValueError(
                f"{fn}: {name} has unknown chunk sizes {a.chunks}; call "
                f"{name}.compute_chunk_sizes() first (the halos need every chunk's length)"
            )
        # a chunk of length 0 holds nothing, and its in-memory call would follow scipy's rules
        # for empty inputs (a swap, an error or []) instead of the whole array's
        chunks = tuple(tuple(c for c in cs if c) or cs[:1] for cs in a.chunks)
        return a if chunks == a.chunks else a.rechunk(chunks)
    if dask.is_dask_collection(a):
        raise TypeError(
            f"{fn}: {name} must be a dask.array.Array or an in-memory array, got a "
            f"{type(a).__module__}.{type(a).__qualname__}"
        )
    arr = a if _arrays.is_cupy_array(a) else np.asarray(a)
    return da.from_array(arr, chunks="auto")


def _in_memory(fn: str, name: str, a):
    """An in-memory operand (the kernel, weight or bias) as a host NumPy array."""
    if dask.is_dask_collection(a):
        raise TypeError(
            f"{fn}: {name} must be an in-memory array (NumPy or CuPy), got a Dask "
            f"{type(a).__qualname__}: the whole {name} is sent to every chunk; call "
            f"{name}.compute() first if it fits in memory"
        )
    return _arrays.to_host(a) if _arrays.is_cupy_array(a) else np.asarray(a)


def _meta(x: da.Array, ndim: int, dtype) -> object:
    """An empty array of the chunks' type (NumPy or CuPy) for the result."""
    return meta_from_array(x._meta, ndim=ndim, dtype=dtype)


def _probe(func, *args, **kwargs):
    """``func`` on tiny stand-ins: the in-memory call's own errors and result dtype.

    Warnings (a non-finite first output of an FFT path) say nothing about the real data."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


_VALID_MSG = "For 'valid' mode, one must be at least as large as the other in every dimension"


def _valid_swap(s1, s2, axes) -> bool:
    """scipy's rule for 'valid': whether the kernel is the larger operand (ValueError if mixed)."""
    ok1 = all(s1[i] >= s2[i] for i in axes)
    ok2 = all(s2[i] >= s1[i] for i in axes)
    if not (ok1 or ok2):
        raise ValueError(f"{_VALID_MSG} (shapes {tuple(s1)} and {tuple(s2)})")
    return not ok1


def _same_ndim(fn: str, x: da.Array, w: np.ndarray, ndim: int | None = None) -> None:
    """The dimensionality check with the real shapes (the probes see one-sample stand-ins)."""
    if ndim is not None and not x.ndim == w.ndim == ndim:
        raise ValueError(
            f"{fn} inputs must both be {ndim}-D arrays (got shapes {x.shape} and {w.shape})"
        )
    if x.ndim != w.ndim:
        raise ValueError(
            f"{fn}: in1 and in2 should have the same dimensionality (in1 has shape {x.shape}, "
            f"in2 {w.shape})"
        )


# ---------------------------------------------------------------------------------------------
# the per-chunk call


class _Blockwise:
    """The in-memory function applied to one (haloed) chunk: ``func(block, *arrays, **kwargs)``.

    ``arrays`` (kernel, or weight and bias) are host arrays.  They enter the graph once, as one
    key every task depends on (:attr:`operands`, passed to the task as ``arrays=``), instead of
    riding inside each task: a distributed scheduler then ships them to a worker once, not once
    per chunk (a 101x101 float32 kernel made every task 41 KB).  For a CuPy chunk they are copied
    to its device once per process and kept.  ``slice_axes``: axes along which ``arrays[0]`` has
    the array's full length (the broadcast axes of ``fftconvolve``), cut to the chunk's extent
    from ``block_info``.
    """

    def __init__(self, func, arrays, kwargs, slice_axes=()):
        self.func = func
        self.operands = dask.delayed(tuple(arrays), pure=True)
        self.kwargs = dict(kwargs)
        self.slice_axes = tuple(slice_axes)
        self._device: dict[int, tuple] = {}

    def __getstate__(self):  # the operands travel as the graph key, the device copies not at all
        state = self.__dict__.copy()
        state["operands"] = None
        state["_device"] = {}
        return state

    def _arrays_for(self, block, arrays):
        if not _arrays.is_cupy_array(block):
            return arrays
        dev = block.device.id
        hit = self._device.get(dev)
        if hit is None or hit[0] is not arrays:
            cp = _arrays.require_cupy()
            with block.device:
                copies = tuple(None if a is None else cp.asarray(a) for a in arrays)
            hit = self._device[dev] = (arrays, copies)
        return hit[1]

    def __call__(self, block, block_info=None, arrays=None):
        if arrays is None:
            raise RuntimeError("gpuconv.dask: a chunk task was built without its operands")
        arrays = self._arrays_for(block, arrays)
        if self.slice_axes:
            loc = block_info[0]["array-location"]
            k = arrays[0]
            idx = tuple(
                slice(*loc[i]) if i in self.slice_axes else slice(None) for i in range(k.ndim)
            )
            arrays = (k[idx],) + arrays[1:]
        if _arrays.is_cupy_array(block):
            return self.func(block, *arrays, **self.kwargs)
        # Dask runs chunks in parallel already (threads or worker processes): one core each,
        # else every chunk's FFT and numba kernels would claim every core
        with _threads.limit(1):
            return self.func(block, *arrays, **self.kwargs)


def _operands(block) -> dict:
    """The ``arrays=`` keyword of a chunk task: the operands' graph key (see _Blockwise)."""
    while not isinstance(block, _Blockwise):
        block = block.inner
    return {"arrays": block.operands}


def _multiply(a, b):
    """fftconvolve with nothing to transform: scipy multiplies, in the inputs' own dtype."""
    return _arrays.xp_of(a).ascontiguousarray(a * b)


# ---------------------------------------------------------------------------------------------
# halos


@dataclass(frozen=True)
class _AxisPlan:
    """One convolved axis: kernel length ``m``, boundary padding ``pad``, neighbour halo ``halo``
    (``halo[0] + halo[1] == m - 1``)."""

    axis: int
    m: int
    pad: tuple[int, int]
    halo: tuple[int, int]


def _plan(axis: int, m: int, mode: str, split: tuple[int, int]) -> _AxisPlan:
    pad = {"full": (m - 1, m - 1), "same": split, "valid": (0, 0)}[mode]
    return _AxisPlan(axis, m, pad, split)


def _with_pads(chunks: tuple[int, ...], lo: int, hi: int) -> tuple[int, ...]:
    """The chunks of the padded axis when the padding joins the first and last chunks."""
    if len(chunks) == 1:
        return (lo + chunks[0] + hi,)
    return (lo + chunks[0],) + tuple(chunks[1:-1]) + (chunks[-1] + hi,)


def _fit_chunks(chunks: tuple[int, ...], lo: int, hi: int, extra=(0, 0)) -> tuple[int, ...]:
    """Merge neighbouring chunks until each can lend the halo and yields at least one output.

    map_overlap needs every chunk >= max(lo, hi) (a neighbour lends that many samples); the first
    chunk outputs ``c + extra[0] - lo`` and the last ``c + extra[1] - hi`` samples (``extra``: the
    padding the edge chunks add themselves), so neither may come short of one.
    """
    need = max(lo, hi)
    out: list[int] = []
    acc = 0
    for c in chunks:
        acc += c
        if acc >= need and (out or acc + extra[0] > lo):
            out.append(acc)
            acc = 0
    if acc:
        if out:
            out[-1] += acc
        else:
            out.append(acc)
    while len(out) > 1 and out[-1] + extra[1] <= hi:
        last = out.pop()
        out[-1] += last
    return tuple(out)


def _runs(idx: np.ndarray) -> list[slice]:
    """Basic slices (step +1 or -1) that gather ``x[idx]``: no fancy indexing (CuPy-safe)."""
    out = []
    i, n = 0, len(idx)
    while i < n:
        step = int(idx[i + 1] - idx[i]) if i + 1 < n else 1
        if step not in (1, -1):
            step = 1
        j = i
        while j + 1 < n and idx[j + 1] - idx[j] == step:
            j += 1
        a, b = int(idx[i]), int(idx[j])
        if step == 1:
            out.append(slice(a, b + 1))
        else:
            out.append(slice(a, b - 1 if b > 0 else None, -1))
        i = j + 1
    return out


def _pad(x: da.Array, plans, kind: str) -> da.Array:
    """Pad ``x`` lazily with slices of itself along each planned axis, one axis after another
    as numpy.pad does: ``kind`` 'wrap' or 'symmetric' (numpy.pad's modes, which are scipy's
    'wrap' and 'symm' for any pad width, also wider than the array)."""
    for p in plans:
        lo, hi = p.pad
        if not (lo or hi):
            continue
        ax, n = p.axis, x.shape[p.axis]
        idx = np.pad(np.arange(n), (lo, hi), mode=kind)
        head = (slice(None),) * ax
        left = [x[head + (s,)] for s in _runs(idx[:lo])]
        right = [x[head + (s,)] for s in _runs(idx[lo + n :])]
        x = da.concatenate(left + [x] + right, axis=ax)
    return x


def _describe_chunks(c: tuple[int, ...]) -> str:
    shown = ", ".join(map(str, c[:6])) + (", ..." if len(c) > 6 else "")
    return f"({shown}; {len(c)} chunks, smallest {min(c)})"


def _map_halo(fn: str, x: da.Array, plans, block, dtype, kind="fill", fill=0) -> da.Array:
    """The valid convolution of ``x`` padded per ``plans``, each chunk by ``block``.

    A constant boundary (``kind='fill'``) is padded by the edge chunks themselves (no data is
    needed, and the graph stays the overlap plus one task per chunk); 'wrap' and 'symmetric'
    pad the Dask array with slices of itself and merge the padding into the edge chunks.
    """
    in_block = kind == "fill"
    chunks = list(x.chunks)  # of the array map_overlap sees
    out = list(x.chunks)
    depth = {}
    merged = []
    for p in plans:
        lo, hi = p.halo
        pl, ph = p.pad
        if in_block:
            natural = x.chunks[p.axis]
            fitted = _fit_chunks(natural, lo, hi, extra=p.pad)
        else:
            natural = _with_pads(x.chunks[p.axis], pl, ph)
            fitted = _fit_chunks(natural, lo, hi)
            pl = ph = 0  # already in the chunks
        if fitted != natural:
            merged.append(
                f"axis {p.axis}: chunks {_describe_chunks(x.chunks[p.axis])} against a halo of "
                f"{lo} before and {hi} after (kernel length {p.m}) -> "
                f"{_describe_chunks(fitted)}" + ("" if in_block else " including the padding")
            )
        chunks[p.axis] = fitted
        if len(fitted) == 1:
            out[p.axis] = (pl + fitted[0] + ph - p.m + 1,)
        else:
            out[p.axis] = (pl + fitted[0] - lo,) + fitted[1:-1] + (fitted[-1] + ph - hi,)
            depth[p.axis] = (lo, hi)
    if merged:
        _warn.warn(
            f"{fn}: chunks too small for the kernel's halo were merged with their neighbours "
            f"(each chunk must lend its neighbours the halo; an axis shorter than the kernel is "
            f"one chunk): {'; '.join(merged)}",
            RechunkWarning,
        )
    if in_block:
        src = x.rechunk(tuple(chunks)) if tuple(chunks) != x.chunks else x
        if any(p.pad != (0, 0) for p in plans):
            block = _EdgePad(block, {p.axis: p.pad for p in plans}, fill)
    else:
        src = _pad(x, plans, kind).rechunk(tuple(chunks))
    return da.map_overlap(
        block,
        src,
        depth=depth,
        boundary="none",
        trim=False,
        allow_rechunk=False,
        chunks=tuple(out),
        dtype=dtype,
        meta=_meta(x, x.ndim, dtype),
        **_operands(block),
    )


class _EdgePad:
    """Pads the chunks at the array's edges with a constant before ``inner`` runs on them.

    ``pads``: {axis: (before, after)}; the first chunk along an axis gets ``before``, the last
    ``after`` (a single chunk both)."""

    def __init__(self, inner, pads, fill):
        self.inner, self.pads, self.fill = inner, dict(pads), fill

    def __call__(self, block, block_info=None, **kw):
        info = block_info[0]
        loc, num = info["chunk-location"], info["num-chunks"]
        widths = [(0, 0)] * block.ndim
        for ax, (lo, hi) in self.pads.items():
            widths[ax] = (lo if loc[ax] == 0 else 0, hi if loc[ax] == num[ax] - 1 else 0)
        if any(w != (0, 0) for w in widths):
            xp = _arrays.xp_of(block)
            block = xp.pad(block, widths, mode="constant", constant_values=self.fill)
        return self.inner(block, block_info=block_info, **kw)


def _whole_axes(fn: str, x: da.Array, axes, out_len, block, dtype) -> da.Array:
    """Each of ``axes`` in one chunk (output length ``out_len[i]`` there), ``block`` per chunk."""
    split = [ax for ax in axes if len(x.chunks[ax]) > 1]
    if split:
        _warn.warn(
            f"{fn}: the in-memory operand is at least as large as in1 along axes {list(axes)} "
            f"('valid' swaps the operands), so those axes are computed in one chunk each; "
            f"rechunked axes {split}",
            RechunkWarning,
        )
        x = x.rechunk({ax: -1 for ax in axes})
    chunks = list(x.chunks)
    for ax, n in zip(axes, out_len):
        chunks[ax] = (n,)
    return da.map_blocks(
        block,
        x,
        chunks=tuple(chunks),
        dtype=dtype,
        meta=_meta(x, x.ndim, dtype),
        **_operands(block),
    )


def _stand_in(func, x: da.Array, w, **kwargs) -> da.Array:
    """Empty operands: the in-memory answer (or error), which reads no values of ``x``."""
    zero = np.broadcast_to(np.zeros((), x.dtype), x.shape)
    return da.from_array(np.asarray(func(zero, w, **kwargs)))


# ---------------------------------------------------------------------------------------------
# convolve / correlate


def _nd_front(fn, in1, in2, mode, method, correlate):
    x = _as_dask(fn, "in1", in1)
    w = _in_memory(fn, "in2", in2)
    func = _signal.correlate if correlate else _signal.convolve
    # the in-memory call on a one-sample stand-in: its checks (ndim, mode, method), its dtype
    probe_method = "auto" if method == "benchmark" else method  # nothing to time here
    if x.ndim and w.ndim:
        _same_ndim(fn, x, w)
    probe = _probe(func, np.zeros((1,) * x.ndim, x.dtype), w, mode=mode, method=probe_method)
    if probe_method not in ("auto", "direct", "fft") and w.size and x.size:
        # a named algorithm's own limits on the kernel (separable needs a rank-1 one) raise
        # here, not first inside a chunk task at compute time
        _probe(func, np.zeros(w.shape, x.dtype), w, mode="valid", method=probe_method)
    if x.ndim == 0:
        return x * (np.conj(w) if correlate else w)
    if x.size == 0 or w.size == 0:
        return _stand_in(func, x, w, mode=mode, method=method)
    dtype = np.asarray(probe).dtype
    # correlate is convolve with the kernel reversed and conjugated, in gpuconv as in scipy
    wk = _signal._reverse_and_conj(w) if correlate else w
    block = _Blockwise(_signal.convolve, (wk,), dict(mode="valid", method=method))
    axes = range(x.ndim)
    if mode == "valid" and _valid_swap(x.shape, w.shape, axes):
        return _whole_axes(fn, x, axes, [m - n + 1 for n, m in zip(x.shape, w.shape)], block,
                           dtype)  # fmt: skip
    plans = [_plan(ax, m, mode, (m // 2, (m - 1) // 2)) for ax, m in enumerate(w.shape) if m > 1]
    return _map_halo(fn, x, plans, block, dtype)


def convolve(in1, in2, mode: str = "full", method: str = "auto") -> da.Array:
    """Convolve a Dask array with an in-memory kernel, as ``gpuconv.convolve`` on the whole array.

    ``mode`` 'full' / 'same' / 'valid' and ``method`` as :func:`gpuconv.convolve` (the method
    applies to every chunk; 'auto' lets the dispatcher choose per chunk).  The result is lazy,
    with the in-memory call's shape and dtype; 'same' keeps ``in1``'s chunks.

    >>> import numpy as np, dask.array as da
    >>> x = da.arange(12.0, chunks=4)
    >>> y = convolve(x, np.array([1.0, 2.0, 1.0]), mode="same")
    >>> y.chunks
    ((4, 4, 4),)
    >>> y.compute()
    array([ 1.,  4.,  8., 12., 16., 20., 24., 28., 32., 36., 40., 32.])
    """
    return _nd_front("gpuconv.dask.convolve", in1, in2, mode, method, correlate=False)


def correlate(in1, in2, mode: str = "full", method: str = "auto") -> da.Array:
    """Cross-correlate a Dask array with an in-memory kernel (conjugated), as ``gpuconv.correlate``.

    >>> import numpy as np, dask.array as da
    >>> correlate(da.arange(6.0, chunks=2), np.array([1.0, -1.0]), mode="valid").compute()
    array([-1., -1., -1., -1., -1.])
    """
    return _nd_front("gpuconv.dask.correlate", in1, in2, mode, method, correlate=True)


# ---------------------------------------------------------------------------------------------
# convolve2d / correlate2d


def _front_2d(fn, in1, in2, mode, boundary, fillvalue, correlate):
    x = _as_dask(fn, "in1", in1)
    w = _in_memory(fn, "in2", in2)
    func = _signal.correlate2d if correlate else _signal.convolve2d
    kw = dict(mode=mode, boundary=boundary, fillvalue=fillvalue)
    _same_ndim(fn, x, w, 2)
    probe = _probe(func, np.zeros((1,) * x.ndim, x.dtype), w, **kw)
    if x.size == 0 or w.size == 0:
        return _stand_in(func, x, w, **kw)
    dtype = probe.dtype
    block = _Blockwise(func, (w,), dict(mode="valid"))
    if mode == "valid":
        if _valid_swap(x.shape, w.shape, (0, 1)):
            # the in-memory call swaps (and correlate2d reverses its output) itself
            return _whole_axes(fn, x, (0, 1), [m - n + 1 for n, m in zip(x.shape, w.shape)],
                               block, dtype)  # fmt: skip
        kind, fill = "fill", 0  # 'valid' reads no boundary
    else:
        kind, fill = _signal._BOUNDARIES[boundary], 0
        if kind == "fill":
            fill = _signal._fill_scalar(fillvalue, dtype)
            if fill != 0:
                # as in memory: the fill value is padded in the result dtype (0.5 stays 0.5)
                x = x.astype(dtype)
    split = [((m - 1) // 2, m // 2) if correlate else (m // 2, (m - 1) // 2) for m in w.shape]
    plans = [_plan(ax, m, mode, split[ax]) for ax, m in enumerate(w.shape) if m > 1]
    return _map_halo(fn, x, plans, block, dtype, kind, fill)


def convolve2d(in1, in2, mode: str = "full", boundary: str = "fill", fillvalue=0) -> da.Array:
    """Convolve a 2-D Dask array with an in-memory kernel, as ``gpuconv.convolve2d``.

    ``boundary``: 'fill' (alias 'pad', with ``fillvalue``), 'wrap' ('circular': the whole image
    repeated periodically) or 'symm' ('symmetric': mirrored including the edge sample); the
    chunks at the image's edges read it, the others read their neighbours.

    >>> import numpy as np, dask.array as da
    >>> x = da.from_array(np.arange(16.0).reshape(4, 4), chunks=2)
    >>> convolve2d(x, np.ones((1, 3)), mode="same", boundary="wrap").compute()[0]
    array([4., 3., 6., 5.])
    """
    return _front_2d("gpuconv.dask.convolve2d", in1, in2, mode, boundary, fillvalue, False)


def correlate2d(in1, in2, mode: str = "full", boundary: str = "fill", fillvalue=0) -> da.Array:
    """Cross-correlate a 2-D Dask array with an in-memory kernel, as ``gpuconv.correlate2d``.

    With an even kernel in 'same' mode the window sits one sample later than ``convolve2d``'s
    (scipy issue 1968, kept): the halo is ``(m-1)//2`` before and ``m//2`` after.

    >>> import numpy as np, dask.array as da
    >>> x = da.from_array(np.arange(16.0).reshape(4, 4), chunks=2)
    >>> correlate2d(x, np.array([[1.0, -1.0]]), mode="same", boundary="symm").compute()[0]
    array([-1., -1., -1.,  0.])
    """
    return _front_2d("gpuconv.dask.correlate2d", in1, in2, mode, boundary, fillvalue, True)


# ---------------------------------------------------------------------------------------------
# fftconvolve / oaconvolve


def _fft_front(fn, in1, in2, mode, axes, func):
    x = _as_dask(fn, "in1", in1)
    w = _in_memory(fn, "in2", in2)
    if x.ndim == w.ndim == 0:
        return x * w
    if x.ndim != w.ndim:
        raise ValueError("in1 and in2 should have the same dimensionality")
    if x.size == 0 or w.size == 0:
        return _stand_in(func, x, w, mode=mode, axes=axes)
    noaxes = axes is None
    axes = _signal._norm_axes(x.ndim, axes)
    if not noaxes and not len(axes):
        raise ValueError("when provided, axes cannot be empty")
    s1, s2 = x.shape, w.shape
    # scipy drops the axes where either operand has length 1: they broadcast like the others
    conv = [ax for ax in axes if s1[ax] != 1 and s2[ax] != 1]
    rest = [i for i in range(x.ndim) if i not in conv]
    if not all(s1[i] == s2[i] or s1[i] == 1 or s2[i] == 1 for i in rest):
        raise ValueError(f"incompatible shapes for in1 and in2: {s1} and {s2}")
    swap = mode == "valid" and _valid_swap(s1, s2, conv)
    if mode not in _signal._MODES:
        raise ValueError(f"acceptable mode flags are 'valid', 'same', or 'full', not mode={mode!r}")
    wide = [i for i in rest if s1[i] == 1 and s2[i] > 1]
    if mode == "same":
        # 'same' keeps in1's length 1 there: the kernel's centre (scipy's _centered)
        idx = tuple(
            slice((s2[i] - 1) // 2, (s2[i] - 1) // 2 + 1) if i in wide else slice(None)
            for i in range(x.ndim)
        )
        w = w[idx]
    elif wide:
        shape = tuple(s2[i] if i in wide else s1[i] for i in range(x.ndim))
        chunks = tuple((s2[i],) if i in wide else x.chunks[i] for i in range(x.ndim))
        x = da.broadcast_to(x, shape, chunks=chunks)
    # along the broadcast axes where the kernel is as long as in1, each chunk takes its slice
    slice_axes = [i for i in rest if w.shape[i] > 1]
    if not conv:
        dtype = np.result_type(x.dtype, w.dtype)
        block = _Blockwise(_multiply, (w,), {}, slice_axes)
        return da.map_blocks(
            block, x, dtype=dtype, meta=_meta(x, x.ndim, dtype), **_operands(block)
        )
    pshape = tuple(2 if i in conv else 1 for i in range(x.ndim))
    pw = w[tuple(slice(None) if i in conv else slice(0, 1) for i in range(x.ndim))]
    dtype = _probe(func, np.zeros(pshape, x.dtype), pw, mode="full", axes=conv).dtype
    block = _Blockwise(func, (w,), dict(mode="valid", axes=conv), slice_axes)
    if swap:
        out = [w.shape[ax] - x.shape[ax] + 1 for ax in conv]
        return _whole_axes(fn, x, conv, out, block, dtype)
    plans = [_plan(ax, w.shape[ax], mode, (w.shape[ax] // 2, (w.shape[ax] - 1) // 2))
             for ax in conv]  # fmt: skip
    return _map_halo(fn, x, plans, block, dtype)


def fftconvolve(in1, in2, mode: str = "full", axes=None) -> da.Array:
    """Convolve a Dask array with an in-memory kernel by FFTs, as ``gpuconv.fftconvolve``.

    Only the ``axes`` get halos; the other axes broadcast (the kernel has length 1 there, or
    in1's length, and then each chunk takes its slice of the kernel) and may be chunked freely.
    float32 stays float32, integers compute in float64.  Each chunk runs one FFT convolution of
    its haloed block.

    >>> import numpy as np, dask.array as da
    >>> signals = da.ones((4, 10), chunks=(1, 5))       # 4 signals, one per row
    >>> y = fftconvolve(signals, np.ones((1, 3)), mode="valid", axes=-1)
    >>> y.shape, y.chunks
    ((4, 8), ((1, 1, 1, 1), (4, 4)))
    >>> y.compute()[0].round(12)
    array([3., 3., 3., 3., 3., 3., 3., 3.])
    """
    return _fft_front("gpuconv.dask.fftconvolve", in1, in2, mode, axes, _signal.fftconvolve)


def oaconvolve(in1, in2, mode: str = "full", axes=None) -> da.Array:
    """Convolve a Dask array with an in-memory kernel by overlap-add, as ``gpuconv.oaconvolve``.

    As :func:`fftconvolve`; each chunk runs gpuconv's overlap-add on its haloed block.

    >>> import numpy as np, dask.array as da
    >>> oaconvolve(da.ones(8, chunks=3), np.ones(3), mode="valid").compute().round(12)
    array([3., 3., 3., 3., 3., 3.])
    """
    return _fft_front("gpuconv.dask.oaconvolve", in1, in2, mode, axes, _signal.oaconvolve)


# ---------------------------------------------------------------------------------------------
# conv1d / conv2d / conv3d: the batch axis split across chunks


def _conv_batch(nd, input, weight, bias, stride, padding, dilation, groups, padding_mode,
                algorithm, extra):  # fmt: skip
    fn = f"conv{nd}d"
    func = {1: _nn.conv1d, 2: _nn.conv2d, 3: _nn.conv3d}[nd]
    x = _as_dask(f"gpuconv.dask.{fn}", "input", input)
    w = _in_memory(f"gpuconv.dask.{fn}", "weight", weight)
    b = None if bias is None else _in_memory(f"gpuconv.dask.{fn}", "bias", bias)
    if x.ndim not in (nd + 1, nd + 2):
        raise ValueError(
            f"{fn}: expected a {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input, "
            f"got {x.ndim}-D of shape {x.shape}"
        )
    unbatched = x.ndim == nd + 1
    if unbatched:
        x = x[None]
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
              padding_mode=padding_mode, algorithm=algorithm, **extra)  # fmt: skip
    # an empty batch runs the in-memory call's checks and gives the output's shape and dtype
    # without computing anything.  The further keywords (``activation``...) are left to each
    # chunk's call: they change neither, and the epilogue cannot run on an empty output yet
    # (gpuconv.conv2d(np.empty((0, C, H, W)), w, activation="relu") raises)
    base = {key: kw[key] for key in kw if key not in extra}
    probe = func(np.empty((0,) + x.shape[1:], x.dtype), w, b, **base)
    if any(len(c) > 1 for c in x.chunks[1:]):
        _warn.warn(
            f"gpuconv.dask.{fn}: only the batch axis may be split (a sample is convolved whole); "
            f"input chunks {x.chunks} rechunked to one chunk along the channel and spatial axes",
            RechunkWarning,
        )
        x = x.rechunk({i: -1 for i in range(1, x.ndim)})
    block = _Blockwise(func, (w, b), kw)
    chunks = (x.chunks[0],) + tuple((s,) for s in probe.shape[1:])
    y = da.map_blocks(
        block, x, chunks=chunks, dtype=probe.dtype, meta=_meta(x, x.ndim, probe.dtype),
        **_operands(block),
    )  # fmt: skip
    return y[0] if unbatched else y


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           padding_mode="zeros", algorithm="auto", **kwargs) -> da.Array:  # fmt: skip
    """:func:`gpuconv.conv1d` on a Dask array ``(N, C_in, L)``, one task per batch chunk."""
    return _conv_batch(1, input, weight, bias, stride, padding, dilation, groups, padding_mode,
                       algorithm, kwargs)  # fmt: skip


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           padding_mode="zeros", algorithm="auto", **kwargs) -> da.Array:  # fmt: skip
    """:func:`gpuconv.conv2d` on a Dask array ``(N, C_in, H, W)``, one task per batch chunk.

    Samples are independent, so only the batch axis is split and no halo is needed: the
    channel and spatial axes are rechunked to one chunk each (with a :class:`RechunkWarning`
    if they were split).  ``weight`` and ``bias`` are in-memory arrays; arguments and the result
    are as for :func:`gpuconv.conv2d` (torch semantics; any further keyword of that function,
    such as ``activation``, is passed to every chunk's call), and the output's chunks are
    ``(input.chunks[0], (C_out,), (H_out,), (W_out,))``.

    >>> import numpy as np, dask.array as da
    >>> x = da.ones((8, 3, 16, 16), chunks=(2, 3, 16, 16), dtype=np.float32)
    >>> y = conv2d(x, np.ones((4, 3, 3, 3), np.float32), stride=2, padding=1)
    >>> y.shape, y.chunks[0], y.dtype
    ((8, 4, 8, 8), (2, 2, 2, 2), dtype('float32'))
    """
    return _conv_batch(2, input, weight, bias, stride, padding, dilation, groups, padding_mode,
                       algorithm, kwargs)  # fmt: skip


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           padding_mode="zeros", algorithm="auto", **kwargs) -> da.Array:  # fmt: skip
    """:func:`gpuconv.conv3d` on a Dask array ``(N, C_in, D, H, W)``, one task per batch chunk
    (see :func:`conv2d`)."""
    return _conv_batch(3, input, weight, bias, stride, padding, dilation, groups, padding_mode,
                       algorithm, kwargs)  # fmt: skip
