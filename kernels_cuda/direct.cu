// direct.cu: direct (spatial-domain) correlation kernels.
//
// All kernels compute the canonical ConvSpec correlation (gpuconv/_spec.py)
//
//     y[n, g*Cog+o, p] = sum_{c<Cig, j} xpad[n, g*Cig+c, p*stride + j*dilation] * w~[g*Cog+o, c, j]
//
// with zero padding applied at load time (no padded copy of x is ever made).  Arrays are
// C-contiguous; complex arrays are passed as float2* / double2* (re, im interleaved).
// One extern "C" entry point per dtype (suffix f32, f64, c64, c128, i64), so CuPy's RawModule
// finds them by plain name.  The loader prepends `#define`s rendered by gpuconv/cuda/_build.py;
// every knob below has an #ifndef default so this file also compiles on its own.
//
// 1. direct2d_<dtype>: the fast 2-D path.  stride 1, dilation 1, one channel per (n, c) plane
//    (the same filter for every plane, or one filter per channel: depthwise), KH x KW fixed at
//    compile time.  Each block stages a (TILE_H + KH - 1) x (TILE_W + KW - 1) input tile in
//    shared memory with coalesced 16-byte loads (scalar loads when the row length or the pointer
//    does not allow them), then each thread keeps OUT_PER_THREAD vertically adjacent outputs in
//    registers and slides down the tile, reading every tile value it needs once per row.
//    The filter w~ (already flipped by the host for convolution) comes from __constant__ memory
//    `c_filter` when the `w` argument is NULL (uniform-register operands, no per-thread load),
//    else from `w` through shared memory (filters larger than the constant buffer, or one
//    filter per channel).
//
// 2. direct3d_generic_<dtype>: any 1-3 spatial dims (pad the shape with 1s), stride, dilation,
//    padding, groups, batch, channels, flip.  One thread per output element (grid x over the
//    outputs of a plane, grid y over batch * c_out planes), filter read through the read-only
//    cache.  The correctness fallback, not a fast path.
//
// 3. direct3d_transposed_<dtype>: the backward-data pass of the same problem in gather form (one
//    thread per input-gradient element, any stride), compiled with the generic family.
//
// Both end in the fused epilogue of common.cuh: y = act(acc + bias[channel]) in the store (bias
// NULL and act 0: the plain result), so a conv layer's bias and activation cost no extra pass.
//
// DIRECT_FAST2D_ONLY / DIRECT_GENERIC_ONLY compile only one family (the build variants use them
// to keep per-K modules small); with neither defined both are compiled.

#include "common.cuh"

// ---- compile-time knobs (defaults; gpuconv/cuda/_build.py is the source of truth) ----------
#ifndef KH
#define KH 3
#endif
#ifndef KW
#define KW 3
#endif
#ifndef TILE_W
#define TILE_W 32            // output columns per block == threads along x (one warp wide)
#endif
#ifndef TILE_H
#define TILE_H 32            // output rows per block
#endif
#ifndef OUT_PER_THREAD
#define OUT_PER_THREAD 8     // vertically adjacent outputs per thread (4-byte dtypes: f32)
#endif
#ifndef OUT_PER_THREAD_8
#define OUT_PER_THREAD_8 OUT_PER_THREAD       // the same for 8-byte dtypes (f64, c64, i64)
#endif
#ifndef OUT_PER_THREAD_16
#define OUT_PER_THREAD_16 (OUT_PER_THREAD / 2) // the same for 16-byte dtypes (c128)
#endif
#ifndef FAST_REGS
#define FAST_REGS 128        // register budget per thread: __launch_bounds__ asks for
#endif                       // 65536 / (threads * FAST_REGS) resident blocks per SM
#ifndef GENERIC_BLOCK
#define GENERIC_BLOCK 256    // threads per block of the generic kernels
#endif

static_assert(KH >= 1 && KW >= 1, "KH, KW must be >= 1");


#if !defined(DIRECT_GENERIC_ONLY)

// The filter for the fast 2-D path: c_filter of const_filter.cuh (read below by immediate-address
// ld.const, not filter_tap_at, see "filter taps").
#include "const_filter.cuh"

// ---- filter taps ------------------------------------------------------------------------------
// The inner loop is unrolled with compile-time indices (StaticFor), and every use of a tap is its
// own `ld.const` with an immediate address, emitted by volatile inline PTX so NVVM cannot merge
// them into vector loads and hoist them: plain C++ reads of c_filter became ld.const.v4 into
// registers live across the whole sliding window (up to 225 taps at 15x15), which spilled.
// ptxas then serves the taps from uniform registers (ULDC + FFMA/DFMA with a UR operand) or
// registers, as its budget allows; sm_90 SASS checked with nvdisasm.
template <int I> struct IntC { static constexpr int value = I; };

template <int B, int E>
struct StaticFor {
    template <typename F> __device__ __forceinline__ static void run(F& f)
    {
        f(IntC<B>());
        StaticFor<B + 1, E>::run(f);
    }
};
template <int E>
struct StaticFor<E, E> {
    template <typename F> __device__ __forceinline__ static void run(F&) {}
};

#if defined(GPUCONV_HOST)
// tests/cuda_host: the host C++ compiler runs these kernels on the CPU and has no PTX.
template <int IDX, typename T> __device__ __forceinline__ T const_tap(const T*)
{
    return reinterpret_cast<const T*>(c_filter)[IDX];
}
#else
template <int IDX> __device__ __forceinline__ float const_tap(const float*)
{
    float v;
    asm volatile("ld.const.f32 %0, [c_filter+%1];" : "=f"(v) : "n"(IDX * 4));
    return v;
}
template <int IDX> __device__ __forceinline__ double const_tap(const double*)
{
    double v;
    asm volatile("ld.const.f64 %0, [c_filter+%1];" : "=d"(v) : "n"(IDX * 8));
    return v;
}
template <int IDX> __device__ __forceinline__ float2 const_tap(const float2*)
{
    float re, im;
    asm volatile("ld.const.f32 %0, [c_filter+%1];" : "=f"(re) : "n"(IDX * 8));
    asm volatile("ld.const.f32 %0, [c_filter+%1];" : "=f"(im) : "n"(IDX * 8 + 4));
    return make_float2(re, im);
}
template <int IDX> __device__ __forceinline__ double2 const_tap(const double2*)
{
    double re, im;
    asm volatile("ld.const.f64 %0, [c_filter+%1];" : "=d"(re) : "n"(IDX * 16));
    asm volatile("ld.const.f64 %0, [c_filter+%1];" : "=d"(im) : "n"(IDX * 16 + 8));
    return make_double2(re, im);
}
template <int IDX> __device__ __forceinline__ long long const_tap(const long long*)
{
    long long v;
    asm volatile("ld.const.s64 %0, [c_filter+%1];" : "=l"(v) : "n"(IDX * 8));
    return v;
}
#endif

// Shared-memory taps (the pointer-argument path).  When the whole filter fits in a few dozen
// registers the compiler may keep it there; beyond that every use is a volatile (not CSE'd)
// broadcast LDS, so live ranges stay one FMA long and nothing spills.
#ifndef SMEM_TAPS_IN_REGS_WORDS
#define SMEM_TAPS_IN_REGS_WORDS 32
#endif
__device__ __forceinline__ float vload(const volatile float* p) { return *p; }
__device__ __forceinline__ double vload(const volatile double* p) { return *p; }
__device__ __forceinline__ long long vload(const volatile long long* p) { return *p; }
__device__ __forceinline__ float2 vload(const volatile float2* p) { return make_float2(p->x, p->y); }
__device__ __forceinline__ double2 vload(const volatile double2* p) { return make_double2(p->x, p->y); }

template <typename T, bool kConst, int IDX>
__device__ __forceinline__ T filter_tap(const T* wsh)
{
    if constexpr (kConst) {
        return const_tap<IDX>(wsh);
    } else if constexpr (KH * KW * (int)sizeof(T) <= 4 * SMEM_TAPS_IN_REGS_WORDS) {
        return wsh[IDX];
    } else {
        return vload(reinterpret_cast<const volatile T*>(wsh) + IDX);
    }
}

// Shared tile geometry for element type T.  VEC elements make one 16-byte chunk; the tile row is
// padded so that a row starting at a 16-byte-aligned global column (up to VEC-1 columns left of
// the first one needed) still covers TILE_W + KW - 1 columns.
template <typename T>
struct Tile2d {
    static constexpr int OPT = sizeof(T) >= 16 ? OUT_PER_THREAD_16
                               : sizeof(T) >= 8 ? OUT_PER_THREAD_8 : OUT_PER_THREAD;
    static constexpr int THREADS = TILE_W * (TILE_H / OPT);   // block = (TILE_W, TILE_H / OPT)
    static constexpr int MIN_BLOCKS = 65536 / (THREADS * FAST_REGS) > 0
                                      ? 65536 / (THREADS * FAST_REGS) : 1;
    static constexpr int VEC = sizeof(T) >= 16 ? 1 : 16 / (int)sizeof(T);
    static constexpr int ROWS = TILE_H + KH - 1;
    static constexpr int NEED = TILE_W + KW - 1;              // columns the outputs read
    static constexpr int COLS = round_up(NEED + VEC - 1, VEC);  // row stride in elements
    static constexpr int CHUNKS = COLS / VEC;                   // 16-byte chunks per row
    static constexpr int ELEMS = ROWS * COLS;
    static_assert(OPT >= 1 && TILE_H % OPT == 0, "TILE_H must be a multiple of OUT_PER_THREAD*");
    static_assert(THREADS <= 1024, "too many threads per block");
};

// Stage input rows [iy0, iy0 + ROWS) and columns [ix0 - shift, ...) of plane xp into tile; out of
// range elements are the zero padding.  Returns shift (the tile column of input column ix0).
template <typename T>
__device__ __forceinline__ int stage_tile(const T* __restrict__ xp, T* tile, int H, int W, int iy0,
                                          int ix0, bool vec_ok, int tid)
{
    typedef Tile2d<T> G;
    if (G::VEC > 1 && vec_ok) {
        // 16-byte chunks.  W % VEC == 0 and xp 16-byte aligned: a chunk starting at a multiple of
        // VEC is entirely inside [0, W) or entirely outside, so no partial chunks exist.
        const int xs = ix0 & ~(G::VEC - 1);  // floor to a multiple of VEC (two's complement)
        for (int t = tid; t < G::ROWS * G::CHUNKS; t += G::THREADS) {
            const int r = t / G::CHUNKS;
            const int ch = t - r * G::CHUNKS;
            const int gy = iy0 + r;
            const int gx = xs + ch * G::VEC;
            int4 v = zero_int4();
            if ((unsigned)gy < (unsigned)H && (unsigned)gx < (unsigned)W)
                v = ldg(reinterpret_cast<const int4*>(xp + ((idx_t)gy * W + gx)));
            *reinterpret_cast<int4*>(tile + r * G::COLS + ch * G::VEC) = v;
        }
        return ix0 - xs;
    }
    // Scalar fallback: one element per load, still coalesced along the row.
    for (int t = tid; t < G::ROWS * G::NEED; t += G::THREADS) {
        const int r = t / G::NEED;
        const int c = t - r * G::NEED;
        const int gy = iy0 + r;
        const int gx = ix0 + c;
        const bool ok = (unsigned)gy < (unsigned)H && (unsigned)gx < (unsigned)W;
        tile[r * G::COLS + c] = ldg_or_zero(xp + ((idx_t)gy * W + gx), ok);
    }
    return 0;
}

// Accumulate this thread's OUT_PER_THREAD outputs from the staged tile.  `trow` points at the
// tile element of the thread's first output row and column (shift applied).  Row r of the
// thread's window is read once (KW values, conflict-free: a warp reads 32 consecutive elements)
// and feeds every output o = r - i it touches: (OPT + KH - 1) * KW shared loads for
// OPT * KH * KW FMAs.
template <typename T, bool kConst>
__device__ __forceinline__ void accumulate_tile(const T* trow, const T* wsh, T (&acc)[Tile2d<T>::OPT])
{
    typedef Tile2d<T> G;
    auto row = [&](auto R) {
        constexpr int r = decltype(R)::value;
        T v[KW];
#pragma unroll
        for (int j = 0; j < KW; ++j) v[j] = trow[r * G::COLS + j];
        auto filter_row = [&](auto I) {
            constexpr int i = decltype(I)::value;
            constexpr int o = r - i;
            if constexpr (o >= 0 && o < G::OPT) {
                auto tap = [&](auto J) {
                    constexpr int j = decltype(J)::value;
                    acc[o] = mac(acc[o], v[j], filter_tap<T, kConst, i * KW + j>(wsh));
                };
                StaticFor<0, KW>::run(tap);
            }
        };
        StaticFor<0, KH>::run(filter_row);
    };
    StaticFor<0, G::OPT + KH - 1>::run(row);
}

// One block: TILE_W x TILE_H outputs of one plane per loop trip; block = (TILE_W, TILE_H/OPT).
//   x: (planes, H, W), y: (planes, OH, OW); output (oy, ox) reads input rows oy - pad_top + i and
//   columns ox - pad_left + j, i < KH, j < KW.  w == NULL: filter from c_filter, same for every
//   plane.  Else w holds `channels` filters of KH*KW, plane p uses filter p % channels.
template <typename T, bool kConst>
__device__ __forceinline__ void direct2d_plane_loop(const T* __restrict__ x, const T* __restrict__ w,
                                                    T* __restrict__ y, T* tile, T* wsh,
                                                    idx_t planes, int H, int W, int OH, int OW,
                                                    int pad_top, int pad_left, int channels,
                                                    const T* __restrict__ bias, int act,
                                                    double slope)
{
    typedef Tile2d<T> G;
    const int tid = threadIdx.y * TILE_W + threadIdx.x;
    const int ox0 = blockIdx.x * TILE_W;
    const int oy0 = blockIdx.y * TILE_H;
    const int ix0 = ox0 - pad_left;
    const int iy0 = oy0 - pad_top;
    const bool vec_ok = (W % G::VEC) == 0 && aligned16(x);
    const idx_t in_plane = (idx_t)H * W;
    const idx_t out_plane = (idx_t)OH * OW;
    const int ox = ox0 + threadIdx.x;
    const int oyt = oy0 + threadIdx.y * G::OPT;

    for (idx_t p = blockIdx.z; p < planes; p += gridDim.z) {
        if (!kConst) {
            const T* wp = w + (idx_t)(p % channels) * (KH * KW);
            for (int t = tid; t < KH * KW; t += G::THREADS) wsh[t] = ldg(wp + t);
        }
        const int shift = stage_tile(x + p * in_plane, tile, H, W, iy0, ix0, vec_ok, tid);
        __syncthreads();

        T acc[G::OPT];
#pragma unroll
        for (int o = 0; o < G::OPT; ++o) acc[o] = zero_of<T>();
        const T* trow = tile + threadIdx.y * G::OPT * G::COLS + threadIdx.x + shift;
        accumulate_tile<T, kConst>(trow, wsh, acc);

        if (ox < OW) {
            T* yp = y + p * out_plane + ox;
            const idx_t ch = p % channels;
#pragma unroll
            for (int o = 0; o < G::OPT; ++o)
                if (oyt + o < OH)
                    yp[(idx_t)(oyt + o) * OW] = epilogue(acc[o], bias, ch, act, slope);
        }
        __syncthreads();  // the tile is overwritten by the next plane
    }
}

#define DEFINE_DIRECT2D(SUFFIX, T)                                                                 \
    extern "C" __global__ void                                                                 \
    __launch_bounds__(Tile2d<T>::THREADS, Tile2d<T>::MIN_BLOCKS)                                  \
    direct2d_##SUFFIX(const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ y,        \
                      long long planes, int H, int W, int OH, int OW, int pad_top, int pad_left,  \
                      int channels, const T* __restrict__ bias, int act, double slope)            \
    {                                                                                              \
        __shared__ __align__(16) T tile[Tile2d<T>::ELEMS];                                        \
        __shared__ T wsh[KH * KW];                                                                \
        if (w == 0)                                                                                \
            direct2d_plane_loop<T, true>(x, w, y, tile, wsh, planes, H, W, OH, OW, pad_top,      \
                                         pad_left, channels, bias, act, slope);                   \
        else                                                                                       \
            direct2d_plane_loop<T, false>(x, w, y, tile, wsh, planes, H, W, OH, OW, pad_top,     \
                                          pad_left, channels, bias, act, slope);                  \
    }

DEFINE_DIRECT2D(f32, float)
DEFINE_DIRECT2D(f64, double)
DEFINE_DIRECT2D(c64, float2)
DEFINE_DIRECT2D(c128, double2)
DEFINE_DIRECT2D(i64, long long)

#endif  // !DIRECT_GENERIC_ONLY

#if !defined(DIRECT_FAST2D_ONLY)

// Generic N-d (N <= 3; 1-D and 2-D problems pass size-1 leading axes) direct correlation.
//   x: (batch, c_in, D, H, W)   w: (c_out, c_in/groups, kd, kh, kw)   y: (batch, c_out, OD, OH, OW)
//   xpad index along an axis = out * stride + tap * dilation, minus pad_lo for the real index.
//   flip != 0 reads w reversed on the three spatial axes (convolution), else as given.
// Grid: x strides over the OD*OH*OW outputs of one (n, c_out) plane (one thread per output,
// coalesced along OW), y strides over the batch * c_out planes, so the filter pointer is uniform
// per block and every index split is a 32-bit division.  Limits: OD*OH*OW < 2^31 and
// batch * c_out < 2^31 (the host checks); element offsets are 64-bit.
template <typename T>
__device__ __forceinline__ void direct3d_generic_body(
    const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ y, int batch, int c_in,
    int c_out, int groups, int D, int H, int W, int OD, int OH, int OW, int kd, int kh, int kw,
    int sd, int sh, int sw, int dd, int dh, int dw, int pd, int ph, int pw, int flip,
    const T* __restrict__ bias, int act, double slope)
{
    const int cig = c_in / groups;
    const int cog = c_out / groups;
    const idx_t taps = (idx_t)kd * kh * kw;
    const idx_t in_plane = (idx_t)D * H * W;
    const int ohw = OH * OW;
    const int spatial = OD * ohw;
    const int planes = batch * c_out;
    for (int pc = blockIdx.y; pc < planes; pc += gridDim.y) {
        const int co = pc % c_out;
        const int n = pc / c_out;
        const int g = co / cog;
        const T* xg = x + ((idx_t)n * c_in + (idx_t)g * cig) * in_plane;
        const T* wg = w + (idx_t)co * cig * taps;
        T* yp = y + (idx_t)pc * spatial;
        for (int s = blockIdx.x * blockDim.x + threadIdx.x; s < spatial;
             s += gridDim.x * blockDim.x) {
            const int od = s / ohw;
            const int rem = s - od * ohw;
            const int oh = rem / OW;
            const int ow = rem - oh * OW;
            const int z0 = od * sd - pd, y0 = oh * sh - ph, x0 = ow * sw - pw;

            T acc = zero_of<T>();
            const T* xc = xg;
            const T* wc = wg;
            for (int c = 0; c < cig; ++c, xc += in_plane, wc += taps) {
                for (int a = 0; a < kd; ++a) {
                    const int iz = z0 + a * dd;
                    if ((unsigned)iz >= (unsigned)D) continue;
                    const int wa = flip ? kd - 1 - a : a;
                    for (int b = 0; b < kh; ++b) {
                        const int iy = y0 + b * dh;
                        if ((unsigned)iy >= (unsigned)H) continue;
                        const int wb = flip ? kh - 1 - b : b;
                        const T* xr = xc + ((idx_t)iz * H + iy) * W;
                        const T* wr = wc + ((idx_t)wa * kh + wb) * kw;
                        for (int e = 0; e < kw; ++e) {
                            const int ix = x0 + e * dw;
                            if ((unsigned)ix >= (unsigned)W) continue;
                            const int we = flip ? kw - 1 - e : e;
                            acc = mac(acc, ldg(xr + ix), ldg(wr + we));
                        }
                    }
                }
            }
            yp[s] = epilogue(acc, bias, co, act, slope);
        }
    }
}

#define DEFINE_DIRECT3D_GENERIC(SUFFIX, T)                                                         \
    extern "C" __global__ void __launch_bounds__(GENERIC_BLOCK, 4) direct3d_generic_##SUFFIX(     \
        const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ y, int batch, int c_in, \
        int c_out, int groups, int D, int H, int W, int OD, int OH, int OW, int kd, int kh,       \
        int kw, int sd, int sh, int sw, int dd, int dh, int dw, int pd, int ph, int pw, int flip, \
        const T* __restrict__ bias, int act, double slope)                                        \
    {                                                                                              \
        direct3d_generic_body<T>(x, w, y, batch, c_in, c_out, groups, D, H, W, OD, OH, OW, kd,    \
                                 kh, kw, sd, sh, sw, dd, dh, dw, pd, ph, pw, flip, bias, act,     \
                                 slope);                                                           \
    }

// The transposed pass (backward-data) in gather form, any stride:
//   dx[n, g*Cig+c, i] = sum_{o<Cog, j : (i + pad - j*dil) = q*stride, 0 <= q < O} dy[n, g*Cog+o, q] * w~[g*Cog+o, c, j]
// One thread per dx element (grid x over a plane's D*H*W, grid y over batch * c_in planes); no
// zero-inserted dy, no atomics, every dx element written.  Same limits as the forward kernel.
template <typename T>
__device__ __forceinline__ void direct3d_transposed_body(
    const T* __restrict__ dy, const T* __restrict__ w, T* __restrict__ dx, int batch, int c_in,
    int c_out, int groups, int D, int H, int W, int OD, int OH, int OW, int kd, int kh, int kw,
    int sd, int sh, int sw, int dd, int dh, int dw, int pd, int ph, int pw, int flip)
{
    const int cig = c_in / groups;
    const int cog = c_out / groups;
    const idx_t taps = (idx_t)kd * kh * kw;
    const idx_t out_plane = (idx_t)OD * OH * OW;
    const int hw = H * W;
    const int spatial = D * hw;
    const int planes = batch * c_in;
    for (int pc = blockIdx.y; pc < planes; pc += gridDim.y) {
        const int c = pc % c_in;
        const int n = pc / c_in;
        const int g = c / cig;
        const int cl = c - g * cig;
        const T* dyg = dy + ((idx_t)n * c_out + (idx_t)g * cog) * out_plane;
        const T* wg = w + ((idx_t)g * cog * cig + cl) * taps;
        T* xp = dx + (idx_t)pc * spatial;
        for (int s = blockIdx.x * blockDim.x + threadIdx.x; s < spatial;
             s += gridDim.x * blockDim.x) {
            const int iz = s / hw;
            const int rem = s - iz * hw;
            const int iy = rem / W;
            const int ix = rem - iy * W;
            T acc = zero_of<T>();
            for (int a = 0; a < kd; ++a) {
                const int oz = source_out(iz, pd, a, dd, sd, OD);
                if (oz < 0) continue;
                const int wa = flip ? kd - 1 - a : a;
                for (int b = 0; b < kh; ++b) {
                    const int oy = source_out(iy, ph, b, dh, sh, OH);
                    if (oy < 0) continue;
                    const int wb = flip ? kh - 1 - b : b;
                    for (int e = 0; e < kw; ++e) {
                        const int ox = source_out(ix, pw, e, dw, sw, OW);
                        if (ox < 0) continue;
                        const int we = flip ? kw - 1 - e : e;
                        const idx_t q = ((idx_t)oz * OH + oy) * OW + ox;
                        const idx_t t = ((idx_t)wa * kh + wb) * kw + we;
                        for (int o = 0; o < cog; ++o)
                            acc = mac(acc, ldg(dyg + o * out_plane + q),
                                      ldg(wg + (idx_t)o * cig * taps + t));
                    }
                }
            }
            xp[s] = acc;
        }
    }
}

// Two resident blocks per SM (128 registers): at four (64) every dtype spilled 16-60 bytes on
// sm_80 (the three nested source_out loops keep many indices live); ptxas, sm_80 and sm_90.
#define DEFINE_DIRECT3D_TRANSPOSED(SUFFIX, T)                                                      \
    extern "C" __global__ void __launch_bounds__(GENERIC_BLOCK, 2) direct3d_transposed_##SUFFIX(  \
        const T* __restrict__ dy, const T* __restrict__ w, T* __restrict__ dx, int batch,         \
        int c_in, int c_out, int groups, int D, int H, int W, int OD, int OH, int OW, int kd,     \
        int kh, int kw, int sd, int sh, int sw, int dd, int dh, int dw, int pd, int ph, int pw,   \
        int flip)                                                                                  \
    {                                                                                              \
        direct3d_transposed_body<T>(dy, w, dx, batch, c_in, c_out, groups, D, H, W, OD, OH, OW,   \
                                    kd, kh, kw, sd, sh, sw, dd, dh, dw, pd, ph, pw, flip);        \
    }

DEFINE_DIRECT3D_TRANSPOSED(f32, float)
DEFINE_DIRECT3D_TRANSPOSED(f64, double)
DEFINE_DIRECT3D_TRANSPOSED(c64, float2)
DEFINE_DIRECT3D_TRANSPOSED(c128, double2)
DEFINE_DIRECT3D_TRANSPOSED(i64, long long)

DEFINE_DIRECT3D_GENERIC(f32, float)
DEFINE_DIRECT3D_GENERIC(f64, double)
DEFINE_DIRECT3D_GENERIC(c64, float2)
DEFINE_DIRECT3D_GENERIC(c128, double2)
DEFINE_DIRECT3D_GENERIC(i64, long long)

#endif  // !DIRECT_FAST2D_ONLY
