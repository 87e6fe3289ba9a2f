//! Tests of gather.zig against plain definitions: take of 1-, 2- and 4-byte elements with every
//! integer index dtype, negative indices, each axis position; out-of-range indices (first one
//! reported, nothing written); indexAdd with repeated indices against f64 sums, half-type targets,
//! column blocks, and a reversed job order (identical bits). Compiled at every ISA level.
const std = @import("std");
const build_options = @import("build_options");
const dt = @import("dtype.zig");
const args = @import("args.zig");
const gather = @import("gather.zig");
const gt = @import("grad_test.zig");
const ew = @import("elementwise.zig");
const Parallel = @import("parallel.zig").Parallel;
const DType = dt.DType;
const testing = std.testing;

const vbits = build_options.vector_bits;

fn gargs(dtype: DType, idx_dtype: DType, outer: usize, axis_len: usize, inner: usize, nidx: usize, out: [*]u8, x: [*]const u8, idx: [*]const u8) args.GatherArgs {
    return .{ .dtype = dtype, .idx_dtype = idx_dtype, .src_dtype = dtype, .outer = outer, .axis_len = axis_len, .inner = inner, .nidx = nidx, .out = out, .x = x, .idx = idx, .fail_at = 0, .fail_value = 0 };
}

/// take of E-typed elements with I-typed indices over [outer, axis_len, inner]: out must equal
/// the definition; the reversed job order must give the same bytes.
fn checkTake(comptime E: type, comptime d: DType, comptime I: type, comptime id: DType, outer: usize, axis_len: usize, inner: usize, nidx: usize) !void {
    const x = try testing.allocator.alloc(E, outer * axis_len * inner);
    defer testing.allocator.free(x);
    for (x, 0..) |*v, i| v.* = @truncate(i *% 2654435761 +% 17);
    const idx = try testing.allocator.alloc(I, nidx);
    defer testing.allocator.free(idx);
    const signed = @typeInfo(I).int.signedness == .signed;
    for (idx, 0..) |*v, j| {
        const k = (j * 7 + 3) % axis_len;
        // Signed indices: every other one counted from the end.
        v.* = @intCast(if (signed and j % 2 == 1) @as(i64, @intCast(k)) - @as(i64, @intCast(axis_len)) else @as(i64, @intCast(k)));
    }
    const out = try testing.allocator.alloc(E, outer * nidx * inner);
    defer testing.allocator.free(out);
    const out2 = try testing.allocator.alloc(E, outer * nidx * inner);
    defer testing.allocator.free(out2);
    var a = gargs(d, id, outer, axis_len, inner, nidx, @ptrCast(out.ptr), @ptrCast(x.ptr), @ptrCast(idx.ptr));
    const par = Parallel.testing();
    try testing.expectEqual(gather.ok, gather.take(&par, &a));
    for (0..outer) |o| for (0..nidx) |j| {
        const raw: i64 = idx[j];
        const k: usize = @intCast(if (raw < 0) raw + @as(i64, @intCast(axis_len)) else raw);
        for (0..inner) |c| {
            try testing.expectEqual(x[(o * axis_len + k) * inner + c], out[(o * nidx + j) * inner + c]);
        }
    };
    a.out = @ptrCast(out2.ptr);
    const rev = gt.reversed();
    try testing.expectEqual(gather.ok, gather.take(&rev, &a));
    try testing.expectEqualSlices(E, out, out2);
}

test "take copies rows of any element size with any integer index dtype" {
    const shapes = [_][4]usize{
        .{ 1, 10, 33, 7 }, // axis 0 rows (embedding)
        .{ 1, 5, 1, 9 }, // 1-d gather
        .{ 3, 6, 1, 4 }, // last axis
        .{ 2, 4, 5, 11 }, // middle axis
        .{ 1, 50, 3, 6000 }, // many rows: several job items
    };
    for (shapes) |s| {
        try checkTake(u8, .u8, i32, .i32, s[0], s[1], s[2], s[3]);
        try checkTake(u16, .bf16, i8, .i8, s[0], s[1], s[2], s[3]);
        try checkTake(u32, .f32, u16, .u16, s[0], s[1], s[2], s[3]);
        try checkTake(u32, .i32, i16, .i16, s[0], s[1], s[2], s[3]);
        try checkTake(u16, .f16, u8, .u8, s[0], s[1], s[2], s[3]);
        try checkTake(u8, .bool, u32, .u32, s[0], s[1], s[2], s[3]);
    }
}

test "an out-of-range index is reported (the first one) and nothing is written" {
    const par = Parallel.testing();
    var x = [_]f32{ 1, 2, 3, 4, 5, 6 };
    var out = [_]f32{ -1, -1, -1, -1, -1, -1, -1, -1 };
    // [3, 2] table, axis 0: 3 is too big (position 2); -4 would be too (position 3) but comes later.
    var idx = [_]i32{ 0, -1, 3, -4 };
    var a = gargs(.f32, .i32, 1, 3, 2, 4, @ptrCast(&out), @ptrCast(&x), @ptrCast(&idx));
    try testing.expectEqual(gather.bad_index, gather.take(&par, &a));
    try testing.expectEqual(@as(usize, 2), a.fail_at);
    try testing.expectEqual(@as(i64, 3), a.fail_value);
    for (out) |v| try testing.expectEqual(@as(f32, -1), v);
    idx[2] = -3; // = 0: now -4 at position 3 is the first bad one
    try testing.expectEqual(gather.bad_index, gather.take(&par, &a));
    try testing.expectEqual(@as(usize, 3), a.fail_at);
    try testing.expectEqual(@as(i64, -4), a.fail_value);
    idx[3] = 2;
    try testing.expectEqual(gather.ok, gather.take(&par, &a));
    try testing.expectEqualSlices(f32, &.{ 1, 2, 5, 6, 1, 2, 5, 6 }, &out);
    // indexAdd checks first too: the target stays as it was.
    var t = [_]f32{ 0, 0, 0, 0, 0, 0 };
    var src = [_]f32{ 1, 1, 1, 1, 1, 1, 1, 1 };
    idx[1] = 9;
    var b = gargs(.f32, .i32, 1, 3, 2, 4, @ptrCast(&t), @ptrCast(&src), @ptrCast(&idx));
    try testing.expectEqual(gather.bad_index, gather.indexAdd(vbits, &par, &b));
    try testing.expectEqual(@as(usize, 1), b.fail_at);
    for (t) |v| try testing.expectEqual(@as(f32, 0), v);
    // An empty axis: every index is out of range.
    var c = gargs(.f32, .i32, 1, 0, 2, 1, @ptrCast(&out), @ptrCast(&x), @ptrCast(&idx));
    idx[0] = 0;
    try testing.expectEqual(gather.bad_index, gather.take(&par, &c));
    // Refused scratch memory.
    try testing.expectEqual(gather.no_memory, gather.take(&Parallel.serial, &a));
}

fn checkIndexAdd(comptime d: DType, comptime sd: DType, outer: usize, axis_len: usize, inner: usize, nidx: usize) !void {
    const tv = try testing.allocator.alloc(f64, outer * axis_len * inner);
    defer testing.allocator.free(tv);
    const sv = try testing.allocator.alloc(f64, outer * nidx * inner);
    defer testing.allocator.free(sv);
    for (tv, 0..) |*v, i| v.* = gt.noise(8, i, -1, 1);
    for (sv, 0..) |*v, i| v.* = gt.noise(9, i, -1, 1);
    const t = try gt.Buf(d).init(tv);
    defer t.deinit();
    const t2 = try gt.Buf(d).init(tv);
    defer t2.deinit();
    const s = try gt.Buf(sd).init(sv);
    defer s.deinit();
    // Repeated indices: few distinct rows, negative ones too.
    const idx = try testing.allocator.alloc(i32, nidx);
    defer testing.allocator.free(idx);
    for (idx, 0..) |*v, j| {
        const k: i32 = @intCast((j * 5 + 1) % @min(axis_len, 3));
        v.* = if (j % 3 == 0) k - @as(i32, @intCast(axis_len)) else k;
    }
    // Reference: f64 sums over j in order (f32 targets); half-type targets round after each add,
    // so they are emulated exactly (f32 add of the stored values, rounded to d) and compared bitwise.
    const want = try testing.allocator.alloc(f64, tv.len);
    defer testing.allocator.free(want);
    for (want, 0..) |*w, i| w.* = t.get(i);
    const n_add = try testing.allocator.alloc(f64, tv.len); // count of adds, for the tolerance
    defer testing.allocator.free(n_add);
    @memset(n_add, 0);
    for (0..outer) |o| for (0..nidx) |j| {
        const k: usize = @intCast(if (idx[j] < 0) idx[j] + @as(i32, @intCast(axis_len)) else idx[j]);
        for (0..inner) |c| {
            const ti = (o * axis_len + k) * inner + c;
            const sv_: f64 = s.get((o * nidx + j) * inner + c);
            if (d == .f32) {
                want[ti] += sv_;
            } else {
                const r = dt.fromFloat(d, @as(f32, @floatCast(want[ti])) + @as(f32, @floatCast(sv_)));
                want[ti] = @floatCast(ew.load(d, 1, @as([*]const dt.Storage(d), @ptrCast(&r)))[0]);
            }
            n_add[ti] += 1;
        }
    };
    var a = gargs(d, .i32, outer, axis_len, inner, nidx, @ptrCast(t.data.ptr), @ptrCast(s.data.ptr), @ptrCast(idx.ptr));
    a.src_dtype = sd;
    const par = Parallel.testing();
    try testing.expectEqual(gather.ok, gather.indexAdd(vbits, &par, &a));
    for (want, n_add, 0..) |w, na, i| {
        const got = t.get(i);
        const tol: f64 = if (d == .f32) 1e-6 * (na + 1) * 2 else 0;
        if (!(@abs(got - w) <= tol)) {
            std.debug.print("indexAdd {t}<-{t} [{d},{d},{d}] nidx={d} at {d}: got {d} want {d}\n", .{ d, sd, outer, axis_len, inner, nidx, i, got, w });
            return error.TestUnexpectedResult;
        }
    }
    a.out = @ptrCast(t2.data.ptr);
    const rev = gt.reversed();
    try testing.expectEqual(gather.ok, gather.indexAdd(vbits, &rev, &a));
    try testing.expectEqualSlices(u8, std.mem.sliceAsBytes(t.data), std.mem.sliceAsBytes(t2.data));
}

test "indexAdd accumulates repeated indices in order, in f32, for every float pair" {
    const shapes = [_][4]usize{
        .{ 1, 10, 33, 7 }, // embedding gradient rows
        .{ 1, 6, 200, 300 }, // several column blocks per row
        .{ 3, 4, 1, 9 }, // last axis
        .{ 2, 5, 3, 4 }, // middle axis
        .{ 1, 3, 1, 1 },
    };
    try testing.expect(gather.columnBlock(200, 300) < 200);
    inline for (.{ DType.f32, DType.f16, DType.bf16 }) |d| {
        inline for (.{ DType.f32, DType.bf16 }) |sd| {
            for (shapes) |s| try checkIndexAdd(d, sd, s[0], s[1], s[2], s[3]);
        }
    }
}

test "empty index lists and empty rows do nothing" {
    const par = Parallel.testing();
    var x = [_]f32{ 1, 2 };
    var out = [_]f32{ 5, 5 };
    var idx = [_]u8{ 0, 7 };
    var a = gargs(.f32, .u8, 1, 2, 1, 0, @ptrCast(&out), @ptrCast(&x), @ptrCast(&idx));
    try testing.expectEqual(gather.ok, gather.take(&par, &a));
    try testing.expectEqual(gather.ok, gather.indexAdd(vbits, &par, &a));
    // inner = 0 still checks the indices.
    a.nidx = 2;
    a.inner = 0;
    try testing.expectEqual(gather.bad_index, gather.take(&par, &a));
    try testing.expectEqual(@as(i64, 7), a.fail_value);
    try testing.expectEqualSlices(f32, &.{ 5, 5 }, &out);
}
