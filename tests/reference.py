"""A plain reference of the canonical problem: sliding windows and einsum, in float64/complex128.

Slow and obviously right; every algorithm is tested against it.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from gpuconv._spec import ConvSpec


def reference(spec: ConvSpec, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """y of the canonical problem, computed in the widest dtype of its kind."""
    wide = np.complex128 if spec.is_complex else np.float64
    if spec.dtype == np.int64:
        wide = np.int64
    xp = spec.padded_input(np.asarray(x, dtype=wide))
    wt = np.asarray(spec.kernel_for_correlation(w), dtype=wide)
    nd = spec.ndim
    spatial = tuple(range(2, 2 + nd))
    win = sliding_window_view(xp, spec.reach, axis=spatial)
    # keep every stride-th window start and every dilation-th tap
    win = win[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in spec.stride)]
    win = win[(Ellipsis,) + tuple(slice(None, None, d) for d in spec.dilation)]
    win = win[(slice(None), slice(None)) + tuple(slice(0, o) for o in spec.out_shape)]
    g = spec.groups
    cig, cog = spec.c_in // g, spec.c_out // g
    out = np.empty(spec.y_shape, dtype=wide)
    letters = "defgh"[:nd]
    taps = "ijklm"[:nd]
    expr = f"nc{letters}{taps},oc{taps}->no{letters}"
    for gi in range(g):
        out[:, gi * cog : (gi + 1) * cog] = np.einsum(
            expr, win[:, gi * cig : (gi + 1) * cig], wt[gi * cog : (gi + 1) * cog]
        )
    return out
