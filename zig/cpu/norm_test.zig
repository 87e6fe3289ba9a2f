//! Tests of softmax.zig and norm.zig against f64 references: contiguous, transposed, column and
//! strided rows, long half-type rows, edge rows (-inf, +inf, NaN, 0-d), weight and bias variants.
const std = @import("std");
const layout_util = @import("test_layout.zig");
const permStrides = layout_util.permStrides;
const offsetOf = layout_util.offsetOf;
const nextIdx = layout_util.nextIdx;
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
const norm = @import("norm.zig").norm;
const softmax_mod = @import("softmax.zig");
const softmax = softmax_mod.softmax;
const half_buf_len = softmax_mod.half_buf_len;
const inf = std.math.inf(f32);
const nan = std.math.nan(f32);

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
