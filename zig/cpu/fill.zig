//! Creation kernels over contiguous memory: fill, ranges (arange, linspace) and eye.
//! Values are computed in f64 and converted with the rules of dtype.zig.
const std = @import("std");
const dt = @import("dtype.zig");
const DType = dt.DType;

pub fn fill(comptime d: DType, out: [*]dt.Storage(d), n: usize, value: f64) void {
    @memset(out[0..n], dt.fromFloat(d, value));
}

/// out[i] = start + i * step; when `last` is not null, the final element is exactly `last`
/// (linspace with endpoint).
pub fn range(comptime d: DType, out: [*]dt.Storage(d), n: usize, start: f64, step: f64, last: ?f64) void {
    for (0..n) |i| out[i] = dt.fromFloat(d, start + @as(f64, @floatFromInt(i)) * step);
    if (last) |v| {
        if (n > 0) out[n - 1] = dt.fromFloat(d, v);
    }
}

/// rows x cols, ones on diagonal k (k > 0 above the main diagonal), zeros elsewhere.
pub fn eye(comptime d: DType, out: [*]dt.Storage(d), rows: usize, cols: usize, k: isize) void {
    const zero = dt.fromFloat(d, @as(f64, 0));
    const one = dt.fromFloat(d, @as(f64, 1));
    @memset(out[0 .. rows * cols], zero);
    for (0..rows) |r| {
        const c = @as(isize, @intCast(r)) + k;
        if (c >= 0 and c < @as(isize, @intCast(cols))) out[r * cols + @as(usize, @intCast(c))] = one;
    }
}

test "range and eye" {
    var a: [5]i32 = undefined;
    range(.i32, &a, 5, -2, 1.5, null);
    try std.testing.expectEqualSlices(i32, &.{ -2, 0, 1, 2, 4 }, &a); // -2,-0.5,1,2.5,4 truncated
    var l: [4]f32 = undefined;
    range(.f32, &l, 4, 0, 1.0 / 3.0, 1);
    try std.testing.expectEqual(@as(f32, 1), l[3]);
    var e: [6]u8 = undefined;
    eye(.u8, &e, 2, 3, 1);
    try std.testing.expectEqualSlices(u8, &.{ 0, 1, 0, 0, 0, 1 }, &e);
    var f: [3]dt.BF16 = undefined;
    fill(.bf16, &f, 3, 1.0);
    try std.testing.expectEqual(@as(u16, 0x3F80), f[2].bits);
}
