//! softmax / logSoftmax along the last axis (args.SoftmaxArgs), exported through norm.zig, whose
//! row helpers (rowsLayout, load1, store1) it shares.
//!
//! Written once: generic over the dtype (f32, f16, bf16; all compute in f32) and the vector width
//! `vbits` of the ISA level this object is compiled for. The layout's last axis is the reduced
//! one; the other ("outer") axes are coalesced among themselves only, never with the last axis,
//! and each outer index is one row. Rows are split across the thread pool.
//!
//! Each row takes one of three paths:
//! - contiguous (last-axis stride 1 in both operands): vector passes along the row;
//! - columns: when the innermost outer axis has stride 1 in both operands, as for
//!   softmax over axis 0 of a row-major matrix, n neighbouring rows are done at once, one per
//!   vector lane, walking the reduced axis with its stride;
//! - strided: a scalar loop with the strides.
//!
//! Semantics (as PyTorch): softmax = exp(x - max) / sum(exp(x - max)); logSoftmax = (x - max) -
//! log(sum(exp(x - max))). A row whose maximum is not finite (all -inf, any +inf) or that holds a
//! NaN gives NaN everywhere.
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
const norm_mod = @import("norm.zig");
const grain_elems = norm_mod.grain_elems;
const inf = norm_mod.inf;
const nan = norm_mod.nan;
const load1 = norm_mod.load1;
const store1 = norm_mod.store1;
const rowsLayout = norm_mod.rowsLayout;


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
pub const half_buf_len = 4096;

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
