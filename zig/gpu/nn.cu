// Row kernels for the CUDA backend (appended to elementwise.cu's module): softmax / logSoftmax
// and layerNorm / rmsNorm along the LAST axis of the layout (operand 0 = out, 1 = in), one block
// per row. Softmax works in f32 on a row kept in registers (rows up to RB·SMX_PER read once);
// the norms' statistics in f64. The CPU computes them in f32 with compensated passes; results
// agree to f32 rounding; outputs are rounded once to the tensor's dtype.

// Row r's offsets in operands 0 and 1 (all axes but the last).
__device__ __forceinline__ void row_base(const Layout& L, i64 r, i64* o0, i64* o1) {
  *o0 = 0;
  *o1 = 0;
  for (int d = (int)L.ndim - 2; d >= 0; d--) {
    i64 c = r % L.shape[d];
    r /= L.shape[d];
    *o0 += c * L.st[0][d];
    *o1 += c * L.st[1][d];
  }
}

// The block's maximum / sum of x in f32 (RB threads): warp shuffles, then the warps' values in a
// fixed order (the same bits every run).
__device__ float block_maxf(float x, float* sh) {
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = x;
  __syncthreads();
  float r = sh[0];
  for (int w = 1; w < RB / 32; w++) r = fmaxf(r, sh[w]);
  __syncthreads();
  return r;
}

__device__ float block_sumf(float x, float* sh) {
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = x;
  __syncthreads();
  float r = sh[0];
  for (int w = 1; w < RB / 32; w++) r += sh[w];
  __syncthreads();
  return r;
}

#define SMX_PER 32  // elements a thread keeps in registers: rows up to RB·SMX_PER = 8192 are read once

// A row whose maximum is not finite (all -inf, any +inf) or that holds a NaN gives NaN, as on
// the CPU. Float dtypes only (the TS side converts others first).
extern "C" __global__ void __launch_bounds__(RB) bn_softmax(Layout L, i64 rows, int lg, int dt, void* out, const void* in) {
  __shared__ float sh[RB / 32];
  const int last = (int)L.ndim - 1;
  const i64 n = L.shape[last], s0 = L.st[0][last], s1 = L.st[1][last];
  const bool cached = n <= (i64)RB * SMX_PER;
  const float inf = __int_as_float(0x7f800000);
  for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
    i64 b0, b1;
    row_base(L, r, &b0, &b1);
    // A NaN counts as +inf in the maximum: either makes the whole row NaN, so one reduction
    // finds both.
    float v[SMX_PER];
    float m = -inf;
    if (cached) {
#pragma unroll
      for (int j = 0; j < SMX_PER; j++) {
        const i64 k = threadIdx.x + (i64)j * RB;
        v[j] = k < n ? loadf(in, dt, b1 + k * s1) : -inf;
        m = fmaxf(m, v[j] != v[j] ? inf : v[j]);
      }
    } else {
      for (i64 k = threadIdx.x; k < n; k += RB) {
        const float x = loadf(in, dt, b1 + k * s1);
        m = fmaxf(m, x != x ? inf : x);
      }
    }
    m = block_maxf(m, sh);
    const bool ok = m > -inf && m < inf;
    float acc = 0.0f;
    if (ok) {
      if (cached) {
#pragma unroll
        for (int j = 0; j < SMX_PER; j++) {
          const float e = expf(v[j] - m);  // -inf (past the row): 0
          acc += e;
          if (!lg) v[j] = e;  // softmax keeps the exponentials, logSoftmax the values
        }
      } else {
        for (i64 k = threadIdx.x; k < n; k += RB) acc += expf(loadf(in, dt, b1 + k * s1) - m);
      }
    }
    const float total = block_sumf(acc, sh);
    const float lse = logf(total);
    const float qnan = __int_as_float(0x7fc00000);
#pragma unroll
    for (int j = 0; j < SMX_PER; j++) {
      const i64 k = threadIdx.x + (i64)j * RB;
      if (!cached || k >= n) break;
      storef(out, dt, b0 + k * s0, !ok ? qnan : lg ? (v[j] - m) - lse : v[j] / total);
    }
    if (!cached) {
      for (i64 k = threadIdx.x; k < n; k += RB) {
        const float x = loadf(in, dt, b1 + k * s1) - m;
        storef(out, dt, b0 + k * s0, !ok ? qnan : lg ? x - lse : expf(x) / total);
      }
    }
  }
}

// kind 0 = layerNorm ((x - mean) / sqrt(var + eps) * w + b, biased variance), 1 = rmsNorm
// (x / sqrt(mean(x^2) + eps) * w); w and b are contiguous vectors of the row length in `wdt`
// (either may be null).
extern "C" __global__ void __launch_bounds__(RB) bn_norm(Layout L, i64 rows, int kind, int dt, void* out, const void* in, const void* w, const void* bias, int wdt, double eps) {
  __shared__ double sh[RB];
  const int last = (int)L.ndim - 1;
  const i64 n = L.shape[last], s0 = L.st[0][last], s1 = L.st[1][last];
  for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
    i64 b0, b1;
    row_base(L, r, &b0, &b1);
    double mean = 0;
    if (kind == 0) {
      double acc = 0;
      for (i64 k = threadIdx.x; k < n; k += RB) acc += loadd(in, dt, b1 + k * s1);
      mean = block_sum(acc, sh) / (double)n;
    }
    double sq = 0;
    for (i64 k = threadIdx.x; k < n; k += RB) {
      double d = loadd(in, dt, b1 + k * s1) - mean;
      sq += d * d;
    }
    const double rstd = 1.0 / sqrt(block_sum(sq, sh) / (double)n + eps);
    for (i64 k = threadIdx.x; k < n; k += RB) {
      float y = (float)((loadd(in, dt, b1 + k * s1) - mean) * rstd);
      if (w) y *= (float)loadd(w, wdt, k);
      if (bias) y += (float)loadd(bias, wdt, k);
      stored(out, dt, b0 + k * s0, y, 0);
    }
  }
}
