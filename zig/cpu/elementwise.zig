//! Elementwise kernels: binary ops with broadcasting (strides of 0) and unary math/activations.
//! Written once: generic over the dtype (comptime) and the vector width `vbits` of the ISA level
//! this object is compiled for. f16 and bf16 compute in f32 vectors (converted on load, rounded to
//! nearest even on store); integers compute in their own type with wrapping arithmetic.
//! Each innermost row takes one of three paths: all operands contiguous, one operand a broadcast
//! scalar (stride 0), or a general strided loop. Large jobs are split across the thread pool.
const std = @import("std");
const dt = @import("dtype.zig");
const args = @import("args.zig");
const strided = @import("strided.zig");
const vmath = @import("vmath.zig");
const Parallel = @import("parallel.zig").Parallel;
const ptrAt = @import("copy.zig").ptrAt;
const DType = dt.DType;
const BinOp = args.BinOp;
const UnOp = args.UnOp;

/// Elements per job chunk handed to a thread.
const grain_elems = 16 * 1024;

pub fn lanes(comptime vbits: u32, comptime T: type) comptime_int {
    return if (vbits == 0) 1 else @max(1, vbits / @bitSizeOf(T));
}

/// The type a dtype computes in.
pub fn Compute(comptime d: DType) type {
    return switch (d) {
        .f32, .f16, .bf16 => f32,
        .f64 => f64,
        .bool => u8,
        else => dt.Storage(d),
    };
}

pub fn isFloatT(comptime T: type) bool {
    return @typeInfo(T) == .float;
}

// ---- loads and stores ----------------------------------------------------------------------

pub inline fn load(comptime d: DType, comptime n: usize, p: [*]const dt.Storage(d)) @Vector(n, Compute(d)) {
    switch (d) {
        .bf16 => {
            const raw: @Vector(n, u16) = @as(*const [n]u16, @ptrCast(p)).*;
            const wide: @Vector(n, u32) = raw;
            return @bitCast(wide << @splat(16));
        },
        .f16 => {
            const h: @Vector(n, f16) = p[0..n].*;
            return @floatCast(h);
        },
        else => return p[0..n].*,
    }
}

pub inline fn store(comptime d: DType, comptime n: usize, p: [*]dt.Storage(d), v: @Vector(n, Compute(d))) void {
    switch (d) {
        .bf16 => {
            const u: @Vector(n, u32) = @bitCast(v);
            const rounded = (u +% @as(@Vector(n, u32), @splat(0x7FFF)) +% ((u >> @splat(16)) & @as(@Vector(n, u32), @splat(1)))) >> @splat(16);
            const qnan = (u >> @splat(16)) | @as(@Vector(n, u32), @splat(0x40));
            const r = @select(u32, v != v, qnan, rounded);
            const h: @Vector(n, u16) = @truncate(r);
            @as(*[n]u16, @ptrCast(p)).* = h;
        },
        .f16 => {
            const h: @Vector(n, f16) = @floatCast(v);
            p[0..n].* = h;
        },
        .bool => {
            const one: @Vector(n, u8) = @splat(1);
            const zero: @Vector(n, u8) = @splat(0);
            p[0..n].* = @select(u8, v != zero, one, zero);
        },
        else => p[0..n].* = v,
    }
}

inline fn load1(comptime d: DType, p: [*]const dt.Storage(d), off: isize) Compute(d) {
    return load(d, 1, @ptrCast(ptrAt(dt.Storage(d), p, off)))[0];
}

inline fn store1(comptime d: DType, p: [*]dt.Storage(d), off: isize, v: Compute(d)) void {
    store(d, 1, @ptrCast(ptrAt(dt.Storage(d), p, off)), @as(@Vector(1, Compute(d)), @splat(v)));
}

// ---- binary ----------------------------------------------------------------------------------

pub fn binaryValid(op: BinOp, d: DType) bool {
    return switch (op) {
        .div => dt.isFloat(d),
        .sub, .pow => d != .bool,
        else => true,
    };
}

pub fn isCompare(op: BinOp) bool {
    return switch (op) {
        .eq, .ne, .lt, .le, .gt, .ge => true,
        else => false,
    };
}

/// a op b on vectors; comparisons give 0/1 in the compute type.
inline fn binV(comptime op: BinOp, comptime T: type, comptime n: usize, a: @Vector(n, T), b: @Vector(n, T)) @Vector(n, T) {
    const V = @Vector(n, T);
    const one: V = @splat(1);
    const zero: V = @splat(0);
    const float = comptime isFloatT(T);
    return switch (op) {
        .add => if (float) a + b else a +% b,
        .sub => if (float) a - b else a -% b,
        .mul => if (float) a * b else a *% b,
        .div => a / b,
        .pow => powV(T, n, a, b),
        .maximum => if (float) @select(T, a != a, a, @select(T, b != b, b, @max(a, b))) else @max(a, b),
        .minimum => if (float) @select(T, a != a, a, @select(T, b != b, b, @min(a, b))) else @min(a, b),
        .eq => @select(T, a == b, one, zero),
        .ne => @select(T, a != b, one, zero),
        .lt => @select(T, a < b, one, zero),
        .le => @select(T, a <= b, one, zero),
        .gt => @select(T, a > b, one, zero),
        .ge => @select(T, a >= b, one, zero),
    };
}

inline fn powV(comptime T: type, comptime n: usize, a: @Vector(n, T), b: @Vector(n, T)) @Vector(n, T) {
    var out: @Vector(n, T) = undefined;
    inline for (0..n) |i| out[i] = powScalar(T, a[i], b[i]);
    return out;
}

/// Float powers (f32, and f16/bf16 through f32) are computed in f64 and rounded once: within
/// 0.5 ulp plus a few f64 ulps (std.math.pow in f32 repeats f32 roundings: 2 ulp and more).
/// Special values (zeros, infinities, NaN) as C99's pow and NumPy's element-wise power.
/// Integer powers wrap; a negative exponent gives the truncated value (0 unless |base| is 1).
fn powScalar(comptime T: type, a: T, b: T) T {
    if (comptime isFloatT(T)) return @floatCast(std.math.pow(f64, a, b));
    if (comptime @typeInfo(T).int.signedness == .signed) {
        if (b < 0) return if (a == 1) 1 else if (a == -1) (if (@rem(b, 2) == 0) 1 else -1) else 0;
    }
    var base = a;
    var e = b;
    var r: T = 1;
    while (e != 0) : (e >>= 1) {
        if (e & 1 != 0) r *%= base;
        base *%= base;
    }
    return r;
}

pub fn binary(comptime vbits: u32, par: *const Parallel, in: *const args.BinaryArgs) void {
    var a = in.*;
    a.layout.coalesce();
    switch (a.dtype) {
        inline .f32, .f16, .bf16, .i8, .i16, .i32, .u8, .u16, .u32, .bool => |d| switch (a.op) {
            inline else => |op| {
                if (comptime binaryValid(op, d)) {
                    if (comptime isCompare(op)) binaryTyped(vbits, op, d, .bool, par, &a) else binaryTyped(vbits, op, d, d, par, &a);
                } else unreachable; // the door refuses these (src/ops/elementwise.ts)
            },
        },
        .f64 => unreachable,
    }
}

fn binaryTyped(comptime vbits: u32, comptime op: BinOp, comptime d: DType, comptime od: DType, par: *const Parallel, a: *args.BinaryArgs) void {
    const S = dt.Storage(d);
    const O = dt.Storage(od);
    const T = Compute(d);
    const n = comptime lanes(vbits, T);
    var a_val: S = undefined;
    var b_val: S = undefined;
    const pa = operand(d, 3, &a.layout, 1, a.a, a.a_scalar, a.a_value, &a_val);
    const pb = operand(d, 3, &a.layout, 2, a.b, a.b_scalar, a.b_value, &b_val);
    const Ctx = struct {
        layout: *const strided.Layout(3),
        out: [*]O,
        a: [*]const S,
        b: [*]const S,

        pub fn row(self: *const @This(), offs: [3]isize, len: usize, st: [3]isize) void {
            const o: [*]O = @ptrCast(ptrAt(O, self.out, offs[0]));
            const x: [*]const S = @ptrCast(ptrAt(S, self.a, offs[1]));
            const y: [*]const S = @ptrCast(ptrAt(S, self.b, offs[2]));
            if (st[0] == 1 and (st[1] == 1 or st[1] == 0) and (st[2] == 1 or st[2] == 0)) {
                const xs = st[1] == 0;
                const ys = st[2] == 0;
                const xv: @Vector(n, T) = @splat(load(d, 1, x)[0]);
                const yv: @Vector(n, T) = @splat(load(d, 1, y)[0]);
                var i: usize = 0;
                while (i + n <= len) : (i += n) {
                    const va = if (xs) xv else load(d, n, x + i);
                    const vb = if (ys) yv else load(d, n, y + i);
                    store(od, n, o + i, binVCast(op, T, od, n, va, vb));
                }
                while (i < len) : (i += 1) {
                    const va = if (xs) xv[0] else load(d, 1, x + i)[0];
                    const vb = if (ys) yv[0] else load(d, 1, y + i)[0];
                    store1(od, o, @intCast(i), binVCast(op, T, od, 1, @splat(va), @splat(vb))[0]);
                }
            } else {
                var po: isize = 0;
                var px: isize = 0;
                var py: isize = 0;
                for (0..len) |_| {
                    const r = binVCast(op, T, od, 1, @splat(load1(d, x, px)), @splat(load1(d, y, py)));
                    store1(od, o, po, r[0]);
                    po += st[0];
                    px += st[1];
                    py += st[2];
                }
            }
        }

        fn task(self: *const @This(), b: usize, e: usize) void {
            self.layout.forRows(b, e, self);
        }
    };
    const ctx: Ctx = .{ .layout = &a.layout, .out = @ptrCast(@alignCast(a.out)), .a = pa, .b = pb };
    runRows(3, par, &a.layout, &ctx, Ctx.task);
}

/// Operand `idx` of a layout: its memory, or, for a scalar, `value` converted to `d` in `slot`
/// and read with stride 0 on every axis.
fn operand(comptime d: DType, comptime k: usize, layout: *strided.Layout(k), idx: usize, ptr: [*]const u8, is_scalar: u32, value: f64, slot: *dt.Storage(d)) [*]const dt.Storage(d) {
    if (is_scalar == 0) return @ptrCast(@alignCast(ptr));
    slot.* = dt.fromFloat(d, value);
    for (0..layout.ndim) |i| layout.strides[idx][i] = 0;
    return @ptrCast(slot);
}

/// binV, with the result in the output's compute type (comparisons give u8 0/1 for bool).
inline fn binVCast(comptime op: BinOp, comptime T: type, comptime od: DType, comptime n: usize, a: @Vector(n, T), b: @Vector(n, T)) @Vector(n, Compute(od)) {
    const r = binV(op, T, n, a, b);
    if (Compute(od) == T) return r;
    // Comparison results (0/1) to u8.
    return @select(u8, r != @as(@Vector(n, T), @splat(0)), @as(@Vector(n, u8), @splat(1)), @as(@Vector(n, u8), @splat(0)));
}

/// Splits a layout's rows (or the elements of a single row, or tiles when an operand is walked
/// with a large stride) across threads.
fn runRows(comptime k: usize, par: *const Parallel, layout: *const strided.Layout(k), ctx: anytype, comptime task: anytype) void {
    const row_len = @max(layout.rowLen(), 1);
    if (layout.wantsTiles()) {
        const C = @TypeOf(ctx);
        const Tiled = struct {
            fn run(c: C, b: usize, e: usize) void {
                c.layout.forTiles(b, e, c);
            }
        };
        const T = strided.Layout(k).tile;
        par.run(layout.tileRows(), @max(1, grain_elems / (T * row_len)), ctx, Tiled.run);
    } else if (layout.ndim <= 1) {
        par.run(layout.size(), grain_elems, ctx, task);
    } else {
        par.run(layout.rows(), @max(1, grain_elems / row_len), ctx, task);
    }
}

// ---- unary -----------------------------------------------------------------------------------

pub fn unaryValid(op: UnOp, d: DType) bool {
    if (dt.isFloat(d)) return true;
    return switch (op) {
        .neg => d != .bool,
        .abs, .sign, .relu, .clip, .floor, .ceil, .round, .relu_grad => true,
        else => false,
    };
}

inline fn unV(comptime op: UnOp, comptime T: type, comptime n: usize, x: @Vector(n, T), p0: T, p1: T, has0: bool, has1: bool) @Vector(n, T) {
    const V = @Vector(n, T);
    const zero: V = @splat(0);
    const one: V = @splat(1);
    const float = comptime isFloatT(T);
    return switch (op) {
        .neg => if (float) -x else zero -% x,
        .abs => if (float) @abs(x) else if (@typeInfo(T).int.signedness == .signed) @select(T, x < zero, zero -% x, x) else x,
        .sign => if (float) @select(T, x > zero, one, @select(T, x < zero, -one, x)) else if (@typeInfo(T).int.signedness == .signed) @select(T, x > zero, one, @select(T, x < zero, zero -% one, zero)) else @select(T, x > zero, one, zero),
        .relu => if (float) @select(T, x > zero, x, @select(T, x != x, x, zero)) else @max(x, zero),
        .relu_grad => @select(T, x > zero, one, zero),
        .clip => blk: {
            var r = x;
            if (has0) r = if (float) @select(T, r != r, r, @max(r, @as(V, @splat(p0)))) else @max(r, @as(V, @splat(p0)));
            if (has1) r = if (float) @select(T, r != r, r, @min(r, @as(V, @splat(p1)))) else @min(r, @as(V, @splat(p1)));
            break :blk r;
        },
        .floor => if (float) @floor(x) else x,
        .ceil => if (float) @ceil(x) else x,
        .round => if (float) vmath.roundHalfEven(n, x) else x,
        .sqrt => @sqrt(x),
        .rsqrt => one / @sqrt(x),
        .exp => vmath.exp(n, x),
        .log => vmath.log(n, x),
        .sin => vmath.sin(n, x),
        .cos => vmath.cos(n, x),
        .tanh => vmath.tanh(n, x),
        .erf => vmath.erf(n, x),
        .sigmoid => vmath.sigmoid(n, x),
        .gelu => vmath.gelu(n, x),
        .gelu_tanh => vmath.geluTanh(n, x),
        .silu => vmath.silu(n, x),
        .gelu_grad => vmath.geluGrad(n, x),
        .gelu_tanh_grad => vmath.geluTanhGrad(n, x),
        .silu_grad => vmath.siluGrad(n, x),
        .sigmoid_grad => vmath.sigmoidGradFromY(n, vmath.sigmoid(n, x)),
        .tanh_grad => vmath.tanhGradFromY(n, vmath.tanh(n, x)),
    };
}

pub fn unary(comptime vbits: u32, par: *const Parallel, in: *const args.UnaryArgs) void {
    var a = in.*;
    a.layout.coalesce();
    switch (a.dtype) {
        inline .f32, .f16, .bf16, .i8, .i16, .i32, .u8, .u16, .u32, .bool => |d| switch (a.op) {
            inline else => |op| {
                if (comptime unaryValid(op, d)) unaryTyped(vbits, op, d, par, &a) else unreachable; // refused at the door
            },
        },
        .f64 => unreachable,
    }
}

/// A clip bound for the compute type: NaN means none; integers saturate.
fn bound(comptime d: DType, v: f64) struct { has: bool, v: Compute(d) } {
    if (std.math.isNan(v)) return .{ .has = false, .v = 0 };
    const T = Compute(d);
    if (comptime isFloatT(T)) return .{ .has = true, .v = @floatCast(v) };
    return .{ .has = true, .v = dt.fromFloat(if (d == .bool) DType.u8 else d, v) };
}

fn unaryTyped(comptime vbits: u32, comptime op: UnOp, comptime d: DType, par: *const Parallel, a: *const args.UnaryArgs) void {
    const S = dt.Storage(d);
    const T = Compute(d);
    const n = comptime lanes(vbits, T);
    const lo = bound(d, a.p0);
    const hi = bound(d, a.p1);
    const Ctx = struct {
        layout: *const strided.Layout(2),
        out: [*]S,
        x: [*]const S,
        lo: T,
        hi: T,
        has_lo: bool,
        has_hi: bool,

        pub fn row(self: *const @This(), offs: [2]isize, len: usize, st: [2]isize) void {
            const o: [*]S = @ptrCast(ptrAt(S, self.out, offs[0]));
            const x: [*]const S = @ptrCast(ptrAt(S, self.x, offs[1]));
            if (st[0] == 1 and st[1] == 1) {
                var i: usize = 0;
                while (i + n <= len) : (i += n) store(d, n, o + i, unV(op, T, n, load(d, n, x + i), self.lo, self.hi, self.has_lo, self.has_hi));
                while (i < len) : (i += 1) store(d, 1, o + i, unV(op, T, 1, load(d, 1, x + i), self.lo, self.hi, self.has_lo, self.has_hi));
            } else {
                var po: isize = 0;
                var px: isize = 0;
                for (0..len) |_| {
                    const r = unV(op, T, 1, @splat(load1(d, x, px)), self.lo, self.hi, self.has_lo, self.has_hi);
                    store1(d, o, po, r[0]);
                    po += st[0];
                    px += st[1];
                }
            }
        }

        fn task(self: *const @This(), b: usize, e: usize) void {
            self.layout.forRows(b, e, self);
        }
    };
    const ctx: Ctx = .{ .layout = &a.layout, .out = @ptrCast(@alignCast(a.out)), .x = @ptrCast(@alignCast(a.x)), .lo = lo.v, .hi = hi.v, .has_lo = lo.has, .has_hi = hi.has };
    runRows(2, par, &a.layout, &ctx, Ctx.task);
}

// ---- where -----------------------------------------------------------------------------------

pub fn where(comptime vbits: u32, par: *const Parallel, in: *const args.WhereArgs) void {
    _ = vbits; // a select is a memory copy: the loops below vectorise on their own
    var a = in.*;
    switch (a.dtype) {
        inline .f32, .f16, .bf16, .i8, .i16, .i32, .u8, .u16, .u32, .bool => |d| whereTyped(d, par, &a),
        .f64 => unreachable,
    }
}

fn whereTyped(comptime d: DType, par: *const Parallel, a: *args.WhereArgs) void {
    const S = dt.Storage(d);
    var a_val: S = undefined;
    var b_val: S = undefined;
    const pa = operand(d, 4, &a.layout, 2, a.a, a.a_scalar, a.a_value, &a_val);
    const pb = operand(d, 4, &a.layout, 3, a.b, a.b_scalar, a.b_value, &b_val);
    a.layout.coalesce();
    const Ctx = struct {
        layout: *const strided.Layout(4),
        out: [*]S,
        cond: [*]const u8,
        a: [*]const S,
        b: [*]const S,

        pub fn row(self: *const @This(), offs: [4]isize, len: usize, st: [4]isize) void {
            var po = offs[0];
            var pc = offs[1];
            var px = offs[2];
            var py = offs[3];
            for (0..len) |_| {
                const c = ptrAt(u8, self.cond, pc).*;
                ptrAt(S, self.out, po).* = if (c != 0) ptrAt(S, self.a, px).* else ptrAt(S, self.b, py).*;
                po += st[0];
                pc += st[1];
                px += st[2];
                py += st[3];
            }
        }

        fn task(self: *const @This(), b: usize, e: usize) void {
            self.layout.forRows(b, e, self);
        }
    };
    const ctx: Ctx = .{ .layout = &a.layout, .out = @ptrCast(@alignCast(a.out)), .cond = a.cond, .a = pa, .b = pb };
    runRows(4, par, &a.layout, &ctx, Ctx.task);
}

// ---- tests -------------------------------------------------------------------------------------

fn testBinary(comptime vbits: u32, op: BinOp, d: DType, od: DType, out: []u8, a: []const u8, b: []const u8, shape: []const usize, so: []const isize, sa: []const isize, sb: []const isize) void {
    var args_: args.BinaryArgs = .{ .op = op, .dtype = d, .out_dtype = od, .a_scalar = 0, .b_scalar = 0, .a_value = 0, .b_value = 0, .out = out.ptr, .a = a.ptr, .b = b.ptr, .layout = .{ .ndim = shape.len, .shape = undefined, .strides = undefined } };
    for (shape, 0..) |s, i| {
        args_.layout.shape[i] = s;
        args_.layout.strides[0][i] = so[i];
        args_.layout.strides[1][i] = sa[i];
        args_.layout.strides[2][i] = sb[i];
    }
    binary(vbits, &Parallel.serial, &args_);
}

test "binary add broadcasts a row over a matrix at every vector width" {
    inline for (.{ 0, 128, 256, 512 }) |vb| {
        var a: [3 * 37]f32 = undefined;
        var b: [37]f32 = undefined;
        for (&a, 0..) |*v, i| v.* = @floatFromInt(i);
        for (&b, 0..) |*v, i| v.* = @as(f32, @floatFromInt(i)) * 0.5;
        var out: [3 * 37]f32 = undefined;
        testBinary(vb, .add, .f32, .f32, std.mem.sliceAsBytes(&out), std.mem.sliceAsBytes(&a), std.mem.sliceAsBytes(&b), &.{ 3, 37 }, &.{ 37, 1 }, &.{ 37, 1 }, &.{ 0, 1 });
        for (0..3) |r| for (0..37) |c| {
            try std.testing.expectEqual(a[r * 37 + c] + b[c], out[r * 37 + c]);
        };
    }
}

test "comparisons give bool; integer ops wrap; maximum propagates NaN" {
    const a = [_]i8{ 100, -128, 5, 7 };
    const b = [_]i8{ 100, 1, 6, -7 };
    var o8: [4]i8 = undefined;
    testBinary(128, .add, .i8, .i8, std.mem.sliceAsBytes(&o8), std.mem.sliceAsBytes(&a), std.mem.sliceAsBytes(&b), &.{4}, &.{1}, &.{1}, &.{1});
    try std.testing.expectEqualSlices(i8, &.{ -56, -127, 11, 0 }, &o8);
    var ob: [4]u8 = undefined;
    testBinary(128, .lt, .i8, .bool, &ob, std.mem.sliceAsBytes(&a), std.mem.sliceAsBytes(&b), &.{4}, &.{1}, &.{1}, &.{1});
    try std.testing.expectEqualSlices(u8, &.{ 0, 1, 1, 0 }, &ob);
    const fa = [_]f32{ std.math.nan(f32), 1, 2 };
    const fb = [_]f32{ 0, std.math.nan(f32), 1 };
    var fo: [3]f32 = undefined;
    testBinary(256, .maximum, .f32, .f32, std.mem.sliceAsBytes(&fo), std.mem.sliceAsBytes(&fa), std.mem.sliceAsBytes(&fb), &.{3}, &.{1}, &.{1}, &.{1});
    try std.testing.expect(std.math.isNan(fo[0]) and std.math.isNan(fo[1]) and fo[2] == 2);
}

test "unary ops compile and compute for every dtype they accept" {
    const x = [_]f32{ -2.5, -0.5, 0.5, 1.5, 2.5, 3.7 };
    var o: [6]f32 = undefined;
    inline for (.{ UnOp.round, UnOp.relu, UnOp.sign, UnOp.abs, UnOp.floor }) |op| {
        var ua: args.UnaryArgs = .{ .op = op, .dtype = .f32, .p0 = 0, .p1 = 0, .out = std.mem.sliceAsBytes(&o).ptr, .x = std.mem.sliceAsBytes(&x).ptr, .layout = .{ .ndim = 1, .shape = undefined, .strides = undefined } };
        ua.layout.shape[0] = 6;
        ua.layout.strides[0][0] = 1;
        ua.layout.strides[1][0] = 1;
        unary(256, &Parallel.serial, &ua);
        const want: [6]f32 = switch (op) {
            .round => .{ -2, -0.0, 0, 2, 2, 4 },
            .relu => .{ 0, 0, 0.5, 1.5, 2.5, 3.7 },
            .sign => .{ -1, -1, 1, 1, 1, 1 },
            .abs => .{ 2.5, 0.5, 0.5, 1.5, 2.5, 3.7 },
            .floor => .{ -3, -1, 0, 1, 2, 3 },
            else => unreachable,
        };
        try std.testing.expectEqualSlices(f32, &want, &o);
    }
    // Every accepted (op, dtype) pair instantiates.
    inline for (comptime std.enums.values(UnOp)) |op| {
        inline for (.{ DType.f32, DType.f16, DType.bf16, DType.i8, DType.u32, DType.bool }) |d| {
            if (comptime unaryValid(op, d)) _ = &unaryTyped;
        }
    }
}

test "float pow: f64 inside, C99 special values" {
    try std.testing.expectEqual(@as(f32, 0x1.97e64p+6), powScalar(f32, 0x1.42c80ep+1, 5)); // numpy float32: 101.97485
    try std.testing.expectEqual(std.math.inf(f32), powScalar(f32, -0.0, -0.5));
    try std.testing.expectEqual(@as(f32, 0), powScalar(f32, -0.0, 0.5));
    try std.testing.expect(!std.math.signbit(powScalar(f32, -0.0, 0.5)));
    try std.testing.expectEqual(std.math.inf(f32), powScalar(f32, -std.math.inf(f32), 0.5));
    try std.testing.expectEqual(-std.math.inf(f32), powScalar(f32, -0.0, -1));
    try std.testing.expect(std.math.isNan(powScalar(f32, -8, 1.0 / 3.0)));
    try std.testing.expectEqual(std.math.inf(f32), powScalar(f32, 10, 39)); // overflows f32 only
}

test "integer pow" {
    try std.testing.expectEqual(@as(i32, 1024), powScalar(i32, 2, 10));
    try std.testing.expectEqual(@as(i32, -1), powScalar(i32, -1, -3));
    try std.testing.expectEqual(@as(i32, 0), powScalar(i32, 2, -1));
    try std.testing.expectEqual(@as(u8, 0), powScalar(u8, 2, 8)); // wraps
}

test "bf16 and f16 round-trip through f32 vectors" {
    inline for (.{ 0, 256 }) |vb| {
        const n = lanes(vb, f32);
        var src: [n]dt.BF16 = undefined;
        for (&src, 0..) |*v, i| v.* = dt.BF16.fromF32(@as(f32, @floatFromInt(i)) * 1.37 - 3);
        var dst: [n]dt.BF16 = undefined;
        store(.bf16, n, &dst, load(.bf16, n, &src));
        for (src, dst) |s, t| try std.testing.expectEqual(s.bits, t.bits);
        const x: @Vector(n, f32) = @splat(1.0 + 1.0 / 256.0); // a tie: to even
        store(.bf16, n, &dst, x);
        try std.testing.expectEqual(@as(u16, 0x3F80), dst[0].bits);
    }
}
