//! The accumulators of the reductions in reduce.zig: element loads (contiguous, gathered, partial),
//! the per-kind accumulator states `Acc(X, kind)` (f64 and i64 sums, products, min/argmin with an
//! order-reversing flip for max/argmax, the centred squares of variance, the shifted exponentials
//! of logsumexp), `expNeg`, and the fixed halving `tree` that combines virtual lanes. See
//! reduce.zig's header for the accuracy and determinism rules they implement.
const std = @import("std");
const dt = @import("dtype.zig");
const args = @import("args.zig");
const strided = @import("strided.zig");
const Parallel = @import("parallel.zig").Parallel;
const ptrAt = @import("copy.zig").ptrAt;
const elementwise = @import("elementwise.zig");
const DType = dt.DType;
const ReduceOp = args.ReduceOp;

/// The value type elements are read as (f32 for the 16-bit floats), and vector loads: shared
/// with the elementwise kernels.
pub const Val = elementwise.Compute;
pub const isFloatT = elementwise.isFloatT;

// ---- loads ------------------------------------------------------------------------------------

pub const loadV = elementwise.load;

pub inline fn load1(comptime d: DType, p: [*]const dt.Storage(d), off: isize) Val(d) {
    const x = ptrAt(dt.Storage(d), p, off).*;
    return switch (d) {
        .bf16 => x.toF32(),
        .f16 => @floatCast(x),
        else => x,
    };
}

/// n elements at p, p + st, p + 2 st, ...
pub inline fn gatherV(comptime d: DType, comptime n: usize, p: [*]const dt.Storage(d), st: isize) @Vector(n, Val(d)) {
    var v: [n]Val(d) = undefined;
    inline for (0..n) |i| v[i] = load1(d, p, @as(isize, i) * st);
    return v;
}

/// The first `cnt` (< n) of n contiguous elements; the rest are 0.
pub fn loadPartial(comptime d: DType, comptime n: usize, p: [*]const dt.Storage(d), cnt: usize) @Vector(n, Val(d)) {
    var v: [n]Val(d) = @splat(0);
    for (0..cnt) |i| v[i] = load1(d, p, @intCast(i));
    return v;
}

/// A vector as an array (for runtime lane indices).
inline fn arr(v: anytype) [@typeInfo(@TypeOf(v)).vector.len]@typeInfo(@TypeOf(v)).vector.child {
    return v;
}

pub inline fn toF64(x: anytype) f64 {
    return if (comptime isFloatT(@TypeOf(x))) x else @floatFromInt(x);
}

inline fn toF64V(comptime n: usize, x: anytype) @Vector(n, f64) {
    const T = @typeInfo(@TypeOf(x)).vector.child;
    return if (comptime isFloatT(T)) @floatCast(x) else @floatFromInt(x);
}

/// Two's complement bits of an integer value (sign- or zero-extended) as u32.
inline fn wrapBits(comptime T: type, x: T) u32 {
    if (@typeInfo(T).int.signedness == .signed) return @bitCast(@as(i32, x));
    return x;
}

inline fn wrapBitsV(comptime n: usize, comptime T: type, x: @Vector(n, T)) @Vector(n, u32) {
    if (@typeInfo(T).int.signedness == .signed) return @bitCast(@as(@Vector(n, i32), x));
    return x;
}

// ---- accumulators -------------------------------------------------------------------------------
//
// Each Acc(X, kind) has a scalar `State` (one output's partial result: init, feed1, merge) and
// `Lanes`, `n` States side by side in vectors (init, start, feed, states). In the rows path the
// lanes are virtual lanes of one output, combined by `tree`; in the columns path each lane is a
// different output. `shift` is the per-output constant of a second pass (the mean for variance,
// the max for logsumexp). `flip` turns min into max and argmin into argmax: values are mapped by
// an order-reversing bit flip (the sign bit of a float: x -> -x; every bit of an integer:
// x -> ~x) as they are read, so one kernel serves both.

pub const Kind = enum { sum_f64, sum_i64, prod_f64, prod_wrap, min, argmin, sqdev, expshift };

fn Bits(comptime X: type) type {
    return @Int(.unsigned, @bitSizeOf(X));
}

fn flipMask(comptime X: type, flip: bool) Bits(X) {
    if (!flip) return 0;
    return if (comptime isFloatT(X)) @as(Bits(X), 1) << (@bitSizeOf(X) - 1) else std.math.maxInt(Bits(X));
}

inline fn flipV(comptime X: type, comptime n: usize, x: @Vector(n, X), m: @Vector(n, Bits(X))) @Vector(n, X) {
    return @bitCast(@as(@Vector(n, Bits(X)), @bitCast(x)) ^ m);
}

pub inline fn flip1(comptime X: type, x: X, m: Bits(X)) X {
    return @bitCast(@as(Bits(X), @bitCast(x)) ^ m);
}

pub fn Acc(comptime X: type, comptime kind: Kind) type {
    const float = comptime isFloatT(X);
    const U = Bits(X);
    return switch (kind) {
        // Float sums: every element widened to f64, 32 lanes.
        .sum_f64 => struct {
            pub const n = 32;
            pub const State = struct {
                s: f64,
                pub fn init(_: f64, _: bool) State {
                    return .{ .s = 0 };
                }
                pub inline fn feed1(self: *State, x: X, _: i64) void {
                    self.s += x;
                }
                pub inline fn merge(self: *State, o: State) void {
                    self.s += o.s;
                }
            };
            pub const Lanes = struct {
                acc: @Vector(n, f64),
                pub fn init(_: @Vector(n, f64), _: bool) Lanes {
                    return .{ .acc = @splat(0) };
                }
                pub inline fn start(_: *Lanes, _: @Vector(n, u32)) void {}
                pub inline fn feed(self: *Lanes, x: @Vector(n, X), _: @Vector(n, u32)) void {
                    self.acc += @as(@Vector(n, f64), @floatCast(x));
                }
                pub fn states(self: *const Lanes) [n]State {
                    const acc_a = arr(self.acc);
                    var out: [n]State = undefined;
                    for (&out, 0..) |*o, i| o.* = .{ .s = acc_a[i] };
                    return out;
                }
            };
        },
        // Integer sums: exact in 64 bits (sum wraps to 32 bits on store; mean divides it).
        .sum_i64 => struct {
            pub const n = 16;
            pub const State = struct {
                s: i64,
                pub fn init(_: f64, _: bool) State {
                    return .{ .s = 0 };
                }
                pub inline fn feed1(self: *State, x: X, _: i64) void {
                    self.s +%= x;
                }
                pub inline fn merge(self: *State, o: State) void {
                    self.s +%= o.s;
                }
            };
            pub const Lanes = struct {
                acc: @Vector(n, i64),
                pub fn init(_: @Vector(n, f64), _: bool) Lanes {
                    return .{ .acc = @splat(0) };
                }
                pub inline fn start(_: *Lanes, _: @Vector(n, u32)) void {}
                pub inline fn feed(self: *Lanes, x: @Vector(n, X), _: @Vector(n, u32)) void {
                    self.acc +%= @as(@Vector(n, i64), x);
                }
                pub fn states(self: *const Lanes) [n]State {
                    const acc_a = arr(self.acc);
                    var out: [n]State = undefined;
                    for (&out, 0..) |*o, i| o.* = .{ .s = acc_a[i] };
                    return out;
                }
            };
        },
        // Integer products: wrap in 32 bits (associative: order never matters).
        .prod_wrap => struct {
            pub const n = 32;
            pub const State = struct {
                s: u32,
                pub fn init(_: f64, _: bool) State {
                    return .{ .s = 1 };
                }
                pub inline fn feed1(self: *State, x: X, _: i64) void {
                    self.s *%= wrapBits(X, x);
                }
                pub inline fn merge(self: *State, o: State) void {
                    self.s *%= o.s;
                }
            };
            pub const Lanes = struct {
                acc: @Vector(n, u32),
                pub fn init(_: @Vector(n, f64), _: bool) Lanes {
                    return .{ .acc = @splat(1) };
                }
                pub inline fn start(_: *Lanes, _: @Vector(n, u32)) void {}
                pub inline fn feed(self: *Lanes, x: @Vector(n, X), _: @Vector(n, u32)) void {
                    self.acc *%= wrapBitsV(n, X, x);
                }
                pub fn states(self: *const Lanes) [n]State {
                    const acc_a = arr(self.acc);
                    var out: [n]State = undefined;
                    for (&out, 0..) |*o, i| o.* = .{ .s = acc_a[i] };
                    return out;
                }
            };
        },
        // Float products: f64 with the binary exponent kept apart (the mantissa is renormalised
        // into [0.5, 1) once it leaves [2^-512, 2^512]), so no partial product overflows or
        // underflows on the way: a lane of huge factors and a lane of tiny ones no longer meet as
        // inf · 0 = NaN. The only NaN left is a real one (a NaN, or 0 and inf among the factors).
        .prod_f64 => struct {
            pub const n = 16;
            const big: f64 = 0x1p512;
            const small: f64 = 0x1p-512;
            pub const State = struct {
                s: f64,
                e: i64 = 0,
                pub fn init(_: f64, _: bool) State {
                    return .{ .s = 1 };
                }
                fn norm(self: *State) void {
                    if (self.s == 0 or !std.math.isFinite(self.s)) return;
                    const fr = std.math.frexp(self.s);
                    self.s = fr.significand;
                    self.e += fr.exponent;
                }
                pub inline fn feed1(self: *State, x: X, _: i64) void {
                    self.s *= toF64(x);
                    if (!(@abs(self.s) >= small and @abs(self.s) <= big)) self.norm();
                }
                pub inline fn merge(self: *State, o: State) void {
                    self.s *= o.s;
                    self.e += o.e;
                    self.norm();
                }
                /// s · 2^e (inf or 0 when it leaves f64's range).
                pub fn value(self: State) f64 {
                    if (self.s == 0 or !std.math.isFinite(self.s)) return self.s;
                    const e = std.math.clamp(self.e, -4000, 4000);
                    return std.math.ldexp(self.s, @intCast(e));
                }
            };
            pub const Lanes = struct {
                acc: @Vector(n, f64),
                exp: [n]i64 = @splat(0),
                pub fn init(_: @Vector(n, f64), _: bool) Lanes {
                    return .{ .acc = @splat(1) };
                }
                pub inline fn start(_: *Lanes, _: @Vector(n, u32)) void {}
                pub inline fn feed(self: *Lanes, x: @Vector(n, X), _: @Vector(n, u32)) void {
                    self.acc *= toF64V(n, x);
                    const a = @abs(self.acc);
                    const out = (a > @as(@Vector(n, f64), @splat(big))) | ((a < @as(@Vector(n, f64), @splat(small))) & (a != @as(@Vector(n, f64), @splat(0))));
                    if (@reduce(.Or, out)) self.renorm();
                }
                fn renorm(self: *Lanes) void {
                    var v = arr(self.acc);
                    for (&v, &self.exp) |*lane, *e| {
                        if (lane.* == 0 or !std.math.isFinite(lane.*)) continue;
                        const fr = std.math.frexp(lane.*);
                        lane.* = fr.significand;
                        e.* += fr.exponent;
                    }
                    self.acc = v;
                }
                pub fn states(self: *const Lanes) [n]State {
                    const acc_a = arr(self.acc);
                    var out: [n]State = undefined;
                    for (&out, 0..) |*o, i| o.* = .{ .s = acc_a[i], .e = self.exp[i] };
                    return out;
                }
            };
        },
        // min (max with flip): NaN propagates; ties keep the value seen first. `m` is flipped.
        .min => struct {
            const worst: X = if (float) std.math.inf(X) else std.math.maxInt(X);
            pub const n = 32;
            inline fn pick(comptime m: usize, acc: @Vector(m, X), x: @Vector(m, X)) @Vector(m, X) {
                const r = @select(X, x < acc, x, acc);
                if (!float) return r;
                return @select(X, acc != acc, acc, @select(X, x != x, x, r));
            }
            pub const State = struct {
                m: X,
                mask: U,
                pub fn init(_: f64, flip: bool) State {
                    return .{ .m = worst, .mask = flipMask(X, flip) };
                }
                pub inline fn feed1(self: *State, x: X, _: i64) void {
                    self.m = pick(1, @splat(self.m), @splat(flip1(X, x, self.mask)))[0];
                }
                pub inline fn merge(self: *State, o: State) void {
                    self.m = pick(1, @splat(self.m), @splat(o.m))[0];
                }
            };
            pub const Lanes = struct {
                acc: @Vector(n, X),
                mask: @Vector(n, U),
                /// Lanes that saw a NaN (kept apart: a shorter dependency chain than `pick`).
                nan: @Vector(n, bool),
                pub fn init(_: @Vector(n, f64), flip: bool) Lanes {
                    return .{ .acc = @splat(worst), .mask = @splat(flipMask(X, flip)), .nan = @splat(false) };
                }
                pub inline fn start(_: *Lanes, _: @Vector(n, u32)) void {}
                pub inline fn feed(self: *Lanes, x: @Vector(n, X), _: @Vector(n, u32)) void {
                    const xf = flipV(X, n, x, self.mask);
                    self.acc = @select(X, xf < self.acc, xf, self.acc);
                    if (float) self.nan = @select(bool, xf != xf, @as(@Vector(n, bool), @splat(true)), self.nan);
                }
                pub fn states(self: *const Lanes) [n]State {
                    const acc_a = arr(self.acc);
                    const mask_a = arr(self.mask);
                    const nan_a = arr(self.nan);
                    var out: [n]State = undefined;
                    for (&out, 0..) |*o, i| o.* = .{ .m = if (float and nan_a[i]) std.math.nan(X) else acc_a[i], .mask = mask_a[i] };
                    return out;
                }
            };
        },
        // argmin (argmax with flip): (value, index) with an explicit order, so merging is
        // order-free: a NaN beats any number and a later NaN; otherwise the smaller value, then
        // the smaller index. The empty state has the worst value and index maxInt(i64).
        .argmin => struct {
            const worst: X = if (float) std.math.inf(X) else std.math.maxInt(X);
            pub const n = 32;
            /// Whether (x, ix) beats (y, iy), lane-wise.
            inline fn beats(comptime w: usize, x: @Vector(w, X), ix: @Vector(w, i64), y: @Vector(w, X), iy: @Vector(w, i64)) @Vector(w, bool) {
                const t: @Vector(w, bool) = @splat(true);
                const f: @Vector(w, bool) = @splat(false);
                const ilt = ix < iy;
                const by_val = @select(bool, x < y, t, @select(bool, x == y, ilt, f));
                if (!float) return by_val;
                const xn = x != x;
                const yn = y != y;
                return @select(bool, xn, @select(bool, yn, ilt, t), @select(bool, yn, f, by_val));
            }
            pub const State = struct {
                v: X,
                i: i64,
                mask: U,
                pub fn init(_: f64, flip: bool) State {
                    return .{ .v = worst, .i = no_index, .mask = flipMask(X, flip) };
                }
                inline fn take(self: *State, x: X, idx: i64) void {
                    if (beats(1, @splat(x), @splat(idx), @splat(self.v), @splat(self.i))[0]) {
                        self.v = x;
                        self.i = idx;
                    }
                }
                pub inline fn feed1(self: *State, x: X, idx: i64) void {
                    self.take(flip1(X, x, self.mask), idx);
                }
                pub inline fn merge(self: *State, o: State) void {
                    self.take(o.v, o.i);
                }
            };
            /// Two independent halves of 16 lanes: separate masks keep the dependency chains
            /// short (one 32-lane mask would be split and rejoined every step).
            const m = n / 2;
            inline fn half(comptime T: type, v: @Vector(n, T), comptime h: usize) @Vector(m, T) {
                return @shuffle(T, v, undefined, std.simd.iota(i32, m) + @as(@Vector(m, i32), @splat(h * m)));
            }
            pub const Lanes = struct {
                v: [2]@Vector(m, X),
                /// Index of the lane's best; before any better value, the lane's first index.
                i: [2]@Vector(m, u32),
                mask: @Vector(m, U),
                pub fn init(_: @Vector(n, f64), flip: bool) Lanes {
                    return .{ .v = @splat(@splat(worst)), .i = @splat(@splat(0)), .mask = @splat(flipMask(X, flip)) };
                }
                /// The indices of the first elements the lanes will see.
                pub inline fn start(self: *Lanes, idx: @Vector(n, u32)) void {
                    self.i = .{ half(u32, idx, 0), half(u32, idx, 1) };
                }
                pub inline fn feed(self: *Lanes, x: @Vector(n, X), idx: @Vector(n, u32)) void {
                    inline for (0..2) |h| {
                        const xf = flipV(X, m, half(X, x, h), self.mask);
                        // A lane sees its indices in increasing order, starting at the index
                        // `start` gave it: anything strictly smaller wins, and a NaN unless the
                        // lane already holds one.
                        var upd = xf < self.v[h];
                        if (float) upd = @select(bool, xf != xf, self.v[h] == self.v[h], upd);
                        self.v[h] = @select(X, upd, xf, self.v[h]);
                        self.i[h] = @select(u32, upd, half(u32, idx, h), self.i[h]);
                    }
                }
                pub fn states(self: *const Lanes) [n]State {
                    var out: [n]State = undefined;
                    inline for (0..2) |h| {
                        const v_a = arr(self.v[h]);
                        const i_a = arr(self.i[h]);
                        for (0..m) |k| out[h * m + k] = .{ .v = v_a[k], .i = i_a[k], .mask = arr(self.mask)[0] };
                    }
                    return out;
                }
            };
        },
        // Second pass of variance: d = x - mean in f64; Σd and Σd².
        .sqdev => struct {
            pub const n = 16;
            pub const State = struct {
                s1: f64,
                s2: f64,
                mu: f64,
                pub fn init(shift: f64, _: bool) State {
                    return .{ .s1 = 0, .s2 = 0, .mu = shift };
                }
                pub inline fn feed1(self: *State, x: X, _: i64) void {
                    const dd = toF64(x) - self.mu;
                    self.s1 += dd;
                    self.s2 += dd * dd;
                }
                pub inline fn merge(self: *State, o: State) void {
                    self.s1 += o.s1;
                    self.s2 += o.s2;
                }
            };
            pub const Lanes = struct {
                s1: @Vector(n, f64),
                s2: @Vector(n, f64),
                mu: @Vector(n, f64),
                pub fn init(shift: @Vector(n, f64), _: bool) Lanes {
                    return .{ .s1 = @splat(0), .s2 = @splat(0), .mu = shift };
                }
                pub inline fn start(_: *Lanes, _: @Vector(n, u32)) void {}
                pub inline fn feed(self: *Lanes, x: @Vector(n, X), _: @Vector(n, u32)) void {
                    const dd = toF64V(n, x) - self.mu;
                    self.s1 += dd;
                    self.s2 += dd * dd;
                }
                pub fn states(self: *const Lanes) [n]State {
                    const s1_a = arr(self.s1);
                    const s2_a = arr(self.s2);
                    const mu_a = arr(self.mu);
                    var out: [n]State = undefined;
                    for (&out, 0..) |*o, i| o.* = .{ .s1 = s1_a[i], .s2 = s2_a[i], .mu = mu_a[i] };
                    return out;
                }
            };
        },
        // Second pass of logsumexp: Σ exp(x - max) in f64.
        .expshift => struct {
            pub const n = 16;
            pub const State = struct {
                s: f64,
                m: f64,
                pub fn init(shift: f64, _: bool) State {
                    return .{ .s = 0, .m = shift };
                }
                pub inline fn feed1(self: *State, x: X, _: i64) void {
                    self.s += expNeg(1, @splat(toF64(x) - self.m))[0];
                }
                pub inline fn merge(self: *State, o: State) void {
                    self.s += o.s;
                }
            };
            pub const Lanes = struct {
                s: @Vector(n, f64),
                m: @Vector(n, f64),
                pub fn init(shift: @Vector(n, f64), _: bool) Lanes {
                    return .{ .s = @splat(0), .m = shift };
                }
                pub inline fn start(_: *Lanes, _: @Vector(n, u32)) void {}
                pub inline fn feed(self: *Lanes, x: @Vector(n, X), _: @Vector(n, u32)) void {
                    self.s += expNeg(n, toF64V(n, x) - self.m);
                }
                pub fn states(self: *const Lanes) [n]State {
                    const s_a = arr(self.s);
                    const m_a = arr(self.m);
                    var out: [n]State = undefined;
                    for (&out, 0..) |*o, i| o.* = .{ .s = s_a[i], .m = m_a[i] };
                    return out;
                }
            };
        },
    };
}

pub const no_index: i64 = std.math.maxInt(i64);

/// Element indices in argmin/argmax lanes are u32 (results are i32 anyway).
pub inline fn idx32(i: i64) u32 {
    return @truncate(@as(u64, @bitCast(i)));
}

/// exp(x) for x <= 0 (x > 0 and NaN are never passed: x = value - max), lane-wise in f64, with a
/// relative error of a few 1e-16; below -708 (exp < 3e-308) it gives 0. Plain mul/add only, so
/// every SIMD level gives the same bits: x = k ln2 + r (Cody-Waite), exp(r) by its Taylor
/// polynomial of degree 13 (|r| <= ln2/2), times 2^k built in the exponent bits.
pub inline fn expNeg(comptime n: usize, x: @Vector(n, f64)) @Vector(n, f64) {
    const V = @Vector(n, f64);
    const lo: V = @splat(-708.0);
    const xc = @select(f64, x < lo, lo, x); // also maps -inf
    const k = @round(xc * @as(V, @splat(1.4426950408889634)));
    const r = (xc - k * @as(V, @splat(6.93147180369123816490e-01))) - k * @as(V, @splat(1.90821492927058770002e-10));
    const coef = comptime blk: {
        var c: [14]f64 = undefined;
        var f: f64 = 1;
        for (0..14) |i| {
            if (i > 0) f *= @floatFromInt(i);
            c[i] = 1.0 / f;
        }
        break :blk c;
    };
    var p: V = @splat(coef[13]);
    inline for (0..13) |j| p = p * r + @as(V, @splat(coef[12 - j]));
    const ki: @Vector(n, i64) = @intFromFloat(k);
    const scale: V = @bitCast((ki + @as(@Vector(n, i64), @splat(1023))) << @splat(52));
    return @select(f64, x < lo, @as(V, @splat(0)), p * scale);
}

/// Combines the lanes of one output by a fixed halving tree.
pub fn tree(comptime K: type, l: *const K.Lanes) K.State {
    var s = l.states();
    var w: usize = K.n;
    while (w > 1) {
        w /= 2;
        for (0..w) |i| s[i].merge(s[i + w]);
    }
    return s[0];
}

const testing = std.testing;

test "expNeg: relative error below 1e-15 on [-708, 0], 0 below, exact at 0" {
    var x: f64 = 0;
    var worst: f64 = 0;
    while (x > -708) : (x -= 0.0137) {
        const got = expNeg(4, @splat(x))[0];
        const want = @exp(x);
        worst = @max(worst, @abs(got - want) / want);
    }
    try testing.expect(worst < 1e-15);
    try testing.expectEqual(@as(f64, 1), expNeg(1, @splat(0))[0]);
    try testing.expectEqual(@as(f64, 0), expNeg(1, @splat(-800))[0]);
    try testing.expectEqual(@as(f64, 0), expNeg(1, @splat(-std.math.inf(f64)))[0]);
}
