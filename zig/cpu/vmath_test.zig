//! Tests of vmath.zig: max ulp error against f64 references over a dense sweep, log-spaced
//! magnitudes (subnormals included), random f32 bit patterns and special values, at n = 1, 4, 8
//! and 16, with bitwise equal results at every width; exact symmetries; roundHalfEven.
const std = @import("std");
const vmath = @import("vmath.zig");
const Vec = vmath.Vec;
const exp = vmath.exp;
const log = vmath.log;
const tanh = vmath.tanh;
const sigmoid = vmath.sigmoid;
const silu = vmath.silu;
const siluGrad = vmath.siluGrad;
const sigmoidGradFromY = vmath.sigmoidGradFromY;
const tanhGradFromY = vmath.tanhGradFromY;
const erf = vmath.erf;
const gelu = vmath.gelu;
const geluGrad = vmath.geluGrad;
const geluTanh = vmath.geluTanh;
const geluTanhGrad = vmath.geluTanhGrad;
const sin = vmath.sin;
const cos = vmath.cos;
const rsqrt = vmath.rsqrt;
const roundHalfEven = vmath.roundHalfEven;
const scalar = vmath.scalar;

const testing = std.testing;

const ref = struct {
    const sqrtpi: f64 = 1.7724538509055160273;
    const k0: f64 = 1.5957691216057308;
    const k1: f64 = 1.5957691216057308 * 0.044715;
    fn erfSeries(x: f64) f64 { // 0 <= x < 2.5: 2/sqrtpi e^-x^2 sum (2x^2)^k x / (2k+1)!!, all terms > 0
        var term = x;
        var sum = x;
        var k: f64 = 0;
        while (term > sum * 1e-18) {
            k += 1;
            term *= 2 * x * x / (2 * k + 1);
            sum += term;
        }
        return 2 / sqrtpi * @exp(-x * x) * sum;
    }
    fn erfcPos(x: f64) f64 { // x >= 0
        if (x < 2.5) return 1 - ref.erfSeries(x);
        var t = x; // continued fraction
        var k: f64 = 150;
        while (k >= 1) : (k -= 1) t = x + (k / 2) / t;
        return @exp(-x * x) / sqrtpi / t;
    }
    fn erfc(x: f64) f64 {
        return if (x >= 0) ref.erfcPos(x) else 2 - ref.erfcPos(-x);
    }
    fn erf(x: f64) f64 {
        if (std.math.isNan(x)) return x;
        const a = @abs(x);
        return std.math.copysign(if (a < 2.5) ref.erfSeries(a) else 1 - ref.erfcPos(a), x);
    }
    fn sigmoid(x: f64) f64 {
        const e = @exp(-@abs(x));
        return (if (x >= 0) 1 else e) / (1 + e);
    }
    fn sigDeriv(x: f64) f64 {
        const e = @exp(-@abs(x));
        return e / ((1 + e) * (1 + e));
    }
    fn exp(x: f64) f64 {
        return @exp(x);
    }
    fn log(x: f64) f64 {
        return @log(x);
    }
    fn sin(x: f64) f64 {
        return @sin(x);
    }
    fn cos(x: f64) f64 {
        return @cos(x);
    }
    fn rsqrt(x: f64) f64 {
        return 1 / @sqrt(x);
    }
    fn tanh(x: f64) f64 {
        return std.math.tanh(x);
    }
    fn noInf(x: f64, y: f64) f64 { // x * y with the limit 0 where x is infinite and y is 0
        return if (y == 0) 0 else x * y;
    }
    fn gelu(x: f64) f64 {
        return ref.noInf(x, 0.5 * ref.erfc(-x / std.math.sqrt2));
    }
    fn geluGrad(x: f64) f64 {
        return 0.5 * ref.erfc(-x / std.math.sqrt2) + ref.noInf(x, @exp(-0.5 * x * x) * 0.3989422804014327);
    }
    fn geluTanh(x: f64) f64 {
        return ref.noInf(x, ref.sigmoid(x * (k0 + k1 * x * x)));
    }
    fn geluTanhGrad(x: f64) f64 {
        if (@abs(x) > 100) return if (x > 0) 1 else 0;
        const v = x * (k0 + k1 * x * x);
        return ref.sigmoid(v) + x * ref.sigDeriv(v) * (k0 + 3 * k1 * x * x);
    }
    fn silu(x: f64) f64 {
        return ref.noInf(x, ref.sigmoid(x));
    }
    fn siluGrad(x: f64) f64 {
        return ref.sigmoid(x) + ref.noInf(x, ref.sigDeriv(x));
    }
};

fn ulpOf(r: f64) f64 {
    const a = @abs(r);
    if (a < 0x1p-126) return 0x1p-149;
    return std.math.ldexp(@as(f64, 1.0), std.math.ilogb(a) - 23);
}

/// |y - r| in f32 ulps of r (0 when both are NaN or the same infinity; r beyond the f32 range
/// must give the infinity; an infinite y counts as 2^128).
fn ulpErr(y: f32, r: f64) f64 {
    const inf = std.math.inf(f64);
    if (std.math.isNan(r) or std.math.isNan(y)) return if (std.math.isNan(r) and std.math.isNan(y)) 0 else inf;
    if (@abs(r) >= 0x1p128) return if (y == @as(f32, @floatCast(r))) 0 else inf;
    const yy: f64 = if (std.math.isInf(y)) std.math.copysign(@as(f64, 0x1p128), y) else y;
    return @abs(yy - r) / ulpOf(r);
}

const Spec = struct {
    lo: f32, // dense sweep range
    hi: f32,
    ulp: f64, // bound on the ulp error for x in [ulp_from, ulp_to]
    ulp_from: f32 = -std.math.inf(f32),
    ulp_to: f32 = std.math.inf(f32),
    abs: f64 = 0, // bound on the absolute error elsewhere
};

const specials = [_]f32{ 0, -0.0, 1, -1, 0.5, -0.5, std.math.inf(f32), -std.math.inf(f32), std.math.nan(f32), -std.math.nan(f32), 0x1p-149, -0x1p-149, 0x1.fffffcp-127, -0x1.fffffcp-127, 0x1p-126, -0x1p-126, std.math.floatMax(f32), -std.math.floatMax(f32), 88.72283, 88.72284, -87.33655, -103.97208, -103.97209, 12800, 12800.001, -12800.001, 1e10, 3.4e38, 0.625, 0.921875, -0.921875, 4, -4, 4.5, 5.656854, -5.656854 };

fn makeInputs(lo: f32, hi: f32) ![]f32 {
    const n_dense = 100_000;
    const n_log = 20_000;
    const n_rand = 50_000;
    const xs = try testing.allocator.alloc(f32, n_dense + n_log + n_rand + specials.len);
    for (xs[0..n_dense], 0..) |*x, i| x.* = @floatCast(lo + (@as(f64, hi) - lo) * @as(f64, @floatFromInt(i)) / (n_dense - 1));
    const top = std.math.log2(@as(f64, @max(@abs(lo), @abs(hi))));
    for (xs[n_dense..][0..n_log], 0..) |*x, i| {
        const m: f32 = @floatCast(std.math.exp2(-149 + (top + 149) * @as(f64, @floatFromInt(i)) / (n_log - 1)));
        x.* = if (lo < 0 and i % 2 == 1) -m else m;
    }
    var prng = std.Random.DefaultPrng.init(0x5eed);
    for (xs[n_dense + n_log ..][0..n_rand]) |*x| x.* = @bitCast(prng.random().int(u32));
    @memcpy(xs[n_dense + n_log + n_rand ..], &specials);
    return xs;
}

fn check(comptime name: []const u8, comptime f: anytype, comptime r: fn (f64) f64, s: Spec) !void {
    const gpa = testing.allocator;
    const xs = try makeInputs(s.lo, s.hi);
    defer gpa.free(xs);
    const want = try gpa.alloc(f64, xs.len);
    defer gpa.free(want);
    for (xs, want) |x, *w| w.* = r(x);
    const y1 = try gpa.alloc(u32, xs.len);
    defer gpa.free(y1);
    inline for (.{ 1, 4, 8, 16 }) |n| {
        var worst_ulp: f64 = 0;
        var worst_abs: f64 = 0;
        var worst_ulp_at: f32 = 0;
        var worst_abs_at: f32 = 0;
        var i: usize = 0;
        while (i < xs.len) : (i += n) {
            const m = @min(n, xs.len - i);
            var xa: [n]f32 = @splat(xs[i]);
            @memcpy(xa[0..m], xs[i..][0..m]);
            const ya: [n]f32 = f(n, @as(Vec(n), xa));
            for (0..m) |l| {
                const x = xa[l];
                const y = ya[l];
                const w = want[i + l];
                const e = ulpErr(y, w);
                if (x >= s.ulp_from and x <= s.ulp_to or std.math.isNan(x)) {
                    if (e > worst_ulp) worst_ulp_at = x;
                    worst_ulp = @max(worst_ulp, e);
                } else {
                    const d = if (e == 0) 0 else if (std.math.isFinite(y) and std.math.isFinite(w)) @abs(y - w) else std.math.inf(f64);
                    if (d > worst_abs) worst_abs_at = x;
                    worst_abs = @max(worst_abs, d);
                }
                const bits: u32 = @bitCast(y);
                if (n == 1) y1[i + l] = bits else if (bits != y1[i + l] and !(std.math.isNan(y) and std.math.isNan(@as(f32, @bitCast(y1[i + l]))))) {
                    std.debug.print("{s}: n={d} differs from n=1 at x={e}\n", .{ name, n, x });
                    return error.TestUnexpectedResult;
                }
            }
        }
        if (worst_ulp > s.ulp or worst_abs > s.abs) {
            std.debug.print("{s} n={d}: {d:.3} ulp at x={e}, abs error {e} at x={e}\n", .{ name, n, worst_ulp, worst_ulp_at, worst_abs, worst_abs_at });
            return error.TestUnexpectedResult;
        }
    }
}

test "exp, log: <= 1 ulp" {
    try check("exp", exp, ref.exp, .{ .lo = -110, .hi = 95, .ulp = 1 });
    try check("log", log, ref.log, .{ .lo = 0, .hi = 1000, .ulp = 1 });
}

test "tanh, sigmoid, erf" {
    try check("tanh", tanh, ref.tanh, .{ .lo = -10, .hi = 10, .ulp = 1.5 });
    try check("sigmoid", sigmoid, ref.sigmoid, .{ .lo = -110, .hi = 30, .ulp = 2.5 });
    try check("erf", erf, ref.erf, .{ .lo = -5, .hi = 5, .ulp = 1.5 });
}

test "sin, cos: <= 1.5 ulp, Cody-Waite and Payne-Hanek ranges" {
    try check("sin", sin, ref.sin, .{ .lo = -13000, .hi = 13000, .ulp = 1.5 });
    try check("cos", cos, ref.cos, .{ .lo = -13000, .hi = 13000, .ulp = 1.5 });
    try check("sin", sin, ref.sin, .{ .lo = -10, .hi = 10, .ulp = 1.5 });
    try check("cos", cos, ref.cos, .{ .lo = -1e8, .hi = 1e8, .ulp = 1.5 });
}

test "gelu, silu and gradients" {
    try check("gelu", gelu, ref.gelu, .{ .lo = -20, .hi = 20, .ulp = 8, .ulp_from = -5.65, .abs = 1e-12 });
    try check("geluTanh", geluTanh, ref.geluTanh, .{ .lo = -20, .hi = 20, .ulp = 3.5, .ulp_from = -1, .abs = 6e-8 });
    try check("silu", silu, ref.silu, .{ .lo = -120, .hi = 20, .ulp = 3.5, .ulp_from = -87, .abs = 1e-40 });
    try check("geluGrad", geluGrad, ref.geluGrad, .{ .lo = -20, .hi = 20, .ulp = 2.5, .ulp_from = 0, .abs = 1.5e-7 });
    try check("geluTanhGrad", geluTanhGrad, ref.geluTanhGrad, .{ .lo = -20, .hi = 20, .ulp = 3, .ulp_from = 0, .abs = 1.5e-7 });
    try check("siluGrad", siluGrad, ref.siluGrad, .{ .lo = -120, .hi = 20, .ulp = 3, .ulp_from = 0, .abs = 1e-7 });
    try check("rsqrt", rsqrt, ref.rsqrt, .{ .lo = 0, .hi = 1e6, .ulp = 1.5 });
}

test "special values" {
    const inf = std.math.inf(f32);
    const nan = std.math.nan(f32);
    const V4 = Vec(4);
    const Case = struct { f: *const fn (V4) V4, x: V4, y: V4 };
    const w = struct {
        fn w(comptime f: anytype) *const fn (V4) V4 {
            return &struct {
                fn g(x: V4) V4 {
                    return f(4, x);
                }
            }.g;
        }
    }.w;
    const cases = [_]Case{
        .{ .f = w(exp), .x = .{ -inf, inf, 0, 89 }, .y = .{ 0, inf, 1, inf } },
        .{ .f = w(exp), .x = .{ -104, -0x1.9fe368p6, 88.72283, -0.0 }, .y = .{ 0, 0x1p-149, @bitCast(@as(u32, 0x7f7f_ff84)), 1 } },
        .{ .f = w(log), .x = .{ 0, -0.0, -1, inf }, .y = .{ -inf, -inf, nan, inf } },
        .{ .f = w(log), .x = .{ 1, 0x1p-149, -inf, std.math.floatMax(f32) }, .y = .{ 0, -103.27893, nan, 88.72284 } },
        .{ .f = w(tanh), .x = .{ inf, -inf, -0.0, 9.1 }, .y = .{ 1, -1, -0.0, 1 } },
        .{ .f = w(sigmoid), .x = .{ inf, -inf, 0, -200 }, .y = .{ 1, 0, 0.5, 0 } },
        .{ .f = w(erf), .x = .{ inf, -inf, -0.0, 3.92 }, .y = .{ 1, -1, -0.0, 1 } },
        .{ .f = w(sin), .x = .{ inf, -inf, -0.0, 0x1p-149 }, .y = .{ nan, nan, -0.0, 0x1p-149 } },
        .{ .f = w(cos), .x = .{ inf, -inf, -0.0, 0x1p-149 }, .y = .{ nan, nan, 1, 1 } },
        .{ .f = w(gelu), .x = .{ inf, -inf, -0.0, -30 }, .y = .{ inf, -0.0, -0.0, -0.0 } },
        .{ .f = w(geluTanh), .x = .{ inf, -inf, 0, 1e30 }, .y = .{ inf, -0.0, 0, 1e30 } },
        .{ .f = w(silu), .x = .{ inf, -inf, 0, -200 }, .y = .{ inf, -0.0, 0, -0.0 } },
        .{ .f = w(geluGrad), .x = .{ inf, -inf, 0, 30 }, .y = .{ 1, 0, 0.5, 1 } },
        .{ .f = w(geluTanhGrad), .x = .{ inf, -inf, 0, -30 }, .y = .{ 1, 0, 0.5, 0 } },
        .{ .f = w(siluGrad), .x = .{ inf, -inf, 0, 300 }, .y = .{ 1, 0, 0.5, 1 } },
        .{ .f = w(rsqrt), .x = .{ 0, -0.0, inf, -1 }, .y = .{ inf, -inf, 0, nan } },
        .{ .f = w(roundHalfEven), .x = .{ 0.5, 1.5, 2.5, -0.5 }, .y = .{ 0, 2, 2, -0.0 } },
        .{ .f = w(roundHalfEven), .x = .{ 8388607.5, -3.5, 1e30, -0.2 }, .y = .{ 8388608, -4, 1e30, -0.0 } },
        .{ .f = w(sigmoidGradFromY), .x = .{ 0, 1, 0.5, 0.25 }, .y = .{ 0, 0, 0.25, 0.1875 } },
        .{ .f = w(tanhGradFromY), .x = .{ 0, 1, -1, 0.5 }, .y = .{ 1, 0, 0, 0.75 } },
    };
    for (cases) |c| {
        const got: [4]f32 = c.f(c.x);
        const exp_: [4]f32 = c.y;
        for (got, exp_) |g, e| {
            if (std.math.isNan(e)) try testing.expect(std.math.isNan(g)) else try testing.expectEqual(@as(u32, @bitCast(e)), @as(u32, @bitCast(g)));
        }
    }
    for ([_]f32{ nan, -nan }) |x| inline for (.{ exp, log, tanh, sigmoid, silu, siluGrad, erf, gelu, geluGrad, geluTanh, geluTanhGrad, sin, cos, rsqrt, roundHalfEven }) |f| {
        try testing.expect(std.math.isNan(f(1, @as(Vec(1), @splat(x)))[0]));
    };
    try testing.expectEqual(@as(f32, 1), scalar.exp(0));
}

test "odd and even symmetry is exact" {
    const xs = try makeInputs(-20, 20);
    defer testing.allocator.free(xs);
    var i: usize = 0;
    while (i + 16 <= xs.len) : (i += 16) {
        const x: Vec(16) = xs[i..][0..16].*;
        inline for (.{ tanh, erf, sin, cos, roundHalfEven }, 0..) |f, fi| {
            const a: [16]f32 = f(16, x);
            const b: [16]f32 = f(16, -x);
            for (a, b) |ya, yb| {
                if (std.math.isNan(ya)) continue;
                const flip: u32 = if (fi == 3) 0 else 0x8000_0000; // cos is even
                try testing.expectEqual(@as(u32, @bitCast(ya)) ^ flip, @as(u32, @bitCast(yb)));
            }
        }
    }
}

test "roundHalfEven matches round-half-to-even on random patterns" {
    var prng = std.Random.DefaultPrng.init(7);
    for (0..100_000) |k| {
        const x: f32 = if (k % 2 == 0) @bitCast(prng.random().int(u32)) else (prng.random().float(f32) - 0.5) * 64;
        const xx = if (k % 4 == 1) @round(x * 2) / 2 else x; // many exact halves
        var want = xx;
        if (std.math.isFinite(xx) and @abs(xx) < 0x1p23) {
            const f = @floor(xx);
            const d = xx - f;
            want = if (d > 0.5 or (d == 0.5 and @mod(f, 2) != 0)) f + 1 else f;
            want = std.math.copysign(want, xx);
        }
        const got = scalar.roundHalfEven(xx);
        if (std.math.isNan(xx)) try testing.expect(std.math.isNan(got)) else try testing.expectEqual(@as(u32, @bitCast(want)), @as(u32, @bitCast(got)));
    }
}
