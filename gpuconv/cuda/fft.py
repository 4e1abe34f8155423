"""FFT convolution of the canonical problem on the GPU: cuFFT (cupy.fft) + kernels_cuda/spectral.cu.

The design of :mod:`gpuconv.cpu.fft`, reduced to what pays on a GPU:

* **Short transforms, no padded copy.**  ``x`` sits at index 0 of a length-``L`` buffer (cuFFT's
  ``s=`` zero-fills it) and the kernel is placed *wrapped* at ``(pad_lo - d*u) mod L`` per axis,
  so the circular result equals the wanted output for every kept index when
  ``L >= n + max(pad_lo, pad_hi)`` and ``L >= padded - reach + 1`` (the CPU module's safe length;
  its shorter "wrapped" lengths with recomputed border bands are not used here: each band is a
  few extra launches that a GPU pays more for than the slightly longer transform).
* **Lengths** are 2-3-5-7-smooth (cuFFT's fast radices), the cheapest by a cost estimate among a
  few candidates, even on the last axis of a real transform (the R2C fast path).
* **Channel mixing** ``Y[n, g*Cog+o, f] = sum_c X[n, g*Cig+c, f] * H[g*Cog+o, c, f]`` is one pass of
  ``spectral_<c64|c128>`` (spectral.cu), whatever the groups and channels.
* **Precision.** float32 / complex64 stay single precision (cupy.fft does); float64 / complex128
  double; int64 computes in float64 and is rounded back (exact only for small magnitudes: the
  dispatcher checks).
* **Memory.**  The batch is processed in chunks so that spectra stay under
  :data:`MEMORY_BUDGET`; the kernel's spectrum is computed once per call.  cuFFT plans come from
  CuPy's plan cache (``cupy.fft.config.get_plan_cache()``).

Stride: computed at stride 1 and subsampled; dilation: taps placed ``d`` apart.
``run(spec, x, w, out=None)`` takes CuPy arrays of ``spec.dtype``, returns a CuPy array.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from gpuconv._spec import ConvSpec
from gpuconv.cpu import fft as _cpu_fft
from gpuconv.cuda import _build, _loader

SOURCE = "spectral.cu"
#: bytes of spectra of one batch chunk (input + output spectra + the real output) kept alive.
MEMORY_BUDGET: int = 1 << 30
#: problems whose kernel spectrum alone exceeds this are not taken (im2col / direct suit them).
MAX_KERNEL_SPECTRUM: int = 8 << 30
#: relative cost per element per log2 of a length, by radix (cuFFT: 2 fastest; rough).
_RADIX_COST = {2: 1.0, 3: 1.25, 5: 1.35, 7: 1.5}


def _factor7(n: int) -> list[int] | None:
    return _cpu_fft._factor(n, (2, 3, 5, 7))


def _len_cost(n: int) -> float:
    return _cpu_fft._len_cost(n, _RADIX_COST)


def smooth_between(lo: int, hi: int, even: bool = False) -> list[int]:
    """Every 2-3-5-7-smooth number in [lo, hi] (even ones only when ``even``), ascending.

    >>> smooth_between(10, 20), smooth_between(10, 20, even=True)
    ([10, 12, 14, 15, 16, 18, 20], [10, 12, 14, 16, 18, 20])
    """
    out = []
    p7 = 1
    while p7 <= hi:
        p5 = p7
        while p5 <= hi:
            p3 = p5
            while p3 <= hi:
                n = p3
                while n <= hi:
                    if n >= lo and (not even or n % 2 == 0):
                        out.append(n)
                    n *= 2
                p3 *= 3
            p5 *= 5
        p7 *= 7
    return sorted(out)


@lru_cache(maxsize=4096)
def fast_length(lmin: int, even: bool = False) -> int:
    """The cheapest 2-3-5-7-smooth length >= lmin by a cost estimate (even when ``even``).

    Candidates run up to the next power of two (always one of them).

    >>> fast_length(1), fast_length(7), fast_length(7, even=True), fast_length(1024)
    (1, 8, 8, 1024)
    """
    lmin = max(int(lmin), 1)
    hi = 1 << (lmin - 1).bit_length()
    cands = [n for n in smooth_between(lmin, hi) if not even or n % 2 == 0 or n == 1]
    return min(cands, key=lambda c: (_len_cost(c), c))


def lengths(spec: ConvSpec, real: bool) -> tuple[int, ...]:
    """Transform length per spatial axis: the safe length of :mod:`gpuconv.cpu.fft`."""
    out = []
    for a in range(spec.ndim):
        n, lo, hi = spec.in_shape[a], spec.pad_lo[a], spec.pad_hi[a]
        full = spec.padded_shape[a] - spec.reach[a] + 1
        out.append(fast_length(max(n + max(lo, hi), full, 1), even=real and a == spec.ndim - 1))
    return tuple(out)


def _work_dtype(dtype: np.dtype) -> np.dtype:
    return np.dtype(np.float64) if dtype == np.int64 else np.dtype(dtype)


def spectrum_shape(spec: ConvSpec, L, real: bool) -> tuple[int, ...]:
    return tuple(L[:-1]) + ((L[-1] // 2 + 1) if real else L[-1],)


def supports(spec: ConvSpec) -> str | None:
    """None when the problem fits (kernel spectrum under MAX_KERNEL_SPECTRUM), else why not."""
    work = _work_dtype(spec.dtype)
    real = work.kind == "f"
    L = lengths(spec, real)
    F = math.prod(spectrum_shape(spec, L, real))
    csize = 8 if work.itemsize == 4 or work == np.complex64 else 16
    hbytes = spec.c_out * (spec.c_in // spec.groups) * F * csize
    if hbytes > MAX_KERNEL_SPECTRUM:
        return f"the kernel spectrum would take {hbytes / 2**30:.1f} GiB"
    if spec.batch * spec.groups > 2**31 - 1 or spec.c_out > 2**31 - 1:
        return "too many batch items or channels"
    return None


def place(xp, arr, axis: int, length: int, shift: int, dilation: int):
    """A zero array like ``arr`` but ``length`` long on ``axis``, with tap ``u`` of ``arr`` summed
    in at ``(shift - dilation*u) mod length`` (the wrapped kernel; ``xp`` numpy or cupy)."""
    k = arr.shape[axis]
    shape = list(arr.shape)
    shape[axis] = length
    buf = xp.zeros(shape, dtype=arr.dtype)
    pos = [(shift - dilation * u) % length for u in range(k)]
    pre = (slice(None),) * axis
    if len(set(pos)) == k:  # no two taps share a position: one scatter
        buf[pre + (xp.asarray(np.asarray(pos, dtype=np.int64)),)] = arr
    else:  # the dilated kernel is longer than the transform: taps alias (circular sum)
        for u, p in enumerate(pos):
            buf[pre + (slice(p, p + 1),)] += arr[pre + (slice(u, u + 1),)]
    return buf


def kernel_spectrum(xp, fft, spec: ConvSpec, wt, L, real: bool):
    """Spectrum (c_out, Cig, *F) of the correlation kernel ``wt`` placed wrapped at lengths L."""
    arr = wt
    for i in reversed(range(spec.ndim)):
        arr = place(xp, arr, 2 + i, L[i], spec.pad_lo[i], spec.dilation[i])
    axes = tuple(range(2, 2 + spec.ndim))
    return fft.rfftn(arr, axes=axes) if real else fft.fftn(arr, axes=axes)


def spectral_launch(F: int, items: int):
    """(grid, block) of ``spectral_*`` for F frequencies and ``items`` (n, g, o-block) items."""
    b = _build.SPECTRAL_BLOCK
    return (-(-F // b), max(1, min(items, _build.GRID_YZ_MAX)), 1), (b, 1, 1)


def spectral_args(X, H, Y, F: int, nb: int, spec: ConvSpec) -> tuple:
    return (
        X, H, Y, np.int64(F), np.int32(nb), np.int32(spec.c_in), np.int32(spec.c_out),
        np.int32(spec.groups),
    )  # fmt: skip


def batch_chunk(spec: ConvSpec, F: int, L, csize: int, rsize: int, budget=None) -> int:
    budget = MEMORY_BUDGET if budget is None else budget
    per_item = (spec.c_in + spec.c_out) * F * csize + spec.c_out * math.prod(L) * rsize
    return max(1, min(spec.batch, budget // max(per_item, 1)))


def run(spec: ConvSpec, x, w, out=None):
    """y of the canonical problem for CuPy arrays ``x``, ``w`` (into ``out`` when given)."""
    from gpuconv.cuda.direct import prepare

    cp, x, w, y = prepare(spec, x, w, out, supports(spec), "the GPU FFT path")
    work = _work_dtype(spec.dtype)
    real = work.kind == "f"
    cdtype = np.result_type(work, np.complex64)
    csuffix = _build.DTYPE_SUFFIX[np.dtype(cdtype).name]
    kern = _loader.get_function(SOURCE, f"spectral_{csuffix}", _build.spectral_defines())

    nd = spec.ndim
    axes = tuple(range(2, 2 + nd))
    L = lengths(spec, real)
    fshape = spectrum_shape(spec, L, real)
    F = math.prod(fshape)
    cig = spec.c_in // spec.groups
    cog = spec.c_out // spec.groups

    wt = spec.kernel_for_correlation(w).astype(work, copy=False)
    H = kernel_spectrum(cp, cp.fft, spec, wt, L, real)
    H = cp.ascontiguousarray(H.astype(cdtype, copy=False)).reshape(spec.c_out, cig, F)

    full = tuple(p - r + 1 for p, r in zip(spec.padded_shape, spec.reach))
    keep = (slice(None), slice(None)) + tuple(slice(0, f, s) for f, s in zip(full, spec.stride))
    bc = batch_chunk(spec, F, L, np.dtype(cdtype).itemsize, work.itemsize)
    nob = -(-cog // _build.CO_PER_THREAD)
    for b0 in range(0, spec.batch, bc):
        xb = x[b0 : b0 + bc].astype(work, copy=False)
        nb = xb.shape[0]
        X = cp.fft.rfftn(xb, s=L, axes=axes) if real else cp.fft.fftn(xb, s=L, axes=axes)
        X = cp.ascontiguousarray(X.astype(cdtype, copy=False)).reshape(nb, spec.c_in, F)
        Y = cp.empty((nb, spec.c_out, F), dtype=cdtype)
        grid, block = spectral_launch(F, nb * spec.groups * nob)
        _loader.launch(kern, grid, block, spectral_args(X, H, Y, F, nb, spec))
        del X
        Y = Y.reshape((nb, spec.c_out) + fshape)
        yb = cp.fft.irfftn(Y, s=L, axes=axes) if real else cp.fft.ifftn(Y, s=L, axes=axes)
        del Y
        yb = yb[keep]
        if spec.dtype == np.int64:
            yb = cp.rint(yb)
        y[b0 : b0 + nb] = yb  # casts to spec.dtype
    return y
