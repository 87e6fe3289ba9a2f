//! Vectorized f32 elementwise math, written once and generic over the lane count: every function
//! takes a comptime `n` (1, 4, 8, 16, ...) and a `Vec(n)` and returns a `Vec(n)`; `scalar.*` are
//! the same functions on one f32. No libm: range reduction + polynomials built from +, -, *, /,
//! @sqrt, comparisons, @select and bit casts only, so the bits do not depend on the OS or libc.
//!
//! Determinism: every polynomial and reduction uses a separate multiply and add (`a * b + c`,
//! two roundings), never @mulAdd. Zig does not contract `a * b + c` into an FMA (strict float
//! mode), so a given input produces the same bits at every lane count and every ISA level
//! (scalar, sse, avx2, avx512, neon). Without hardware FMA (the scalar and sse levels)
//! @mulAdd turns into a call to fmaf for each lane, many times slower, so it is not used anywhere.
//!
//! Accuracy, measured against f64 references over every f32 input (exhaustively, in a separate
//! harness) and in vmath_test.zig: see the bounds in the doc comment of each function.
//! Subnormal inputs and results are computed, never flushed (exp, sigmoid and erf tails
//! underflow gradually).
const std = @import("std");

pub fn Vec(comptime n: usize) type {
    return @Vector(n, f32);
}
fn IVec(comptime n: usize) type {
    return @Vector(n, i32);
}
fn UVec(comptime n: usize) type {
    return @Vector(n, u32);
}

inline fn sp(comptime n: usize, v: f32) Vec(n) {
    return @splat(v);
}

/// Horner's scheme, coefficients in ascending order (c[0] + c[1] x + ...), with a separate
/// multiply and add at each step.
inline fn poly(comptime n: usize, x: Vec(n), comptime c: []const f32) Vec(n) {
    var y: Vec(n) = @splat(c[c.len - 1]);
    inline for (1..c.len) |i| y = y * x + sp(n, c[c.len - 1 - i]);
    return y;
}

inline fn sel(comptime n: usize, m: @Vector(n, bool), a: Vec(n), b: Vec(n)) Vec(n) {
    return @select(f32, m, a, b);
}

inline fn signOf(comptime n: usize, x: Vec(n)) UVec(n) {
    return @as(UVec(n), @bitCast(x)) & @as(UVec(n), @splat(0x8000_0000));
}

/// `mag` (sign bit clear) with the sign bit `sign` ORed in.
inline fn withSign(comptime n: usize, mag: Vec(n), sign: UVec(n)) Vec(n) {
    return @bitCast(@as(UVec(n), @bitCast(mag)) | sign);
}

/// NaN lanes of x pass through unchanged.
inline fn nanPass(comptime n: usize, x: Vec(n), y: Vec(n)) Vec(n) {
    return sel(n, x != x, x, y);
}

// ---------------------------------------------------------------------------------------------
// exp

const log2e: f32 = 1.44269504088896341;
const ln2_hi: f32 = 0.693359375; // 9 significant bits: k * ln2_hi is exact for |k| < 2^15
const ln2_lo: f32 = -2.12194440e-4;
const round_shift: f32 = 0x1.8p23; // (v + shift) - shift rounds v half-to-even, for |v| < 2^22
const round_shift_bits: i32 = 0x4B40_0000;

/// e^x: max error 0.99 ulp (all f32). x > 88.7228 -> +inf; subnormal results are rounded once
/// (gradual underflow); x < -103.98 -> 0. exp(-inf) = 0, exp(+inf) = +inf, NaN -> NaN.
pub fn exp(comptime n: usize, x: Vec(n)) Vec(n) {
    return expSum(n, x, @splat(0), false);
}

/// e^(x + lo) where |lo| is small and x is exact (x + lo need not be representable).
inline fn expSum(comptime n: usize, x: Vec(n), lo: Vec(n), comptime has_lo: bool) Vec(n) {
    const I = IVec(n);
    // Clamp; a NaN lane stays NaN (comparisons are false) and comes out NaN below.
    const xc = sel(n, x > sp(n, 89.0), sp(n, 89.0), sel(n, x < sp(n, -104.0), sp(n, -104.0), x));
    const j = (if (has_lo) xc + lo else xc) * sp(n, log2e) + sp(n, round_shift);
    const k = j - sp(n, round_shift);
    const ki = @as(I, @bitCast(j)) -% @as(I, @splat(round_shift_bits)); // k as an integer, |k| <= 150
    const r0 = xc - k * sp(n, ln2_hi); // exact
    const r = (if (has_lo) r0 + lo else r0) - k * sp(n, ln2_lo); // |r| <= ~0.347
    const p = poly(n, r, &.{ 5.0000001201e-1, 1.6666665459e-1, 4.1665795894e-2, 8.3334519073e-3, 1.3981999507e-3, 1.9875691500e-4 }) * (r * r) + r + sp(n, 1.0);
    // p * 2^k in two exact power-of-two steps, so that 2^128 and subnormal results work: the
    // first product is exact, the second rounds once.
    const k1 = ki >> @splat(1);
    const k2 = ki -% k1;
    const bias: I = @splat(127);
    const s1: Vec(n) = @bitCast(@as(UVec(n), @bitCast(k1 +% bias)) << @splat(23));
    const s2: Vec(n) = @bitCast(@as(UVec(n), @bitCast(k2 +% bias)) << @splat(23));
    return p * s1 * s2;
}

// ---------------------------------------------------------------------------------------------
// log

const sqrt_half_bits: i32 = 0x3f35_04f3;

/// Natural log: max error 0.84 ulp for every positive f32 (normal and subnormal).
/// log(±0) = -inf, log(x < 0) = NaN, log(+inf) = +inf, NaN -> NaN.
pub fn log(comptime n: usize, x: Vec(n)) Vec(n) {
    const I = IVec(n);
    const sub = x < sp(n, 0x1p-126);
    const xs = sel(n, sub, x * sp(n, 0x1p23), x);
    const ix = @as(I, @bitCast(xs)) -% @as(I, @splat(sqrt_half_bits));
    const e = (ix >> @splat(23)) +% @select(i32, sub, @as(I, @splat(-23)), @as(I, @splat(0)));
    // m in [sqrt(1/2), sqrt(2)), x = m * 2^e
    const m: Vec(n) = @bitCast((ix & @as(I, @splat(0x007f_ffff))) +% @as(I, @splat(sqrt_half_bits)));
    const f = m - sp(n, 1.0); // exact
    const ef: Vec(n) = @floatFromInt(e);
    const z = f * f;
    var y = f * z * poly(n, f, &.{ 3.3333331174e-1, -2.4999993993e-1, 2.0000714765e-1, -1.6668057665e-1, 1.4249322787e-1, -1.2420140846e-1, 1.1676998740e-1, -1.1514610310e-1, 7.0376836292e-2 });
    y = y + ef * sp(n, ln2_lo);
    y = y - sp(n, 0.5) * z;
    var r = (f + y) + ef * sp(n, ln2_hi);
    const inf = sp(n, std.math.inf(f32));
    r = sel(n, x == inf, inf, r);
    r = sel(n, x == sp(n, 0), -inf, r);
    r = sel(n, x < sp(n, 0), sp(n, std.math.nan(f32)), r);
    return nanPass(n, x, r);
}

// ---------------------------------------------------------------------------------------------
// tanh, sigmoid, silu

/// tanh: max error 1.33 ulp (all f32); exactly odd; ±1 for |x| >= 9.01; NaN -> NaN.
pub fn tanh(comptime n: usize, x: Vec(n)) Vec(n) {
    const a = @abs(x);
    const z = a * a;
    const small = a + a * z * poly(n, z, &.{ -3.33332819422e-1, 1.33314422036e-1, -5.37397155531e-2, 2.06390887954e-2, -5.70498872745e-3 });
    const a2 = a + a;
    const e = exp(n, sel(n, a2 < sp(n, 20.0), a2, sp(n, 20.0)));
    const large = sp(n, 1.0) - sp(n, 2.0) / (e + sp(n, 1.0));
    const r = sel(n, a < sp(n, 0.625), small, large);
    return nanPass(n, x, withSign(n, r, signOf(n, x)));
}

fn SigParts(comptime n: usize) type {
    return struct { s: Vec(n), e: Vec(n), d: Vec(n) };
}

/// sigmoid(x) = s; e = exp(-|x|), d = 1 + e, and s * (1 - s) = e / d^2 without cancellation.
inline fn sigParts(comptime n: usize, x: Vec(n)) SigParts(n) {
    const e = exp(n, -@abs(x));
    const d = sp(n, 1.0) + e;
    return .{ .s = sel(n, x >= sp(n, 0), sp(n, 1.0), e) / d, .e = e, .d = d };
}

/// 1 / (1 + e^-x), computed as e^x / (1 + e^x) for x < 0: max error 1.5 ulp for x >= 0 and 2.4
/// ulp for x < 0 (all f32), gradual underflow for x < -87.3 (0 below -103.97);
/// sigmoid(-inf) = 0, sigmoid(+inf) = 1, NaN -> NaN.
pub fn sigmoid(comptime n: usize, x: Vec(n)) Vec(n) {
    return sigParts(n, x).s;
}

/// x * sigmoid(x): max error 3.2 ulp for x >= -87.3 (below, sigmoid is subnormal and the result
/// keeps only its absolute accuracy, 1.4e-43); silu(-inf) = -0 (the limit), silu(+inf) = +inf.
pub fn silu(comptime n: usize, x: Vec(n)) Vec(n) {
    const y = x * sigmoid(n, x);
    return sel(n, x == sp(n, -std.math.inf(f32)), sp(n, -0.0), y);
}

/// d silu / dx = s + x s (1 - s), s = sigmoid(x): max error 2.3 ulp for x >= 0, absolute error
/// <= 5.4e-8 for x < 0 (it crosses zero at -1.28).
pub fn siluGrad(comptime n: usize, x: Vec(n)) Vec(n) {
    const p = sigParts(n, x);
    const xc = sel(n, @abs(x) < sp(n, 200.0), x, sp(n, 0)); // e = 0 there; avoids inf * 0
    return nanPass(n, x, p.s + xc * (p.e / (p.d * p.d)));
}

/// d sigmoid / dx from the output y = sigmoid(x).
pub fn sigmoidGradFromY(comptime n: usize, y: Vec(n)) Vec(n) {
    return y * (sp(n, 1.0) - y);
}

/// d tanh / dx from the output y = tanh(x).
pub fn tanhGradFromY(comptime n: usize, y: Vec(n)) Vec(n) {
    return sp(n, 1.0) - y * y;
}

// ---------------------------------------------------------------------------------------------
// erf and GELU

const erf_split: f32 = 0.921875;

/// R with erf(x) = x + x R(x^2) for |x| < erf_split (minimax, relative error 1.6e-8).
inline fn erfR(comptime n: usize, t: Vec(n)) Vec(n) {
    return poly(n, t, &.{ 1.2837915122e-1, -3.7612494826e-1, 1.1281815916e-1, -2.6766616851e-2, 4.9931812100e-3, -5.9908593539e-4 });
}

/// h(z) = log(erfc(z)) + z^2 for z >= erf_split: minimax in z - 2.5 on [erf_split, 4] (error
/// 1.2e-8, about 1e-7 after evaluation in f32). With `tail`, continued beyond 4 by
/// h(4) + w T(w), w = min(z - 4, 6) (T fitted on [0, 5.5], error 2.2e-5: erfc(9.5) < 2^-149).
inline fn erfcLogPlusSq(comptime n: usize, z: Vec(n), comptime tail: bool) Vec(n) {
    const zc = sel(n, z < sp(n, 4.0), z, sp(n, 4.0));
    const h = poly(n, zc - sp(n, 2.5), &.{ -1.556815266609192, -3.5268068313598633e-1, 5.6106388568878174e-2, -1.0858495719730854e-2, 2.165090525522828e-3, -4.2016353108920157e-4, 7.74458167143166e-5, -1.3304776075528935e-5, 1.6024872593334294e-6 });
    if (!tail) return h;
    const w = sel(n, z > sp(n, 4.0), sel(n, z < sp(n, 10.0), z - sp(n, 4.0), sp(n, 6.0)), sp(n, 0));
    return h + w * poly(n, w, &.{ -2.3617029190e-1, 2.5949833914e-2, -3.1919570174e-3, 2.9530894244e-4, -1.3228342140e-5 });
}

/// erf: max error 1.44 ulp (all f32); exactly odd; ±1 for |x| >= 3.92; NaN -> NaN.
pub fn erf(comptime n: usize, x: Vec(n)) Vec(n) {
    const a = @abs(x);
    // erfc(4.5) < 2^-25 already rounds 1 - erfc to 1; the clamp keeps exp away from subnormals.
    const ac = sel(n, a < sp(n, 4.5), a, sp(n, 4.5));
    const big = sp(n, 1.0) - exp(n, erfcLogPlusSq(n, ac, false) - ac * ac);
    const r = sel(n, a < sp(n, erf_split), a + a * erfR(n, a * a), big);
    return nanPass(n, x, withSign(n, r, signOf(n, x)));
}

const inv_sqrt2: f32 = 0.70710678118654752;

/// Phi(x), the standard normal CDF: 0.5 ((1 + z) + z R(z^2)) for |z| < erf_split, z = x / sqrt2,
/// else from erfc(|z|) = exp(-x^2 / 2 + h(|z|)) with x^2 split exactly, so no cancellation for
/// x < 0 and no loss from rounding x^2.
inline fn normCdf(comptime n: usize, x: Vec(n)) Vec(n) {
    const z = x * sp(n, inv_sqrt2);
    const small = sp(n, 0.5) * ((sp(n, 1.0) + z) + z * erfR(n, z * z));
    const a = @abs(x);
    const ac = sel(n, a < sp(n, 20.0), a, sp(n, 20.0)); // Phi(-20) < 2^-149
    const xh: Vec(n) = @bitCast(@as(UVec(n), @bitCast(ac)) & @as(UVec(n), @splat(0xffff_f000)));
    const xl = ac - xh; // ac^2 = xh^2 (exact) + xl (2 xh + xl)
    const lo = erfcLogPlusSq(n, ac * sp(n, inv_sqrt2), true) - (xh * xl + sp(n, 0.5) * (xl * xl));
    const big = sp(n, 0.5) * expSum(n, sp(n, -0.5) * (xh * xh), lo, true);
    return sel(n, @abs(z) < sp(n, erf_split), small, sel(n, x > sp(n, 0), sp(n, 1.0) - big, big));
}

/// Exact GELU, x * Phi(x) = 0.5 x (1 + erf(x / sqrt2)), with Phi from erfc for x < -1.3 so the
/// negative tail keeps its relative accuracy: max error 2.5 ulp for x >= 0, 4.7 ulp (absolute
/// 6e-8) on [-5.65, 0], relative 4.5e-5 (absolute 3e-13) below; gelu(-inf) = -0.
pub fn gelu(comptime n: usize, x: Vec(n)) Vec(n) {
    const y = x * normCdf(n, x);
    return nanPass(n, x, sel(n, x == sp(n, -std.math.inf(f32)), sp(n, -0.0), y));
}

/// d gelu / dx = Phi(x) + x phi(x), phi the standard normal density: max error 2.05 ulp for
/// x >= 0, absolute error <= 6.4e-8 for x < 0 (it crosses zero at -0.75).
pub fn geluGrad(comptime n: usize, x: Vec(n)) Vec(n) {
    const xc = sel(n, @abs(x) < sp(n, 20.0), x, sp(n, 0)); // x phi(x) = 0 beyond; avoids inf * 0
    const dens = exp(n, sp(n, -0.5) * (xc * xc)) * sp(n, 0.39894228040143268);
    return nanPass(n, x, normCdf(n, x) + xc * dens);
}

const gt_k0: f32 = 1.5957691216057308; // 2 sqrt(2/pi)
const gt_k1: f32 = 0.071354816272443; // 2 sqrt(2/pi) 0.044715

/// Tanh-approximated GELU, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), computed as
/// x sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3)) (the same function, no cancellation for x < 0):
/// max error 2.5 ulp for x >= 0, 3.1 ulp on [-1, 0]; below, the f32 rounding of the cubic grows
/// the relative error like |v| ulp (38 ulp at -5.3, absolute <= 5e-8); geluTanh(-inf) = -0.
pub fn geluTanh(comptime n: usize, x: Vec(n)) Vec(n) {
    const v = x * (sp(n, gt_k0) + sp(n, gt_k1) * (x * x));
    const y = x * sigmoid(n, v);
    return sel(n, x == sp(n, -std.math.inf(f32)), sp(n, -0.0), y);
}

/// d geluTanh / dx = s + x s (1 - s) v', s = sigmoid(v), v = k0 x + k1 x^3, v' = k0 + 3 k1 x^2:
/// max error 2.7 ulp for x >= 0, absolute error <= 8.7e-8 for x < 0.
pub fn geluTanhGrad(comptime n: usize, x: Vec(n)) Vec(n) {
    const v = x * (sp(n, gt_k0) + sp(n, gt_k1) * (x * x));
    const p = sigParts(n, v);
    const xc = sel(n, @abs(x) < sp(n, 20.0), x, sp(n, 0)); // e = 0 there; avoids inf * 0
    const dv = sp(n, gt_k0) + sp(n, 3.0 * gt_k1) * (xc * xc);
    return nanPass(n, x, p.s + xc * (p.e / (p.d * p.d)) * dv);
}

// ---------------------------------------------------------------------------------------------
// sin, cos

const inv_pio2: f32 = 0.636619772367581343;
// pi/2 = pio2_1 + pio2_2 + pio2_3 + pio2_4 (+ 8e-20); the first three have 11 significant bits,
// so q * pio2_i is exact for |q| < 2^13.
const pio2_1: f32 = 0x1.92p+0;
const pio2_2: f32 = 0x1.fb4p-12;
const pio2_3: f32 = 0x1.444p-24;
const pio2_4: f32 = 0x1.68c234p-39;
/// Above this |x| the Cody-Waite reduction (|q| < 2^13) is not exact; those lanes use `sinCosLarge`.
const cw_limit: f32 = 12800.0;

/// sin or cos of |x| (then sin takes the sign of x: exactly odd, cos exactly even).
inline fn sinCos(comptime n: usize, xs: Vec(n), comptime is_cos: bool) Vec(n) {
    const I = IVec(n);
    const x = @abs(xs);
    const j = x * sp(n, inv_pio2) + sp(n, round_shift);
    const q = j - sp(n, round_shift);
    var qi = @as(I, @bitCast(j)) -% @as(I, @splat(round_shift_bits));
    if (is_cos) qi +%= @splat(1);
    // x - q pi/2 as r + rlo: the first two steps are exact (Sterbenz, and a result on the grid
    // of q * pio2_2 that fits 24 bits), the last two keep their rounding errors in rlo.
    const a = (x - q * sp(n, pio2_1)) - q * sp(n, pio2_2);
    const t3 = q * sp(n, pio2_3);
    const r3 = a - t3;
    const t4 = q * sp(n, pio2_4);
    const r = r3 - t4;
    const rlo = ((r3 - r) - t4) + ((a - r3) - t3);
    const z = r * r;
    const s = r + (r * z * poly(n, z, &.{ -1.6666654611e-1, 8.3321608736e-3, -1.9515295891e-4 }) + rlo);
    const c = (sp(n, 1.0) - sp(n, 0.5) * z) + (z * z * poly(n, z, &.{ 4.166664568298827e-2, -1.388731625493765e-3, 2.443315711809948e-5 }) - r * rlo);
    const v = sel(n, (qi & @as(I, @splat(1))) != @as(I, @splat(0)), c, s);
    const neg: UVec(n) = @as(UVec(n), @bitCast(qi & @as(I, @splat(2)))) << @splat(30);
    var y: Vec(n) = @bitCast(@as(UVec(n), @bitCast(v)) ^ neg);
    if (@reduce(.Or, x > sp(n, cw_limit))) {
        const xa: [n]f32 = x;
        var ya: [n]f32 = y;
        for (0..n) |i| {
            if (xa[i] > cw_limit) ya[i] = sinCosLarge(xa[i], is_cos);
        }
        y = ya;
    }
    return if (is_cos) y else @bitCast(@as(UVec(n), @bitCast(y)) ^ signOf(n, xs));
}

/// floor(2/pi * 2^256)
const two_over_pi: u256 = 0xa2f9836e4e441529fc2757d1f534ddc0db6295993c439041fe5163abdebbc561;

/// sin or cos of one f32 x > cw_limit: Payne-Hanek reduction in integers (x * 2/pi mod 4
/// with 96 fraction bits), then f64 Taylor polynomials, rounded once to f32. inf -> NaN.
fn sinCosLarge(x: f32, comptime is_cos: bool) f32 {
    if (!std.math.isFinite(x)) return x - x;
    const b: u32 = @bitCast(x);
    const m: u128 = (b & 0x7f_ffff) | 0x80_0000;
    const e: i32 = @as(i32, @intCast(b >> 23)) - 150; // x = m * 2^e, e in [-10, 104]
    const mask98: u128 = (1 << 98) - 1;
    // Bits e-1 .. e+96 of 2/pi: those above weigh multiples of 4 (whole turns), those below < 2^-72.
    const window: u128 = @as(u128, @truncate(two_over_pi >> @intCast(160 - e))) & mask98;
    const prod = (m * window) & mask98; // (|x| * 2/pi mod 4) * 2^96
    var q: u32 = @truncate(prod >> 96);
    var frac: i128 = @intCast(prod & ((1 << 96) - 1));
    if (frac >= (1 << 95)) {
        frac -= 1 << 96;
        q +%= 1;
    }
    const r = @as(f64, @floatFromInt(frac >> 32)) * 0x1p-64 * (std.math.pi / 2.0); // |r| <= pi/4
    const z = r * r;
    var s: f64 = 1.0 / 6227020800.0; // Taylor series to r^13 and r^14: error < 3e-14 relative
    var c: f64 = -1.0 / 87178291200.0;
    inline for (.{ 39916800.0, 362880.0, 5040.0, 120.0, 6.0, 1.0 }, .{ 479001600.0, 3628800.0, 40320.0, 720.0, 24.0, 2.0 }, 0..) |sd, cd, i| {
        const sign: f64 = if (i % 2 == 0) -1.0 else 1.0;
        s = s * z + sign / sd;
        c = c * z - sign / cd;
    }
    s *= r;
    c = c * z + 1.0;
    if (is_cos) q +%= 1;
    var v = if (q & 1 != 0) c else s;
    if (q & 2 != 0) v = -v;
    return @floatCast(v);
}

/// sin: max error 1.3 ulp for |x| <= 12800 (Cody-Waite), 0.5 ulp beyond (exact Payne-Hanek
/// reduction, per lane, slower); exactly odd; sin(±inf) = NaN, NaN -> NaN.
pub fn sin(comptime n: usize, x: Vec(n)) Vec(n) {
    return sinCos(n, x, false);
}

/// cos: max error 1.28 ulp for |x| <= 12800, 0.5 ulp beyond; exactly even; cos(±inf) = NaN.
pub fn cos(comptime n: usize, x: Vec(n)) Vec(n) {
    return sinCos(n, x, true);
}

// ---------------------------------------------------------------------------------------------
// rsqrt, rounding

/// 1 / sqrt(x), a correctly rounded sqrt then a divide: max error 1.49 ulp. rsqrt(±0) = ±inf,
/// x < 0 -> NaN.
pub fn rsqrt(comptime n: usize, x: Vec(n)) Vec(n) {
    return sp(n, 1.0) / @sqrt(x);
}

/// Round half to even (NumPy's round / rint), keeping the sign of zero: -0.5 -> -0.
pub fn roundHalfEven(comptime n: usize, x: Vec(n)) Vec(n) {
    const a = @abs(x);
    const r = (a + sp(n, 0x1p23)) - sp(n, 0x1p23);
    return withSign(n, sel(n, a < sp(n, 0x1p23), r, a), signOf(n, x));
}

// ---------------------------------------------------------------------------------------------
// One f32 at a time.

fn one(comptime f: anytype) fn (f32) f32 {
    return struct {
        fn g(x: f32) f32 {
            return f(1, @as(Vec(1), @splat(x)))[0];
        }
    }.g;
}

const M = @This();
pub const scalar = struct {
    pub const exp = one(M.exp);
    pub const log = one(M.log);
    pub const tanh = one(M.tanh);
    pub const sigmoid = one(M.sigmoid);
    pub const silu = one(M.silu);
    pub const siluGrad = one(M.siluGrad);
    pub const sigmoidGradFromY = one(M.sigmoidGradFromY);
    pub const tanhGradFromY = one(M.tanhGradFromY);
    pub const erf = one(M.erf);
    pub const gelu = one(M.gelu);
    pub const geluGrad = one(M.geluGrad);
    pub const geluTanh = one(M.geluTanh);
    pub const geluTanhGrad = one(M.geluTanhGrad);
    pub const sin = one(M.sin);
    pub const cos = one(M.cos);
    pub const rsqrt = one(M.rsqrt);
    pub const roundHalfEven = one(M.roundHalfEven);
};

test {
    _ = @import("vmath_test.zig");
}
