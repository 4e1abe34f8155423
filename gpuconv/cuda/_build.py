"""Compile variants of the CUDA kernels: the single source of truth for what gets compiled.

The GPU loader (CuPy RawModule) and ``ci/check_kernels.py`` both take every (source, defines,
kernel names) triple from :func:`variants` and prepend :func:`defines_header` to the source.
Pure standard library: no numpy or cupy import, so CI can load this file on its own.
"""

from __future__ import annotations

import re

#: dtype suffix of every kernel entry point, keyed by numpy dtype name.
DTYPE_SUFFIX = {
    "float32": "f32",
    "float64": "f64",
    "complex64": "c64",
    "complex128": "c128",
    "int64": "i64",
}
#: bytes per element, keyed by suffix.
ITEMSIZE = {"f32": 4, "f64": 8, "c64": 8, "c128": 16, "i64": 8}

# ---- fast 2-D direct path (kernels_cuda/direct.cu, direct2d_<dtype>) -------------------------
#: output columns per block == blockDim.x (one warp wide: a warp reads 32 consecutive elements).
TILE_W = 32
#: output rows per block; blockDim.y = TILE_H // outputs-per-thread of the dtype.
TILE_H = 32
#: vertically adjacent outputs per thread in registers, by element size (4, 8, 16 bytes).  Chosen
#: so that no dtype spills at any K in FAST2D_SIZES under FAST_REGS (ptxas, sm_80 and sm_90).
OUT_PER_THREAD = 8
OUT_PER_THREAD_8 = 4
OUT_PER_THREAD_16 = 2
#: constant filter buffer, in 8-byte words (32 KiB): a filter of E elements of S bytes goes to
#: __constant__ c_filter when E * S <= 8 * MAX_FILTER, else through the pointer argument.
MAX_FILTER = 4096
#: square kernel sizes with a compiled fast path (KH == KW == k).
FAST2D_SIZES = (1, 2, 3, 4, 5, 7, 9, 11, 13, 15)


def fast2d_regs(k: int) -> int:
    """Register budget per thread (``FAST_REGS``) for the k x k fast path.

    Small kernels are memory bound and want occupancy (64-72 registers: 7-8 blocks of 128
    threads); large ones are FMA bound and want registers for the sliding window (128: 4 blocks).
    Each budget is the smallest at which ptxas (sm_80 and sm_90) reports no spill for any dtype;
    __launch_bounds__ rounds it to whole blocks per SM, so 4x4 needs 96 while 5x5 fits in 80.
    """
    return {1: 64, 2: 64, 3: 72, 4: 96, 5: 80}.get(k, 128)


def fast2d_defines(kh: int, kw: int) -> dict:
    """The ``#define``s of the fast 2-D variant for a kh x kw filter."""
    return {
        "DIRECT_FAST2D_ONLY": 1,
        "KH": kh,
        "KW": kw,
        "TILE_W": TILE_W,
        "TILE_H": TILE_H,
        "OUT_PER_THREAD": OUT_PER_THREAD,
        "OUT_PER_THREAD_8": OUT_PER_THREAD_8,
        "OUT_PER_THREAD_16": OUT_PER_THREAD_16,
        "FAST_REGS": fast2d_regs(max(kh, kw)),
        "MAX_FILTER": MAX_FILTER,
    }


def fast2d_out_per_thread(suffix: str) -> int:
    size = ITEMSIZE[suffix]
    return OUT_PER_THREAD_16 if size >= 16 else OUT_PER_THREAD_8 if size >= 8 else OUT_PER_THREAD


#: CUDA's limit on grid.y and grid.z.  The kernels grid-stride over what lies beyond it; the tests
#: lower it (to 2) so those loops, and the barriers that guard a tile reused for the next item,
#: run on small problems.
GRID_YZ_MAX = 65535


def fast2d_launch(suffix: str, out_h: int, out_w: int, planes: int):
    """(grid, block) of ``direct2d_<suffix>`` for planes of out_h x out_w outputs."""
    block = (TILE_W, TILE_H // fast2d_out_per_thread(suffix), 1)
    grid = (-(-out_w // TILE_W), -(-out_h // TILE_H), max(1, min(planes, GRID_YZ_MAX)))
    return grid, block


def filter_in_constant(n_elems: int, suffix: str) -> bool:
    """Whether a filter of ``n_elems`` elements fits the __constant__ buffer (else pass w)."""
    return n_elems * ITEMSIZE[suffix] <= 8 * MAX_FILTER


# ---- fast 1-D direct path (kernels_cuda/direct1d.cu, direct1d_<dtype>) -------------------------
FAST1D_THREADS = 256
#: consecutive outputs per thread by element size (4, 8, 16 bytes); odd, so a warp's windows
#: (OPT apart) fall in distinct shared-memory banks
FAST1D_OPT = 9
FAST1D_OPT_8 = 5
FAST1D_OPT_16 = 3
#: the longest halo (k - 1) a block's static tile holds, by element size (up to 8; 16 bytes)
MAX_HALO = 2048
MAX_HALO_16 = 1024


def fast1d_defines() -> dict:
    """The ``#define``s of the fast 1-D direct kernels."""
    return {
        "FAST1D_THREADS": FAST1D_THREADS,
        "FAST1D_OPT": FAST1D_OPT,
        "FAST1D_OPT_8": FAST1D_OPT_8,
        "FAST1D_OPT_16": FAST1D_OPT_16,
        "MAX_HALO": MAX_HALO,
        "MAX_HALO_16": MAX_HALO_16,
        "MAX_FILTER": MAX_FILTER,
    }


def fast1d_tile(suffix: str) -> int:
    """Outputs per block of ``direct1d_<suffix>``."""
    size = ITEMSIZE[suffix]
    opt = FAST1D_OPT_16 if size >= 16 else FAST1D_OPT_8 if size >= 8 else FAST1D_OPT
    return FAST1D_THREADS * opt


def fast1d_max_halo(suffix: str) -> int:
    return MAX_HALO_16 if ITEMSIZE[suffix] >= 16 else MAX_HALO


# ---- fast 3-D direct path (kernels_cuda/direct3d.cu, direct3d_fast_<dtype>) --------------------
#: a block's output brick: TILE3_W x TILE3_H threads, each TZ3* consecutive outputs along z
TILE3_W = 32
TILE3_H = 8
TZ3 = 4
TZ3_8 = 2
TZ3_16 = 1
#: the longest k - 1 per axis the static brick holds, by element size (4, 8, 16 bytes)
HALO3D = 8
HALO3D_8 = 6
HALO3D_16 = 4


def fast3d_defines() -> dict:
    """The ``#define``s of the fast 3-D direct kernels."""
    return {
        "TILE3_W": TILE3_W,
        "TILE3_H": TILE3_H,
        "TZ3": TZ3,
        "TZ3_8": TZ3_8,
        "TZ3_16": TZ3_16,
        "HALO3D": HALO3D,
        "HALO3D_8": HALO3D_8,
        "HALO3D_16": HALO3D_16,
        "MAX_FILTER": MAX_FILTER,
    }


def fast3d_tz(suffix: str) -> int:
    size = ITEMSIZE[suffix]
    return TZ3_16 if size >= 16 else TZ3_8 if size >= 8 else TZ3


def fast3d_max_halo(suffix: str) -> int:
    size = ITEMSIZE[suffix]
    return HALO3D_16 if size >= 16 else HALO3D_8 if size >= 8 else HALO3D


# ---- generic N-d direct path and the spectral product ----------------------------------------
GENERIC_BLOCK = 256
SPECTRAL_BLOCK = 256
CO_PER_THREAD = 4

DIRECT_DTYPES = ("f32", "f64", "c64", "c128", "i64")
SPECTRAL_DTYPES = ("c64", "c128")

#: kernel name prefixes whose ptxas report must show no spill and no stack frame.
HOT_KERNEL_PREFIXES = (
    "direct2d_", "direct1d_", "direct3d_fast_", "spectral_", "im2col_", "col2im_", "bias_act_", "sep_pass_", "tiles_", "igemm_",
)  # fmt: skip


# ---- im2col / col2im (kernels_cuda/im2col.cu) --------------------------------------------------
#: threads per block (along the output positions of one column row / the elements of one plane).
IM2COL_BLOCK = 256
IM2COL_DTYPES = DIRECT_DTYPES


def generic_defines() -> dict:
    """The ``#define``s of the generic N-d direct kernels."""
    return {"DIRECT_GENERIC_ONLY": 1, "GENERIC_BLOCK": GENERIC_BLOCK}


def spectral_defines() -> dict:
    """The ``#define``s of the spectral product kernels."""
    return {"CO_PER_THREAD": CO_PER_THREAD, "SPECTRAL_BLOCK": SPECTRAL_BLOCK}


def im2col_defines() -> dict:
    """The ``#define``s of the im2col / col2im kernels."""
    return {"IM2COL_BLOCK": IM2COL_BLOCK}


# ---- separable passes (kernels_cuda/separable.cu) --------------------------------------------
#: threads per block of sep_pass_* (both paths).
SEP_BLOCK = 256
#: outputs per thread (consecutive along the axis for a middle axis, tpr apart for the last);
#: SEP_OPT_16 for 16-byte elements (complex128 spilled 16-24 bytes at 4 on sm_80 / sm_90).
SEP_OPT = 4
SEP_OPT_16 = 2
#: bytes of the shared staging buffer of the last-axis path (per block).
SEP_SMEM_BYTES = 24576
#: __launch_bounds__ minimum resident blocks per SM (64 registers a thread at 256 threads).
SEP_MIN_BLOCKS = 4
SEPARABLE_DTYPES = ("f32", "f64", "c64", "c128")


def separable_defines() -> dict:
    """The ``#define``s of the separable pass kernels."""
    return {
        "SEP_BLOCK": SEP_BLOCK,
        "SEP_OPT": SEP_OPT,
        "SEP_OPT_16": SEP_OPT_16,
        "SEP_SMEM_BYTES": SEP_SMEM_BYTES,
        "SEP_MIN_BLOCKS": SEP_MIN_BLOCKS,
    }


# ---- overlap-save tiles (kernels_cuda/tiles.cu) ---------------------------------------------
#: threads per block of the gather / scatter kernels (bx along the last axis times by rows)
TILES_THREADS = 256
#: consecutive rows per thread: the per-plane index arithmetic is amortised over them
TILES_ROWS = 8
TILES_DTYPES = DIRECT_DTYPES


def tiles_defines() -> dict:
    """The ``#define``s of the overlap-save gather / scatter kernels."""
    return {"TILES_THREADS": TILES_THREADS, "TILES_ROWS": TILES_ROWS}


# ---- implicit GEMM (kernels_cuda/igemm.cu) ---------------------------------------------------
#: threads per block (16 x 16) and the K step of kernels_cuda/igemm.cu (fixed there).
IGEMM_THREADS = 256
IGEMM_BK = 8
#: (dtype suffix, BM, BN) -> (IG_MIN_BLOCKS, IG_KU) of every compiled variant: the
#: __launch_bounds__ minimum of resident blocks per SM (2: 128 registers a thread) and the k
#: unrolled per trip over a K step's 8.  Each is the largest unroll at which ptxas (nvcc 13,
#: sm_80 and sm_90) reports no spill and no stack frame: the 128 x 128 tile spills at IG_KU >= 2
#: (ptxas hoists the fragments of later k), the others at 8, and every tile at 3 blocks per SM
#: (80 registers).
IGEMM_TILES: dict[tuple[str, int, int], tuple[int, int]] = {
    ("f32", 128, 128): (2, 1),
    ("f32", 64, 128): (2, 4),
    ("f64", 64, 64): (2, 4),
}


def igemm_defines(bm: int, bn: int, dtype) -> dict:
    """The ``#define``s of the ``bm`` x ``bn`` variant for ``dtype`` (a suffix such as ``'f32'`` or
    a dtype name such as ``'float32'``); a ValueError for a tile that is not compiled."""
    sfx = DTYPE_SUFFIX.get(str(dtype), str(dtype))
    key = (sfx, int(bm), int(bn))
    if key not in IGEMM_TILES:
        have = ", ".join(f"{s} {m}x{n}" for s, m, n in IGEMM_TILES)
        raise ValueError(f"no implicit-GEMM variant {sfx} {bm}x{bn} (compiled: {have})")
    min_blocks, ku = IGEMM_TILES[key]
    return {
        "IG_BM": key[1],
        "IG_BN": key[2],
        "IG_MIN_BLOCKS": min_blocks,
        "IG_KU": ku,
        f"IG_{sfx.upper()}": 1,
    }


# ---- bias + activation epilogue (kernels_cuda/epilogue.cu) -------------------------------------
EPILOGUE_BLOCK = 256
EPILOGUE_DTYPES = ("f32", "f64")


def epilogue_defines() -> dict:
    """The ``#define``s of the bias + activation kernels."""
    return {"EPILOGUE_BLOCK": EPILOGUE_BLOCK}


def variants() -> list[tuple[str, dict, list[str]]]:
    """Every (source file name in kernels_cuda/, defines, kernel names) the library compiles."""
    out = []
    for k in FAST2D_SIZES:
        out.append(("direct.cu", fast2d_defines(k, k), [f"direct2d_{s}" for s in DIRECT_DTYPES]))
    out.append(("direct1d.cu", fast1d_defines(), [f"direct1d_{s}" for s in DIRECT_DTYPES]))
    out.append(("direct3d.cu", fast3d_defines(), [f"direct3d_fast_{s}" for s in DIRECT_DTYPES]))
    out.append(
        (
            "direct.cu",
            generic_defines(),
            [f"direct3d_{k}_{s}" for k in ("generic", "transposed") for s in DIRECT_DTYPES],
        )
    )
    out.append(("spectral.cu", spectral_defines(), [f"spectral_{s}" for s in SPECTRAL_DTYPES]))
    out.append(
        (
            "im2col.cu",
            im2col_defines(),
            [f"{k}_{s}" for k in ("im2col", "col2im") for s in IM2COL_DTYPES],
        )
    )
    out.append(("epilogue.cu", epilogue_defines(), [f"bias_act_{s}" for s in EPILOGUE_DTYPES]))
    out.append(("separable.cu", separable_defines(), [f"sep_pass_{s}" for s in SEPARABLE_DTYPES]))
    for s, bm, bn in IGEMM_TILES:
        out.append(("igemm.cu", igemm_defines(bm, bn, s), [f"igemm_{s}", f"igemm_reduce_{s}"]))
    out.append(
        (
            "tiles.cu",
            tiles_defines(),
            [f"tiles_{k}_{s}" for k in ("gather", "scatter") for s in TILES_DTYPES],
        )
    )
    return out


def fast2d_variant(kh: int, kw: int):
    """The variant compiled for a kh x kw fast path, or None (use the generic path)."""
    for v in variants():
        d = v[1]
        if d.get("DIRECT_FAST2D_ONLY") and d["KH"] == kh and d["KW"] == kw:
            return v
    return None


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def defines_header(defines: dict) -> str:
    """``#define NAME VALUE`` lines (in the dict's order) to prepend to a source file."""
    lines = []
    for name, value in defines.items():
        if not _NAME.match(name):
            raise ValueError(f"not a macro name: {name!r}")
        if isinstance(value, bool):
            value = int(value)
        text = str(value)
        if "\n" in text:
            raise ValueError(f"macro {name} has a multi-line value")
        lines.append(f"#define {name} {text}".rstrip())
    return "\n".join(lines) + ("\n" if lines else "")
