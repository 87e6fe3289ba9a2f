// Row kernels for the CUDA backend (appended to elementwise.cu's module): softmax / logSoftmax
// and layerNorm / rmsNorm along the LAST axis of the layout (operand 0 = out, 1 = in), one block
// per row. Statistics in f64 (the CPU computes them in f32 with compensated passes; results agree
// to f32 rounding), outputs rounded once to the tensor's dtype.

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

__device__ double block_max(double x, double* sh) {
  sh[threadIdx.x] = x;
  __syncthreads();
  for (int s = RB / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] = fmax(sh[threadIdx.x], sh[threadIdx.x + s]);
    __syncthreads();
  }
  double r = sh[0];
  __syncthreads();
  return r;
}

// A row whose maximum is not finite (all -inf, any +inf) or that holds a NaN gives NaN, as on
// the CPU.
extern "C" __global__ void __launch_bounds__(RB) bn_softmax(Layout L, i64 rows, int lg, int dt, void* out, const void* in) {
  __shared__ double sh[RB];
  const int last = (int)L.ndim - 1;
  const i64 n = L.shape[last], s0 = L.st[0][last], s1 = L.st[1][last];
  for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
    i64 b0, b1;
    row_base(L, r, &b0, &b1);
    double m = -1.0 / 0.0, nan = 0;
    for (i64 k = threadIdx.x; k < n; k += RB) {
      double v = loadd(in, dt, b1 + k * s1);
      if (v != v) nan = 1;
      else m = fmax(m, v);
    }
    const bool bad = block_max(nan, sh) > 0;
    m = block_max(m, sh);
    double acc = 0;
    for (i64 k = threadIdx.x; k < n; k += RB) acc += exp(loadd(in, dt, b1 + k * s1) - m);
    const double total = block_sum(acc, sh);
    const bool ok = !bad && m > -1.0 / 0.0 && m < 1.0 / 0.0;
    const double lse = log(total);
    for (i64 k = threadIdx.x; k < n; k += RB) {
      double v = loadd(in, dt, b1 + k * s1) - m;
      double y = !ok ? 0.0 / 0.0 : lg ? v - lse : exp(v) / total;
      stored(out, dt, b0 + k * s0, y, 0);
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
