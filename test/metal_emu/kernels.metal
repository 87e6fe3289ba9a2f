// Test kernels of the Metal shim's CPU emulator (metal/emu.cpp, metal/emu.h): compiled into it in
// place of metal/kernels.metal (`zig build metal-emu -Dmetal-emu-source=test/metal_emu/kernels.metal`)
// and driven by test/metal_emu/driver.c through the shim's C ABI (test/metal_emu.test.ts runs both).
// Written to the conventions of kernels.metal (BN_KERNEL, BN_SHARED, simdgroup functions called by
// every lane), so the prelude below is that of a real Metal build; but only the emulator runs them:
// the misuse kernels (t_diverge, t_diverge_simd, t_mismatch, t_barrier_simd) would hang a GPU or
// give it garbage, and the emulator must fail them instead. t_constructs compiles (and runs) the
// language constructs that kernels.metal does not use yet.

#ifndef BN_EMULATED
#include <metal_stdlib>
using namespace metal;
#define BN_SHARED threadgroup
#define BN_KERNEL(name, P)                                                                                  \
  kernel void name(constant P& p [[buffer(0)]], device uchar* b1 [[buffer(1)]], device uchar* b2 [[buffer(2)]], \
                   device uchar* b3 [[buffer(3)]], device uchar* b4 [[buffer(4)]], device uchar* b5 [[buffer(5)]],  \
                   uint3 tg [[threadgroup_position_in_grid]], uint3 ngroups [[threadgroups_per_grid]],         \
                   uint lid [[thread_index_in_threadgroup]], uint nthreads [[threads_per_threadgroup]],      \
                   uint lane [[thread_index_in_simdgroup]], uint sg [[simdgroup_index_in_threadgroup]])
#endif

// The parameter records (driver.c declares the same).
struct GridParams { uint n; float a, b; };
struct ReduceParams { uint n; uint per_group; };
struct SimdParams { uint n; };
struct BenchParams { uint n; uint rounds; };
struct MathParams { uint n; long big; };

constant float K[4] = {1.0f, 2.0f, 3.0f, 4.0f};
constant uint TABLE[3] = {1, 2, 3};

inline float twice(thread float& x) { x *= 2.0f; return x; }
template <class T> inline T doubled(T x) { return x + x; }
inline float first_plus(device const float* x, threadgroup float* sh, thread int& k) { k++; return x[0] + sh[0]; }

// The sum of sh[0 .. nthreads) by a barrier tree in threadgroup memory.
inline float tree_sum(threadgroup float* sh, uint lid, uint nthreads) {
  for (uint s = 1; s < nthreads; s *= 2) {
    threadgroup_barrier(mem_flags::mem_threadgroup);
    float v = (lid % (2 * s) == 0 && lid + s < nthreads) ? sh[lid + s] : 0.0f;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    sh[lid] += v;
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);
  return sh[0];
}

// ---- dispatch, queue, threadgroup memory ----------------------------------------------------------

// y[i] = a * x[i] + b (b1 -> b2), a grid-stride loop over 2-D groups.
BN_KERNEL(t_grid, GridParams) {
  device const float* x = (device const float*)b1;
  device float* y = (device float*)b2;
  const uint g = tg.y * ngroups.x + tg.x, ng = ngroups.x * ngroups.y;
  for (uint i = g * nthreads + lid; i < p.n; i += ng * nthreads) y[i] = fma(p.a, x[i], p.b);
}

// The sum of x (b1) over each group's segment of per_group elements, twice: a barrier tree in
// threadgroup memory (b2[group]) and simd_sum + threadgroup memory across simdgroups (b3[group]).
BN_KERNEL(t_reduce, ReduceParams) {
  device const float* x = (device const float*)b1;
  BN_SHARED float sh[1024];
  BN_SHARED float part[32];
  float s = 0.0f;
  const uint base = tg.x * p.per_group;
  for (uint i = lid; i < p.per_group; i += nthreads) if (base + i < p.n) s += x[base + i];
  sh[lid] = s;
  const float total = tree_sum(sh, lid, nthreads);
  if (lid == 0) ((device float*)b2)[tg.x] = total;
  const float ss = simd_sum(s);
  if (lane == 0) part[sg] = ss;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  if (sg == 0) {
    const uint nsg = (nthreads + 31) / 32;
    float v = lane < nsg ? part[lane] : 0.0f;
    v = simd_sum(v);
    if (lane == 0) ((device float*)b3)[tg.x] = v;
  }
}

// ---- simdgroup functions ---------------------------------------------------------------------------

// Every simdgroup function, per thread g of the grid (the last simdgroup of a group may be partial):
// 14 floats (b1), 7 ints (b2) and 9 uints (b3) a thread.
BN_KERNEL(t_simd, SimdParams) {
  const uint g = tg.x * nthreads + lid;
  const float v = (float)((g * 7919u) % 101u);
  const int iv = (int)(g % 13u) - 6;
  const uint u = g * 2654435761u;
  device float* o = (device float*)b1 + g * 14;
  o[0] = simd_max(v);
  o[1] = simd_min(v);
  o[2] = simd_shuffle_xor(v, 1);
  o[3] = simd_prefix_exclusive_sum(v);
  o[4] = simd_shuffle_down(v, 3);
  o[5] = simd_broadcast(v, 2);
  o[6] = (float)simd_shuffle_xor(half(v), 16);
  o[7] = simd_broadcast_first(v);
  o[8] = simd_prefix_inclusive_sum(v);
  const float4 v4 = simd_sum(float4(v, 1.0f, (float)lane, -v));
  o[9] = v4.x; o[10] = v4.y; o[11] = v4.z; o[12] = v4.w;
  simdgroup_barrier(mem_flags::mem_none);
  o[13] = simd_shuffle_up(v, 5);
  device int* io = (device int*)b2 + g * 7;
  io[0] = simd_sum(iv);
  io[1] = simd_max(iv);
  io[2] = (int)simd_sum((uint)abs(iv));
  io[3] = simd_all(iv > -7) ? 1 : 0;
  io[4] = simd_any(iv == 6) ? 1 : 0;
  io[5] = simd_is_first() ? 1 : 0;
  io[6] = simd_min(iv);
  device uint* uo = (device uint*)b3 + g * 9;
  uo[0] = simd_product(u | 1u);
  uo[1] = simd_and(u | 0xf0f0f0f0u);
  uo[2] = simd_or(u >> 27);
  uo[3] = simd_xor(u);
  uo[4] = simd_prefix_exclusive_product(u | 1u);
  uo[5] = simd_shuffle(u, (ushort)((lane * 5 + 3) % 32));
  uo[6] = simd_shuffle_up(u, 5);
  const ulong ballot = (ulong)simd_ballot((u >> 31) != 0);
  uo[7] = (uint)ballot;
  uo[8] = (uint)(ballot >> 32);
}

// C (16 x 16) = A (16 x 8) · B (8 x 16) + 1 with simdgroup matrices, one simdgroup an 8 x 8 tile of
// C (4 simdgroups); B is read transposed from Bt (16 x 8).
BN_KERNEL(t_mma, SimdParams) {
  device const float* a = (device const float*)b1;
  device const float* bt = (device const float*)b2;
  device float* c = (device float*)b3;
  const ulong ti = sg / 2, tj = sg % 2;
  simdgroup_float8x8 ma, mb, mc = make_filled_simdgroup_matrix<float, 8, 8>(1.0f);
  simdgroup_load(ma, a, 8, ulong2(0, ti * 8));
  simdgroup_load(mb, bt, 8, ulong2(0, tj * 8), true);
  simdgroup_multiply_accumulate(mc, ma, mb, mc);
  simdgroup_store(mc, c, 16, ulong2(tj * 8, ti * 8));
}

// ---- misuse: each must fail the command (naming the kernel), not hang -----------------------------

// Threads lid >= n return before a barrier.
BN_KERNEL(t_diverge, SimdParams) {
  BN_SHARED float sh[256];
  if (lid >= p.n) return;
  sh[lid] = 1.0f;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  ((device float*)b1)[lid] = sh[(lid + 1) % p.n];
}

// Lanes < n call simd_sum, the others return (n = 32: every lane, which is fine).
BN_KERNEL(t_diverge_simd, SimdParams) {
  float x = (float)lane;
  if (lane < p.n) x = simd_sum(x);
  ((device float*)b1)[tg.x * nthreads + lid] = x;
}

// The lanes of a simdgroup meet at different collectives.
BN_KERNEL(t_mismatch, SimdParams) {
  float x = (float)lane;
  if (lane < 16) x = simd_sum(x); else x = simd_max(x);
  ((device float*)b1)[tg.x * nthreads + lid] = x;
}

// Half of a simdgroup waits at a threadgroup barrier while the other half calls simd_sum.
BN_KERNEL(t_barrier_simd, SimdParams) {
  float x = (float)lane;
  if (lane < 16) threadgroup_barrier(mem_flags::mem_threadgroup); else x = simd_sum(x);
  ((device float*)b1)[tg.x * nthreads + lid] = x;
}

// A missing barrier: each thread reads its neighbour's threadgroup value without waiting, so what it
// reads depends on the order the emulator runs the threads in ($BN_EMU_ORDER). (+ 1: never the 0
// that threadgroup memory starts with.)
BN_KERNEL(t_race, SimdParams) {
  BN_SHARED uint sh[1024];
  sh[lid] = tg.x * 1000 + lid + 1;
  ((device uint*)b1)[tg.x * nthreads + lid] = sh[(lid + 1) % nthreads];
}

// ---- the language: constructors, overloads, constructs -------------------------------------------

// Vector constructors: 16 floats (b1).
BN_KERNEL(t_vec, SimdParams) {
  if (lid != 0) return;
  device float* o = (device float*)b1;
  int4 i4 = int4(1, -2, 3, -4);
  float4 f = float4(i4);             // a conversion, not a bit cast
  float2 xy = float2(0.5f, 1.5f);
  float4 g = float4(xy, 2, 3.5f);    // concatenation
  half2 h2 = half2(half(0.25f), half(4.0f));
  float2 hf = float2(h2);
  uint3 u = uint3(tg.x + 7, 0, 9);
  float4 z = float4();
  float3 s3 = float3(2.0f);
  o[0] = f.x; o[1] = f.y; o[2] = f.z; o[3] = f.w;
  o[4] = g.x; o[5] = g.y; o[6] = g.z; o[7] = g.w;
  o[8] = hf.x; o[9] = hf.y; o[10] = (float)u.x; o[11] = (float)u.z;
  o[12] = z.x + z.w; o[13] = s3.y; o[14] = dot(float2(i4.xy), xy); o[15] = (float)uint2(f.zw).x;
}

// Overloads as MSL resolves them: 16 floats (b1).
BN_KERNEL(t_math, MathParams) {
  if (tg.x != 0 || lid != 0) return;
  device float* o = (device float*)b1;
  float x = -2.5f;
  int i = -3;
  long l = p.big;
  uint u = 7;
  o[0] = max(x, 1.0f);
  o[1] = (float)abs(i);
  o[2] = abs(x);
  o[3] = (float)min(l, (long)5);
  o[4] = clamp(x, -1.0f, 1.0f);
  o[5] = (float)clamp(i, -2, 2);
  o[6] = precise::exp(1.0f);
  o[7] = rsqrt(4.0f);
  o[8] = (float)popcount(u) + (float)clz(u);
  o[9] = as_type<float>(0x3f800000u);
  o[10] = select(1.0f, 2.0f, x < 0.0f);
  int e; o[11] = frexp(8.0f, e) + (float)e;
  o[12] = twice(x) + K[3];
  o[13] = isnan(NAN) && isinf(INFINITY) && signbit(-0.0f) ? 1.0f : 0.0f;
  float4 v4 = {1.0f, -2.0f, 3.0f, -4.0f};
  float4 a4 = abs(v4);
  o[14] = a4.x + a4.y + a4.z + a4.w + dot(v4, v4);
  half h = half(1.5f); half2 hh = {h, h};
  o[15] = float(max(h, half(2.0f))) + float(hh.y) + float(rint(2.5f)) + float(round(2.5f));
}

// Constructs that must compile and run: helpers taking address-space pointers and references,
// templates, constant tables, device and threadgroup atomics, vector types and vec<T, N>, half,
// numeric_limits, as_type, 64-bit integer functions, the simdgroup functions on vectors and halves.
// b1: one finite float a thread; b2: a device atomic counter (+1 a thread); b3: the input (b3[0]);
// b4: per group, the threadgroup atomic's maximum of lid.
BN_KERNEL(t_constructs, SimdParams) {
  BN_SHARED float sh[4];
  BN_SHARED atomic_uint counter;
  if (lid < 4) sh[lid] = 0.25f;
  if (lid == 0) atomic_store_explicit(&counter, 0u, memory_order_relaxed);
  threadgroup_barrier(mem_flags::mem_threadgroup);
  device atomic_uint* ac = (device atomic_uint*)b2;
  atomic_fetch_add_explicit(ac, 1u, memory_order_relaxed);
  atomic_fetch_max_explicit(&counter, lid, memory_order_relaxed);
  uint prev = atomic_load_explicit(ac, memory_order_relaxed);
  int k = 0;
  float r = first_plus((device const float*)b3, sh, k);
  float2 f2 = float2(1.0f);
  float4 f4 = float4{1.0f, 2.0f, 3.0f, 4.0f};
  uint2 u2 = tg.xy; vec<float, 4> vv = float4(1.0f); u2.x += (uint)vv.y;
  half4 h4 = half4(half(1.0f));
  float s = f2.x + f4.w + (float)u2.y + (float)h4.z + metal::fmax(r, 0.0f) + metal::precise::sqrt(2.0f) + fast::exp(1.0f);
  s += (float)doubled(3) + doubled(1.5f) + (float)doubled(half(1)) + (float)TABLE[lid % 3];
  s += simd_sum(s) + (float)simd_sum(half(s)) + (float)simd_max(lid) + (float)simd_shuffle(k, 3) + simd_prefix_inclusive_sum(s);
  s += (float)((ulong)simd_ballot(s > 0) & 1ul);
  float4 v = simd_sum(f4);
  s += v.x + length(v) + (float)all(v > 0.0f) + (float)any(v < 0.0f);
  ulong big = (ulong)prev << 40;
  s += (float)clz(big) + (float)mulhi(big, big) + (float)min(big, (ulong)3);
  threadgroup_barrier(mem_flags::mem_threadgroup | mem_flags::mem_device);
  simdgroup_barrier(mem_flags::mem_none);
  s += numeric_limits<float>::max() > 0 ? 1.0f : 0.0f;
  s += FLT_MAX > 0 ? M_PI_F : HALF_MAX;
  s += (float)as_type<ushort>(half(1.0f)) + as_type<float>(as_type<uint>(1.0f));
  uchar4 c4 = as_type<uchar4>(0x01020304u);
  s += (float)c4.x + (float)popcount((ushort)7) + (float)ctz(8u);
  char sc = (char)-1; s += (float)(sc < 0);
  ((device float*)b1)[tg.x * nthreads + lid] = s;
  if (lid == 0) ((device uint*)b4)[tg.x] = atomic_load_explicit(&counter, memory_order_relaxed);
}

// ---- cost (timed by the driver) --------------------------------------------------------------------

// `rounds` barriers with threadgroup traffic between them.
BN_KERNEL(t_bench, BenchParams) {
  BN_SHARED float sh[1024];
  float v = (float)lid;
  for (uint r = 0; r < p.rounds; r++) {
    sh[lid] = v;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    v += sh[(lid + 1) % nthreads];
  }
  const uint g = tg.y * ngroups.x + tg.x;
  if (g * nthreads + lid < p.n) ((device float*)b1)[g * nthreads + lid] = v;
}

// Like kernels.metal's group sums: 10 shuffles and 2 barriers a round.
BN_KERNEL(t_bench_simd, BenchParams) {
  BN_SHARED float sh[64];
  float v = (float)lid, c = 0.0f;
  for (uint r = 0; r < p.rounds; r++) {
    for (ushort o = 16; o > 0; o >>= 1) {
      v += simd_shuffle_xor(v, o);
      c += simd_shuffle_xor(c, o);
    }
    if (lane == 0) sh[sg] = v;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    v = sh[(sg + 1) % (nthreads / 32)] * 0.5f;
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  const uint g = tg.y * ngroups.x + tg.x;
  if (g * nthreads + lid < p.n) ((device float*)b1)[g * nthreads + lid] = v + c;
}

#define BN_KERNEL_LIST(X)                                                                                  \
  X(t_grid, GridParams) X(t_reduce, ReduceParams) X(t_simd, SimdParams) X(t_mma, SimdParams)                \
  X(t_diverge, SimdParams) X(t_diverge_simd, SimdParams) X(t_mismatch, SimdParams)                          \
  X(t_barrier_simd, SimdParams) X(t_race, SimdParams) X(t_vec, SimdParams) X(t_math, MathParams)            \
  X(t_constructs, SimdParams) X(t_bench, BenchParams) X(t_bench_simd, BenchParams)
