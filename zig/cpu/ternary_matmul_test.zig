//! Tests of zig/cpu/ternary_matmul.zig against a scalar reference written from the definition
//! (element by element, natural weight order, no vectors, no permutation): every format, scale
//! mode, input dtype, partial tile and both multiply-add paths give bit-identical results.
const std = @import("std");
const builtin = @import("builtin");
const build_options = @import("build_options");
const dt = @import("dtype.zig");
const args = @import("args.zig");
const Parallel = @import("parallel.zig").Parallel;
const tp = @import("ternary_pack.zig");
const tm = @import("ternary_matmul.zig");
const features = @import("features.zig");

const testing = std.testing;
const vbits = build_options.vector_bits;

/// Whether this CPU has the fused dot product of this level (tests then run both paths).
fn hasDotExt() bool {
    const f = features.detect().features;
    return switch (builtin.cpu.arch) {
        .x86_64 => switch (vbits) {
            512 => f.avx512_vnni,
            256 => f.avx_vnni,
            else => false,
        },
        .aarch64 => vbits != 0 and builtin.os.tag == .linux and (std.c.getauxval(16) & (1 << 20)) != 0,
        else => false,
    };
}

fn rint(v: f32) f32 {
    const r = @round(v);
    if (@abs(v - @trunc(v)) == 0.5 and @mod(r, 2) != 0) return r - std.math.sign(v);
    return r;
}

/// The definition: per-token absmax int8, exact integer dots per scale segment, one rescale.
fn reference(comptime d: dt.DType, f: args.TernaryFormat, x: []const dt.Storage(d), t: []const i8, scales: []const f32, mode: u32, group: usize, m: usize, n: usize, k: usize, kp: usize, out: []f32) void {
    const q = testing.allocator.alloc(i32, k) catch unreachable;
    defer testing.allocator.free(q);
    for (0..m) |ti| {
        var mx: f32 = 0;
        var nan = false;
        for (0..k) |i| {
            const v = dt.convert(.f32, d, x[ti * k + i]);
            if (v != v) nan = true else mx = @max(mx, @abs(v));
        }
        const s: f32 = if (nan) std.math.nan(f32) else 127.0 / mx;
        for (0..k) |i| {
            const v = dt.convert(.f32, d, x[ti * k + i]) * s;
            q[i] = if (nan or mx == 0 or v != v) 0 else @intFromFloat(rint(std.math.clamp(v, -127, 127)));
        }
        const seg: usize = if (f != .i2) 256 else if (mode == 2) group else kp;
        for (0..n) |r| {
            var acc: f32 = 0;
            var s0: usize = 0;
            var si: usize = 0;
            while (s0 < kp) : ({
                s0 += seg;
                si += 1;
            }) {
                var isum: i64 = 0;
                for (s0..@min(s0 + seg, k)) |i| isum += @as(i64, q[i]) * t[r * kp + i];
                const sc = switch (f) {
                    .i2 => switch (mode) {
                        0 => scales[0],
                        1 => scales[r],
                        else => scales[r * (kp / group) + si],
                    },
                    else => scales[r * (kp / 256) + si],
                };
                acc += @as(f32, @floatFromInt(isum)) * sc;
            }
            out[ti * n + r] = acc / s;
        }
    }
}

const Case = struct { m: usize, n: usize, k: usize, f: args.TernaryFormat, mode: u32 = 1, group: usize = 0 };

fn runCase(comptime d: dt.DType, c: Case, rng: std.Random, special: enum { none, nan_token, zero_token, inf_value }) !void {
    const a = testing.allocator;
    const nb = (c.k + 255) / 256;
    const kp = nb * 256;
    const X = dt.Storage(d);
    const x = try a.alloc(X, c.m * c.k);
    defer a.free(x);
    for (x) |*v| v.* = dt.fromFloat(d, (rng.float(f32) - 0.5) * 8);
    switch (special) {
        .none => {},
        .nan_token => x[c.k / 2] = dt.fromFloat(d, std.math.nan(f32)),
        .zero_token => @memset(x[0..c.k], dt.fromFloat(d, 0)),
        .inf_value => x[c.k - 1] = dt.fromFloat(d, std.math.inf(f32)),
    }
    const t = try a.alloc(i8, c.n * kp);
    defer a.free(t);
    for (t, 0..) |*v, i| v.* = if (i % kp < c.k) rng.intRangeAtMost(i8, -1, 1) else 0;
    const nseg: usize = switch (c.f) {
        .i2 => switch (c.mode) {
            0 => 1,
            1 => c.n,
            else => c.n * (kp / c.group),
        },
        else => c.n * nb,
    };
    const scales = try a.alloc(f32, nseg);
    defer a.free(scales);
    for (scales) |*s| s.* = @as(f16, @floatCast(0.01 + rng.float(f32))); // f16-exact: tq stores f16
    const blocks = try a.alloc(u8, c.n * tm.rowBytes(c.f, nb));
    defer a.free(blocks);
    // Pack row by row (tq: one scale a block).
    var par = Parallel.testing();
    var pa: args.TernaryPackArgs = .{ .op = .pack, .format = c.f, .dtype = .i8, .nblocks = c.n * nb, .values = @ptrCast(t.ptr), .scales = null, .blocks = blocks.ptr, .out = null, .fail_at = 0 };
    if (c.f != .i2) pa.scales = @ptrCast(scales.ptr);
    try testing.expectEqual(@as(u32, 0), tp.ternaryPack(vbits, &par, &pa));
    const want = try a.alloc(f32, c.m * c.n);
    defer a.free(want);
    reference(d, c.f, x, t, scales, c.mode, c.group, c.m, c.n, c.k, kp, want);
    const got = try a.alloc(f32, c.m * c.n);
    defer a.free(got);
    const exts: []const u32 = if (hasDotExt()) &.{ 0, 1 } else &.{0};
    for (exts) |ext| {
        @memset(got, -12345);
        const ma: args.TernaryMatmulArgs = .{ .format = c.f, .x_dtype = d, .scale_mode = c.mode, .dot_ext = ext, .m = c.m, .n = c.n, .k = c.k, .x_stride = c.k, .group_blocks = c.group / 256, .x = @ptrCast(x.ptr), .w = blocks.ptr, .scales = scales.ptr, .out = got.ptr };
        try testing.expectEqual(@as(u32, 0), tm.ternaryMatmul(vbits, &par, &ma));
        for (got, want, 0..) |g, w, i| {
            const same = (g == w) or (g != g and w != w);
            if (!same) {
                std.debug.print("vbits {d} ext {d} {t} {t} m{d} n{d} k{d} mode {d} at {d}: got {d} want {d}\n", .{ vbits, ext, d, c.f, c.m, c.n, c.k, c.mode, i, g, w });
                return error.TestExpectedEqual;
            }
        }
    }
}

test "ternary matmul matches the definition bit for bit" {
    var prng = std.Random.DefaultPrng.init(0x7e57);
    const rng = prng.random();
    const cases = [_]Case{
        .{ .m = 1, .n = 1, .k = 256, .f = .i2, .mode = 0 },
        .{ .m = 1, .n = 13, .k = 300, .f = .i2, .mode = 1 },
        .{ .m = 1, .n = 9, .k = 1024, .f = .i2, .mode = 2, .group = 256 },
        .{ .m = 3, .n = 7, .k = 100, .f = .i2, .mode = 0 },
        .{ .m = 5, .n = 6, .k = 513, .f = .i2, .mode = 1 },
        .{ .m = 9, .n = 11, .k = 1024, .f = .i2, .mode = 2, .group = 512 },
        .{ .m = 1, .n = 5, .k = 512, .f = .tq2_0 },
        .{ .m = 6, .n = 10, .k = 768, .f = .tq2_0 },
        .{ .m = 1, .n = 5, .k = 512, .f = .tq1_0 },
        .{ .m = 7, .n = 9, .k = 256, .f = .tq1_0 },
        .{ .m = 33, .n = 70, .k = 256, .f = .i2, .mode = 1 },
    };
    for (cases) |c| {
        try runCase(.f32, c, rng, .none);
        try runCase(.f16, c, rng, .none);
        try runCase(.bf16, c, rng, .none);
    }
    try runCase(.f32, .{ .m = 3, .n = 5, .k = 256, .f = .i2 }, rng, .nan_token);
    try runCase(.f32, .{ .m = 3, .n = 5, .k = 256, .f = .tq2_0 }, rng, .zero_token);
    try runCase(.f32, .{ .m = 2, .n = 5, .k = 300, .f = .i2 }, rng, .inf_value);
}

test "tq2_0 code 3 reads as +2, as ggml decodes it" {
    // Arbitrary bytes (every code value) against the reference fed with the decoded weights.
    var prng = std.Random.DefaultPrng.init(3);
    const rng = prng.random();
    const k = 512;
    var blocks: [2 * 66]u8 = undefined;
    rng.bytes(&blocks);
    blocks[64] = 0x00;
    blocks[65] = 0x3c; // d = 1.0
    blocks[66 + 64] = 0x00;
    blocks[66 + 65] = 0x38; // d = 0.5
    var t: [k]i8 = undefined;
    for (0..2) |b| tp.decodeBlock(0, .tq2_0, blocks[b * 66 ..].ptr, t[b * 256 ..].ptr);
    try testing.expect(std.mem.indexOfScalar(i8, &t, 2) != null);
    var x: [k]f32 = undefined;
    for (&x) |*v| v.* = rng.float(f32) - 0.5;
    var want: [1]f32 = undefined;
    reference(.f32, .tq2_0, &x, &t, &.{ 1.0, 0.5 }, 0, 0, 1, 1, k, k, &want);
    var got: [1]f32 = undefined;
    var par = Parallel.testing();
    const ma: args.TernaryMatmulArgs = .{ .format = .tq2_0, .x_dtype = .f32, .scale_mode = 0, .dot_ext = @intFromBool(hasDotExt()), .m = 1, .n = 1, .k = k, .x_stride = k, .group_blocks = 0, .x = @ptrCast(&x), .w = &blocks, .scales = null, .out = &got };
    try testing.expectEqual(@as(u32, 0), tm.ternaryMatmul(vbits, &par, &ma));
    try testing.expectEqual(want[0], got[0]);
}

test "scratch refusal is reported, not a crash" {
    var par = Parallel.serial; // no allocator
    var x: [256]f32 = @splat(1);
    var w: [64]u8 = @splat(0x55);
    var s = [_]f32{1};
    var out: [1]f32 = undefined;
    const ma: args.TernaryMatmulArgs = .{ .format = .i2, .x_dtype = .f32, .scale_mode = 0, .dot_ext = 0, .m = 1, .n = 1, .k = 256, .x_stride = 256, .group_blocks = 0, .x = @ptrCast(&x), .w = &w, .scales = &s, .out = &out };
    try testing.expectEqual(@as(u32, 1), tm.ternaryMatmul(vbits, &par, &ma));
}

test "hsum4 sums each of four vectors, at every width" {
    var prng = std.Random.DefaultPrng.init(44);
    const rng = prng.random();
    inline for (.{ 4, 8, 16 }) |L| {
        for (0..50) |_| {
            var v: [4]@Vector(L, i32) = undefined;
            for (&v) |*x| {
                var a: [L]i32 = undefined;
                for (&a) |*e| e.* = rng.intRangeAtMost(i32, -1 << 24, 1 << 24);
                x.* = a;
            }
            const got = tm.hsum4(L, v);
            const ga: [4]i32 = got;
            for (0..4) |i| try testing.expectEqual(@reduce(.Add, v[i]), ga[i]);
        }
    }
}
