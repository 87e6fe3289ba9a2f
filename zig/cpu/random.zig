//! Seeded random numbers that are identical on every platform and at every SIMD level.
//!
//! Generator: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", 2011),
//! a counter-based generator: the 64-bit seed is the key, and element `i` of a draw (counted from
//! the draw's `offset`) is a pure function of (seed, offset + i). So a tensor can be filled in any
//! order or by any number of threads with the same result.
//!
//! - uniform: block = idx / 4, lane = idx % 4 of philox(seed, [block_lo, block_hi, 0, 0]); the lane's
//!   top `m` bits (m = 24 for f32, 11 for f16, 8 for bf16) give u = bits * 2^-m in [0, 1); the
//!   value is low + (high - low) * u computed in f64, then rounded to the dtype.
//! - normal: pair = idx / 2 of philox(seed, [pair_lo, pair_hi, 1, 0]); x0,x1 -> u1 in (0, 1] and
//!   x2,x3 -> u2 in [0, 1), each with 53 bits; Box-Muller: r = sqrt(-2 ln u1), t = 2 pi u2,
//!   even idx -> r cos t, odd idx -> r sin t; value = mean + std * z in f64, rounded to the dtype.
//! ln, sin and cos are computed here with IEEE +, -, *, / and sqrt only (no libm), so results
//! are bit-identical across operating systems and CPUs.
const std = @import("std");
const dt = @import("dtype.zig");
const DType = dt.DType;

const M0: u32 = 0xD2511F53;
const M1: u32 = 0xCD9E8D57;
const W0: u32 = 0x9E3779B9;
const W1: u32 = 0xBB67AE85;

pub fn philox(key: [2]u32, counter: [4]u32) [4]u32 {
    var c = counter;
    var k = key;
    for (0..10) |_| {
        const p0 = @as(u64, M0) * c[0];
        const p1 = @as(u64, M1) * c[2];
        const hi0: u32 = @truncate(p0 >> 32);
        const lo0: u32 = @truncate(p0);
        const hi1: u32 = @truncate(p1 >> 32);
        const lo1: u32 = @truncate(p1);
        c = .{ hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0 };
        k[0] +%= W0;
        k[1] +%= W1;
    }
    return c;
}

/// Natural log for x > 0 (finite), accurate to a few ulp, deterministic.
pub fn ln(x: f64) f64 {
    const bits: u64 = @bitCast(x);
    var e: i64 = @as(i64, @intCast((bits >> 52) & 0x7FF)) - 1023;
    var m: f64 = @bitCast((bits & 0x000F_FFFF_FFFF_FFFF) | 0x3FF0_0000_0000_0000); // [1, 2)
    if (m > std.math.sqrt2) {
        m *= 0.5;
        e += 1;
    }
    const s = (m - 1.0) / (m + 1.0); // |s| <= 0.1716
    const s2 = s * s;
    var sum: f64 = 1.0 / 23.0;
    var n: f64 = 21.0;
    while (n >= 1.0) : (n -= 2.0) sum = sum * s2 + 1.0 / n;
    const ln2_hi: f64 = 6.93147180369123816490e-01;
    const ln2_lo: f64 = 1.90821492927058770002e-10;
    const ef: f64 = @floatFromInt(e);
    return ef * ln2_hi + (2.0 * s * sum + ef * ln2_lo);
}

/// sin and cos of t in [0, 2 pi], deterministic.
pub fn sincos(t: f64) [2]f64 {
    const pio2_hi: f64 = 1.57079632673412561417e+00;
    const pio2_lo: f64 = 6.07710050650619224932e-11;
    const q = @floor(t / (std.math.pi / 2.0) + 0.5);
    const r = (t - q * pio2_hi) - q * pio2_lo; // |r| <= pi/4 (+ tiny)
    const r2 = r * r;
    // Taylor series to r^17 / r^16: error < 1e-17 on |r| <= pi/4.
    const sin_c = [_]f64{ 1.0, -1.0 / 6.0, 1.0 / 120.0, -1.0 / 5040.0, 1.0 / 362880.0, -1.0 / 39916800.0, 1.0 / 6227020800.0, -1.0 / 1307674368000.0, 1.0 / 355687428096000.0 };
    const cos_c = [_]f64{ 1.0, -1.0 / 2.0, 1.0 / 24.0, -1.0 / 720.0, 1.0 / 40320.0, -1.0 / 3628800.0, 1.0 / 479001600.0, -1.0 / 87178291200.0, 1.0 / 20922789888000.0 };
    var s: f64 = 0;
    var c: f64 = 0;
    var i: usize = sin_c.len;
    while (i > 0) {
        i -= 1;
        s = s * r2 + sin_c[i];
        c = c * r2 + cos_c[i];
    }
    s *= r;
    const quadrant: u2 = @truncate(@as(u64, @intFromFloat(q)));
    return switch (quadrant) {
        0 => .{ s, c },
        1 => .{ c, -s },
        2 => .{ -s, -c },
        3 => .{ -c, s },
    };
}

fn mantissaBits(comptime d: DType) u5 {
    return switch (d) {
        .f16 => 11,
        .bf16 => 8,
        else => 24,
    };
}

pub const Dist = enum(u32) { uniform = 0, normal = 1 };

/// Fill `n` elements of a contiguous float tensor with draws offset..offset+n of (seed, dist).
/// a, b = (low, high) for uniform, (mean, std) for normal.
pub fn fillRandom(comptime d: DType, out: [*]dt.Storage(d), n: usize, dist: Dist, seed: u64, offset: u64, a: f64, b: f64) void {
    const key = [2]u32{ @truncate(seed), @truncate(seed >> 32) };
    switch (dist) {
        .uniform => {
            const m = mantissaBits(d);
            const scale = 1.0 / @as(f64, @floatFromInt(@as(u64, 1) << m));
            var i: usize = 0;
            while (i < n) {
                const idx = offset + i;
                const block = idx >> 2;
                const r = philox(key, .{ @truncate(block), @truncate(block >> 32), 0, 0 });
                var lane: usize = @intCast(idx & 3);
                while (lane < 4 and i < n) : ({
                    lane += 1;
                    i += 1;
                }) {
                    const u = @as(f64, @floatFromInt(r[lane] >> @intCast(32 - @as(u6, m)))) * scale;
                    out[i] = dt.fromFloat(d, a + (b - a) * u);
                }
            }
        },
        .normal => {
            var i: usize = 0;
            while (i < n) {
                const idx = offset + i;
                const pair = idx >> 1;
                const r = philox(key, .{ @truncate(pair), @truncate(pair >> 32), 1, 0 });
                const two53 = 1.0 / 9007199254740992.0;
                const u1_ = (@as(f64, @floatFromInt((@as(u64, r[0] >> 5) << 26) | (r[1] >> 6))) + 1.0) * two53;
                const u2_ = @as(f64, @floatFromInt((@as(u64, r[2] >> 5) << 26) | (r[3] >> 6))) * two53;
                const rad = @sqrt(-2.0 * ln(u1_));
                const sc = sincos(2.0 * std.math.pi * u2_);
                var lane: usize = @intCast(idx & 1);
                while (lane < 2 and i < n) : ({
                    lane += 1;
                    i += 1;
                }) {
                    const z = rad * (if (lane == 0) sc[1] else sc[0]);
                    out[i] = dt.fromFloat(d, a + b * z);
                }
            }
        },
    }
}

test "philox known answer (Random123 kat_vectors, philox4x32_10)" {
    // Key and counter all zeros / all ones, from the Random123 known-answer tests.
    try std.testing.expectEqual([4]u32{ 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8 }, philox(.{ 0, 0 }, .{ 0, 0, 0, 0 }));
    try std.testing.expectEqual([4]u32{ 0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1 }, philox(.{ 0xa4093822, 0x299f31d0 }, .{ 0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344 }));
    try std.testing.expectEqual([4]u32{ 0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd }, philox(.{ 0xffffffff, 0xffffffff }, .{ 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff }));
}

test "ln and sincos match std to ~1e-15" {
    var x: f64 = 1e-300;
    while (x <= 1.0) : (x *= 3.7) try std.testing.expectApproxEqRel(@log(x), ln(x), 1e-14);
    try std.testing.expectEqual(@as(f64, 0), ln(1.0));
    var t: f64 = 0;
    while (t <= 2 * std.math.pi) : (t += 0.01) {
        const sc = sincos(t);
        try std.testing.expectApproxEqAbs(@sin(t), sc[0], 1e-15);
        try std.testing.expectApproxEqAbs(@cos(t), sc[1], 1e-15);
    }
}

test "uniform draws do not depend on how the range is split" {
    var whole: [37]f32 = undefined;
    fillRandom(.f32, &whole, whole.len, .uniform, 42, 5, 0, 1);
    var parts: [37]f32 = undefined;
    fillRandom(.f32, &parts, 10, .uniform, 42, 5, 0, 1);
    fillRandom(.f32, parts[10..].ptr, 27, .uniform, 42, 15, 0, 1);
    try std.testing.expectEqualSlices(f32, &whole, &parts);
    for (whole) |v| try std.testing.expect(v >= 0 and v < 1);
}

test "normal draws: split-invariant, moments plausible" {
    var buf: [4001]f32 = undefined;
    fillRandom(.f32, &buf, buf.len, .normal, 7, 0, 0, 1);
    var part: [3]f32 = undefined;
    fillRandom(.f32, &part, 3, .normal, 7, 1, 0, 1);
    try std.testing.expectEqualSlices(f32, buf[1..4], &part);
    var mean: f64 = 0;
    var sq: f64 = 0;
    for (buf) |v| {
        mean += v;
        sq += @as(f64, v) * v;
    }
    mean /= buf.len;
    sq /= buf.len;
    try std.testing.expect(@abs(mean) < 0.06);
    try std.testing.expect(@abs(sq - 1) < 0.08);
}
