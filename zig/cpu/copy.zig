//! Strided copy with dtype conversion: contiguous(), clone(), astype, concat/stack, reading JS
//! arrays in and out. One generic loop per (dst, src) dtype pair; the contiguous inner row is a
//! plain loop that LLVM vectorises for the ISA level this object is compiled for.
const std = @import("std");
const dt = @import("dtype.zig");
const strided = @import("strided.zig");
const DType = dt.DType;

pub const CopyArgs = extern struct {
    dst: [*]u8,
    dst_dtype: DType,
    src: [*]const u8,
    src_dtype: DType,
    layout: strided.Layout(2), // operand 0 = dst, 1 = src; strides in elements
};

pub fn copy(args: *CopyArgs) void {
    if (args.layout.size() == 0) return;
    args.layout.coalesce();
    switch (args.dst_dtype) {
        inline else => |d| switch (args.src_dtype) {
            inline else => |s| copyTyped(d, s, args),
        },
    }
}

fn copyTyped(comptime d: DType, comptime s: DType, args: *const CopyArgs) void {
    const D = dt.Storage(d);
    const S = dt.Storage(s);
    const Body = struct {
        dst: [*]D,
        src: [*]const S,
        pub fn row(self: *const @This(), offs: [2]isize, len: usize, st: [2]isize) void {
            const o: [*]D = @ptrCast(&self.dst[@bitCast(offs[0])]);
            const i: [*]const S = @ptrCast(&self.src[@bitCast(offs[1])]);
            if (st[0] == 1 and st[1] == 1) {
                for (o[0..len], i[0..len]) |*y, x| y.* = dt.convert(d, s, x);
            } else if (st[0] == 1 and st[1] == 0) {
                @memset(o[0..len], dt.convert(d, s, i[0]));
            } else {
                var po: isize = 0;
                var pi: isize = 0;
                for (0..len) |_| {
                    ptrAt(D, o, po).* = dt.convert(d, s, ptrAt(S, @constCast(i), pi).*);
                    po += st[0];
                    pi += st[1];
                }
            }
        }
    };
    const body = Body{ .dst = @ptrCast(@alignCast(args.dst)), .src = @ptrCast(@alignCast(args.src)) };
    // A transposed operand: walk 32 x 32 tiles so both sides stay in cache.
    if (args.layout.wantsTiles()) args.layout.forTiles(0, args.layout.tileRows(), &body) else args.layout.forEachRow(&body);
}

/// Pointer to element `off` (may be negative) of `base`.
pub inline fn ptrAt(comptime T: type, base: [*]const T, off: isize) *T {
    const addr: usize = @bitCast(@as(isize, @bitCast(@intFromPtr(base))) + off * @sizeOf(T));
    return @ptrFromInt(addr);
}

test "copy casts a transposed f32 view to contiguous i16" {
    const src = [_]f32{ 1.5, 2.5, 3.5, -4.5, 5.5, 6.5 }; // [2,3]
    var dst: [6]i16 = undefined;
    var a: CopyArgs = .{
        .dst = @ptrCast(&dst),
        .dst_dtype = .i16,
        .src = @ptrCast(&src),
        .src_dtype = .f32,
        .layout = .{ .ndim = 2, .shape = undefined, .strides = undefined },
    };
    a.layout.shape[0..2].* = .{ 3, 2 };
    a.layout.strides[0][0..2].* = .{ 2, 1 };
    a.layout.strides[1][0..2].* = .{ 1, 3 };
    copy(&a);
    try std.testing.expectEqualSlices(i16, &.{ 1, -4, 2, 5, 3, 6 }, &dst);
}

test "copy broadcasts and reverses" {
    const src = [_]u8{ 1, 2, 3 };
    var dst: [6]f32 = undefined;
    var a: CopyArgs = .{
        .dst = @ptrCast(&dst),
        .dst_dtype = .f32,
        .src = @ptrCast(&src[2]),
        .src_dtype = .u8,
        .layout = .{ .ndim = 2, .shape = undefined, .strides = undefined },
    };
    a.layout.shape[0..2].* = .{ 2, 3 };
    a.layout.strides[0][0..2].* = .{ 3, 1 };
    a.layout.strides[1][0..2].* = .{ 0, -1 }; // broadcast rows, reversed columns
    copy(&a);
    try std.testing.expectEqualSlices(f32, &.{ 3, 2, 1, 3, 2, 1 }, &dst);
}
