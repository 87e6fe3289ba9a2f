//! GEMM and GEMV: C = alpha * A @ B + beta * C, written once and compiled per ISA level.
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
//! A vector operand (M == 1 or N == 1) takes the GEMV path instead: no packing, the matrix is
//! streamed once, in dot-product form when its rows are contiguous and in axpy form when its
//! columns are.
//!
//! Files: this one holds the entry points (`gemmBatched`, `matmul`), the choice between the paths,
//! element access with conversion and the GEMV path; gemm_packed.zig the blocking plan, packing,
//! micro-kernel and the packed GEMM driver.
const std = @import("std");
const builtin = @import("builtin");
const dt = @import("dtype.zig");
const args = @import("args.zig");
const Parallel = @import("parallel.zig").Parallel;
const DType = dt.DType;

pub const Error = error{OutOfMemory};

pub fn lanes(comptime vbits: u32, comptime T: type) comptime_int {
    return if (vbits == 0) 1 else @max(1, vbits / @bitSizeOf(T));
}

const gemm_packed = @import("gemm_packed.zig");
const Micro = gemm_packed.Micro;
const Gemm = gemm_packed.Gemm;
/// One matrix product's operands (gemm_packed.zig).
pub const Problem = gemm_packed.Problem;

// ---------------------------------------------------------------------------------------------
// Element access with conversion to the accumulation type.
// ---------------------------------------------------------------------------------------------

/// The accumulation type of an input dtype.
pub fn Acc(comptime d: DType) type {
    return switch (d) {
        .f32, .f16, .bf16 => f32,
        .f64 => f64,
        else => i32,
    };
}

pub inline fn load(comptime d: DType, comptime T: type, base: [*]const u8, i: isize) T {
    const p: [*]const dt.Storage(d) = @ptrCast(@alignCast(base));
    const x = p[@intCast(i)];
    return switch (d) {
        .f32, .f64 => x,
        .f16 => @floatCast(x),
        .bf16 => x.toF32(),
        .u32 => @bitCast(x),
        .bool, .u8, .u16, .i8, .i16, .i32 => @intCast(x),
    };
}

pub inline fn loadPtr(comptime d: DType, base: [*]const u8, i: isize) [*]const u8 {
    return base + @as(usize, @intCast(i * @as(isize, @intCast(d.size()))));
}

// ---------------------------------------------------------------------------------------------
// Packing
// ---------------------------------------------------------------------------------------------

/// N contiguous elements of dtype d from element i of base, converted to T.
pub inline fn loadN(comptime d: DType, comptime T: type, comptime N: usize, base: [*]const u8, i: isize) @Vector(N, T) {
    const E = if (d == .bf16) u16 else dt.Storage(d);
    const p: [*]const E = @ptrCast(@alignCast(base));
    const raw: @Vector(N, E) = p[@intCast(i)..][0..N].*;
    return switch (d) {
        .f32, .f64 => raw,
        .f16 => @floatCast(raw),
        .bf16 => @bitCast(@as(@Vector(N, u32), raw) << @splat(16)),
        .u32 => @bitCast(raw),
        .bool, .u8, .u16, .i8, .i16, .i32 => @intCast(raw),
    };
}

// ---------------------------------------------------------------------------------------------
// GEMV: y[i] = alpha * sum_k A[i, k] x[k] + beta * y[i]
// ---------------------------------------------------------------------------------------------

fn Gemv(comptime vbits: u32, comptime da: DType, comptime dx: DType) type {
    const T = Acc(da);
    const V = lanes(vbits, T);
    const Vec = @Vector(V, T);
    const is_float = @typeInfo(T) == .float;
    const K = Micro(vbits, T);
    return struct {
        const Ctx = struct {
            m: usize,
            k: usize,
            a: [*]const u8,
            a_rs: isize,
            a_ks: isize,
            x: [*]const T, // converted, contiguous
            y: [*]T,
            y_s: isize,
            alpha: T,
            beta: T,
        };

        inline fn store(c: *const Ctx, i: usize, v: T) void {
            const dst = &c.y[@intCast(@as(isize, @intCast(i)) * c.y_s)];
            if (is_float) {
                dst.* = c.alpha * v + (if (c.beta == 0) 0 else c.beta * dst.*);
            } else {
                dst.* = c.alpha *% v +% (if (c.beta == 0) 0 else c.beta *% dst.*);
            }
        }

        inline fn loadVec(base: [*]const u8, i: usize) Vec {
            return loadN(da, T, V, base, @intCast(i));
        }

        /// Rows contiguous (a_ks == 1): four dot products at a time.
        fn dots(c: *const Ctx, begin: usize, end: usize) void {
            var i = begin;
            while (i < end) {
                const h: usize = @min(4, end - i);
                var acc: [4][2]Vec = @splat(@as([2]Vec, @splat(@as(Vec, @splat(0)))));
                var rows: [4][*]const u8 = undefined;
                for (0..4) |r| rows[r] = loadPtr(da, c.a, @as(isize, @intCast(i + @min(r, h - 1))) * c.a_rs);
                var p: usize = 0;
                while (p + 2 * V <= c.k) : (p += 2 * V) {
                    const x0: Vec = c.x[p..][0..V].*;
                    const x1: Vec = c.x[p + V ..][0..V].*;
                    inline for (0..4) |r| {
                        acc[r][0] = K.madd(loadVec(rows[r], p), x0, acc[r][0]);
                        acc[r][1] = K.madd(loadVec(rows[r], p + V), x1, acc[r][1]);
                    }
                }
                for (0..h) |r| {
                    var s: T = @reduce(.Add, if (is_float) acc[r][0] + acc[r][1] else acc[r][0] +% acc[r][1]);
                    for (p..c.k) |q| {
                        const v = load(da, T, rows[r], @intCast(q));
                        s = if (is_float) s + v * c.x[q] else s +% v *% c.x[q];
                    }
                    store(c, i + r, s);
                }
                i += h;
            }
        }

        /// Columns contiguous (a_rs == 1), the axpy form: y += x[p] · A[:, p] over p. The k axis is
        /// cut into one contiguous range a part (a thread): each part streams its columns of A in
        /// memory order, four at a time, into its own partial y (row blocks of 16 KiB that stay in
        /// L1), and the parts are summed in a fixed order afterwards (the same bits for any thread
        /// timing). Threads over rows instead would read each column in short pieces, one page
        /// apart (1.36x NumPy's time for v @ A at 4096²).
        const Axpy = struct {
            c: *const Ctx,
            parts: usize,
            part: [*]T, // parts × m partial sums
        };
        const RB = @max(V, 16 * 1024 / @sizeOf(T));

        fn axpyPart(ax: *const Axpy, begin: usize, end: usize) void {
            const c = ax.c;
            for (begin..end) |part| {
                const k0 = part * c.k / ax.parts;
                const k1 = (part + 1) * c.k / ax.parts;
                const acc = ax.part + part * c.m;
                @memset(acc[0..c.m], 0);
                var r0: usize = 0;
                while (r0 < c.m) : (r0 += RB) {
                    const h: usize = @min(RB, c.m - r0);
                    var p = k0;
                    while (p + 4 <= k1) : (p += 4) axpyCols(4, c, acc + r0, r0, h, p);
                    while (p < k1) : (p += 1) axpyCols(1, c, acc + r0, r0, h, p);
                }
            }
        }

        /// acc[0..h] += Σ_j x[p + j] · A[r0.., p + j] for G columns.
        inline fn axpyCols(comptime G: usize, c: *const Ctx, acc: [*]T, r0: usize, h: usize, p: usize) void {
            var cols: [G][*]const u8 = undefined;
            var xv: [G]Vec = undefined;
            inline for (0..G) |j| {
                cols[j] = loadPtr(da, c.a, @as(isize, @intCast(p + j)) * c.a_ks + @as(isize, @intCast(r0)));
                xv[j] = @splat(c.x[p + j]);
            }
            var r: usize = 0;
            while (r + V <= h) : (r += V) {
                const dst: *[V]T = acc[r..][0..V];
                var v: Vec = dst.*;
                inline for (0..G) |j| v = K.madd(loadVec(cols[j], r), xv[j], v);
                dst.* = v;
            }
            while (r < h) : (r += 1) {
                var v = acc[r];
                inline for (0..G) |j| {
                    const w = load(da, T, cols[j], @intCast(r));
                    v = if (is_float) v + w * c.x[p + j] else v +% w *% c.x[p + j];
                }
                acc[r] = v;
            }
        }

        fn axpySum(ax: *const Axpy, begin: usize, end: usize) void {
            for (begin..end) |i| {
                var s: T = ax.part[i];
                for (1..ax.parts) |part| {
                    const v = ax.part[part * ax.c.m + i];
                    s = if (is_float) s + v else s +% v;
                }
                store(ax.c, i, s);
            }
        }

        fn axpys(par: *const Parallel, c: *const Ctx) Error!void {
            // One part a thread once each has at least 64 KiB of A to read.
            const bytes = c.m * c.k * da.size();
            const parts: usize = @max(1, @min(@as(usize, par.threads), @min(c.k, bytes / (64 * 1024))));
            const buf = par.alloc(T, parts * c.m) orelse return error.OutOfMemory;
            defer par.free(buf);
            const ax: Axpy = .{ .c = c, .parts = parts, .part = buf.ptr };
            par.run(parts, 1, &ax, axpyPart);
            par.run(c.m, @max(4096, c.m / @max(1, @as(usize, par.threads))), &ax, axpySum);
        }

        /// Neither contiguous: one strided dot product per row.
        fn strided(c: *const Ctx, begin: usize, end: usize) void {
            for (begin..end) |i| {
                var s: T = 0;
                for (0..c.k) |p| {
                    const v = load(da, T, c.a, @as(isize, @intCast(i)) * c.a_rs + @as(isize, @intCast(p)) * c.a_ks);
                    s = if (is_float) s + v * c.x[p] else s +% v *% c.x[p];
                }
                store(c, i, s);
            }
        }

        /// y (m, stride y_s) = alpha * A (m x k) @ x (k, stride x_s) + beta * y.
        fn gemv(par: *const Parallel, m: usize, k: usize, alpha: T, a: [*]const u8, a_rs: isize, a_ks: isize, x: [*]const u8, x_s: isize, beta: T, y: [*]T, y_s: isize) Error!void {
            const xs = par.alloc(T, k) orelse return error.OutOfMemory;
            defer par.free(xs);
            for (0..k) |p| xs[p] = load(dx, T, x, @as(isize, @intCast(p)) * x_s);
            const c: Ctx = .{ .m = m, .k = k, .a = a, .a_rs = a_rs, .a_ks = a_ks, .x = xs.ptr, .y = y, .y_s = y_s, .alpha = alpha, .beta = beta };
            // Threads over rows; a grain of about 64 KiB of A keeps small products on one thread.
            const grain = @max(1, (64 * 1024) / @max(1, k * da.size()));
            if (a_ks == 1) {
                par.run(m, grain, &c, dots);
            } else if (a_rs == 1) {
                try axpys(par, &c);
            } else {
                par.run(m, grain, &c, strided);
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

/// One product, by the best path: GEMV for a vector operand, else packed GEMM. K == 0 scales C.
fn product(comptime vbits: u32, comptime da: DType, comptime db: DType, par: *const Parallel, pr: *const Problem(Acc(da))) Error!void {
    const T = Acc(da);
    if (pr.m == 0 or pr.n == 0) return;
    if (pr.k == 0) {
        for (0..pr.m) |i| for (0..pr.n) |j| {
            const dst = &pr.c[@intCast(@as(isize, @intCast(i)) * pr.c_rs + @as(isize, @intCast(j)) * pr.c_cs)];
            dst.* = if (pr.beta == 0) 0 else if (@typeInfo(T) == .float) pr.beta * dst.* else pr.beta *% dst.*;
        };
        return;
    }
    if (pr.n == 1) {
        return Gemv(vbits, da, db).gemv(par, pr.m, pr.k, pr.alpha, pr.a, pr.a_rs, pr.a_ks, pr.b, pr.b_ks, pr.beta, pr.c, pr.c_rs);
    }
    if (pr.m == 1) {
        // y^T = x^T B  <=>  y = B^T x: B^T's rows are B's columns.
        return Gemv(vbits, db, da).gemv(par, pr.n, pr.k, pr.alpha, pr.b, pr.b_cs, pr.b_ks, pr.a, pr.a_ks, pr.beta, pr.c, pr.c_cs);
    }
    return Gemm(vbits, da, db).gemm(par, pr);
}

/// C = alpha * A @ B + beta * C for one pair of matrices of T (f32 or f64), any strides. For the
/// kernels of other families (linalg's blocked factorisations).
pub fn matmul(comptime vbits: u32, comptime T: type, par: *const Parallel, m: usize, n: usize, k: usize, alpha: T, a: [*]const T, a_rs: isize, a_cs: isize, b: [*]const T, b_rs: isize, b_cs: isize, beta: T, c: [*]T, c_rs: isize, c_cs: isize) Error!void {
    const d: DType = if (T == f64) .f64 else if (T == f32) .f32 else @compileError("matmul: f32 or f64");
    const pr: Problem(T) = .{ .m = m, .n = n, .k = k, .alpha = alpha, .beta = beta, .a = @ptrCast(a), .a_rs = a_rs, .a_ks = a_cs, .b = @ptrCast(b), .b_ks = b_rs, .b_cs = b_cs, .c = c, .c_rs = c_rs, .c_cs = c_cs };
    return product(vbits, d, d, par, &pr);
}

/// The batched entry point (see args.GemmArgs). Returns 0, or 1 when scratch memory was refused.
pub fn gemmBatched(comptime vbits: u32, par: *const Parallel, g: *const args.GemmArgs) u32 {
    // Narrow integer and bool operands are widened to i32 by the caller: compiling the packed
    // GEMM once per input dtype would double the build for products nobody times.
    switch (g.in_dtype) {
        inline .f32, .f16, .bf16, .i32, .f64 => |d| return batched(vbits, d, par, g),
        else => return 2,
    }
}

fn batched(comptime vbits: u32, comptime d: DType, par: *const Parallel, g: *const args.GemmArgs) u32 {
    const T = Acc(d);
    const L = &g.layout;
    const nb = L.ndim - 3;
    const m = L.shape[nb];
    const n = L.shape[nb + 1];
    const k = L.shape[nb + 2];
    var batch: usize = 1;
    for (L.shape[0..nb]) |s| batch *= s;
    const alpha: T = if (@typeInfo(T) == .float) @floatCast(g.alpha) else @intFromFloat(g.alpha);
    const beta: T = if (@typeInfo(T) == .float) @floatCast(g.beta) else @intFromFloat(g.beta);
    const Ctx = struct {
        g: *const args.GemmArgs,
        par: *const Parallel,
        nb: usize,
        base: Problem(T),
        failed: std.atomic.Value(u32) = .init(0),

        fn item(c: *@This(), idx: usize, sub: *const Parallel) void {
            var pr = c.base;
            var rest = idx;
            var offs: [3]isize = @splat(0);
            var ax = c.nb;
            while (ax > 0) {
                ax -= 1;
                const s = c.g.layout.shape[ax];
                const i: isize = @intCast(rest % s);
                rest /= s;
                inline for (0..3) |o| offs[o] += i * c.g.layout.strides[o][ax];
            }
            pr.c = pr.c + @as(usize, @intCast(offs[0]));
            pr.a = loadPtr(d, pr.a, offs[1]);
            pr.b = loadPtr(d, pr.b, offs[2]);
            product(vbits, d, d, sub, &pr) catch {
                c.failed.store(1, .monotonic);
            };
        }

        fn many(c: *@This(), begin: usize, end: usize) void {
            var one = c.par.*;
            one.threads = 1;
            for (begin..end) |i| c.item(i, &one);
        }
    };
    var ctx: Ctx = .{
        .g = g,
        .par = par,
        .nb = nb,
        .base = .{
            .m = m,
            .n = n,
            .k = k,
            .alpha = alpha,
            .beta = beta,
            .a = g.a,
            .a_rs = L.strides[1][nb],
            .a_ks = L.strides[1][nb + 2],
            .b = g.b,
            .b_ks = L.strides[2][nb + 2],
            .b_cs = L.strides[2][nb + 1],
            .c = @ptrCast(@alignCast(g.out)),
            .c_rs = L.strides[0][nb],
            .c_cs = L.strides[0][nb + 1],
        },
    };
    // Small products in a batch: threads over the batch; large ones: threads inside each product.
    const flops = m * n * k;
    if (batch > 1 and flops < 128 * 128 * 128) {
        par.run(batch, @max(1, (64 * 64 * 64) / @max(1, flops)), &ctx, Ctx.many);
    } else {
        for (0..batch) |i| ctx.item(i, par);
    }
    return ctx.failed.load(.monotonic);
}

// ---------------------------------------------------------------------------------------------
// Tests (run per level by build.zig): against a naive f64 product, over edge sizes and strides.
// ---------------------------------------------------------------------------------------------

fn naive(m: usize, n: usize, k: usize, a: []const f64, a_rs: usize, a_ks: usize, b: []const f64, b_ks: usize, b_cs: usize, out: []f64) void {
    for (0..m) |i| for (0..n) |j| {
        var s: f64 = 0;
        for (0..k) |p| s += a[i * a_rs + p * a_ks] * b[p * b_ks + j * b_cs];
        out[i * n + j] = s;
    };
}

fn checkSizes(comptime vbits: u32, comptime T: type, m: usize, n: usize, k: usize, trans_a: bool, trans_b: bool) !void {
    const gpa = std.testing.allocator;
    var rng = std.Random.DefaultPrng.init(m * 1000003 + n * 1009 + k);
    const r = rng.random();
    const a64 = try gpa.alloc(f64, m * k);
    defer gpa.free(a64);
    const b64 = try gpa.alloc(f64, k * n);
    defer gpa.free(b64);
    for (a64) |*v| v.* = @floatFromInt(r.intRangeAtMost(i32, -8, 8));
    for (b64) |*v| v.* = @floatFromInt(r.intRangeAtMost(i32, -8, 8));
    const a = try gpa.alloc(T, m * k);
    defer gpa.free(a);
    const b = try gpa.alloc(T, k * n);
    defer gpa.free(b);
    for (a, a64) |*x, y| x.* = @floatCast(y);
    for (b, b64) |*x, y| x.* = @floatCast(y);
    // A stored row-major (rs = k, ks = 1) or transposed (rs = 1, ks = m); same for B.
    const a_rs: usize = if (trans_a) 1 else k;
    const a_ks: usize = if (trans_a) m else 1;
    const b_ks: usize = if (trans_b) 1 else n;
    const b_cs: usize = if (trans_b) k else 1;
    const want = try gpa.alloc(f64, m * n);
    defer gpa.free(want);
    naive(m, n, k, a64, a_rs, a_ks, b64, b_ks, b_cs, want);
    const c = try gpa.alloc(T, m * n);
    defer gpa.free(c);
    @memset(c, 7);
    const par = Parallel.testing();
    try matmul(vbits, T, &par, m, n, k, 1, a.ptr, @intCast(a_rs), @intCast(a_ks), b.ptr, @intCast(b_ks), @intCast(b_cs), 0, c.ptr, @intCast(n), 1);
    for (c, want) |x, y| try std.testing.expectEqual(y, @as(f64, x));
    // beta = 1, alpha = 2: C = 2AB + previous C (= AB) = 3AB.
    try matmul(vbits, T, &par, m, n, k, 2, a.ptr, @intCast(a_rs), @intCast(a_ks), b.ptr, @intCast(b_ks), @intCast(b_cs), 1, c.ptr, @intCast(n), 1);
    for (c, want) |x, y| try std.testing.expectEqual(3 * y, @as(f64, x));
}

test "gemm matches a naive product at edge sizes, strides and levels" {
    const build_options = @import("build_options");
    const vb = build_options.vector_bits;
    const sizes = [_][3]usize{ .{ 1, 1, 1 }, .{ 3, 5, 7 }, .{ 17, 33, 9 }, .{ 64, 64, 64 }, .{ 29, 70, 300 }, .{ 130, 3, 41 }, .{ 2, 100, 513 }, .{ 1, 37, 50 }, .{ 45, 1, 50 },
        // few rows, many columns: the narrow path (gemm_packed.zig), over several depth slices
        .{ 29, 1000, 777 }, .{ 8, 1500, 40 } };
    for (sizes) |s| {
        inline for (.{ f32, f64 }) |T| {
            try checkSizes(vb, T, s[0], s[1], s[2], false, false);
            try checkSizes(vb, T, s[0], s[1], s[2], true, false);
            try checkSizes(vb, T, s[0], s[1], s[2], false, true);
            try checkSizes(vb, T, s[0], s[1], s[2], true, true);
        }
    }
}
