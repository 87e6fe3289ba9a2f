//! The packed GEMM path of gemm.zig: C = alpha * A @ B + beta * C for matrices (M, N > 1).
//!
//! The classic Goto/BLIS structure:
//!   for each nc-wide column block of B (jc)
//!     for each kc-deep slice of K (pc): pack B[pc.., jc..] into NR-wide panels (threads share it)
//!       for each mc-tall row block of A (ic, claimed by threads): pack A into MR-tall panels
//!         for each NR panel (jr), each MR panel (ir): the micro-kernel, MR x NR accumulators
//!         held in vector registers for the whole kc loop.
//! Packing reads A and B through any strides and converts the element type on the way (f16 and
//! bf16 to f32, small integers to i32), so transposed views and half-precision inputs cost one
//! pass over each panel and the micro-kernel sees only one type. The micro-kernel's shape comes
//! from the level's vector width: two vectors of columns (three on 128-bit NEON-like levels with
//! 32 registers) by as many rows as the register file holds.
//!
//! With few rows (all of A's depth slice within one row block) the narrow variant turns the inner
//! loops around: A is packed once a depth slice and shared, and each thread packs one NR panel of
//! B at a time and runs it against every row (B read once, packed into cache, not into a large
//! shared block streamed again for each row block).
//!
//! The entry points, element access (`load`, `loadN`) and GEMV live in gemm.zig.
const std = @import("std");
const builtin = @import("builtin");
const dt = @import("dtype.zig");
const args = @import("args.zig");
const Parallel = @import("parallel.zig").Parallel;
const DType = dt.DType;
const gemm_mod = @import("gemm.zig");
const Error = gemm_mod.Error;
const lanes = gemm_mod.lanes;
const Acc = gemm_mod.Acc;
const load = gemm_mod.load;
const loadN = gemm_mod.loadN;

const has_fma = switch (builtin.cpu.arch) {
    .x86_64 => std.Target.x86.featureSetHas(builtin.cpu.features, .fma),
    .aarch64 => true,
    else => false,
};

/// Register and cache blocking for one level and accumulator type.
fn Plan(comptime vbits: u32, comptime T: type) type {
    return struct {
        pub const V = lanes(vbits, T);
        const regs = if (builtin.cpu.arch == .aarch64 or vbits >= 512) 32 else 16;
        /// Vectors per row of the micro-tile: with 32 registers, 3 vectors by 8 rows (24
        /// accumulators, 3 loads of B, a broadcast of A); with 16, 2 vectors by 6 rows.
        pub const NV = if (vbits == 0) 4 else if (regs == 32) 3 else 2;
        pub const NR = V * NV;
        /// Rows of the micro-tile (8 is also a divisor or multiple of every vector width, so row-major
        /// A packs with in-register transposes).
        pub const MR = if (vbits == 0) 4 else if (regs == 32) 8 else 6;
        /// Depth: deep panels (about 72 KiB of B per micro-panel) measured best on a 48 KiB-L1,
        /// 2 MiB-L2 AVX-512 core (KC 170 / 256 / 384: 0.86 / 0.92 / 0.93 of OpenBLAS): fewer passes
        /// over C outweigh keeping the B micro-panel in L1, since A is the operand streamed.
        pub const KC = if (vbits == 0) 256 else @max(128, @min(384, (72 * 1024) / (NR * @sizeOf(T))));
        /// Rows of A per block (its packed block, MC x KC, lives in L2).
        pub const MC_MAX = MR * @max(1, (512 * 1024) / (KC * @sizeOf(T) * MR));
        /// Columns of B per block (the packed KC x NC block lives in L3 / shared cache).
        pub const NC = NR * @max(1, 4096 / NR);
    };
}

/// In-place transpose of a V x V block held as V vectors (log2(V) stages of two-source shuffles:
/// stage b swaps the off-diagonal b x b blocks of every 2b x 2b block).
inline fn transpose(comptime V: usize, comptime T: type, rows: *[V]@Vector(V, T)) void {
    comptime var b: usize = 1;
    inline while (b < V) : (b *= 2) {
        const lo = comptime blk: {
            var m: [V]i32 = undefined;
            for (0..V) |l| m[l] = if (l & b == 0) @intCast(l) else ~@as(i32, @intCast(l - b));
            break :blk m;
        };
        const hi = comptime blk: {
            var m: [V]i32 = undefined;
            for (0..V) |l| m[l] = if (l & b == 0) @intCast(l + b) else ~@as(i32, @intCast(l));
            break :blk m;
        };
        inline for (0..V) |i| {
            if (i & b == 0) {
                const x = rows[i];
                const y = rows[i + b];
                rows[i] = @shuffle(T, x, y, lo);
                rows[i + b] = @shuffle(T, x, y, hi);
            }
        }
    }
}

/// Packs rows [r0, r0 + rows) x depth [p0, p0 + kc) of a (rows: stride rs, depth: stride ks)
/// into panels of R rows: dst[panel][p][r], zero-padded to whole panels. V: the vector width
/// used to transpose row-contiguous sources in V x V blocks (when V divides R).
fn packPanels(comptime d: DType, comptime T: type, comptime R: usize, comptime V: usize, dst: [*]T, src: [*]const u8, rs: isize, ks: isize, r0: usize, rows: usize, p0: usize, kc: usize) void {
    @setEvalBranchQuota(100_000);
    var r: usize = 0;
    if (V > R and V % R == 0 and ks == 1) {
        // Rows contiguous along the depth, panels narrower than a vector: V rows (V / R panels)
        // at a time, each transposed column split across the panels.
        while (r + V <= rows) : (r += V) {
            const base: isize = @as(isize, @intCast(r0 + r)) * rs + @as(isize, @intCast(p0));
            var p: usize = 0;
            while (p + V <= kc) : (p += V) {
                var blk: [V]@Vector(V, T) = undefined;
                inline for (0..V) |i| blk[i] = loadN(d, T, V, src, base + @as(isize, i) * rs + @as(isize, @intCast(p)));
                transpose(V, T, &blk);
                inline for (0..V) |q| {
                    const col: [V]T = blk[q];
                    inline for (0..V / R) |c| (dst + (r + c * R) * kc)[(p + q) * R ..][0..R].* = col[c * R ..][0..R].*;
                }
            }
            while (p < kc) : (p += 1) {
                for (0..V) |i| (dst + (r + (i / R) * R) * kc)[p * R + i % R] = load(d, T, src, base + @as(isize, @intCast(i)) * rs + @as(isize, @intCast(p)));
            }
        }
    }
    while (r < rows) : (r += R) {
        const h = @min(R, rows - r);
        const panel = dst + r * kc;
        const base: isize = @as(isize, @intCast(r0 + r)) * rs + @as(isize, @intCast(p0)) * ks;
        if (h == R and rs == 1) {
            // The R values of one depth step are contiguous in the source.
            for (0..kc) |p| {
                panel[p * R ..][0..R].* = loadN(d, T, R, src, base + @as(isize, @intCast(p)) * ks);
            }
        } else if (h == R and ks == 1 and V > 1 and R % V == 0) {
            // Rows contiguous along the depth: V x V blocks, loaded as rows, stored as columns.
            var p: usize = 0;
            while (p + V <= kc) : (p += V) {
                inline for (0..R / V) |g| {
                    var blk: [V]@Vector(V, T) = undefined;
                    inline for (0..V) |i| blk[i] = loadN(d, T, V, src, base + @as(isize, g * V + i) * rs + @as(isize, @intCast(p)));
                    transpose(V, T, &blk);
                    inline for (0..V) |q| panel[(p + q) * R + g * V ..][0..V].* = blk[q];
                }
            }
            while (p < kc) : (p += 1) {
                for (0..R) |i| panel[p * R + i] = load(d, T, src, base + @as(isize, @intCast(i)) * rs + @as(isize, @intCast(p)));
            }
        } else if (h == R) {
            // Row-wise reads (contiguous when ks == 1), strided writes into the panel.
            for (0..R) |i| {
                const row = base + @as(isize, @intCast(i)) * rs;
                if (ks == 1) {
                    for (0..kc) |p| panel[p * R + i] = load(d, T, src, row + @as(isize, @intCast(p)));
                } else {
                    for (0..kc) |p| panel[p * R + i] = load(d, T, src, row + @as(isize, @intCast(p)) * ks);
                }
            }
        } else {
            for (0..kc) |p| {
                for (0..R) |i| {
                    panel[p * R + i] = if (i < h) load(d, T, src, base + @as(isize, @intCast(i)) * rs + @as(isize, @intCast(p)) * ks) else 0;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Micro-kernel
// ---------------------------------------------------------------------------------------------

pub fn Micro(comptime vbits: u32, comptime T: type) type {
    const P = Plan(vbits, T);
    const V = P.V;
    const Vec = @Vector(V, T);
    const is_float = @typeInfo(T) == .float;
    return struct {
        pub inline fn madd(a: Vec, b: Vec, c: Vec) Vec {
            if (is_float) {
                return if (has_fma) @mulAdd(Vec, a, b, c) else a * b + c;
            }
            return a *% b +% c;
        }

        /// C[0..m, 0..n] = alpha * Ap @ Bp + beta * C (beta == 0: C is not read).
        fn run(kc: usize, ap: [*]const T, bp: [*]const T, c: [*]T, rs: isize, cs: isize, m: usize, n: usize, alpha: T, beta: T) void {
            var acc: [P.MR][P.NV]Vec = @splat(@as([P.NV]Vec, @splat(@as(Vec, @splat(0)))));
            var a = ap;
            var b = bp;
            for (0..kc) |_| {
                var bv: [P.NV]Vec = undefined;
                inline for (0..P.NV) |j| bv[j] = b[j * V ..][0..V].*;
                inline for (0..P.MR) |i| {
                    const av: Vec = @splat(a[i]);
                    inline for (0..P.NV) |j| acc[i][j] = madd(av, bv[j], acc[i][j]);
                }
                a += P.MR;
                b += P.NR;
            }
            const va: Vec = @splat(alpha);
            const vb: Vec = @splat(beta);
            if (m == P.MR and n == P.NR and cs == 1) {
                inline for (0..P.MR) |i| {
                    const row = c + @as(usize, @intCast(@as(isize, i) * rs));
                    inline for (0..P.NV) |j| {
                        const dst: *[V]T = row[j * V ..][0..V];
                        var r = scale(va, acc[i][j]);
                        if (beta != 0) r = madd(vb, dst.*, r);
                        dst.* = r;
                    }
                }
                return;
            }
            var tile: [P.MR][P.NR]T = undefined;
            inline for (0..P.MR) |i| inline for (0..P.NV) |j| {
                tile[i][j * V ..][0..V].* = scale(va, acc[i][j]);
            };
            for (0..m) |i| {
                for (0..n) |j| {
                    const dst = &c[@intCast(@as(isize, @intCast(i)) * rs + @as(isize, @intCast(j)) * cs)];
                    dst.* = if (beta == 0) tile[i][j] else if (is_float) tile[i][j] + beta * dst.* else tile[i][j] +% beta *% dst.*;
                }
            }
        }

        inline fn scale(va: Vec, x: Vec) Vec {
            return if (is_float) va * x else va *% x;
        }
    };
}

// ---------------------------------------------------------------------------------------------
// GEMM driver
// ---------------------------------------------------------------------------------------------

/// One matrix product's operands: element pointers (element 0) and strides in elements.
pub fn Problem(comptime T: type) type {
    return struct {
        m: usize,
        n: usize,
        k: usize,
        alpha: T,
        beta: T,
        a: [*]const u8,
        a_rs: isize,
        a_ks: isize,
        b: [*]const u8,
        b_ks: isize,
        b_cs: isize,
        c: [*]T,
        c_rs: isize,
        c_cs: isize,
    };
}

pub fn Gemm(comptime vbits: u32, comptime da: DType, comptime db: DType) type {
    const T = Acc(da);
    const P = Plan(vbits, T);
    const K = Micro(vbits, T);
    return struct {
        const Pb = Problem(T);

        /// The state of one (jc, pc) step shared by the threads.
        const Step = struct {
            pr: *const Pb,
            par: *const Parallel,
            bp: []align(64) T, // packed B block
            ap: []align(64) T, // one MC x KC block per thread slot
            jc: usize,
            nc: usize,
            pc: usize,
            kc: usize,
            beta: T,
            mc: usize,
            blocks: usize,
            next: std.atomic.Value(usize),
        };

        fn packB(s: *Step, begin: usize, end: usize) void {
            const pr = s.pr;
            // Panels [begin, end) of NR columns. B's "rows" of a panel are its columns.
            const c0 = begin * P.NR;
            const cols = @min(s.nc, end * P.NR) - c0;
            packPanels(db, T, P.NR, P.V, s.bp.ptr + c0 * s.kc, pr.b, pr.b_cs, pr.b_ks, s.jc + c0, cols, s.pc, s.kc);
        }

        fn blocks(s: *Step, begin: usize, end: usize) void {
            _ = end;
            const pr = s.pr;
            const ap = s.ap.ptr + begin * P.MC_MAX * s.kc; // this thread slot's A block
            while (true) {
                const blk = s.next.fetchAdd(1, .monotonic);
                if (blk >= s.blocks) return;
                const ic = blk * s.mc;
                const mc = @min(s.mc, pr.m - ic);
                packPanels(da, T, P.MR, P.V, ap, pr.a, pr.a_rs, pr.a_ks, ic, mc, s.pc, s.kc);
                var jr: usize = 0;
                while (jr < s.nc) : (jr += P.NR) {
                    const bpan = s.bp.ptr + jr * s.kc;
                    const nr: usize = @min(P.NR, s.nc - jr);
                    var ir: usize = 0;
                    while (ir < mc) : (ir += P.MR) {
                        const mr: usize = @min(P.MR, mc - ir);
                        const c = pr.c + @as(usize, @intCast(@as(isize, @intCast(ic + ir)) * pr.c_rs + @as(isize, @intCast(s.jc + jr)) * pr.c_cs));
                        K.run(s.kc, ap + ir * s.kc, bpan, c, pr.c_rs, pr.c_cs, mr, nr, pr.alpha, s.beta);
                    }
                }
            }
        }

        /// The state of one depth slice of the narrow path, shared by the threads.
        const Narrow = struct {
            pr: *const Pb,
            ap: [*]T, // all of A's rows for this depth slice, packed
            bp: [*]T, // one kc x NR panel of B a thread slot
            pc: usize,
            kc: usize,
            beta: T,
            panels: usize,
            next: std.atomic.Value(usize),
        };

        fn packNarrowA(s: *Narrow, begin: usize, end: usize) void {
            const pr = s.pr;
            const r0 = begin * P.MR;
            packPanels(da, T, P.MR, P.V, s.ap + r0 * s.kc, pr.a, pr.a_rs, pr.a_ks, r0, @min(pr.m, end * P.MR) - r0, s.pc, s.kc);
        }

        fn narrowPanels(s: *Narrow, slot: usize, end: usize) void {
            _ = end;
            const pr = s.pr;
            const bpan = s.bp + slot * P.NR * s.kc;
            while (true) {
                const panel = s.next.fetchAdd(1, .monotonic);
                if (panel >= s.panels) return;
                const jr = panel * P.NR;
                const nr: usize = @min(P.NR, pr.n - jr);
                packPanels(db, T, P.NR, P.V, bpan, pr.b, pr.b_cs, pr.b_ks, jr, nr, s.pc, s.kc);
                var ir: usize = 0;
                while (ir < pr.m) : (ir += P.MR) {
                    const mr: usize = @min(P.MR, pr.m - ir);
                    const c = pr.c + @as(usize, @intCast(@as(isize, @intCast(ir)) * pr.c_rs + @as(isize, @intCast(jr)) * pr.c_cs));
                    K.run(s.kc, s.ap + ir * s.kc, bpan, c, pr.c_rs, pr.c_cs, mr, nr, pr.alpha, s.beta);
                }
            }
        }

        /// Few rows (all of A's packed depth slice fits the L2 budget of one row block): A is
        /// packed once a depth slice and shared, and each thread packs one NR panel of B at a time
        /// into its own L1/L2-sized buffer and runs it against every row of A. The blocked path
        /// would give each thread row blocks of a few micro-panels and stream the whole packed B
        /// block from memory for each (a linear layer x[64, 2048] @ Wᵀ: 7.2 ms against NumPy's
        /// 4.9 on a 2-core AVX-512 machine); here B is read once and packed into cache (3.6 ms).
        fn narrow(par: *const Parallel, pr: *const Pb, threads: usize) Error!void {
            const kc_max: usize = @min(P.KC, pr.k);
            const panels = (pr.n + P.NR - 1) / P.NR;
            const slots = @min(threads, panels);
            const ap = par.alloc(T, roundUp(pr.m, P.MR) * kc_max) orelse return error.OutOfMemory;
            defer par.free(ap);
            const bp = par.alloc(T, slots * P.NR * kc_max) orelse return error.OutOfMemory;
            defer par.free(bp);
            var pc: usize = 0;
            while (pc < pr.k) : (pc += P.KC) {
                var s: Narrow = .{
                    .pr = pr,
                    .ap = ap.ptr,
                    .bp = bp.ptr,
                    .pc = pc,
                    .kc = @min(P.KC, pr.k - pc),
                    .beta = if (pc == 0) pr.beta else 1,
                    .panels = panels,
                    .next = .init(0),
                };
                const a_panels = (pr.m + P.MR - 1) / P.MR;
                par.run(a_panels, @max(1, a_panels / (2 * threads)), &s, packNarrowA);
                par.run(slots, 1, &s, narrowPanels);
            }
        }

        pub fn gemm(par: *const Parallel, pr: *const Pb) Error!void {
            const threads: usize = @max(1, par.threads);
            if (pr.m <= P.MC_MAX and (pr.n + P.NR - 1) / P.NR >= 4 * threads) return narrow(par, pr, threads);
            const kc_max: usize = @min(P.KC, pr.k);
            const nc_max: usize = @min(P.NC, roundUp(pr.n, P.NR));
            // Row blocks: a multiple of the thread count (at least two each when M allows), each
            // at most MC_MAX rows, so that no thread is left with one block more than another.
            const min_blocks = (pr.m + P.MC_MAX - 1) / P.MC_MAX;
            const nblocks = roundUp(@max(min_blocks, 2 * threads), threads);
            const mc: usize = @max(P.MR, @min(P.MC_MAX, roundUp((pr.m + nblocks - 1) / nblocks, P.MR)));
            const slots = @min(threads, (pr.m + mc - 1) / mc);
            const bp = par.alloc(T, kc_max * nc_max) orelse return error.OutOfMemory;
            defer par.free(bp);
            const ap = par.alloc(T, slots * P.MC_MAX * kc_max) orelse return error.OutOfMemory;
            defer par.free(ap);
            var jc: usize = 0;
            while (jc < pr.n) : (jc += P.NC) {
                const nc: usize = @min(P.NC, pr.n - jc);
                var pc: usize = 0;
                while (pc < pr.k) : (pc += P.KC) {
                    var s: Step = .{
                        .pr = pr,
                        .par = par,
                        .bp = bp,
                        .ap = ap,
                        .jc = jc,
                        .nc = nc,
                        .pc = pc,
                        .kc = @min(P.KC, pr.k - pc),
                        .beta = if (pc == 0) pr.beta else 1,
                        .mc = mc,
                        .blocks = (pr.m + mc - 1) / mc,
                        .next = .init(0),
                    };
                    const panels = (nc + P.NR - 1) / P.NR;
                    par.run(panels, @max(1, panels / (2 * threads)), &s, packB);
                    par.run(slots, 1, &s, blocks);
                }
            }
        }
    };
}

fn roundUp(x: usize, m: usize) usize {
    return (x + m - 1) / m * m;
}
