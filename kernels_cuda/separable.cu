// separable.cu: one 1-D pass of a separable (rank-1) convolution, along one spatial axis.
//
// gpuconv/cuda/separable.py runs a rank-1 problem as one pass per spatial axis and per input
// channel c (the CPU algorithm's structure, gpuconv/cpu/separable.py).  One pass is a 1-D
// correlation along the middle axis of planes viewed as (pre, n_in, inner) -> (pre, n_out, inner):
//
//     y[m, p, i, q] (+)= sum_{j < k} f[m % n_filters, j] * x[src(m), p, i*stride + j*dilation - pad_lo, q]
//
// with taps outside 0 <= t < n_in reading zero (the padding is never materialised).  Output plane
// m (m < planes) reads input plane
//
//     src(m) = (m / src_div) * src_mul + ((m % src_div) / src_grp) * grp_mul + src_off
//
// (the first pass: src_div = c_out, src_grp = Cog, src_mul = c_in, grp_mul = Cig, src_off = c, so
// plane n*c_out + o reads channel g*Cig + c of image n; later passes: the identity 1, 1, 1, 0, 0).
// accumulate != 0 adds to y instead of overwriting it (the input channels' sum).  The fused
// epilogue of common.cuh, y = act(y + bias[m % channels]), runs on every output this launch
// writes: the host asks for it on the last launch only (bias NULL and act 0 otherwise; act codes of
// gpuconv/_epilogue.py, real dtypes only).
//
// Two code paths, chosen per launch (uniform); both take SEP_BLOCK threads per block, OPT outputs
// per thread (SEP_OPT, or SEP_OPT_16 for complex128), and a flat list of blocks
// b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z), blocks past the work exiting
// at once (no grid-stride loops: nothing carried from one work item to the next keeps the
// register count down).
//
// * inner > 1 (not the last axis): item e of plane m computes OPT consecutive outputs i of one
//   (p, q); consecutive threads take consecutive q, so loads and stores are coalesced along the
//   contiguous inner axis.  Block b covers items [chunk * SEP_BLOCK, ...) of plane m = b / chunks
//   (chunk = b % chunks, chunks = ceil(pre * ceil(n_out / OPT) * inner / SEP_BLOCK)).  When
//   dilation == stride the OPT input rows of one tap are a window that slides by one row per tap:
//   one load per tap for OPT MACs.
// * inner == 1 (the last axis): tpr threads per row (1 <= tpr <= SEP_BLOCK, a host choice), so a
//   block holds R = SEP_BLOCK / tpr rows (threads past R * tpr idle) and a tile of TW = tpr * OPT
//   outputs per row; lane l of a row computes outputs l + o * tpr (o < OPT), so stores and shared
//   reads are consecutive across the lanes.  Block b covers rows [gi * R, gi * R + R) of the
//   planes * pre rows (gi = b / tiles) and tile b % tiles (tiles = ceil(n_out / TW)) of each.  The
//   rows' input spans ((TW - 1) * stride + (k - 1) * dilation + 1 elements, halo included) are
//   staged in shared memory by each row's own threads with coalesced loads when R * span fits
//   SEP_SMEM_BYTES, else the inputs are read from global memory through the read-only cache.
//
// Filter taps come through the read-only cache (uniform per row / plane).  Element offsets of
// planes are 64-bit; offsets inside one plane are 32-bit: the host keeps every plane under 2^30
// elements and (n_out + SEP_BLOCK * OPT) * stride + reach + pad_lo under 2^31.  The tap loops are
// not unrolled (k is a run-time value; unrolling them cost registers and spills), except the
// sliding window's by 2 (two row loads in flight), and load the next tap one step ahead.
// Entry points: sep_pass_f32 (float), sep_pass_f64 (double), sep_pass_c64 (float2),
// sep_pass_c128 (double2).

#include "common.cuh"

// ---- compile-time knobs (defaults; gpuconv/cuda/separable.py renders the values used) ------
#ifndef SEP_BLOCK
#define SEP_BLOCK 256          // threads per block (both paths)
#endif
#ifndef SEP_OPT
#define SEP_OPT 4              // outputs per thread (4- and 8-byte dtypes)
#endif
#ifndef SEP_OPT_16
#define SEP_OPT_16 2           // outputs per thread of 16-byte dtypes (complex128)
#endif
#ifndef SEP_SMEM_BYTES
#define SEP_SMEM_BYTES 24576   // shared staging buffer of the last-axis path, per block
#endif
#ifndef SEP_MIN_BLOCKS
#define SEP_MIN_BLOCKS 4       // __launch_bounds__ minimum resident blocks per SM
#endif

static_assert(SEP_BLOCK >= 32 && SEP_BLOCK <= 1024 && SEP_BLOCK % 32 == 0, "SEP_BLOCK");
static_assert(SEP_OPT >= 1 && SEP_OPT <= 16 && SEP_OPT_16 >= 1 && SEP_OPT_16 <= 16, "SEP_OPT");

static_assert(SEP_SMEM_BYTES >= 1024 && SEP_SMEM_BYTES % 16 == 0, "SEP_SMEM_BYTES");

// outputs per thread of element type T
template <typename T>
struct SepOpt {
    static constexpr int value = sizeof(T) >= 16 ? SEP_OPT_16 : SEP_OPT;
};

// ---- geometry ----------------------------------------------------------------------------------
struct SepGeom {
    long long planes;
    int src_div, src_grp, src_mul, grp_mul, src_off;
    int pre, n_in, n_out, inner, k, stride, dilation, pad_lo, n_filters, tpr, accumulate;
    int channels, act;
    double slope;
};

__device__ __forceinline__ idx_t sep_src(const SepGeom& g, idx_t m)
{
    const idx_t a = m / g.src_div;
    const int r = (int)(m - a * g.src_div);
    return a * g.src_mul + (idx_t)(r / g.src_grp) * g.grp_mul + g.src_off;  // < 2^31 (host)
}

// The flat block index b (see the top of the file).
__device__ __forceinline__ idx_t sep_block_index()
{
    return (idx_t)blockIdx.x + (idx_t)gridDim.x * ((idx_t)blockIdx.y + (idx_t)gridDim.y * blockIdx.z);
}

// ---- inner > 1: one pass along a middle axis ---------------------------------------------------
// Block b: plane m = b / chunks, items [chunk * SEP_BLOCK, ...) of that plane (chunk = b % chunks);
// item e = (p * tiles + it) * inner + q computes outputs it * OPT + o (o < OPT) of (p, q).
template <typename T>
__device__ __forceinline__ void sep_mid(const T* __restrict__ x, const T* __restrict__ f,
                                        T* __restrict__ y, const T* __restrict__ bias,
                                        const SepGeom& g)
{
    constexpr int OPT = SepOpt<T>::value;
    const int tiles = ceil_div(g.n_out, OPT);
    const int items = g.pre * tiles * g.inner;  // < 2^30 (host)
    const int chunks = ceil_div(items, SEP_BLOCK);
    const idx_t b = sep_block_index();
    const idx_t m = b / chunks;
    const int e = (int)(b - m * chunks) * SEP_BLOCK + threadIdx.x;
    if (m >= g.planes || e >= items) return;
    const int s = g.stride, d = g.dilation, n_in = g.n_in, inner = g.inner;
    const int r = e / inner;
    const int q = e - r * inner;
    const int p = r / tiles;
    const int i0 = (r - p * tiles) * OPT;
    // axis element t of this (p, q) at xc[t * inner]; output i at yc[i * inner]
    const T* xc = x + (sep_src(g, m) * g.pre + p) * ((idx_t)n_in * inner) + q;
    T* yc = y + (m * g.pre + p) * ((idx_t)g.n_out * inner) + q;
    const T* fp = f + (idx_t)(m % g.n_filters) * g.k;
    const int kl = g.k - 1;  // the last tap
    T acc[OPT];
#pragma unroll
    for (int o = 0; o < OPT; ++o)
        acc[o] = (g.accumulate && i0 + o < g.n_out) ? yc[(i0 + o) * inner] : zero_of<T>();
    const int t0 = i0 * s - g.pad_lo;  // input row of output i0, tap 0
    if (d == s) {
        // output o, tap j reads row t0 + (o + j) * s: win[o] holds it for the current j, and the
        // window slides by one row per tap (one load for OPT MACs)
        T win[OPT];
#pragma unroll
        for (int o = 0; o < OPT; ++o) {
            const int t = t0 + o * s;
            const bool ok = (unsigned)t < (unsigned)n_in;
            win[o] = ldg_or_zero(xc + (ok ? t : 0) * inner, ok);
        }
        T w = ldg(fp);
#pragma unroll 2
        for (int j = 0;;) {
            const T wn = ldg(fp + (j < kl ? j + 1 : kl));  // the next tap, one step ahead
#pragma unroll
            for (int o = 0; o < OPT; ++o) acc[o] = mac(acc[o], win[o], w);
            if (++j == g.k) break;
#pragma unroll
            for (int o = 0; o + 1 < OPT; ++o) win[o] = win[o + 1];
            const int t = t0 + (OPT - 1 + j) * s;
            const bool ok = (unsigned)t < (unsigned)n_in;
            win[OPT - 1] = ldg_or_zero(xc + (ok ? t : 0) * inner, ok);
            w = wn;
        }
    } else {
        T w = ldg(fp);
#pragma unroll 1
        for (int j = 0; j < g.k; ++j) {
            const T wn = ldg(fp + (j < kl ? j + 1 : kl));
#pragma unroll
            for (int o = 0; o < OPT; ++o) {
                const int t = t0 + o * s + j * d;
                const bool ok = (unsigned)t < (unsigned)n_in;
                acc[o] = mac(acc[o], ldg_or_zero(xc + (ok ? t : 0) * inner, ok), w);
            }
            w = wn;
        }
    }
    const idx_t ch = m % g.channels;
#pragma unroll
    for (int o = 0; o < OPT; ++o)
        if (i0 + o < g.n_out) yc[(i0 + o) * inner] = epilogue(acc[o], bias, ch, g.act, g.slope);
}

// ---- inner == 1: one pass along the last (contiguous) axis -------------------------------------
template <typename T>
struct SepSmem {
    static constexpr int ELEMS = SEP_SMEM_BYTES / (int)sizeof(T);
};

// Block b: rows [gi * R, gi * R + R) of the planes * pre rows (gi = b / tiles), outputs
// [tx * TW, tx * TW + TW) of each (tx = b % tiles).
template <typename T>
__device__ __forceinline__ void sep_last(const T* __restrict__ x, const T* __restrict__ f,
                                         T* __restrict__ y, const T* __restrict__ bias,
                                         const SepGeom& g, T* tile)
{
    constexpr int OPT = SepOpt<T>::value;
    const int tpr = g.tpr;
    const int R = SEP_BLOCK / tpr;  // rows per block
    const int TW = tpr * OPT;       // outputs per row per tile
    const int tiles = ceil_div(g.n_out, TW);
    const idx_t rows = g.planes * g.pre;
    const idx_t b = sep_block_index();
    const idx_t gi = b / tiles;
    if (gi * R >= rows) return;                // uniform over the block
    const int s = g.stride, d = g.dilation, n_in = g.n_in, n_out = g.n_out;
    const long long span64 = (long long)(TW - 1) * s + (long long)(g.k - 1) * d + 1;
    const bool staged = (long long)R * span64 <= SepSmem<T>::ELEMS;  // uniform over the grid
    const int rr = threadIdx.x / tpr;          // this thread's row in the block (idle if >= R)
    const int lane = threadIdx.x - rr * tpr;
    const idx_t row = gi * R + rr;
    const bool row_ok = rr < R && row < rows;
    const int o0 = (int)(b - gi * tiles) * TW;
    const int in0 = o0 * s - g.pad_lo;         // input column of the tile's first output, tap 0
    const idx_t m = row_ok ? row / g.pre : 0;
    const T* xr = x + (sep_src(g, m) * g.pre + (row - m * g.pre)) * n_in;
    T* trow = tile + (staged ? rr * (int)span64 : 0);
    if (staged) {
        if (row_ok) {
#pragma unroll 4
            for (int c = lane; c < (int)span64; c += tpr) {
                const int t = in0 + c;
                const bool ok = (unsigned)t < (unsigned)n_in;
                trow[c] = ldg_or_zero(xr + (ok ? t : 0), ok);
            }
        }
        __syncthreads();
    }
    if (!row_ok) return;                       // no barrier follows
    const T* fp = f + (idx_t)(m % g.n_filters) * g.k;
    const int kl = g.k - 1;  // the last tap
    T* yr = y + row * n_out;
    T acc[OPT];
#pragma unroll
    for (int o = 0; o < OPT; ++o) {
        const int i = o0 + lane + o * tpr;
        acc[o] = (g.accumulate && i < n_out) ? yr[i] : zero_of<T>();
    }
    if (staged) {
        const T* tl = trow + lane * s;
        const int ostep = tpr * s;
        T w = ldg(fp);
#pragma unroll 1
        for (int j = 0; j < g.k; ++j) {
            const T wn = ldg(fp + (j < kl ? j + 1 : kl));
            const T* tj = tl + j * d;
#pragma unroll
            for (int o = 0; o < OPT; ++o) acc[o] = mac(acc[o], tj[o * ostep], w);
            w = wn;
        }
    } else {
        const int tl = in0 + lane * s;
        T w = ldg(fp);
#pragma unroll 1
        for (int j = 0; j < g.k; ++j) {
            const T wn = ldg(fp + (j < kl ? j + 1 : kl));
#pragma unroll
            for (int o = 0; o < OPT; ++o) {
                const int t = tl + o * tpr * s + j * d;
                const bool ok = (unsigned)t < (unsigned)n_in;
                acc[o] = mac(acc[o], ldg_or_zero(xr + (ok ? t : 0), ok), w);
            }
            w = wn;
        }
    }
    const idx_t ch = m % g.channels;
#pragma unroll
    for (int o = 0; o < OPT; ++o) {
        const int i = o0 + lane + o * tpr;
        if (i < n_out) yr[i] = epilogue(acc[o], bias, ch, g.act, g.slope);
    }
}

#define DEFINE_SEP_PASS(SUFFIX, T)                                                                 \
    extern "C" __global__ void __launch_bounds__(SEP_BLOCK, SEP_MIN_BLOCKS) sep_pass_##SUFFIX(    \
        const T* __restrict__ x, const T* __restrict__ f, T* __restrict__ y, long long planes,    \
        int src_div, int src_grp, int src_mul, int grp_mul, int src_off, int pre, int n_in,       \
        int n_out, int inner, int k, int stride, int dilation, int pad_lo, int n_filters,         \
        int tpr, int accumulate, int channels, const T* __restrict__ bias, int act,               \
        double slope)                                                                              \
    {                                                                                              \
        __shared__ __align__(16) unsigned char smem[SEP_SMEM_BYTES];                              \
        const SepGeom g = {planes, src_div, src_grp, src_mul, grp_mul, src_off, pre, n_in, n_out, \
                           inner, k, stride, dilation, pad_lo, n_filters, tpr, accumulate,        \
                           channels, act, slope};                                                  \
        if (inner == 1)                                                                            \
            sep_last<T>(x, f, y, bias, g, reinterpret_cast<T*>(smem));                            \
        else                                                                                       \
            sep_mid<T>(x, f, y, bias, g);                                                          \
    }

DEFINE_SEP_PASS(f32, float)
DEFINE_SEP_PASS(f64, double)
DEFINE_SEP_PASS(c64, float2)
DEFINE_SEP_PASS(c128, double2)
