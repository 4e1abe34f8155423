"""CPU convolution by im2col + GEMM.

For each group, a chunk of images ``n0:n0+nb`` and a chunk of flat output positions ``p0:p0+pn``
a numba kernel (serial, GIL-free, run on slices by ``FILL_THREADS`` Python threads) writes the
column matrix ``cols[b, c*K + t, q]`` (``K = prod(kernel_shape)``, ``t`` the flat tap index,
``q`` the flat output position) = the input sample the tap ``t`` of output position ``p0 + q``
reads, or 0 where that sample lies in the zero padding.  The padded
input is never materialised.  Then ``w_g (Cog, Cig*K) @ cols (nb, Cig*K, pn)`` (numpy, BLAS for
float/complex, numpy's exact wrap-around loop for int64) lands straight in the output, whose
``(batch, c_out, prod(out_shape))`` view makes every chunk a BLAS-compatible strided block.

1-D and 2-D problems are promoted to 3-D with leading singleton axes so one compiled kernel per
dtype serves all; problems with more than 3 spatial axes use a numpy ``sliding_window_view``
im2col (padding materialised there) with the same chunking and GEMM.
"""

from __future__ import annotations

import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from math import prod

import numba
import numpy as np
from numba import njit, uintp
from numpy.lib.stride_tricks import sliding_window_view

from gpuconv import _timing
from gpuconv._spec import ConvSpec

#: Default cap on the column matrix's size; ``run(..., budget_bytes=...)`` overrides it.
#: 8 MiB measured faster than 64 MiB on the 2-core reference machine (chunks stay in cache
#: between the fill and the GEMM; see bench/NOTES-cpu-im2col-separable.md).
COLUMN_BUDGET_BYTES = 8 * 2**20


def supports(spec: ConvSpec) -> str | None:
    """None: every canonical problem is supported (ndim > 3 through a numpy im2col)."""
    return None


@njit(cache=True, nogil=True)
def _im2col3d(
    x, n0, c0, p0, kd, kh, kw, sd, sh, sw, dd, dh, dw, pd, ph, pw, oh, ow, cols, r0, r1, q0, q1
):
    """Fill rows ``r0:r1`` (flat over ``(b, row)``), columns ``q0:q1`` of ``cols``.

    ``cols`` (nb, cn*kd*kh*kw, pn) C-contiguous, from ``x`` (N, C, D, H, W) C-contiguous:
    ``cols[b, c*KK + t, q]`` = ``xpad[n0+b, c0+c, zd*sd + jd*dd, zh*sh + jh*dh, zw*sw + jw*dw]``
    with ``(zd, zh, zw)`` the output position ``p0 + q`` (row-major over ``(od, oh, ow)``),
    ``(jd, jh, jw)`` the tap ``t`` and ``xpad`` ``x`` with ``(pd, ph, pw)`` zeros before each
    spatial axis (and as many as needed after).  Serial and GIL-free: :func:`_fill` runs slices
    of it on a few Python threads (numba's OpenMP workers spin after a parallel region and
    starve the OpenBLAS threads of the GEMM that follows; measured up to 40x slower).
    """
    nb, rows, pn = cols.shape
    D, H, W = x.shape[2], x.shape[3], x.shape[4]
    khw = kh * kw
    KK = kd * khw
    ohw = oh * ow
    end = p0 + q1
    for r in range(r0, r1):
        b = r // rows
        row = r - b * rows
        c = row // KK
        t = row - c * KK
        jd = t // khw
        t2 = t - jd * khw
        jh = t2 // kw
        jw = t2 - jh * kw
        img = x[n0 + b, c0 + c]
        dst = cols[b, row]
        xoff = jw * dw - pw
        # output columns zw with 0 <= zw*sw + xoff < W: [wlo, whi)  (Python floor division)
        wlo = max((-xoff + sw - 1) // sw, 0)
        whi = min((W - 1 - xoff) // sw + 1, ow)
        p = p0 + q0
        q = q0
        # the output position (zd, zh, zw0) of p, then stepped one output row per segment (no
        # divisions in the loop: with short rows they cost as much as the copies)
        zd = p // ohw
        rem = p - zd * ohw
        zh = rem // ow
        zw0 = rem - zh * ow
        while p < end:
            seg = min(ow - zw0, end - p)
            zw1 = zw0 + seg
            iz = zd * sd + jd * dd - pd
            iy = zh * sh + jh * dh - ph
            # uintp indices: no negative-index wraparound check, so the copies vectorise
            if iz < 0 or iz >= D or iy < 0 or iy >= H:
                for i in range(q, q + seg):
                    dst[uintp(i)] = 0
            else:
                lo = min(max(wlo, zw0), zw1)
                hi = max(min(whi, zw1), lo)
                xrow = img[iz, iy]
                for i in range(q, q + lo - zw0):
                    dst[uintp(i)] = 0
                q1_ = q + lo - zw0
                if sw == 1:
                    for i in range(hi - lo):
                        dst[uintp(q1_ + i)] = xrow[uintp(lo + xoff + i)]
                else:
                    for i in range(hi - lo):
                        dst[uintp(q1_ + i)] = xrow[uintp((lo + i) * sw + xoff)]
                for i in range(q + hi - zw0, q + seg):
                    dst[uintp(i)] = 0
            q += seg
            p += seg
            zw0 = 0
            zh += 1
            if zh == oh:
                zh = 0
                zd += 1


#: Threads filling the column matrix (None: half of numba.get_num_threads(), at least 1: the
#: OpenBLAS workers of the previous GEMM busy-wait for a while and a fill using every core
#: fights them; on 2 cores one fill thread measured fastest).
FILL_THREADS: int | None = None
#: Chunks with fewer elements than this are filled on the calling thread.
_MIN_PARALLEL_ELEMS = 1 << 16
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor(n: int) -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers < n:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="gpuconv-im2col")
        return _pool


def _fill(args, cols):
    """Run :func:`_im2col3d` over all of ``cols``, split over threads by rows or columns."""
    nb, rows, pn = cols.shape
    nthreads = FILL_THREADS or max(1, numba.get_num_threads() // 2)
    R = nb * rows
    if nthreads <= 1 or cols.size < _MIN_PARALLEL_ELEMS:
        _im2col3d(*args, cols, 0, R, 0, pn)
        return
    if R >= 4 * nthreads:
        cuts = [R * i // nthreads for i in range(nthreads + 1)]
        parts = [(cuts[i], cuts[i + 1], 0, pn) for i in range(nthreads)]
    else:
        cuts = [pn * i // nthreads for i in range(nthreads + 1)]
        parts = [(0, R, cuts[i], cuts[i + 1]) for i in range(nthreads)]
    ex = _executor(nthreads - 1)
    futs = [ex.submit(_im2col3d, *args, cols, *part) for part in parts[1:]]
    _im2col3d(*args, cols, *parts[0])
    for f in futs:
        f.result()


def _chunks(spec: ConvSpec, kg: int, budget: int) -> tuple[int, int]:
    """(images per chunk, output positions per chunk) for a column matrix of ``kg`` rows."""
    npos = prod(spec.out_shape)
    per_pos = kg * spec.dtype.itemsize
    per_image = per_pos * npos
    if per_image <= budget:
        return max(1, min(spec.batch, budget // per_image)), npos
    return 1, max(1, min(npos, budget // per_pos))


def _weights(spec: ConvSpec, w: np.ndarray) -> np.ndarray:
    """The correlation kernel as a C-contiguous (c_out, Cig*K) matrix of spec.dtype."""
    wt = spec.kernel_for_correlation(np.asarray(w))
    return np.ascontiguousarray(wt, dtype=spec.dtype).reshape(spec.c_out, -1)


def run(spec: ConvSpec, x: np.ndarray, w: np.ndarray, *, budget_bytes: int | None = None):
    """y of the canonical problem by im2col + GEMM (see the module docstring)."""
    budget = COLUMN_BUDGET_BYTES if budget_bytes is None else int(budget_bytes)
    x = np.ascontiguousarray(x, dtype=spec.dtype)
    if x.shape != spec.x_shape:
        raise ValueError(f"x has shape {x.shape}, spec wants {spec.x_shape}")
    if tuple(np.shape(w)) != spec.w_shape:
        raise ValueError(f"w has shape {np.shape(w)}, spec wants {spec.w_shape}")
    wm = _weights(spec, w)
    g = spec.groups
    cig, cog = spec.c_in // g, spec.c_out // g
    K = prod(spec.kernel_shape)
    kg = cig * K
    npos = prod(spec.out_shape)
    y = np.empty(spec.y_shape, dtype=spec.dtype)
    y3 = y.reshape(spec.batch, spec.c_out, npos)
    N = spec.batch

    # 1x1 kernel, unit stride, no padding: the input already is the column matrix.
    if (
        K == 1
        and all(s == 1 for s in spec.stride)
        and not any(spec.pad_lo)
        and not any(spec.pad_hi)
    ):
        x3 = x.reshape(N, spec.c_in, npos)
        for gi in range(g):
            np.matmul(
                wm[gi * cog : (gi + 1) * cog],
                x3[:, gi * cig : (gi + 1) * cig],
                out=y3[:, gi * cog : (gi + 1) * cog],
            )
        return y

    nb, pn = _chunks(spec, kg, budget)
    buf = np.empty(nb * kg * pn, dtype=spec.dtype)

    fill = _column_filler(spec, x, buf, kg)

    for gi in range(g):
        wg = wm[gi * cog : (gi + 1) * cog]
        for n0 in range(0, N, nb):
            nbc = min(nb, N - n0)
            for p0 in range(0, npos, pn):
                pnc = min(pn, npos - p0)
                cols = fill(n0, nbc, gi * cig, p0, pnc)
                out = y3[n0 : n0 + nbc, gi * cog : (gi + 1) * cog, p0 : p0 + pnc]
                np.matmul(wg, cols, out=out)
    return y


def _column_filler(spec: ConvSpec, x: np.ndarray, buf: np.ndarray, kg: int):
    """``fill(n0, nbc, c0, p0, pnc)``: the columns of images ``n0..n0+nbc``, channels from ``c0``
    and output positions ``p0..p0+pnc``, written into ``buf`` (numba for up to 3 spatial axes)."""
    if spec.ndim > 3:
        return _numpy_filler(spec, x, buf, kg)
    lead = 3 - spec.ndim
    x5 = x.reshape((spec.batch, spec.c_in) + (1,) * lead + spec.in_shape)
    k3 = (1,) * lead + spec.kernel_shape
    s3 = (1,) * lead + spec.stride
    d3 = (1,) * lead + spec.dilation
    p3 = (0,) * lead + spec.pad_lo
    o3 = (1,) * lead + spec.out_shape

    def fill(n0, nbc, c0, p0, pnc):
        cols = buf[: nbc * kg * pnc].reshape(nbc, kg, pnc)
        _fill((x5, n0, c0, p0, *k3, *s3, *d3, *p3, o3[1], o3[2]), cols)
        return cols

    return fill


def _numpy_filler(spec: ConvSpec, x: np.ndarray, buf: np.ndarray, kg: int):
    """im2col for any number of spatial axes with sliding_window_view (pads x once)."""
    nd = spec.ndim
    cig = spec.c_in // spec.groups
    xp = spec.padded_input(x)
    spatial = tuple(range(2, 2 + nd))
    win = sliding_window_view(xp, spec.reach, axis=spatial)
    win = win[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in spec.stride)]
    win = win[(Ellipsis,) + tuple(slice(None, None, d) for d in spec.dilation)]
    win = win[(slice(None), slice(None)) + tuple(slice(0, o) for o in spec.out_shape)]
    # (N, C, *out, *k) -> (N, C, *k, *out), then flat positions last
    perm = (0, 1) + tuple(range(2 + nd, 2 + 2 * nd)) + spatial
    win = win.transpose(perm)
    out_shape = spec.out_shape

    def fill(n0, nbc, c0, p0, pnc):
        cols = buf[: nbc * kg * pnc].reshape(nbc, kg, pnc)
        src = win[n0 : n0 + nbc, c0 : c0 + cig]
        cols[...] = _flat_positions(src, nbc, kg, out_shape, p0, pnc)
        return cols

    return fill


def _flat_positions(src, nbc, kg, out_shape, p0, pn):
    """The (nbc, kg, pn) slab of ``src`` (nbc, Cig, *k, *out) at flat positions p0:p0+pn."""
    nd = len(out_shape)
    inner = prod(out_shape[1:])
    # positions p0:p0+pn span rows a0:a1 of the first output axis
    a0, a1 = p0 // inner, -(-(p0 + pn) // inner)
    part = src[(Ellipsis, slice(a0, a1)) + (slice(None),) * (nd - 1)]
    part = np.reshape(part, (nbc, kg, (a1 - a0) * inner))  # copies rows a0:a1 only
    off = p0 - a0 * inner
    return part[:, :, off : off + pn]


# --------------------------------------------------------------------------------------------
# backward ops: col2im (backward_data) and the column matrix contracted with dy (backward_weight)


def supports_backward_data(spec: ConvSpec) -> str | None:
    """None if :func:`run_backward_data` (col2im) handles ``spec``: 1 to 3 spatial axes."""
    if spec.ndim > 3:
        return f"col2im supports 1 to 3 spatial axes, got {spec.ndim}"
    return None


def supports_backward_weight(spec: ConvSpec) -> str | None:
    """None: every canonical problem (ndim > 3 through the numpy im2col)."""
    return None


@njit(cache=True, nogil=True)
def _col2im3d(dx, n0, c0, kd, kh, kw, sd, sh, sw, dd, dh, dw, pd, ph, pw, oh, ow, p0, cols, r0, r1):
    """Scatter-add rows ``r0:r1`` (flat over ``(b, row)``) of ``cols`` into ``dx``.

    The exact transpose of :func:`_im2col3d`: ``dx[n0+b, c0+c, zd*sd + jd*dd - pd, ...] +=
    cols[b, c*KK + t, q]`` for every output position ``p0 + q`` and tap ``t`` whose sample lies
    inside ``dx``.  Rows ``r0:r1`` must cover whole ``(b, c)`` planes when several threads run
    (each plane of ``dx`` is then written by one thread only).  Within one row distinct output
    positions hit distinct samples, so the inner loops vectorise.
    """
    nb, rows, pn = cols.shape
    D, H, W = dx.shape[2], dx.shape[3], dx.shape[4]
    khw = kh * kw
    KK = kd * khw
    ohw = oh * ow
    end = p0 + pn
    for r in range(r0, r1):
        b = r // rows
        row = r - b * rows
        c = row // KK
        t = row - c * KK
        jd = t // khw
        t2 = t - jd * khw
        jh = t2 // kw
        jw = t2 - jh * kw
        img = dx[n0 + b, c0 + c]
        src = cols[b, row]
        xoff = jw * dw - pw
        wlo = max((-xoff + sw - 1) // sw, 0)
        whi = min((W - 1 - xoff) // sw + 1, ow)
        p = p0
        q = 0
        while p < end:
            zd = p // ohw
            rem = p - zd * ohw
            zh = rem // ow
            zw0 = rem - zh * ow
            seg = min(ow - zw0, end - p)
            zw1 = zw0 + seg
            iz = zd * sd + jd * dd - pd
            iy = zh * sh + jh * dh - ph
            if iz >= 0 and iz < D and iy >= 0 and iy < H:
                lo = min(max(wlo, zw0), zw1)
                hi = max(min(whi, zw1), lo)
                xrow = img[iz, iy]
                q1_ = q + lo - zw0
                if sw == 1:
                    for i in range(hi - lo):
                        xrow[uintp(lo + xoff + i)] += src[uintp(q1_ + i)]
                else:
                    for i in range(hi - lo):
                        xrow[uintp((lo + i) * sw + xoff)] += src[uintp(q1_ + i)]
            q += seg
            p += seg


def _scatter(args, cols, KK):
    """Run :func:`_col2im3d` over all of ``cols``, split over threads at plane boundaries."""
    nb, rows, pn = cols.shape
    nthreads = FILL_THREADS or max(1, numba.get_num_threads() // 2)
    planes = nb * rows // KK
    if nthreads <= 1 or cols.size < _MIN_PARALLEL_ELEMS or planes < 2:
        _col2im3d(*args, cols, 0, nb * rows)
        return
    nthreads = min(nthreads, planes)
    cuts = [planes * i // nthreads * KK for i in range(nthreads + 1)]
    ex = _executor(nthreads - 1)
    futs = [ex.submit(_col2im3d, *args, cols, cuts[i], cuts[i + 1]) for i in range(1, nthreads)]
    _col2im3d(*args, cols, cuts[0], cuts[1])
    for f in futs:
        f.result()


def run_backward_data(
    spec: ConvSpec, dy: np.ndarray, w: np.ndarray, *, budget_bytes: int | None = None
) -> np.ndarray:
    """``dx`` of ``spec`` from ``dy`` and ``w``: ``cols = w_g^T @ dy_g`` (BLAS), then col2im.

    Chunked over images and output positions like :func:`run` (the column matrix stays under
    the budget); ``dx`` accumulates over the chunks.  No zero-inserted ``dy`` is built.
    """
    reason = supports_backward_data(spec)
    if reason is not None:
        raise ValueError(reason)
    budget = COLUMN_BUDGET_BYTES if budget_bytes is None else int(budget_bytes)
    dy = np.ascontiguousarray(dy, dtype=spec.dtype)
    if dy.shape != spec.y_shape:
        raise ValueError(f"dy has shape {dy.shape}, spec wants {spec.y_shape}")
    if tuple(np.shape(w)) != spec.w_shape:
        raise ValueError(f"w has shape {np.shape(w)}, spec wants {spec.w_shape}")
    wm = _weights(spec, w)
    g = spec.groups
    cig, cog = spec.c_in // g, spec.c_out // g
    K = prod(spec.kernel_shape)
    kg = cig * K
    npos = prod(spec.out_shape)
    N = spec.batch
    dx = np.zeros(spec.x_shape, dtype=spec.dtype)
    dy3 = dy.reshape(N, spec.c_out, npos)
    lead = 3 - spec.ndim
    dx5 = dx.reshape((N, spec.c_in) + (1,) * lead + spec.in_shape)
    k3 = (1,) * lead + spec.kernel_shape
    s3 = (1,) * lead + spec.stride
    d3 = (1,) * lead + spec.dilation
    p3 = (0,) * lead + spec.pad_lo
    o3 = (1,) * lead + spec.out_shape
    nb, pn = _chunks(spec, kg, budget)
    buf = np.empty(nb * kg * pn, dtype=spec.dtype)
    for gi in range(g):
        wgt = wm[gi * cog : (gi + 1) * cog].T  # (kg, cog)
        for n0 in range(0, N, nb):
            nbc = min(nb, N - n0)
            for p0 in range(0, npos, pn):
                pnc = min(pn, npos - p0)
                cols = buf[: nbc * kg * pnc].reshape(nbc, kg, pnc)
                np.matmul(
                    wgt, dy3[n0 : n0 + nbc, gi * cog : (gi + 1) * cog, p0 : p0 + pnc], out=cols
                )
                _scatter((dx5, n0, gi * cig, *k3, *s3, *d3, *p3, o3[1], o3[2], p0), cols, K)
    return dx


def run_backward_weight(
    spec: ConvSpec, x: np.ndarray, dy: np.ndarray, *, budget_bytes: int | None = None
) -> np.ndarray:
    """``dw`` of ``spec`` from ``x`` and ``dy``: ``dw_g += dy_g @ cols^T`` over the chunks of
    the same column matrix :func:`run` builds (BLAS, batched over the images of a chunk)."""
    budget = COLUMN_BUDGET_BYTES if budget_bytes is None else int(budget_bytes)
    x = np.ascontiguousarray(x, dtype=spec.dtype)
    dy = np.ascontiguousarray(dy, dtype=spec.dtype)
    if x.shape != spec.x_shape:
        raise ValueError(f"x has shape {x.shape}, spec wants {spec.x_shape}")
    if dy.shape != spec.y_shape:
        raise ValueError(f"dy has shape {dy.shape}, spec wants {spec.y_shape}")
    g = spec.groups
    cig, cog = spec.c_in // g, spec.c_out // g
    K = prod(spec.kernel_shape)
    kg = cig * K
    npos = prod(spec.out_shape)
    N = spec.batch
    dy3 = dy.reshape(N, spec.c_out, npos)
    dwm = np.zeros((spec.c_out, kg), dtype=spec.dtype)
    nb, pn = _chunks(spec, kg, budget)
    buf = np.empty(nb * kg * pn, dtype=spec.dtype)
    fill = _column_filler(spec, x, buf, kg)
    for gi in range(g):
        acc = dwm[gi * cog : (gi + 1) * cog]
        for n0 in range(0, N, nb):
            nbc = min(nb, N - n0)
            for p0 in range(0, npos, pn):
                pnc = min(pn, npos - p0)
                cols = fill(n0, nbc, gi * cig, p0, pnc)
                dyc = dy3[n0 : n0 + nbc, gi * cog : (gi + 1) * cog, p0 : p0 + pnc]
                if nbc == 1:
                    acc += dyc[0] @ cols[0].T
                else:
                    acc += np.matmul(dyc, cols.transpose(0, 2, 1)).sum(axis=0)
    dw = dwm.reshape(spec.w_shape)
    if spec.flip:
        dw = np.ascontiguousarray(spec.kernel_for_correlation(dw))
    return dw


def _noting_blas(fn):
    """``fn``, recording when its BLAS calls are over (see gpuconv._timing.BLAS_SPIN_S), without
    numpy's floating-point warnings (the numba algorithms and scipy raise none either)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            # an inf times a zero is NaN in any convolution; numpy would also warn about it
            with np.errstate(invalid="ignore", over="ignore"):
                return fn(*args, **kwargs)
        finally:
            _timing.note_blas()

    return wrapper


run = _noting_blas(run)
run_backward_data = _noting_blas(run_backward_data)
run_backward_weight = _noting_blas(run_backward_weight)
