// Elementwise kernels for the CUDA backend, compiled at run time by NVRTC for the device's compute
// capability (zig/gpu/cuda.zig embeds this file). No headers: half and bfloat16 are converted by
// hand, so the source compiles with NVRTC alone.
//
// Every kernel walks a strided layout (the same descriptor the CPU kernels read): element i of
// the logical shape is found by dividing i by the shape from the last axis, so broadcast (stride
// 0), transposed and reversed operands are read in place. Dtype codes follow zig/cpu/dtype.zig:
// f32 0, f16 1, bf16 2, i8 3, i16 4, i32 5, u8 6, u16 7, u32 8, bool 9.

typedef signed char i8;
typedef unsigned char u8;
typedef short i16;
typedef unsigned short u16;
typedef int i32;
typedef unsigned int u32;
typedef long long i64;

struct Layout {
  i64 ndim;
  i64 shape[8];
  i64 st[4][8];  // element strides of operand 0 (out), 1, 2, 3
};

__device__ __forceinline__ float nanf_() { return __int_as_float(0x7fc00000); }

__device__ __forceinline__ float h2f(u16 h) {
  u32 s = (u32)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e == 0x1f) return __uint_as_float(s | 0x7f800000u | (m << 13));
  if (e == 0) {
    float v = (float)m * 5.9604644775390625e-8f;  // m * 2^-24
    return s ? -v : v;
  }
  return __uint_as_float(s | ((e + 112) << 23) | (m << 13));
}

// Round to nearest even, overflow to infinity, gradual underflow, NaN kept quiet.
__device__ __forceinline__ u16 f2h(float f) {
  u32 u = __float_as_uint(f), s = (u >> 16) & 0x8000, a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return (u16)(s | 0x7e00);
  if (a >= 0x477ff000u) return (u16)(s | 0x7c00);  // rounds to >= 65520: infinity
  if (a < 0x38800000u) {                              // below 2^-14: subnormal half
    float v = __uint_as_float(a) * 16777216.0f;       // exact scaling by 2^24
    u32 q = (u32)__float2uint_rn(v);                  // round half to even
    return (u16)(s | q);
  }
  u32 r = a + 0xfffu + ((a >> 13) & 1);
  return (u16)(s | ((r - 0x38000000u) >> 13));
}

__device__ __forceinline__ float bf2f(u16 b) { return __uint_as_float((u32)b << 16); }
__device__ __forceinline__ u16 f2bf(float f) {
  u32 u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (u16)((u >> 16) | 0x40);
  return (u16)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

// A float dtype's element (f32, f16, bf16) as f32.
__device__ __forceinline__ float loadf(const void* p, int dt, i64 i) {
  if (dt == 0) return ((const float*)p)[i];
  const u16 h = ((const u16*)p)[i];
  return dt == 1 ? h2f(h) : bf2f(h);
}

// f32 into a float dtype's element (f32, f16, bf16), rounded once.
__device__ __forceinline__ void storef(void* p, int dt, i64 i, float v) {
  if (dt == 0) ((float*)p)[i] = v;
  else ((u16*)p)[i] = dt == 1 ? f2h(v) : f2bf(v);
}

// Any dtype <-> double, with the CPU's conversion rules (float -> int truncates and saturates,
// NaN -> 0; int -> int wraps; anything nonzero -> true).
__device__ double loadd(const void* p, int dt, i64 i) {
  switch (dt) {
    case 0: return ((const float*)p)[i];
    case 1: return h2f(((const u16*)p)[i]);
    case 2: return bf2f(((const u16*)p)[i]);
    case 3: return ((const i8*)p)[i];
    case 4: return ((const i16*)p)[i];
    case 5: return ((const i32*)p)[i];
    case 6: return ((const u8*)p)[i];
    case 7: return ((const u16*)p)[i];
    case 8: return ((const u32*)p)[i];
    default: return ((const u8*)p)[i] != 0;
  }
}

__device__ __forceinline__ i64 sat(double v, double lo, double hi) {
  if (v != v) return 0;
  return v <= lo ? (i64)lo : v >= hi ? (i64)hi : (i64)v;
}

__device__ void stored(void* p, int dt, i64 i, double v, int from_float) {
  switch (dt) {
    case 0: ((float*)p)[i] = (float)v; break;
    case 1: ((u16*)p)[i] = f2h((float)v); break;
    case 2: ((u16*)p)[i] = f2bf((float)v); break;
    case 9: ((u8*)p)[i] = (v != 0 || v != v) ? 1 : 0; break;
    default: {
      i64 x;
      if (from_float) {
        const double lo[] = {-128.0, -32768.0, -2147483648.0, 0.0, 0.0, 0.0};
        const double hi[] = {127.0, 32767.0, 2147483647.0, 255.0, 65535.0, 4294967295.0};
        x = sat(v, lo[dt - 3], hi[dt - 3]);
      } else {
        x = (i64)v;
      }
      switch (dt) {
        case 3: ((i8*)p)[i] = (i8)x; break;
        case 4: ((i16*)p)[i] = (i16)x; break;
        case 5: ((i32*)p)[i] = (i32)x; break;
        case 6: ((u8*)p)[i] = (u8)x; break;
        case 7: ((u16*)p)[i] = (u16)x; break;
        default: ((u32*)p)[i] = (u32)x; break;
      }
    }
  }
}

// Offsets of logical element `i` in up to four operands.
__device__ __forceinline__ void offsets(const Layout& L, i64 i, int k, i64* off) {
  if (L.ndim == 1) {  // the common case after axes are merged: no division
    for (int j = 0; j < k; j++) off[j] = i * L.st[j][0];
    return;
  }
  for (int j = 0; j < k; j++) off[j] = 0;
  for (int d = (int)L.ndim - 1; d >= 0; d--) {
    i64 n = L.shape[d];
    i64 c = i % n;
    i /= n;
    for (int j = 0; j < k; j++) off[j] += c * L.st[j][d];
  }
}

#define GRID_LOOP(n) for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)gridDim.x * blockDim.x)

__device__ __forceinline__ bool is_float(int dt) { return dt <= 2; }

// Whether operand j of a one-axis layout is contiguous and 16-byte aligned (the float4 path).
__device__ __forceinline__ bool dense4(const Layout& L, int j, const void* p) {
  return L.ndim == 1 && L.st[j][0] == 1 && (((unsigned long long)p) & 15) == 0;
}

#define GRID_LOOP4(n4) for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n4); i += (i64)gridDim.x * blockDim.x)

// out = convert(in): astype, contiguous(), clone().
extern "C" __global__ void bn_convert(Layout L, i64 n, void* out, int out_dt, const void* in, int in_dt) {
  if (out_dt == 0 && in_dt == 0 && dense4(L, 0, out) && dense4(L, 1, in)) {  // f32 copy: 16 bytes a step
    const i64 n4 = n / 4;
    GRID_LOOP4(n4) ((float4*)out)[i] = ((const float4*)in)[i];
    if (blockIdx.x == 0 && threadIdx.x < n - 4 * n4) ((float*)out)[4 * n4 + threadIdx.x] = ((const float*)in)[4 * n4 + threadIdx.x];
    return;
  }
  GRID_LOOP(n) {
    i64 off[2];
    offsets(L, i, 2, off);
    stored(out, out_dt, off[0], loadd(in, in_dt, off[1]), is_float(in_dt));
  }
}

// An integer result reduced to its low 32 bits (sign-extended), so that the double carrying it to
// `stored` is exact: every integer dtype keeps the low bits of the exact result (wrap-around).
__device__ __forceinline__ double wrap32(unsigned long long v) { return (double)(i32)(u32)v; }

__device__ double ipow(double a, double b) {
  i64 sb = (i64)a, e = (i64)b;
  if (e < 0) return sb == 1 ? 1 : sb == -1 ? ((e & 1) ? -1 : 1) : 0;
  unsigned long long base = (unsigned long long)sb, r = 1;  // arithmetic mod 2^64: low bits exact
  while (e > 0) {
    if (e & 1) r *= base;
    base *= base;
    e >>= 1;
  }
  return wrap32(r);
}

// Binary ops (codes of args.BinaryOp): add 0, sub 1, mul 2, div 3, pow 4, maximum 5, minimum 6,
// eq 7, ne 8, lt 9, le 10, gt 11, ge 12. Operands in dtype `dt` (or scalars, flags bit 0 = a,
// bit 1 = b); comparisons write bool. Floats compute in f32 (as the CPU kernels), integers in 64
// bits and wrap on store.
__device__ __forceinline__ float binf(int op, float x, float y) {
  switch (op) {
    case 0: return x + y;
    case 1: return x - y;
    case 2: return x * y;
    case 3: return x / y;
    case 4: return powf(x, y);
    case 5: return (x != x || y != y) ? nanf_() : fmaxf(x, y);
    default: return (x != x || y != y) ? nanf_() : fminf(x, y);
  }
}

extern "C" __global__ void bn_binary(Layout L, i64 n, int op, int dt, void* out, int out_dt, const void* a, const void* b, int flags, double av, double bv) {
  const bool fl = is_float(dt);
  // f32 arithmetic over contiguous operands (or scalars): 16 bytes a step.
  if (dt == 0 && out_dt == 0 && op <= 6 && dense4(L, 0, out) && ((flags & 1) || dense4(L, 1, a)) && ((flags & 2) || dense4(L, 2, b))) {
    const i64 n4 = n / 4;
    const float sa = (float)av, sb = (float)bv;
    GRID_LOOP4(n4) {
      float4 x = (flags & 1) ? make_float4(sa, sa, sa, sa) : ((const float4*)a)[i];
      float4 y = (flags & 2) ? make_float4(sb, sb, sb, sb) : ((const float4*)b)[i];
      ((float4*)out)[i] = make_float4(binf(op, x.x, y.x), binf(op, x.y, y.y), binf(op, x.z, y.z), binf(op, x.w, y.w));
    }
    if (blockIdx.x == 0 && threadIdx.x < n - 4 * n4) {
      const i64 k = 4 * n4 + threadIdx.x;
      ((float*)out)[k] = binf(op, (flags & 1) ? sa : ((const float*)a)[k], (flags & 2) ? sb : ((const float*)b)[k]);
    }
    return;
  }
  GRID_LOOP(n) {
    i64 off[3];
    offsets(L, i, 3, off);
    double x = (flags & 1) ? av : loadd(a, dt, off[1]);
    double y = (flags & 2) ? bv : loadd(b, dt, off[2]);
    double r;
    if (fl) {
      float fx = (float)x, fy = (float)y, fr;
      switch (op) {
        case 0: fr = fx + fy; break;
        case 1: fr = fx - fy; break;
        case 2: fr = fx * fy; break;
        case 3: fr = fx / fy; break;
        case 4: fr = powf(fx, fy); break;
        case 5: fr = (fx != fx || fy != fy) ? nanf_() : fmaxf(fx, fy); break;
        case 6: fr = (fx != fx || fy != fy) ? nanf_() : fminf(fx, fy); break;
        case 7: fr = fx == fy; break;
        case 8: fr = fx != fy; break;
        case 9: fr = fx < fy; break;
        case 10: fr = fx <= fy; break;
        case 11: fr = fx > fy; break;
        default: fr = fx >= fy; break;
      }
      r = fr;
    } else if (dt == 9) {  // bool: add = or, mul = and, maximum = or, minimum = and
      bool p = x != 0, q = y != 0;
      switch (op) {
        case 0: case 5: r = p || q; break;
        case 2: case 6: r = p && q; break;
        case 7: r = p == q; break;
        case 8: r = p != q; break;
        case 9: r = p < q; break;
        case 10: r = p <= q; break;
        case 11: r = p > q; break;
        default: r = p >= q; break;
      }
    } else {
      i64 p = (i64)x, q = (i64)y;
      switch (op) {
        case 0: r = wrap32((unsigned long long)p + (unsigned long long)q); break;
        case 1: r = wrap32((unsigned long long)p - (unsigned long long)q); break;
        case 2: r = wrap32((unsigned long long)p * (unsigned long long)q); break;
        case 3: r = x / y; break;
        case 4: r = ipow(x, y); break;
        case 5: r = p > q ? x : y; break;
        case 6: r = p < q ? x : y; break;
        case 7: r = p == q; break;
        case 8: r = p != q; break;
        case 9: r = p < q; break;
        case 10: r = p <= q; break;
        case 11: r = p > q; break;
        default: r = p >= q; break;
      }
    }
    stored(out, out_dt, off[0], r, 0);
  }
}

// Logistic sigmoid without overflow or cancellation: e^x / (1 + e^x) for x < 0 (so tiny results
// keep their digits down to the subnormals), 1 / (1 + e^-x) otherwise.
__device__ __forceinline__ float sigm(float x) {
  if (x < 0.0f) {
    const float e = expf(x);
    return e / (1.0f + e);
  }
  return 1.0f / (1.0f + expf(-x));
}

// s·(1 − s) for s = sigm(x), as e / (1 + e)² with e = e^-|x| (no cancellation in 1 − s).
__device__ __forceinline__ float sigm_grad(float x) {
  const float e = expf(-fabsf(x));
  return e / ((1.0f + e) * (1.0f + e));
}

// Unary ops (codes of args.UnaryOp): neg 0, abs 1, exp 2, log 3, sqrt 4, rsqrt 5, sin 6, cos 7,
// tanh 8, erf 9, floor 10, ceil 11, round 12 (half to even), sign 13, relu 14, gelu 15, gelu_tanh
// 16, silu 17, sigmoid 18, clip 19 (p0, p1; NaN = no bound), relu_grad 20, gelu_grad 21,
// gelu_tanh_grad 22, silu_grad 23, sigmoid_grad 24, tanh_grad 25.
extern "C" __global__ void bn_unary(Layout L, i64 n, int op, int dt, void* out, const void* in, double p0, double p1) {
  const bool fl = is_float(dt);
  GRID_LOOP(n) {
    i64 off[2];
    offsets(L, i, 2, off);
    double v = loadd(in, dt, off[1]);
    double r;
    if (!fl) {
      i64 x = (i64)v;
      switch (op) {
        case 0: r = (double)(-x); break;
        case 1: r = (double)(x < 0 ? -x : x); break;
        case 13: r = x > 0 ? 1 : x < 0 ? -1 : 0; break;
        case 14: r = x > 0 ? v : 0; break;
        case 19: {
          double t = v;
          if (p0 == p0 && t < p0) t = p0;
          if (p1 == p1 && t > p1) t = p1;
          r = t;
          break;
        }
        case 20: r = x > 0 ? 1 : 0; break;
        default: r = v; break;  // floor, ceil, round of integers
      }
    } else {
      float x = (float)v, y;
      const float k = 0.7978845608028654f;  // sqrt(2 / pi)
      switch (op) {
        case 0: y = -x; break;
        case 1: y = fabsf(x); break;
        case 2: y = expf(x); break;
        case 3: y = logf(x); break;
        case 4: y = sqrtf(x); break;
        case 5: y = rsqrtf(x); break;
        case 6: y = sinf(x); break;
        case 7: y = cosf(x); break;
        case 8: y = tanhf(x); break;
        case 9: y = erff(x); break;
        case 10: y = floorf(x); break;
        case 11: y = ceilf(x); break;
        case 12: y = rintf(x); break;
        case 13: y = x > 0 ? 1.0f : x < 0 ? -1.0f : x; break;
        case 14: y = x > 0 ? x : 0.0f; break;
        // gelu: 1 + erf(x/√2) cancels for x < 0; erfc(-x/√2) is the same value without cancelling.
        case 15: y = x < 0.0f ? 0.5f * x * erfcf(-x * 0.7071067811865476f) : 0.5f * x * (1.0f + erff(x * 0.7071067811865476f)); break;
        // gelu_tanh: 0.5·(1 + tanh(u)) = sigm(2u), which keeps its digits for x < 0.
        case 16: y = x * sigm(2.0f * k * (x + 0.044715f * x * x * x)); break;
        case 17: y = x * sigm(x); break;
        case 18: y = sigm(x); break;
        case 19: {
          y = x;
          if (p0 == p0 && y < (float)p0) y = (float)p0;
          if (p1 == p1 && y > (float)p1) y = (float)p1;
          break;
        }
        case 20: y = x > 0 ? 1.0f : 0.0f; break;
        case 21: {
          const float cdf = x < 0.0f ? 0.5f * erfcf(-x * 0.7071067811865476f) : 0.5f * (1.0f + erff(x * 0.7071067811865476f));
          y = cdf + x * 0.3989422804014327f * expf(-0.5f * x * x);
          break;
        }
        case 22: {
          // With s = sigm(2u): 0.5·(1 + tanh u) = s and 1 − tanh²u = 4·s·(1 − s).
          const float u2 = 2.0f * k * (x + 0.044715f * x * x * x);
          y = sigm(u2) + 2.0f * x * sigm_grad(u2) * k * (1.0f + 0.134145f * x * x);
          break;
        }
        case 23: {
          float s = sigm(x);
          y = s * (1.0f + x * (1.0f - s));
          break;
        }
        case 24: y = sigm_grad(x); break;
        default: {
          // 1 − tanh²x = 4e / (1 + e)² with e = e^(−2|x|): no cancellation for large |x|.
          const float e = expf(-2.0f * fabsf(x));
          y = 4.0f * e / ((1.0f + e) * (1.0f + e));
          break;
        }
      }
      r = y;
    }
    stored(out, dt, off[0], r, 0);
  }
}

// out = cond ? a : b (cond bool; a, b in `dt` or scalars: flags bit 0 = a, bit 1 = b).
extern "C" __global__ void bn_where(Layout L, i64 n, int dt, void* out, const u8* cond, const void* a, const void* b, int flags, double av, double bv) {
  GRID_LOOP(n) {
    i64 off[4];
    offsets(L, i, 4, off);
    double v = cond[off[1]] ? ((flags & 1) ? av : loadd(a, dt, off[2])) : ((flags & 2) ? bv : loadd(b, dt, off[3]));
    stored(out, dt, off[0], v, 0);
  }
}

// ---- reductions ---------------------------------------------------------------------------------
// Layout: [kept axes..., reduced axes...]; operand 0 = out (stride 0 on reduced axes), 1 = in.
// One block per output element (grid-stride over outputs), its threads stride over the reduced
// elements and combine in shared memory. Codes of args.ReduceOp: sum 0, mean 1, prod 2, min 3,
// max 4, argmin 5, argmax 6, var 7, std 8, logsumexp 9. Floats accumulate in f64; integer sums
// and products in 64 bits, wrapped to the 32-bit output.

#define RB 256

// A float product's mantissa brought back into [0.5, 1), its binary exponent moved into *e
// (zero, inf and NaN stay as they are).
__device__ __forceinline__ void prod_renorm(double* m, long long* e) {
  if (*m == 0.0 || *m - *m != 0.0) return;
  int k;
  *m = frexp(*m, &k);
  *e += k;
}

__device__ __forceinline__ bool lt_first(double v, i64 i, double w, i64 j, bool want_max) {
  // Whether (v, i) beats (w, j): NaN wins (the first NaN), then the larger (max) or smaller
  // (min) value, ties to the smaller index.
  bool vn = v != v, wn = w != w;
  if (vn || wn) return vn && (!wn || i < j);
  if (v == w) return i < j;
  return want_max ? v > w : v < w;
}

__device__ double block_sum(double x, double* sh) {
  sh[threadIdx.x] = x;
  __syncthreads();
  for (int s = RB / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
    __syncthreads();
  }
  double r = sh[0];
  __syncthreads();
  return r;
}

extern "C" __global__ void __launch_bounds__(RB) bn_reduce(Layout L, i64 kept, i64 nk, i64 nr, int op, int dt, void* out, int out_dt, const void* in, double ddof) {
  __shared__ double sv[RB];
  __shared__ i64 si[RB];
  const bool fl = is_float(dt);
  for (i64 o = blockIdx.x; o < nk; o += gridDim.x) {
    i64 rem = o, ooff = 0, ibase = 0;
    for (int d = (int)kept - 1; d >= 0; d--) {
      i64 c = rem % L.shape[d];
      rem /= L.shape[d];
      ooff += c * L.st[0][d];
      ibase += c * L.st[1][d];
    }
    // The input offset of reduced element r.
#define ROFF(r, off)                                          \
  {                                                           \
    i64 q = (r);                                              \
    off = ibase;                                              \
    for (int d = (int)L.ndim - 1; d >= (int)kept; d--) {      \
      i64 c = q % L.shape[d];                                 \
      q /= L.shape[d];                                        \
      off += c * L.st[1][d];                                  \
    }                                                         \
  }
    double result;
    if (op == 3 || op == 4 || op == 5 || op == 6) {  // min, max, argmin, argmax
      const bool mx = op == 4 || op == 6;
      double best = 0;
      i64 bi = -1;
      for (i64 r = threadIdx.x; r < nr; r += RB) {
        i64 off;
        ROFF(r, off);
        double v = loadd(in, dt, off);
        if (bi < 0 || lt_first(v, r, best, bi, mx)) {
          best = v;
          bi = r;
        }
      }
      sv[threadIdx.x] = best;
      si[threadIdx.x] = bi;
      __syncthreads();
      for (int s = RB / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
          i64 j = si[threadIdx.x + s];
          if (j >= 0 && (si[threadIdx.x] < 0 || lt_first(sv[threadIdx.x + s], j, sv[threadIdx.x], si[threadIdx.x], mx))) {
            sv[threadIdx.x] = sv[threadIdx.x + s];
            si[threadIdx.x] = j;
          }
        }
        __syncthreads();
      }
      result = (op == 5 || op == 6) ? (double)si[0] : sv[0];
      __syncthreads();
    } else if (!fl && (op == 0 || op == 2)) {  // integer sum / product, wrapping
      long long acc = op == 0 ? 0 : 1;
      for (i64 r = threadIdx.x; r < nr; r += RB) {
        i64 off;
        ROFF(r, off);
        long long v = (long long)loadd(in, dt, off);
        acc = op == 0 ? acc + v : acc * v;
      }
      si[threadIdx.x] = acc;
      __syncthreads();
      for (int s = RB / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) si[threadIdx.x] = op == 0 ? si[threadIdx.x] + si[threadIdx.x + s] : si[threadIdx.x] * si[threadIdx.x + s];
        __syncthreads();
      }
      long long t = si[0];
      result = out_dt == 8 ? (double)(u32)t : (double)(i32)t;
      __syncthreads();
    } else if (op == 2) {  // float product: the binary exponent kept apart, as on the CPU, so no
                           // partial product overflows or underflows (no inf · 0 = NaN on the way)
      double acc = 1;
      long long ex = 0;
      for (i64 r = threadIdx.x; r < nr; r += RB) {
        i64 off;
        ROFF(r, off);
        acc *= loadd(in, dt, off);
        const double a = fabs(acc);
        if (a > 0x1p512 || a < 0x1p-512) prod_renorm(&acc, &ex);
      }
      sv[threadIdx.x] = acc;
      si[threadIdx.x] = ex;
      __syncthreads();
      for (int s = RB / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
          double m = sv[threadIdx.x] * sv[threadIdx.x + s];
          long long e = si[threadIdx.x] + si[threadIdx.x + s];
          prod_renorm(&m, &e);
          sv[threadIdx.x] = m;
          si[threadIdx.x] = e;
        }
        __syncthreads();
      }
      const double m = sv[0];
      const long long e = si[0] < -4000 ? -4000 : si[0] > 4000 ? 4000 : si[0];
      result = (m == 0.0 || m - m != 0.0) ? m : ldexp(m, (int)e);
      __syncthreads();
    } else if (op == 9) {  // logsumexp: max, then the sum of exp(x - max)
      double m = -1.0 / 0.0;
      bool nan = false;
      for (i64 r = threadIdx.x; r < nr; r += RB) {
        i64 off;
        ROFF(r, off);
        double v = loadd(in, dt, off);
        if (v != v) nan = true;
        else if (v > m) m = v;
      }
      sv[threadIdx.x] = nan ? 1.0 : 0.0;
      __syncthreads();
      for (int s = RB / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) sv[threadIdx.x] = fmax(sv[threadIdx.x], sv[threadIdx.x + s]);
        __syncthreads();
      }
      const bool anynan = sv[0] > 0;
      __syncthreads();
      sv[threadIdx.x] = m;
      __syncthreads();
      for (int s = RB / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) sv[threadIdx.x] = fmax(sv[threadIdx.x], sv[threadIdx.x + s]);
        __syncthreads();
      }
      const double mm = sv[0];
      __syncthreads();
      double acc = 0;
      if (mm > -1.0 / 0.0 && mm < 1.0 / 0.0) {
        for (i64 r = threadIdx.x; r < nr; r += RB) {
          i64 off;
          ROFF(r, off);
          acc += exp(loadd(in, dt, off) - mm);
        }
      }
      double total = block_sum(acc, sv);
      result = anynan ? 0.0 / 0.0 : (mm > -1.0 / 0.0 && mm < 1.0 / 0.0) ? mm + log(total) : mm;
    } else {  // sum, mean, var, std (two passes)
      double acc = 0;
      for (i64 r = threadIdx.x; r < nr; r += RB) {
        i64 off;
        ROFF(r, off);
        acc += loadd(in, dt, off);
      }
      double total = block_sum(acc, sv);
      if (op == 0) result = total;
      else if (op == 1) result = total / (double)nr;
      else {
        const double mean = total / (double)nr;
        double sq = 0;
        for (i64 r = threadIdx.x; r < nr; r += RB) {
          i64 off;
          ROFF(r, off);
          double d = loadd(in, dt, off) - mean;
          sq += d * d;
        }
        double ss = block_sum(sq, sv);
        double var = (double)nr - ddof > 0 ? ss / ((double)nr - ddof) : 0.0 / 0.0;
        result = op == 7 ? var : sqrt(var);
      }
    }
#undef ROFF
    if (threadIdx.x == 0) stored(out, out_dt, ooff, result, 0);
  }
}
