// im2col.cu: the column matrix of the canonical correlation (gpuconv/_spec.py) and its adjoint.
//
// For nb batch items of x: (nb, c_in, D, H, W) (1-D / 2-D problems pass size-1 leading axes),
// K = kd*kh*kw taps and P = OD*OH*OW outputs per plane, the column matrix is
//
//     col[n, c, a, b, e, od, oh, ow] = xpad[n, c, od*sd + a*dd, oh*sh + b*dh, ow*sw + e*dw]
//
// laid out C-contiguous as (nb, c_in, K, P) == (nb, groups, c_in/groups * K, P), so that
// y[n, g] = W~[g] (c_out/groups, Cig*K) @ col[n, g] (Cig*K, P) is one batched GEMM (cuBLAS) whose
// result is already y's (nb, c_out, P) layout.  Zero padding is read at load time (xpad index
// minus pad_lo is the real index; outside [0, size) it is 0).  Nothing is flipped here: the host
// passes the flipped filter for convolution.
//
// im2col_<dtype>(x, col, rows, D, H, W, OD, OH, OW, kd, kh, kw, sd, sh, sw, dd, dh, dw, pd, ph, pw)
//   rows = nb * c_in * K column rows.  Grid: x over the P positions of a row (grid-strided), y over
//   the rows (grid-strided past 65535); block (IM2COL_BLOCK, 1, 1).  Row r is (plane r / K, tap
//   r % K), the plane index (n * c_in + c) being x's plane.  Writes are coalesced along P.
//
// col2im_<dtype>(col, x, planes, D, H, W, OD, OH, OW, kd, kh, kw, sd, sh, sw, dd, dh, dw, pd, ph, pw)
//   The adjoint (backward-data of im2col): x[plane, i] = sum of every col element that im2col
//   read from (plane, i); gathers per input element (deterministic, no atomics), writes every
//   element of x (zero where no column reads it).  planes = nb * c_in.  Grid: x over the D*H*W
//   elements of a plane (grid-strided), y over the planes; block (IM2COL_BLOCK, 1, 1).
//
// Limits (the host checks): P < 2^30 and D*H*W < 2^30 (32-bit in-plane indices that cannot
// overflow when grid-strided), every size and padding < 2^30.  Element offsets are 64-bit.

#include "common.cuh"

#ifndef IM2COL_BLOCK
#define IM2COL_BLOCK 256
#endif

template <typename T>
__device__ __forceinline__ void im2col_body(const T* __restrict__ x, T* __restrict__ col,
                                            long long rows, int D, int H, int W, int OD, int OH,
                                            int OW, int kd, int kh, int kw, int sd, int sh, int sw,
                                            int dd, int dh, int dw, int pd, int ph, int pw)
{
    const int K = kd * kh * kw;
    const int ohw = OH * OW;
    const int P = OD * ohw;
    const idx_t in_plane = (idx_t)D * H * W;
    for (idx_t r = blockIdx.y; r < rows; r += gridDim.y) {
        const int tap = (int)(r % K);
        const idx_t plane = r / K;
        const int a = tap / (kh * kw);
        const int rem = tap - a * (kh * kw);
        const int b = rem / kw;
        const int e = rem - b * kw;
        const int za = a * dd - pd, yb = b * dh - ph, xe = e * dw - pw;
        const T* xp = x + plane * in_plane;
        T* cp = col + r * (idx_t)P;
        for (int p = blockIdx.x * blockDim.x + threadIdx.x; p < P; p += gridDim.x * blockDim.x) {
            const int od = p / ohw;
            const int q = p - od * ohw;
            const int oh = q / OW;
            const int ow = q - oh * OW;
            const int iz = od * sd + za, iy = oh * sh + yb, ix = ow * sw + xe;
            const bool ok =
                (unsigned)iz < (unsigned)D && (unsigned)iy < (unsigned)H && (unsigned)ix < (unsigned)W;
            cp[p] = ldg_or_zero(xp + (((idx_t)iz * H + iy) * W + ix), ok);
        }
    }
}

// source_out(): common.cuh (shared with direct.cu's transposed kernel)

template <typename T>
__device__ __forceinline__ void col2im_body(const T* __restrict__ col, T* __restrict__ x,
                                            long long planes, int D, int H, int W, int OD, int OH,
                                            int OW, int kd, int kh, int kw, int sd, int sh, int sw,
                                            int dd, int dh, int dw, int pd, int ph, int pw)
{
    const int K = kd * kh * kw;
    const int P = OD * OH * OW;
    const int hw = H * W;
    const int n_in = D * hw;
    for (idx_t pl = blockIdx.y; pl < planes; pl += gridDim.y) {
        const T* cplane = col + pl * K * (idx_t)P;
        T* xp = x + pl * (idx_t)n_in;
        for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n_in; i += gridDim.x * blockDim.x) {
            const int iz = i / hw;
            const int q = i - iz * hw;
            const int iy = q / W;
            const int ix = q - iy * W;
            T acc = zero_of<T>();
#pragma unroll 1
            for (int a = 0; a < kd; ++a) {
                const int od = source_out(iz, pd, a, dd, sd, OD);
                if (od < 0) continue;
#pragma unroll 1
                for (int b = 0; b < kh; ++b) {
                    const int oh = source_out(iy, ph, b, dh, sh, OH);
                    if (oh < 0) continue;
#pragma unroll 1
                    for (int e = 0; e < kw; ++e) {
                        const int ow = source_out(ix, pw, e, dw, sw, OW);
                        if (ow < 0) continue;
                        const int tap = (a * kh + b) * kw + e;
                        acc = add(acc, ldg(cplane + (idx_t)tap * P + ((idx_t)od * OH + oh) * OW + ow));
                    }
                }
            }
            xp[i] = acc;
        }
    }
}

#define DEFINE_IM2COL(SUFFIX, T)                                                                   \
    extern "C" __global__ void __launch_bounds__(IM2COL_BLOCK) im2col_##SUFFIX(                   \
        const T* __restrict__ x, T* __restrict__ col, long long rows, int D, int H, int W, int OD, \
        int OH, int OW, int kd, int kh, int kw, int sd, int sh, int sw, int dd, int dh, int dw,   \
        int pd, int ph, int pw)                                                                    \
    {                                                                                              \
        im2col_body<T>(x, col, rows, D, H, W, OD, OH, OW, kd, kh, kw, sd, sh, sw, dd, dh, dw, pd, \
                       ph, pw);                                                                    \
    }                                                                                              \
    extern "C" __global__ void __launch_bounds__(IM2COL_BLOCK, 4) col2im_##SUFFIX(                \
        const T* __restrict__ col, T* __restrict__ x, long long planes, int D, int H, int W,      \
        int OD, int OH, int OW, int kd, int kh, int kw, int sd, int sh, int sw, int dd, int dh,   \
        int dw, int pd, int ph, int pw)                                                            \
    {                                                                                              \
        col2im_body<T>(col, x, planes, D, H, W, OD, OH, OW, kd, kh, kw, sd, sh, sw, dd, dh, dw,   \
                       pd, ph, pw);                                                                \
    }

DEFINE_IM2COL(f32, float)
DEFINE_IM2COL(f64, double)
DEFINE_IM2COL(c64, float2)
DEFINE_IM2COL(c128, double2)
DEFINE_IM2COL(i64, long long)
