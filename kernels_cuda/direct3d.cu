// direct3d.cu: the fast 3-D direct path (volumes with small kernels).
//
//     y[p, z, r, c] = epilogue( sum_{a, b, e} xpad[p, z + a, r + b, c + e] * w~[p % channels, a, b, e] )
//
// stride 1, dilation 1, one channel per plane (one shared filter, or one per channel: depthwise),
// zero padding read at load time, kernel extents runtime values up to HALO3D* + 1 per axis.  The
// host flips the filter for convolution, so the kernel always correlates.
//
// One block computes a brick of TZ x TILE3_H x TILE3_W outputs (TZ consecutive z per thread, one
// thread per (row, column)): it stages the (TZ + kd - 1) x (TILE3_H + kh - 1) x (TILE3_W + kw - 1)
// input samples they read in shared memory (a warp reads consecutive columns: coalesced, no bank
// conflicts), then for each (b, e) tap column a thread loads its TZ + kd - 1 samples along z once
// into registers and applies every a-tap to its TZ outputs (the loops are unrolled to the
// compile-time maxima and predicated, so the register arrays never spill to local memory).
// Taps come from __constant__ c_filter when `w` is NULL (a broadcast read), else from `w`.
//
// direct3d_fast_<dtype>(x, w, y, planes, D, H, W, OD, OH, OW, pd, ph, pw, channels, kd, kh, kw,
//                       bias, act, slope)
//   grid x over ceil(OW / TILE3_W), y over ceil(OH / TILE3_H), z over planes * ceil(OD / TZ)
//   (grid-strided past 65535); block (TILE3_W, TILE3_H, 1).  In-plane offsets are 32-bit (the
//   host checks D*H*W, OD*OH*OW < 2^30), plane offsets 64-bit.

#include "common.cuh"
#include "const_filter.cuh"

#ifndef TILE3_W
#define TILE3_W 32
#endif
#ifndef TILE3_H
#define TILE3_H 8
#endif
#ifndef TZ3
#define TZ3 4                 // outputs per thread along z, 4-byte dtypes
#endif
#ifndef TZ3_8
#define TZ3_8 2               // 8-byte dtypes
#endif
#ifndef TZ3_16
#define TZ3_16 1              // 16-byte dtypes
#endif
#ifndef HALO3D
#define HALO3D 8              // k - 1 at most per axis, 4-byte dtypes
#endif
#ifndef HALO3D_8
#define HALO3D_8 6            // 8-byte dtypes
#endif
#ifndef HALO3D_16
#define HALO3D_16 4           // 16-byte dtypes
#endif

template <typename T>
struct Brick {
    static constexpr int TZ = sizeof(T) >= 16 ? TZ3_16 : sizeof(T) >= 8 ? TZ3_8 : TZ3;
    static constexpr int HALO = sizeof(T) >= 16 ? HALO3D_16 : sizeof(T) >= 8 ? HALO3D_8 : HALO3D;
    static constexpr int BZ = TZ + HALO;            // staged planes along z (at most)
    static constexpr int BH = TILE3_H + HALO;       // staged rows
    static constexpr int BW = TILE3_W + HALO;       // staged columns
    static constexpr int THREADS = TILE3_W * TILE3_H;
};

template <typename T>
__device__ __forceinline__ void direct3d_fast_body(
    const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ y, T* tile, long long planes,
    int D, int H, int W, int OD, int OH, int OW, int pd, int ph, int pw, int channels, int kd,
    int kh, int kw, const T* __restrict__ bias, int act, double slope)
{
    typedef Brick<T> G;
    constexpr int TZ = G::TZ;
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int tid = ty * TILE3_W + tx;
    const int ox0 = blockIdx.x * TILE3_W, oy0 = blockIdx.y * TILE3_H;
    const int zblocks = (OD + TZ - 1) / TZ;
    const int sz = TZ + kd - 1, sh = TILE3_H + kh - 1, sw = TILE3_W + kw - 1;
    const idx_t in_plane = (idx_t)D * H * W, out_plane = (idx_t)OD * OH * OW;
    const idx_t items = planes * zblocks;
    for (idx_t q = blockIdx.z; q < items; q += gridDim.z) {
        const idx_t p = q / zblocks;
        const int oz0 = (int)(q - p * zblocks) * TZ;
        const T* xp = x + p * in_plane;
        const T* wp = w ? w + (p % channels) * ((idx_t)kd * kh * kw) : w;
        // stage the input brick: element (i, r, c) at tile[(i * BH + r) * BW + c]
        for (int t = tid; t < sz * sh * sw; t += G::THREADS) {
            const int c = t % sw;
            const int rest = t / sw;
            const int r = rest % sh;
            const int i = rest / sh;
            const int gz = oz0 - pd + i, gy = oy0 - ph + r, gx = ox0 - pw + c;
            const bool ok = (unsigned)gz < (unsigned)D && (unsigned)gy < (unsigned)H &&
                            (unsigned)gx < (unsigned)W;
            tile[(i * G::BH + r) * G::BW + c] =
                ldg_or_zero(xp + (((idx_t)gz * H + gy) * W + gx), ok);
        }
        __syncthreads();

        T acc[TZ];
#pragma unroll
        for (int o = 0; o < TZ; ++o) acc[o] = zero_of<T>();
        for (int b = 0; b < kh; ++b) {
            for (int e = 0; e < kw; ++e) {
                const T* col = tile + (ty + b) * G::BW + tx + e;
                T v[G::BZ];
#pragma unroll
                for (int i = 0; i < G::BZ; ++i)
                    v[i] = i < sz ? col[i * G::BH * G::BW] : zero_of<T>();
#pragma unroll
                for (int a = 0; a <= G::HALO; ++a) {
                    if (a < kd) {
                        const T t = filter_tap_at(wp, (a * kh + b) * kw + e);
#pragma unroll
                        for (int o = 0; o < TZ; ++o) acc[o] = mac(acc[o], v[o + a], t);
                    }
                }
            }
        }
        const int ox = ox0 + tx, oy = oy0 + ty;
        if (ox < OW && oy < OH) {
            T* yp = y + p * out_plane + (idx_t)oy * OW + ox;
            const idx_t ch = p % channels;
#pragma unroll
            for (int o = 0; o < TZ; ++o)
                if (oz0 + o < OD)
                    yp[(idx_t)(oz0 + o) * OH * OW] = epilogue(acc[o], bias, ch, act, slope);
        }
        __syncthreads();  // the brick is overwritten by the next item
    }
}

#define DEFINE_DIRECT3D_FAST(SUFFIX, T)                                                            \
    extern "C" __global__ void __launch_bounds__(TILE3_W * TILE3_H) direct3d_fast_##SUFFIX(      \
        const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ y, long long planes,    \
        int D, int H, int W, int OD, int OH, int OW, int pd, int ph, int pw, int channels,        \
        int kd, int kh, int kw, const T* __restrict__ bias, int act, double slope)               \
    {                                                                                              \
        __shared__ __align__(16) T tile[Brick<T>::BZ * Brick<T>::BH * Brick<T>::BW];              \
        direct3d_fast_body<T>(x, w, y, tile, planes, D, H, W, OD, OH, OW, pd, ph, pw, channels,   \
                              kd, kh, kw, bias, act, slope);                                       \
    }

DEFINE_DIRECT3D_FAST(f32, float)
DEFINE_DIRECT3D_FAST(f64, double)
DEFINE_DIRECT3D_FAST(c64, float2)
DEFINE_DIRECT3D_FAST(c128, double2)
DEFINE_DIRECT3D_FAST(i64, long long)
