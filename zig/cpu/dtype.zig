//! Element types and the conversions between them.
//!
//! The dtype codes are part of the ABI (src/native.ts mirrors them through the generated
//! src/abi.gen.ts). `f64` is internal: it moves JS numbers in and out, it is never a tensor dtype.
//!
//! Conversion rules (documented in docs/tensor_implementation_guide.md):
//! - float -> f16/bf16: round to nearest, ties to even; NaN stays NaN, ±Inf stays ±Inf, overflow -> ±Inf.
//! - float -> integer: truncate toward zero, saturate at the type's range, NaN -> 0.
//! - integer -> integer: two's complement wrap (as NumPy's astype).
//! - anything -> bool: nonzero (NaN included) -> 1; bool -> number: 0 or 1.
const std = @import("std");

pub const DType = enum(u32) {
    f32 = 0,
    f16 = 1,
    bf16 = 2,
    i8 = 3,
    i16 = 4,
    i32 = 5,
    u8 = 6,
    u16 = 7,
    u32 = 8,
    bool = 9,
    f64 = 10,

    pub const count = 11;

    pub fn size(self: DType) usize {
        return switch (self) {
            .f32, .i32, .u32 => 4,
            .f16, .bf16, .i16, .u16 => 2,
            .i8, .u8, .bool => 1,
            .f64 => 8,
        };
    }

    pub fn fromInt(code: u32) ?DType {
        if (code >= count) return null;
        return @enumFromInt(code);
    }
};

/// Brain float: the top 16 bits of an f32.
pub const BF16 = extern struct {
    bits: u16,

    pub fn toF32(self: BF16) f32 {
        return @bitCast(@as(u32, self.bits) << 16);
    }

    pub fn fromF32(x: f32) BF16 {
        const u: u32 = @bitCast(x);
        if (std.math.isNan(x)) return .{ .bits = @truncate((u >> 16) | 0x40) }; // keep sign, stay quiet NaN
        const rounding: u32 = 0x7FFF + ((u >> 16) & 1);
        return .{ .bits = @truncate((u +% rounding) >> 16) };
    }

    /// Correct rounding from f64 (no double rounding): convert to f32 rounding to odd, then to bf16.
    pub fn fromF64(x: f64) BF16 {
        if (std.math.isNan(x)) return fromF32(std.math.nan(f32));
        const r: f32 = @floatCast(x);
        if (@as(f64, r) == x or std.math.isInf(r)) return fromF32(r);
        // Truncated toward zero, then mark inexact in the lowest bit (round to odd).
        var t: u32 = @bitCast(r);
        if (@abs(@as(f64, r)) > @abs(x)) t -= 1;
        t |= 1;
        return fromF32(@bitCast(t));
    }
};

/// Zig storage type of each dtype.
pub fn Storage(comptime d: DType) type {
    return switch (d) {
        .f32 => f32,
        .f16 => f16,
        .bf16 => BF16,
        .i8 => i8,
        .i16 => i16,
        .i32 => i32,
        .u8 => u8,
        .u16 => u16,
        .u32 => u32,
        .bool => u8,
        .f64 => f64,
    };
}

pub fn isFloat(d: DType) bool {
    return switch (d) {
        .f32, .f16, .bf16, .f64 => true,
        else => false,
    };
}

/// Convert one element from dtype `s` to dtype `d`.
pub inline fn convert(comptime d: DType, comptime s: DType, x: Storage(s)) Storage(d) {
    if (d == s) return x;
    if (d == .bool) return @intFromBool(isNonZero(s, x));
    if (s == .bool) return fromInt(d, @as(i64, x));
    if (comptime isFloat(s)) {
        if (s == .bf16) return fromFloat(d, x.toF32());
        return fromFloat(d, x);
    }
    return fromInt(d, @as(i64, x));
}

inline fn isNonZero(comptime s: DType, x: Storage(s)) bool {
    return switch (s) {
        .bf16 => (x.bits & 0x7FFF) != 0,
        .f32, .f16, .f64 => x != 0 or std.math.isNan(x),
        else => x != 0,
    };
}

/// From a float value (f16, f32 or f64) to dtype `d`.
pub inline fn fromFloat(comptime d: DType, x: anytype) Storage(d) {
    const T = Storage(d);
    return switch (d) {
        .f32, .f16, .f64 => @floatCast(x),
        .bf16 => if (@TypeOf(x) == f64) BF16.fromF64(x) else BF16.fromF32(@floatCast(x)),
        .bool => @intFromBool(x != 0 or std.math.isNan(x)),
        else => saturate(T, x),
    };
}

/// Float to integer: truncate toward zero, saturate, NaN -> 0.
fn saturate(comptime T: type, x: anytype) T {
    const F = @TypeOf(x);
    if (comptime @bitSizeOf(T) <= std.math.floatMantissaBits(F)) {
        // Both bounds are exact in F: clamp, convert, select. No branches, so a contiguous copy
        // loop vectorises (f32 -> i8/u8/i16/u16, f16 -> i8/u8). @max/@min ignore a NaN operand,
        // so the NaN lane converts `lo` and is then replaced by 0.
        const c = @min(@max(x, @as(F, @floatFromInt(std.math.minInt(T)))), @as(F, @floatFromInt(std.math.maxInt(T))));
        const r: T = @intFromFloat(c);
        return if (x != x) 0 else r;
    }
    if (std.math.isNan(x)) return 0;
    const lo: F = @floatFromInt(std.math.minInt(T));
    const hi: F = @floatFromInt(std.math.maxInt(T));
    if (x <= lo) return std.math.minInt(T);
    if (x >= hi) return std.math.maxInt(T);
    return @intFromFloat(x);
}

/// From an integer value to dtype `d` (wrapping for narrower integers).
pub inline fn fromInt(comptime d: DType, x: i64) Storage(d) {
    const T = Storage(d);
    return switch (d) {
        .f32, .f16, .f64 => @floatFromInt(x),
        .bf16 => BF16.fromF32(@floatFromInt(x)),
        .bool => @intFromBool(x != 0),
        else => @bitCast(@as(@Int(.unsigned, @bitSizeOf(T)), @truncate(@as(u64, @bitCast(x))))),
    };
}

/// To f64, for value-producing kernels that compute in double.
pub inline fn toF64(comptime s: DType, x: Storage(s)) f64 {
    return switch (s) {
        .bf16 => x.toF32(),
        .f32, .f16, .f64 => x,
        else => @floatFromInt(x),
    };
}

test "bf16 rounding: ties to even, NaN and Inf kept" {
    try std.testing.expectEqual(@as(u16, 0x3F80), BF16.fromF32(1.0).bits);
    // 1 + 2^-8 is exactly halfway between two bf16 values: ties to even (down to 1.0).
    try std.testing.expectEqual(@as(u16, 0x3F80), BF16.fromF32(1.0 + 1.0 / 256.0).bits);
    // 1 + 3*2^-8 is halfway with an odd lower neighbour: rounds up.
    try std.testing.expectEqual(@as(u16, 0x3F82), BF16.fromF32(1.0 + 3.0 / 256.0).bits);
    try std.testing.expect(std.math.isNan(BF16.fromF32(std.math.nan(f32)).toF32()));
    try std.testing.expectEqual(std.math.inf(f32), BF16.fromF32(std.math.inf(f32)).toF32());
    try std.testing.expectEqual(-std.math.inf(f32), BF16.fromF32(-std.math.inf(f32)).toF32());
    try std.testing.expectEqual(std.math.inf(f32), BF16.fromF32(std.math.floatMax(f32)).toF32());
}

test "bf16 from f64 avoids double rounding" {
    // Just above a bf16 tie, by less than an f32 ulp: must round up, not to even.
    const x: f64 = 1.0 + 1.0 / 256.0 + 1e-12;
    try std.testing.expectEqual(@as(u16, 0x3F81), BF16.fromF64(x).bits);
    try std.testing.expectEqual(@as(u16, 0x3F80), BF16.fromF64(1.0 + 1.0 / 256.0).bits);
}

test "float to int saturates and truncates" {
    try std.testing.expectEqual(@as(i8, 127), convert(.i8, .f32, 300.5));
    try std.testing.expectEqual(@as(i8, -128), convert(.i8, .f32, -1e9));
    try std.testing.expectEqual(@as(i8, -2), convert(.i8, .f32, -2.9));
    try std.testing.expectEqual(@as(i8, 0), convert(.i8, .f32, -0.7));
    try std.testing.expectEqual(@as(i16, 32767), convert(.i16, .f32, std.math.inf(f32)));
    try std.testing.expectEqual(@as(i8, -128), convert(.i8, .f16, -std.math.inf(f16)));
    try std.testing.expectEqual(@as(u16, 0), convert(.u16, .f32, std.math.nan(f32)));
    var nan: f32 = std.math.nan(f32);
    _ = &nan;
    try std.testing.expectEqual(@as(u8, 0), convert(.u8, .f32, nan));
    try std.testing.expectEqual(@as(u32, 4294967295), convert(.u32, .f64, 1e20));
    try std.testing.expectEqual(@as(i32, std.math.maxInt(i32)), convert(.i32, .f32, 3e9));
}

test "int to int wraps, bool is nonzero" {
    try std.testing.expectEqual(@as(u8, 255), convert(.u8, .i32, -1));
    try std.testing.expectEqual(@as(i8, -56), convert(.i8, .u16, 200));
    try std.testing.expectEqual(@as(u8, 1), convert(.bool, .f32, std.math.nan(f32)));
    try std.testing.expectEqual(@as(u8, 0), convert(.bool, .f32, -0.0));
    try std.testing.expectEqual(@as(f32, 1), convert(.f32, .bool, 1));
}

test "f16 rounding" {
    try std.testing.expectEqual(std.math.inf(f16), convert(.f16, .f32, 70000.0));
    try std.testing.expectEqual(@as(f16, 2048), convert(.f16, .f32, 2049.0)); // tie -> even
    try std.testing.expectEqual(@as(f16, 2052), convert(.f16, .f32, 2051.0)); // tie -> even (up)
}
