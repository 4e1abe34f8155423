"""CPU convolution with rank-1 (separable) kernels: one 1-D pass per spatial axis.

Every ``(o, c)`` kernel slice ``w~[o, c]`` must be an outer product ``f_0 (x) f_1 (x) ...`` of
1-D factors (to rounding, see :func:`factor`).  Then::

    y[n, o] = sum_{c < Cig} pass_{d-1}( ... pass_0(x[n, g*Cig + c]; f_0[o, c]) ...; f_{d-1}[o, c])

where ``pass_a`` is the 1-D correlation along axis ``a`` with that axis' padding, stride and
dilation (out-of-range taps read zeros; nothing padded is materialised).  Cost: ``sum_a k_a``
MACs per output sample (per ``(o, c)`` pair) instead of ``prod_a k_a``.

Channels: any ``groups`` / ``c_in`` / ``c_out`` is accepted (``supports`` checks shapes only);
the work is ``c_out * Cig`` separable convolutions, so this wins for depthwise / single-channel
problems.  ``Cig`` input channels are handled by a Python loop whose last pass accumulates
straight into ``y``; all ``batch * c_out`` planes go through each numba call at once.

Pass order: the axis order minimising the MAC count is chosen (strided axes first).
int64 is not supported: integer kernels are seldom rank 1 in floating point and exactness would
be lost.
"""

from __future__ import annotations

import itertools
from math import prod

import numpy as np
from numba import njit, prange, uintp

from gpuconv._spec import ConvSpec

_SUPPORTED = (
    np.dtype(np.float32),
    np.dtype(np.float64),
    np.dtype(np.complex64),
    np.dtype(np.complex128),
)


def supports(spec: ConvSpec) -> str | None:
    """None if the shapes suit; the kernel's rank still has to be checked with :func:`factor`."""
    if spec.dtype not in _SUPPORTED:
        return (
            f"separable: dtype {spec.dtype} unsupported (only float32/float64/complex64/"
            "complex128; integer kernels are not factored exactly)"
        )
    if spec.ndim < 2:
        return "separable: needs >= 2 spatial axes"
    return None


def _default_rtol(dtype: np.dtype, shape: tuple[int, ...]) -> float:
    if dtype.kind not in "fc":
        dtype = np.dtype(np.float64)
    return 8.0 * float(np.finfo(dtype).eps) * max(shape)


def factor(w2d: np.ndarray, rtol: float | None = None) -> tuple[np.ndarray, ...] | None:
    """1-D factors ``(f_0, ..., f_{d-1})`` with ``w2d ~= f_0 (x) ... (x) f_{d-1}``, or None.

    ``w2d`` is one kernel slice of any number of axes (>= 1).  It is rank 1 iff every mode
    unfolding (axis ``a`` against the rest) is a rank-1 matrix; numerically iff
    ``sigma_2 <= rtol * sigma_1`` for each unfolding (SVD in float64 / complex128).  ``rtol``
    defaults to ``8 * eps(dtype) * max(shape)``.  The factors are the leading left singular
    vectors of the unfoldings, the whole scale in ``f_0`` (the HOSVD rank-1 truncation, whose
    error is at most ``sqrt(sum_a sum_{i>=2} sigma_{a,i}^2)``).  Large unfoldings are decided,
    and their vectors found, in O(size) where :func:`_cheap_rank1` can, before any SVD.  They are returned in
    float64 / complex128; an all-zero kernel gives zero / one vectors.
    """
    w = np.asarray(w2d)
    if w.ndim < 1 or w.size == 0:
        raise ValueError(f"factor needs a non-empty array with >= 1 axis, got shape {w.shape}")
    if rtol is None:
        rtol = _default_rtol(w.dtype, w.shape)
    wide = np.complex128 if w.dtype.kind == "c" else np.float64
    t = np.asarray(w, dtype=wide)
    if not np.all(np.isfinite(t)):
        return None
    unfoldings = [np.moveaxis(t, a, 0).reshape(t.shape[a], -1) for a in range(t.ndim)]
    cheap = []
    for unf in unfoldings:  # every cheap test before any SVD: one refusal settles it
        cheap.append(_cheap_rank1(unf, rtol))
        if cheap[-1][0] is False:
            return None
    vecs = []
    for unf, (ok, u) in zip(unfoldings, cheap):
        if ok:
            vecs.append(u)
            continue
        u_, s, _ = np.linalg.svd(unf, full_matrices=False)
        if s[0] == 0:
            return _zero_factors(t)
        if len(s) > 1 and s[1] > rtol * s[0]:
            return None
        vecs.append(u_[:, 0])
    # scale = <t, u_0 (x) ... (x) u_{d-1}> (u unit vectors; no conjugate in the model, so project
    # with the conjugate)
    proj = t
    for u in reversed(vecs):
        proj = proj @ np.conj(u)
    scale = proj  # 0-d
    out = [np.array(v) for v in vecs]
    out[0] = out[0] * scale
    return tuple(out)


#: unfoldings with both sides at least this long get the cheap tests instead of an SVD
CHEAP_TEST_MIN = 24


def _cheap_rank1(m: np.ndarray, rtol: float) -> tuple[bool | None, np.ndarray | None]:
    """The SVD test ``sigma_2(m) <= rtol * sigma_1(m)`` decided in O(m.size) work where it can
    be: ``(False, None)`` when it surely fails, ``(True, u)`` when it surely holds (``u`` a
    unit leading left vector), ``(None, None)`` when only the SVD can tell.

    A big kernel's SVD costs O(k^3) (seconds at 1536^2), paid at every dispatch.  Two steps of
    subspace iteration give an orthonormal ``q`` (two columns).  The singular values of
    ``m @ q`` are lower bounds of ``m``'s first two, and ``sigma_1(m) <= ||m||_F``: so
    ``sigma_2(m q) > 2 rtol ||m||_F`` proves the test fails.  With ``u`` the leading left
    vector of ``m @ q``, ``sigma_2(m) <= ||m - u u^H m||_F`` (Eckart-Young) and
    ``sigma_1(m) >= ||u^H m||``: so ``||m - u u^H m||_F <= rtol ||u^H m|| / 2`` proves it
    holds.  The factors 2 cover these tests' own rounding.
    """
    if min(m.shape) < CHEAP_TEST_MIN:
        return None, None
    peak = float(np.abs(m).max())
    if peak == 0.0 or not np.isfinite(peak):
        return None, None
    m = m / peak  # the norms below square the entries: keep them off under- and overflow
    fro = float(np.linalg.norm(m))
    mh = m.T.conj() if m.dtype.kind == "c" else m.T  # conj() of a real array copies it
    q = np.random.default_rng(0).standard_normal((m.shape[1], 2))
    for _ in range(2):
        q, _r = np.linalg.qr(mh @ (m @ q))
    uu, sv, _vh = np.linalg.svd(m @ q, full_matrices=False)
    if sv[1] > 2.0 * rtol * fro:
        return False, None
    u = uu[:, 0]
    row = np.conj(u) @ m
    resid = float(np.linalg.norm(m - np.outer(u, row)))
    if resid <= 0.5 * rtol * float(np.linalg.norm(row)):
        return True, u
    return None, None


def _zero_factors(t: np.ndarray) -> tuple[np.ndarray, ...]:
    f = [np.ones(k, dtype=t.dtype) for k in t.shape]
    f[0] = np.zeros(t.shape[0], dtype=t.dtype)
    return tuple(f)


#: above this many (o, c) kernel slices the dispatcher does not spend SVDs on checking rank
MAX_CHECKED_SLICES = 256


#: kernels up to this many bytes have their rank verdict remembered (keyed by their bytes)
MEMO_MAX_BYTES = 16384

#: at most this many remembered verdicts (the table starts over when full)
MEMO_MAX_ENTRIES = 512

_VERDICTS: dict[tuple, str | None] = {}
_UNJUDGED = object()


def supports_kernel(spec: ConvSpec, w: np.ndarray) -> str | None:
    """None if every ``(o, c)`` slice of ``w`` is rank 1 to rounding, else why not.

    The verdict on a small kernel is remembered by its bytes: 'auto' asks at every call, and
    the SVDs cost more than a small convolution (filtering frames with one kernel in a loop).
    """
    slices = w.shape[0] * w.shape[1]
    if slices > MAX_CHECKED_SLICES:
        return f"{slices} kernel slices; rank 1 is only checked up to {MAX_CHECKED_SLICES}"
    key = None
    if w.nbytes <= MEMO_MAX_BYTES:
        key = (w.dtype.str, w.shape, np.ascontiguousarray(w).tobytes())
        verdict = _VERDICTS.get(key, _UNJUDGED)  # one lookup: another thread may clear it
        if verdict is not _UNJUDGED:
            return verdict
    verdict = _rank1_verdict(w)
    if key is not None:
        if len(_VERDICTS) >= MEMO_MAX_ENTRIES:
            _VERDICTS.clear()
        _VERDICTS[key] = verdict
    return verdict


def _rank1_verdict(w: np.ndarray) -> str | None:
    for o in range(w.shape[0]):
        for c in range(w.shape[1]):
            if factor(w[o, c]) is None:
                return f"kernel slice (o={o}, c={c}) is not rank 1 to rounding"
    return None


def is_separable(w: np.ndarray) -> bool:
    """Whether every ``(o, c)`` slice of ``w`` (``(c_out, Cig, *k)``) is rank 1 to rounding."""
    w = np.asarray(w)
    if w.ndim < 3:
        raise ValueError(f"is_separable expects (c_out, c_in/groups, *kernel), got {w.shape}")
    if w.dtype.kind not in "fc":
        return False
    return all(factor(w[o, c]) is not None for o in range(w.shape[0]) for c in range(w.shape[1]))


# --------------------------------------------------------------------------------------------
# 1-D passes


@njit(parallel=True, cache=True, nogil=True)
def _pass_last(x, y, f, src, s, d, lo, accumulate):
    """Correlate along the last axis: ``y[m, p, i] (+)= sum_j f[m, j] x[src[m], p, i*s+j*d-lo]``.

    x (Min, P, L), y (Mout, P, Lout), f (Mout, k): C-contiguous; taps outside ``0..L-1`` are 0.
    """
    mout, npre, lout = y.shape
    L = x.shape[2]
    k = f.shape[1]
    for r in prange(mout * npre):
        m = r // npre
        p = r - m * npre
        yrow = y[m, p]
        xrow = x[src[m], p]
        if not accumulate:
            for i in range(lout):
                yrow[i] = 0
        for j in range(k):
            fj = f[m, j]
            off = j * d - lo
            ilo = max((-off + s - 1) // s, 0)
            ihi = min((L - 1 - off) // s + 1, lout)
            # uintp indices: no negative-index wraparound check, so the loop vectorises
            if s == 1:
                for i in range(ilo, ihi):
                    yrow[uintp(i)] += fj * xrow[uintp(i + off)]
            else:
                for i in range(ilo, ihi):
                    yrow[uintp(i)] += fj * xrow[uintp(i * s + off)]


@njit(parallel=True, cache=True, nogil=True)
def _pass_mid(x, y, f, src, s, d, lo, accumulate):
    """Correlate along axis 2 of (M, P, L, Q) arrays; the inner loop runs over contiguous Q.

    ``y[m, p, i, :] (+)= sum_j f[m, j] x[src[m], p, i*s + j*d - lo, :]`` (taps outside are 0).
    """
    mout, npre, lout, nq = y.shape
    L = x.shape[2]
    k = f.shape[1]
    for r in prange(mout * npre * lout):
        i = r % lout
        mp = r // lout
        p = mp % npre
        m = mp // npre
        yrow = y[m, p, i]
        xs = x[src[m], p]
        if not accumulate:
            for q in range(nq):
                yrow[q] = 0
        for j in range(k):
            t = i * s + j * d - lo
            if t < 0 or t >= L:
                continue
            fj = f[m, j]
            xrow = xs[t]
            for q in range(nq):
                yrow[uintp(q)] += fj * xrow[uintp(q)]


def _pass(cur, out, axis, f, src, s, d, lo, accumulate):
    """One 1-D pass along spatial ``axis`` of ``cur`` (M, *S) into ``out`` (Mout, *S')."""
    m_in, shp = cur.shape[0], cur.shape[1:]
    m_out, oshp = out.shape[0], out.shape[1:]
    pre = prod(shp[:axis])
    post = prod(shp[axis + 1 :])
    if post == 1:
        _pass_last(
            cur.reshape(m_in, pre, shp[axis]),
            out.reshape(m_out, pre, oshp[axis]),
            f,
            src,
            s,
            d,
            lo,
            accumulate,
        )
    else:
        _pass_mid(
            cur.reshape(m_in, pre, shp[axis], post),
            out.reshape(m_out, pre, oshp[axis], post),
            f,
            src,
            s,
            d,
            lo,
            accumulate,
        )


def _pass_order(spec: ConvSpec) -> tuple[int, ...]:
    """The axis order with the fewest MACs (sizes shrink from in_shape to out_shape per pass)."""
    nd = spec.ndim

    def cost(order):
        shape = list(spec.in_shape)
        total = 0
        for a in order:
            shape[a] = spec.out_shape[a]
            total += prod(shape) * spec.kernel_shape[a]
        return total

    if nd <= 5:
        return min(itertools.permutations(range(nd)), key=cost)
    # many axes: most shrinking first
    return tuple(sorted(range(nd), key=lambda a: spec.out_shape[a] / spec.in_shape[a]))


def kernel_factors(spec: ConvSpec, w: np.ndarray) -> list[np.ndarray]:
    """Per axis a ``(c_out, Cig, k_a)`` array of factors of the correlation kernel ``w~``.

    Raises ValueError if some ``(o, c)`` slice is not rank 1.
    """
    wt = spec.kernel_for_correlation(np.asarray(w))
    cout, cig = wt.shape[:2]
    facs = [np.empty((cout, cig, k), dtype=spec.dtype) for k in spec.kernel_shape]
    for o in range(cout):
        for c in range(cig):
            fs = factor(wt[o, c])
            if fs is None:
                raise ValueError(
                    f"separable: kernel slice (o={o}, c={c}) is not rank 1 to rounding"
                )
            for a, v in enumerate(fs):
                facs[a][o, c] = v
    return facs


def run(spec: ConvSpec, x: np.ndarray, w: np.ndarray, *, factors=None) -> np.ndarray:
    """y of the canonical problem by one 1-D pass per axis (rank-1 kernels only).

    ``factors`` (optional): precomputed :func:`kernel_factors` output, to skip the SVDs.
    """
    reason = supports(spec)
    if reason is not None:
        raise ValueError(reason)
    x = np.ascontiguousarray(x, dtype=spec.dtype)
    if x.shape != spec.x_shape:
        raise ValueError(f"x has shape {x.shape}, spec wants {spec.x_shape}")
    if tuple(np.shape(w)) != spec.w_shape:
        raise ValueError(f"w has shape {np.shape(w)}, spec wants {spec.w_shape}")
    facs = kernel_factors(spec, w) if factors is None else factors
    N, g = spec.batch, spec.groups
    cig, cog = spec.c_in // g, spec.c_out // g
    cout = spec.c_out
    order = _pass_order(spec)
    y = np.empty(spec.y_shape, dtype=spec.dtype)
    planes_y = y.reshape((N * cout,) + spec.out_shape)
    x_planes = x.reshape((N * spec.c_in,) + spec.in_shape)
    o_idx = np.arange(cout)
    n_idx = np.arange(N)
    ident = np.arange(N * cout, dtype=np.int64)
    bufs = {}
    for c in range(cig):
        # plane m = n*cout + o reads input channel (o // cog)*cig + c of image n
        src0 = (n_idx[:, None] * spec.c_in + (o_idx // cog)[None, :] * cig + c).ravel()
        src0 = src0.astype(np.int64)
        shape = list(spec.in_shape)
        cur = x_planes
        for step, a in enumerate(order):
            last = step == len(order) - 1
            shape[a] = spec.out_shape[a]
            if last:
                out = planes_y
            else:
                key = (step, tuple(shape))
                if key not in bufs:
                    bufs[key] = np.empty((N * cout,) + tuple(shape), dtype=spec.dtype)
                out = bufs[key]
            f = np.ascontiguousarray(
                np.broadcast_to(facs[a][None, :, c], (N, cout, spec.kernel_shape[a]))
            ).reshape(N * cout, -1)
            _pass(
                cur,
                out,
                a,
                f,
                src0 if step == 0 else ident,
                spec.stride[a],
                spec.dilation[a],
                spec.pad_lo[a],
                last and c > 0,
            )
            cur = out
    return y
