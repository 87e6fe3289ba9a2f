//! Ternary matmul: out[M, N] = x[M, K] @ wᵀ with w[N, K] ternary and packed ("i2", TQ2_0 or
//! TQ1_0), never dequantized. Each token (row of x) is quantized to int8 first (absmax: m =
//! max|x|, s = 127/m, q = rint(x·s) clamped to ±127), then every output is an integer dot
//! product of the int8 activations with the 2-bit codes c = t + 1 ∈ {0, 1, 2}, corrected by the
//! activations' sum (Σ t·q = Σ c·q − Σ q), and rescaled once per scale segment:
//!
//!     out[t, r] = (Σ_seg f32(isum(t, r, seg)) · scale(r, seg)) / s_t      (segments in order)
//!
//! A segment is the run of 256-weight blocks sharing one weight scale: the whole row for "i2"
//! with a per-tensor or per-channel scale, `group / 256` blocks for "i2" with group scales, one
//! block for TQ2_0/TQ1_0 (the block's f16 `d`). Integer sums are exact, and the float steps are
//! the same at every level in the same order, so results are bit-identical across ISA levels.
//!
//! Layout of the codes. "i2" is TQ2_0's `qs` without the scale: a 256-weight block is 64 bytes,
//! byte h·32 + m holding weights h·128 + n·32 + m in bits 2n (n = 0..3). A vector of W bytes at
//! offset c·W of a block, shifted right by 2n and masked, gives W codes whose weights are
//! scattered in a fixed pattern; the activations of each token are stored once in exactly that
//! pattern (`permute`), so the inner loop is a load, a shift and a multiply-add for 4·W weights.
//! TQ1_0 blocks are read in place: the 52 bytes of base-3 digits as one 64-lane row, each digit
//! peeled off with two adds and two compares, against activations permuted for that layout.
//!
//! The multiply-add: `vpdpbusd` (AVX-512 VNNI, AVX-VNNI), `sdot` (NEON dot product), else
//! `pmaddubsw` into i16 (the codes are ≤ 3 and |q| ≤ 127, so 16 such steps cannot overflow) and
//! one `pmaddwd` a block; the scalar level (and NEON without dot product) uses plain vectors.
//! Threads take tiles of rows; each tile walks every token of the call.
const std = @import("std");
const builtin = @import("builtin");
const dt = @import("dtype.zig");
const args = @import("args.zig");
const Parallel = @import("parallel.zig").Parallel;
const tp = @import("ternary_pack.zig");

const block_weights = 256;
const code_bytes = 64; // bytes of 2-bit codes in a block

/// The instruction set one instantiation of the kernel uses.
pub const Isa = enum { scalar, sse, avx2, avx2_vnni, avx512, avx512_vnni, neon, neon_dot };

/// Picks the kernel for this level (`vbits`) and, when `a.dot_ext` is set (the engine checked the
/// CPU), the fused dot-product instructions.
pub fn ternaryMatmul(comptime vbits: u32, par: *const Parallel, a: *const args.TernaryMatmulArgs) u32 {
    const ext = a.dot_ext != 0;
    if (vbits == 0) return run(.scalar, par, a);
    switch (builtin.cpu.arch) {
        .x86_64 => return switch (vbits) {
            512 => if (ext) run(.avx512_vnni, par, a) else run(.avx512, par, a),
            256 => if (ext) run(.avx2_vnni, par, a) else run(.avx2, par, a),
            else => run(.sse, par, a),
        },
        .aarch64 => return if (ext) run(.neon_dot, par, a) else run(.neon, par, a),
        else => return run(.scalar, par, a),
    }
}

/// Vector width in bytes of an ISA.
fn widthOf(comptime isa: Isa) usize {
    return switch (isa) {
        .avx512, .avx512_vnni => 64,
        .avx2, .avx2_vnni => 32,
        else => 16,
    };
}

/// The integer multiply-add of one ISA: `step` adds Σ_{j<4} u[4i+j]·s[4i+j] into lane i (into the
/// i16 partial sums first where the ISA has no fused instruction; `flush` widens them).
fn Dot(comptime isa: Isa) type {
    return struct {
        pub const W = widthOf(isa);
        pub const L = W / 4;
        pub const VU = @Vector(W, u8);
        pub const VS = @Vector(W, i8);
        pub const V32 = @Vector(L, i32);
        pub const V16 = @Vector(W / 2, i16);
        pub const fused = switch (isa) {
            .avx512_vnni, .avx2_vnni, .neon_dot => true,
            else => false,
        };

        pub inline fn step(acc: *V32, acc16: *V16, u: VU, s: VS) void {
            switch (isa) {
                .avx512_vnni => acc.* = asm ("vpdpbusd %[s], %[u], %[acc]"
                    : [acc] "=v" (-> V32),
                    : [a] "0" (acc.*),
                      [u] "v" (u),
                      [s] "v" (s),
                ),
                .avx2_vnni => acc.* = asm ("{vex} vpdpbusd %[s], %[u], %[acc]"
                    : [acc] "=v" (-> V32),
                    : [a] "0" (acc.*),
                      [u] "v" (u),
                      [s] "v" (s),
                ),
                .neon_dot => acc.* = asm (".arch_extension dotprod\n sdot %[acc].4s, %[u].16b, %[s].16b"
                    : [acc] "=w" (-> V32),
                    : [a] "0" (acc.*),
                      [u] "w" (@as(VS, @bitCast(u))),
                      [s] "w" (s),
                ),
                .avx512, .avx2 => acc16.* +%= asm ("vpmaddubsw %[s], %[u], %[r]"
                    : [r] "=v" (-> V16),
                    : [u] "v" (u),
                      [s] "v" (s),
                ),
                .sse => acc16.* +%= asm ("pmaddubsw %[s], %[r]"
                    : [r] "=x" (-> V16),
                    : [u] "0" (u),
                      [s] "x" (s),
                ),
                .neon, .scalar => {
                    const p = @as(@Vector(W, i16), u) * @as(@Vector(W, i16), s);
                    acc16.* +%= pairSum(W, i16, p);
                },
            }
        }

        /// Widens the i16 partial sums into the i32 accumulator and clears them.
        pub inline fn flush(acc: *V32, acc16: *V16) void {
            if (fused) return;
            switch (isa) {
                .avx512, .avx2 => acc.* +%= asm ("vpmaddwd %[o], %[a], %[r]"
                    : [r] "=v" (-> V32),
                    : [a] "v" (acc16.*),
                      [o] "v" (@as(V16, @splat(1))),
                ),
                .sse => acc.* +%= asm ("pmaddwd %[o], %[r]"
                    : [r] "=x" (-> V32),
                    : [a] "0" (acc16.*),
                      [o] "x" (@as(V16, @splat(1))),
                ),
                else => acc.* +%= pairSum(W / 2, i32, @as(@Vector(W / 2, i32), acc16.*)),
            }
            acc16.* = @splat(0);
        }
    };
}

/// Sums adjacent pairs: r[i] = v[2i] + v[2i+1], in T.
inline fn pairSum(comptime n: usize, comptime T: type, v: anytype) @Vector(n / 2, T) {
    const even: @Vector(n / 2, T) = @shuffle(T, @as(@Vector(n, T), v), undefined, stride2(n / 2, 0));
    const odd: @Vector(n / 2, T) = @shuffle(T, @as(@Vector(n, T), v), undefined, stride2(n / 2, 1));
    return even +% odd;
}

/// r[i] = Σ lanes of v[i] for 4 vectors of L ≥ 4 lanes: a transpose-and-add tree (about a third
/// of four separate reductions' instructions; a tq block ends with one for every row tile).
pub inline fn hsum4(comptime L: usize, v: [4]@Vector(L, i32)) @Vector(4, i32) {
    const h = L / 2;
    const q = L / 4;
    // Rows 0, 1 (and 2, 3) folded into one vector: row a in lanes [0, h), row b in [h, L).
    const fa = comptime foldMasks(L, h, false);
    const fb = comptime foldMasks(L, h, true);
    const x = @shuffle(i32, v[0], v[1], fa) +% @shuffle(i32, v[0], v[1], fb);
    const y = @shuffle(i32, v[2], v[3], fa) +% @shuffle(i32, v[2], v[3], fb);
    // Then all four rows, q lanes each.
    const ga = comptime blk: {
        var m: [L]i32 = undefined;
        for (0..q) |i| {
            m[i] = i;
            m[q + i] = 2 * q + i;
            m[2 * q + i] = ~@as(i32, @intCast(i));
            m[3 * q + i] = ~@as(i32, @intCast(2 * q + i));
        }
        break :blk m;
    };
    const gb = comptime blk: {
        var m: [L]i32 = undefined;
        for (0..q) |i| {
            m[i] = q + i;
            m[q + i] = 3 * q + i;
            m[2 * q + i] = ~@as(i32, @intCast(q + i));
            m[3 * q + i] = ~@as(i32, @intCast(3 * q + i));
        }
        break :blk m;
    };
    return groupFold(L, @shuffle(i32, x, y, ga) +% @shuffle(i32, x, y, gb));
}

/// Masks folding two vectors: lanes [0, h) (second: [h, 2h)) of a, then the same of b.
fn foldMasks(comptime L: usize, comptime h: usize, comptime second: bool) [L]i32 {
    var m: [L]i32 = undefined;
    const off: usize = if (second) h else 0;
    for (0..h) |i| {
        m[i] = @intCast(off + i);
        m[h + i] = ~@as(i32, @intCast(off + i));
    }
    return m;
}

/// Four groups of n / 4 lanes summed within each group.
inline fn groupFold(comptime n: usize, z: @Vector(n, i32)) @Vector(4, i32) {
    if (n == 4) return z;
    const g = n / 4;
    const a = comptime blk: {
        var m: [n / 2]i32 = undefined;
        for (0..4) |k| for (0..g / 2) |i| {
            m[k * (g / 2) + i] = @intCast(k * g + i);
        };
        break :blk m;
    };
    const b = comptime blk: {
        var m: [n / 2]i32 = undefined;
        for (0..4) |k| for (0..g / 2) |i| {
            m[k * (g / 2) + i] = @intCast(k * g + g / 2 + i);
        };
        break :blk m;
    };
    return groupFold(n / 2, @shuffle(i32, z, undefined, a) +% @shuffle(i32, z, undefined, b));
}

/// The shuffle mask {first, first + 2, first + 4, ...} of length h.
fn stride2(comptime h: usize, comptime first: i32) [h]i32 {
    var e: [h]i32 = undefined;
    for (&e, 0..) |*x, i| x.* = 2 * @as(i32, @intCast(i)) + first;
    return e;
}

/// Register tile (rows × tokens) of an ISA: one token for GEMV, several for GEMM.
fn tileRows(comptime isa: Isa, comptime gemv: bool) usize {
    return switch (isa) {
        .scalar => 1,
        .avx512_vnni, .neon_dot => 4,
        else => if (gemv) 4 else 2,
    };
}

fn tileTokens(comptime isa: Isa, comptime gemv: bool) usize {
    if (gemv) return 1;
    return switch (isa) {
        .scalar => 1,
        .avx2, .sse => 2,
        else => 4,
    };
}

// ---- activations ------------------------------------------------------------------------------

/// Where weight `k` (0..256) of a block sits in the permuted activations of width W: the vector at
/// offset c·W of the block's codes, shifted by 2n, holds weights h·128 + n·32 + m for the bytes
/// b = c·W + i (h = b / 32, m = b % 32), consumed in the order (c, n, i).
fn permIndex(comptime W: usize, k: usize) usize {
    const h = k / 128;
    const n = (k % 128) / 32;
    const m = k % 32;
    const b = h * 32 + m;
    const c = b / W;
    const i = b % W;
    return (c * 4 + n) * W + i;
}

/// Bytes of permuted activations a block: 256, or 320 for TQ1_0 (5 digits × 64 lanes, 64 of them
/// padding that multiplies zero).
fn xBlockBytes(comptime f: args.TernaryFormat) usize {
    return if (f == .tq1_0) 5 * code_bytes else block_weights;
}

/// TQ1_0 read in place: the block's first 52 bytes (qs then qh) as 64 lanes (12 zero), digit n
/// (most significant first) of lane L is weight n·32 + L (L < 32), 160 + n·16 + (L − 32)
/// (L < 48), 240 + n·4 + (L − 48) (L < 52, n < 4), else none. Lanes go in vectors of W.
fn tq1Weight(L: usize, n: usize) ?usize {
    if (L < 32) return n * 32 + L;
    if (L < 48) return 160 + n * 16 + (L - 32);
    if (L < 52 and n < 4) return 240 + n * 4 + (L - 48);
    return null;
}

const no_weight: u16 = 0xFFFF;

/// For each byte of a block's permuted activations, the weight (0..256) it holds, or no_weight.
fn permTable(comptime W: usize, comptime f: args.TernaryFormat) [xBlockBytes(f)]u16 {
    @setEvalBranchQuota(100_000);
    var t: [xBlockBytes(f)]u16 = @splat(no_weight);
    if (f == .tq1_0) {
        for (0..code_bytes / W) |v| for (0..5) |n| for (0..W) |i| {
            if (tq1Weight(v * W + i, n)) |k| t[(v * 5 + n) * W + i] = k;
        };
    } else {
        for (0..block_weights) |k| t[permIndex(W, k)] = k;
    }
    return t;
}

/// Quantizes token rows [b, e) of x to int8 in the kernel's order. Per token: q (kp bytes, zero
/// padded), the sum of q per block, and s = 127 / max|x| (NaN when x has a NaN: then q = 0).
fn quantizeTokens(comptime W: usize, comptime f: args.TernaryFormat, comptime d: dt.DType, a: *const args.TernaryMatmulArgs, ws: Workspace, b: usize, e: usize) void {
    const perm = comptime permTable(W, f);
    const xb = comptime xBlockBytes(f);
    const X = dt.Storage(d);
    const V = 16;
    const F = @Vector(V, f32);
    const nb = ws.nb;
    const k = a.k;
    var tmp: [block_weights]i8 align(64) = undefined;
    for (b..e) |t| {
        const x: [*]const X = @as([*]const X, @ptrCast(@alignCast(a.x))) + t * a.x_stride;
        var mx: F = @splat(0);
        var nan = false;
        var i: usize = 0;
        while (i + V <= k) : (i += V) {
            const v = load(d, V, x + i);
            nan = nan or @reduce(.Or, v != v);
            mx = @max(mx, @abs(v));
        }
        var m = @reduce(.Max, mx);
        while (i < k) : (i += 1) {
            const v = dt.convert(.f32, d, x[i]);
            nan = nan or v != v;
            m = @max(m, @abs(v));
        }
        const s: f32 = if (nan) std.math.nan(f32) else 127.0 / m;
        const zero = nan or m == 0;
        ws.s[t] = s;
        const q = ws.q + t * ws.kx;
        for (0..nb) |blk| {
            var sum: i32 = 0;
            const base = blk * block_weights;
            const len = @min(block_weights, k -| base);
            if (zero or len == 0) {
                @memset(q[blk * xb ..][0..xb], 0);
                ws.xsum[t * nb + blk] = 0;
                continue;
            }
            var j: usize = 0;
            while (j + V <= len) : (j += V) {
                const r = quant(V, load(d, V, x + base + j), s);
                tmp[j..][0..V].* = r;
                sum += @reduce(.Add, @as(@Vector(V, i32), r));
            }
            while (j < len) : (j += 1) {
                const r = quant(1, .{dt.convert(.f32, d, x[base + j])}, s);
                tmp[j] = r[0];
                sum += r[0];
            }
            @memset(tmp[len..], 0);
            for (perm, 0..) |src, p| q[blk * xb + p] = if (src == no_weight) 0 else tmp[src];
            ws.xsum[t * nb + blk] = sum;
        }
    }
}

inline fn load(comptime d: dt.DType, comptime V: usize, p: [*]const dt.Storage(d)) @Vector(V, f32) {
    var out: @Vector(V, f32) = undefined;
    inline for (0..V) |j| out[j] = dt.convert(.f32, d, p[j]);
    return out;
}

/// rint(clamp(x·s, ±127)) as i8; a NaN product (Inf·0) gives 0.
inline fn quant(comptime V: usize, x: @Vector(V, f32), s: f32) @Vector(V, i8) {
    var v = x * @as(@Vector(V, f32), @splat(s));
    v = @select(f32, v != v, @as(@Vector(V, f32), @splat(0)), v);
    v = @min(@max(v, @as(@Vector(V, f32), @splat(-127))), @as(@Vector(V, f32), @splat(127)));
    // |v| ≤ 127: adding and subtracting 1.5·2²³ rounds half to even.
    const magic: @Vector(V, f32) = @splat(12582912.0);
    const r = (v + magic) - magic;
    return @intCast(@as(@Vector(V, i32), @intFromFloat(r)));
}

// ---- the kernel ---------------------------------------------------------------------------------

const Workspace = struct {
    q: [*]align(64) i8,
    xsum: [*]i32,
    s: [*]f32,
    nb: usize,
    kx: usize, // bytes of a token's permuted activations
};

/// Scratch bytes of a call: int8 activations, block sums, token scales.
fn workspaceBytes(m: usize, nb: usize, xb: usize) usize {
    return m * nb * xb + std.mem.alignForward(usize, m * nb * 4, 64) + m * 4;
}

fn run(comptime isa: Isa, par: *const Parallel, a: *const args.TernaryMatmulArgs) u32 {
    return switch (a.format) {
        inline else => |f| runFormat(isa, f, par, a),
    };
}

fn runFormat(comptime isa: Isa, comptime f: args.TernaryFormat, par: *const Parallel, a: *const args.TernaryMatmulArgs) u32 {
    const D = Dot(isa);
    const nb = (a.k + block_weights - 1) / block_weights;
    const kx = nb * xBlockBytes(f);
    const raw = par.alloc(u8, workspaceBytes(a.m, nb, xBlockBytes(f))) orelse return 1;
    defer par.free(raw);
    const qbytes = a.m * kx;
    const ws: Workspace = .{
        .q = @ptrCast(raw.ptr),
        .xsum = @ptrCast(@alignCast(raw.ptr + qbytes)),
        .s = @ptrCast(@alignCast(raw.ptr + qbytes + std.mem.alignForward(usize, a.m * nb * 4, 64))),
        .nb = nb,
        .kx = kx,
    };
    const QCtx = struct {
        a: *const args.TernaryMatmulArgs,
        ws: Workspace,
        fn task(self: *const @This(), b: usize, e: usize) void {
            switch (self.a.x_dtype) {
                inline .f32, .f16, .bf16 => |d| quantizeTokens(D.W, f, d, self.a, self.ws, b, e),
                else => unreachable, // the door refuses other dtypes
            }
        }
    };
    const qctx: QCtx = .{ .a = a, .ws = ws };
    par.run(a.m, @max(1, 16384 / @max(a.k, 1)), &qctx, QCtx.task);
    if (a.m == 1) rows(isa, f, true, par, a, ws) else rows(isa, f, false, par, a, ws);
    return 0;
}

fn rows(comptime isa: Isa, comptime f: args.TernaryFormat, comptime gemv: bool, par: *const Parallel, a: *const args.TernaryMatmulArgs, ws: Workspace) void {
    const R = comptime tileRows(isa, gemv);
    const T = comptime tileTokens(isa, gemv);
    const Ctx = struct {
        a: *const args.TernaryMatmulArgs,
        ws: Workspace,
        fn task(self: *const @This(), b: usize, e: usize) void {
            const n = self.a.n;
            var r = b * R;
            const r_end = @min(e * R, n);
            while (r < r_end) : (r += R) {
                var t: usize = 0;
                while (t < self.a.m) : (t += T) tile(isa, f, R, T, self.a, self.ws, r, @min(R, n - r), t, @min(T, self.a.m - t));
            }
        }
    };
    const ctx: Ctx = .{ .a = a, .ws = ws };
    const tiles = (a.n + R - 1) / R;
    // About 64K weights of work a chunk, so small products stay on one thread.
    const grain = @max(1, (65536 / @max(a.k * a.m, 1)) / R);
    par.run(tiles, grain, &ctx, Ctx.task);
}

/// Row bytes of a format: `nb` blocks.
pub fn rowBytes(f: args.TernaryFormat, nb: usize) usize {
    return nb * tp.blockBytes(f);
}

/// The block scale `d` of a TQ block (f16 after the codes).
inline fn blockD(comptime f: args.TernaryFormat, blk: [*]const u8) f32 {
    const off = comptime tp.blockBytes(f) - 2;
    const h: f16 = @bitCast(std.mem.readInt(u16, blk[off..][0..2], .little));
    return h;
}

/// One tile: rows r0..r0+nr, tokens t0..t0+nt. Missing rows/tokens of a partial tile repeat the
/// last real one (computed, not stored).
fn tile(comptime isa: Isa, comptime f: args.TernaryFormat, comptime R: usize, comptime T: usize, a: *const args.TernaryMatmulArgs, ws: Workspace, r0: usize, nr: usize, t0: usize, nt: usize) void {
    @setEvalBranchQuota(100_000); // the tile is unrolled at compile time
    const D = Dot(isa);
    const W = D.W;
    const nb = ws.nb;
    const rb = rowBytes(f, nb);
    const seg_blocks: usize = if (f == .i2) (if (a.scale_mode == 2) a.group_blocks else nb) else 1;
    const nseg = (nb + seg_blocks - 1) / seg_blocks;
    var wrow: [R][*]const u8 = undefined;
    for (0..R) |i| wrow[i] = a.w + (r0 + @min(i, nr - 1)) * rb;
    var xq: [T][*]const i8 = undefined;
    var tt: [T]usize = undefined;
    for (0..T) |j| {
        tt[j] = t0 + @min(j, nt - 1);
        xq[j] = ws.q + tt[j] * ws.kx;
    }
    var facc = std.mem.zeroes([R][T]f32);
    const mask: D.VU = @splat(3);
    // One token on AVX-512 VNNI, i2 (long scale segments): keep the codes in place (c·4ⁿ ≤ 192, masked but not shifted)
    // with an accumulator per shift n, saving the shifts; the 4ⁿ comes off after the reduction.
    const masked = comptime (isa == .avx512_vnni and T == 1 and f == .i2);
    const NA = if (masked) 4 else 1;
    const chunk: usize = if (masked) 1024 else 4096;
    var seg: usize = 0;
    while (seg < nseg) : (seg += 1) {
        const b0 = seg * seg_blocks;
        const b1 = @min(nb, b0 + seg_blocks);
        var isum = std.mem.zeroes([R][T]i64);
        var cb = b0;
        while (cb < b1) {
            // i32 lanes stay exact for a chunk (a block adds at most 4·4·3·127 to a lane, masked 4·192·127).
            const ce = @min(b1, cb + chunk);
            var acc = std.mem.zeroes([R][T][NA]D.V32);
            var acc16 = std.mem.zeroes([R][T]D.V16);
            for (cb..ce) |blk| {
                const xoff = blk * comptime xBlockBytes(f);
                if (f == .tq1_0) {
                    // Base-3 digits straight from the block: digit n of byte b is
                    // (b·3ⁿ mod 256)·3 >> 8, i.e. [q ≥ 86] + [q ≥ 171] with q = b·3ⁿ mod 256.
                    for (0..code_bytes / W) |v| {
                        var qv: [R]D.VU = undefined;
                        inline for (0..R) |i| qv[i] = loadTq1(W, v, wrow[i] + blk * comptime tp.blockBytes(f));
                        inline for (0..5) |n| {
                            var cv: [R]D.VU = undefined;
                            inline for (0..R) |i| cv[i] = @as(D.VU, @intFromBool(qv[i] >= @as(D.VU, @splat(86)))) + @as(D.VU, @intFromBool(qv[i] >= @as(D.VU, @splat(171))));
                            inline for (0..T) |j| {
                                const xv: D.VS = xq[j][xoff + (v * 5 + n) * W ..][0..W].*;
                                inline for (0..R) |i| D.step(&acc[i][j][0], &acc16[i][j], cv[i], xv);
                            }
                            if (n < 4) {
                                inline for (0..R) |i| qv[i] = qv[i] +% qv[i] +% qv[i];
                            }
                        }
                    }
                } else {
                    var codes: [R][*]const u8 = undefined;
                    for (0..R) |i| codes[i] = wrow[i] + blk * comptime tp.blockBytes(f);
                    for (0..code_bytes / W) |c| {
                        var wv: [R]D.VU = undefined;
                        inline for (0..R) |i| wv[i] = codes[i][c * W ..][0..W].*;
                        inline for (0..4) |n| {
                            var cv: [R]D.VU = undefined;
                            inline for (0..R) |i| cv[i] = if (masked) wv[i] & @as(D.VU, @splat(3 << (2 * n))) else (wv[i] >> @splat(2 * n)) & mask;
                            inline for (0..T) |j| {
                                const xv: D.VS = xq[j][xoff + (c * 4 + n) * W ..][0..W].*;
                                inline for (0..R) |i| D.step(&acc[i][j][if (masked) n else 0], &acc16[i][j], cv[i], xv);
                            }
                        }
                    }
                }
                if (!D.fused) {
                    inline for (0..R) |i| inline for (0..T) |j| D.flush(&acc[i][j][0], &acc16[i][j]);
                }
            }
            // Lanes sum to < 2³¹ within a chunk (4096 blocks of ≤ 6096 a lane; masked: 1024 of ≤ 97536).
            if (R == 4 and D.L >= 4 and !masked) {
                inline for (0..T) |j| {
                    const sums = hsum4(D.L, .{ acc[0][j][0], acc[1][j][0], acc[2][j][0], acc[3][j][0] });
                    inline for (0..4) |i| isum[i][j] += sums[i];
                }
            } else {
                inline for (0..R) |i| inline for (0..T) |j| inline for (0..NA) |n| {
                    isum[i][j] += @as(i64, @reduce(.Add, acc[i][j][n])) >> (2 * n);
                };
            }
            cb = ce;
        }
        var xs: [T]i64 = @splat(0);
        for (0..T) |j| {
            for (b0..b1) |blk| xs[j] += ws.xsum[tt[j] * nb + blk];
        }
        for (0..R) |i| {
            const sc: f32 = switch (f) {
                .i2 => blk: {
                    const row = r0 + @min(i, nr - 1);
                    const sp = a.scales.?;
                    break :blk switch (a.scale_mode) {
                        0 => sp[0],
                        1 => sp[row],
                        else => sp[row * nseg + seg],
                    };
                },
                else => blockD(f, wrow[i] + b0 * comptime tp.blockBytes(f)),
            };
            for (0..T) |j| facc[i][j] += @as(f32, @floatFromInt(isum[i][j] - xs[j])) * sc;
        }
    }
    for (0..nr) |i| for (0..nt) |j| {
        a.out[(t0 + j) * a.n + r0 + i] = facc[i][j] / ws.s[t0 + j];
    };
}

/// Lanes v·W .. v·W + W of a TQ1_0 block's first 52 bytes (qs, qh) padded with zeros to 64;
/// never reads past the 52 bytes.
inline fn loadTq1(comptime W: usize, v: usize, p: [*]const u8) @Vector(W, u8) {
    const used = 52;
    if ((v + 1) * W <= used) return p[v * W ..][0..W].*;
    const tail = used % W; // the last, partial vector
    var tmp: [W]u8 = @splat(0);
    tmp[0..tail].* = p[used - tail ..][0..tail].*;
    return tmp;
}
