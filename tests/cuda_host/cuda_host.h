// cuda_host.h: just enough of CUDA C++ to compile gpuconv's kernels with a host C++ compiler and
// run them on the CPU, so the tests execute the real kernel sources without a GPU.
//
// A launch runs the blocks one after another; the threads of a block run as coroutines
// (ucontext) on one OS thread, each switching back to the scheduler at __syncthreads(), so a
// round-robin over the threads is exactly one barrier phase.  __shared__ variables become
// function-local statics (one copy, shared by the block's threads; blocks never overlap).
// GPUCONV_HOST_ORDER=reverse or =shuffle runs the blocks backwards and the threads of every
// phase backwards or in a fresh pseudo-random order (plain order is thread 0 first): a missing
// barrier (a thread reading shared memory that another thread writes in the same phase, or
// overwriting what another still reads) then gives a different result from one order to
// another, so running the tests in two orders finds it -- the host's stand-in for racecheck.
// What this cannot show: warp semantics, the memory model, timing.  compute-sanitizer on a GPU
// covers those.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <type_traits>
#include <utility>
#include <vector>
#include <ucontext.h>

#define GPUCONV_HOST 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__
#define __launch_bounds__(...)
#define __shared__ static
#define __constant__
#define __align__(n) __attribute__((aligned(n)))

struct uint3 { unsigned x, y, z; };
struct dim3 { unsigned x, y, z; };
struct alignas(8) float2 { float x, y; };
struct alignas(16) double2 { double x, y; };
struct alignas(16) int4 { int x, y, z, w; };
inline float2 make_float2(float a, float b) { return float2{a, b}; }
inline double2 make_double2(double a, double b) { return double2{a, b}; }
inline int4 make_int4(int a, int b, int c, int d) { return int4{a, b, c, d}; }

inline uint3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

namespace gpuconv_host {
inline int error = 0;  // 1: __syncthreads in direct mode, 2: bad launch, 3: bad order, 4: misaligned

// A vector access (LDG.128, STG.64 ...) faults on a GPU unless its address is a multiple of its
// size; x86 does not mind, so the host checks it here.
inline void vector_access(const void* p, size_t bytes)
{
    if (reinterpret_cast<uintptr_t>(p) % bytes) error = 4;
}
}  // namespace gpuconv_host

#define GPUCONV_VECTOR_ACCESS(p, bytes) gpuconv_host::vector_access((p), (bytes))

template <typename T> inline T __ldg(const T* p)
{
    gpuconv_host::vector_access(p, alignof(T));
    return *p;
}
inline float __expf(float v) { return std::exp(v); }
inline float __fdividef(float a, float b) { return a / b; }
using std::exp;
using std::tanh;

namespace gpuconv_host {

struct Thread {
    ucontext_t uc;
    char* stack = nullptr;
    bool done = false;
};

constexpr size_t STACK_BYTES = 256 * 1024;

inline ucontext_t scheduler;
inline Thread* current = nullptr;
inline bool direct_mode = false;   // threads run as plain calls (kernel known not to sync)
inline long long syncs = 0;
inline std::function<void()> body;
inline std::vector<Thread> pool;
inline std::vector<unsigned> order;
inline int order_mode = 0;         // 0 plain, 1 reverse, 2 shuffle (GPUCONV_HOST_ORDER)
inline uint64_t order_state = 0x9E3779B97F4A7C15ull;

inline int read_order_mode()
{
    const char* v = std::getenv("GPUCONV_HOST_ORDER");
    if (v == nullptr || std::strcmp(v, "plain") == 0 || *v == 0) return 0;
    if (std::strcmp(v, "reverse") == 0) return 1;
    if (std::strcmp(v, "shuffle") == 0) return 2;
    return -1;
}

inline uint64_t next_random()  // xorshift64*
{
    order_state ^= order_state >> 12;
    order_state ^= order_state << 25;
    order_state ^= order_state >> 27;
    return order_state * 0x2545F4914F6CDD1Dull;
}

// The order of one phase's (or one sync-free block's) threads.
inline void make_order(unsigned n)
{
    order.resize(n);
    for (unsigned t = 0; t < n; ++t) order[t] = order_mode == 1 ? n - 1 - t : t;
    if (order_mode == 2)
        for (unsigned t = n - 1; t > 0; --t) std::swap(order[t], order[next_random() % (t + 1)]);
}

#if defined(__SANITIZE_ADDRESS__)
// AddressSanitizer must be told when the stack changes under it (makecontext / swapcontext).
extern "C" void __sanitizer_start_switch_fiber(void** fake_stack_save, const void* bottom,
                                               size_t size);
extern "C" void __sanitizer_finish_switch_fiber(void* fake_stack_save, const void** bottom_old,
                                                size_t* size_old);
inline const void* main_stack_bottom = nullptr;
inline size_t main_stack_size = 0;
#define GH_TO_FIBER(th) __sanitizer_start_switch_fiber(nullptr, (th).stack, STACK_BYTES)
#define GH_IN_FIBER() __sanitizer_finish_switch_fiber(nullptr, &main_stack_bottom, &main_stack_size)
#define GH_TO_MAIN() __sanitizer_start_switch_fiber(nullptr, main_stack_bottom, main_stack_size)
#define GH_IN_MAIN() __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr)
#else
#define GH_TO_FIBER(th)
#define GH_IN_FIBER()
#define GH_TO_MAIN()
#define GH_IN_MAIN()
#endif

inline void trampoline()
{
    GH_IN_FIBER();
    body();
    current->done = true;
    GH_TO_MAIN();
}

inline void sync()
{
    asm volatile("" ::: "memory");
    ++syncs;
    if (direct_mode || current == nullptr) {
        error = 1;
        return;
    }
    GH_TO_MAIN();
    swapcontext(&current->uc, &scheduler);
    GH_IN_FIBER();
    asm volatile("" ::: "memory");
}

inline void run_block(unsigned nthreads, const dim3& b)
{
    if (direct_mode) {
        make_order(nthreads);
        for (unsigned t : order) {
            threadIdx = uint3{t % b.x, (t / b.x) % b.y, t / (b.x * b.y)};
            body();
        }
        return;
    }
    if (pool.size() < nthreads) pool.resize(nthreads);
    for (unsigned t = 0; t < nthreads; ++t) {
        Thread& th = pool[t];
        if (!th.stack) th.stack = static_cast<char*>(std::malloc(STACK_BYTES));
        th.done = false;
        getcontext(&th.uc);
        th.uc.uc_stack.ss_sp = th.stack;
        th.uc.uc_stack.ss_size = STACK_BYTES;
        th.uc.uc_link = &scheduler;
        makecontext(&th.uc, trampoline, 0);
    }
    for (;;) {
        bool live = false;
        make_order(nthreads);
        for (unsigned t : order) {
            Thread& th = pool[t];
            if (th.done) continue;
            threadIdx = uint3{t % b.x, (t / b.x) % b.y, t / (b.x * b.y)};
            current = &th;
            GH_TO_FIBER(th);
            swapcontext(&scheduler, &th.uc);
            GH_IN_MAIN();
            current = nullptr;
            if (!th.done) live = true;
        }
        if (!live) break;
    }
}

template <typename... A, size_t... I>
inline void call(void (*f)(A...), void** args, std::index_sequence<I...>)
{
    f(*static_cast<std::remove_reference_t<A>*>(args[I])...);
}

// Returns 0, or an error code (see `error`).  `may_sync` == 0 runs threads as plain calls.
template <typename... A>
inline int run_grid(void (*f)(A...), const unsigned* g, const unsigned* b, void** args,
                    int may_sync)
{
    error = 0;
    syncs = 0;
    gridDim = dim3{g[0], g[1], g[2]};
    blockDim = dim3{b[0], b[1], b[2]};
    const unsigned nthreads = b[0] * b[1] * b[2];
    if (nthreads == 0 || nthreads > 1024 || g[0] == 0 || g[1] == 0 || g[2] == 0) return 2;
    order_mode = read_order_mode();
    if (order_mode < 0) return 3;
    direct_mode = !may_sync;
    body = [&] { call(f, args, std::index_sequence_for<A...>{}); };
    const uint64_t blocks = uint64_t(g[0]) * g[1] * g[2];
    for (uint64_t i = 0; i < blocks; ++i) {
        // reverse and shuffle both run the blocks backwards: a block reading what a later
        // block writes (an inter-block race) then sees the other value
        const uint64_t k = order_mode ? blocks - 1 - i : i;
        blockIdx = uint3{unsigned(k % g[0]), unsigned(k / g[0] % g[1]), unsigned(k / g[0] / g[1])};
        run_block(nthreads, blockDim);
        if (error) return error;
    }
    return 0;
}

}  // namespace gpuconv_host

inline void __syncthreads() { gpuconv_host::sync(); }
