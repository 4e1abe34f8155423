// spectral.cu: the pointwise spectral product of FFT convolution, with the channel reduction.
//
//     Y[n, g*Cog + o, f] = sum_{c < Cig} X[n, g*Cig + c, f] * W[g*Cog + o, c, f]
//
// X: (batch, c_in, F), W: (c_out, c_in/groups, F), Y: (batch, c_out, F), complex, C-contiguous, F
// the number of frequencies of one (r)FFT spectrum flattened.  Nothing is conjugated (the front
// conjugates where its semantics ask for it).  One pass: each thread owns one frequency f of one
// (n, g, block of CO_PER_THREAD output channels), keeps those outputs in registers, and reads each
// X[n, c, f] once for all of them; consecutive threads take consecutive f, so every load and the
// store are coalesced.  Y must not alias X or W.
//
// Grid: x = ceil(F / SPECTRAL_BLOCK) (x has a 2^31 - 1 limit), y = any number up to 65535 of the
// batch * groups * ceil(Cog / CO_PER_THREAD) (n, g, o-block) items (grid-stride over them).
// Entry points: spectral_c64 (float2), spectral_c128 (double2).

#include "common.cuh"

#ifndef CO_PER_THREAD
#define CO_PER_THREAD 4      // output channels per thread, in registers
#endif
#ifndef SPECTRAL_BLOCK
#define SPECTRAL_BLOCK 256   // threads per block (along f)
#endif

template <typename T>
__device__ __forceinline__ void spectral_body(const T* __restrict__ X, const T* __restrict__ W,
                                              T* __restrict__ Y, long long F, int batch, int c_in,
                                              int c_out, int groups)
{
    const idx_t f = (idx_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (f >= F) return;
    const int cig = c_in / groups;
    const int cog = c_out / groups;
    const int nob = (cog + CO_PER_THREAD - 1) / CO_PER_THREAD;
    const idx_t items = (idx_t)batch * groups * nob;
    for (idx_t q = blockIdx.y; q < items; q += gridDim.y) {
        const int ob = (int)(q % nob);
        const idx_t t = q / nob;
        const int g = (int)(t % groups);
        const idx_t n = t / groups;
        const int o0 = ob * CO_PER_THREAD;
        const int nout = cog - o0 < CO_PER_THREAD ? cog - o0 : CO_PER_THREAD;

        const T* xp = X + (n * c_in + (idx_t)g * cig) * F + f;
        const T* wp = W + ((idx_t)(g * cog + o0) * cig) * F + f;
        T acc[CO_PER_THREAD];
#pragma unroll
        for (int k = 0; k < CO_PER_THREAD; ++k) acc[k] = zero_of<T>();

        if (nout == CO_PER_THREAD) {
            for (int c = 0; c < cig; ++c) {
                const T xv = ldg(xp + (idx_t)c * F);
#pragma unroll
                for (int k = 0; k < CO_PER_THREAD; ++k)
                    acc[k] = cfma(xv, ldg(wp + ((idx_t)k * cig + c) * F), acc[k]);
            }
        } else {  // the last, partial block of output channels
            for (int c = 0; c < cig; ++c) {
                const T xv = ldg(xp + (idx_t)c * F);
#pragma unroll
                for (int k = 0; k < CO_PER_THREAD; ++k)
                    if (k < nout) acc[k] = cfma(xv, ldg(wp + ((idx_t)k * cig + c) * F), acc[k]);
            }
        }

        T* yp = Y + (n * c_out + (idx_t)g * cog + o0) * F + f;
#pragma unroll
        for (int k = 0; k < CO_PER_THREAD; ++k)
            if (k < nout) yp[(idx_t)k * F] = acc[k];
    }
}

#define DEFINE_SPECTRAL(SUFFIX, T)                                                                 \
    extern "C" __global__ void __launch_bounds__(SPECTRAL_BLOCK) spectral_##SUFFIX(               \
        const T* __restrict__ X, const T* __restrict__ W, T* __restrict__ Y, long long F,         \
        int batch, int c_in, int c_out, int groups)                                               \
    {                                                                                              \
        spectral_body<T>(X, W, Y, F, batch, c_in, c_out, groups);                                 \
    }

DEFINE_SPECTRAL(c64, float2)
DEFINE_SPECTRAL(c128, double2)
