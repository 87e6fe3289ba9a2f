//! Tests of reduce.zig: every op against an f64 reference on every path and vector width, NaN
//! and tie rules, integer wrapping, argmin/argmax on all-extreme data.
const std = @import("std");
const dt = @import("dtype.zig");
const args = @import("args.zig");
const strided = @import("strided.zig");
const Parallel = @import("parallel.zig").Parallel;
const ptrAt = @import("copy.zig").ptrAt;
const elementwise = @import("elementwise.zig");
const DType = dt.DType;
const ReduceOp = args.ReduceOp;
const reduce = @import("reduce.zig").reduce;

const testing = std.testing;

/// A deterministic pseudo-random generator for test data (splitmix64).
const Rng = struct {
    s: u64,
    fn next(self: *Rng) u64 {
        self.s +%= 0x9E3779B97F4A7C15;
        var z = self.s;
        z = (z ^ (z >> 30)) *% 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) *% 0x94D049BB133111EB;
        return z ^ (z >> 31);
    }
    fn float(self: *Rng) f64 {
        return @as(f64, @floatFromInt(self.next() >> 11)) / 9007199254740992.0;
    }
};

/// Scalar f64 reference of one op over values in logical order.
fn refReduce(op: ReduceOp, xs: []const f64, ddof: f64) f64 {
    const nf: f64 = @floatFromInt(xs.len);
    switch (op) {
        .sum, .mean => {
            var s: f64 = 0;
            for (xs) |x| s += x;
            return if (op == .mean) s / nf else s;
        },
        .prod => {
            var p: f64 = 1;
            for (xs) |x| p *= x;
            return p;
        },
        .min, .max => {
            var m = xs[0];
            for (xs) |x| {
                if (std.math.isNan(x)) return x;
                if ((op == .max and x > m) or (op == .min and x < m)) m = x;
            }
            return m;
        },
        .argmin, .argmax => {
            var bi: usize = 0;
            for (xs, 0..) |x, i| {
                if (std.math.isNan(x)) return @floatFromInt(i);
                if ((op == .argmax and x > xs[bi]) or (op == .argmin and x < xs[bi])) bi = i;
            }
            return @floatFromInt(bi);
        },
        .variance, .std => {
            var s: f64 = 0;
            for (xs) |x| s += x;
            const mu = s / nf;
            var q: f64 = 0;
            for (xs) |x| q += (x - mu) * (x - mu);
            const v = q / (nf - ddof);
            return if (op == .std) @sqrt(v) else v;
        },
        .logsumexp => {
            var m = -std.math.inf(f64);
            for (xs) |x| m = @max(m, x);
            var s: f64 = 0;
            for (xs) |x| s += @exp(x - m);
            return m + @log(s);
        },
    }
}

fn fillArgs(a: *args.ReduceArgs, shape: []const usize, so: []const isize, si: []const isize) void {
    a.layout.ndim = shape.len;
    for (shape, 0..) |s, i| {
        a.layout.shape[i] = s;
        a.layout.strides[0][i] = if (i < so.len) so[i] else 0;
        a.layout.strides[1][i] = si[i];
    }
}

/// Reduces a [rows, cols] f32 matrix over axis `ax` (0 or 1) or both (ax = 2) at vector width
/// vbits and checks every output against the f64 reference.
fn checkMatrix(comptime vbits: u32, op: ReduceOp, rows: usize, cols: usize, ax: u32, transposed: bool) !void {
    const alloc = testing.allocator;
    const data = try alloc.alloc(f32, rows * cols);
    defer alloc.free(data);
    var rng: Rng = .{ .s = rows * 1000 + cols };
    for (data) |*x| x.* = @floatCast(rng.float() * 4 - 1);
    if (op == .prod) for (data) |*x| {
        x.* = @floatCast(0.9 + rng.float() * 0.2);
    };
    // Logical [rows, cols]; stored row-major, or column-major when transposed.
    const sr: isize = if (transposed) 1 else @intCast(cols);
    const sc: isize = if (transposed) @intCast(rows) else 1;
    const n_out: usize = switch (ax) {
        0 => cols,
        1 => rows,
        else => 1,
    };
    const out = try alloc.alloc(f32, n_out);
    defer alloc.free(out);
    const iout = std.mem.bytesAsSlice(i32, std.mem.sliceAsBytes(out));
    const is_arg = op == .argmin or op == .argmax;
    var a: args.ReduceArgs = .{ .op = op, .in_dtype = .f32, .out_dtype = if (is_arg) .i32 else .f32, .kept = if (ax == 2) 0 else 1, .ddof = 1, .out = std.mem.sliceAsBytes(out).ptr, .in = std.mem.sliceAsBytes(data).ptr, .layout = undefined };
    switch (ax) {
        0 => fillArgs(&a, &.{ cols, rows }, &.{1}, &.{ sc, sr }),
        1 => fillArgs(&a, &.{ rows, cols }, &.{1}, &.{ sr, sc }),
        else => fillArgs(&a, &.{ rows, cols }, &.{}, &.{ sr, sc }),
    }
    reduce(vbits, &Parallel.serial, &a);
    const xs = try alloc.alloc(f64, rows * cols);
    defer alloc.free(xs);
    for (0..n_out) |o| {
        var m: usize = 0;
        const r0: usize = if (ax == 1) o else 0;
        const r1: usize = if (ax == 1) o + 1 else rows;
        const c0: usize = if (ax == 0) o else 0;
        const c1: usize = if (ax == 0) o + 1 else cols;
        for (r0..r1) |r| for (c0..c1) |c| {
            xs[m] = data[@intCast(@as(isize, @intCast(r)) * sr + @as(isize, @intCast(c)) * sc)];
            m += 1;
        };
        const want = refReduce(op, xs[0..m], 1);
        if (is_arg) {
            try testing.expectEqual(@as(i32, @intFromFloat(want)), iout[o]);
        } else {
            const got: f64 = out[o];
            const tol = 2e-6 * @max(1.0, @abs(want)) + 1e-6 * @sqrt(@as(f64, @floatFromInt(m)));
            if (!(@abs(got - want) <= tol)) {
                std.debug.print("op {t} vbits {d} [{d},{d}] ax {d} t {} out {d}: got {d} want {d}\n", .{ op, vbits, rows, cols, ax, transposed, o, got, want });
                return error.TestUnexpectedResult;
            }
        }
    }
}

test "every op against the f64 reference, every path, at every vector width" {
    const shapes = [_][2]usize{ .{ 1, 1 }, .{ 3, 5 }, .{ 7, 70 }, .{ 70, 7 }, .{ 33, 129 }, .{ 2, 66000 }, .{ 66000, 2 } };
    inline for (.{ 0, 128, 256, 512 }) |vb| {
        inline for (@typeInfo(ReduceOp).@"enum".field_values) |v| {
            const op: ReduceOp = @enumFromInt(v);
            for (shapes) |s| for (0..3) |ax| for ([_]bool{ false, true }) |tr| {
                if (op == .variance or op == .std) {
                    if (s[0] * s[1] < 2) continue;
                    if (ax == 0 and s[0] < 2) continue;
                    if (ax == 1 and s[1] < 2) continue;
                }
                try checkMatrix(vb, op, s[0], s[1], @intCast(ax), tr);
            };
        }
    }
}

test "NaN propagates; argmax takes the first NaN; ties take the first index" {
    const nan = std.math.nan(f32);
    var x: [47]f32 = @splat(0);
    x[0..7].* = .{ 1, 5, 5, nan, 2, nan, 5 };
    var out: [1]f32 = undefined;
    var a: args.ReduceArgs = .{ .op = .sum, .in_dtype = .f32, .out_dtype = .f32, .kept = 0, .ddof = 0, .out = std.mem.sliceAsBytes(&out).ptr, .in = std.mem.sliceAsBytes(&x).ptr, .layout = undefined };
    fillArgs(&a, &.{x.len}, &.{}, &.{1});
    inline for (.{ ReduceOp.sum, .mean, .min, .max, .variance, .logsumexp }) |op| {
        a.op = op;
        reduce(256, &Parallel.serial, &a);
        try testing.expect(std.math.isNan(out[0]));
    }
    var idx: [1]i32 = undefined;
    a.out = std.mem.sliceAsBytes(&idx).ptr;
    a.out_dtype = .i32;
    a.op = .argmax;
    reduce(256, &Parallel.serial, &a);
    try testing.expectEqual(@as(i32, 3), idx[0]);
    x[3] = 0;
    x[5] = 0;
    reduce(256, &Parallel.serial, &a);
    try testing.expectEqual(@as(i32, 1), idx[0]);
    a.op = .argmin;
    reduce(256, &Parallel.serial, &a);
    try testing.expectEqual(@as(i32, 3), idx[0]);
}

test "integer sums wrap in 32 bits; sums of 0.1 are accurate" {
    var xs: [100]i32 = @splat(std.math.maxInt(i32));
    var o: [1]i32 = undefined;
    var a: args.ReduceArgs = .{ .op = .sum, .in_dtype = .i32, .out_dtype = .i32, .kept = 0, .ddof = 0, .out = std.mem.sliceAsBytes(&o).ptr, .in = std.mem.sliceAsBytes(&xs).ptr, .layout = undefined };
    fillArgs(&a, &.{xs.len}, &.{}, &.{1});
    reduce(128, &Parallel.serial, &a);
    try testing.expectEqual(@as(i32, @truncate(@as(i64, std.math.maxInt(i32)) * 100)), o[0]);
    const big = try testing.allocator.alloc(f32, 1_000_000);
    defer testing.allocator.free(big);
    @memset(big, 0.1);
    var f: [1]f32 = undefined;
    a = .{ .op = .sum, .in_dtype = .f32, .out_dtype = .f32, .kept = 0, .ddof = 0, .out = std.mem.sliceAsBytes(&f).ptr, .in = std.mem.sliceAsBytes(big).ptr, .layout = undefined };
    fillArgs(&a, &.{big.len}, &.{}, &.{1});
    reduce(512, &Parallel.serial, &a);
    try testing.expectApproxEqRel(@as(f32, 1e5), f[0], 1e-5);
}


test "argmin/argmax: all-extreme data gives index 0 on every path; min/max of integers with flip" {
    const alloc = testing.allocator;
    const n = 70_000; // chunked
    const xs = try alloc.alloc(f32, n);
    defer alloc.free(xs);
    @memset(xs, std.math.inf(f32));
    var o: [1]i32 = undefined;
    var a: args.ReduceArgs = .{ .op = .argmin, .in_dtype = .f32, .out_dtype = .i32, .kept = 0, .ddof = 0, .out = std.mem.sliceAsBytes(&o).ptr, .in = std.mem.sliceAsBytes(xs).ptr, .layout = undefined };
    fillArgs(&a, &.{n}, &.{}, &.{1});
    reduce(0, &Parallel.serial, &a);
    try testing.expectEqual(@as(i32, 0), o[0]);
    xs[40000] = 1;
    xs[50000] = 1;
    reduce(0, &Parallel.serial, &a);
    try testing.expectEqual(@as(i32, 40000), o[0]);
    @memset(xs, -std.math.inf(f32));
    a.op = .argmax;
    reduce(0, &Parallel.serial, &a);
    try testing.expectEqual(@as(i32, 0), o[0]);
    // i8: max and argmax through the bit flip.
    var b = [_]i8{ -128, 5, 127, -3, 127 };
    var m: [1]i8 = undefined;
    a = .{ .op = .max, .in_dtype = .i8, .out_dtype = .i8, .kept = 0, .ddof = 0, .out = std.mem.sliceAsBytes(&m).ptr, .in = std.mem.sliceAsBytes(&b).ptr, .layout = undefined };
    fillArgs(&a, &.{b.len}, &.{}, &.{1});
    reduce(0, &Parallel.serial, &a);
    try testing.expectEqual(@as(i8, 127), m[0]);
    a.op = .min;
    reduce(0, &Parallel.serial, &a);
    try testing.expectEqual(@as(i8, -128), m[0]);
    a.op = .argmax;
    a.out_dtype = .i32;
    a.out = std.mem.sliceAsBytes(&o).ptr;
    reduce(0, &Parallel.serial, &a);
    try testing.expectEqual(@as(i32, 2), o[0]);
}
