// Ternary matmul for the CUDA backend (appended to the module after nn.cu): out[t, r] = x[t] · w[r]
// for packed 2-bit ternary weights w[n, k] and float activations x[m, k], never dequantized. The
// arithmetic is zig/cpu/ternary_matmul.zig's:
//   1. bn_tq_quantize: per token, m = max|x|, s = 127 / m (NaN when x has a NaN), q = rint(clamp(x·s,
//      ±127)) as int8 (0 when m is 0 or NaN), zero-padded to whole 256-weight blocks.
//   2. bn_tq_matmul: integer dot products of q with the weights t ∈ {-1, 0, 1} (dp4a), rescaled: one
//      scale a row ("i2" with a tensor or channel scale) gives f32(isum)·scale / s exactly as on the
//      CPU; block and group scales add f32(isum_block)·scale per block (the same products, summed
//      in another order: results agree with the CPU's to f32 rounding).
// Code layout (TQ2_0's `qs`; "i2" is the same without the f16 scale): byte h·32 + j of a block holds
// the code c = t + 1 of weight h·128 + 32·p + j in bits 2p. A lane takes a 16-byte piece of a block
// (bytes j0 .. j0 + 15, j0 = 16·(piece mod 4)); at shift p its four words hold the codes of the 16
// consecutive weights h·128 + 32·p + (j0 mod 32) .. + 15. The quantize kernel stores q in exactly
// that order ("piece order", see piece_pos), so a lane reads them as four 16-byte loads and a
// warp's load for one shift is 512 contiguous bytes. Codes become signed
// bytes with ((c + 0x7f) ^ 0x80) per byte: 0 -> -1, 1 -> 0, 2 -> 1, no borrow between bytes.

#define TQ_WARPS 4  // warps a block of the matmul kernel (small blocks spread evenly over the SMs)
#define QB 1024     // threads of the quantize kernel (one block a token)

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

// Where activation i of a token goes in piece order: piece P = 4·block + 2·h + (j ≥ 16) needs, at
// shift p, the 16 activations 32·p + (j mod 32) .. + 15 of half h of its block. Pieces come in
// runs of 32 (one a lane); within a run the 16 bytes of every lane for shift p are adjacent, so a
// warp's load for one shift is 512 contiguous bytes. Rows of q are padded to whole runs (8 blocks).
__device__ __forceinline__ i64 piece_pos(i64 i) {
  const i64 b = i >> 8;
  const int o = (int)(i & 255), h = o >> 7, p = (o >> 5) & 3, j = o & 31;
  const i64 P = b * 4 + h * 2 + (j >> 4);
  return ((P >> 5) * 4 + p) * 512 + (P & 31) * 16 + (j & 15);
}

// Bytes of a token's row of q: nb blocks rounded up to whole runs of 32 pieces.
__device__ __forceinline__ i64 tq_row_bytes(i64 nb) { return (nb + 7) / 8 * 2048; }

#define QV 8  // consecutive elements a thread quantizes at once (8 bytes of q in piece order)

// The 8 elements i0 .. i0 + 7 of a token row (zeros past k), with one or two 16-byte loads when
// the row is aligned (f32: two float4, f16/bf16: one uint4 of 8 halves).
__device__ __forceinline__ void tq_load8(const void* x, int dt, i64 base, i64 i0, i64 k, float* v) {
  const i64 at = base + i0;
  const int es = dt == 0 ? 4 : 2;
  if (i0 + QV <= k && (((unsigned long long)x + (unsigned long long)(at * es)) & 15) == 0) {
    if (dt == 0) {
      const float4 a = *(const float4*)((const float*)x + at), b = *(const float4*)((const float*)x + at + 4);
      v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w; v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
    } else {
      const uint4 h = *(const uint4*)((const u16*)x + at);
      const u32 w[4] = {h.x, h.y, h.z, h.w};
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const u16 lo = (u16)(w[e] & 0xffffu), hi = (u16)(w[e] >> 16);
        v[2 * e] = dt == 1 ? h2f(lo) : bf2f(lo);
        v[2 * e + 1] = dt == 1 ? h2f(hi) : bf2f(hi);
      }
    }
    return;
  }
#pragma unroll
  for (int e = 0; e < QV; e++) v[e] = i0 + e < k ? loadf(x, dt, at + e) : 0.0f;
}

// rint(clamp(x·s, ±127)) of 8 values packed as 8 bytes (0 when `zero`; a NaN product gives 0).
__device__ __forceinline__ uint2 tq_codes8(const float* v, float sc, bool zero) {
  u32 w[2] = {0u, 0u};
  if (!zero) {
#pragma unroll
    for (int e = 0; e < QV; e++) {
      float f = __fmul_rn(v[e], sc);
      if (f != f) f = 0.0f;  // Inf · 0
      f = fminf(fmaxf(f, -127.0f), 127.0f);
      w[e >> 2] |= ((u32)(int)rintf(f) & 0xffu) << (8 * (e & 3));
    }
  }
  return make_uint2(w[0], w[1]);
}

// Folds 8 values into a running max|x| and NaN flag.
__device__ __forceinline__ void tq_absmax8(const float* v, float* mx, int* nan) {
#pragma unroll
  for (int e = 0; e < QV; e++) {
    if (v[e] != v[e]) *nan = 1;
    else *mx = fmaxf(*mx, fabsf(v[e]));
  }
}

// The block's max|x| and NaN flag (any block of up to 32 warps): warp shuffles, one value a warp
// in shared memory, warp 0 combines them. Every thread returns with the block's values; the
// shared arrays may be reused after the call.
__device__ void tq_block_absmax(float* mx, int* nan, float* shm, int* shn) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  for (int o = 16; o > 0; o >>= 1) {
    *mx = fmaxf(*mx, __shfl_xor_sync(0xffffffffu, *mx, o));
    *nan |= __shfl_xor_sync(0xffffffffu, *nan, o);
  }
  if (lane == 0) {
    shm[warp] = *mx;
    shn[warp] = *nan;
  }
  __syncthreads();
  if (warp == 0) {
    float m = lane < nw ? shm[lane] : 0.0f;
    int n = lane < nw ? shn[lane] : 0;
    for (int o = 16; o > 0; o >>= 1) {
      m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
      n |= __shfl_xor_sync(0xffffffffu, n, o);
    }
    if (lane == 0) {
      shm[0] = m;
      shn[0] = n;
    }
  }
  __syncthreads();
  *mx = shm[0];
  *nan = shn[0];
  __syncthreads();
}

// Reads a token row (elements i0 = first, first + step, ... below k, 8 at a time) for its max|x|.
__device__ __forceinline__ void tq_scan(const void* x, int dt, i64 base, i64 k, i64 first, i64 step, float* mx, int* nan) {
  for (i64 i0 = first; i0 < k; i0 += step) {
    float v[QV];
    tq_load8(x, dt, base, i0, k, v);
    tq_absmax8(v, mx, nan);
  }
}

// Stores the codes of a token row (padded to `padded` elements) in piece order, 8 at a time.
__device__ __forceinline__ void tq_store_row(i8* qt, const void* x, int dt, i64 base, i64 k, i64 padded, i64 first, i64 step, float sc, bool zero) {
  for (i64 i0 = first; i0 < padded; i0 += step) {
    float v[QV];
    tq_load8(x, dt, base, i0, k, v);
    *(uint2*)(qt + piece_pos(i0)) = tq_codes8(v, sc, zero);
  }
}

#define QR 2  // 8-element groups a thread keeps in registers: rows up to QB·QV·QR = 16384 are read once

// q is [m, tq_row_bytes(nb)] in piece order, s [m]. One block a token: each thread takes runs of 8
// consecutive elements (16-byte loads, one 8-byte store: 8 consecutive elements stay adjacent in
// piece order), the row's maximum is a block reduction, then the codes are stored.
extern "C" __global__ void __launch_bounds__(QB) bn_tq_quantize(const void* x, int dt, i64 x_stride, i64 m, i64 k, i64 nb, i8* q, float* s) {
  __shared__ float shm[QB / 32];
  __shared__ int shn[QB / 32];
  const i64 padded = nb * 256;               // elements with codes (a multiple of 256)
  const i64 step = (i64)QB * QV;              // elements of one pass of the block
  const bool resident = padded <= step * QR;  // then the values stay in registers
  for (i64 t = blockIdx.x; t < m; t += gridDim.x) {
    const i64 base = t * x_stride;
    float mx = 0.0f;
    int nan = 0;
    float reg[QR][QV];
#pragma unroll
    for (int r = 0; r < QR; r++) {
      const i64 i0 = r * step + (i64)threadIdx.x * QV;
      if (resident && i0 < padded) tq_load8(x, dt, base, i0, k, reg[r]);
      else {
#pragma unroll
        for (int e = 0; e < QV; e++) reg[r][e] = 0.0f;
      }
    }
    if (resident) {
#pragma unroll
      for (int r = 0; r < QR; r++) tq_absmax8(reg[r], &mx, &nan);  // past the row: 0
    } else {
      tq_scan(x, dt, base, k, (i64)threadIdx.x * QV, step, &mx, &nan);
    }
    tq_block_absmax(&mx, &nan, shm, shn);  // (shm/shn are free again for the next token)
    const float sc = nan ? nanf_() : 127.0f / mx;
    const bool zero = nan || mx == 0.0f;
    if (threadIdx.x == 0) s[t] = sc;
    i8* qt = q + t * tq_row_bytes(nb);
    if (resident) {
#pragma unroll
      for (int r = 0; r < QR; r++) {
        const i64 i0 = r * step + (i64)threadIdx.x * QV;
        if (i0 < padded) *(uint2*)(qt + piece_pos(i0)) = tq_codes8(reg[r], sc, zero);
      }
    } else {
      tq_store_row(qt, x, dt, base, k, padded, (i64)threadIdx.x * QV, step, sc, zero);
    }
  }
}

// The four code words of piece `piece` of a row: "i2" rows are 64-byte blocks (one 16-byte load),
// TQ2_0 rows 66-byte blocks (2-byte aligned: 16-bit loads).
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

// Signed weights of word w at shift p: four bytes of -1, 0 or 1.
__device__ __forceinline__ int tq_signed(u32 w, int p) {
  return (int)((((w >> (2 * p)) & 0x03030303u) + 0x7f7f7f7fu) ^ 0x80808080u);
}

// A warp's work on R rows r0 .. r0 + R - 1 (those past n are skipped) for tokens t0 .. t0 + nt
// (nt <= T), in three steps so that a caller can put other work between a load and its use
// (bn_tq_gemv1 quantizes while its first weights are in flight):
//   load: the weights of U runs of 32 pieces from piece base0 (one 16-byte load a lane, row and
//         run: U·R loads in flight at once; the kernel is bound by memory latency otherwise);
//   use:  their dot products with the activations;
//   finish: the rescaled sums to out.
// ROW: one scale a row (mode 0 tensor / 1 channel); else mode 2 group scales ("i2") or mode 3 the
// blocks' own f16 scales (TQ2_0). Every lane runs the same iterations (the shuffles need the whole
// warp); pieces and rows past the end read as zero weights (code 1).
template <int T, int R, int U, bool ROW, bool SMEM = false>
struct TqWarp {
  const u8* w;
  const float* scales;
  int fmt, mode;
  i64 gb, n, nb, rb, kq, pieces, t0, r0;
  int nt, lane;
  const i8* q;
  const float* s;
  // ROW: acc holds each row's whole integer sum; else the current block's, folded into facc.
  int acc[R][T];
  float facc[R][T];
  u32 wd[U][R][4];

  __device__ __forceinline__ TqWarp(const u8* w_, const float* scales_, int fmt_, int mode_, i64 gb_, i64 n_, i64 nb_, const i8* q_, const float* s_, i64 t0_, int nt_, i64 r0_)
      : w(w_), scales(scales_), fmt(fmt_), mode(mode_), gb(gb_), n(n_), nb(nb_), t0(t0_), r0(r0_), nt(nt_), q(q_), s(s_) {
    lane = threadIdx.x & 31;
    rb = nb * (fmt == 2 ? 64 : 66);
    kq = tq_row_bytes(nb);
    pieces = nb * 4;
#pragma unroll
    for (int rr = 0; rr < R; rr++)
#pragma unroll
      for (int j = 0; j < T; j++) {
        acc[rr][j] = 0;
        facc[rr][j] = 0.0f;
      }
  }

  __device__ __forceinline__ void load(i64 base0) {
#pragma unroll
    for (int u = 0; u < U; u++) {
      const i64 piece = base0 + u * 32 + lane;
#pragma unroll
      for (int rr = 0; rr < R; rr++) {
        if (piece < pieces && r0 + rr < n) tq_words(w + (r0 + rr) * rb, fmt, piece, wd[u][rr]);
        else wd[u][rr][0] = wd[u][rr][1] = wd[u][rr][2] = wd[u][rr][3] = 0x55555555u;
      }
    }
  }

  __device__ __forceinline__ void use(i64 base0) {
#pragma unroll
    for (int u = 0; u < U; u++) {
      const i64 base = base0 + u * 32;
      const i64 piece = base + lane;
      const bool live = piece < pieces;
      const i64 b = piece >> 2;
      if (!ROW) {
#pragma unroll
        for (int rr = 0; rr < R; rr++)
#pragma unroll
          for (int j = 0; j < T; j++) acc[rr][j] = 0;
      }
#pragma unroll
      for (int p = 0; p < 4; p++) {
        int sw[R][4];
#pragma unroll
        for (int rr = 0; rr < R; rr++)
#pragma unroll
          for (int c = 0; c < 4; c++) sw[rr][c] = tq_signed(wd[u][rr][c], p);
#pragma unroll
        for (int j = 0; j < T; j++) {
          if (j < nt) {
            int4 a = make_int4(0, 0, 0, 0);
            if (live) {
              const int4* at = (const int4*)(q + (t0 + j) * kq + ((base >> 5) * 4 + p) * 512 + lane * 16);
              a = SMEM ? *at : __ldg(at);  // q in shared memory (bn_tq_gemv1) or global
            }
#pragma unroll
            for (int rr = 0; rr < R; rr++) acc[rr][j] = __dp4a(sw[rr][3], a.w, __dp4a(sw[rr][2], a.z, __dp4a(sw[rr][1], a.y, __dp4a(sw[rr][0], a.x, acc[rr][j]))));
          }
        }
      }
      if (!ROW) {
        // A block's four pieces are lanes 4i .. 4i + 3: gather the block's sum, scale it once.
#pragma unroll
        for (int rr = 0; rr < R; rr++) {
          const i64 r = r0 + rr;
          const bool on = live && (piece & 3) == 0 && r < n;
          float scale = 0.0f;
          if (on) scale = mode == 3 ? h2f(*(const u16*)(w + r * rb + b * 66 + 64)) : scales[r * (nb / gb) + b / gb];
#pragma unroll
          for (int j = 0; j < T; j++) {
            int v = acc[rr][j];
            v += __shfl_xor_sync(0xffffffffu, v, 1);
            v += __shfl_xor_sync(0xffffffffu, v, 2);
            if (on) facc[rr][j] += (float)v * scale;
          }
        }
      }
    }
  }

  // Loads and uses the runs from piece `from` to the row's end.
  __device__ __forceinline__ void stream(i64 from) {
    for (i64 base0 = from; base0 < pieces; base0 += 32 * U) {
      load(base0);
      use(base0);
    }
  }

  __device__ __forceinline__ void finish(float* out) {
#pragma unroll
    for (int rr = 0; rr < R; rr++) {
      const i64 r = r0 + rr;
      const float rs = !ROW || r >= n ? 0.0f : mode == 0 ? scales[0] : scales[r];
#pragma unroll
      for (int j = 0; j < T; j++) {
        float v;
        if (ROW) v = __fmul_rn((float)warp_sum_i(acc[rr][j]), rs);
        else v = warp_sum_f(facc[rr][j]);
        if (lane == 0 && j < nt && r < n) out[(t0 + j) * n + r] = __fdiv_rn(v, s[t0 + j]);
      }
    }
  }
};

template <int T, int R, int U, bool ROW, bool SMEM = false>
__device__ void tq_rows(const u8* w, const float* scales, int fmt, int mode, i64 gb, i64 n, i64 nb, const i8* q, const float* s, i64 t0, int nt, i64 r0, float* out) {
  TqWarp<T, R, U, ROW, SMEM> tw(w, scales, fmt, mode, gb, n, nb, q, s, t0, nt, r0);
  tw.stream(0);
  tw.finish(out);
}

template <int T, int R, int U>
__device__ __forceinline__ void tq_dispatch(const u8* w, const float* scales, int fmt, int mode, i64 gb, i64 n, i64 nb, const i8* q, const float* s, i64 m, float* out) {
  const i64 r0 = ((i64)blockIdx.x * TQ_WARPS + (threadIdx.x >> 5)) * R;
  if (r0 >= n) return;  // whole warps leave together
  const i64 chunks = (m + T - 1) / T;
  for (i64 c = blockIdx.y; c < chunks; c += gridDim.y) {
    const i64 t0 = c * T;
    const int nt = (int)(m - t0 < T ? m - t0 : T);
    if (mode < 2) tq_rows<T, R, U, true>(w, scales, fmt, mode, gb, n, nb, q, s, t0, nt, r0, out);
    else tq_rows<T, R, U, false>(w, scales, fmt, mode, gb, n, nb, q, s, t0, nt, r0, out);
  }
}

// One kernel a token count (1, 4 or 8 tokens a pass; 4 rows a warp share each activation load
// when there are several tokens), each with its own register budget: the
// one-token kernel stays small enough for full occupancy (the weights stream from memory with
// many loads in flight). Grid: x over groups of TQ_WARPS·R rows, y over chunks of tokens.
extern "C" __global__ void __launch_bounds__(32 * TQ_WARPS, 6) bn_tq_matmul1(const u8* w, const float* scales, int fmt, int mode, i64 gb, i64 n, i64 nb, const i8* q, const float* s, i64 m, float* out) {
  tq_dispatch<1, 2, 4>(w, scales, fmt, mode, gb, n, nb, q, s, m, out);
}
extern "C" __global__ void __launch_bounds__(32 * TQ_WARPS, 4) bn_tq_matmul4(const u8* w, const float* scales, int fmt, int mode, i64 gb, i64 n, i64 nb, const i8* q, const float* s, i64 m, float* out) {
  tq_dispatch<4, 4, 2>(w, scales, fmt, mode, gb, n, nb, q, s, m, out);
}
extern "C" __global__ void __launch_bounds__(32 * TQ_WARPS, 4) bn_tq_matmul8(const u8* w, const float* scales, int fmt, int mode, i64 gb, i64 n, i64 nb, const i8* q, const float* s, i64 m, float* out) {
  tq_dispatch<8, 4, 1>(w, scales, fmt, mode, gb, n, nb, q, s, m, out);
}

// One token, one launch (decoding): each block quantizes x into shared memory itself (the same
// arithmetic as bn_tq_quantize, so every block gets the same codes and scale) and then takes a
// contiguous range of rows, GEMV1_R a warp at a time. Each warp issues the loads of its first
// rows' first runs of weights before the block quantizes, so the weight stream runs under the
// quantization; the block's later rows are asked into L2 at the same time. rows_per_block is a
// multiple of 8·GEMV1_R. Dynamic shared memory: tq_row_bytes(nb) bytes of codes.
#define GEMV1_R 4
template <bool ROW>
__device__ __forceinline__ void tq_gemv1(const void* x, int dt, const u8* w, const float* scales, int fmt, int mode, i64 gb, i64 n, i64 nb, i64 k, i64 rows_per_block, float* out) {
  extern __shared__ int4 tq_dyn[];
  i8* qs = (i8*)tq_dyn;
  __shared__ float shm[8];
  __shared__ int shn[8];
  __shared__ float s_sh;
  const int warp = threadIdx.x >> 5;
  const i64 r_begin = (i64)blockIdx.x * rows_per_block;
  const i64 r_end = r_begin + rows_per_block < n ? r_begin + rows_per_block : n;
  const i64 rb = nb * (fmt == 2 ? 64 : 66);
  // Rows past the first 8·GEMV1_R (the host sends more only when there are several a block).
  const u8* later = w + (r_begin + 8 * GEMV1_R) * rb;
  const i64 bytes = (r_end - r_begin - 8 * GEMV1_R) * rb;
  for (i64 o = (i64)threadIdx.x * 128; o < bytes; o += 256 * 128) asm volatile("prefetch.global.L2 [%0];" ::"l"(later + o));
  TqWarp<1, GEMV1_R, 4, ROW, true> first(w, scales, fmt, mode, gb, n, nb, qs, &s_sh, 0, 1, r_begin + (i64)warp * GEMV1_R);
  first.load(0);
  // The token's maximum, then its codes (bn_tq_quantize's steps, 256 threads).
  float mx = 0.0f;
  int nan = 0;
  tq_scan(x, dt, 0, k, (i64)threadIdx.x * QV, 256 * QV, &mx, &nan);
  tq_block_absmax(&mx, &nan, shm, shn);
  const float sc = nan ? nanf_() : 127.0f / mx;
  const bool zero = nan || mx == 0.0f;
  tq_store_row(qs, x, dt, 0, k, nb * 256, (i64)threadIdx.x * QV, 256 * QV, sc, zero);
  if (threadIdx.x == 0) s_sh = sc;
  __syncthreads();
  first.use(0);
  first.stream(32 * 4);
  first.finish(out);
  for (i64 r0 = r_begin + (i64)(8 + warp) * GEMV1_R; r0 < r_end; r0 += 8 * GEMV1_R) tq_rows<1, GEMV1_R, 4, ROW, true>(w, scales, fmt, mode, gb, n, nb, qs, &s_sh, 0, 1, r0, out);
}

extern "C" __global__ void __launch_bounds__(256, 2) bn_tq_gemv1(const void* x, int dt, const u8* w, const float* scales, int fmt, int mode, i64 gb, i64 n, i64 nb, i64 k, i64 rows_per_block, float* out) {
  if ((i64)blockIdx.x * rows_per_block >= n) return;  // the whole block leaves
  if (mode < 2) tq_gemv1<true>(x, dt, w, scales, fmt, mode, gb, n, nb, k, rows_per_block, out);
  else tq_gemv1<false>(x, dt, w, scales, fmt, mode, gb, n, nb, k, rows_per_block, out);
}
