//! softmax / logSoftmax along the last axis, layerNorm / rmsNorm over the last axis.
//!
//! Written once: generic over the dtype (f32, f16, bf16; all compute in f32) and the vector width
//! `vbits` of the ISA level this object is compiled for. The layout's last axis is the reduced
//! one; the other ("outer") axes are coalesced among themselves only, never with the last axis,
//! and each outer index is one row. Rows are split across the thread pool.
//!
//! Each row takes one of three paths:
//! - contiguous (last-axis stride 1 in both operands): vector passes along the row;
//! - columns (softmax only): when the innermost outer axis has stride 1 in both operands, as for
//!   softmax over axis 0 of a row-major matrix, n neighbouring rows are done at once, one per
//!   vector lane, walking the reduced axis with its stride;
//! - strided: a scalar loop with the strides.
//!
//! Semantics (as PyTorch): softmax = exp(x - max) / sum(exp(x - max)); logSoftmax = (x - max) -
//! log(sum(exp(x - max))). A row whose maximum is not finite (all -inf, any +inf) or that holds a
//! NaN gives NaN everywhere. layerNorm = (x - mean) / sqrt(var + eps) * weight + bias with the
//! biased variance (two passes: the mean, then the centred sum of squares); rmsNorm = x /
//! sqrt(mean(x²) + eps) * weight. Statistics are f32 vector sums; 1/sqrt is taken in f64.
const std = @import("std");
const dt = @import("dtype.zig");
const args = @import("args.zig");
const strided = @import("strided.zig");
const vmath = @import("vmath.zig");
const ew = @import("elementwise.zig");
const Parallel = @import("parallel.zig").Parallel;
const ptrAt = @import("copy.zig").ptrAt;
const DType = dt.DType;
const lanes = ew.lanes;
const load = ew.load;
const store = ew.store;

/// Elements per job chunk handed to a thread.
const grain_elems = 16 * 1024;

const inf = std.math.inf(f32);
const nan = std.math.nan(f32);

inline fn load1(comptime d: DType, p: [*]const dt.Storage(d), off: isize) f32 {
    return load(d, 1, @ptrCast(ptrAt(dt.Storage(d), p, off)))[0];
}

inline fn store1(comptime d: DType, p: [*]dt.Storage(d), off: isize, v: f32) void {
    store(d, 1, @ptrCast(ptrAt(dt.Storage(d), p, off)), @as(@Vector(1, f32), @splat(v)));
}

/// The layout with its outer axes coalesced (at least one, possibly of size 1) and the last axis
/// kept apart as the innermost; a 0-d layout becomes one row of one element.
fn rowsLayout(src: *const strided.Layout(2)) strided.Layout(2) {
    var l = src.*;
    if (l.ndim == 0) {
        l.ndim = 1;
        l.shape[0] = 1;
        l.strides[0][0] = 1;
        l.strides[1][0] = 1;
    }
    const last = l.ndim - 1;
    const len = l.shape[last];
    const s0 = l.strides[0][last];
    const s1 = l.strides[1][last];
    l.ndim = last;
    l.coalesce();
    if (l.ndim == 0) {
        l.ndim = 1;
        l.shape[0] = 1;
        l.strides[0][0] = 0;
        l.strides[1][0] = 0;
    }
    l.shape[l.ndim] = len;
    l.strides[0][l.ndim] = s0;
    l.strides[1][l.ndim] = s1;
    l.ndim += 1;
    return l;
}

// ---- softmax -----------------------------------------------------------------------------------

pub fn softmax(comptime vbits: u32, par: *const Parallel, a: *const args.SoftmaxArgs) void {
    switch (a.dtype) {
        inline .f32, .f16, .bf16 => |d| {
            if (a.log != 0) softmaxTyped(vbits, d, true, par, a) else softmaxTyped(vbits, d, false, par, a);
        },
        else => unreachable, // the door refuses non-float dtypes
    }
}

fn softmaxTyped(comptime vbits: u32, comptime d: DType, comptime log: bool, par: *const Parallel, a: *const args.SoftmaxArgs) void {
    const S = dt.Storage(d);
    const n = comptime lanes(vbits, f32);
    var l = rowsLayout(&a.layout);
    const len = l.shape[l.ndim - 1];
    if (len == 0 or l.size() == 0) return;
    const out: [*]S = @ptrCast(@alignCast(a.out));
    const in: [*]const S = @ptrCast(@alignCast(a.in));

    // Columns: the innermost outer axis is contiguous in both operands while the row is not.
    const ia = l.ndim - 2;
    if (n > 1 and l.strides[0][ia] == 1 and l.strides[1][ia] == 1 and l.shape[ia] >= n and
        !(l.strides[0][ia + 1] == 1 and l.strides[1][ia + 1] == 1))
    {
        const ColCtx = struct {
            const Self = @This();
            blk: strided.Layout(2),
            len: usize,
            st: [2]isize,
            out: [*]S,
            in: [*]const S,
            chunk: usize, // columns per job item (a multiple of 4n)
            nchunks: usize, // items per row of blk

            // Columns [c0, c1) of one row of blk (each column = one row of the softmax layout).
            const Part = struct {
                ctx: *const Self,
                c0: usize,
                c1: usize,

                pub fn row(self: *const Part, offs: [2]isize, cols: usize, _: [2]isize) void {
                    const cx = self.ctx;
                    const o: [*]S = @ptrCast(ptrAt(S, cx.out, offs[0]));
                    const x: [*]const S = @ptrCast(ptrAt(S, cx.in, offs[1]));
                    const end = @min(self.c1, cols);
                    var c = self.c0;
                    // 4 vectors wide: each step along the rows reads 4 neighbouring cache lines.
                    while (c + 4 * n <= end) : (c += 4 * n) softmaxCols(4 * n, d, log, o + c, x + c, cx.len, cx.st);
                    while (c + n <= end) : (c += n) softmaxCols(n, d, log, o + c, x + c, cx.len, cx.st);
                    while (c < end) : (c += 1) softmaxStrided(d, log, o + c, x + c, cx.len, cx.st);
                }
            };

            fn task(self: *const Self, b: usize, e: usize) void {
                for (b..e) |item| {
                    const r = item / self.nchunks;
                    const c0 = (item % self.nchunks) * self.chunk;
                    const part: Part = .{ .ctx = self, .c0 = c0, .c1 = c0 + self.chunk };
                    self.blk.forRows(r, r + 1, &part);
                }
            }
        };
        var ctx: ColCtx = .{ .blk = l, .len = len, .st = .{ l.strides[0][ia + 1], l.strides[1][ia + 1] }, .out = out, .in = in, .chunk = 0, .nchunks = 0 };
        ctx.blk.ndim -= 1; // rows of blk: the outer axes but the innermost; each row spans that axis
        if (ctx.blk.ndim == 1) {
            // forRows on a 1-d layout splits elements; put a size-1 axis in front instead.
            ctx.blk.shape[1] = ctx.blk.shape[0];
            ctx.blk.strides[0][1] = 1;
            ctx.blk.strides[1][1] = 1;
            ctx.blk.shape[0] = 1;
            ctx.blk.strides[0][0] = 0;
            ctx.blk.strides[1][0] = 0;
            ctx.blk.ndim = 2;
        }
        const cols = ctx.blk.shape[ctx.blk.ndim - 1];
        // Job items of about grain_elems elements: whole rows of blk when they are small, else
        // chunks of columns.
        const w = 4 * n;
        ctx.chunk = @min(cols, @max(w, (grain_elems / len + w - 1) / w * w));
        ctx.nchunks = (cols + ctx.chunk - 1) / ctx.chunk;
        par.run(ctx.blk.rows() * ctx.nchunks, @max(1, grain_elems / (ctx.chunk * len)), &ctx, ColCtx.task);
        return;
    }

    const Ctx = struct {
        layout: *const strided.Layout(2),
        out: [*]S,
        in: [*]const S,

        pub fn row(self: *const @This(), offs: [2]isize, rlen: usize, st: [2]isize) void {
            const o: [*]S = @ptrCast(ptrAt(S, self.out, offs[0]));
            const x: [*]const S = @ptrCast(ptrAt(S, self.in, offs[1]));
            if (st[0] == 1 and st[1] == 1) softmaxRow(n, d, log, o, x, rlen) else softmaxStrided(d, log, o, x, rlen, st);
        }

        fn task(self: *const @This(), b: usize, e: usize) void {
            self.layout.forRows(b, e, self);
        }
    };
    const ctx: Ctx = .{ .layout = &l, .out = out, .in = in };
    par.run(l.rows(), @max(1, grain_elems / len), &ctx, Ctx.task);
}

/// The row's maximum, or NaN if it holds a NaN.
inline fn rowMax(comptime n: usize, comptime d: DType, x: [*]const dt.Storage(d), len: usize) f32 {
    const V = @Vector(n, f32);
    var m0: V = @splat(-inf);
    var m1: V = @splat(-inf);
    var bad: @Vector(n, bool) = @splat(false);
    var i: usize = 0;
    while (i + 2 * n <= len) : (i += 2 * n) {
        const v0 = load(d, n, x + i);
        const v1 = load(d, n, x + i + n);
        m0 = @select(f32, v0 > m0, v0, m0);
        m1 = @select(f32, v1 > m1, v1, m1);
        bad = bad | (v0 != v0) | (v1 != v1);
    }
    while (i + n <= len) : (i += n) {
        const v0 = load(d, n, x + i);
        m0 = @select(f32, v0 > m0, v0, m0);
        bad = bad | (v0 != v0);
    }
    var m = @reduce(.Max, @max(m0, m1));
    var nan_seen = @reduce(.Or, bad);
    while (i < len) : (i += 1) {
        const v = load(d, 1, x + i)[0];
        if (v > m) m = v;
        if (v != v) nan_seen = true;
    }
    return if (nan_seen) nan else m;
}

/// softmax of one contiguous row.
fn softmaxRow(comptime n: usize, comptime d: DType, comptime log: bool, o: [*]dt.Storage(d), x: [*]const dt.Storage(d), len: usize) void {
    const V = @Vector(n, f32);
    const m = rowMax(n, d, x, len);
    const mv: V = @splat(m);
    const m1: @Vector(1, f32) = @splat(m);
    // exp(x - m), summed. f32 softmax keeps them in `o`; half types keep them in f32 on the stack
    // when the row fits `buf`, else recompute them below (either way results are rounded once).
    const keep = d == .f32 and !log;
    if (d != .f32 and !log and len <= half_buf_len) return softmaxRowBuffered(n, d, o, x, len, m);
    var s0: V = @splat(0);
    var s1: V = @splat(0);
    var i: usize = 0;
    while (i + 2 * n <= len) : (i += 2 * n) {
        const e0 = vmath.exp(n, load(d, n, x + i) - mv);
        const e1 = vmath.exp(n, load(d, n, x + i + n) - mv);
        if (keep) {
            store(d, n, o + i, e0);
            store(d, n, o + i + n, e1);
        }
        s0 += e0;
        s1 += e1;
    }
    while (i + n <= len) : (i += n) {
        const e0 = vmath.exp(n, load(d, n, x + i) - mv);
        if (keep) store(d, n, o + i, e0);
        s0 += e0;
    }
    var sum = @reduce(.Add, s0 + s1);
    while (i < len) : (i += 1) {
        const e = vmath.exp(1, load(d, 1, x + i) - m1);
        if (keep) store(d, 1, o + i, e);
        sum += e[0];
    }
    if (!std.math.isFinite(m)) sum = nan; // all -inf, +inf or NaN: NaN everywhere (PyTorch)
    i = 0;
    if (log) {
        const ls: f32 = @log(sum);
        const lv: V = @splat(ls);
        while (i + n <= len) : (i += n) store(d, n, o + i, (load(d, n, x + i) - mv) - lv);
        while (i < len) : (i += 1) store(d, 1, o + i, (load(d, 1, x + i) - m1) - @as(@Vector(1, f32), @splat(ls)));
    } else {
        const inv: f32 = 1 / sum;
        const iv: V = @splat(inv);
        if (keep) {
            while (i + n <= len) : (i += n) store(d, n, o + i, load(d, n, o + i) * iv);
            while (i < len) : (i += 1) o[i] *= inv;
        } else {
            while (i + n <= len) : (i += n) store(d, n, o + i, vmath.exp(n, load(d, n, x + i) - mv) * iv);
            while (i < len) : (i += 1) store(d, 1, o + i, vmath.exp(1, load(d, 1, x + i) - m1) * @as(@Vector(1, f32), @splat(inv)));
        }
    }
}

/// f32 elements of the per-row buffer of half-type softmax (on the stack: 16 KiB).
const half_buf_len = 4096;

/// softmax of one contiguous f16/bf16 row of at most half_buf_len elements whose maximum is m.
fn softmaxRowBuffered(comptime n: usize, comptime d: DType, o: [*]dt.Storage(d), x: [*]const dt.Storage(d), len: usize, m: f32) void {
    const V = @Vector(n, f32);
    var buf: [half_buf_len]f32 align(64) = undefined;
    const b: [*]f32 = &buf;
    const mv: V = @splat(m);
    const m1: @Vector(1, f32) = @splat(m);
    var s0: V = @splat(0);
    var s1: V = @splat(0);
    var i: usize = 0;
    while (i + 2 * n <= len) : (i += 2 * n) {
        const e0 = vmath.exp(n, load(d, n, x + i) - mv);
        const e1 = vmath.exp(n, load(d, n, x + i + n) - mv);
        b[i..][0..n].* = e0;
        b[i + n ..][0..n].* = e1;
        s0 += e0;
        s1 += e1;
    }
    while (i + n <= len) : (i += n) {
        const e0 = vmath.exp(n, load(d, n, x + i) - mv);
        b[i..][0..n].* = e0;
        s0 += e0;
    }
    var sum = @reduce(.Add, s0 + s1);
    while (i < len) : (i += 1) {
        const e = vmath.exp(1, load(d, 1, x + i) - m1)[0];
        b[i] = e;
        sum += e;
    }
    if (!std.math.isFinite(m)) sum = nan;
    const inv: f32 = 1 / sum;
    const iv: V = @splat(inv);
    i = 0;
    while (i + n <= len) : (i += n) store(d, n, o + i, @as(V, b[i..][0..n].*) * iv);
    while (i < len) : (i += 1) store(d, 1, o + i, @as(@Vector(1, f32), @splat(b[i] * inv)));
}

/// softmax of n neighbouring rows at once (lane k = row k), stepping along them by `st`.
fn softmaxCols(comptime n: usize, comptime d: DType, comptime log: bool, o: [*]dt.Storage(d), x: [*]const dt.Storage(d), len: usize, st: [2]isize) void {
    const S = dt.Storage(d);
    const V = @Vector(n, f32);
    var m: V = @splat(-inf);
    var bad: @Vector(n, bool) = @splat(false);
    var px: isize = 0;
    for (0..len) |_| {
        const v = load(d, n, @ptrCast(ptrAt(S, x, px)));
        m = @select(f32, v > m, v, m);
        bad = bad | (v != v);
        px += st[1];
    }
    // NaN rows, and rows whose maximum is not finite, give NaN (through the sum).
    const ok = !bad & (@abs(m) < @as(V, @splat(inf)));
    const keep = d == .f32 and !log;
    var sum: V = @splat(0);
    px = 0;
    var po: isize = 0;
    for (0..len) |_| {
        const e = vmath.exp(n, load(d, n, @ptrCast(ptrAt(S, x, px))) - m);
        if (keep) store(d, n, @ptrCast(ptrAt(S, o, po)), e);
        sum += e;
        px += st[1];
        po += st[0];
    }
    sum = @select(f32, ok, sum, @as(V, @splat(nan)));
    px = 0;
    po = 0;
    if (log) {
        const ls = vmath.log(n, sum);
        for (0..len) |_| {
            store(d, n, @ptrCast(ptrAt(S, o, po)), (load(d, n, @ptrCast(ptrAt(S, x, px))) - m) - ls);
            px += st[1];
            po += st[0];
        }
    } else {
        const inv = @as(V, @splat(1)) / sum;
        for (0..len) |_| {
            const po_ptr: [*]S = @ptrCast(ptrAt(S, o, po));
            if (keep) {
                store(d, n, po_ptr, load(d, n, po_ptr) * inv);
            } else {
                store(d, n, po_ptr, vmath.exp(n, load(d, n, @ptrCast(ptrAt(S, x, px))) - m) * inv);
            }
            px += st[1];
            po += st[0];
        }
    }
}

/// softmax of one row with any strides (scalar).
fn softmaxStrided(comptime d: DType, comptime log: bool, o: [*]dt.Storage(d), x: [*]const dt.Storage(d), len: usize, st: [2]isize) void {
    const V1 = @Vector(1, f32);
    var m: f32 = -inf;
    var nan_seen = false;
    var px: isize = 0;
    for (0..len) |_| {
        const v = load1(d, x, px);
        if (v > m) m = v;
        if (v != v) nan_seen = true;
        px += st[1];
    }
    if (nan_seen) m = nan;
    const m1: V1 = @splat(m);
    var sum: f32 = 0;
    px = 0;
    for (0..len) |_| {
        sum += vmath.exp(1, @as(V1, @splat(load1(d, x, px))) - m1)[0];
        px += st[1];
    }
    if (!std.math.isFinite(m)) sum = nan;
    const ls: f32 = @log(sum);
    const inv: f32 = 1 / sum;
    px = 0;
    var po: isize = 0;
    for (0..len) |_| {
        const v = load1(d, x, px) - m;
        const r = if (log) v - ls else vmath.exp(1, @as(V1, @splat(v)))[0] * inv;
        store1(d, o, po, r);
        px += st[1];
        po += st[0];
    }
}

// ---- layerNorm / rmsNorm -------------------------------------------------------------------------

pub fn norm(comptime vbits: u32, par: *const Parallel, a: *const args.NormArgs) void {
    // Without weight and bias the weight dtype does not matter: use one instantiation.
    const wb: DType = if (a.weight == null and a.bias == null) a.dtype else a.wb_dtype;
    switch (a.dtype) {
        inline .f32, .f16, .bf16 => |d| switch (wb) {
            inline .f32, .f16, .bf16 => |wd| switch (a.kind) {
                inline else => |k| normTyped(vbits, k, d, wd, par, a),
            },
            else => unreachable, // src/ops/nn.ts passes float weights only
        },
        else => unreachable, // the door refuses non-float dtypes
    }
}

fn normTyped(comptime vbits: u32, comptime kind: args.NormKind, comptime d: DType, comptime wd: DType, par: *const Parallel, a: *const args.NormArgs) void {
    const S = dt.Storage(d);
    const W = dt.Storage(wd);
    const n = comptime lanes(vbits, f32);
    var l = rowsLayout(&a.layout);
    const len = l.shape[l.ndim - 1];
    if (len == 0 or l.size() == 0) return;
    const Ctx = struct {
        layout: *const strided.Layout(2),
        out: [*]S,
        in: [*]const S,
        w: ?[*]const W,
        b: ?[*]const W,
        eps: f64,

        pub fn row(self: *const @This(), offs: [2]isize, rlen: usize, st: [2]isize) void {
            const o: [*]S = @ptrCast(ptrAt(S, self.out, offs[0]));
            const x: [*]const S = @ptrCast(ptrAt(S, self.in, offs[1]));
            if (st[0] == 1 and st[1] == 1) {
                const stats = rowStats(n, kind, d, x, rlen, self.eps);
                if (self.w) |w| {
                    if (self.b) |b| normApply(n, kind, d, wd, true, true, o, x, rlen, stats, w, b) else normApply(n, kind, d, wd, true, false, o, x, rlen, stats, w, w);
                } else if (self.b) |b| {
                    normApply(n, kind, d, wd, false, true, o, x, rlen, stats, b, b);
                } else normApply(n, kind, d, wd, false, false, o, x, rlen, stats, undefined, undefined);
            } else normStrided(kind, d, wd, o, x, rlen, st, self.w, self.b, self.eps);
        }

        fn task(self: *const @This(), b: usize, e: usize) void {
            self.layout.forRows(b, e, self);
        }
    };
    const ctx: Ctx = .{
        .layout = &l,
        .out = @ptrCast(@alignCast(a.out)),
        .in = @ptrCast(@alignCast(a.in)),
        .w = @ptrCast(@alignCast(a.weight)),
        .b = @ptrCast(@alignCast(a.bias)),
        .eps = a.eps,
    };
    par.run(l.rows(), @max(1, grain_elems / len), &ctx, Ctx.task);
}

/// y = ((x - hi) - lo) * scale: the mean (layerNorm; 0 for rmsNorm) as an unevaluated f32 sum
/// hi + lo, so that x - mean loses nothing to the mean's rounding when |mean| >> std.
const Stats = struct { hi: f32 = 0, lo: f32 = 0, scale: f32 };

/// 1 / sqrt(v + eps), in f64.
inline fn rstd(v: f64, eps: f64) f32 {
    return @floatCast(1.0 / @sqrt(v + eps));
}

/// The mean x0 + s / len as hi + lo.
inline fn splitMean(x0: f32, s: f32, len: usize) Stats {
    const m: f64 = @as(f64, x0) + @as(f64, s) / @as(f64, @floatFromInt(len));
    const hi: f32 = @floatCast(m);
    return .{ .hi = hi, .lo = @floatCast(m - hi), .scale = 0 };
}

/// sum of (x - c0) - c1, or of its squares, over a contiguous row.
inline fn vsum(comptime n: usize, comptime d: DType, comptime sq: bool, x: [*]const dt.Storage(d), len: usize, c0: f32, c1: f32) f32 {
    const V = @Vector(n, f32);
    const cv0: V = @splat(c0);
    const cv1: V = @splat(c1);
    var s0: V = @splat(0);
    var s1: V = @splat(0);
    var s2: V = @splat(0);
    var s3: V = @splat(0);
    var i: usize = 0;
    while (i + 4 * n <= len) : (i += 4 * n) {
        const v0 = (load(d, n, x + i) - cv0) - cv1;
        const v1 = (load(d, n, x + i + n) - cv0) - cv1;
        const v2 = (load(d, n, x + i + 2 * n) - cv0) - cv1;
        const v3 = (load(d, n, x + i + 3 * n) - cv0) - cv1;
        s0 += if (sq) v0 * v0 else v0;
        s1 += if (sq) v1 * v1 else v1;
        s2 += if (sq) v2 * v2 else v2;
        s3 += if (sq) v3 * v3 else v3;
    }
    while (i + n <= len) : (i += n) {
        const v0 = (load(d, n, x + i) - cv0) - cv1;
        s0 += if (sq) v0 * v0 else v0;
    }
    var s = @reduce(.Add, (s0 + s1) + (s2 + s3));
    while (i < len) : (i += 1) {
        const v = (load(d, 1, x + i)[0] - c0) - c1;
        s += if (sq) v * v else v;
    }
    return s;
}

/// Mean (as hi + lo) and 1/sqrt(..) of one contiguous row. The mean is summed relative to x[0]
/// (less cancellation for data far from 0); the variance is the centred second pass.
inline fn rowStats(comptime n: usize, comptime kind: args.NormKind, comptime d: DType, x: [*]const dt.Storage(d), len: usize, eps: f64) Stats {
    const lf: f64 = @floatFromInt(len);
    switch (kind) {
        .layer => {
            const x0 = load(d, 1, x)[0];
            var st = splitMean(x0, vsum(n, d, false, x, len, x0, 0), len);
            st.scale = rstd(@as(f64, vsum(n, d, true, x, len, st.hi, st.lo)) / lf, eps);
            return st;
        },
        .rms => return .{ .scale = rstd(@as(f64, vsum(n, d, true, x, len, 0, 0)) / lf, eps) },
    }
}

/// o = ((x - hi) - lo) * scale [* w] [+ b] on one contiguous row (rmsNorm: o = x * scale ..).
inline fn normApply(comptime n: usize, comptime kind: args.NormKind, comptime d: DType, comptime wd: DType, comptime hw: bool, comptime hb: bool, o: [*]dt.Storage(d), x: [*]const dt.Storage(d), len: usize, s: Stats, w: [*]const dt.Storage(wd), b: [*]const dt.Storage(wd)) void {
    const V = @Vector(n, f32);
    const V1 = @Vector(1, f32);
    const hv: V = @splat(s.hi);
    const lv: V = @splat(s.lo);
    const scv: V = @splat(s.scale);
    var i: usize = 0;
    while (i + n <= len) : (i += n) {
        var y = load(d, n, x + i);
        if (kind == .layer) y = (y - hv) - lv;
        y *= scv;
        if (hw) y *= load(wd, n, w + i);
        if (hb) y += load(wd, n, b + i);
        store(d, n, o + i, y);
    }
    while (i < len) : (i += 1) {
        var y = load(d, 1, x + i);
        if (kind == .layer) y = (y - @as(V1, @splat(s.hi))) - @as(V1, @splat(s.lo));
        y *= @as(V1, @splat(s.scale));
        if (hw) y *= load(wd, 1, w + i);
        if (hb) y += load(wd, 1, b + i);
        store(d, 1, o + i, y);
    }
}

/// layerNorm / rmsNorm of one row with any strides (scalar).
fn normStrided(comptime kind: args.NormKind, comptime d: DType, comptime wd: DType, o: [*]dt.Storage(d), x: [*]const dt.Storage(d), len: usize, st: [2]isize, w: ?[*]const dt.Storage(wd), b: ?[*]const dt.Storage(wd), eps: f64) void {
    var stats: Stats = .{ .scale = 0 };
    var px: isize = 0;
    if (kind == .layer) {
        const x0 = load1(d, x, 0);
        var s: f32 = 0;
        for (0..len) |_| {
            s += load1(d, x, px) - x0;
            px += st[1];
        }
        stats = splitMean(x0, s, len);
    }
    var q: f32 = 0;
    px = 0;
    for (0..len) |_| {
        const v = (load1(d, x, px) - stats.hi) - stats.lo;
        q += v * v;
        px += st[1];
    }
    stats.scale = rstd(@as(f64, q) / @as(f64, @floatFromInt(len)), eps);
    px = 0;
    var po: isize = 0;
    for (0..len) |i| {
        var y = ((load1(d, x, px) - stats.hi) - stats.lo) * stats.scale;
        if (w) |wp| y *= load(wd, 1, wp + i)[0];
        if (b) |bp| y += load(wd, 1, bp + i)[0];
        store1(d, o, po, y);
        px += st[1];
        po += st[0];
    }
}

// ---- tests -------------------------------------------------------------------------------------

const testing = std.testing;

/// A test operand: values in f64 (already representable in `d`) and their storage bytes.
fn TestBuf(comptime d: DType) type {
    return struct {
        data: []dt.Storage(d),

        fn init(vals: []const f64) !@This() {
            const data = try testing.allocator.alloc(dt.Storage(d), vals.len);
            for (data, vals) |*p, v| p.* = dt.fromFloat(d, v);
            return .{ .data = data };
        }
        fn get(self: @This(), i: usize) f64 {
            return @floatCast(load(d, 1, self.data.ptr + i)[0]);
        }
        fn deinit(self: @This()) void {
            testing.allocator.free(self.data);
        }
    };
}

fn testLayout(shape: []const usize, so: []const isize, si: []const isize) strided.Layout(2) {
    var l: strided.Layout(2) = .{ .ndim = shape.len, .shape = undefined, .strides = undefined };
    for (shape, 0..) |s, i| {
        l.shape[i] = s;
        l.strides[0][i] = so[i];
        l.strides[1][i] = si[i];
    }
    return l;
}

/// Row-major strides of a shape; `perm` says which memory axis each layout axis is.
fn permStrides(shape: []const usize, perm: []const usize, out: []isize) void {
    // memory shape: mshape[perm[i]] = shape[i]
    var mshape: [8]usize = undefined;
    for (perm, 0..) |p, i| mshape[p] = shape[i];
    var mst: [8]isize = undefined;
    var acc: isize = 1;
    var ax = shape.len;
    while (ax > 0) {
        ax -= 1;
        mst[ax] = acc;
        acc *= @intCast(mshape[ax]);
    }
    for (perm, 0..) |p, i| out[i] = mst[p];
}

/// Offset of layout index `idx` with `strides`.
fn offsetOf(idx: []const usize, strides: []const isize) usize {
    var o: isize = 0;
    for (idx, strides) |i, s| o += @as(isize, @intCast(i)) * s;
    return @intCast(o);
}

fn nextIdx(idx: []usize, shape: []const usize) bool {
    var ax = shape.len;
    while (ax > 0) {
        ax -= 1;
        idx[ax] += 1;
        if (idx[ax] < shape[ax]) return true;
        idx[ax] = 0;
    }
    return false;
}

fn tolFor(d: DType) f64 {
    return switch (d) {
        .f32 => 2e-6,
        .f16 => 2e-3,
        .bf16 => 1.6e-2,
        else => unreachable,
    };
}

/// Checks softmax/logSoftmax against an f64 reference for one layout (in and out permuted by
/// `pin`/`pout` relative to the layout's axes).
fn checkSoftmax(comptime vbits: u32, comptime d: DType, log: bool, shape: []const usize, pin: []const usize, pout: []const usize, vals_fn: *const fn (usize) f64) !void {
    var total: usize = 1;
    for (shape) |s| total *= s;
    const vals = try testing.allocator.alloc(f64, total);
    defer testing.allocator.free(vals);
    for (vals, 0..) |*v, i| v.* = vals_fn(i);
    const xin = try TestBuf(d).init(vals);
    defer xin.deinit();
    const xout = try TestBuf(d).init(vals);
    defer xout.deinit();
    var si: [8]isize = undefined;
    var so: [8]isize = undefined;
    permStrides(shape, pin, si[0..shape.len]);
    permStrides(shape, pout, so[0..shape.len]);
    var a: args.SoftmaxArgs = .{ .dtype = d, .log = @intFromBool(log), .out = @ptrCast(xout.data.ptr), .in = @ptrCast(xin.data.ptr), .layout = testLayout(shape, so[0..shape.len], si[0..shape.len]) };
    softmax(vbits, &Parallel.serial, &a);
    // Reference: rows along the last layout axis.
    const last = shape.len - 1;
    const len = shape[last];
    var idx: [8]usize = @splat(0);
    while (true) {
        // idx[last] == 0 here: one row.
        var m: f64 = -std.math.inf(f64);
        for (0..len) |j| {
            idx[last] = j;
            m = @max(m, xin.get(offsetOf(idx[0..shape.len], si[0..shape.len])));
        }
        var s: f64 = 0;
        for (0..len) |j| {
            idx[last] = j;
            s += @exp(xin.get(offsetOf(idx[0..shape.len], si[0..shape.len])) - m);
        }
        for (0..len) |j| {
            idx[last] = j;
            const x = xin.get(offsetOf(idx[0..shape.len], si[0..shape.len]));
            const want = if (log) x - m - @log(s) else @exp(x - m) / s;
            const got = xout.get(offsetOf(idx[0..shape.len], so[0..shape.len]));
            const tol = tolFor(d) * (if (log) @max(1.0, @abs(want)) else @max(want, 1e-30)) + @as(f64, if (log) 0 else 1e-7);
            if (!(@abs(got - want) <= tol)) {
                std.debug.print("softmax vbits={d} {t} log={} shape={any} idx={any}: got {d} want {d}\n", .{ vbits, d, log, shape, idx[0..shape.len], got, want });
                return error.TestUnexpectedResult;
            }
        }
        idx[last] = 0;
        if (shape.len == 1 or !nextIdx(idx[0..last], shape[0..last])) break;
    }
}

fn valsA(i: usize) f64 {
    const f: f64 = @floatFromInt(i);
    return @sin(f * 1.7) * 4 + @cos(f * 0.3);
}

fn valsBig(i: usize) f64 {
    const f: f64 = @floatFromInt(i);
    return 1e4 + @sin(f * 1.3) * 8;
}

test "softmax and logSoftmax match an f64 reference: contiguous, transposed, column and strided rows" {
    inline for (.{ 0, 128, 256, 512 }) |vb| {
        inline for (.{ DType.f32, DType.f16, DType.bf16 }) |d| {
            for ([_]bool{ false, true }) |log| {
                try checkSoftmax(vb, d, log, &.{ 3, 37 }, &.{ 0, 1 }, &.{ 0, 1 }, valsA);
                try checkSoftmax(vb, d, log, &.{ 70 }, &.{0}, &.{0}, valsA);
                try checkSoftmax(vb, d, log, &.{ 2, 3, 5 }, &.{ 0, 1, 2 }, &.{ 0, 1, 2 }, valsA);
                // softmax along memory axis 0 of a [37, 19] matrix: column path (19 >= n) + tails
                try checkSoftmax(vb, d, log, &.{ 19, 37 }, &.{ 1, 0 }, &.{ 1, 0 }, valsA);
                try checkSoftmax(vb, d, log, &.{ 70, 9 }, &.{ 1, 0 }, &.{ 1, 0 }, valsA); // 4 vectors wide
                // input transposed, output contiguous: strided path
                try checkSoftmax(vb, d, log, &.{ 5, 33 }, &.{ 1, 0 }, &.{ 0, 1 }, valsA);
                // 3-d with the reduced axis in the middle of memory
                try checkSoftmax(vb, d, log, &.{ 2, 17, 4 }, &.{ 0, 2, 1 }, &.{ 0, 2, 1 }, valsA);
                // large values do not overflow
                try checkSoftmax(vb, d, log, &.{ 4, 40 }, &.{ 0, 1 }, &.{ 0, 1 }, valsBig);
                try checkSoftmax(vb, d, log, &.{ 40, 20 }, &.{ 1, 0 }, &.{ 1, 0 }, valsBig);
            }
        }
    }
}

test "half-type softmax rows longer than the stack buffer recompute exp" {
    inline for (.{ 0, 256 }) |vb| {
        inline for (.{ DType.f16, DType.bf16 }) |d| {
            try checkSoftmax(vb, d, false, &.{ 2, half_buf_len + 37 }, &.{ 0, 1 }, &.{ 0, 1 }, valsA);
            try checkSoftmax(vb, d, false, &.{ 2, half_buf_len }, &.{ 0, 1 }, &.{ 0, 1 }, valsA);
        }
    }
}

test "softmax over columns split into several job items" {
    inline for (.{ 128, 512 }) |vb| {
        // rows of 4 along memory axis 0; 5000 columns = more than one item of ~grain_elems
        try checkSoftmax(vb, .f32, false, &.{ 5000, 4 }, &.{ 1, 0 }, &.{ 1, 0 }, valsA);
        try checkSoftmax(vb, .bf16, true, &.{ 2, 5003, 4 }, &.{ 0, 2, 1 }, &.{ 0, 2, 1 }, valsA);
    }
}

test "softmax edge rows: -inf entries, all -inf, +inf, NaN, a 0-d layout" {
    inline for (.{ 0, 128, 256, 512 }) |vb| {
        for ([_]bool{ false, true }) |log| {
            const ninf = -std.math.inf(f32);
            const at = struct {
                fn f(md: usize, r: usize, j: usize) usize {
                    return if (md == 0) r * 20 + j else r + 4 * j;
                }
            }.f;
            // 4 rows of 20 (along memory, or along columns of x seen as [20, 4]): with some -inf;
            // all -inf; with +inf; with NaN
            for (0..2) |mode| {
                var x: [80]f32 = undefined;
                for (0..4) |r| for (0..20) |j| {
                    x[at(mode, r, j)] = @floatFromInt((r * 20 + j) % 7);
                };
                x[at(mode, 0, 3)] = ninf;
                x[at(mode, 0, 17)] = ninf;
                for (0..20) |j| x[at(mode, 1, j)] = ninf;
                x[at(mode, 2, 5)] = std.math.inf(f32);
                x[at(mode, 3, 19)] = nan;
                var o: [80]f32 = undefined;
                const l = if (mode == 0) testLayout(&.{ 4, 20 }, &.{ 20, 1 }, &.{ 20, 1 }) else testLayout(&.{ 4, 20 }, &.{ 1, 4 }, &.{ 1, 4 });
                var a: args.SoftmaxArgs = .{ .dtype = .f32, .log = @intFromBool(log), .out = @ptrCast(&o), .in = @ptrCast(&x), .layout = l };
                softmax(vb, &Parallel.serial, &a);
                // row 0: -inf entries give 0 (log: -inf); the others are finite
                var s: f64 = 0;
                for (0..20) |j| {
                    const v = o[at(mode, 0, j)];
                    if (j == 3 or j == 17) {
                        try testing.expectEqual(if (log) ninf else 0, v);
                    } else try testing.expect(std.math.isFinite(v));
                    s += if (log) @exp(@as(f64, v)) else v;
                }
                try testing.expectApproxEqAbs(@as(f64, 1), s, 1e-5);
                for (1..4) |r| for (0..20) |j| try testing.expect(std.math.isNan(o[at(mode, r, j)]));
            }
        }
        // 0-d: one element
        var one: [1]f32 = .{42};
        var o1: [1]f32 = undefined;
        var a0: args.SoftmaxArgs = .{ .dtype = .f32, .log = 0, .out = @ptrCast(&o1), .in = @ptrCast(&one), .layout = testLayout(&.{}, &.{}, &.{}) };
        softmax(vb, &Parallel.serial, &a0);
        try testing.expectEqual(@as(f32, 1), o1[0]);
        a0.log = 1;
        softmax(vb, &Parallel.serial, &a0);
        try testing.expectEqual(@as(f32, 0), o1[0]);
    }
}

fn checkNorm(comptime vbits: u32, comptime d: DType, comptime wd: DType, kind: args.NormKind, hw: bool, hb: bool, shape: []const usize, pin: []const usize, vals_fn: *const fn (usize) f64) !void {
    var total: usize = 1;
    for (shape) |s| total *= s;
    const last = shape.len - 1;
    const len = shape[last];
    const vals = try testing.allocator.alloc(f64, total);
    defer testing.allocator.free(vals);
    for (vals, 0..) |*v, i| v.* = vals_fn(i);
    const xin = try TestBuf(d).init(vals);
    defer xin.deinit();
    const xout = try TestBuf(d).init(vals);
    defer xout.deinit();
    var wv: [64]f64 = undefined;
    var bv: [64]f64 = undefined;
    for (0..len) |j| {
        wv[j] = 0.5 + @as(f64, @floatFromInt(j % 5)) * 0.25;
        bv[j] = @as(f64, @floatFromInt(j % 3)) - 1;
    }
    const w = try TestBuf(wd).init(wv[0..len]);
    defer w.deinit();
    const b = try TestBuf(wd).init(bv[0..len]);
    defer b.deinit();
    var si: [8]isize = undefined;
    var so: [8]isize = undefined;
    permStrides(shape, pin, si[0..shape.len]);
    const ident = [_]usize{ 0, 1, 2, 3, 4, 5, 6, 7 };
    permStrides(shape, ident[0..shape.len], so[0..shape.len]);
    const eps = 1e-5;
    var a: args.NormArgs = .{
        .kind = kind,
        .dtype = d,
        .wb_dtype = wd,
        .eps = eps,
        .out = @ptrCast(xout.data.ptr),
        .in = @ptrCast(xin.data.ptr),
        .weight = if (hw) @ptrCast(w.data.ptr) else null,
        .bias = if (hb) @ptrCast(b.data.ptr) else null,
        .layout = testLayout(shape, so[0..shape.len], si[0..shape.len]),
    };
    norm(vbits, &Parallel.serial, &a);
    var idx: [8]usize = @splat(0);
    const lf: f64 = @floatFromInt(len);
    while (true) {
        var mean: f64 = 0;
        if (kind == .layer) {
            for (0..len) |j| {
                idx[last] = j;
                mean += xin.get(offsetOf(idx[0..shape.len], si[0..shape.len]));
            }
            mean /= lf;
        }
        var q: f64 = 0;
        for (0..len) |j| {
            idx[last] = j;
            const v = xin.get(offsetOf(idx[0..shape.len], si[0..shape.len])) - mean;
            q += v * v;
        }
        const r = 1 / @sqrt(q / lf + eps);
        for (0..len) |j| {
            idx[last] = j;
            var want = (xin.get(offsetOf(idx[0..shape.len], si[0..shape.len])) - mean) * r;
            if (hw) want *= w.get(j);
            if (hb) want += b.get(j);
            const got = xout.get(offsetOf(idx[0..shape.len], so[0..shape.len]));
            if (!(@abs(got - want) <= tolFor(d) * @max(1.0, @abs(want)) * 2)) {
                std.debug.print("norm vbits={d} {t}/{t} {t} w={} b={} shape={any} idx={any}: got {d} want {d}\n", .{ vbits, d, wd, kind, hw, hb, shape, idx[0..shape.len], got, want });
                return error.TestUnexpectedResult;
            }
        }
        idx[last] = 0;
        if (shape.len == 1 or !nextIdx(idx[0..last], shape[0..last])) break;
    }
}

test "layerNorm and rmsNorm match an f64 reference, with and without weight and bias" {
    inline for (.{ 0, 128, 256, 512 }) |vb| {
        inline for (.{ DType.f32, DType.f16, DType.bf16 }) |d| {
            inline for (.{ DType.f32, DType.bf16 }) |wd| {
                for ([_]args.NormKind{ .layer, .rms }) |kind| {
                    for ([_][2]bool{ .{ false, false }, .{ true, false }, .{ false, true }, .{ true, true } }) |wb| {
                        try checkNorm(vb, d, wd, kind, wb[0], wb[1], &.{ 3, 37 }, &.{ 0, 1 }, valsA);
                        try checkNorm(vb, d, wd, kind, wb[0], wb[1], &.{64}, &.{0}, valsA);
                        try checkNorm(vb, d, wd, kind, wb[0], wb[1], &.{ 6, 19 }, &.{ 1, 0 }, valsA); // strided rows
                        try checkNorm(vb, d, wd, kind, wb[0], wb[1], &.{ 2, 3, 5 }, &.{ 1, 0, 2 }, valsA);
                        try checkNorm(vb, d, wd, kind, wb[0], wb[1], &.{ 2, 48 }, &.{ 0, 1 }, valsBig); // a large mean
                    }
                }
            }
        }
    }
}

test "rows of one element" {
    var x = [_]f32{ 3, -2 };
    var o: [2]f32 = undefined;
    var a: args.NormArgs = .{ .kind = .layer, .dtype = .f32, .wb_dtype = .f32, .eps = 1e-5, .out = @ptrCast(&o), .in = @ptrCast(&x), .weight = null, .bias = null, .layout = testLayout(&.{ 2, 1 }, &.{ 1, 1 }, &.{ 1, 1 }) };
    norm(256, &Parallel.serial, &a);
    try testing.expectEqualSlices(f32, &.{ 0, 0 }, &o);
    var s: args.SoftmaxArgs = .{ .dtype = .f32, .log = 0, .out = @ptrCast(&o), .in = @ptrCast(&x), .layout = testLayout(&.{ 2, 1 }, &.{ 1, 1 }, &.{ 1, 1 }) };
    softmax(256, &Parallel.serial, &s);
    try testing.expectEqualSlices(f32, &.{ 1, 1 }, &o);
}
