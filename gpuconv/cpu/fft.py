"""FFT convolution of the canonical problem (:mod:`gpuconv._spec`) with :mod:`scipy.fft`.

One circular convolution per (batch item, channel) at a transform length ``L`` per axis, with
these savings over ``scipy.signal.fftconvolve``:

* **Short transforms.**  With ``x`` placed at index 0 of the length-``L`` buffer (the padding is
  never materialised) and the kernel placed *wrapped* at indices ``(pad_lo - d*u) mod L``, the
  circular result ``c = b (*) h`` equals the wanted output ``y[p] = c[p]`` for every ``p`` as long
  as no index of the padded window range ``[-pad_lo, n + pad_hi)`` aliases onto ``x``:
  ``L >= n + max(pad_lo, pad_hi)`` (and ``L >= out`` so the kept window does not wrap).  That is
  shorter than the ``n + k - 1`` of a "full" linear convolution: for scipy's ``'same'`` mode it is
  ``n + k//2``.  The kept output is then the plain slice ``c[0:out:stride]``.
* **Even shorter, wrapped transforms.**  ``L = max(n, out)`` (2048 for a 2048 'same' problem,
  where the bound above would force 2049 -> 2160): only thin output bands at the borders are then
  wrong, and they are recomputed from thin strips of ``x`` as sub-problems at safe lengths
  (:func:`plan`, chosen per axis by a cost estimate, :data:`WRAP_MODE`).
* **Pruned stages.**  The N-D transforms are done axis by axis: the forward pass transforms the
  last axis of the unpadded ``x`` first (the zero rows of the padded buffer are never
  transformed); the kernel's forward pass transforms only its ``k`` nonzero rows per stage; the
  inverse pass drops the rows outside the kept window (and the stride) before the next stage.
* **Threads and precision.**  ``workers=WORKERS`` (all cores) and float32 / complex64 stay single
  precision throughout (``scipy.fft`` computes in single precision for those).

Real dtypes use ``rfft``/``irfft`` on the last axis; complex ones ``fft``/``ifft``.  int64 problems
compute in float64 and are rounded back (exact only for small magnitudes: the dispatcher checks).
Channels and groups: each input channel and each kernel is transformed once; the spectra are
mixed per frequency (a small complex matrix product per group); one inverse transform per output
channel.  The batch is processed in chunks so the spectra stay under :data:`MEMORY_BUDGET`.
Stride: computed at stride 1 and subsampled (rows are subsampled between inverse stages).
Dilation: the kernel taps are placed ``d`` apart in the transform buffer.
"""

from __future__ import annotations

import dataclasses
import math
import os
from functools import lru_cache

import numpy as np
import scipy.fft as sfft

from gpuconv import _threads
from gpuconv._spec import ConvSpec

#: threads for scipy.fft (module-level setting).
WORKERS: int = os.cpu_count() or 1
#: bytes of spectra (input + output of one batch chunk) a call keeps alive at once, roughly.
MEMORY_BUDGET: int = 1 << 30
#: "auto" (by cost estimate), "always" (where possible) or "never": use wrapped short transforms
#: with recomputed border bands (see :func:`plan`).
WRAP_MODE: str = "auto"
#: a complex kernel stage with k <= DFT_TAPS_PER_LOG2 * log2(L) taps is a direct DFT (a matrix
#: product) instead of a length-L FFT.  Off (0) by default: the product goes through the
#: multi-threaded BLAS, whose worker threads keep spinning after the call and then slow the
#: following pocketfft transforms 3-6x on a 2-core machine (measured); 3.0 is the break-even
#: threshold when BLAS runs alone.
DFT_TAPS_PER_LOG2: float = 0.0
#: fixed cost of one recomputed band, in transform-element units (python + small transforms).
_STRIP_OVERHEAD: float = 65536 * 10


def supports(spec: ConvSpec) -> str | None:
    """None: every canonical problem is supported."""
    return None


# --------------------------------------------------------------------------------------------
# shared helpers (also used by gpuconv.cpu.overlap_add)


def _work_dtype(dtype: np.dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype == np.int64:
        return np.dtype(np.float64)
    return dtype


def _finish(y: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Cast the work-dtype result back to the problem dtype (rounding for int64)."""
    if dtype == np.int64:
        return np.rint(y).astype(np.int64)
    return np.ascontiguousarray(y, dtype=dtype)


#: relative cost per element and per log2 of the length, by prime factor (pocketfft; measured on
#: batched complex64 transforms: 2048 -> 1.0, 2160 -> 1.18, 2058 -> 1.38, 2079 -> 1.40).
_RADIX_COST = {2: 1.0, 3: 1.3, 5: 1.35, 7: 1.45, 11: 1.5}


def _factor(n: int, primes=(2, 3, 5, 7, 11)) -> list[int] | None:
    """The prime factors of ``n`` if all are in ``primes``, else None."""
    out = []
    for p in primes:
        while n % p == 0:
            out.append(p)
            n //= p
    return out if n == 1 else None


def _len_cost(n: int, radix_cost: dict[int, float] = _RADIX_COST) -> float:
    """Rough cost of a length-n transform: n * sum over prime factors p of w_p * log2(p)
    (infinite when a factor has no weight in ``radix_cost``)."""
    f = _factor(n, tuple(radix_cost))
    if f is None:
        return math.inf
    return n * max(sum(radix_cost[p] * math.log2(p) for p in f), 1.0)


@lru_cache(maxsize=4096)
def fast_length(lmin: int, real: bool) -> int:
    """A transform length >= lmin, the cheapest of a few smooth candidates by :func:`_len_cost`."""
    lmin = max(int(lmin), 1)
    if lmin <= 16:
        return sfft.next_fast_len(lmin, real)
    cands = {sfft.next_fast_len(lmin, True), 1 << (lmin - 1).bit_length()}
    if not real:
        cands.add(sfft.next_fast_len(lmin, False))
    # a few more 5-smooth lengths just above
    n = sfft.next_fast_len(lmin, True)
    for _ in range(4):
        n = sfft.next_fast_len(n + 1, True)
        cands.add(n)
    return min(cands, key=lambda c: (_len_cost(c), c))


def _place(arr: np.ndarray, axis: int, length: int, positions: np.ndarray) -> np.ndarray:
    """A zero array like ``arr`` but ``length`` long on ``axis``, with ``arr``'s entries summed
    in at ``positions`` (indices already reduced mod ``length``)."""
    shape = list(arr.shape)
    shape[axis] = length
    buf = np.zeros(shape, dtype=arr.dtype)
    idx = (slice(None),) * axis + (positions,)
    if len(np.unique(positions)) == len(positions):
        buf[idx] = arr
    else:  # the kernel is longer than the transform: wrap it around (circular aliasing)
        np.add.at(buf, idx, arr)
    return buf


def _dft_matrix(positions: np.ndarray, length: int, dtype) -> np.ndarray:
    """``E[f, u] = exp(-2 pi i f positions[u] / length)`` (exact phases, reduced mod length)."""
    f = np.arange(length, dtype=np.int64)[:, None]
    ph = (f * positions[None, :].astype(np.int64)) % length
    return np.exp((-2j * np.pi / length) * ph).astype(dtype)


def _kernel_spectrum(
    wt: np.ndarray, axes, lengths, shifts, dilation, real: bool, workers: int
) -> np.ndarray:
    """Spectrum of the kernel placed wrapped: tap ``u`` of axis a at ``(shift_a - d_a*u) mod L_a``.

    Transformed axis by axis (last first), each stage only over the rows that are nonzero; a
    complex stage with few taps (``k <= DFT_TAPS_PER_LOG2 * log2 L``) is a direct DFT (one matrix
    product: the ``k`` nonzero rows times a ``L x k`` phase matrix), see DFT_TAPS_PER_LOG2.
    """
    arr = wt
    cdtype = np.result_type(wt.dtype, np.complex64)
    for i in reversed(range(len(axes))):
        ax, L = axes[i], lengths[i]
        k = arr.shape[ax]
        pos = (shifts[i] - dilation[i] * np.arange(k)) % L
        if real and i == len(axes) - 1:
            arr = sfft.rfft(_place(arr, ax, L, pos), axis=ax, workers=workers)
        elif k <= DFT_TAPS_PER_LOG2 * max(math.log2(L), 1.0):
            E = _dft_matrix(pos, L, cdtype)
            arr = np.moveaxis(
                np.matmul(E, np.moveaxis(arr.astype(cdtype, copy=False), ax, -2)), -2, ax
            )
        else:
            arr = sfft.fft(_place(arr, ax, L, pos), axis=ax, workers=workers, overwrite_x=True)
    return np.ascontiguousarray(arr)


def _forward(x: np.ndarray, axes, lengths, real: bool, workers: int) -> np.ndarray:
    """Spectrum of x zero-padded at the end of each axis to ``lengths`` (padding by scipy's
    ``n=``; the last axis is transformed first, so zero rows are never transformed)."""
    arr = x
    last = len(axes) - 1
    for i in reversed(range(len(axes))):
        ax, L = axes[i], lengths[i]
        if i == last:
            if real:
                arr = sfft.rfft(arr, n=L, axis=ax, workers=workers)
            else:
                arr = sfft.fft(arr, n=L, axis=ax, workers=workers)
        else:
            arr = sfft.fft(arr, n=L, axis=ax, workers=workers, overwrite_x=True)
    return arr


def _inverse(Y: np.ndarray, axes, lengths, keeps, real: bool, workers: int) -> np.ndarray:
    """Inverse transform axis by axis (first axis first), keeping ``keeps[i]`` (a slice) of each
    axis right after its stage so later stages transform fewer rows."""
    arr = Y
    last = len(axes) - 1
    for i in range(len(axes)):
        ax, L = axes[i], lengths[i]
        sl = (slice(None),) * ax + (keeps[i],)
        if i == last:
            if real:
                arr = sfft.irfft(arr, n=L, axis=ax, workers=workers)
            else:
                arr = sfft.ifft(arr, axis=ax, workers=workers, overwrite_x=True)
        else:
            arr = sfft.ifft(arr, axis=ax, workers=workers, overwrite_x=True)
        arr = arr[sl]
    return arr


def _mix(X: np.ndarray, H: np.ndarray, groups: int) -> np.ndarray:
    """Per-frequency channel mixing: ``Y[b, g*Cog+o, m, f] = sum_c X[b, g*Cig+c, m, f] *
    H[g*Cog+o, c, f]`` with X of shape (B, Cin, M, F), H of shape (Cout, Cig, F).

    May overwrite X (and return it)."""
    B, cin, M, F = X.shape
    cout, cig, _ = H.shape
    cog = cout // groups
    if cig == 1 and cog == 1:  # depthwise / one channel: in place
        X *= H[None, :, 0, None, :]
        return X
    if cig * cog <= 16 or B * M == 1 and cig * cog <= 64:
        Y = np.empty((B, cout, M, F), dtype=X.dtype)
        tmp = np.empty((B, M, F), dtype=X.dtype)
        for g in range(groups):
            for o in range(cog):
                oc = g * cog + o
                acc = Y[:, oc]
                np.multiply(X[:, g * cig], H[oc, 0], out=acc)
                for c in range(1, cig):
                    np.multiply(X[:, g * cig + c], H[oc, c], out=tmp)
                    acc += tmp
        return Y
    # batched matrix products over frequencies: (G, F, B*M, Cig) @ (G, F, Cig, Cog)
    Xt = X.reshape(B, groups, cig, M, F).transpose(1, 4, 0, 3, 2).reshape(groups, F, B * M, cig)
    Ht = H.reshape(groups, cog, cig, F).transpose(0, 3, 2, 1)
    Yt = np.matmul(Xt, Ht)  # (G, F, B*M, Cog)
    Yt = Yt.reshape(groups, F, B, M, cog).transpose(2, 0, 4, 3, 1)
    return np.ascontiguousarray(Yt).reshape(B, cout, M, F)


def batch_chunk(batch: int, per_item_bytes: int, budget: int | None = None) -> int:
    budget = MEMORY_BUDGET if budget is None else budget
    return max(1, min(batch, budget // max(per_item_bytes, 1)))


# --------------------------------------------------------------------------------------------


def _transform_cost(lengths) -> float:
    """Relative cost of one N-D transform of these lengths."""
    return math.prod(lengths) * sum(_len_cost(L) / L for L in lengths)


def _band_spec(spec: ConvSpec, axis: int, r0: int, r1: int):
    """The sub-problem giving outputs ``r0:r1`` along ``axis`` (everything else unchanged):
    ``(sub_spec, x_start, x_stop)`` or None when those outputs only see padding (zeros)."""
    n, lo, R, s = spec.in_shape[axis], spec.pad_lo[axis], spec.reach[axis], spec.stride[axis]
    x_start = s * r0 - lo
    x_end = s * (r1 - 1) + R - lo
    xs0, xs1 = min(max(x_start, 0), n), min(max(x_end, 0), n)
    if xs1 <= xs0:
        return None

    def put(t, v):
        return t[:axis] + (v,) + t[axis + 1 :]

    sub = dataclasses.replace(
        spec,
        in_shape=put(spec.in_shape, xs1 - xs0),
        pad_lo=put(spec.pad_lo, xs0 - x_start),
        pad_hi=put(spec.pad_hi, x_end - xs1),
    )
    return sub, xs0, xs1


def plan(spec: ConvSpec, real: bool, allow_wrap: bool = True):
    """Transform lengths per spatial axis, and per axis the output bands ``[(r0, r1), ...]`` that
    the main transform gets wrong and that are recomputed separately.

    Safe length: ``L >= n + max(pad_lo, pad_hi)`` and ``L >= out`` (stride 1), see the module
    docstring.  Shorter "wrapped" length ``L >= max(n, out)`` (e.g. 2048 for a 2048 'same'
    problem): the padded-window indices ``i < n - L`` and ``i >= L`` alias onto x, so the outputs
    ``p < n - L + pad_lo`` and ``p > L + pad_lo - reach`` are wrong; they are recomputed from a
    thin strip of x (a sub-problem with safe lengths).  Chosen per axis when the estimated cost
    (main transform + strips) is lower.
    """
    nd = spec.ndim
    safe, wrap_info = [], []
    for a in range(nd):
        n, lo, hi = spec.in_shape[a], spec.pad_lo[a], spec.pad_hi[a]
        R, s = spec.reach[a], spec.stride[a]
        full = spec.padded_shape[a] - R + 1
        ra = real and a == nd - 1
        Ls = fast_length(max(n + max(lo, hi), full, 1), ra)
        safe.append(Ls)
        info = None
        if allow_wrap and WRAP_MODE != "never":
            Lw = fast_length(max(n, full, 1), ra)
            if Lw < Ls:
                b_lo = max(0, n - Lw + lo)
                e_hi = Lw + lo - R + 1
                out = spec.out_shape[a]
                r_lo = min(out, -(-b_lo // s))
                r_hi = max(0, min(out, -(-e_hi // s)))
                if r_lo < r_hi:
                    bands = [b for b in ((0, r_lo), (r_hi, out)) if b[1] > b[0]]
                    info = (Lw, bands)
        wrap_info.append(info)
    lengths = list(safe)
    chosen = [[] for _ in range(nd)]
    for a in range(nd):
        if wrap_info[a] is None:
            continue
        Lw, bands = wrap_info[a]
        trial = lengths[:a] + [Lw] + lengths[a + 1 :]
        strips = 0.0
        for r0, r1 in bands:
            b = _band_spec(spec, a, r0, r1)
            if b is None:
                continue
            sub = b[0]
            Lsub = fast_length(
                max(
                    sub.in_shape[a] + max(sub.pad_lo[a], sub.pad_hi[a]),
                    sub.padded_shape[a] - sub.reach[a] + 1,
                ),
                real and a == nd - 1,
            )
            # + a fixed overhead per strip (python, small transforms) of ~64k elements
            strips += _transform_cost(lengths[:a] + [Lsub] + lengths[a + 1 :]) + _STRIP_OVERHEAD
        if WRAP_MODE == "always" or _transform_cost(trial) + strips < _transform_cost(lengths):
            lengths = trial
            chosen[a] = bands
    return tuple(lengths), chosen


def plan_lengths(spec: ConvSpec, real: bool = True) -> tuple[int, ...]:
    """Transform length per spatial axis (see :func:`plan`)."""
    return plan(spec, real and spec.dtype.kind != "c")[0]


def run(spec: ConvSpec, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    w = np.asarray(w)
    if x.shape != spec.x_shape or w.shape != spec.w_shape:
        raise ValueError(f"x {x.shape} / w {w.shape} do not match {spec.x_shape} / {spec.w_shape}")
    return _run(spec, x, w, True)


def _run(spec: ConvSpec, x: np.ndarray, w: np.ndarray, allow_wrap: bool) -> np.ndarray:
    work = _work_dtype(spec.dtype)
    real = work.kind == "f"
    x = x.astype(work, copy=False)
    wt = spec.kernel_for_correlation(w).astype(work, copy=False)
    nd = spec.ndim
    axes = tuple(range(2, 2 + nd))
    L, bands = plan(spec, real, allow_wrap)
    workers = _threads.budget() or WORKERS

    H = _kernel_spectrum(wt, axes, L, spec.pad_lo, spec.dilation, real, workers)
    fshape = H.shape[2:]
    F = math.prod(fshape)
    H = H.reshape(spec.c_out, spec.c_in // spec.groups, F)

    full = tuple(p - r + 1 for p, r in zip(spec.padded_shape, spec.reach, strict=False))
    keeps = tuple(slice(0, f, s) for f, s in zip(full, spec.stride, strict=False))
    csize = np.dtype(H.dtype).itemsize
    per_item = (spec.c_in + 2 * spec.c_out) * F * csize
    bc = batch_chunk(spec.batch, per_item)
    y = None
    for b0 in range(0, spec.batch, bc):
        xb = x[b0 : b0 + bc]
        X = _forward(xb, axes, L, real, workers)
        nb = X.shape[0]
        Y = _mix(X.reshape(nb, spec.c_in, 1, F), H, spec.groups)
        Y = Y.reshape((nb, spec.c_out) + fshape)
        del X
        yb = _inverse(Y, axes, L, keeps, real, workers)
        del Y
        if bc >= spec.batch and spec.dtype != np.int64:
            y = yb  # one chunk: keep scipy's output (a view), no copy
            break
        if y is None:
            y = np.empty(spec.y_shape, dtype=spec.dtype)
        y[b0 : b0 + nb] = np.rint(yb) if spec.dtype == np.int64 else yb
    # recompute the output bands the wrapped transform got wrong
    for a, blist in enumerate(bands):
        for r0, r1 in blist:
            sel = (slice(None), slice(None)) + (slice(None),) * a + (slice(r0, r1),)
            b = _band_spec(spec, a, r0, r1)
            if b is None:
                y[sel] = 0
                continue
            sub, xs0, xs1 = b
            xsel = (slice(None), slice(None)) + (slice(None),) * a + (slice(xs0, xs1),)
            y[sel] = _run(sub, x[xsel], w, False)
    return y
