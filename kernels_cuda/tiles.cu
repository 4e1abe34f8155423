// tiles.cu: the gather and scatter passes of overlap-save FFT convolution
// (gpuconv/cuda/overlap_add.py).  Geometry is always 3-D: a problem of fewer spatial axes has
// leading axes of length 1 (L = B = T = N = O = S = 1, pad 0).
//
// A tile item is one (batch item n, tile t) pair, flattened as item = n * ntiles + t with
// ntiles = T0*T1*T2 and t = (t0*T1 + t1)*T2 + t2.  Tile t covers the padded positions
// [t_a*B_a, t_a*B_a + L_a) on axis a; its first B_a circular outputs are the stride-1 outputs
// q_a = t_a*B_a + i_a (the kernel spectrum has the taps wrapped at (-d*u) mod L_a).  A chunk is
// the nitems consecutive items from item0 = first_n * ntiles + first_t (first_t < ntiles); it
// indexes them from 0.
//
// tiles_gather_<sfx>: tiles[it, c, i0, i1, i2] = xpad[n, c, t0*B0+i0, t1*B1+i1, t2*B2+i2], with
//     xpad x with pad_lo P_a in front, read at load time (positions outside [0, N_a) give zero:
//     no padded copy of x).  tiles is (nitems, c_in, L0, L1, L2) C-contiguous, x (batch, c_in,
//     N0, N1, N2).  int64 x is widened to float64 tiles.
// tiles_scatter_<sfx>: every output y[n, o, p0, p1, p2] whose stride-1 position q_a = p_a*S_a lies
//     in a tile of the chunk gets epilogue(yt[it, o, q0-t0*B0, q1-t1*B1, q2-t2*B2]) with
//     epilogue(v) = act(v + bias[o]) for float32 / float64 (bias may be NULL; act: 0 none,
//     1 relu, 2 leaky_relu, 3 sigmoid, 4 tanh: common.cuh's activate(), the codes of
//     gpuconv/_epilogue.py, NaN stays NaN; slope is a double rounded to the type), v + bias[o] for
//     complex (act ignored), and rint(v) + bias[o] for int64 (yt is float64 then, act ignored).
//     yt is (nitems, c_out, L0, L1, L2), y (batch, c_out, O0, O1, O2).
//
// Launch (both): block (bx, by) with bx * by <= TILES_THREADS; x: the last axis (L2 for the
// gather, E2 = ceil(B2/S2) outputs per tile for the scatter), bx consecutive threads on
// consecutive addresses (coalesced), no grid stride: gridDim.x * bx must cover it; y: the rows
// (L0*L1, or E0*E1 output rows per tile), TILES_ROWS consecutive rows per thread, grid-stride;
// z: the planes (item, channel) of the chunk, grid-stride (any gridDim.z up to 65535).  The
// per-plane index arithmetic (32-bit divisions) is done once per plane and amortised over the
// TILES_ROWS rows.  Element offsets are 64-bit; the host keeps each axis and one tile plane
// (L0*L1*L2) below 2^30 elements, nitems * channels below 2^31 - 65535, batch and ntiles
// below 2^31.
//
// Entry points: tiles_gather_{f32,f64,c64,c128,i64}, tiles_scatter_{f32,f64,c64,c128,i64}.

#include "common.cuh"

#ifndef TILES_THREADS
#define TILES_THREADS 256  // threads per block (bx * by)
#endif
#ifndef TILES_ROWS
#define TILES_ROWS 8  // consecutive rows per thread
#endif

// ---- element conversions and the epilogue ---------------------------------------------------

__device__ __forceinline__ float to_work(float v) { return v; }
__device__ __forceinline__ double to_work(double v) { return v; }
__device__ __forceinline__ float2 to_work(float2 v) { return v; }
__device__ __forceinline__ double2 to_work(double2 v) { return v; }
__device__ __forceinline__ double to_work(long long v) { return (double)v; }

// The epilogue: v + b, then the activation of common.cuh for real floating types (slope rounded
// to the type first); int64 results are rounded from float64 (half to even, as cupy.rint) and
// add the bias modulo 2^64.  b is the plane's bias (zero without one).
template <typename T>
__device__ __forceinline__ T finish(T v, T b, int act, double slope)
{
    v = add(v, b);
    if constexpr (is_real_float<T>::value) {
        if (act) v = activate(v, act, T(slope));
    }
    return v;
}
__device__ __forceinline__ long long finish(double v, long long b, int, double)
{
    return add((long long)llrint(v), b);
}

// (n, t0, t1, t2) of the chunk's item it: item = first_n * ntiles + first_t + it.  32-bit
// unsigned divisions only (a 64-bit division is a subroutine call): first_t < ntiles < 2^31 and
// it < 2^31, so first_t + it < 2^32.
struct TileOf {
    idx_t n;
    int t0, t1, t2;
};

__device__ __forceinline__ TileOf tile_of(int first_n, int first_t, int it, int T0, int T1, int T2)
{
    TileOf r;
    const unsigned nt = (unsigned)T0 * (unsigned)T1 * (unsigned)T2;
    unsigned u = (unsigned)first_t + (unsigned)it;
    const unsigned dn = u / nt;
    u -= dn * nt;
    r.n = (idx_t)first_n + dn;
    r.t2 = (int)(u % (unsigned)T2);
    u /= (unsigned)T2;
    r.t1 = (int)(u % (unsigned)T1);
    r.t0 = (int)(u / (unsigned)T1);
    return r;
}

// ---- gather ----------------------------------------------------------------------------------

template <typename TI, typename TW>
__device__ __forceinline__ void gather_body(const TI* __restrict__ x, TW* __restrict__ tiles,
                                            int first_n, int first_t, int nitems, int c_in, int T0,
                                            int T1, int T2, int N0, int N1, int N2, int P0, int P1,
                                            int P2, int L0, int L1, int L2, int B0, int B1, int B2)
{
    const int i2 = blockIdx.x * blockDim.x + threadIdx.x;
    if (i2 >= L2) return;
    const int rows = L0 * L1;
    const idx_t lplane = (idx_t)rows * L2;
    const idx_t xplane = (idx_t)N0 * N1 * N2;
    const int planes = nitems * c_in;  // < 2^31 - 65535 (the host checks)
    const int rstart = (blockIdx.y * blockDim.y + threadIdx.y) * TILES_ROWS;
    const int rstep = gridDim.y * blockDim.y * TILES_ROWS;
    for (int z = blockIdx.z; z < planes; z += gridDim.z) {
        const int it = (int)((unsigned)z / (unsigned)c_in);
        const int c = z - it * c_in;
        const TileOf tl = tile_of(first_n, first_t, it, T0, T1, T2);
        const int q2 = tl.t2 * B2 + i2 - P2;
        const bool ok2 = (unsigned)q2 < (unsigned)N2;
        const TI* xp = x + (tl.n * c_in + c) * xplane + (ok2 ? q2 : 0);
        TW* tp = tiles + (idx_t)z * lplane + i2;
        const int b0 = tl.t0 * B0 - P0;
        const int b1 = tl.t1 * B1 - P1;
        for (int r0 = rstart; r0 < rows; r0 += rstep) {
            int i0 = r0 / L1;
            int i1 = r0 - i0 * L1;
#pragma unroll
            for (int k = 0; k < TILES_ROWS; ++k) {
                if (r0 + k < rows) {
                    const int q0 = b0 + i0;
                    const int q1 = b1 + i1;
                    const bool ok =
                        ok2 && (unsigned)q0 < (unsigned)N0 && (unsigned)q1 < (unsigned)N1;
                    const idx_t off = ok ? ((idx_t)q0 * N1 + q1) * N2 : 0;
                    tp[(idx_t)(r0 + k) * L2] = ok ? to_work(ldg(xp + off)) : zero_of<TW>();
                }
                if (++i1 == L1) {
                    i1 = 0;
                    ++i0;
                }
            }
        }
    }
}

// ---- scatter ---------------------------------------------------------------------------------

template <typename TW, typename TO>
__device__ __forceinline__ void scatter_body(const TW* __restrict__ yt, TO* __restrict__ y,
                                             const TO* __restrict__ bias, int first_n, int first_t,
                                             int nitems, int c_out, int T0, int T1, int T2, int L0,
                                             int L1, int L2, int B0, int B1, int B2, int O0,
                                             int O1, int O2, int S0, int S1, int S2, int act,
                                             double slope)
{
    const int E2 = (B2 + S2 - 1) / S2;  // at most this many outputs of a tile on each axis
    const int e2 = blockIdx.x * blockDim.x + threadIdx.x;
    if (e2 >= E2) return;
    const int E0 = (B0 + S0 - 1) / S0;
    const int E1 = (B1 + S1 - 1) / S1;
    const int rows = E0 * E1;
    const idx_t lplane = (idx_t)L0 * L1 * L2;
    const idx_t oplane = (idx_t)O0 * O1 * O2;
    const int planes = nitems * c_out;  // < 2^31 - 65535 (the host checks)
    const int rstart = (blockIdx.y * blockDim.y + threadIdx.y) * TILES_ROWS;
    const int rstep = gridDim.y * blockDim.y * TILES_ROWS;
    for (int z = blockIdx.z; z < planes; z += gridDim.z) {
        const int it = (int)((unsigned)z / (unsigned)c_out);
        const int o = z - it * c_out;
        const TileOf tl = tile_of(first_n, first_t, it, T0, T1, T2);
        // first output of the tile on each axis: ceil(t*B / S); outputs p with p*S < (t+1)*B
        const int s0 = tl.t0 * B0, s1 = tl.t1 * B1, s2 = tl.t2 * B2;
        const int f0 = (s0 + S0 - 1) / S0, f1 = (s1 + S1 - 1) / S1;
        const int p2 = (s2 + S2 - 1) / S2 + e2;
        if (p2 >= O2 || p2 * S2 >= s2 + B2) continue;
        const TW* src = yt + (idx_t)z * lplane + (p2 * S2 - s2);
        TO* dst = y + (tl.n * c_out + o) * oplane + p2;
        const TO b = bias ? ldg(bias + o) : zero_of<TO>();
        for (int r0 = rstart; r0 < rows; r0 += rstep) {
            int e0 = r0 / E1;
            int e1 = r0 - e0 * E1;
#pragma unroll
            for (int k = 0; k < TILES_ROWS; ++k) {
                const int p0 = f0 + e0;
                const int p1 = f1 + e1;
                if (r0 + k < rows && p0 < O0 && p0 * S0 < s0 + B0 && p1 < O1 &&
                    p1 * S1 < s1 + B1) {
                    const TW v = ldg(src + ((idx_t)(p0 * S0 - s0) * L1 + (p1 * S1 - s1)) * L2);
                    dst[((idx_t)p0 * O1 + p1) * O2] = finish(v, b, act, slope);
                }
                if (++e1 == E1) {
                    e1 = 0;
                    ++e0;
                }
            }
        }
    }
}

// ---- entry points ----------------------------------------------------------------------------
// The parameter lists are spelled out in each DEFINE_* macro: tests/test_gpu_infra.py parses the
// kernels' signatures from them.

#define TILES_GATHER_ARGS                                                                          \
    first_n, first_t, nitems, c_in, T0, T1, T2, N0, N1, N2, P0, P1, P2, L0, L1, L2, B0, B1, B2
#define TILES_SCATTER_ARGS                                                                         \
    first_n, first_t, nitems, c_out, T0, T1, T2, L0, L1, L2, B0, B1, B2, O0, O1, O2, S0, S1, S2,  \
        act

#define DEFINE_GATHER(SUFFIX, T)                                                                   \
    extern "C" __global__ void __launch_bounds__(TILES_THREADS) tiles_gather_##SUFFIX(           \
        const T* __restrict__ x, T* __restrict__ tiles, int first_n, int first_t, int nitems,     \
        int c_in, int T0, int T1, int T2, int N0, int N1, int N2, int P0, int P1, int P2, int L0, \
        int L1, int L2, int B0, int B1, int B2)                                                   \
    {                                                                                              \
        gather_body<T, T>(x, tiles, TILES_GATHER_ARGS);                                            \
    }

// int64 input, float64 tiles
#define DEFINE_GATHER_WIDEN(SUFFIX, T)                                                             \
    extern "C" __global__ void __launch_bounds__(TILES_THREADS) tiles_gather_##SUFFIX(           \
        const T* __restrict__ x, double* __restrict__ tiles, int first_n, int first_t,            \
        int nitems, int c_in, int T0, int T1, int T2, int N0, int N1, int N2, int P0, int P1,     \
        int P2, int L0, int L1, int L2, int B0, int B1, int B2)                                   \
    {                                                                                              \
        gather_body<T, double>(x, tiles, TILES_GATHER_ARGS);                                       \
    }

#define DEFINE_SCATTER(SUFFIX, T)                                                                  \
    extern "C" __global__ void __launch_bounds__(TILES_THREADS) tiles_scatter_##SUFFIX(          \
        const T* __restrict__ yt, T* __restrict__ y, const T* __restrict__ bias, int first_n,     \
        int first_t, int nitems, int c_out, int T0, int T1, int T2, int L0, int L1, int L2,       \
        int B0, int B1, int B2, int O0, int O1, int O2, int S0, int S1, int S2, int act,          \
        double slope)                                                                              \
    {                                                                                              \
        scatter_body<T, T>(yt, y, bias, TILES_SCATTER_ARGS, slope);                                \
    }

// float64 tile outputs, int64 result (rounded)
#define DEFINE_SCATTER_ROUND(SUFFIX, T)                                                            \
    extern "C" __global__ void __launch_bounds__(TILES_THREADS) tiles_scatter_##SUFFIX(          \
        const double* __restrict__ yt, T* __restrict__ y, const T* __restrict__ bias,              \
        int first_n, int first_t, int nitems, int c_out, int T0, int T1, int T2, int L0, int L1,  \
        int L2, int B0, int B1, int B2, int O0, int O1, int O2, int S0, int S1, int S2, int act,  \
        double slope)                                                                              \
    {                                                                                              \
        scatter_body<double, T>(yt, y, bias, TILES_SCATTER_ARGS, slope);                           \
    }

DEFINE_GATHER(f32, float)
DEFINE_GATHER(f64, double)
DEFINE_GATHER(c64, float2)
DEFINE_GATHER(c128, double2)
DEFINE_GATHER_WIDEN(i64, long long)

DEFINE_SCATTER(f32, float)
DEFINE_SCATTER(f64, double)
DEFINE_SCATTER(c64, float2)
DEFINE_SCATTER(c128, double2)
DEFINE_SCATTER_ROUND(i64, long long)
