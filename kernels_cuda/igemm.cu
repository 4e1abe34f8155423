// igemm.cu: implicit-GEMM forward correlation (float32 / float64, SIMT, no tensor cores).
//
// igemm_<dtype>(x, w~, y, batch, c_in, c_out, groups, D, H, W, OD, OH, OW, kd, kh, kw, sd, sh, sw,
//               dd, dh, dw, pd, ph, pw, splits, bias, act, slope)
// igemm_reduce_<dtype>(ws, y, splits, planes, c_out, P, bias, act, slope)
//
// The canonical ConvSpec correlation (gpuconv/_spec.py)
//
//     y[n, g*Cog+o, p] = sum_{c<Cig, j} xpad[n, g*Cig+c, p*stride + j*dilation] * w~[g*Cog+o, c, j]
//
// as one GEMM per group g:  Y_g (M x N) = A_g (M x K) * B_g (K x N)  with
//     M = Cog (output channels),  N = batch * P (batch items times output positions),
//     K = Cig * KK (input channels times taps),
//     A_g[m, r] = w~[g*Cog + m, c, tap]              (r = c*KK + tap: w's own row-major layout)
//     B_g[r, j] = xpad[n, g*Cig + c, p*stride + tap*dilation]   (j = n*P + p)
// B (the im2col column matrix) is never written to global memory: every block gathers its
// BK x BN slice of it from x straight into shared memory, reading the zero padding at load time
// (no padded copy of x either).  Arrays are C-contiguous NCDHW; 1-D and 2-D problems pass
// size-1 leading axes (as direct3d_generic does).  w is w~ itself: the host flips the filter for
// convolution (a copy of w, the smallest array), so A is w's own row-major (c_out, K) layout.
//
// Structure: a classic SIMT SGEMM.
// * Block tile IG_BM x IG_BN outputs, K step IG_BK = 8, 256 threads as 16 x 16.  Thread (tx, ty)
//   (tx = tid % 16, ty = tid / 16) holds TM x TN = (BM/16) x (BN/16) accumulators: rows
//   ty*TMH + i and BM/2 + ty*TMH + i (TMH = TM/2), columns tx*TNH + j and BN/2 + tx*TNH + j, so
//   its shared-memory reads are vector loads (LDS.64 / LDS.128) without bank conflicts (a warp
//   reads two A addresses, broadcast, and 256 contiguous bytes of B per half).
// * Shared tiles As[2][BK][BM + PAD] (A transposed; PAD = 16 bytes, so the transposing stores are
//   conflict-free and rows stay 16-byte aligned) and Bs[2][BK][BN]: two buffers, so one
//   __syncthreads per K step suffices.  The global loads of step s+1 go to registers before the
//   FMAs of step s (their latency hides behind the math), then to the other buffer.  The 8 k of
//   a step run as a rolled loop of IG_KU unrolled k (1 for the 128 x 128 tile: unrolled further,
//   ptxas hoists later fragments and spills).
// * B loads: thread t owns one column t % BN of the block for the whole kernel and LB = BN*BK/256
//   consecutive k-rows q*LB + i (q = t / BN) of every K step: consecutive threads read
//   consecutive output positions, so loads are coalesced along the output row (stride-1
//   problems).  Per owned column, once: the batch-item base offset and the input origin
//   (z0, y0, x0) = o*stride - pad (5 registers; owning LB columns instead cost 4x that and
//   spilled the 128 x 128 tile).  The first row's (c, ta, tb, te) advances by 8 per step in mixed
//   radix, the next rows by 1 (no division in the loop); an element is loaded when its row is
//   inside K and (z0 + ta*dd, y0 + tb*dh, x0 + te*dw) inside x, else 0 (padding, K tail).
//   Columns past N carry z0 = INT_MIN so every check fails (N tail).
// * A loads: thread t owns k-column t % 8 of the step and rows t / 8 + 32*i (i < BM/32); guarded
//   for the M tail (rows past Cog) and the K tail.
// * Store: y[n, co, p] = epilogue(acc, bias, co, act, slope) (common.cuh: bias may be NULL; act
//   codes of gpuconv/_epilogue.py).  When P % TNH == 0 and y is 16-byte aligned, a thread's TNH
//   consecutive columns lie in one batch item and are written as one vector; else one element at
//   a time.  Guarded for the M and N tails.
//
// Split K (splits > 1: too few tiles to fill the GPU): the K steps are cut into `splits`
// contiguous ranges of whole steps; grid item z = g * splits + sp computes group g over range sp
// and writes its partial result, with no epilogue (the host passes bias NULL, act 0), to slice sp
// of its y argument, which is then a workspace (splits, nb, c_out, P).  igemm_reduce_<dtype> sums
// the slices in split order (deterministic: no atomics) and applies the epilogue into y.  A
// range past the end of K (more splits than steps) writes zeros.
//
// Grid: x over the N tiles, y over the M tiles (grid-strided past 65535), z over groups * splits
// (grid-strided).  Limits (the host checks): batch * P + IG_BN < 2^31 (N and column indices are
// int), K = Cig*KK < 2^31 - 64, groups * splits < 2^31, P < 2^30, D*H*W < 2^31, every size,
// padding and o*stride < 2^30; element offsets are 64-bit.
//
// Compile-time knobs (gpuconv/cuda/implicit_gemm.py renders them): IG_BM, IG_BN (multiples of
// 32), IG_MIN_BLOCKS (__launch_bounds__ minimum resident blocks per SM: the register budget),
// IG_KU (k unrolled per trip of a step's rolled k loop; divides 8), IG_F32 / IG_F64 (which entry
// points a variant instantiates; with neither, both, at tiles valid for both).

#include "common.cuh"

#if !defined(IG_F32) && !defined(IG_F64)
#define IG_F32 1
#define IG_F64 1
#endif
// defaults valid for every dtype compiled (a float64 thread holds at most 16 bytes per vector)
#ifndef IG_BM
#if defined(IG_F64)
#define IG_BM 64             // output channels per block tile (GEMM M)
#else
#define IG_BM 128
#endif
#endif
#ifndef IG_BN
#if defined(IG_F64)
#define IG_BN 64             // output columns (batch item, position) per block tile (GEMM N)
#else
#define IG_BN 128
#endif
#endif
#ifndef IG_MIN_BLOCKS
#define IG_MIN_BLOCKS 2      // __launch_bounds__: 65536 / (256 * IG_MIN_BLOCKS) registers a thread
#endif
#ifndef IG_KU
#define IG_KU 1              // k unrolled per trip of the rolled loop over a step's IG_BK k
#endif
#define IG_BK 8              // K step: one k-row per warp
#define IG_THREADS 256       // 16 x 16 threads

static_assert(IG_BM % 32 == 0 && IG_BN % 32 == 0, "IG_BM and IG_BN must be multiples of 32");
static_assert(IG_THREADS == 32 * IG_BK, "one warp per k-row of a K step");
static_assert(IG_KU >= 1 && IG_BK % IG_KU == 0, "IG_KU must divide IG_BK");

// Geometry of the block tile for element type T.
template <typename T>
struct IgTile {
    static constexpr int BM = IG_BM, BN = IG_BN, BK = IG_BK;
    static constexpr int TM = BM / 16, TN = BN / 16;      // accumulators per thread: TM x TN
    static constexpr int TMH = TM / 2, TNH = TN / 2;      // per half tile (one vector load)
    static constexpr int PAD = 16 / (int)sizeof(T);       // 16 bytes: As rows stay aligned
    static constexpr int AS = BM + PAD;                   // row stride of As, elements
    static constexpr int LA = BM / 32;                    // A elements a thread loads per step
    static constexpr int LB = BN / 32;                    // B elements a thread loads per step
    static constexpr int A_ELEMS = 2 * BK * AS;           // both buffers
    static constexpr int B_ELEMS = 2 * BK * BN;
    static_assert(TMH * sizeof(T) <= 16 && TNH * sizeof(T) <= 16, "one vector per half tile");
    static_assert(IG_THREADS % BN == 0 && LB * (IG_THREADS / BN) == BK, "B rows split evenly");
};

// ---- vector shared loads / global stores of V consecutive elements (16-byte aligned) --------
// Which (element size, V) the device moves as one vector (the others go element by element).
template <int V, typename T>
constexpr bool ig_vector = (sizeof(T) == 4 && (V == 4 || V == 2)) || (sizeof(T) == 8 && V == 2);

// The device uses one LDS.64 / LDS.128 / STG.128; the host build (tests/cuda_host) has no float4
// and copies element by element.
template <int V, typename T>
__device__ __forceinline__ void ig_lds(T* d, const T* s)
{
#if !defined(GPUCONV_HOST)
    if constexpr (sizeof(T) == 4 && V == 4) {
        const float4 q = *reinterpret_cast<const float4*>(s);
        d[0] = q.x; d[1] = q.y; d[2] = q.z; d[3] = q.w;
    } else if constexpr (sizeof(T) == 4 && V == 2) {
        const float2 q = *reinterpret_cast<const float2*>(s);
        d[0] = q.x; d[1] = q.y;
    } else if constexpr (sizeof(T) == 8 && V == 2) {
        const double2 q = *reinterpret_cast<const double2*>(s);
        d[0] = q.x; d[1] = q.y;
    } else
#endif
    {
        if constexpr (ig_vector<V, T>) GPUCONV_VECTOR_ACCESS(s, V * sizeof(T));
#pragma unroll
        for (int v = 0; v < V; ++v) d[v] = s[v];
    }
}

template <int V, typename T>
__device__ __forceinline__ void ig_stg(T* d, const T* s)
{
#if !defined(GPUCONV_HOST)
    // __stwb: one st.global.wb.v4 / .v2 (a plain float4 assignment came out of NVVM as four
    // scalar stores)
    if constexpr (sizeof(T) == 4 && V == 4) {
        __stwb(reinterpret_cast<float4*>(d), make_float4(s[0], s[1], s[2], s[3]));
    } else if constexpr (sizeof(T) == 4 && V == 2) {
        __stwb(reinterpret_cast<float2*>(d), make_float2(s[0], s[1]));
    } else if constexpr (sizeof(T) == 8 && V == 2) {
        __stwb(reinterpret_cast<double2*>(d), make_double2(s[0], s[1]));
    } else
#endif
    {
        if constexpr (ig_vector<V, T>) GPUCONV_VECTOR_ACCESS(d, V * sizeof(T));
#pragma unroll
        for (int v = 0; v < V; ++v) d[v] = s[v];
    }
}

// A K index r = c*KK + a*(kh*kw) + b*kw + e as mixed-radix digits.  advance(s) adds the digits
// of a constant step with carries (each digit stays below twice its radix); inc() adds 1.
struct IgDigits {
    int c, a, b, e;
    __device__ __forceinline__ void split(int r, int KK, int khw, int kw)
    {
        c = r / KK;
        int t = r - c * KK;
        a = t / khw;
        t -= a * khw;
        b = t / kw;
        e = t - b * kw;
    }
    __device__ __forceinline__ void advance(const IgDigits& s, int kd, int kh, int kw)
    {
        e += s.e;
        b += s.b;
        a += s.a;
        c += s.c;
        if (e >= kw) { e -= kw; ++b; }
        if (b >= kh) { b -= kh; ++a; }
        if (a >= kd) { a -= kd; ++c; }
    }
    __device__ __forceinline__ void inc(int kd, int kh, int kw)
    {
        if (++e == kw) {
            e = 0;
            if (++b == kh) {
                b = 0;
                if (++a == kd) { a = 0; ++c; }
            }
        }
    }
};

template <typename T>
__device__ __forceinline__ void igemm_body(
    const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ y, int batch, int c_in,
    int c_out, int groups, int D, int H, int W, int OD, int OH, int OW, int kd, int kh, int kw,
    int sd, int sh, int sw, int dd, int dh, int dw, int pd, int ph, int pw, int splits,
    const T* __restrict__ bias, int act, double slope, T* __restrict__ As, T* __restrict__ Bs)
{
    typedef IgTile<T> G;
    const int tid = threadIdx.x;
    const int tx = tid & 15, ty = tid >> 4;            // compute / store mapping
    const int bcol = tid % G::BN, bq = tid / G::BN;    // B loads: column bcol, rows bq*LB + i
    const int ak = tid & 7, am = tid >> 3;             // A loads: k-column ak, rows am + 32i

    const int cig = c_in / groups, cog = c_out / groups;
    const int khw = kh * kw, KK = kd * khw;
    const int K = cig * KK;
    const int all_steps = (K + IG_BK - 1) / IG_BK;
    const int split_steps = (all_steps + splits - 1) / splits;  // K steps of one split
    const idx_t in_plane = (idx_t)D * H * W;
    const int ohw = OH * OW;
    const int P = OD * ohw;
    const int N = batch * P;
    const int n0 = blockIdx.x * G::BN;
    const int m_tiles = (cog + G::BM - 1) / G::BM;

    // digits of one K step, for the B row tracker
    IgDigits step;
    step.split(IG_BK, KK, khw, kw);

    // ---- the owned B column: batch-item base offset and input origin (once) -----------------
    idx_t boff = 0;
    int bz = -2147483647 - 1, by = 0, bx = 0;  // past N: z0 = INT_MIN, z0 + dz < 0, loads zero
    {
        const int j = n0 + bcol;
        if (j < N) {
            const int n = j / P;
            const int p = j - n * P;
            const int od = p / ohw;
            const int rem = p - od * ohw;
            const int oh = rem / OW;
            const int ow = rem - oh * OW;
            bz = od * sd - pd;
            by = oh * sh - ph;
            bx = ow * sw - pw;
            boff = (idx_t)n * c_in * in_plane + ((idx_t)bz * H + by) * W + bx;
        }
    }
    for (int gz = blockIdx.z; gz < groups * splits; gz += gridDim.z) {
        const int g = gz / splits;                          // group
        const int sp = gz - g * splits;                     // K split: steps [kbeg/8, kbeg/8 + steps)
        const int rest = all_steps - sp * split_steps;      // <= 0: an empty range (zeros)
        const int steps = rest < split_steps ? rest : split_steps;
        const int kbeg = (rest > 0 ? sp * split_steps : all_steps) * IG_BK;  // <= K + 7
        T* const yp = y + (idx_t)sp * N * c_out;            // split sp's slice of (nb, c_out, P)
        // vector stores: a thread's TNH consecutive columns then share one batch item (P and j0
        // are multiples of TNH, so is N) and start 16-byte aligned
        const bool vec_store = (P % G::TNH) == 0 && aligned16(yp);
        const idx_t xg = boff + (idx_t)g * cig * in_plane;  // the column's base in group g
        for (int mt = blockIdx.y; mt < m_tiles; mt += gridDim.y) {
            const int m0 = mt * G::BM;
            const int rows_left = cog - m0 - am;  // A rows am + 32i < rows_left are real
            const T* wp = w + ((idx_t)g * cog + m0 + am) * K + kbeg + ak;
            int kcol = kbeg + ak;                 // this thread's A column in the step
            IgDigits brow;                        // this thread's first B row in the step
            brow.split(kbeg + bq * G::LB, KK, khw, kw);

            T areg[G::LA], breg[G::LB];
            auto load = [&]() {
                const bool aok = kcol < K;
#pragma unroll
                for (int i = 0; i < G::LA; ++i)
                    areg[i] = ldg_or_zero(wp + (idx_t)(32 * i) * K, aok && 32 * i < rows_left);
                IgDigits r = brow;
#pragma unroll
                for (int i = 0; i < G::LB; ++i) {
                    if (i) r.inc(kd, kh, kw);
                    const int dz = r.a * dd, dy = r.b * dh, dx = r.e * dw;
                    const bool ok = r.c < cig && (unsigned)(bz + dz) < (unsigned)D &&
                                    (unsigned)(by + dy) < (unsigned)H &&
                                    (unsigned)(bx + dx) < (unsigned)W;
                    const idx_t off = xg + (idx_t)r.c * in_plane + ((idx_t)dz * H + dy) * W + dx;
                    breg[i] = ldg_or_zero(x + off, ok);
                }
            };
            auto store = [&](int buf) {
                T* as = As + buf * (IG_BK * G::AS) + ak * G::AS + am;
#pragma unroll
                for (int i = 0; i < G::LA; ++i) as[32 * i] = areg[i];
                T* bs = Bs + buf * (IG_BK * G::BN) + bq * G::LB * G::BN + bcol;
#pragma unroll
                for (int i = 0; i < G::LB; ++i) bs[i * G::BN] = breg[i];
            };

            T acc[G::TM][G::TN];
#pragma unroll
            for (int i = 0; i < G::TM; ++i)
#pragma unroll
                for (int j = 0; j < G::TN; ++j) acc[i][j] = zero_of<T>();

            load();
            store(0);
            __syncthreads();
            int buf = 0;
            for (int s = 0; s < steps; ++s) {
                const bool more = s + 1 < steps;
                if (more) {
                    wp += IG_BK;
                    kcol += IG_BK;
                    brow.advance(step, kd, kh, kw);
                    load();
                }
                const T* as = As + buf * (IG_BK * G::AS) + ty * G::TMH;
                const T* bs = Bs + buf * (IG_BK * G::BN) + tx * G::TNH;
                // the BK k of a step in a rolled loop of IG_KU unrolled k each: unrolled whole,
                // ptxas hoists the fragments of later k and the 128 x 128 tile spilled (sm_80
                // and sm_90); the LDS latency hides behind the other warps' independent FMAs
#pragma unroll 1
                for (int k0 = 0; k0 < IG_BK; k0 += IG_KU) {
#pragma unroll
                    for (int k = k0; k < k0 + IG_KU; ++k) {
                        T a[G::TM], b[G::TN];
                        ig_lds<G::TMH>(a, as + k * G::AS);
                        ig_lds<G::TMH>(a + G::TMH, as + k * G::AS + G::BM / 2);
                        ig_lds<G::TNH>(b, bs + k * G::BN);
                        ig_lds<G::TNH>(b + G::TNH, bs + k * G::BN + G::BN / 2);
#pragma unroll
                        for (int i = 0; i < G::TM; ++i)
#pragma unroll
                            for (int j = 0; j < G::TN; ++j)
                                acc[i][j] = mac(acc[i][j], a[i], b[j]);
                    }
                }
                if (more) store(buf ^ 1);
                __syncthreads();  // buf ^ 1 is complete; everyone is done reading buf
                buf ^= 1;
            }

            // ---- store: y[n, g*Cog + m, p] with the fused epilogue ---------------------------
#pragma unroll
            for (int h2 = 0; h2 < 2; ++h2) {
                const int j0 = n0 + h2 * (G::BN / 2) + tx * G::TNH;
                if (vec_store) {
                    if (j0 < N) {
                        const int n = j0 / P;
                        const idx_t ycol = (idx_t)n * c_out * P + (j0 - n * P);
#pragma unroll
                        for (int h = 0; h < 2; ++h)
#pragma unroll
                            for (int i = 0; i < G::TMH; ++i) {
                                const int m = m0 + h * (G::BM / 2) + ty * G::TMH + i;
                                if (m < cog) {
                                    const idx_t co = (idx_t)g * cog + m;
                                    T v[G::TNH];
#pragma unroll
                                    for (int jj = 0; jj < G::TNH; ++jj)
                                        v[jj] = epilogue(acc[h * G::TMH + i][h2 * G::TNH + jj],
                                                         bias, co, act, slope);
                                    ig_stg<G::TNH>(yp + (ycol + co * P), v);
                                }
                            }
                    }
                } else {
#pragma unroll
                    for (int jj = 0; jj < G::TNH; ++jj) {
                        const int j = j0 + jj;
                        if (j < N) {
                            const int n = j / P;
                            const idx_t ycol = (idx_t)n * c_out * P + (j - n * P);
#pragma unroll
                            for (int h = 0; h < 2; ++h)
#pragma unroll
                                for (int i = 0; i < G::TMH; ++i) {
                                    const int m = m0 + h * (G::BM / 2) + ty * G::TMH + i;
                                    if (m < cog) {
                                        const idx_t co = (idx_t)g * cog + m;
                                        yp[ycol + co * P] = epilogue(
                                            acc[h * G::TMH + i][h2 * G::TNH + jj], bias, co,
                                            act, slope);
                                    }
                                }
                        }
                    }
                }
            }
        }
    }
}

#define DEFINE_IGEMM(SUFFIX, T)                                                                    \
    extern "C" __global__ void __launch_bounds__(IG_THREADS, IG_MIN_BLOCKS) igemm_##SUFFIX(        \
        const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ y, int batch, int c_in, \
        int c_out, int groups, int D, int H, int W, int OD, int OH, int OW, int kd, int kh,       \
        int kw, int sd, int sh, int sw, int dd, int dh, int dw, int pd, int ph, int pw,           \
        int splits, const T* __restrict__ bias, int act, double slope)                            \
    {                                                                                              \
        __shared__ __align__(16) T As[IgTile<T>::A_ELEMS];                                        \
        __shared__ __align__(16) T Bs[IgTile<T>::B_ELEMS];                                        \
        igemm_body<T>(x, w, y, batch, c_in, c_out, groups, D, H, W, OD, OH, OW, kd, kh, kw, sd,   \
                      sh, sw, dd, dh, dw, pd, ph, pw, splits, bias, act, slope, As, Bs);            \
    }

// Split K: the sum of the `splits` partial results ws (splits, planes, P) in split order
// (deterministic), then the epilogue, into y (planes, P); planes = nb * c_out, channel =
// plane % c_out.  Grid: x over a plane's P outputs (grid-strided), y over the planes
// (grid-strided past 65535); block (IG_THREADS, 1, 1).
template <typename T>
__device__ __forceinline__ void igemm_reduce_body(const T* __restrict__ ws, T* __restrict__ y,
                                                  int splits, int planes, int c_out, int P,
                                                  const T* __restrict__ bias, int act,
                                                  double slope)
{
    const idx_t total = (idx_t)planes * P;
    for (int pc = blockIdx.y; pc < planes; pc += gridDim.y) {
        const int co = pc % c_out;
        const T* src = ws + (idx_t)pc * P;
        T* dst = y + (idx_t)pc * P;
        for (int p = blockIdx.x * blockDim.x + threadIdx.x; p < P; p += gridDim.x * blockDim.x) {
            T acc = ldg(src + p);
            for (int s = 1; s < splits; ++s) acc += ldg(src + s * total + p);
            dst[p] = epilogue(acc, bias, co, act, slope);
        }
    }
}

#define DEFINE_IGEMM_REDUCE(SUFFIX, T)                                                             \
    extern "C" __global__ void __launch_bounds__(IG_THREADS) igemm_reduce_##SUFFIX(                \
        const T* __restrict__ ws, T* __restrict__ y, int splits, int planes, int c_out, int P,    \
        const T* __restrict__ bias, int act, double slope)                                        \
    {                                                                                              \
        igemm_reduce_body<T>(ws, y, splits, planes, c_out, P, bias, act, slope);                  \
    }

#if defined(IG_F32)
DEFINE_IGEMM(f32, float)
DEFINE_IGEMM_REDUCE(f32, float)
#endif
#if defined(IG_F64)
DEFINE_IGEMM(f64, double)
DEFINE_IGEMM_REDUCE(f64, double)
#endif
