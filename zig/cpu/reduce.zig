//! Reductions (sum, mean, prod, min, max, argmin, argmax, variance, std, logsumexp) and cumsum.
//!
//! Contract: args.ReduceArgs / args.ScanArgs; output dtypes are chosen by src/ops/reduce.ts (this
//! file converts each result to whatever `out_dtype` says, with dtype.zig's rules).
//!
//! Accuracy. Float sums widen every element to f64 and add it into one of 32 fixed "virtual
//! lanes" (element i of a run goes to lane i mod 32); the lanes are combined at the end by a fixed
//! halving tree. The error is about (n / 32) f64 roundings, far below one f32 (or f16, bf16)
//! rounding of the result for any practical n (NumPy's f32 pairwise sum: log2(n) f32 roundings).
//! Integer sums are exact in 64 bits (sum wraps to 32 bits on store, mean divides the exact sum);
//! integer products wrap in 32 bits (an associative operation, so any order gives the same
//! bits). prod of floats multiplies in f64. variance and std are two-pass in f64: the mean, then
//! Σd² − (Σd)²/n with d = x − mean (the correction term removes the rounding of the mean).
//! logsumexp is max-shifted, Σexp(x − max) in f64. Each result is rounded once to its dtype.
//!
//! Determinism. The order of every operation is fixed by the layout alone: never by the thread
//! count, and never by the SIMD level (the virtual lane counts are constants, which LLVM maps onto
//! whatever registers the level has). Work is split over
//! threads by output elements; when there are few outputs and many inputs, the reduced range is
//! cut into fixed chunks whose partial states are merged in chunk order afterwards.
//!
//! Paths (chosen from the coalesced layout, never from the thread count):
//! - rows: each output reduces its own sub-box, innermost reduced axis contiguous (vector loads)
//!   or strided (gathers);
//! - columns: the innermost KEPT axis is contiguous in the input (e.g. sum over axis 0 of a
//!   row-major matrix): a tile of up to 1024 neighbouring outputs is accumulated with vectors while the
//!   reduced positions are walked in the outer loop;
//! - chunks: fewer than 64 outputs and at least 2 × 32768 inputs each: (output, chunk) work items.
//! For order-free ops (all but argmin/argmax) the reduced axes are first reordered by stride and
//! reversed axes flipped, so a transposed or reversed view is still read as contiguous rows.
//! argmin/argmax walk the reduced elements in logical (row-major) order and keep the first
//! occurrence; a NaN counts as the extreme and the first NaN wins (NumPy).
const std = @import("std");
const dt = @import("dtype.zig");
const args = @import("args.zig");
const strided = @import("strided.zig");
const Parallel = @import("parallel.zig").Parallel;
const ptrAt = @import("copy.zig").ptrAt;
const elementwise = @import("elementwise.zig");
const DType = dt.DType;
const ReduceOp = args.ReduceOp;

/// Reduced elements per work item of the chunked path.
const chunk_elems = 32 * 1024;
/// Partial states the chunked path may hold (outputs × chunks).
const max_partials = 1024;
/// Below this many outputs, a large reduction is chunked.
const few_outputs = 64;
/// Input elements a thread task should at least cover.
const task_elems = 32 * 1024;
/// Outputs per tile of the columns path (a multiple of every Acc's lane count): up to 4 KiB of
/// f32 input per reduced position, accumulators in L1.
const tile = 1024;
/// The columns path needs at least this many contiguous outputs.
const min_cols = 8;

/// The value type elements are read as (f32 for the 16-bit floats), and vector loads: shared
/// with the elementwise kernels.
const Val = elementwise.Compute;
const isFloatT = elementwise.isFloatT;

// ---- loads ------------------------------------------------------------------------------------

const loadV = elementwise.load;

inline fn load1(comptime d: DType, p: [*]const dt.Storage(d), off: isize) Val(d) {
    const x = ptrAt(dt.Storage(d), p, off).*;
    return switch (d) {
        .bf16 => x.toF32(),
        .f16 => @floatCast(x),
        else => x,
    };
}

/// n elements at p, p + st, p + 2 st, ...
inline fn gatherV(comptime d: DType, comptime n: usize, p: [*]const dt.Storage(d), st: isize) @Vector(n, Val(d)) {
    var v: [n]Val(d) = undefined;
    inline for (0..n) |i| v[i] = load1(d, p, @as(isize, i) * st);
    return v;
}

/// The first `cnt` (< n) of n contiguous elements; the rest are 0.
fn loadPartial(comptime d: DType, comptime n: usize, p: [*]const dt.Storage(d), cnt: usize) @Vector(n, Val(d)) {
    var v: [n]Val(d) = @splat(0);
    for (0..cnt) |i| v[i] = load1(d, p, @intCast(i));
    return v;
}

/// A vector as an array (for runtime lane indices).
inline fn arr(v: anytype) [@typeInfo(@TypeOf(v)).vector.len]@typeInfo(@TypeOf(v)).vector.child {
    return v;
}

inline fn toF64(x: anytype) f64 {
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

const Kind = enum { sum_f64, sum_i64, prod_f64, prod_wrap, min, argmin, sqdev, expshift };

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

inline fn flip1(comptime X: type, x: X, m: Bits(X)) X {
    return @bitCast(@as(Bits(X), @bitCast(x)) ^ m);
}

fn Acc(comptime X: type, comptime kind: Kind) type {
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
        .prod_f64 => struct {
            pub const n = 16;
            pub const State = struct {
                s: f64,
                pub fn init(_: f64, _: bool) State {
                    return .{ .s = 1 };
                }
                pub inline fn feed1(self: *State, x: X, _: i64) void {
                    self.s *= toF64(x);
                }
                pub inline fn merge(self: *State, o: State) void {
                    self.s *= o.s;
                }
            };
            pub const Lanes = struct {
                acc: @Vector(n, f64),
                pub fn init(_: @Vector(n, f64), _: bool) Lanes {
                    return .{ .acc = @splat(1) };
                }
                pub inline fn start(_: *Lanes, _: @Vector(n, u32)) void {}
                pub inline fn feed(self: *Lanes, x: @Vector(n, X), _: @Vector(n, u32)) void {
                    self.acc *= toF64V(n, x);
                }
                pub fn states(self: *const Lanes) [n]State {
                    const acc_a = arr(self.acc);
                    var out: [n]State = undefined;
                    for (&out, 0..) |*o, i| o.* = .{ .s = acc_a[i] };
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

const no_index: i64 = std.math.maxInt(i64);

/// Element indices in argmin/argmax lanes are u32 (results are i32 anyway).
inline fn idx32(i: i64) u32 {
    return @truncate(@as(u64, @bitCast(i)));
}

/// exp(x) for x <= 0 (x > 0 and NaN are never passed: x = value - max), lane-wise in f64, with a
/// relative error of a few 1e-16; below -708 (exp < 3e-308) it gives 0. Plain mul/add only, so
/// every SIMD level gives the same bits: x = k ln2 + r (Cody-Waite), exp(r) by its Taylor
/// polynomial of degree 13 (|r| <= ln2/2), times 2^k built in the exponent bits.
inline fn expNeg(comptime n: usize, x: @Vector(n, f64)) @Vector(n, f64) {
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
fn tree(comptime K: type, l: *const K.Lanes) K.State {
    var s = l.states();
    var w: usize = K.n;
    while (w > 1) {
        w /= 2;
        for (0..w) |i| s[i].merge(s[i + w]);
    }
    return s[0];
}

// ---- plans: which accumulators an op uses ------------------------------------------------------

/// Ops that share a kernel (they differ only in how the result is finished, or in `flip`).
const PlanKind = enum { sum, prod, minmax, arg, variance, lse };

fn planOf(op: ReduceOp) PlanKind {
    return switch (op) {
        .sum, .mean => .sum,
        .prod => .prod,
        .min, .max => .minmax,
        .argmin, .argmax => .arg,
        .variance, .std => .variance,
        .logsumexp => .lse,
    };
}

/// The second-pass state of one-pass plans.
const NoState = struct {
    pub fn init(_: f64, _: bool) NoState {
        return .{};
    }
    pub fn merge(_: *NoState, _: NoState) void {}
};

fn Plan(comptime plan: PlanKind, comptime X: type) type {
    const float = comptime isFloatT(X);
    const sum_kind: Kind = if (float) .sum_f64 else .sum_i64;
    return struct {
        /// First (or only) pass.
        pub const A = Acc(X, switch (plan) {
            .sum, .variance => sum_kind,
            .prod => if (float) .prod_f64 else .prod_wrap,
            .minmax, .lse => .min,
            .arg => .argmin,
        });
        /// Second pass (its `shift` comes from the first), or NoState.
        pub const two_pass = plan == .variance or plan == .lse;
        pub const B = switch (plan) {
            .variance => Acc(X, .sqdev),
            .lse => Acc(X, .expshift),
            else => void,
        };
        pub const BState = if (two_pass) B.State else NoState;

        /// The max of logsumexp's first pass (min of flipped values, flipped back), as f64.
        fn lseMax(a: A.State) f64 {
            return toF64(flip1(X, a.m, a.mask));
        }

        /// The constant of the second pass: the mean, or a finite max.
        pub fn shift(a: A.State, n: usize) f64 {
            return switch (plan) {
                .variance => toF64(a.s) / @as(f64, @floatFromInt(n)),
                .lse => blk: {
                    const m = lseMax(a);
                    break :blk if (std.math.isFinite(m)) m else 0;
                },
                else => 0,
            };
        }

        /// Finishes one output and stores it.
        pub fn emit(op: ReduceOp, od: DType, out: [*]u8, off: isize, a: A.State, b: BState, n: usize, ddof: f64) void {
            const nf: f64 = @floatFromInt(n);
            switch (plan) {
                .sum => {
                    if (op == .mean) return storeF(od, out, off, toF64(a.s) / nf);
                    if (float) storeF(od, out, off, a.s) else storeI(od, out, off, a.s);
                },
                .prod => if (float) storeF(od, out, off, a.s) else storeI(od, out, off, a.s),
                .minmax => {
                    const v = flip1(X, a.m, a.mask);
                    if (float) storeF(od, out, off, v) else storeI(od, out, off, v);
                },
                .arg => storeI(od, out, off, if (a.i == no_index) 0 else a.i),
                .variance => {
                    const dof = nf - ddof;
                    var v: f64 = std.math.nan(f64);
                    if (n > 0 and dof > 0 and !std.math.isNan(b.s1) and !std.math.isNan(b.s2)) {
                        v = @max(0, b.s2 - b.s1 * b.s1 / nf) / dof;
                    }
                    storeF(od, out, off, if (op == .std) @sqrt(v) else v);
                },
                .lse => {
                    const m = lseMax(a);
                    // NaN, +inf, or -inf (nothing, or all -inf) decide alone.
                    storeF(od, out, off, if (std.math.isFinite(m)) m + @log(b.s) else m);
                },
            }
        }
    };
}

fn storeF(od: DType, out: [*]u8, off: isize, v: f64) void {
    switch (od) {
        inline else => |o| {
            const T = dt.Storage(o);
            ptrAt(T, @ptrCast(@alignCast(out)), off).* = dt.fromFloat(o, v);
        },
    }
}

fn storeI(od: DType, out: [*]u8, off: isize, v: i64) void {
    switch (od) {
        inline else => |o| {
            const T = dt.Storage(o);
            ptrAt(T, @ptrCast(@alignCast(out)), off).* = dt.fromInt(o, v);
        },
    }
}

// ---- walkers -------------------------------------------------------------------------------------

/// Units of forRows: rows for ndim >= 2, elements otherwise.
fn units(comptime k: usize, l: *const strided.Layout(k)) usize {
    return if (l.ndim <= 1) l.size() else l.rows();
}

/// Reduces units [ub, ue) of R (element offsets relative to `base`) with accumulator K: the rows
/// path of one output, or one chunk of it.
fn runR(comptime d: DType, comptime K: type, base: [*]const dt.Storage(d), R: *const strided.Layout(1), ub: usize, ue: usize, shift: f64, flip: bool) K.State {
    const S = dt.Storage(d);
    const n = K.n;
    const Walk = struct {
        lanes: K.Lanes,
        tail: K.State,
        fed: bool = false,
        idx: i64,
        base: [*]const S,

        pub fn row(self: *@This(), offs: [1]isize, len: usize, st: [1]isize) void {
            const p: [*]const S = @ptrCast(ptrAt(S, self.base, offs[0]));
            const s = st[0];
            var i: usize = 0;
            if (len >= n) {
                // Locals, so the accumulators live in registers.
                var lanes = self.lanes;
                const iota = std.simd.iota(u32, n);
                if (!self.fed) lanes.start(@as(@Vector(n, u32), @splat(idx32(self.idx))) +% iota);
                self.fed = true;
                while (i + n <= len) : (i += n) {
                    const x = if (s == 1) loadV(d, n, p + i) else gatherV(d, n, @ptrCast(ptrAt(S, p, @as(isize, @intCast(i)) * s)), s);
                    lanes.feed(x, @as(@Vector(n, u32), @splat(idx32(self.idx + @as(i64, @intCast(i))))) +% iota);
                }
                self.lanes = lanes;
            }
            var tail = self.tail;
            while (i < len) : (i += 1) tail.feed1(load1(d, p, @as(isize, @intCast(i)) * s), self.idx + @as(i64, @intCast(i)));
            self.tail = tail;
            self.idx += @intCast(len);
        }
    };
    const first: usize = if (R.ndim <= 1) ub else ub * R.rowLen();
    var w: Walk = .{ .lanes = K.Lanes.init(@splat(shift), flip), .tail = K.State.init(shift, flip), .idx = @intCast(first), .base = base };
    R.forRows(ub, ue, &w);
    var st = if (w.fed) tree(K, &w.lanes) else K.State.init(shift, flip);
    st.merge(w.tail);
    return st;
}

/// The columns path: accumulates `cnt` (<= tile) neighbouring outputs whose inputs are contiguous
/// from `base`, walking every reduced position (R) in the outer loop. Each position reads one
/// contiguous run of up to `tile` elements, so memory is streamed, not strided.
fn columnPass(comptime d: DType, comptime K: type, R: *const strided.Layout(1), base: [*]const dt.Storage(d), cnt: usize, shifts: *const [tile]f64, flip: bool, states: *[tile]K.State) void {
    const S = dt.Storage(d);
    const n = K.n;
    const nv = tile / n;
    const full = cnt / n;
    const rem = cnt % n;
    var lanes: [nv]K.Lanes = undefined;
    for (0..(cnt + n - 1) / n) |v| lanes[v] = K.Lanes.init(shifts[v * n ..][0..n].*, flip);
    const Walk = struct {
        lanes: *[nv]K.Lanes,
        base: [*]const S,
        full: usize,
        rem: usize,
        pos: i64 = 0,
        pub fn row(w: *@This(), offs: [1]isize, len: usize, st: [1]isize) void {
            var off = offs[0];
            for (0..len) |_| {
                const p: [*]const S = @ptrCast(ptrAt(S, w.base, off));
                const idx: @Vector(n, u32) = @splat(idx32(w.pos));
                for (w.lanes[0..w.full], 0..) |*l, v| l.feed(loadV(d, n, p + v * n), idx);
                if (w.rem != 0) w.lanes[w.full].feed(@call(.never_inline, loadPartial, .{ d, n, p + w.full * n, w.rem }), idx);
                w.pos += 1;
                off += st[0];
            }
        }
    };
    var w: Walk = .{ .lanes = &lanes, .base = base, .full = full, .rem = rem };
    R.forEachRow(&w);
    for (0..(cnt + n - 1) / n) |v| {
        const st = lanes[v].states();
        for (0..@min(n, cnt - v * n)) |i| states[v * n + i] = st[i];
    }
}

// ---- reduce -----------------------------------------------------------------------------------

pub fn reduce(comptime vbits: u32, par: *const Parallel, a: *const args.ReduceArgs) void {
    _ = vbits; // lane counts are fixed so every level gives the same bits (see the top)
    var g: Geometry = undefined;
    if (!g.init(a)) return;
    switch (a.in_dtype) {
        inline .f32, .f16, .bf16, .i8, .i16, .i32, .u8, .u16, .u32, .bool => |d| switch (planOf(a.op)) {
            inline else => |plan| reduceTyped(plan, d, par, a, &g),
        },
        .f64 => unreachable, // not a tensor dtype
    }
}

const Path = enum { empty, columns, chunks, rows };

/// The normalised layout and the path (dtype-independent, so not instantiated per kernel).
const Geometry = struct {
    /// Kept axes: strides[0] = out, strides[1] = in.
    K: strided.Layout(2),
    /// Reduced axes: strides[0] = in.
    R: strided.Layout(1),
    /// Offsets (elements) of the first output / input element after flipping reversed axes.
    out_off: isize,
    in_off: isize,
    /// Elements reduced per output, and the number of outputs.
    n: usize,
    n_out: usize,
    path: Path,
    /// chunks path: units of R per chunk, and chunks per output.
    per: usize,
    nc: usize,

    fn init(g: *Geometry, a: *const args.ReduceArgs) bool {
        const kept = a.kept;
        const nd = a.layout.ndim;
        g.out_off = 0;
        g.in_off = 0;
        g.n = 1;
        g.per = 0;
        g.nc = 0;
        // Kept axes: any order, reversed axes flipped (outputs keep their elements).
        g.K.ndim = kept;
        for (0..kept) |i| {
            const sz = a.layout.shape[i];
            var so = a.layout.strides[0][i];
            var si = a.layout.strides[1][i];
            if (sz == 0) return false;
            if (si < 0) {
                const last: isize = @intCast(sz - 1);
                g.in_off += si * last;
                g.out_off += so * last;
                si = -si;
                so = -so;
            }
            g.K.shape[i] = sz;
            g.K.strides[0][i] = so;
            g.K.strides[1][i] = si;
        }
        sortAxes(2, &g.K, 1);
        g.K.coalesce();
        // Reduced axes: reordered and flipped only where the order cannot show.
        const order_free = a.op != .argmin and a.op != .argmax;
        g.R.ndim = nd - kept;
        for (kept..nd) |i| {
            const sz = a.layout.shape[i];
            var si = a.layout.strides[1][i];
            g.n *= sz;
            if (order_free and si < 0 and sz > 0) {
                g.in_off += si * @as(isize, @intCast(sz - 1));
                si = -si;
            }
            g.R.shape[i - kept] = sz;
            g.R.strides[0][i - kept] = si;
        }
        if (order_free) sortAxes(1, &g.R, 0);
        g.R.coalesce();
        g.n_out = g.K.size();
        g.path = g.choose();
        return true;
    }

    fn choose(g: *Geometry) Path {
        if (g.n == 0) return .empty;
        const kn = g.K.ndim;
        // Innermost kept axis contiguous in the input, reduced axes not.
        if (kn >= 1 and g.K.strides[1][kn - 1] == 1 and g.K.shape[kn - 1] >= min_cols and (g.R.ndim == 0 or g.R.strides[0][g.R.ndim - 1] != 1)) return .columns;
        const ru = units(1, &g.R);
        if (g.n_out < few_outputs and g.n >= 2 * chunk_elems and ru >= 2) {
            var per: usize = if (g.R.ndim <= 1) chunk_elems else @max(1, chunk_elems / g.R.rowLen());
            var nc = (ru + per - 1) / per;
            const max_nc = max_partials / g.n_out;
            if (nc > max_nc) {
                per = (ru + max_nc - 1) / max_nc;
                nc = (ru + per - 1) / per;
            }
            if (nc >= 2) {
                g.per = per;
                g.nc = nc;
                return .chunks;
            }
        }
        return .rows;
    }

    /// Offsets (out, in) of output number o (row-major over K).
    fn keptOffsets(g: *const Geometry, o: usize) [2]isize {
        var offs: [2]isize = .{ 0, 0 };
        var rem = o;
        var ax = g.K.ndim;
        while (ax > 0) {
            ax -= 1;
            const i: isize = @intCast(rem % g.K.shape[ax]);
            rem /= g.K.shape[ax];
            offs[0] += i * g.K.strides[0][ax];
            offs[1] += i * g.K.strides[1][ax];
        }
        return offs;
    }
};

/// Sorts the axes of a layout by |strides[sel]|, largest first (insertion sort: stable).
fn sortAxes(comptime m: usize, l: *strided.Layout(m), sel: usize) void {
    var i: usize = 1;
    while (i < l.ndim) : (i += 1) {
        var j = i;
        while (j > 0 and @abs(l.strides[sel][j - 1]) < @abs(l.strides[sel][j])) : (j -= 1) {
            std.mem.swap(usize, &l.shape[j - 1], &l.shape[j]);
            inline for (0..m) |k| std.mem.swap(isize, &l.strides[k][j - 1], &l.strides[k][j]);
        }
    }
}

fn Job(comptime plan: PlanKind, comptime d: DType) type {
    return struct {
        const P = Plan(plan, Val(d));
        const S = dt.Storage(d);
        const Self = @This();

        g: *const Geometry,
        op: ReduceOp,
        flip: bool,
        ddof: f64,
        od: DType,
        out: [*]u8,
        in: [*]const S,
        /// columns path: outputs per work item (each output's result does not depend on it).
        tile_w: usize = tile,
        partA: [*]P.A.State = undefined,
        partB: [*]P.BState = undefined,
        shifts: [*]const f64 = undefined,

        fn emit(self: *const Self, off: isize, a: P.A.State, b: P.BState) void {
            P.emit(self.op, self.od, self.out, off, a, b, self.g.n, self.ddof);
        }

        // rows path: each output on its own; work items are units of K.
        pub fn row(self: *const Self, offs: [2]isize, len: usize, st: [2]isize) void {
            var oo = offs[0];
            var io = offs[1];
            const ru = units(1, &self.g.R);
            for (0..len) |_| {
                const base: [*]const S = @ptrCast(ptrAt(S, self.in, io));
                const sa = runR(d, P.A, base, &self.g.R, 0, ru, 0, self.flip);
                var sb: P.BState = .init(0, false);
                if (P.two_pass) sb = runR(d, P.B, base, &self.g.R, 0, ru, P.shift(sa, self.g.n), false);
                self.emit(oo, sa, sb);
                oo += st[0];
                io += st[1];
            }
        }

        fn rowsTask(self: *const Self, b: usize, e: usize) void {
            self.g.K.forRows(b, e, self);
        }

        fn columnsTask(self: *const Self, b: usize, e: usize) void {
            const K = &self.g.K;
            const kin = K.shape[K.ndim - 1];
            const tw = self.tile_w;
            const ntiles = (kin + tw - 1) / tw;
            const os_in = K.strides[0][K.ndim - 1];
            for (b..e) |item| {
                // The outer kept index is output number (item / ntiles) * kin.
                const offs = self.g.keptOffsets((item / ntiles) * kin);
                const j0 = (item % ntiles) * tw;
                const cnt = @min(tw, kin - j0);
                const base: [*]const S = @ptrCast(ptrAt(S, self.in, offs[1] + @as(isize, @intCast(j0))));
                var sa: [tile]P.A.State = undefined;
                var sh: [tile]f64 = @splat(0);
                columnPass(d, P.A, &self.g.R, base, cnt, &sh, self.flip, &sa);
                var sb: [tile]P.BState = undefined;
                if (P.two_pass) {
                    for (0..cnt) |c| sh[c] = P.shift(sa[c], self.g.n);
                    columnPass(d, P.B, &self.g.R, base, cnt, &sh, false, &sb);
                }
                for (0..cnt) |c| self.emit(offs[0] + @as(isize, @intCast(j0 + c)) * os_in, sa[c], sb[c]);
            }
        }

        fn chunkRange(self: *const Self, c: usize) [2]usize {
            return .{ c * self.g.per, @min(units(1, &self.g.R), (c + 1) * self.g.per) };
        }

        fn chunkTaskA(self: *const Self, b: usize, e: usize) void {
            for (b..e) |item| {
                const o = item / self.g.nc;
                const r = self.chunkRange(item % self.g.nc);
                const base: [*]const S = @ptrCast(ptrAt(S, self.in, self.g.keptOffsets(o)[1]));
                self.partA[item] = runR(d, P.A, base, &self.g.R, r[0], r[1], 0, self.flip);
            }
        }

        fn chunkTaskB(self: *const Self, b: usize, e: usize) void {
            if (P.two_pass) {
                for (b..e) |item| {
                    const o = item / self.g.nc;
                    const r = self.chunkRange(item % self.g.nc);
                    const base: [*]const S = @ptrCast(ptrAt(S, self.in, self.g.keptOffsets(o)[1]));
                    self.partB[item] = runR(d, P.B, base, &self.g.R, r[0], r[1], self.shifts[o], false);
                }
            }
        }

        // empty reductions: the identity (0, 1, NaN, -inf) for every output.
        pub const Empty = struct {
            job: *const Self,
            pub fn row(e: *const @This(), offs: [2]isize, len: usize, st: [2]isize) void {
                var oo = offs[0];
                for (0..len) |_| {
                    e.job.emit(oo, P.A.State.init(0, e.job.flip), P.BState.init(0, false));
                    oo += st[0];
                }
            }
        };
    };
}

fn reduceTyped(comptime plan: PlanKind, comptime d: DType, par: *const Parallel, a: *const args.ReduceArgs, g: *const Geometry) void {
    const J = Job(plan, d);
    const P = J.P;
    const S = dt.Storage(d);
    var j: J = .{
        .g = g,
        .op = a.op,
        .flip = a.op == .max or a.op == .argmax or a.op == .logsumexp,
        .ddof = a.ddof,
        .od = a.out_dtype,
        .out = @ptrCast(ptrAt(u8, a.out, g.out_off * @as(isize, @intCast(a.out_dtype.size())))),
        .in = @ptrCast(ptrAt(S, @ptrCast(@alignCast(a.in)), g.in_off)),
    };
    const jc: *const J = &j;
    const K = &g.K;
    switch (g.path) {
        .empty => {
            const e: J.Empty = .{ .job = jc };
            K.forEachRow(&e);
        },
        .columns => {
            const kin = K.shape[K.ndim - 1];
            // Full-width tiles even when that leaves threads idle: splitting one stream of
            // rows into interleaved part-rows measured slower (sum over axis 0 of [1024, 1024]
            // on the 2-core machine: 150 us as one tile, 230 us as two half tiles on two
            // threads). tile_w only groups outputs: every output is one lane fed in the same
            // order, so the bits never depend on it.
            const outer = g.n_out / kin;
            const tw: usize = tile;
            j.tile_w = tw;
            const items = outer * ((kin + tw - 1) / tw);
            par.run(items, @max(1, task_elems / (@min(kin, tw) * g.n)), jc, J.columnsTask);
        },
        .chunks => {
            const nc = g.nc;
            var pa: [max_partials]P.A.State = undefined;
            var pb: [max_partials]P.BState = undefined;
            var shifts: [few_outputs]f64 = undefined;
            var sa: [few_outputs]P.A.State = undefined;
            j.partA = &pa;
            j.partB = &pb;
            j.shifts = &shifts;
            par.run(g.n_out * nc, 1, jc, J.chunkTaskA);
            for (0..g.n_out) |o| {
                sa[o] = pa[o * nc];
                for (1..nc) |c| sa[o].merge(pa[o * nc + c]);
                shifts[o] = P.shift(sa[o], g.n);
            }
            if (P.two_pass) par.run(g.n_out * nc, 1, jc, J.chunkTaskB);
            for (0..g.n_out) |o| {
                var sb: P.BState = .init(0, false);
                if (P.two_pass) {
                    sb = pb[o * nc];
                    for (1..nc) |c| sb.merge(pb[o * nc + c]);
                }
                j.emit(g.keptOffsets(o)[0], sa[o], sb);
            }
        },
        .rows => {
            const per_unit = @max(1, (if (K.ndim <= 1) 1 else K.rowLen()) * g.n);
            par.run(units(2, K), @max(1, task_elems / per_unit), jc, J.rowsTask);
        },
    }
}

// ---- cumsum -----------------------------------------------------------------------------------

/// The output dtype cumsum (and sum) gives for an input dtype.
fn scanOut(comptime d: DType) DType {
    return switch (d) {
        .f32, .f16, .bf16, .f64 => d,
        .u8, .u16, .u32 => .u32,
        else => .i32,
    };
}

pub fn cumsum(comptime vbits: u32, par: *const Parallel, a: *const args.ScanArgs) void {
    _ = vbits;
    switch (a.in_dtype) {
        inline .f32, .f16, .bf16, .i8, .i16, .i32, .u8, .u16, .u32, .bool => |d| {
            // src/ops/reduce.ts always asks for scanOut(d); anything else is not compiled in.
            if (a.out_dtype == scanOut(d)) scanTyped(d, scanOut(d), par, a);
        },
        .f64 => unreachable,
    }
}

fn scanTyped(comptime d: DType, comptime od: DType, par: *const Parallel, a: *const args.ScanArgs) void {
    const S = dt.Storage(d);
    const O = dt.Storage(od);
    // Floats accumulate in f64 (sequentially), integers wrap in 64 bits (stored wrapped).
    const T = if (comptime dt.isFloat(d)) f64 else i64;
    const Ctx = struct {
        outer: strided.Layout(2),
        len: usize,
        so: isize,
        si: isize,
        out: [*]O,
        in: [*]const S,

        inline fn step(acc: *T, x: Val(d)) O {
            if (T == f64) {
                acc.* += toF64(x);
                return dt.fromFloat(od, acc.*);
            }
            acc.* +%= x;
            return dt.fromInt(od, acc.*);
        }

        // One scan per outer position.
        pub fn row(self: *const @This(), offs: [2]isize, n: usize, st: [2]isize) void {
            var oo = offs[0];
            var io = offs[1];
            for (0..n) |_| {
                var acc: T = 0;
                var po = oo;
                var pi = io;
                for (0..self.len) |_| {
                    ptrAt(O, self.out, po).* = step(&acc, load1(d, self.in, pi));
                    po += self.so;
                    pi += self.si;
                }
                oo += st[0];
                io += st[1];
            }
        }

        fn rowsTask(self: *const @This(), b: usize, e: usize) void {
            self.outer.forRows(b, e, self);
        }

        /// Tiles of `tile` neighbouring scans whose elements are contiguous (columns).
        fn colsTask(self: *const @This(), b: usize, e: usize) void {
            const k = self.outer.ndim;
            const cols = self.outer.shape[k - 1];
            const ntiles = (cols + tile - 1) / tile;
            for (b..e) |item| {
                var rem = item / ntiles;
                const j0 = (item % ntiles) * tile;
                const cnt = @min(tile, cols - j0);
                var oo: isize = @intCast(j0);
                var io: isize = @intCast(j0);
                var ax = k - 1;
                while (ax > 0) {
                    ax -= 1;
                    const i: isize = @intCast(rem % self.outer.shape[ax]);
                    rem /= self.outer.shape[ax];
                    oo += i * self.outer.strides[0][ax];
                    io += i * self.outer.strides[1][ax];
                }
                var acc: [tile]T = @splat(0);
                for (0..self.len) |_| {
                    const o: [*]O = @ptrCast(ptrAt(O, self.out, oo));
                    const x: [*]const S = @ptrCast(ptrAt(S, self.in, io));
                    for (0..cnt) |c| o[c] = step(&acc[c], load1(d, x, @intCast(c)));
                    oo += self.so;
                    io += self.si;
                }
            }
        }
    };
    const nd = a.layout.ndim;
    var c: Ctx = .{ .outer = undefined, .len = 1, .so = 0, .si = 0, .out = @ptrCast(@alignCast(a.out)), .in = @ptrCast(@alignCast(a.in)) };
    if (nd > 0) {
        c.len = a.layout.shape[nd - 1];
        c.so = a.layout.strides[0][nd - 1];
        c.si = a.layout.strides[1][nd - 1];
    }
    c.outer.ndim = if (nd > 0) nd - 1 else 0;
    for (0..c.outer.ndim) |i| {
        c.outer.shape[i] = a.layout.shape[i];
        c.outer.strides[0][i] = a.layout.strides[0][i];
        c.outer.strides[1][i] = a.layout.strides[1][i];
    }
    c.outer.coalesce();
    if (c.outer.size() == 0 or c.len == 0) return;
    const k = c.outer.ndim;
    const cc: *const Ctx = &c;
    if (k >= 1 and c.outer.strides[0][k - 1] == 1 and c.outer.strides[1][k - 1] == 1 and c.outer.shape[k - 1] >= min_cols and c.len > 1) {
        const cols = c.outer.shape[k - 1];
        const items = (c.outer.size() / cols) * ((cols + tile - 1) / tile);
        par.run(items, @max(1, task_elems / (@min(cols, tile) * c.len)), cc, Ctx.colsTask);
        return;
    }
    const per_unit = @max(1, (if (k <= 1) 1 else c.outer.rowLen()) * c.len);
    par.run(units(2, &c.outer), @max(1, task_elems / per_unit), cc, Ctx.rowsTask);
}

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

test "cumsum along rows and columns" {
    var x: [3 * 9]f32 = undefined;
    for (&x, 0..) |*v, i| v.* = @floatFromInt(i);
    var o: [3 * 9]f32 = undefined;
    var a: args.ScanArgs = .{ .in_dtype = .f32, .out_dtype = .f32, .out = std.mem.sliceAsBytes(&o).ptr, .in = std.mem.sliceAsBytes(&x).ptr, .layout = undefined };
    // Along axis 1 (rows).
    a.layout.ndim = 2;
    a.layout.shape[0..2].* = .{ 3, 9 };
    a.layout.strides[0][0..2].* = .{ 9, 1 };
    a.layout.strides[1][0..2].* = .{ 9, 1 };
    cumsum(0, &Parallel.serial, &a);
    for (0..3) |r| {
        var s: f32 = 0;
        for (0..9) |c| {
            s += x[r * 9 + c];
            try testing.expectEqual(s, o[r * 9 + c]);
        }
    }
    // Along axis 0 (the scan axis last in the layout: shape [9, 3]).
    a.layout.shape[0..2].* = .{ 9, 3 };
    a.layout.strides[0][0..2].* = .{ 1, 9 };
    a.layout.strides[1][0..2].* = .{ 1, 9 };
    cumsum(0, &Parallel.serial, &a);
    for (0..9) |c| {
        var s: f32 = 0;
        for (0..3) |r| {
            s += x[r * 9 + c];
            try testing.expectEqual(s, o[r * 9 + c]);
        }
    }
}

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
