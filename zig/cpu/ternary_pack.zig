//! ggml's ternary block formats TQ2_0 and TQ1_0: pack i8 values in {-1, 0, 1} into blocks,
//! unpack blocks to i8 values, dequantize blocks to f32 / f16 / bf16. Byte-identical to ggml
//! (ggml-common.h `block_tq2_0` / `block_tq1_0`, ggml-quants.c `quantize_row_tq*_ref` and
//! `dequantize_row_tq*`), so packed weights move to and from GGUF files unchanged.
//!
//! A block holds 256 weights and an f16 scale `d` (little-endian, after the packed bytes):
//!
//! - TQ2_0 (66 bytes, 2.0625 bits a weight): `qs[64]`, then `d`. Weight t ∈ {-1, 0, 1} is stored
//!   as the 2-bit code t + 1. The block is two halves of 128 weights; byte m (0..32) of half h
//!   holds weights h·128 + n·32 + m in bits 2n..2n+1 (n = 0..3).
//! - TQ1_0 (54 bytes, 1.6875 bits a weight): `qs[48]`, `qh[4]`, then `d`. Codes t + 1 ∈ {0, 1, 2}
//!   are base-3 digits; a byte holding the digits c0..c4 (most significant first, value
//!   q = Σ c_n·3^(4-n) < 243) stores ceil(q·256 / 243), so that digit n reads back as
//!   ((byte·3^n mod 256)·3) >> 8. qs[m] (m < 32) holds weights n·32 + m (n = 0..4); qs[32 + m]
//!   (m < 16) weights 160 + n·16 + m; qh[j] (j < 4) weights 240 + n·4 + j in digits n = 0..3 (digit
//!   4 is 0).
//!
//! Decoding follows ggml exactly: a TQ2_0 code 3 (never written by a packer) reads as +2, and any
//! TQ1_0 byte decodes to some digits. Dequantization is (t as f32) · (d as f32), rounded to the
//! output dtype, as ggml's f32 result (so 0 · a negative scale is -0).
//!
//! Written once: the inner loops run on @Vector(W, u8) with W = the level's vector bytes (at most
//! 32, the width of a TQ2_0 column); the scalar level uses W = 1. Blocks are split across threads.
const std = @import("std");
const dt = @import("dtype.zig");
const args = @import("args.zig");
const Parallel = @import("parallel.zig").Parallel;
const DType = dt.DType;

pub const block_weights = 256;

/// ggml's block layouts (ggml-common.h). The scale is kept as raw little-endian bytes so a block
/// has no alignment requirement (they are packed back to back in files).
pub const BlockTQ2_0 = extern struct {
    qs: [block_weights / 4]u8,
    d: [2]u8,
};

pub const BlockTQ1_0 = extern struct {
    qs: [(block_weights - 4 * block_weights / 64) / 5]u8,
    qh: [block_weights / 64]u8,
    d: [2]u8,
};

comptime {
    std.debug.assert(@sizeOf(BlockTQ2_0) == 66);
    std.debug.assert(@sizeOf(BlockTQ1_0) == 54);
}

pub fn blockBytes(f: args.TernaryFormat) usize {
    return switch (f) {
        .tq2_0 => @sizeOf(BlockTQ2_0),
        .tq1_0 => @sizeOf(BlockTQ1_0),
        .i2 => @sizeOf(BlockTQ2_0) - 2,
    };
}

/// Blocks per job chunk (64 blocks = 16K weights).
const grain_blocks = 64;

fn width(comptime vbits: u32) comptime_int {
    return if (vbits == 0) 1 else @min(32, vbits / 8);
}

// ---- codes ----------------------------------------------------------------------------------

/// t + 1 for W weights at p (i8 values); a value outside {-1, 0, 1} gives a code above 2.
inline fn codes(comptime W: usize, p: [*]const i8) @Vector(W, u8) {
    const v: @Vector(W, i8) = p[0..W].*;
    return @as(@Vector(W, u8), @bitCast(v)) +% @as(@Vector(W, u8), @splat(1));
}

/// ceil(q·256 / 243) for base-3 numbers q < 243 (larger q come only from invalid values, whose
/// block is reported, so their byte is just truncated).
inline fn base3Byte(comptime W: usize, q: @Vector(W, u16)) @Vector(W, u8) {
    const w: @Vector(W, u32) = q;
    return @truncate((w * @as(@Vector(W, u32), @splat(256)) + @as(@Vector(W, u32), @splat(242))) / @as(@Vector(W, u32), @splat(243)));
}

/// Digit n (0 = most significant) of the base-3 bytes b, as a weight t = digit - 1.
inline fn base3Digit(comptime W: usize, b: @Vector(W, u8), comptime n: u3) @Vector(W, i8) {
    const pow3 = [_]u8{ 1, 3, 9, 27, 81 };
    const q: @Vector(W, u8) = b *% @as(@Vector(W, u8), @splat(pow3[n]));
    const x: @Vector(W, u16) = (@as(@Vector(W, u16), q) * @as(@Vector(W, u16), @splat(3))) >> @splat(8);
    return @as(@Vector(W, i8), @intCast(x)) - @as(@Vector(W, i8), @splat(1));
}

/// Packs 256 values into one block; returns false when a value is not in {-1, 0, 1}.
fn packBlock(comptime vbits: u32, comptime f: args.TernaryFormat, v: [*]const i8, scale: f32, out: [*]u8) bool {
    const W = comptime width(vbits);
    var hi: @Vector(W, u8) = @splat(0);
    const d: f16 = @floatCast(scale);
    const dbytes: [2]u8 = @bitCast(std.mem.nativeToLittle(u16, @bitCast(d)));
    switch (f) {
        .tq2_0, .i2 => {
            const blk: *BlockTQ2_0 = @ptrCast(out);
            inline for (0..2) |h| {
                var m: usize = 0;
                while (m < 32) : (m += W) {
                    var q: @Vector(W, u8) = @splat(0);
                    inline for (0..4) |n| {
                        const c = codes(W, v + h * 128 + n * 32 + m);
                        hi = @max(hi, c);
                        q |= c << @splat(2 * n);
                    }
                    blk.qs[h * 32 + m ..][0..W].* = q;
                }
            }
            if (f == .tq2_0) blk.d = dbytes;
        },
        .tq1_0 => {
            const blk: *BlockTQ1_0 = @ptrCast(out);
            const W16 = comptime @min(W, 16);
            var m: usize = 0;
            while (m < 32) : (m += W) {
                var q: @Vector(W, u16) = @splat(0);
                inline for (0..5) |n| {
                    const c = codes(W, v + n * 32 + m);
                    hi = @max(hi, c);
                    q = q * @as(@Vector(W, u16), @splat(3)) + c;
                }
                blk.qs[m..][0..W].* = base3Byte(W, q);
            }
            var hi16: @Vector(W16, u8) = @splat(0);
            m = 0;
            while (m < 16) : (m += W16) {
                var q: @Vector(W16, u16) = @splat(0);
                inline for (0..5) |n| {
                    const c = codes(W16, v + 160 + n * 16 + m);
                    hi16 = @max(hi16, c);
                    q = q * @as(@Vector(W16, u16), @splat(3)) + c;
                }
                blk.qs[32 + m ..][0..W16].* = base3Byte(W16, q);
            }
            // qh: 4 bytes of 4 digits, the fifth (least significant) digit 0.
            var q: @Vector(4, u16) = @splat(0);
            inline for (0..4) |n| {
                const c = codes(4, v + 240 + n * 4);
                if (@reduce(.Max, c) > 2) return false;
                q = q * @as(@Vector(4, u16), @splat(3)) + c;
            }
            blk.qh = base3Byte(4, q * @as(@Vector(4, u16), @splat(3)));
            blk.d = dbytes;
            if (@reduce(.Max, hi16) > 2) return false;
        },
    }
    return @reduce(.Max, hi) <= 2;
}

/// Decodes one block into 256 weights (TQ2_0 code 3 gives +2, as ggml).
pub fn decodeBlock(comptime vbits: u32, comptime f: args.TernaryFormat, in: [*]const u8, out: [*]i8) void {
    const W = comptime width(vbits);
    switch (f) {
        .tq2_0, .i2 => {
            const blk: *const BlockTQ2_0 = @ptrCast(in);
            inline for (0..2) |h| {
                var m: usize = 0;
                while (m < 32) : (m += W) {
                    const b: @Vector(W, u8) = blk.qs[h * 32 + m ..][0..W].*;
                    inline for (0..4) |n| {
                        const c = (b >> @splat(2 * n)) & @as(@Vector(W, u8), @splat(3));
                        out[h * 128 + n * 32 + m ..][0..W].* = @as(@Vector(W, i8), @intCast(c)) - @as(@Vector(W, i8), @splat(1));
                    }
                }
            }
        },
        .tq1_0 => {
            const blk: *const BlockTQ1_0 = @ptrCast(in);
            const W16 = comptime @min(W, 16);
            var m: usize = 0;
            while (m < 32) : (m += W) {
                const b: @Vector(W, u8) = blk.qs[m..][0..W].*;
                inline for (0..5) |n| out[n * 32 + m ..][0..W].* = base3Digit(W, b, n);
            }
            m = 0;
            while (m < 16) : (m += W16) {
                const b: @Vector(W16, u8) = blk.qs[32 + m ..][0..W16].*;
                inline for (0..5) |n| out[160 + n * 16 + m ..][0..W16].* = base3Digit(W16, b, n);
            }
            const b: @Vector(4, u8) = blk.qh;
            inline for (0..4) |n| out[240 + n * 4 ..][0..4].* = base3Digit(4, b, n);
        },
    }
}

fn blockScale(comptime f: args.TernaryFormat, in: [*]const u8) f32 {
    const bytes = switch (f) {
        .tq2_0 => @as(*const BlockTQ2_0, @ptrCast(in)).d,
        .tq1_0 => @as(*const BlockTQ1_0, @ptrCast(in)).d,
        .i2 => return 1,
    };
    const h: f16 = @bitCast(std.mem.littleToNative(u16, @bitCast(bytes)));
    return h;
}

// ---- entry point ----------------------------------------------------------------------------

/// Runs args.op over args.nblocks blocks. Returns 0, or 1 when packing met a value outside
/// {-1, 0, 1}; then a.fail_at is the index of the first such value (the blocks are incomplete).
pub fn ternaryPack(comptime vbits: u32, par: *const Parallel, a: *args.TernaryPackArgs) u32 {
    return switch (a.format) {
        inline else => |f| run(vbits, f, par, a),
    };
}

fn run(comptime vbits: u32, comptime f: args.TernaryFormat, par: *const Parallel, a: *args.TernaryPackArgs) u32 {
    const bb = comptime blockBytes(f);
    const Ctx = struct {
        a: *const args.TernaryPackArgs,
        first_bad: std.atomic.Value(usize) = .init(std.math.maxInt(usize)),

        fn task(self: *@This(), b: usize, e: usize) void {
            const x = self.a;
            switch (x.op) {
                .pack => {
                    const vals: [*]const i8 = @ptrCast(x.values.?);
                    const sc: ?[*]const f32 = if (x.scales) |p| @ptrCast(@alignCast(p)) else null;
                    for (b..e) |i| {
                        if (!packBlock(vbits, f, vals + i * block_weights, if (sc) |p| p[i] else 0, x.blocks + i * bb)) {
                            for (0..block_weights) |j| {
                                const t = vals[i * block_weights + j];
                                if (t < -1 or t > 1) {
                                    _ = self.first_bad.fetchMin(i * block_weights + j, .monotonic);
                                    break;
                                }
                            }
                            return;
                        }
                    }
                },
                .unpack => {
                    const vals: [*]i8 = @ptrCast(x.values.?);
                    const sc: ?[*]f32 = if (x.scales) |p| @ptrCast(@alignCast(p)) else null;
                    for (b..e) |i| {
                        decodeBlock(vbits, f, x.blocks + i * bb, vals + i * block_weights);
                        if (sc) |s| s[i] = blockScale(f, x.blocks + i * bb);
                    }
                },
                .dequantize => switch (x.dtype) {
                    inline .f32, .f16, .bf16 => |d| {
                        const out: [*]dt.Storage(d) = @ptrCast(@alignCast(x.out.?));
                        var t: [block_weights]i8 align(64) = undefined;
                        for (b..e) |i| {
                            decodeBlock(vbits, f, x.blocks + i * bb, &t);
                            const s = blockScale(f, x.blocks + i * bb);
                            const o = out + i * block_weights;
                            for (t, 0..) |q, j| o[j] = dt.fromFloat(d, @as(f32, @floatFromInt(q)) * s);
                        }
                    },
                    else => unreachable, // the door refuses other dtypes
                },
            }
        }
    };
    var ctx: Ctx = .{ .a = a };
    par.run(a.nblocks, grain_blocks, &ctx, Ctx.task);
    const bad = ctx.first_bad.load(.monotonic);
    if (bad != std.math.maxInt(usize)) {
        a.fail_at = bad;
        return 1;
    }
    return 0;
}

// ---- tests ------------------------------------------------------------------------------------
// The reference below follows ggml's loops element by element (quantize_row_tq*_ref from the
// float weights t·d, and dequantize_row_tq*), independently of the vector code above.

const testing = std.testing;

fn refPack(f: args.TernaryFormat, v: []const i8, d: f32, out: []u8) void {
    const h: f16 = @floatCast(d);
    const hb: u16 = @bitCast(h);
    switch (f) {
        .i2 => { // TQ2_0's codes without the scale
            var full: [66]u8 = undefined;
            refPack(.tq2_0, v, d, &full);
            @memcpy(out[0..64], full[0..64]);
        },
        .tq2_0 => {
            var x: usize = 0;
            var j: usize = 0;
            while (j < 64) : (j += 32) {
                for (0..32) |m| {
                    var q: u8 = 0;
                    for (0..4) |n| {
                        const xi: u8 = @intCast(@as(i16, v[x + m + n * 32]) + 1);
                        q += (xi & 3) << @intCast(2 * n);
                    }
                    out[j + m] = q;
                }
                x += 128;
            }
            out[64] = @truncate(hb);
            out[65] = @truncate(hb >> 8);
        },
        .tq1_0 => {
            var x: usize = 0;
            var j: usize = 0;
            while (j < 32) : (j += 32) {
                for (0..32) |m| {
                    var q: u16 = 0;
                    for (0..5) |n| q = q * 3 + @as(u16, @intCast(@as(i16, v[x + m + n * 32]) + 1));
                    out[j + m] = @intCast((q * 256 + 242) / 243);
                }
                x += 160;
            }
            while (j < 48) : (j += 16) {
                for (0..16) |m| {
                    var q: u16 = 0;
                    for (0..5) |n| q = q * 3 + @as(u16, @intCast(@as(i16, v[x + m + n * 16]) + 1));
                    out[j + m] = @intCast((q * 256 + 242) / 243);
                }
                x += 80;
            }
            for (0..4) |jj| {
                var q: u16 = 0;
                for (0..4) |m| q = q * 3 + @as(u16, @intCast(@as(i16, v[x + jj + m * 4]) + 1));
                q *= 3;
                out[48 + jj] = @intCast((q * 256 + 242) / 243);
            }
            out[52] = @truncate(hb);
            out[53] = @truncate(hb >> 8);
        },
    }
}

fn refDequant(f: args.TernaryFormat, blk: []const u8, out: []f32) void {
    const hb = @as(u16, blk[blk.len - 2]) | @as(u16, blk[blk.len - 1]) << 8;
    const d: f32 = @as(f16, @bitCast(hb));
    var y: usize = 0;
    switch (f) {
        .i2 => unreachable, // no scale: dequantized by the caller
        .tq2_0 => {
            var j: usize = 0;
            while (j < 64) : (j += 32) {
                for (0..4) |l| for (0..32) |m| {
                    const q: i32 = (blk[j + m] >> @intCast(l * 2)) & 3;
                    out[y] = @as(f32, @floatFromInt(q - 1)) * d;
                    y += 1;
                };
            }
        },
        .tq1_0 => {
            const pow3 = [_]u8{ 1, 3, 9, 27, 81, 243 };
            for (0..5) |n| for (0..32) |m| {
                const q: u8 = blk[m] *% pow3[n];
                const xi: i32 = (@as(u16, q) * 3) >> 8;
                out[y] = @as(f32, @floatFromInt(xi - 1)) * d;
                y += 1;
            };
            for (0..5) |n| for (0..16) |m| {
                const q: u8 = blk[32 + m] *% pow3[n];
                const xi: i32 = (@as(u16, q) * 3) >> 8;
                out[y] = @as(f32, @floatFromInt(xi - 1)) * d;
                y += 1;
            };
            for (0..4) |n| for (0..4) |j| {
                const q: u8 = blk[48 + j] *% pow3[n];
                const xi: i32 = (@as(u16, q) * 3) >> 8;
                out[y] = @as(f32, @floatFromInt(xi - 1)) * d;
                y += 1;
            };
        },
    }
}

fn checkLevel(comptime vbits: u32, f: args.TernaryFormat, nblocks: usize, seed: u64) !void {
    const bb = blockBytes(f);
    const n = nblocks * block_weights;
    const vals = try testing.allocator.alloc(i8, n);
    defer testing.allocator.free(vals);
    const scales = try testing.allocator.alloc(f32, nblocks);
    defer testing.allocator.free(scales);
    const blocks = try testing.allocator.alloc(u8, nblocks * bb);
    defer testing.allocator.free(blocks);
    const want = try testing.allocator.alloc(u8, nblocks * bb);
    defer testing.allocator.free(want);
    const back = try testing.allocator.alloc(i8, n);
    defer testing.allocator.free(back);
    const back_sc = try testing.allocator.alloc(f32, nblocks);
    defer testing.allocator.free(back_sc);
    var rng = std.Random.DefaultPrng.init(seed);
    const r = rng.random();
    for (vals, 0..) |*v, i| {
        // Every block pattern: random, all -1, all 0, all +1.
        const kind = (i / block_weights) % 4;
        v.* = if (kind == 0) r.intRangeAtMost(i8, -1, 1) else @as(i8, @intCast(kind)) - 2;
    }
    for (scales, 0..) |*s, i| s.* = if (i % 5 == 4) -0.75 else r.float(f32) * 3 + 1e-3;
    for (0..nblocks) |i| refPack(f, vals[i * block_weights ..][0..block_weights], scales[i], want[i * bb ..][0..bb]);

    var a: args.TernaryPackArgs = .{ .op = .pack, .format = f, .dtype = .f32, .nblocks = nblocks, .values = @ptrCast(vals.ptr), .scales = @ptrCast(scales.ptr), .blocks = blocks.ptr, .out = null, .fail_at = 0 };
    try testing.expectEqual(@as(u32, 0), ternaryPack(vbits, &Parallel.serial, &a));
    try testing.expectEqualSlices(u8, want, blocks);

    a.op = .unpack;
    a.values = @ptrCast(back.ptr);
    a.scales = @ptrCast(back_sc.ptr);
    try testing.expectEqual(@as(u32, 0), ternaryPack(vbits, &Parallel.serial, &a));
    try testing.expectEqualSlices(i8, vals, back);
    if (f == .i2) return; // codes only: no scale to read back or dequantize with
    for (scales, back_sc) |s, g| try testing.expectEqual(@as(f32, @as(f16, @floatCast(s))), g);

    const ref = try testing.allocator.alloc(f32, n);
    defer testing.allocator.free(ref);
    for (0..nblocks) |i| refDequant(f, blocks[i * bb ..][0..bb], ref[i * block_weights ..][0..block_weights]);
    inline for (.{ DType.f32, DType.f16, DType.bf16 }) |d| {
        const out = try testing.allocator.alloc(dt.Storage(d), n);
        defer testing.allocator.free(out);
        a.op = .dequantize;
        a.dtype = d;
        a.out = @ptrCast(out.ptr);
        try testing.expectEqual(@as(u32, 0), ternaryPack(vbits, &Parallel.serial, &a));
        for (ref, out) |w, g| {
            const gw: f32 = if (d == .bf16) g.toF32() else g;
            const ww: f32 = if (d == .bf16) dt.BF16.fromF32(w).toF32() else if (d == .f16) @as(f16, @floatCast(w)) else w;
            try testing.expectEqual(@as(u32, @bitCast(ww)), @as(u32, @bitCast(gw)));
        }
    }
}

test "block sizes are ggml's" {
    try testing.expectEqual(@as(usize, 66), blockBytes(.tq2_0));
    try testing.expectEqual(@as(usize, 54), blockBytes(.tq1_0));
    try testing.expectEqual(@as(usize, 64), blockBytes(.i2));
}

test "pack matches ggml's reference; unpack and dequantize round trip, at every width" {
    inline for (.{ 0, 128, 256, 512 }) |vb| {
        for ([_]args.TernaryFormat{ .tq2_0, .tq1_0, .i2 }) |f| {
            try checkLevel(vb, f, 9, 42 + vb);
            try checkLevel(vb, f, 1, 7);
        }
    }
}

test "every TQ1_0 byte decodes as ggml does, and TQ2_0 code 3 reads as +2" {
    var blk: [54]u8 = undefined;
    var out: [256]i8 = undefined;
    var ref: [256]f32 = undefined;
    for (0..256) |b| {
        @memset(&blk, @intCast(b));
        blk[52] = 0x00;
        blk[53] = 0x3C; // d = 1.0
        decodeBlock(256, .tq1_0, &blk, &out);
        refDequant(.tq1_0, &blk, &ref);
        for (out, ref) |o, r| try testing.expectEqual(r, @as(f32, @floatFromInt(o)));
    }
    var b2: [66]u8 = @splat(0xFF);
    decodeBlock(0, .tq2_0, &b2, &out);
    for (out) |o| try testing.expectEqual(@as(i8, 2), o);
}

test "a value outside {-1, 0, 1} is reported at its first index" {
    inline for (.{ 0, 256 }) |vb| {
        for ([_]args.TernaryFormat{ .tq2_0, .tq1_0, .i2 }) |f| {
            for ([_]usize{ 3, 200, 245, 255, 256 + 17 }) |pos| {
                var vals: [512]i8 = @splat(1);
                vals[pos] = if (pos % 2 == 0) 2 else -128;
                vals[511] = 5;
                var sc: [2]f32 = .{ 1, 1 };
                var blocks: [132]u8 = undefined;
                var a: args.TernaryPackArgs = .{ .op = .pack, .format = f, .dtype = .f32, .nblocks = 2, .values = @ptrCast(&vals), .scales = @ptrCast(&sc), .blocks = &blocks, .out = null, .fail_at = 0 };
                try testing.expectEqual(@as(u32, 1), ternaryPack(vb, &Parallel.serial, &a));
                try testing.expectEqual(pos, a.fail_at);
            }
        }
    }
}
