// Ternary matmul for the CUDA backend (appended to the module after nn.cu): out[t, r] = x[t] · w[r]
// for packed 2-bit ternary weights w[n, k] and float activations x[m, k], never dequantized. The
// arithmetic is zig/cpu/ternary_matmul.zig's:
//   1. bn_tq_quantize: per token, m = max|x|, s = 127 / m (NaN when x has a NaN), q = rint(clamp(x·s,
//      ±127)) as int8 (0 when m is 0 or NaN), zero-padded to whole 256-weight blocks, and the sum of
//      q per block.
//   2. bn_tq_matmul: integer dot products of q with the codes c = t + 1 ∈ {0, 1, 2} (dp4a), corrected
//      by the block sums (Σ t·q = Σ c·q − Σ q), then rescaled: one scale a row ("i2" with a tensor or
//      channel scale) gives f32(isum)·scale / s exactly as on the CPU; block and group scales add
//      f32(isum_block)·scale per block (the same products, summed in another order: results agree
//      with the CPU's to f32 rounding).
// Code layout (TQ2_0's `qs`; "i2" is the same without the f16 scale): byte h·32 + j of a block holds
// weights h·128 + 32·p + j in bits 2p. A 4-byte word at byte h·32 + j0 (j0 a multiple of 4) thus
// holds, for each shift p, four consecutive weights h·128 + 32·p + j0 .. +3: one dp4a against four
// consecutive activation bytes.

#define TQ_WARPS 8  // rows a block (one warp a row)

__device__ __forceinline__ float loadf(const void* p, int dt, i64 i) {
  if (dt == 0) return ((const float*)p)[i];
  const u16 h = ((const u16*)p)[i];
  return dt == 1 ? h2f(h) : bf2f(h);
}

__device__ __forceinline__ int warp_sum_i(int v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_sum_f(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// One block (RB threads) a token; q is [m, nb·256], xsum [m, nb], s [m]. RB must be 256: thread j
// quantizes weight j of every block.
extern "C" __global__ void __launch_bounds__(RB) bn_tq_quantize(const void* x, int dt, i64 x_stride, i64 m, i64 k, i64 nb, i8* q, i32* xsum, float* s) {
  __shared__ float shm[RB / 32];
  __shared__ int shn[RB / 32];
  __shared__ int shs[2][RB / 32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (i64 t = blockIdx.x; t < m; t += gridDim.x) {
    const i64 base = t * x_stride;
    float mx = 0.0f;
    int nan = 0;
    for (i64 i = threadIdx.x; i < k; i += RB) {
      const float v = loadf(x, dt, base + i);
      if (v != v) nan = 1;
      else mx = fmaxf(mx, fabsf(v));
    }
    for (int o = 16; o > 0; o >>= 1) {
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
      nan |= __shfl_xor_sync(0xffffffffu, nan, o);
    }
    if (lane == 0) {
      shm[warp] = mx;
      shn[warp] = nan;
    }
    __syncthreads();
    mx = shm[0];
    nan = shn[0];
    for (int w = 1; w < RB / 32; w++) {
      mx = fmaxf(mx, shm[w]);
      nan |= shn[w];
    }
    const float sc = nan ? nanf_() : 127.0f / mx;
    const bool zero = nan || mx == 0.0f;
    if (threadIdx.x == 0) s[t] = sc;
    i8* qt = q + t * nb * 256;
    for (i64 b = 0; b < nb; b++) {
      const i64 i = b * 256 + threadIdx.x;
      int v = 0;
      if (!zero && i < k) {
        float f = __fmul_rn(loadf(x, dt, base + i), sc);
        if (f != f) f = 0.0f;  // Inf · 0
        f = fminf(fmaxf(f, -127.0f), 127.0f);
        v = (int)rintf(f);
      }
      qt[i] = (i8)v;
      const int ws = warp_sum_i(v);
      if (lane == 0) shs[b & 1][warp] = ws;
      __syncthreads();
      if (threadIdx.x == 0) {
        int tot = 0;
        for (int w = 0; w < RB / 32; w++) tot += shs[b & 1][w];
        xsum[t * nb + b] = tot;
      }
    }
    __syncthreads();  // shm/shn are rewritten by the next token
  }
}

// The four code words of lane piece `piece` (16 bytes of a block) of a row: "i2" rows are 64-byte
// blocks (one 16-byte load), TQ2_0 rows are 66-byte blocks (2-byte aligned: 16-bit loads).
__device__ __forceinline__ void tq_words(const u8* row, int fmt, i64 piece, u32* wd) {
  const i64 b = piece >> 2, j = (piece & 3) * 16;
  if (fmt == 2) {
    const uint4 v = *(const uint4*)(row + b * 64 + j);
    wd[0] = v.x;
    wd[1] = v.y;
    wd[2] = v.z;
    wd[3] = v.w;
  } else {
    const u16* h = (const u16*)(row + b * 66 + j);
    for (int c = 0; c < 4; c++) wd[c] = (u32)h[2 * c] | ((u32)h[2 * c + 1] << 16);
  }
}

// Rows r of this warp, tokens t0 .. t0 + nt (nt <= T). mode: 0 tensor / 1 channel / 2 group scales
// ("i2"), 3 = block scales in the blocks (TQ2_0).
template <int T>
__device__ void tq_row(const u8* w, const float* scales, int fmt, int mode, i64 group_blocks, i64 n, i64 nb, const i8* q, const i32* xsum, const float* s, i64 t0, int nt, i64 r, float* out) {
  const int lane = threadIdx.x & 31;
  const i64 rb = nb * (fmt == 2 ? 64 : 66);
  const u8* row = w + r * rb;
  const i64 kq = nb * 256;
  const bool row_scale = mode < 2;
  int iacc[T];
  float facc[T];
  for (int j = 0; j < T; j++) {
    iacc[j] = 0;
    facc[j] = 0.0f;
  }
  const i64 pieces = nb * 4;
  for (i64 piece = lane; piece < pieces; piece += 32) {
    u32 wd[4];
    tq_words(row, fmt, piece, wd);
    const i64 b = piece >> 2, j0 = (piece & 3) * 16;
    const i64 off = b * 256 + (j0 >> 5) * 128 + (j0 & 31);
    int dot[T];
    for (int j = 0; j < T; j++) dot[j] = 0;
#pragma unroll
    for (int p = 0; p < 4; p++) {
      // Words c = 0..3 at shift p meet the 16 consecutive activations at off + 32·p: one load.
      const int c0 = (int)((wd[0] >> (2 * p)) & 0x03030303u), c1 = (int)((wd[1] >> (2 * p)) & 0x03030303u);
      const int c2 = (int)((wd[2] >> (2 * p)) & 0x03030303u), c3 = (int)((wd[3] >> (2 * p)) & 0x03030303u);
#pragma unroll
      for (int j = 0; j < T; j++) {
        if (j < nt) {
          const int4 a = *(const int4*)(q + (t0 + j) * kq + off + 32 * p);
          dot[j] = __dp4a(c3, a.w, __dp4a(c2, a.z, __dp4a(c1, a.y, __dp4a(c0, a.x, dot[j]))));
        }
      }
    }
    if (row_scale) {
#pragma unroll
      for (int j = 0; j < T; j++) iacc[j] += dot[j] - ((piece & 3) == 0 && j < nt ? xsum[(t0 + j) * nb + b] : 0);
    } else {
      // The block's four pieces are lanes 4i .. 4i + 3: gather the block's sum, scale it once.
      float scale;
      if (mode == 3) scale = h2f(*(const u16*)(row + b * 66 + 64));
      else scale = scales[r * (nb / group_blocks) + b / group_blocks];
#pragma unroll
      for (int j = 0; j < T; j++) {
        int v = dot[j];
        v += __shfl_xor_sync(0xffffffffu, v, 1);
        v += __shfl_xor_sync(0xffffffffu, v, 2);
        if ((piece & 3) == 0 && j < nt) facc[j] += (float)(v - xsum[(t0 + j) * nb + b]) * scale;
      }
    }
  }
  const float rs = mode == 0 ? scales[0] : mode == 1 ? scales[r] : 0.0f;
#pragma unroll
  for (int j = 0; j < T; j++) {
    if (row_scale) {
      const int tot = warp_sum_i(iacc[j]);
      if (lane == 0 && j < nt) out[(t0 + j) * n + r] = __fdiv_rn(__fmul_rn((float)tot, rs), s[t0 + j]);
    } else {
      const float tot = warp_sum_f(facc[j]);
      if (lane == 0 && j < nt) out[(t0 + j) * n + r] = __fdiv_rn(tot, s[t0 + j]);
    }
  }
}

// Grid: x over row groups of TQ_WARPS rows, y over chunks of `tpb` tokens (1, 4 or 16).
extern "C" __global__ void __launch_bounds__(32 * TQ_WARPS) bn_tq_matmul(const u8* w, const float* scales, int fmt, int mode, i64 group_blocks, i64 n, i64 nb, const i8* q, const i32* xsum, const float* s, i64 m, int tpb, float* out) {
  const i64 r = (i64)blockIdx.x * TQ_WARPS + (threadIdx.x >> 5);
  if (r >= n) return;  // whole warps leave together
  const i64 chunks = (m + tpb - 1) / tpb;
  for (i64 c = blockIdx.y; c < chunks; c += gridDim.y) {
    const i64 t0 = c * tpb;
    const int nt = (int)(m - t0 < tpb ? m - t0 : tpb);
    if (tpb == 1) tq_row<1>(w, scales, fmt, mode, group_blocks, n, nb, q, xsum, s, t0, nt, r, out);
    else if (tpb == 4) tq_row<4>(w, scales, fmt, mode, group_blocks, n, nb, q, xsum, s, t0, nt, r, out);
    else tq_row<16>(w, scales, fmt, mode, group_blocks, n, nb, q, xsum, s, t0, nt, r, out);
  }
}
