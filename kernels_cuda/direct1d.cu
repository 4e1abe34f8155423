// direct1d.cu: the fast 1-D direct path (long signals, filters up to a few thousand taps).
//
//     y[p, o] = epilogue( sum_{j < k} xpad[p, o + j] * w~[p % channels, j] )
//
// stride 1, dilation 1, one channel per plane (one shared filter, or one per channel: depthwise),
// zero padding read at load time, k a runtime value (k - 1 <= the tile's halo, MAX_HALO*).  The
// host flips the filter for convolution, so the kernel always correlates.
//
// One block computes TILE outputs of one plane: it stages the TILE + k - 1 input samples they read
// in shared memory (coalesced), then each thread computes OPT consecutive outputs.  Taps are
// consumed OPT at a time: 2*OPT - 1 shared loads feed OPT*OPT multiply-adds held in registers.
// OPT is odd, so the threads of a warp (whose windows start OPT apart) hit distinct banks.  The
// results go back through shared memory and are stored coalesced, through the fused epilogue.
// Taps come from __constant__ c_filter (the same for every thread: one broadcast read) when the
// `w` argument is NULL, else from `w` through the read-only cache.
//
// direct1d_<dtype>(x, w, y, planes, W, OW, pad_left, channels, k, bias, act, slope)
//   x: (planes, W), y: (planes, OW); grid x over ceil(OW / TILE) tiles, grid y over the planes
//   (grid-strided past 65535); block (FAST1D_THREADS, 1, 1).  In-plane offsets are 32-bit (the host
//   checks W, OW < 2^30), plane offsets 64-bit.

#include "common.cuh"
#include "const_filter.cuh"

#ifndef FAST1D_THREADS
#define FAST1D_THREADS 256
#endif
#ifndef FAST1D_OPT
#define FAST1D_OPT 9          // outputs per thread, 4-byte dtypes (odd: conflict-free banks)
#endif
#ifndef FAST1D_OPT_8
#define FAST1D_OPT_8 5        // 8-byte dtypes
#endif
#ifndef FAST1D_OPT_16
#define FAST1D_OPT_16 3       // 16-byte dtypes
#endif
#ifndef MAX_HALO
#define MAX_HALO 2048         // k - 1 at most, dtypes up to 8 bytes
#endif
#ifndef MAX_HALO_16
#define MAX_HALO_16 1024      // k - 1 at most, 16-byte dtypes
#endif

template <typename T>
struct Tile1d {
    static constexpr int OPT = sizeof(T) >= 16 ? FAST1D_OPT_16
                               : sizeof(T) >= 8 ? FAST1D_OPT_8 : FAST1D_OPT;
    static constexpr int TILE = FAST1D_THREADS * OPT;
    static constexpr int HALO = sizeof(T) >= 16 ? MAX_HALO_16 : MAX_HALO;
    static_assert(OPT % 2 == 1, "outputs per thread must be odd (bank conflicts)");
};

template <typename T>
__device__ __forceinline__ void direct1d_body(const T* __restrict__ x, const T* __restrict__ w,
                                              T* __restrict__ y, T* tile, long long planes, int W,
                                              int OW, int pad_left, int channels, int k,
                                              const T* __restrict__ bias, int act, double slope)
{
    typedef Tile1d<T> G;
    constexpr int OPT = G::OPT;
    const int tid = threadIdx.x;
    const int ox0 = blockIdx.x * G::TILE;
    const int ix0 = ox0 - pad_left;
    const int need = G::TILE + k - 1;
    for (idx_t p = blockIdx.y; p < planes; p += gridDim.y) {
        const T* xp = x + p * (idx_t)W;
        const T* wp = w ? w + (p % channels) * (idx_t)k : w;
        for (int i = tid; i < need; i += FAST1D_THREADS) {
            const int gx = ix0 + i;
            tile[i] = ldg_or_zero(xp + gx, (unsigned)gx < (unsigned)W);
        }
        __syncthreads();

        T acc[OPT];
#pragma unroll
        for (int o = 0; o < OPT; ++o) acc[o] = zero_of<T>();
        const T* tb = tile + tid * OPT;
        int j0 = 0;
        for (; j0 + OPT <= k; j0 += OPT) {  // OPT taps: 2*OPT - 1 loads, OPT*OPT multiply-adds
            T v[2 * OPT - 1];
#pragma unroll
            for (int i = 0; i < 2 * OPT - 1; ++i) v[i] = tb[j0 + i];
#pragma unroll
            for (int u = 0; u < OPT; ++u) {
                const T t = filter_tap_at(wp, j0 + u);
#pragma unroll
                for (int o = 0; o < OPT; ++o) acc[o] = mac(acc[o], v[o + u], t);
            }
        }
        for (int j = j0; j < k; ++j) {  // the last k % OPT taps
            const T t = filter_tap_at(wp, j);
#pragma unroll
            for (int o = 0; o < OPT; ++o) acc[o] = mac(acc[o], tb[j + o], t);
        }
        __syncthreads();  // every thread is done reading the input tile
#pragma unroll
        for (int o = 0; o < OPT; ++o) tile[tid * OPT + o] = acc[o];
        __syncthreads();
        T* yp = y + p * (idx_t)OW;
        const idx_t ch = p % channels;
        const int n_out = OW - ox0 < G::TILE ? OW - ox0 : G::TILE;
        for (int i = tid; i < n_out; i += FAST1D_THREADS)
            yp[ox0 + i] = epilogue(tile[i], bias, ch, act, slope);
        __syncthreads();  // the tile is overwritten by the next plane
    }
}

#define DEFINE_DIRECT1D(SUFFIX, T)                                                                 \
    extern "C" __global__ void __launch_bounds__(FAST1D_THREADS) direct1d_##SUFFIX(              \
        const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ y, long long planes,    \
        int W, int OW, int pad_left, int channels, int k, const T* __restrict__ bias, int act,    \
        double slope)                                                                              \
    {                                                                                              \
        __shared__ __align__(16) T tile[Tile1d<T>::TILE + Tile1d<T>::HALO];                       \
        direct1d_body<T>(x, w, y, tile, planes, W, OW, pad_left, channels, k, bias, act, slope); \
    }

DEFINE_DIRECT1D(f32, float)
DEFINE_DIRECT1D(f64, double)
DEFINE_DIRECT1D(c64, float2)
DEFINE_DIRECT1D(c128, double2)
DEFINE_DIRECT1D(i64, long long)
