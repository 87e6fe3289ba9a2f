//! layerNorm / rmsNorm over the last axis, and the row helpers softmax.zig shares (the softmax
//! kernels live in softmax.zig and are re-exported here; the tests of both are in norm_test.zig).
//!
//! Written once: generic over the dtype (f32, f16, bf16; all compute in f32) and the vector width
//! `vbits` of the ISA level this object is compiled for. The layout's last axis is the reduced
//! one; the other ("outer") axes are coalesced among themselves only, never with the last axis,
//! and each outer index is one row. Rows are split across the thread pool.
//!
//! Each row is done with vector passes when the last axis is contiguous in both operands, else
//! by a scalar loop with the strides.
//!
//! Semantics (as PyTorch): layerNorm = (x - mean) / sqrt(var + eps) * weight + bias with the
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

/// softmax / logSoftmax (softmax.zig); kernels.zig reaches it through this module.
pub const softmax = @import("softmax.zig").softmax;

/// Elements per job chunk handed to a thread.
pub const grain_elems = 16 * 1024;

pub const inf = std.math.inf(f32);
pub const nan = std.math.nan(f32);

pub inline fn load1(comptime d: DType, p: [*]const dt.Storage(d), off: isize) f32 {
    return load(d, 1, @ptrCast(ptrAt(dt.Storage(d), p, off)))[0];
}

pub inline fn store1(comptime d: DType, p: [*]dt.Storage(d), off: isize, v: f32) void {
    store(d, 1, @ptrCast(ptrAt(dt.Storage(d), p, off)), @as(@Vector(1, f32), @splat(v)));
}

/// The layout with its outer axes coalesced (at least one, possibly of size 1) and the last axis
/// kept apart as the innermost; a 0-d layout becomes one row of one element.
pub fn rowsLayout(src: *const strided.Layout(2)) strided.Layout(2) {
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

test {
    _ = @import("softmax.zig");
    _ = @import("norm_test.zig");
}
