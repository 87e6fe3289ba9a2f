// Ternary matmul for the CUDA backend (appended to the module after nn.cu): out[t, r] = x[t] · w[r]
// for packed 2-bit ternary weights w[n, k] and float activations x[m, k], never dequantized. The
// arithmetic is zig/cpu/ternary_matmul.zig's:
//   1. bn_tq_quantize: per token, m = max|x|, s = 127 / m (NaN when x has a NaN), q = rint(clamp(x·s,
//      ±127)) as int8 (0 when m is 0 or NaN), zero-padded to whole 256-weight blocks.
//   2. bn_tq_matmul: integer dot products of q with the weights t ∈ {-1, 0, 1} (dp4a), rescaled: one
//      scale a row ("i2" with a tensor or channel scale) gives f32(isum)·scale / s exactly as on the
//      CPU; block and group scales add f32(isum_piece)·scale per 64-weight piece (the same
//      products, split and summed in another order: results agree with the CPU's to f32 rounding).
// Code layout (TQ2_0's `qs`; "i2" is the same without the f16 scale): byte h·32 + j of a block holds
// the code c = t + 1 of weight h·128 + 32·p + j in bits 2p. A lane takes a 16-byte piece of a block
// (bytes j0 .. j0 + 15, j0 = 16·(piece mod 4)); at shift p its four words hold the codes of the 16
// consecutive weights h·128 + 32·p + (j0 mod 32) .. + 15. The quantize kernel stores q in exactly
// that order ("piece order", see piece_pos), so a lane reads them as four 16-byte loads and a
// warp's load for one shift is 512 contiguous bytes. Codes become signed
// bytes with ((c + 0x7f) ^ 0x80) per byte: 0 -> -1, 1 -> 0, 2 -> 1, no borrow between bytes.

#define TQ_WARPS 4  // warps a block of the matmul kernel (small blocks spread evenly over the SMs)
#define QB 1024     // threads of the quantize kernel (one block a token)

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

// rint(clamp(x·s, ±127)) of 8 values packed as 8 bytes (0 when `zero`). The conversion rounds to
// nearest even and turns a NaN product (Inf · 0) into 0; the clamp is then on integers.
__device__ __forceinline__ uint2 tq_codes8(const float* v, float sc, bool zero) {
  u32 w[2] = {0u, 0u};
  if (!zero) {
#pragma unroll
    for (int e = 0; e < QV; e++) {
      const int c = min(max(__float2int_rn(__fmul_rn(v[e], sc)), -127), 127);
      w[e >> 2] |= ((u32)c & 0xffu) << (8 * (e & 3));
    }
  }
  return make_uint2(w[0], w[1]);
}

// Folds 8 values into a running maximum of |x|'s bit patterns: as unsigned integers these order
// like the magnitudes, and only a NaN lies above 0x7f800000 (Inf).
__device__ __forceinline__ void tq_absbits8(const float* v, u32* mb) {
#pragma unroll
  for (int e = 0; e < QV; e++) *mb = max(*mb, __float_as_uint(v[e]) & 0x7fffffffu);
}

// The block's maximum of v (any block of up to 32 warps; sh holds a value a warp). Every thread
// returns with it; sh may be reused after the call.
__device__ u32 tq_block_max(u32 v, u32* sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  if (warp == 0) {
    u32 m = lane < nw ? sh[lane] : 0u;
    for (int o = 16; o > 0; o >>= 1) m = max(m, __shfl_xor_sync(0xffffffffu, m, o));
    if (lane == 0) sh[0] = m;
  }
  __syncthreads();
  v = sh[0];
  __syncthreads();
  return v;
}

// Stores the codes of a token row (padded to `padded` elements) in piece order, 8 at a time.
// Stores the 8 codes of elements i0 .. i0 + 7 (i0 a multiple of 8) in piece order; returns their
// sum, also added (with ps) to the entry of their piece P = 4·block + 2·half + (j ≥ 16).
__device__ __forceinline__ int tq_put8(i8* qt, int* ps, i64 i0, uint2 c) {
  *(uint2*)(qt + piece_pos(i0)) = c;
  const int sum = __dp4a((int)c.y, 0x01010101, __dp4a((int)c.x, 0x01010101, 0));
  if (ps) {
    const int o = (int)(i0 & 255);
    atomicAdd(ps + (i0 >> 8) * 4 + (o >> 7) * 2 + ((o & 31) >> 4), sum);
  }
  return sum;
}

// Stores the codes of a token row (padded to `padded` elements) in piece order, 8 at a time;
// returns the sum of the codes this thread stored.
__device__ __forceinline__ int tq_store_row(i8* qt, int* ps, const void* x, int dt, i64 base, i64 k, i64 padded, i64 first, i64 step, float sc, bool zero) {
  int sum = 0;
  for (i64 i0 = first; i0 < padded; i0 += step) {
    float v[QV];
    tq_load8(x, dt, base, i0, k, v);
    sum += tq_put8(qt, ps, i0, tq_codes8(v, sc, zero));
  }
  return sum;
}

// Quantizes the token row x[base ..] (k values, zero-padded to nb·256) into qt in piece order with
// a block of NT threads and returns its scale 127 / max|x| (NaN when the row has a NaN) to every
// thread. Each thread takes runs of 8 consecutive elements (16-byte loads, one 8-byte store: 8
// consecutive elements stay adjacent in piece order); rows up to NT·8·QR elements stay in
// registers between the maximum and the codes, longer ones are read twice.
// Optional sums of the codes, read after a barrier (the kernels take Σ(c - 1)·a as Σ c·a - Σ a):
// total (shared memory) of the whole row (the tensor-core kernel), ps (tq_row_bytes(nb) / 64 ints)
// of each piece (the one-launch GEMV).
template <int NT, int QR>
__device__ __forceinline__ float tq_quantize_row(const void* x, int dt, i64 base, i64 k, i64 nb, i8* qt, int* ps, int* total, u32* sh) {
  const i64 padded = nb * 256;          // elements with codes (a multiple of 256)
  const i64 step = (i64)NT * QV;         // elements of one pass of the block
  const bool resident = padded <= step * QR;
  const i64 first = (i64)threadIdx.x * QV;
  // Zeroed before tq_block_max's barriers.
  if (total && threadIdx.x == 0) *total = 0;
  if (ps) {
    for (i64 i = threadIdx.x; i < tq_row_bytes(nb) / 64; i += NT) ps[i] = 0;
  }
  u32 mb = 0u;
  float reg[QR][QV];
#pragma unroll
  for (int r = 0; r < QR; r++) {
    const i64 i0 = r * step + first;
    if (resident && i0 < padded) tq_load8(x, dt, base, i0, k, reg[r]);  // zeros past k
    else {
#pragma unroll
      for (int e = 0; e < QV; e++) reg[r][e] = 0.0f;
    }
    tq_absbits8(reg[r], &mb);
  }
  if (!resident) {
    for (i64 i0 = first; i0 < k; i0 += step) {
      float v[QV];
      tq_load8(x, dt, base, i0, k, v);
      tq_absbits8(v, &mb);
    }
  }
  mb = tq_block_max(mb, sh);
  const bool nan = mb > 0x7f800000u;
  const float sc = nan ? nanf_() : 127.0f / __uint_as_float(mb);
  const bool zero = nan || mb == 0u;
  int sum = 0;
  if (resident) {
#pragma unroll
    for (int r = 0; r < QR; r++) {
      const i64 i0 = r * step + first;
      if (i0 < padded) sum += tq_put8(qt, ps, i0, tq_codes8(reg[r], sc, zero));
    }
  } else {
    sum = tq_store_row(qt, ps, x, dt, base, k, padded, first, step, sc, zero);
  }
  if (total) {
    sum = warp_sum_i(sum);
    if ((threadIdx.x & 31) == 0) atomicAdd(total, sum);
  }
  return sc;
}

// q is [m, tq_row_bytes(nb)] in piece order, s [m]: one block a token. With sums (the tensor-core
// path), also each token's sum of codes.
extern "C" __global__ void __launch_bounds__(QB) bn_tq_quantize(const void* x, int dt, i64 x_stride, i64 m, i64 k, i64 nb, i8* q, float* s, int* sums) {
  __shared__ u32 sh[QB / 32];
  __shared__ int total;
  for (i64 t = blockIdx.x; t < m; t += gridDim.x) {
    const float sc = tq_quantize_row<QB, 2>(x, dt, t * x_stride, k, nb, q + t * tq_row_bytes(nb), nullptr, sums ? &total : nullptr, sh);
    if (sums) {
      __syncthreads();
      if (threadIdx.x == 0) sums[t] = total;
      __syncthreads();  // total is zeroed again for the next token
    }
    if (threadIdx.x == 0) s[t] = sc;
  }
}

// The four code words of piece `piece` of a row: "i2" rows are 64-byte blocks (one 16-byte load),
// TQ2_0 rows 66-byte blocks, so a piece starts 4-byte aligned or 2 bytes past (odd blocks): four
// or five aligned 32-bit loads from the word at or before it, realigned by funnel shifts of 0 or
// 16 bits (the fifth word, needed only when shifted, still lies inside the 66-byte block).
__device__ __forceinline__ void tq_words(const u8* row, int fmt, i64 piece, u32* wd) {
  const i64 b = piece >> 2, j = (piece & 3) * 16;
  if (fmt == 2) {
    const uint4 v = *(const uint4*)(row + b * 64 + j);
    wd[0] = v.x;
    wd[1] = v.y;
    wd[2] = v.z;
    wd[3] = v.w;
  } else {
    const unsigned long long a = (unsigned long long)(row + b * 66 + j);
    const u32* p = (const u32*)(a & ~3ull);
    const unsigned sh = (unsigned)(a & 2) * 8;
    u32 x[5];
#pragma unroll
    for (int c = 0; c < 4; c++) x[c] = p[c];
    x[4] = sh ? p[4] : 0u;
#pragma unroll
    for (int c = 0; c < 4; c++) wd[c] = __funnelshift_r(x[c], x[c + 1], sh);
  }
}

// Signed weights of word w at shift p: four bytes of -1, 0 or 1.
__device__ __forceinline__ int tq_signed(u32 w, int p) {
  return (int)((((w >> (2 * p)) & 0x03030303u) + 0x7f7f7f7fu) ^ 0x80808080u);
}

// 16 bytes from shared memory (p points into it).
__device__ __forceinline__ int4 lds128(const void* p) {
  int4 v;
  const unsigned a = (unsigned)__cvta_generic_to_shared(p);
  asm volatile("ld.shared.v4.s32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(a));
  return v;
}

// An f16 value's bits as f32 (one conversion instruction; exact).
__device__ __forceinline__ float h2f_hw(u16 h) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
}

// Dot product of four unsigned bytes with four signed bytes, added to c (PTX dp4a.u32.s32).
__device__ __forceinline__ int dp4a_us(u32 a, int b, int c) {
  int d;
  asm("dp4a.u32.s32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
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
  // One token (T == 1): the codes c = t + 1 are masked in place, not shifted, so shift p leaves
  // c·4^p in each byte (at most 128: an unsigned dp4a) with an accumulator a shift, divided out
  // exactly at the end; sa is the sum of the activations seen, Σ(c - 1)·a = Σ c·a - Σ a. Two
  // instructions a code word instead of five (shift, mask, add, xor, dp4a), for R rows at once.
  int accp[R][4];
  int sa;

  __device__ __forceinline__ TqWarp(const u8* w_, const float* scales_, int fmt_, int mode_, i64 gb_, i64 n_, i64 nb_, const i8* q_, const float* s_, i64 t0_, int nt_, i64 r0_)
      : w(w_), scales(scales_), fmt(fmt_), mode(mode_), gb(gb_), n(n_), nb(nb_), t0(t0_), r0(r0_), nt(nt_), q(q_), s(s_) {
    lane = threadIdx.x & 31;
    rb = nb * (fmt == 2 ? 64 : 66);
    kq = tq_row_bytes(nb);
    pieces = nb * 4;
    sa = 0;
#pragma unroll
    for (int rr = 0; rr < R; rr++) {
#pragma unroll
      for (int j = 0; j < T; j++) {
        acc[rr][j] = 0;
        facc[rr][j] = 0.0f;
      }
#pragma unroll
      for (int p = 0; p < 4; p++) accp[rr][p] = 0;
    }
  }

  // Σ(c - 1)·a of row rr from the per-shift sums (T == 1).
  __device__ __forceinline__ int masked_sum(int rr) const {
    return accp[rr][0] + (accp[rr][1] >> 2) + (accp[rr][2] >> 4) + (accp[rr][3] >> 6) - sa;
  }

  // The dot products of one run (u) with one token (T == 1), codes masked in place. SMEM (the
  // one-launch GEMV): q in shared memory, followed by each piece's sum of codes.
  __device__ __forceinline__ void use1(int u, i64 base, bool live) {
    if (!ROW) {
      sa = 0;
#pragma unroll
      for (int rr = 0; rr < R; rr++)
#pragma unroll
        for (int p = 0; p < 4; p++) accp[rr][p] = 0;
    }
    if (SMEM && live) sa += ((const int*)(q + kq))[base + lane];
#pragma unroll
    for (int p = 0; p < 4; p++) {
      int4 a = make_int4(0, 0, 0, 0);
      if (live) {
        const i8* at = q + t0 * kq + ((base >> 5) * 4 + p) * 512 + lane * 16;
        a = SMEM ? lds128(at) : __ldg((const int4*)at);
      }
      if (!SMEM) sa = __dp4a(a.w, 0x01010101, __dp4a(a.z, 0x01010101, __dp4a(a.y, 0x01010101, __dp4a(a.x, 0x01010101, sa))));
      const u32 mask = 0x03030303u << (2 * p);
#pragma unroll
      for (int rr = 0; rr < R; rr++)
        accp[rr][p] = dp4a_us(wd[u][rr][3] & mask, a.w, dp4a_us(wd[u][rr][2] & mask, a.z, dp4a_us(wd[u][rr][1] & mask, a.y, dp4a_us(wd[u][rr][0] & mask, a.x, accp[rr][p]))));
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
      if (T == 1) {
        use1(u, base, live);
        if (!ROW) {
#pragma unroll
          for (int rr = 0; rr < R; rr++) acc[rr][0] = masked_sum(rr);
        }
      } else {
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
              a = SMEM ? lds128(at) : __ldg(at);
            }
#pragma unroll
            for (int rr = 0; rr < R; rr++) acc[rr][j] = __dp4a(sw[rr][3], a.w, __dp4a(sw[rr][2], a.z, __dp4a(sw[rr][1], a.y, __dp4a(sw[rr][0], a.x, acc[rr][j]))));
          }
        }
      }
      }
      if (!ROW) {
        // Each lane scales its own piece's sum by its block's scale (the final warp sum adds the
        // four pieces of a block with everything else): no shuffles a block.
#pragma unroll
        for (int rr = 0; rr < R; rr++) {
          const i64 r = r0 + rr;
          const bool on = live && r < n;
          float scale = 0.0f;
          if (on) scale = mode == 3 ? h2f_hw(*(const u16*)(w + r * rb + b * 66 + 64)) : scales[r * (nb / gb) + b / gb];
#pragma unroll
          for (int j = 0; j < T; j++) facc[rr][j] = fmaf((float)acc[rr][j], scale, facc[rr][j]);
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
        if (ROW) v = __fmul_rn((float)warp_sum_i(T == 1 ? masked_sum(rr) : acc[rr][j]), rs);
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

// ---- Tensor cores (sm_80 and later): mma m16n8k32, codes as u8, activations as s8 -------------
// A warp multiplies a tile of 16 weight rows with up to 8 tokens. Any k order serves an mma as long
// as A and B agree, so each lane's fragments are the words it loads: lane 4g + i (g = 0..7,
// i = 0..3) loads bytes 16i .. 16i + 15 (piece 4b + i) of block b of rows g and g + 8, and token g's
// 16 activations of that piece and shift p (one 16-byte load from q in piece order). At shift p a
// code word masked in place holds c·4^p (c = t + 1, at most 128: unsigned) for four consecutive
// weights; two mmas take the four words (A = {w0(g), w0(g + 8), w1(g), w1(g + 8)}, B = {a.x, a.y},
// then w2, w3 with a.z, a.w), one accumulator tile a shift. So a code word costs one mask on the
// integer pipe (the dp4a kernels spend two to five instructions and a dp4a per word and row) and
// eight tokens cost what one does. Results: lane 4g + i holds rows g, g + 8 for tokens 2i, 2i + 1.
// Σ(c - 1)·a = Σ_p (D_p >> 2p) - Σ a, the integer that the CPU computes for the same row and token.

__device__ __forceinline__ void mma_u8s8(int (&d)[4], u32 a0, u32 a1, u32 a2, u32 a3, int b0, int b1) {
#if __CUDA_ARCH__ >= 800
  asm("mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#else
  __trap();  // the host sends older devices to the dp4a kernels
#endif
}

#define MMA_U 4       // blocks whose weights a warp loads at once
#define MMA_FOLD 1024  // blocks between folds of the shift accumulators (each grows by < 2^20 a block)

// One warp's 16 rows r0 .. r0 + 15 and tokens t0 .. t0 + nt - 1 (nt <= 8); q is
// [m, tq_row_bytes(nb)] in global memory. ROW: one scale a row, applied once at the end; else
// block (TQ2_0) or group scales, applied a block at a time.
template <bool ROW>
struct TqTile {
  const u8* w;
  const float* scales;
  int fmt, mode, g, i, nt;
  i64 gb, n, nb, rb, kq, t0, r0;
  const i8* q;
  int d[4][4];    // shift p: the mma accumulator fragment
  int comb[4];    // ROW: Σ_p d[p] >> 2p, folded every MMA_FOLD blocks
  float facc[4];  // else: Σ_blocks (isum - Σa)·scale

  __device__ __forceinline__ TqTile(const u8* w_, const float* scales_, int fmt_, int mode_, i64 gb_, i64 n_, i64 nb_, const i8* q_, i64 t0_, int nt_, i64 r0_)
      : w(w_), scales(scales_), fmt(fmt_), mode(mode_), nt(nt_), gb(gb_), n(n_), nb(nb_), t0(t0_), r0(r0_), q(q_) {
    const int lane = threadIdx.x & 31;
    g = lane >> 2;
    i = lane & 3;
    rb = nb * (fmt == 2 ? 64 : 66);
    kq = tq_row_bytes(nb);
#pragma unroll
    for (int o = 0; o < 4; o++) {
      comb[o] = 0;
      facc[o] = 0.0f;
#pragma unroll
      for (int p = 0; p < 4; p++) d[p][o] = 0;
    }
  }

  __device__ __forceinline__ void load(i64 b, u32 (&wv)[2][4]) const {
#pragma unroll
    for (int h = 0; h < 2; h++) {
      const i64 r = r0 + g + 8 * h;
      if (r < n) tq_words(w + r * rb, fmt, b * 4 + i, wv[h]);
      else wv[h][0] = wv[h][1] = wv[h][2] = wv[h][3] = 0x55555555u;  // zero weights
    }
  }

  __device__ __forceinline__ void fold() {
#pragma unroll
    for (int o = 0; o < 4; o++) {
      comb[o] += d[0][o] + (d[1][o] >> 2) + (d[2][o] >> 4) + (d[3][o] >> 6);
#pragma unroll
      for (int p = 0; p < 4; p++) d[p][o] = 0;
    }
  }

  __device__ __forceinline__ void use(i64 b, const u32 (&wv)[2][4]) {
    const i64 P = b * 4 + i;
    const i64 at = ((P >> 5) * 4) * 512 + (P & 31) * 16;
    int sa = 0;
#pragma unroll
    for (int p = 0; p < 4; p++) {
      int4 a = make_int4(0, 0, 0, 0);
      if (g < nt) a = __ldg((const int4*)(q + (t0 + g) * kq + at + p * 512));
      if (!ROW) sa = __dp4a(a.w, 0x01010101, __dp4a(a.z, 0x01010101, __dp4a(a.y, 0x01010101, __dp4a(a.x, 0x01010101, sa))));
      const u32 m = 0x03030303u << (2 * p);
      mma_u8s8(d[p], wv[0][0] & m, wv[1][0] & m, wv[0][1] & m, wv[1][1] & m, a.x, a.y);
      mma_u8s8(d[p], wv[0][2] & m, wv[1][2] & m, wv[0][3] & m, wv[1][3] & m, a.z, a.w);
    }
    if (!ROW) {
      // The block's Σa of token g (lanes 4g .. 4g + 3 hold its four pieces), then of this lane's
      // result tokens 2i and 2i + 1; its rows' scales for block b.
      sa += __shfl_xor_sync(0xffffffffu, sa, 1);
      sa += __shfl_xor_sync(0xffffffffu, sa, 2);
      const int s0 = __shfl_sync(0xffffffffu, sa, 8 * i), s1 = __shfl_sync(0xffffffffu, sa, 8 * i + 4);
      float sc[2];
#pragma unroll
      for (int h = 0; h < 2; h++) {
        const i64 r = r0 + g + 8 * h;
        sc[h] = r >= n ? 0.0f : mode == 3 ? h2f(*(const u16*)(w + r * rb + b * 66 + 64)) : scales[r * (nb / gb) + b / gb];
      }
#pragma unroll
      for (int o = 0; o < 4; o++) {
        const int v = d[0][o] + (d[1][o] >> 2) + (d[2][o] >> 4) + (d[3][o] >> 6) - ((o & 1) ? s1 : s0);
        facc[o] += (float)v * sc[o >> 1];
#pragma unroll
        for (int p = 0; p < 4; p++) d[p][o] = 0;
      }
    }
  }

  // The row's blocks: weights of MMA_U blocks loaded, then used; the shift sums folded every
  // MMA_FOLD blocks.
  __device__ __forceinline__ void run() {
    for (i64 c0 = 0; c0 < nb; c0 += MMA_FOLD) {
      const i64 c1 = c0 + MMA_FOLD < nb ? c0 + MMA_FOLD : nb;
      for (i64 b0 = c0; b0 < c1; b0 += MMA_U) {
        u32 wv[MMA_U][2][4];
#pragma unroll
        for (int u = 0; u < MMA_U; u++)
          if (b0 + u < c1) load(b0 + u, wv[u]);
#pragma unroll
        for (int u = 0; u < MMA_U; u++)
          if (b0 + u < c1) use(b0 + u, wv[u]);
      }
      if (ROW) fold();
    }
  }

  // Writes this lane's four results: ROW f32(isum - Σa)·scale / s exactly as the CPU; else Σ / s.
  // tot[t] is token t's Σa (ROW).
  __device__ __forceinline__ void finish(const float* s, const int* tot, float* out) const {
#pragma unroll
    for (int o = 0; o < 4; o++) {
      const int j = 2 * i + (o & 1);
      const i64 r = r0 + g + 8 * (o >> 1);
      if (j >= nt || r >= n) continue;
      const float x = ROW ? __fmul_rn((float)(comb[o] - tot[t0 + j]), mode == 0 ? scales[0] : scales[r]) : facc[o];
      out[(t0 + j) * n + r] = __fdiv_rn(x, s[t0 + j]);
    }
  }
};

// Several tokens after bn_tq_quantize: blocks of TQ_WARPS warps, one 16-row tile each; grid y over
// chunks of 8 tokens. (For one token the dp4a kernels are faster: a 16-row tile leaves too few
// warps to keep the weight stream busy, and 7 of the 8 token columns would be idle.)
template <bool ROW>
__device__ __forceinline__ void tq_mma(const u8* w, const float* scales, int fmt, int mode, i64 gb, i64 n, i64 nb, const i8* q, const float* s, const int* sums, i64 m, float* out) {
  const i64 r0 = ((i64)blockIdx.x * TQ_WARPS + (threadIdx.x >> 5)) * 16;
  if (r0 >= n) return;  // whole warps leave together (no barrier follows)
  for (i64 t0 = (i64)blockIdx.y * 8; t0 < m; t0 += (i64)gridDim.y * 8) {
    TqTile<ROW> tile(w, scales, fmt, mode, gb, n, nb, q, t0, (int)(m - t0 < 8 ? m - t0 : 8), r0);
    tile.run();
    tile.finish(s, sums, out);
  }
}

extern "C" __global__ void __launch_bounds__(32 * TQ_WARPS, 4) bn_tq_mma(const u8* w, const float* scales, int fmt, int mode, i64 gb, i64 n, i64 nb, const i8* q, const float* s, const int* sums, i64 m, float* out) {
  if (mode < 2) tq_mma<true>(w, scales, fmt, mode, gb, n, nb, q, s, sums, m, out);
  else tq_mma<false>(w, scales, fmt, mode, gb, n, nb, q, s, sums, m, out);
}

// One token, one launch (decoding): each block quantizes x into shared memory itself (the same
// arithmetic as bn_tq_quantize, so every block gets the same codes and scale) and then takes a
// contiguous range of rows, GEMV1_R a warp at a time (dp4a, codes masked in place). Each warp
// issues the loads of its first rows' weights before anything else: launched as a programmatic
// dependent (sm_90), a block starts while the previous kernel drains and waits for it only
// before reading x, so the weight stream runs under the previous kernel's tail and under the
// quantization. One block of 16 warps an SM (not two of 8: half the repeated quantization, and
// 8192 values stay in registers while it runs). rows_per_block is a multiple of
// GEMV1_WARPS·GEMV1_R. Dynamic shared memory: tq_row_bytes(nb) bytes of codes, then
// tq_row_bytes(nb) / 64 ints: each piece's sum of codes.
#define GEMV1_R 4
#define GEMV1_WARPS 16
template <bool ROW>
__device__ __forceinline__ void tq_gemv1(const void* x, int dt, const u8* w, const float* scales, int fmt, int mode, i64 gb, i64 n, i64 nb, i64 k, i64 rows_per_block, float* out) {
  extern __shared__ int4 tq_dyn[];
  i8* qs = (i8*)tq_dyn;
  __shared__ u32 sh[GEMV1_WARPS];
  __shared__ float s_sh;
  const int warp = threadIdx.x >> 5;
  const i64 group = GEMV1_WARPS * GEMV1_R;  // rows of one pass of the block
  const i64 r_begin = (i64)blockIdx.x * rows_per_block;
  const i64 r_end = r_begin + rows_per_block < n ? r_begin + rows_per_block : n;
  TqWarp<1, GEMV1_R, 4, ROW, true> first(w, scales, fmt, mode, gb, n, nb, qs, &s_sh, 0, 1, r_begin + (i64)warp * GEMV1_R);
  first.load(0);
#if __CUDA_ARCH__ >= 900
  // The weights are never written by a kernel: only x and out wait for the previous one.
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
  const float sc = tq_quantize_row<32 * GEMV1_WARPS, 2>(x, dt, 0, k, nb, qs, (int*)(qs + tq_row_bytes(nb)), nullptr, sh);
  if (threadIdx.x == 0) s_sh = sc;
  __syncthreads();
  first.use(0);
  first.stream(32 * 4);
  first.finish(out);
  for (i64 r0 = r_begin + group + (i64)warp * GEMV1_R; r0 < r_end; r0 += group) tq_rows<1, GEMV1_R, 4, ROW, true>(w, scales, fmt, mode, gb, n, nb, qs, &s_sh, 0, 1, r0, out);
}

extern "C" __global__ void __launch_bounds__(32 * GEMV1_WARPS, 1) bn_tq_gemv1(const void* x, int dt, const u8* w, const float* scales, int fmt, int mode, i64 gb, i64 n, i64 nb, i64 k, i64 rows_per_block, float* out) {
  if ((i64)blockIdx.x * rows_per_block >= n) return;  // the whole block leaves
  if (mode < 2) tq_gemv1<true>(x, dt, w, scales, fmt, mode, gb, n, nb, k, rows_per_block, out);
  else tq_gemv1<false>(x, dt, w, scales, fmt, mode, gb, n, nb, k, rows_per_block, out);
}
