// The Metal backend's kernels (Metal Shading Language), compiled at run time by the shim
// (bn_mtl_library, fast math off) from the text the engine embeds (zig/gpu/metal.zig), and launched
// by name (zig/gpu/metal_door.zig). They mirror the CUDA kernels (zig/gpu/elementwise.cu, nn.cu,
// ternary.cu): the same strided layout descriptor, dtype codes and op codes, so that both GPU
// backends agree with the CPU. Metal has no f64: values are f32 (floats) or 64-bit integers, and
// sums are compensated (Kahan) where CUDA accumulates in f64.
//
// The same file also compiles as C++ for the CPU emulator of the shim (metal/emu.cpp, defines
// BN_EMULATED first), which runs the whole Metal path on Linux in the tests. Hence the few
// conventions below: every kernel is declared with BN_KERNEL (a parameter record in buffer 0,
// byte buffers 1..5, the thread coordinates), threadgroup arrays are declared with BN_SHARED,
// and simdgroup functions are called by all 32 lanes of a simdgroup together.
//
// Dtype codes (zig/cpu/dtype.zig): f32 0, f16 1, bf16 2, i8 3, i16 4, i32 5, u8 6, u16 7, u32 8,
// bool 9.

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

// ---- layouts and element access ------------------------------------------------------------------

// The strided layout of up to four operands (zig/gpu/cuda.zig Layout, the CUDA kernels' record):
// element strides of operand 0 (the output), 1, 2, 3 over the logical shape.
struct Layout {
  long ndim;
  long shape[8];
  long st[4][8];
};

// Offsets of logical element i in the first k operands.
inline void offsets(constant Layout& L, long i, int k, thread long* off) {
  if (L.ndim == 1) {  // the common case once axes are merged: no division
    for (int j = 0; j < k; j++) off[j] = i * L.st[j][0];
    return;
  }
  for (int j = 0; j < k; j++) off[j] = 0;
  for (int d = (int)L.ndim - 1; d >= 0; d--) {
    const long n = L.shape[d];
    const long c = i % n;
    i /= n;
    for (int j = 0; j < k; j++) off[j] += c * L.st[j][d];
  }
}

inline bool is_float(int dt) { return dt <= 2; }

// Half and bfloat16 by hand (the bit-exact rules of the CPU's and CUDA's conversions, whatever the
// GPU's own conversion does with subnormals): round to nearest even, overflow to infinity, NaN
// kept quiet.
inline float h2f(ushort h) {
  const uint s = (uint)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0x1fu) return as_type<float>(s | 0x7f800000u | (m << 13));
  if (e == 0u) {
    const float v = (float)m * 5.9604644775390625e-8f;  // m · 2^-24
    return s ? -v : v;
  }
  return as_type<float>(s | ((e + 112u) << 23) | (m << 13));
}

inline ushort f2h(float f) {
  const uint u = as_type<uint>(f), s = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return (ushort)(s | 0x7e00u);
  if (a >= 0x477ff000u) return (ushort)(s | 0x7c00u);  // rounds to >= 65520: infinity
  if (a < 0x38800000u) {                              // below 2^-14: a subnormal half
    const float v = as_type<float>(a) * 16777216.0f;  // exact scaling by 2^24
    return (ushort)(s | (uint)rint(v));               // round half to even
  }
  const uint r = a + 0xfffu + ((a >> 13) & 1u);
  return (ushort)(s | ((r - 0x38000000u) >> 13));
}

inline float bf2f(ushort b) { return as_type<float>((uint)b << 16); }

inline ushort f2bf(float f) {
  const uint u = as_type<uint>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (ushort)((u >> 16) | 0x40u);
  return (ushort)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// A float dtype's element (f32, f16, bf16) as f32.
inline float loadf(device const uchar* p, int dt, long i) {
  if (dt == 0) return ((device const float*)p)[i];
  const ushort h = ((device const ushort*)p)[i];
  return dt == 1 ? h2f(h) : bf2f(h);
}

// f32 into a float dtype's element, rounded once.
inline void storef(device uchar* p, int dt, long i, float v) {
  if (dt == 0) ((device float*)p)[i] = v;
  else ((device ushort*)p)[i] = dt == 1 ? f2h(v) : f2bf(v);
}

// An integer or bool element as a 64-bit integer.
inline long loadi(device const uchar* p, int dt, long i) {
  switch (dt) {
    case 3: return ((device const char*)p)[i];
    case 4: return ((device const short*)p)[i];
    case 5: return ((device const int*)p)[i];
    case 6: return ((device const uchar*)p)[i];
    case 7: return ((device const ushort*)p)[i];
    case 8: return ((device const uint*)p)[i];
    default: return ((device const uchar*)p)[i] != 0 ? 1 : 0;
  }
}

// A 64-bit integer into an integer dtype (the low bits: wrap-around) or bool (nonzero).
inline void storei(device uchar* p, int dt, long i, long v) {
  switch (dt) {
    case 3: ((device char*)p)[i] = (char)v; break;
    case 4: ((device short*)p)[i] = (short)v; break;
    case 5: ((device int*)p)[i] = (int)v; break;
    case 6: ((device uchar*)p)[i] = (uchar)v; break;
    case 7: ((device ushort*)p)[i] = (ushort)v; break;
    case 8: ((device uint*)p)[i] = (uint)v; break;
    default: ((device uchar*)p)[i] = v != 0 ? 1 : 0; break;
  }
}

// A float converted to an integer dtype as the CPU converts: truncated, saturated, NaN -> 0.
inline long sat(float v, int dt) {
  if (isnan(v)) return 0;
  float lo, hi;
  switch (dt) {
    case 3: lo = -128.0f; hi = 127.0f; break;
    case 4: lo = -32768.0f; hi = 32767.0f; break;
    case 5: lo = -2147483648.0f; hi = 2147483647.0f; break;
    case 6: lo = 0.0f; hi = 255.0f; break;
    case 7: lo = 0.0f; hi = 65535.0f; break;
    default: lo = 0.0f; hi = 4294967295.0f; break;
  }
  // hi of i32 and u32 rounds up to 2^31 and 2^32 in f32: saturate to the exact maximum.
  if (v >= hi) return dt == 5 ? 2147483647L : dt == 8 ? 4294967295L : (long)hi;
  if (v <= lo) return (long)lo;
  return (long)v;
}

// Any element converted from dtype `in_dt` at p[i] into dtype `out_dt` at q[j].
inline void convert1(device uchar* q, int out_dt, long j, device const uchar* p, int in_dt, long i) {
  if (is_float(in_dt)) {
    const float v = loadf(p, in_dt, i);
    if (is_float(out_dt)) storef(q, out_dt, j, v);
    else if (out_dt == 9) ((device uchar*)q)[j] = (v != 0.0f || isnan(v)) ? 1 : 0;
    else storei(q, out_dt, j, sat(v, out_dt));
  } else {
    const long v = loadi(p, in_dt, i);
    if (is_float(out_dt)) storef(q, out_dt, j, (float)v);
    else storei(q, out_dt, j, v);
  }
}

// Every thread of the grid over n elements, a stride of the whole grid apart.
#define GRID_LOOP(n) for (long i = (long)tg.x * nthreads + lid; i < (n); i += (long)ngroups.x * nthreads)

// ---- elementwise -------------------------------------------------------------------------------

struct ConvertParams {
  Layout L;
  long n;
  int out_dt, in_dt;
};

// out = convert(in): astype, contiguous(), clone(). b1 out, b2 in.
BN_KERNEL(bn_convert, ConvertParams) {
  GRID_LOOP(p.n) {
    long off[2];
    offsets(p.L, i, 2, off);
    convert1(b1, p.out_dt, off[0], b2, p.in_dt, off[1]);
  }
}

// A scalar operand is given both as f32 (float dtypes) and as a 64-bit integer (integer dtypes,
// the value truncated by the engine).
struct BinaryParams {
  Layout L;
  long n;
  int op, dt, out_dt, flags;  // flags: bit 0 a is the scalar, bit 1 b is
  float af, bf;
  long ai, bi;
};

inline float nanf_() { return as_type<float>(0x7fc00000u); }

// Float powers: exact integer exponents by repeated squaring where pow's own result could be
// inexact (a negative base, or |y| < 2^24 integral), else pow in f32 (the CPU rounds an f64 pow:
// the two agree to a few f32 ulps).
inline float powf_(float x, float y) {
  if (y == 0.0f) return 1.0f;
  if (isnan(x) || isnan(y)) return x == 1.0f ? 1.0f : nanf_();
  if (x < 0.0f) {
    if (isinf(y)) return fabs(x) == 1.0f ? 1.0f : ((fabs(x) < 1.0f) == (y > 0.0f) ? 0.0f : INFINITY);
    if (trunc(y) != y) return nanf_();
    const float r = pow(-x, y);
    return fmod(fabs(y), 2.0f) == 1.0f ? -r : r;
  }
  return pow(x, y);
}

// Binary ops (codes of args.BinaryOp): add 0, sub 1, mul 2, div 3, pow 4, maximum 5, minimum 6,
// eq 7, ne 8, lt 9, le 10, gt 11, ge 12; comparisons write bool. Floats compute in f32 (as the CPU
// kernels), integers in 64 bits and wrap on store, bools as logic.
inline float binf(int op, float x, float y) {
  switch (op) {
    case 0: return x + y;
    case 1: return x - y;
    case 2: return x * y;
    case 3: return x / y;
    case 4: return powf_(x, y);
    case 5: return (isnan(x) || isnan(y)) ? nanf_() : fmax(x, y);
    case 6: return (isnan(x) || isnan(y)) ? nanf_() : fmin(x, y);
    case 7: return x == y ? 1.0f : 0.0f;
    case 8: return x != y ? 1.0f : 0.0f;
    case 9: return x < y ? 1.0f : 0.0f;
    case 10: return x <= y ? 1.0f : 0.0f;
    case 11: return x > y ? 1.0f : 0.0f;
    default: return x >= y ? 1.0f : 0.0f;
  }
}

inline long ipow(long a, long e) {
  if (e < 0) return a == 1 ? 1 : a == -1 ? ((e & 1) ? -1 : 1) : 0;
  ulong base = (ulong)a, r = 1;  // arithmetic mod 2^64: the low bits are exact
  while (e > 0) {
    if (e & 1) r *= base;
    base *= base;
    e >>= 1;
  }
  return (long)r;
}

inline long bini(int op, long x, long y, bool boolean) {
  if (boolean) {  // add = or, mul = and, maximum = or, minimum = and
    const bool p = x != 0, q = y != 0;
    switch (op) {
      case 0: case 5: return p || q;
      case 2: case 6: return p && q;
      case 7: return p == q;
      case 8: return p != q;
      case 9: return p < q;
      case 10: return p <= q;
      case 11: return p > q;
      default: return p >= q;
    }
  }
  switch (op) {
    case 0: return (long)((ulong)x + (ulong)y);
    case 1: return (long)((ulong)x - (ulong)y);
    case 2: return (long)((ulong)x * (ulong)y);
    case 3: return y == 0 ? 0 : x / y;  // not reached: the door refuses integer division
    case 4: return ipow(x, y);
    case 5: return x > y ? x : y;
    case 6: return x < y ? x : y;
    case 7: return x == y;
    case 8: return x != y;
    case 9: return x < y;
    case 10: return x <= y;
    case 11: return x > y;
    default: return x >= y;
  }
}

// b1 out, b2 a, b3 b.
BN_KERNEL(bn_binary, BinaryParams) {
  const bool fl = is_float(p.dt);
  GRID_LOOP(p.n) {
    long off[3];
    offsets(p.L, i, 3, off);
    if (fl) {
      const float x = (p.flags & 1) ? p.af : loadf(b2, p.dt, off[1]);
      const float y = (p.flags & 2) ? p.bf : loadf(b3, p.dt, off[2]);
      const float r = binf(p.op, x, y);
      if (p.op >= 7) ((device uchar*)b1)[off[0]] = r != 0.0f ? 1 : 0;
      else storef(b1, p.out_dt, off[0], r);
    } else {
      const long x = (p.flags & 1) ? p.ai : loadi(b2, p.dt, off[1]);
      const long y = (p.flags & 2) ? p.bi : loadi(b3, p.dt, off[2]);
      storei(b1, p.out_dt, off[0], bini(p.op, x, y, p.dt == 9));
    }
  }
}

// Logistic sigmoid without overflow or cancellation (nn ops and their derivatives).
inline float sigm(float x) {
  if (x < 0.0f) {
    const float e = exp(x);
    return e / (1.0f + e);
  }
  return 1.0f / (1.0f + exp(-x));
}

inline float sigm_grad(float x) {
  const float e = exp(-fabs(x));
  return e / ((1.0f + e) * (1.0f + e));
}

// erfc and erf in f32 (Metal's library has neither): erfc(x) = t·exp(-x² + P(t)) with
// t = 1 / (1 + |x|/2), P a fitted polynomial (relative error below 1.2e-7 for every x), and erf
// from its Maclaurin series near 0, where 1 - erfc would cancel.
inline float erfc_pos(float z) {  // z >= 0
  const float t = 1.0f / (1.0f + 0.5f * z);
  const float poly = -1.26551223f + t * (1.00002368f + t * (0.37409196f + t * (0.09678418f + t * (-0.18628806f + t * (0.27886807f + t * (-1.13520398f + t * (1.48851587f + t * (-0.82215223f + t * 0.17087277f))))))));
  return t * exp(-z * z + poly);
}

inline float erfc_(float x) { return x >= 0.0f ? erfc_pos(x) : 2.0f - erfc_pos(-x); }

inline float erf_(float x) {
  const float a = fabs(x);
  if (a < 0.5f) {  // x·2/√π·Σ (-1)^n x^(2n) / (n!(2n+1)), to x^12
    const float z = x * x;
    const float s = 1.0f + z * (-1.0f / 3.0f + z * (1.0f / 10.0f + z * (-1.0f / 42.0f + z * (1.0f / 216.0f + z * (-1.0f / 1320.0f + z * (1.0f / 9360.0f))))));
    return x * 1.1283791670955126f * s;
  }
  if (isnan(x)) return x;
  const float r = 1.0f - erfc_pos(a);
  return x < 0.0f ? -r : r;
}

struct UnaryParams {
  Layout L;
  long n;
  int op, dt;
  float p0, p1;        // clip's bounds (NaN: none) for float dtypes
  long lo_cmp, lo_val; // clip on integers: x < lo_cmp gives lo_val (ceil and trunc of the bound)
  long hi_cmp, hi_val; // x > hi_cmp gives hi_val (floor and trunc)
  int has_lo, has_hi;
};

// Unary ops (codes of args.UnaryOp): neg 0, abs 1, exp 2, log 3, sqrt 4, rsqrt 5, sin 6, cos 7,
// tanh 8, erf 9, floor 10, ceil 11, round 12 (half to even), sign 13, relu 14, gelu 15, gelu_tanh
// 16, silu 17, sigmoid 18, clip 19, relu_grad 20, gelu_grad 21, gelu_tanh_grad 22, silu_grad 23,
// sigmoid_grad 24, tanh_grad 25. b1 out, b2 in.
inline float unf(int op, float x, float p0, float p1) {
  const float k = 0.7978845608028654f;  // sqrt(2 / pi)
  switch (op) {
    case 0: return -x;
    case 1: return fabs(x);
    case 2: return exp(x);
    case 3: return log(x);
    case 4: return sqrt(x);
    case 5: return 1.0f / sqrt(x);
    case 6: return sin(x);
    case 7: return cos(x);
    case 8: return tanh(x);
    case 9: return erf_(x);
    case 10: return floor(x);
    case 11: return ceil(x);
    case 12: return rint(x);
    case 13: return x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : x;
    case 14: return x > 0.0f ? x : 0.0f;
    // gelu: 1 + erf(x/√2) cancels for x < 0; erfc(-x/√2) is the same value without cancelling.
    case 15: return x < 0.0f ? 0.5f * x * erfc_(-x * 0.7071067811865476f) : 0.5f * x * (1.0f + erf_(x * 0.7071067811865476f));
    case 16: return x * sigm(2.0f * k * (x + 0.044715f * x * x * x));
    case 17: return x * sigm(x);
    case 18: return sigm(x);
    case 19: {
      float y = x;
      if (!isnan(p0) && y < p0) y = p0;
      if (!isnan(p1) && y > p1) y = p1;
      return y;
    }
    case 20: return x > 0.0f ? 1.0f : 0.0f;
    case 21: {
      const float cdf = x < 0.0f ? 0.5f * erfc_(-x * 0.7071067811865476f) : 0.5f * (1.0f + erf_(x * 0.7071067811865476f));
      return cdf + x * 0.3989422804014327f * exp(-0.5f * x * x);
    }
    case 22: {
      const float u2 = 2.0f * k * (x + 0.044715f * x * x * x);
      return sigm(u2) + 2.0f * x * sigm_grad(u2) * k * (1.0f + 0.134145f * x * x);
    }
    case 23: {
      const float s = sigm(x);
      return s * (1.0f + x * (1.0f - s));
    }
    case 24: return sigm_grad(x);
    default: {
      const float e = exp(-2.0f * fabs(x));
      return 4.0f * e / ((1.0f + e) * (1.0f + e));
    }
  }
}

BN_KERNEL(bn_unary, UnaryParams) {
  const bool fl = is_float(p.dt);
  GRID_LOOP(p.n) {
    long off[2];
    offsets(p.L, i, 2, off);
    if (fl) {
      storef(b1, p.dt, off[0], unf(p.op, loadf(b2, p.dt, off[1]), p.p0, p.p1));
      continue;
    }
    const long x = loadi(b2, p.dt, off[1]);
    long r;
    switch (p.op) {
      case 0: r = (long)(0ul - (ulong)x); break;
      case 1: r = x < 0 ? (long)(0ul - (ulong)x) : x; break;
      case 13: r = x > 0 ? 1 : x < 0 ? -1 : 0; break;
      case 14: r = x > 0 ? x : 0; break;
      case 19: r = (p.has_lo && x < p.lo_cmp) ? p.lo_val : (p.has_hi && x > p.hi_cmp) ? p.hi_val : x; break;
      case 20: r = x > 0 ? 1 : 0; break;
      default: r = x; break;  // floor, ceil, round of integers
    }
    storei(b1, p.dt, off[0], r);
  }
}

struct WhereParams {
  Layout L;
  long n;
  int dt, flags;  // flags: bit 0 a is the scalar, bit 1 b is
  float af, bf;
  long ai, bi;
};

// out = cond ? a : b. b1 out, b2 cond (bool), b3 a, b4 b.
BN_KERNEL(bn_where, WhereParams) {
  const bool fl = is_float(p.dt);
  GRID_LOOP(p.n) {
    long off[4];
    offsets(p.L, i, 4, off);
    const bool c = ((device const uchar*)b2)[off[1]] != 0;
    const bool scalar = c ? (p.flags & 1) != 0 : (p.flags & 2) != 0;
    device const uchar* src = c ? b3 : b4;
    const long at = c ? off[2] : off[3];
    if (fl) storef(b1, p.dt, off[0], scalar ? (c ? p.af : p.bf) : loadf(src, p.dt, at));
    else storei(b1, p.dt, off[0], scalar ? (c ? p.ai : p.bi) : loadi(src, p.dt, at));
  }
}

// ---- reductions --------------------------------------------------------------------------------
// Layout: [kept axes..., reduced axes...]; operand 0 = out (stride 0 on reduced axes), 1 = in.
// One threadgroup an output element (a stride of the grid over outputs), its threads striding over
// the reduced elements, combined in a fixed order (the same bits every run). Codes of
// args.ReduceOp: sum 0, mean 1, prod 2, min 3, max 4, argmin 5, argmax 6, var 7, std 8,
// logsumexp 9. Float sums are compensated (Neumaier) in f32 where CUDA adds in f64: both agree with
// the CPU to f32 rounding. Integer sums and products in 64 bits, wrapped to the 32-bit output.

#define RB 256          // threads of a reduction or row threadgroup
#define RW (RB / 32)    // its simdgroups

// s + x with the rounding error kept in c (Neumaier's variant of Kahan's sum).
inline void kadd(thread float& s, thread float& c, float x) {
  const float t = s + x;
  c += fabs(s) >= fabs(x) ? (s - t) + x : (x - t) + s;
  s = t;
}

// The threadgroup's compensated sum of every thread's (s, c), returned to every thread: lanes
// combine by shuffles, then each thread adds the simdgroups' partials in order.
inline float group_ksum(float s, float c, threadgroup float* sh, uint lane, uint sg) {
  for (ushort o = 16; o > 0; o >>= 1) {
    const float s2 = simd_shuffle_xor(s, o);
    const float c2 = simd_shuffle_xor(c, o);
    kadd(s, c, s2);
    c += c2;
  }
  if (lane == 0) {
    sh[2 * sg] = s;
    sh[2 * sg + 1] = c;
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);
  float ts = 0.0f, tc = 0.0f;
  for (int w = 0; w < RW; w++) {
    kadd(ts, tc, sh[2 * w]);
    tc += sh[2 * w + 1];
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);
  return ts + tc;
}

inline float group_maxf(float x, threadgroup float* sh, uint lane, uint sg) {
  x = simd_max(x);
  if (lane == 0) sh[sg] = x;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  float r = sh[0];
  for (int w = 1; w < RW; w++) r = fmax(r, sh[w]);
  threadgroup_barrier(mem_flags::mem_threadgroup);
  return r;
}

inline float group_sumf(float x, threadgroup float* sh, uint lane, uint sg) {
  x = simd_sum(x);
  if (lane == 0) sh[sg] = x;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  float r = sh[0];
  for (int w = 1; w < RW; w++) r += sh[w];
  threadgroup_barrier(mem_flags::mem_threadgroup);
  return r;
}

// The threadgroup's wrapping 64-bit sum (or product) of every thread's x, returned to every
// thread (a tree in sh, RB entries).
inline ulong group_lcombine(ulong x, bool product, threadgroup long* sh, uint lid) {
  sh[lid] = (long)x;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  for (uint s = RB / 2; s > 0; s >>= 1) {
    if (lid < s) {
      const ulong a = (ulong)sh[lid], b = (ulong)sh[lid + s];
      sh[lid] = (long)(product ? a * b : a + b);
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  const ulong r = (ulong)sh[0];
  threadgroup_barrier(mem_flags::mem_threadgroup);
  return r;
}

// Whether (v, i) beats (w, j): a NaN wins (the first NaN), then the larger (max) or smaller (min)
// value, ties to the smaller index.
inline bool beats_f(float v, long i, float w, long j, bool want_max) {
  const bool vn = isnan(v), wn = isnan(w);
  if (vn || wn) return vn && (!wn || i < j);
  if (v == w) return i < j;
  return want_max ? v > w : v < w;
}

inline bool beats_i(long v, long i, long w, long j, bool want_max) {
  if (v == w) return i < j;
  return want_max ? v > w : v < w;
}

// A product's mantissa brought back into [0.5, 1), its binary exponent moved into e (zero, inf and
// NaN stay as they are).
inline void prod_renorm(thread float& m, thread long& e) {
  if (m == 0.0f || !isfinite(m)) return;
  int k;
  m = frexp(m, k);
  e += k;
}

struct ReduceParams {
  Layout L;
  long kept, nk, nr;
  int op, dt, out_dt;
  float ddof;
};

// The input offset of reduced element r of the output whose input base is ibase.
inline long roff(constant Layout& L, long kept, long ibase, long r) {
  long off = ibase;
  for (int d = (int)L.ndim - 1; d >= (int)kept; d--) {
    const long c = r % L.shape[d];
    r /= L.shape[d];
    off += c * L.st[1][d];
  }
  return off;
}

inline float valf(device const uchar* p, int dt, long i) { return is_float(dt) ? loadf(p, dt, i) : (float)loadi(p, dt, i); }

// b1 out, b2 in.
BN_KERNEL(bn_reduce, ReduceParams) {
  BN_SHARED float sv[RB];
  BN_SHARED long si[RB];
  BN_SHARED long sx[RB];
  const bool fl = is_float(p.dt);
  const int op = p.op;
  for (long o = tg.x; o < p.nk; o += ngroups.x) {
    long rem = o, ooff = 0, ibase = 0;
    for (int d = (int)p.kept - 1; d >= 0; d--) {
      const long c = rem % p.L.shape[d];
      rem /= p.L.shape[d];
      ooff += c * p.L.st[0][d];
      ibase += c * p.L.st[1][d];
    }
    float fres = 0.0f;  // the result of a float path
    long ires = 0;      // of an integer path
    bool as_int = false;
    if (op >= 3 && op <= 6) {  // min, max, argmin, argmax
      const bool mx = op == 4 || op == 6;
      float bf = 0.0f;
      long bv = 0, bi = -1;
      for (long r = lid; r < p.nr; r += nthreads) {
        const long off = roff(p.L, p.kept, ibase, r);
        if (fl) {
          const float v = loadf(b2, p.dt, off);
          if (bi < 0 || beats_f(v, r, bf, bi, mx)) { bf = v; bi = r; }
        } else {
          const long v = loadi(b2, p.dt, off);
          if (bi < 0 || beats_i(v, r, bv, bi, mx)) { bv = v; bi = r; }
        }
      }
      sv[lid] = bf;
      sx[lid] = bv;
      si[lid] = bi;
      threadgroup_barrier(mem_flags::mem_threadgroup);
      for (uint s = RB / 2; s > 0; s >>= 1) {
        if (lid < s) {
          const long j = si[lid + s];
          const bool take = j >= 0 && (si[lid] < 0 || (fl ? beats_f(sv[lid + s], j, sv[lid], si[lid], mx) : beats_i(sx[lid + s], j, sx[lid], si[lid], mx)));
          if (take) {
            sv[lid] = sv[lid + s];
            sx[lid] = sx[lid + s];
            si[lid] = j;
          }
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
      }
      if (op >= 5) { as_int = true; ires = si[0]; }
      else if (fl) fres = sv[0];
      else { as_int = true; ires = sx[0]; }
      threadgroup_barrier(mem_flags::mem_threadgroup);
    } else if (!fl && (op == 0 || op == 2)) {  // integer sum / product, wrapping
      ulong acc = op == 0 ? 0ul : 1ul;
      for (long r = lid; r < p.nr; r += nthreads) {
        const ulong v = (ulong)loadi(b2, p.dt, roff(p.L, p.kept, ibase, r));
        acc = op == 0 ? acc + v : acc * v;
      }
      as_int = true;
      ires = (long)group_lcombine(acc, op == 2, si, lid);
    } else if (!fl && (op == 1 || op == 7 || op == 8)) {
      // Integer mean / var / std: the sum exact in 64 bits (an int → f32 conversion of each
      // element would lose the low bits of large values, and a mean of cancelling ones all of
      // them); the deviations from the integer part of the mean, q, exact before one rounding:
      // Σ(x - mean)² = Σ(x - q)² - (Σ(x - q))² / n.
      long acc = 0;
      for (long r = lid; r < p.nr; r += nthreads) acc += loadi(b2, p.dt, roff(p.L, p.kept, ibase, r));
      const long total = (long)group_lcombine((ulong)acc, false, si, lid);
      const float hi = (float)total, lo = (float)(total - (long)hi);
      if (op == 1) fres = hi / (float)p.nr + lo / (float)p.nr;
      else {
        const long q = total / p.nr;
        float qs = 0.0f, qc = 0.0f;
        for (long r = lid; r < p.nr; r += nthreads) {
          const float d = (float)(loadi(b2, p.dt, roff(p.L, p.kept, ibase, r)) - q);
          kadd(qs, qc, d * d);
        }
        const float ss = group_ksum(qs, qc, sv, lane, sg);
        const float sd = (float)(total - q * p.nr);  // |sd| < n: exact
        const float den = (float)p.nr - p.ddof;
        const float var = den > 0.0f ? (ss - sd * sd / (float)p.nr) / den : nanf_();
        fres = op == 7 ? var : sqrt(var);
      }
    } else if (op == 2) {  // float product, the binary exponent kept apart (no overflow on the way)
      float acc = 1.0f;
      long ex = 0;
      for (long r = lid; r < p.nr; r += nthreads) {
        acc *= valf(b2, p.dt, roff(p.L, p.kept, ibase, r));
        const float a = fabs(acc);
        if (a > 1.8446744e19f || a < 5.421011e-20f) prod_renorm(acc, ex);  // 2^64, 2^-64
      }
      prod_renorm(acc, ex);
      sv[lid] = acc;
      si[lid] = ex;
      threadgroup_barrier(mem_flags::mem_threadgroup);
      for (uint s = RB / 2; s > 0; s >>= 1) {
        if (lid < s) {
          float m = sv[lid] * sv[lid + s];
          long e = si[lid] + si[lid + s];
          prod_renorm(m, e);
          sv[lid] = m;
          si[lid] = e;
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
      }
      const float m = sv[0];
      const long e = si[0] < -400 ? -400 : si[0] > 400 ? 400 : si[0];
      fres = (m == 0.0f || !isfinite(m)) ? m : ldexp(m, (int)e);
      threadgroup_barrier(mem_flags::mem_threadgroup);
    } else if (op == 9) {  // logsumexp: the maximum (a NaN counted as +inf), then Σ exp(x - max)
      float m = -INFINITY;
      bool nan = false;
      for (long r = lid; r < p.nr; r += nthreads) {
        const float v = valf(b2, p.dt, roff(p.L, p.kept, ibase, r));
        if (isnan(v)) nan = true;
        else m = fmax(m, v);
      }
      const float anynan = group_maxf(nan ? 1.0f : 0.0f, sv, lane, sg);
      const float mm = group_maxf(m, sv, lane, sg);
      float s = 0.0f, c = 0.0f;
      if (isfinite(mm)) {
        for (long r = lid; r < p.nr; r += nthreads) kadd(s, c, exp(valf(b2, p.dt, roff(p.L, p.kept, ibase, r)) - mm));
      }
      const float total = group_ksum(s, c, sv, lane, sg);
      fres = anynan > 0.0f ? nanf_() : isfinite(mm) ? mm + log(total) : mm;
    } else {  // sum, mean, var, std (two passes)
      float s = 0.0f, c = 0.0f;
      for (long r = lid; r < p.nr; r += nthreads) kadd(s, c, valf(b2, p.dt, roff(p.L, p.kept, ibase, r)));
      const float total = group_ksum(s, c, sv, lane, sg);
      if (op == 0) fres = total;
      else if (op == 1) fres = total / (float)p.nr;
      else {
        const float mean = total / (float)p.nr;
        float qs = 0.0f, qc = 0.0f;
        for (long r = lid; r < p.nr; r += nthreads) {
          const float d = valf(b2, p.dt, roff(p.L, p.kept, ibase, r)) - mean;
          kadd(qs, qc, d * d);
        }
        const float ss = group_ksum(qs, qc, sv, lane, sg);
        const float den = (float)p.nr - p.ddof;
        const float var = den > 0.0f ? ss / den : nanf_();
        fres = op == 7 ? var : sqrt(var);
      }
    }
    if (lid == 0) {
      if (as_int) {
        if (is_float(p.out_dt)) storef(b1, p.out_dt, ooff, (float)ires);
        else storei(b1, p.out_dt, ooff, ires);
      } else if (is_float(p.out_dt)) storef(b1, p.out_dt, ooff, fres);
      else storei(b1, p.out_dt, ooff, sat(fres, p.out_dt));
    }
  }
}

// ---- rows: softmax / logSoftmax, layerNorm / rmsNorm along the last axis -----------------------
// One threadgroup a row (a stride of the grid over rows); operand 0 = out, 1 = in.

// Row r's offsets in operands 0 and 1 (all axes but the last).
inline void row_base(constant Layout& L, long r, thread long& o0, thread long& o1) {
  o0 = 0;
  o1 = 0;
  for (int d = (int)L.ndim - 2; d >= 0; d--) {
    const long c = r % L.shape[d];
    r /= L.shape[d];
    o0 += c * L.st[0][d];
    o1 += c * L.st[1][d];
  }
}

struct SoftmaxParams {
  Layout L;
  long rows;
  int lg, dt;
};

#define SMX_PER 16  // elements a thread keeps: rows up to RB·SMX_PER = 4096 are read once

// A row whose maximum is not finite (all -inf, any +inf) or that holds a NaN gives NaN, as on the
// CPU. Float dtypes only. b1 out, b2 in.
BN_KERNEL(bn_softmax, SoftmaxParams) {
  BN_SHARED float sh[2 * RW];
  const int last = (int)p.L.ndim - 1;
  const long n = p.L.shape[last], s0 = p.L.st[0][last], s1 = p.L.st[1][last];
  const bool cached = n <= (long)RB * SMX_PER;
  for (long r = tg.x; r < p.rows; r += ngroups.x) {
    long o0, o1;
    row_base(p.L, r, o0, o1);
    // A NaN counts as +inf in the maximum: either makes the row NaN, so one reduction finds both.
    float v[SMX_PER];
    float m = -INFINITY;
    if (cached) {
      for (int j = 0; j < SMX_PER; j++) {
        const long k = lid + (long)j * RB;
        v[j] = k < n ? loadf(b2, p.dt, o1 + k * s1) : -INFINITY;
        m = fmax(m, isnan(v[j]) ? INFINITY : v[j]);
      }
    } else {
      for (long k = lid; k < n; k += RB) {
        const float x = loadf(b2, p.dt, o1 + k * s1);
        m = fmax(m, isnan(x) ? INFINITY : x);
      }
    }
    m = group_maxf(m, sh, lane, sg);
    const bool ok = isfinite(m);
    float s = 0.0f, c = 0.0f;
    if (ok) {
      if (cached) {
        for (int j = 0; j < SMX_PER; j++) {
          const float e = exp(v[j] - m);  // -inf (past the row): 0
          kadd(s, c, e);
          if (!p.lg) v[j] = e;  // softmax keeps the exponentials, logSoftmax the values
        }
      } else {
        for (long k = lid; k < n; k += RB) kadd(s, c, exp(loadf(b2, p.dt, o1 + k * s1) - m));
      }
    }
    const float total = group_ksum(s, c, sh, lane, sg);
    const float lse = log(total);
    if (cached) {
      for (int j = 0; j < SMX_PER; j++) {
        const long k = lid + (long)j * RB;
        if (k >= n) break;
        storef(b1, p.dt, o0 + k * s0, !ok ? nanf_() : p.lg ? (v[j] - m) - lse : v[j] / total);
      }
    } else {
      for (long k = lid; k < n; k += RB) {
        const float x = loadf(b2, p.dt, o1 + k * s1) - m;
        storef(b1, p.dt, o0 + k * s0, !ok ? nanf_() : p.lg ? x - lse : exp(x) / total);
      }
    }
  }
}

struct NormParams {
  Layout L;
  long rows;
  int kind, dt, wdt, flags;  // flags: bit 0 a weight (b3), bit 1 a bias (b4)
  float eps;
};

// kind 0 = layerNorm ((x - mean) / sqrt(var + eps) · w + b, biased variance), 1 = rmsNorm
// (x / sqrt(mean(x²) + eps) · w); w and b are contiguous vectors of the row length in dtype wdt.
// b1 out, b2 in, b3 weight, b4 bias.
BN_KERNEL(bn_norm, NormParams) {
  BN_SHARED float sh[2 * RW];
  const int last = (int)p.L.ndim - 1;
  const long n = p.L.shape[last], s0 = p.L.st[0][last], s1 = p.L.st[1][last];
  for (long r = tg.x; r < p.rows; r += ngroups.x) {
    long o0, o1;
    row_base(p.L, r, o0, o1);
    float mean = 0.0f;
    if (p.kind == 0) {
      float s = 0.0f, c = 0.0f;
      for (long k = lid; k < n; k += RB) kadd(s, c, loadf(b2, p.dt, o1 + k * s1));
      mean = group_ksum(s, c, sh, lane, sg) / (float)n;
    }
    float qs = 0.0f, qc = 0.0f;
    for (long k = lid; k < n; k += RB) {
      const float d = loadf(b2, p.dt, o1 + k * s1) - mean;
      kadd(qs, qc, d * d);
    }
    const float rstd = 1.0f / sqrt(group_ksum(qs, qc, sh, lane, sg) / (float)n + p.eps);
    for (long k = lid; k < n; k += RB) {
      float y = (loadf(b2, p.dt, o1 + k * s1) - mean) * rstd;
      if (p.flags & 1) y *= loadf(b3, p.wdt, k);
      if (p.flags & 2) y += loadf(b4, p.wdt, k);
      storef(b1, p.dt, o0 + k * s0, y);
    }
  }
}

// ---- ternary matmul: out[t, r] = x[t] · w[r] for packed 2-bit ternary weights -----------------
// The arithmetic of zig/cpu/ternary_matmul.zig (and ternary.cu):
//   1. bn_tq_quantize: per token, m = max|x|, s = 127 / m (NaN when x has a NaN), q = rint(clamp(
//      x·s, ±127)) as int8 (0 when m is 0 or NaN), zero-padded to whole 256-weight blocks.
//   2. bn_tq_gemv: integer dot products of q with the weights t ∈ {-1, 0, 1}, rescaled: a tensor or
//      channel scale gives f32(isum)·scale / s as on the CPU; group and TQ2_0 block scales add
//      f32(partial)·scale per block (results agree with the CPU's to f32 rounding).
// Codes (TQ2_0's qs; "i2" is the same without the f16 scale): byte h·32 + j of a 256-weight block
// holds the code c = t + 1 of weight h·128 + 32·p + j in bits 2p.

struct TqQuantParams {
  long x_stride, m, k, nb;
  int dt, pad;
};

// One threadgroup (RB threads) a token. b1 x, b2 q [m, nb·256] int8, b3 s [m] f32.
BN_KERNEL(bn_tq_quantize, TqQuantParams) {
  BN_SHARED uint sh[RW];
  const long padded = p.nb * 256;
  for (long t = tg.x; t < p.m; t += ngroups.x) {
    const long base = t * p.x_stride;
    // The maximum of |x| as bit patterns: as unsigned integers these order like the magnitudes,
    // and only a NaN lies above 0x7f800000 (inf).
    uint mb = 0u;
    for (long i = lid; i < p.k; i += nthreads) mb = max(mb, as_type<uint>(loadf(b1, p.dt, base + i)) & 0x7fffffffu);
    mb = simd_max(mb);
    if (lane == 0) sh[sg] = mb;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint w = 0; w < nthreads / 32; w++) mb = max(mb, sh[w]);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    const bool nan = mb > 0x7f800000u;
    const float sc = nan ? nanf_() : 127.0f / as_type<float>(mb);
    const bool zero = nan || mb == 0u;
    device char* qt = (device char*)b2 + t * padded;
    for (long i = lid; i < padded; i += nthreads) {
      int c = 0;
      if (!zero && i < p.k) {
        const float v = loadf(b1, p.dt, base + i) * sc;  // inf · 0 = NaN: code 0
        c = isnan(v) ? 0 : (int)clamp(rint(v), -127.0f, 127.0f);
      }
      qt[i] = (char)c;
    }
    if (lid == 0) ((device float*)b3)[t] = sc;
  }
}

struct TqParams {
  long n, nb, m, gb;  // rows, 256-weight blocks a row, tokens, blocks a scale group (mode 2)
  int fmt, mode;      // fmt 2 "i2" (64-byte blocks), 0 TQ2_0 (66: codes + f16 scale); mode 0 tensor
                      // scale, 1 channel, 2 group, 3 TQ2_0's block scales
};

#define TQ_T 4  // tokens a pass

// A simdgroup a weight row, TQ_T tokens a pass (grid y: passes). Each lane takes one 32-bit word
// (16 codes) of a block, 16 lanes a block, two blocks a step. b1 w, b2 scales (f32), b3 q, b4 s,
// b5 out [m, n] f32.
BN_KERNEL(bn_tq_gemv, TqParams) {
  const long r = (long)tg.x * (nthreads / 32) + sg;
  const long t0 = (long)tg.y * TQ_T;
  const int nt = (int)min((long)TQ_T, p.m - t0);
  const bool row_scale = p.mode < 2;
  const long rb = p.nb * (p.fmt == 2 ? 64 : 66);
  const long kq = p.nb * 256;
  const uint wi = lane & 15u, h = wi >> 3, j0 = (wi * 4u) & 31u;
  int acc[TQ_T] = {0, 0, 0, 0};
  float facc[TQ_T] = {0.0f, 0.0f, 0.0f, 0.0f};
  if (r < p.n && nt > 0) {
    device const uchar* row = b1 + r * rb;
    for (long b0 = 0; b0 < p.nb; b0 += 2) {
      const long b = b0 + (lane >> 4);
      if (b >= p.nb) continue;
      uint w4;
      float scale = 0.0f;
      if (p.fmt == 2) {
        w4 = ((device const uint*)(row + b * 64))[wi];
        if (!row_scale) scale = ((device const float*)b2)[r * (p.nb / p.gb) + b / p.gb];
      } else {
        device const uchar* bp = row + b * 66 + 4 * wi;  // 2-byte aligned
        w4 = (uint)bp[0] | ((uint)bp[1] << 8) | ((uint)bp[2] << 16) | ((uint)bp[3] << 24);
        scale = h2f(*(device const ushort*)(row + b * 66 + 64));
      }
      for (int t = 0; t < TQ_T; t++) {
        if (t >= nt) break;
        device const char* qb = (device const char*)b3 + (t0 + t) * kq + b * 256 + h * 128 + j0;
        int part = 0;
        for (int s = 0; s < 4; s++) {
          const uint c = (w4 >> (2 * s)) & 0x03030303u;
          const char4 a = *(device const char4*)(qb + 32 * s);
          part += ((int)(c & 3u) - 1) * (int)a.x + ((int)((c >> 8) & 3u) - 1) * (int)a.y + ((int)((c >> 16) & 3u) - 1) * (int)a.z + ((int)(c >> 24) - 1) * (int)a.w;
        }
        if (row_scale) acc[t] += part;
        else facc[t] += (float)part * scale;
      }
    }
  }
  // Every lane takes part in the reductions (rows past n and missing tokens add zeros).
  for (int t = 0; t < TQ_T; t++) {
    const int isum = simd_sum(acc[t]);
    const float fsum = simd_sum(facc[t]);
    if (lane == 0 && t < nt && r < p.n) {
      const float rs = p.mode == 0 ? ((device const float*)b2)[0] : p.mode == 1 ? ((device const float*)b2)[r] : 0.0f;
      const float v = row_scale ? (float)isum * rs : fsum;
      ((device float*)b5)[(t0 + t) * p.n + r] = v / ((device const float*)b4)[t0 + t];
    }
  }
}

// Every kernel and its parameter record (the CPU emulator's registry, metal/emu.cpp).
#define BN_KERNEL_LIST(X)                                                                        \
  X(bn_convert, ConvertParams) X(bn_binary, BinaryParams) X(bn_unary, UnaryParams)               \
  X(bn_where, WhereParams) X(bn_reduce, ReduceParams) X(bn_softmax, SoftmaxParams)               \
  X(bn_norm, NormParams) X(bn_tq_quantize, TqQuantParams) X(bn_tq_gemv, TqParams)
