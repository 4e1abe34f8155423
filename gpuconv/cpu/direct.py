"""CPU direct convolution (numba), the canonical problem of :mod:`gpuconv._spec`.

Method
------
Every problem is brought to a 3-D core of shape ``(batch, c_in, D, H, W)`` (1-D and 2-D problems
get leading singleton spatial axes, which cost nothing).  The unit of work is a *tile*: ``RB``
consecutive output rows times one column segment of up to ``SEG`` outputs, of one
``(n, o, od)``.  Tiles are flattened over ``(n, o, od, row tile, segment)`` and spread over the
threads with ``prange`` (dynamic chunks), so one long 1-D signal is parallelised over its
segments, an image over its row tiles, and a batch of small problems over batch and channels.

Per tile and per (input channel, kernel plane) the input rows the tile reads are *staged* into a
per-thread scratch buffer, with the column zero padding written in and, for a column stride
``s > 1``, split into ``s`` phases (so every tap becomes a unit-stride slice).  Each staged row
serves all ``RB`` output rows and all kernel rows that touch it.  Then every tap covers the whole
segment and the taps of one output row (all kernel rows, all columns) are applied in fused
groups of 8 (then 4, then 1)::

    for m in range(width):                       # LLVM vectorises this: zmm FMAs
        a = y[m]
        a += k0 * s0[m]; a += k1 * s1[m]; ...; a += k7 * s7[m]
        y[m] = a

which needs one accumulator load/store per 8 FMAs.  Indices are ``uintp`` so numba emits no
negative-index wraparound (which would block vectorisation).  Kernel rows/planes that fall into
the padding are skipped.  Skipping a zero product is exact *unless* the kernel holds inf/NaN
(``0 * inf`` is NaN in the canonical formula), so for a non-finite kernel the input is padded
explicitly and the same core runs with zero pads, which reproduces the formula exactly.

Accumulation is in the problem's dtype (float32 in float32 like OpenCV, int64 exactly with
wrap-around) in a fixed sequential tap order; the only fast-math flag is ``contract`` (fused
multiply-add), so NaN/inf propagate as in IEEE arithmetic.  See bench/NOTES-cpu-direct.md.

A 3x3 kernel on one input channel per output (image filtering, 2-D, column stride 1) has a
kernel of its own (:func:`_build_core3x3`): it reads x in place and writes each output row in
one fused pass of its 9 taps, with no staging copy and no zeroing pass; the general core, tried
with the same changes, lost 5-20 % on channels and 3-D problems (bench/NOTES-cpu-direct.md).

One numba compilation per dtype (five in all, each kernel), compiled lazily on first use and
cached on disk.
"""

from __future__ import annotations

import numpy as np

from gpuconv._spec import ConvSpec

__all__ = ["supports", "run"]

#: Output-row segment length (elements); a segment and the kernel rows it reads stay in L1/L2.
SEG = 2048

#: Work is split into at most this many contiguous chunks of row segments (prange iterations).
NCHUNKS = 256

#: Output rows per tile: the tile's input rows are staged (column-padded) once for all of them.
RB = 8

#: prange chunk size for numba's dynamic scheduling (0 would be static, equal shares).
CHUNKSIZE = 4

_KERNELS: dict = {}  # builder -> its kernel


def supports(spec: ConvSpec) -> str | None:
    """None if :func:`run` handles ``spec``, else a short reason."""
    if spec.ndim > 3:
        return f"direct CPU supports 1 to 3 spatial axes, got {spec.ndim}"
    if np.dtype(spec.dtype) not in (
        np.dtype(np.float32),
        np.dtype(np.float64),
        np.dtype(np.complex64),
        np.dtype(np.complex128),
        np.dtype(np.int64),
    ):
        return f"unsupported dtype {spec.dtype}"
    return None


def _get_core():
    return _compiled(_build_core)


def _compiled(build):
    """``build()``'s kernel, built once (numba compiles it at its first call, per dtype)."""
    kernel = _KERNELS.get(build)
    if kernel is None:
        kernel = _KERNELS[build] = build()
    return kernel


def _build_core():
    from numba import njit, prange, uintp

    @njit(parallel=True, cache=True, fastmath={"contract"}, nogil=True)
    def core(x, w, y, groups, sd, sh, sw, dd, dh, dw, pd, ph, pw, seg, rb, nchunks):
        nb, cin, xd, xh, xw = x.shape
        cout, cig, kd_n, kh_n, kw_n = w.shape
        _, _, od_n, oh_n, ow_n = y.shape
        cog = cout // groups
        seg = min(seg, ow_n)
        rb = min(rb, oh_n)
        nseg = (ow_n + seg - 1) // seg
        ntile = (oh_n + rb - 1) // rb
        total = nb * cout * od_n * ntile * nseg
        ktaps = kh_n * kw_n
        # scratch: the input rows one tile reads, column-padded, split into sw phases
        nrows_max = (rb - 1) * sh + (kh_n - 1) * dh + 1
        plen_max = seg + ((kw_n - 1) * dw) // sw + 1
        xf = x.reshape(-1)
        wf = w.reshape(-1)
        yf = y.reshape(-1)
        zero = y.dtype.type(0)
        nch = min(nchunks, total)
        for chunk in prange(nch):
            buf = np.empty(nrows_max * sw * plen_max, dtype=y.dtype)
            rowok = np.empty(nrows_max, dtype=np.bool_)
            kv = np.empty(ktaps, dtype=y.dtype)
            toff = np.empty(ktaps, dtype=np.int64)
            for item in range(chunk * total // nch, (chunk + 1) * total // nch):
                s = item % nseg
                rest = item // nseg
                tile = rest % ntile
                rest //= ntile
                od = rest % od_n
                rest //= od_n
                o = rest % cout
                n = rest // cout
                c0 = s * seg
                c1 = min(c0 + seg, ow_n)
                width = c1 - c0
                oh0 = tile * rb
                oh1 = min(oh0 + rb, oh_n)
                nrows = (oh1 - 1 - oh0) * sh + (kh_n - 1) * dh + 1
                plen = width + ((kw_n - 1) * dw) // sw + 1
                ih0 = oh0 * sh - ph
                ybase0 = (((n * cout + o) * od_n + od) * oh_n) * ow_n + c0
                for oh in range(oh0, oh1):
                    yb = ybase0 + oh * ow_n
                    for m in range(width):
                        yf[uintp(yb + m)] = zero
                g = o // cog
                for c in range(cig):
                    ci = g * cig + c
                    for kd in range(kd_n):
                        idd = od * sd + kd * dd - pd
                        if idd < 0 or idd >= xd:
                            continue
                        # fill the scratch: row rr, phase p, element m holds padded input
                        # column (c0 + m) * sw + p, i.e. input column (c0 + m) * sw + p - pw
                        xplane = ((n * cin + ci) * xd + idd) * xh
                        # stage only the rows some tap reads (large stride/dilation skip rows)
                        for rr in range(nrows):
                            rowok[rr] = False
                        for oh in range(oh0, oh1):
                            for kh in range(kh_n):
                                rowok[(oh - oh0) * sh + kh * dh] = True
                        anyrow = False
                        for rr in range(nrows):
                            ih = ih0 + rr
                            ok = rowok[rr] and ih >= 0 and ih < xh
                            rowok[rr] = ok
                            if not ok:
                                continue
                            anyrow = True
                            xrow = (xplane + ih) * xw
                            for p in range(sw):
                                bb = (rr * sw + p) * plen
                                q0 = c0 * sw + p - pw  # input column of m = 0
                                # valid m: 0 <= q0 + m * sw < xw
                                mlo = 0
                                if q0 < 0:
                                    mlo = min((-q0 + sw - 1) // sw, plen)
                                mhi = 0
                                if xw - q0 > 0:
                                    mhi = min((xw - q0 + sw - 1) // sw, plen)
                                mhi = max(mhi, mlo)
                                for m in range(mlo):
                                    buf[uintp(bb + m)] = zero
                                if sw == 1:
                                    for m in range(mlo, mhi):
                                        buf[uintp(bb + m)] = xf[uintp(xrow + q0 + m)]
                                else:
                                    for m in range(mlo, mhi):
                                        buf[uintp(bb + m)] = xf[uintp(xrow + q0 + m * sw)]
                                for m in range(mhi, plen):
                                    buf[uintp(bb + m)] = zero
                        if not anyrow:
                            continue
                        wbase = ((o * cig + c) * kd_n + kd) * ktaps
                        for oh in range(oh0, oh1):
                            yb = ybase0 + oh * ow_n
                            # the taps of this output row whose input row lies inside x
                            t = 0
                            for kh in range(kh_n):
                                rr = (oh - oh0) * sh + kh * dh
                                if not rowok[rr]:
                                    continue
                                for kw in range(kw_n):
                                    e = kw * dw
                                    kv[t] = wf[wbase + kh * kw_n + kw]
                                    toff[t] = (rr * sw + e % sw) * plen + e // sw
                                    t += 1
                            q = 0
                            while t - q >= 8:
                                k0 = kv[q]
                                k1 = kv[q + 1]
                                k2 = kv[q + 2]
                                k3 = kv[q + 3]
                                k4 = kv[q + 4]
                                k5 = kv[q + 5]
                                k6 = kv[q + 6]
                                k7 = kv[q + 7]
                                o0 = toff[q]
                                o1 = toff[q + 1]
                                o2 = toff[q + 2]
                                o3 = toff[q + 3]
                                o4 = toff[q + 4]
                                o5 = toff[q + 5]
                                o6 = toff[q + 6]
                                o7 = toff[q + 7]
                                for m in range(width):
                                    a = yf[uintp(yb + m)]
                                    a += k0 * buf[uintp(o0 + m)]
                                    a += k1 * buf[uintp(o1 + m)]
                                    a += k2 * buf[uintp(o2 + m)]
                                    a += k3 * buf[uintp(o3 + m)]
                                    a += k4 * buf[uintp(o4 + m)]
                                    a += k5 * buf[uintp(o5 + m)]
                                    a += k6 * buf[uintp(o6 + m)]
                                    a += k7 * buf[uintp(o7 + m)]
                                    yf[uintp(yb + m)] = a
                                q += 8
                            if t - q >= 4:
                                k0 = kv[q]
                                k1 = kv[q + 1]
                                k2 = kv[q + 2]
                                k3 = kv[q + 3]
                                o0 = toff[q]
                                o1 = toff[q + 1]
                                o2 = toff[q + 2]
                                o3 = toff[q + 3]
                                for m in range(width):
                                    a = yf[uintp(yb + m)]
                                    a += k0 * buf[uintp(o0 + m)]
                                    a += k1 * buf[uintp(o1 + m)]
                                    a += k2 * buf[uintp(o2 + m)]
                                    a += k3 * buf[uintp(o3 + m)]
                                    yf[uintp(yb + m)] = a
                                q += 4
                            while q < t:
                                k0 = kv[q]
                                o0 = toff[q]
                                for m in range(width):
                                    yf[uintp(yb + m)] += k0 * buf[uintp(o0 + m)]
                                q += 1

    return core


def _build_core3x3():
    """:func:`core` for a 3x3 kernel on one input channel per output (2-D, column stride 1):
    the taps read x in place (no staging copy) and an output row whose 9 taps all lie in x is
    written by one fused pass (no zeroing pass, y never read): 3x3 on 2048^2 float32 in 0.86
    ms against 1.19 for the general core.  The sums are those of :func:`core`, tap by tap in
    the same order; the few rows and columns that reach into the padding sum only the taps
    inside x."""
    from numba import njit, prange, uintp

    @njit(parallel=True, cache=True, fastmath={"contract"}, nogil=True)
    def core3x3(x, w, y, groups, sh, dh, dw, ph, pw, seg, rb, nchunks):
        nb, cin, xh, xw = x.shape
        cout = w.shape[0]
        _, _, oh_n, ow_n = y.shape
        cog = cout // groups
        seg = min(seg, ow_n)
        rb = min(rb, oh_n)
        nseg = (ow_n + seg - 1) // seg
        ntile = (oh_n + rb - 1) // rb
        total = nb * cout * ntile * nseg
        xf = x.reshape(-1)
        wf = w.reshape(-1)
        yf = y.reshape(-1)
        zero = y.dtype.type(0)
        nch = min(nchunks, total)
        for chunk in prange(nch):
            kv = np.empty(9, dtype=y.dtype)
            trow = np.empty(9, dtype=np.int64)
            tcol = np.empty(9, dtype=np.int64)
            for item in range(chunk * total // nch, (chunk + 1) * total // nch):
                s = item % nseg
                rest = item // nseg
                tile = rest % ntile
                rest //= ntile
                o = rest % cout
                n = rest // cout
                c0 = s * seg
                width = min(c0 + seg, ow_n) - c0
                xplane = (n * cin + o // cog) * xh
                # the outputs whose three tap columns all lie inside x
                mlo = min(max(pw - c0, 0), width)
                mhi = max(min(xw + pw - c0 - 2 * dw, width), mlo)
                for oh in range(tile * rb, min(tile * rb + rb, oh_n)):
                    yb = ((n * cout + o) * oh_n + oh) * ow_n + c0
                    t = 0
                    for kh in range(3):
                        ih = oh * sh + kh * dh - ph
                        if ih < 0 or ih >= xh:
                            continue
                        for kw in range(3):
                            kv[t] = wf[o * 9 + kh * 3 + kw]
                            trow[t] = (xplane + ih) * xw
                            tcol[t] = c0 + kw * dw - pw
                            t += 1
                    if t < 9:  # a row reaching into the padding: the taps inside x, in order
                        for m in range(width):
                            a = zero
                            for q in range(t):
                                col = tcol[q] + m
                                if col >= 0 and col < xw:
                                    a += kv[q] * xf[trow[q] + col]
                            yf[uintp(yb + m)] = a
                        continue
                    for j in range(mlo + width - mhi):  # columns reaching into the padding
                        m = j if j < mlo else mhi + j - mlo
                        a = zero
                        for q in range(9):
                            col = tcol[q] + m
                            if col >= 0 and col < xw:
                                a += kv[q] * xf[trow[q] + col]
                        yf[uintp(yb + m)] = a
                    k0, k1, k2, k3, k4, k5, k6, k7, k8 = (
                        kv[0], kv[1], kv[2], kv[3], kv[4], kv[5], kv[6], kv[7], kv[8]
                    )  # fmt: skip
                    p0, p1, p2, p3, p4, p5, p6, p7, p8 = (
                        trow[0] + tcol[0], trow[1] + tcol[1], trow[2] + tcol[2],
                        trow[3] + tcol[3], trow[4] + tcol[4], trow[5] + tcol[5],
                        trow[6] + tcol[6], trow[7] + tcol[7], trow[8] + tcol[8],
                    )  # fmt: skip
                    for m in range(mlo, mhi):
                        a = zero
                        a += k0 * xf[uintp(p0 + m)]
                        a += k1 * xf[uintp(p1 + m)]
                        a += k2 * xf[uintp(p2 + m)]
                        a += k3 * xf[uintp(p3 + m)]
                        a += k4 * xf[uintp(p4 + m)]
                        a += k5 * xf[uintp(p5 + m)]
                        a += k6 * xf[uintp(p6 + m)]
                        a += k7 * xf[uintp(p7 + m)]
                        a += k8 * xf[uintp(p8 + m)]
                        yf[uintp(yb + m)] = a

    return core3x3


def _fast3x3(spec: ConvSpec) -> bool:
    """Whether :func:`_build_core3x3`'s kernel takes ``spec``."""
    return (
        spec.ndim == 2
        and spec.kernel_shape == (3, 3)
        and spec.c_in == spec.groups
        and spec.stride[1] == 1
    )


def _as5(a: np.ndarray, nd: int) -> np.ndarray:
    """``a`` (2 leading axes + ``nd`` spatial) as a C-contiguous 5-D array."""
    a = np.ascontiguousarray(a)
    if not a.flags.writeable:
        a = a.copy()  # a read-only array would be another numba type, i.e. another compilation
    return a.reshape(a.shape[:2] + (1,) * (3 - nd) + a.shape[2:])


def run(spec: ConvSpec, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``y`` of the canonical problem ``spec`` (shape ``spec.y_shape``, dtype ``spec.dtype``)."""
    reason = supports(spec)
    if reason is not None:
        raise ValueError(reason)
    dt = spec.dtype
    x = np.asarray(x)
    w = np.asarray(w)
    if x.shape != spec.x_shape or w.shape != spec.w_shape:
        raise ValueError(
            f"x {x.shape} / w {w.shape} do not match the spec {spec.x_shape} / {spec.w_shape}"
        )
    x = x.astype(dt, copy=False)
    w = spec.kernel_for_correlation(w.astype(dt, copy=False))
    nd = spec.ndim
    pad_lo = spec.pad_lo
    if dt.kind in "fc" and any(pad_lo + spec.pad_hi) and not np.isfinite(w).all():
        # 0 * inf = NaN in the canonical formula: the padding has to be multiplied for real.
        x = spec.padded_input(x)
        pad_lo = (0,) * nd
    lead = 3 - nd
    st = (1,) * lead + spec.stride
    dl = (1,) * lead + spec.dilation
    pl = (0,) * lead + tuple(pad_lo)
    y = np.empty(spec.y_shape, dtype=dt)
    import numba

    if _fast3x3(spec):
        old = numba.get_parallel_chunksize()
        numba.set_parallel_chunksize(CHUNKSIZE)
        try:
            _compiled(_build_core3x3)(
                _as5(x, nd)[:, :, 0],
                _as5(w, nd)[:, :, 0],
                _as5(y, nd)[:, :, 0],
                spec.groups, st[1], dl[1], dl[2], pl[1], pl[2], SEG, RB, NCHUNKS,
            )  # fmt: skip
        finally:
            numba.set_parallel_chunksize(old)
        return y
    core = _get_core()

    # dynamic scheduling of the chunks: robust when a core is busy with something else
    old = numba.get_parallel_chunksize()
    numba.set_parallel_chunksize(CHUNKSIZE)
    try:
        core(
            _as5(x, nd),
            _as5(w, nd),
            _as5(y, nd),
            spec.groups,
            st[0],
            st[1],
            st[2],
            dl[0],
            dl[1],
            dl[2],
            pl[0],
            pl[1],
            pl[2],
            SEG,
            RB,
            NCHUNKS,
        )
    finally:
        numba.set_parallel_chunksize(old)
    return y
