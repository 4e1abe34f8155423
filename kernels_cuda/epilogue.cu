// epilogue.cu: bias and activation in one pass over a convolution's output, in place.
//
//     y[p, s] = act(y[p, s] + bias[p % channels])     p < planes (= batch * c_out), s < spatial
//
// act: 0 none, 1 relu, 2 leaky_relu (slope), 3 sigmoid, 4 tanh (gpuconv/_epilogue.py holds the
// codes); NaN stays NaN.  bias may be NULL.  Grid-stride over planes (y, up to 65535) and the
// elements of a plane (x, EPILOGUE_BLOCK threads, coalesced); 64-bit element offsets.  The act
// switch is uniform over the grid, so it costs no divergence.
// Entry points: bias_act_f32 (float), bias_act_f64 (double).

#include "common.cuh"

#ifndef EPILOGUE_BLOCK
#define EPILOGUE_BLOCK 256
#endif

// activate(): common.cuh (shared with the conv kernels that fuse it into their store)

template <typename T>
__device__ __forceinline__ void bias_act_body(T* __restrict__ y, const T* __restrict__ bias,
                                              long long planes, int channels, long long spatial,
                                              int act, T slope)
{
    for (idx_t p = blockIdx.y; p < planes; p += gridDim.y) {
        const T b = bias ? ldg(bias + (int)(p % channels)) : T(0);
        T* yp = y + p * spatial;
        for (idx_t s = (idx_t)blockIdx.x * blockDim.x + threadIdx.x; s < spatial;
             s += (idx_t)gridDim.x * blockDim.x)
            yp[s] = activate(yp[s] + b, act, slope);
    }
}

#define DEFINE_BIAS_ACT(SUFFIX, T)                                                                 \
    extern "C" __global__ void __launch_bounds__(EPILOGUE_BLOCK, 4)                               \
    bias_act_##SUFFIX(T* __restrict__ y, const T* __restrict__ bias, long long planes,            \
                      int channels, long long spatial, int act, T slope)                          \
    {                                                                                              \
        bias_act_body<T>(y, bias, planes, channels, spatial, act, slope);                          \
    }

DEFINE_BIAS_ACT(f32, float)
DEFINE_BIAS_ACT(f64, double)
