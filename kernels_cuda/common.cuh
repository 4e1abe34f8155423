// common.cuh: helpers shared by gpuconv's CUDA kernels.
//
// Compiles under nvcc and NVRTC (CuPy RawModule) alike: no standard-library headers, no thrust,
// no cuComplex.h (it pulls <math.h>, which NVRTC lacks on some toolkits).  Complex numbers are the
// built-in float2 / double2 vector types holding (re, im), the layout of numpy's complex64 /
// complex128, so a cupy complex array's pointer is passed as float2* / double2* unchanged.
#pragma once

// ---- indices -------------------------------------------------------------------------------
// Plane offsets and flat element indices are 64-bit: a batch of 4096^2 planes passes 2^31
// elements quickly.  Offsets inside one plane stay 32-bit where the kernel says so.
typedef long long idx_t;

// ---- arithmetic, one overload per compute dtype --------------------------------------------
// mac(acc, a, b) == acc + a * b, fused where the type allows (fmaf / fma / complex cfma).

__device__ __forceinline__ float2 make_c(float re, float im) { return make_float2(re, im); }
__device__ __forceinline__ double2 make_c(double re, double im) { return make_double2(re, im); }

__device__ __forceinline__ float2 cadd(float2 a, float2 b) { return make_float2(a.x + b.x, a.y + b.y); }
__device__ __forceinline__ double2 cadd(double2 a, double2 b) { return make_double2(a.x + b.x, a.y + b.y); }

__device__ __forceinline__ float2 cconj(float2 a) { return make_float2(a.x, -a.y); }
__device__ __forceinline__ double2 cconj(double2 a) { return make_double2(a.x, -a.y); }

// a * b
__device__ __forceinline__ float2 cmul(float2 a, float2 b)
{
    return make_float2(fmaf(a.x, b.x, -a.y * b.y), fmaf(a.x, b.y, a.y * b.x));
}
__device__ __forceinline__ double2 cmul(double2 a, double2 b)
{
    return make_double2(fma(a.x, b.x, -a.y * b.y), fma(a.x, b.y, a.y * b.x));
}

// c + a * b: four fused multiply-adds, no temporaries rounded separately beyond fma's own.
__device__ __forceinline__ float2 cfma(float2 a, float2 b, float2 c)
{
    c.x = fmaf(a.x, b.x, c.x);
    c.x = fmaf(-a.y, b.y, c.x);
    c.y = fmaf(a.x, b.y, c.y);
    c.y = fmaf(a.y, b.x, c.y);
    return c;
}
__device__ __forceinline__ double2 cfma(double2 a, double2 b, double2 c)
{
    c.x = fma(a.x, b.x, c.x);
    c.x = fma(-a.y, b.y, c.x);
    c.y = fma(a.x, b.y, c.y);
    c.y = fma(a.y, b.x, c.y);
    return c;
}

__device__ __forceinline__ float mac(float acc, float a, float b) { return fmaf(a, b, acc); }
__device__ __forceinline__ double mac(double acc, double a, double b) { return fma(a, b, acc); }
__device__ __forceinline__ float2 mac(float2 acc, float2 a, float2 b) { return cfma(a, b, acc); }
__device__ __forceinline__ double2 mac(double2 acc, double2 a, double2 b) { return cfma(a, b, acc); }
// int64 wraps modulo 2^64 exactly as numpy's int64 does.
__device__ __forceinline__ long long mac(long long acc, long long a, long long b)
{
    return (long long)((unsigned long long)acc + (unsigned long long)a * (unsigned long long)b);
}

template <typename T> __device__ __forceinline__ T zero_of();
template <> __device__ __forceinline__ float zero_of<float>() { return 0.0f; }
template <> __device__ __forceinline__ double zero_of<double>() { return 0.0; }
template <> __device__ __forceinline__ float2 zero_of<float2>() { return make_float2(0.0f, 0.0f); }
template <> __device__ __forceinline__ double2 zero_of<double2>() { return make_double2(0.0, 0.0); }
template <> __device__ __forceinline__ long long zero_of<long long>() { return 0LL; }

// ---- loads ---------------------------------------------------------------------------------
// ldg(p): read-only cached load (LDG.E.CONSTANT) of one element; the caller guarantees that
// nothing writes *p during the kernel.
__device__ __forceinline__ float ldg(const float* p) { return __ldg(p); }
__device__ __forceinline__ double ldg(const double* p) { return __ldg(p); }
__device__ __forceinline__ float2 ldg(const float2* p) { return __ldg(p); }
__device__ __forceinline__ double2 ldg(const double2* p) { return __ldg(p); }
__device__ __forceinline__ long long ldg(const long long* p) { return __ldg(p); }
__device__ __forceinline__ int4 ldg(const int4* p) { return __ldg(p); }

// ldg_or_zero(p, ok): *p when ok, else zero, without touching memory when !ok (zero padding).
template <typename T>
__device__ __forceinline__ T ldg_or_zero(const T* p, bool ok)
{
    return ok ? ldg(p) : zero_of<T>();
}

// 16-byte raw copy helpers for staging tiles of any element type through int4.
__device__ __forceinline__ int4 zero_int4() { return make_int4(0, 0, 0, 0); }

__device__ __forceinline__ bool aligned16(const void* p)
{
    return (reinterpret_cast<unsigned long long>(p) & 15ull) == 0ull;
}

// GPUCONV_VECTOR_ACCESS(p, bytes): a vector access of `bytes` at p.  Nothing on the device; the
// CPU runner of the tests (tests/cuda_host) checks the alignment the hardware would require.
#if !defined(GPUCONV_VECTOR_ACCESS)
#define GPUCONV_VECTOR_ACCESS(p, bytes) ((void)0)
#endif

// Output index o along one axis that reads input index i at tap t: o*s + t*d - pad == i, i.e.
// o = (i + pad - t*d) / s when that is a non-negative multiple of s below O; else -1.  The
// gather form of a transposed pass (col2im, the transposed direct kernel): no atomics.
__device__ __forceinline__ int source_out(int i, int pad, int t, int d, int s, int O)
{
    const int v = i + pad - t * d;
    if (v < 0) return -1;
    const int o = v / s;
    return (o * s == v && o < O) ? o : -1;
}

// ceil(a / b) for positive b.
__host__ __device__ __forceinline__ constexpr int ceil_div(int a, int b) { return (a + b - 1) / b; }
__host__ __device__ __forceinline__ constexpr int round_up(int a, int b) { return ceil_div(a, b) * b; }

// ---- the epilogue of a forward convolution: bias, then an activation ------------------------
// act: 0 none, 1 relu, 2 leaky_relu (slope), 3 sigmoid, 4 tanh (the codes of gpuconv/_epilogue.py);
// NaN stays NaN.  Activations apply to real floating types only (the host never asks for one on
// complex or integer results); the bias applies to every dtype.
__device__ __forceinline__ float act_exp(float v) { return __expf(v); }
__device__ __forceinline__ double act_exp(double v) { return exp(v); }
__device__ __forceinline__ float act_tanh(float v) { return tanhf(v); }
__device__ __forceinline__ double act_tanh(double v) { return tanh(v); }

template <typename T>
__device__ __forceinline__ T activate(T v, int act, T slope)
{
    switch (act) {
        case 1: return v < T(0) ? T(0) : v;
        case 2: return v < T(0) ? v * slope : v;
        case 3: return T(1) / (T(1) + act_exp(-v));
        case 4: return act_tanh(v);
        default: return v;
    }
}

__device__ __forceinline__ float add(float a, float b) { return a + b; }
__device__ __forceinline__ double add(double a, double b) { return a + b; }
__device__ __forceinline__ float2 add(float2 a, float2 b) { return cadd(a, b); }
__device__ __forceinline__ double2 add(double2 a, double2 b) { return cadd(a, b); }
__device__ __forceinline__ long long add(long long a, long long b)
{
    return (long long)((unsigned long long)a + (unsigned long long)b);
}

template <typename T> struct is_real_float { static constexpr bool value = false; };
template <> struct is_real_float<float> { static constexpr bool value = true; };
template <> struct is_real_float<double> { static constexpr bool value = true; };

// v + bias[channel] (bias may be NULL), then act for real floating T (slope rounded to T first,
// as torch rounds negative_slope to the tensor's type).
template <typename T>
__device__ __forceinline__ T epilogue(T v, const T* bias, idx_t channel, int act, double slope)
{
    if (bias) v = add(v, ldg(bias + channel));
    if constexpr (is_real_float<T>::value) {
        if (act) v = activate(v, act, T(slope));
    }
    return v;
}
