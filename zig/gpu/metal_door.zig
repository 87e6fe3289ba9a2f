//! Bodies of the Metal exports of zig/root.zig (device query, synchronisation, matmul on MPS) and
//! the Metal side of copies. The Metal device's memory is shared with the CPU (unified memory),
//! so the engine may touch it directly, but only once the work the shim has queued is done:
//! every host read or write of Metal memory here waits for the queue first.
const std = @import("std");
const strided = @import("../cpu/strided.zig");
const devices = @import("../devices.zig");
const metal = @import("metal.zig");
const cublas = @import("cublas.zig");
const door = @import("../door.zig");
const fail = door.fail;
const ok = door.ok;
const okMessage = door.okMessage;
const mailbox = door.mailbox;
const mb = door.mb;
const readLayout = door.readLayout;

/// with index < 0: info[0] = 1 when the Metal device is present, else 0 (the message says why),
/// info[1] = the engine's device index for it; with index 0: info[0..3] = recommended working
/// set bytes, largest buffer bytes, unified memory (1/0), and the message holds the device's name.
pub fn metal_info(index: i32) i32 {
    const m = mailbox();
    const here = metal.present();
    if (index < 0) {
        m.f[mb.info] = if (here) 1 else 0;
        m.f[mb.info + 1] = @floatFromInt(devices.metal_device);
        return okMessage("{s}", .{metal.reason()});
    }
    if (index != 0 or !here) return fail(.device, "metal:{d} is not present ({s})", .{ index, if (here) "one Metal device" else metal.reason() });
    const inf = metal.info();
    m.f[mb.info] = @floatFromInt(inf.recommended_working_set);
    m.f[mb.info + 1] = @floatFromInt(inf.max_buffer);
    m.f[mb.info + 2] = @floatFromInt(inf.unified);
    return okMessage("{s}", .{std.mem.sliceTo(&inf.name, 0)});
}

/// Waits for the Metal queue; a failed command buffer becomes `internal` with Metal's words.
pub fn synchronize(op: []const u8) ?i32 {
    if (!metal.present()) return fail(.device, "{s}: the Metal device is not present: {s}", .{ op, metal.reason() });
    if (metal.synchronize()) |_| return fail(.internal, "{s}: {s}", .{ op, metal.message() });
    return null;
}

pub fn metal_synchronize() i32 {
    return synchronize("synchronize") orelse ok();
}

/// Zero-fills a new block of Metal memory (after the queue: the block may have been freed by work
/// still queued).
pub fn zero(ptr: [*]u8, n: usize) ?i32 {
    if (synchronize("alloc")) |st| return st;
    @memset(ptr[0..n], 0);
    return null;
}

/// The engine device to hand a copy to once the Metal side is settled: the Metal device reads and
/// writes as host memory.
pub fn asHost(device: u32) u32 {
    return if (devices.isMetal(device)) 0 else device;
}

/// Copies with a Metal side wait for the Metal queue, then go as host copies (gpu/door.zig).
pub fn settleForCopy(dst_dev: u32, src_dev: u32) ?i32 {
    if (!devices.isMetal(dst_dev) and !devices.isMetal(src_dev)) return null;
    return synchronize("memcpy");
}

/// How MPS reads a row-major rows × cols matrix with element strides (s_row, s_col): stored as
/// is (trans false, ld = row stride) or as its transpose (trans true, ld = column stride). The
/// same question cuBLAS asks of the column-major transpose (cols × rows, strides swapped), so
/// cublas.zig's operandView answers it (a pure function: nothing of cuBLAS is opened).
const View = struct { trans: bool, ld: usize };

fn mpsView(rows: usize, cols: usize, s_row: i64, s_col: i64) ?View {
    const v = cublas.operandView(cols, rows, s_col, s_row) orelse return null;
    if (v.ld < 0) return null;
    return .{ .trans = v.op != cublas.op_n, .ld = @intCast(v.ld) };
}

/// bn_metal_matmul: the layout [batch..., M, N, K] with strides of out, a, b (as bn_cuda_matmul);
/// f32 or f16, written in the operands' dtype, one MPS product a batch item.
pub fn metal_matmul(device: u32, out: ?*anyopaque, out_dtype: u32, a: ?*const anyopaque, b: ?*const anyopaque, in_dtype: u32, ndim: u32) i32 {
    const op = "matmul";
    if (!devices.isMetal(device) or !metal.present()) return fail(.device, "{s}: engine device {d} is not a present Metal device ({s})", .{ op, device, metal.reason() });
    const dtype: u32 = switch (in_dtype) {
        0 => 0, // f32
        1 => 1, // f16
        else => return fail(.dtype, "{s}: products on metal take f32 or f16 operands (dtype code {d}); convert on the CPU first", .{ op, in_dtype }),
    };
    if (out_dtype != in_dtype) return fail(.dtype, "{s}: on metal the result has the operands' dtype (codes {d} and {d})", .{ op, in_dtype, out_dtype });
    if (ndim < 3) return fail(.shape, "{s}: a layout needs [batch..., M, N, K], got {d} axes", .{ op, ndim });
    var l: strided.Layout(3) = undefined;
    if (readLayout(3, op, ndim, &l)) |st| return st;
    const nb = ndim - 3;
    const M = l.shape[nb];
    const N = l.shape[nb + 1];
    const K = l.shape[nb + 2];
    var batch: usize = 1;
    for (l.shape[0..nb]) |d| batch *= d;
    if (batch * M * N == 0 or K == 0) return ok(); // K = 0: the caller zero-fills
    const cv = mpsView(M, N, l.strides[0][nb], l.strides[0][nb + 1]);
    if (cv == null or cv.?.trans) return fail(.invalid_argument, "{s}: the result must have unit column stride", .{op});
    const av = mpsView(M, K, l.strides[1][nb], l.strides[1][nb + 2]) orelse return fail(.invalid_argument, "{s}: A's matrices are neither row- nor column-contiguous (pass contiguous operands)", .{op});
    const bv = mpsView(K, N, l.strides[2][nb + 2], l.strides[2][nb + 1]) orelse return fail(.invalid_argument, "{s}: B's matrices are neither row- nor column-contiguous (pass contiguous operands)", .{op});
    for (0..nb) |d| inline for (0..3) |o| if (l.strides[o][d] < 0) return fail(.invalid_argument, "{s}: negative batch strides (pass contiguous operands)", .{op});
    const es: usize = if (dtype == 0) 4 else 2;
    const o_ptr = @intFromPtr(out orelse return fail(.invalid_argument, "{s}: null output", .{op}));
    const a_ptr = @intFromPtr(a orelse return fail(.invalid_argument, "{s}: null operand", .{op}));
    const b_ptr = @intFromPtr(b orelse return fail(.invalid_argument, "{s}: null operand", .{op}));
    // Odometer over the batch axes: one MPS product an item, queued in order.
    var idx: [strided.max_ndim]usize = @splat(0);
    for (0..batch) |_| {
        var off: [3]usize = .{ 0, 0, 0 };
        for (0..nb) |d| inline for (0..3) |o| {
            off[o] += idx[d] * @as(usize, @intCast(l.strides[o][d]));
        };
        if (metal.gemm(dtype, M, N, K, @ptrFromInt(a_ptr + off[1] * es), av.ld * es, av.trans, @ptrFromInt(b_ptr + off[2] * es), bv.ld * es, bv.trans, @ptrFromInt(o_ptr + off[0] * es), cv.?.ld * es)) |st| {
            return fail(if (st == .out_of_memory) .out_of_memory else if (st == .invalid) .invalid_argument else .internal, "{s}: {s}", .{ op, metal.message() });
        }
        var d = nb;
        while (d > 0) {
            d -= 1;
            idx[d] += 1;
            if (idx[d] < l.shape[d]) break;
            idx[d] = 0;
        }
    }
    return ok();
}

test "MPS operand views: row-major, transposed, vectors, and unreadable layouts" {
    try std.testing.expectEqual(View{ .trans = false, .ld = 5 }, mpsView(3, 4, 5, 1).?);
    try std.testing.expectEqual(View{ .trans = true, .ld = 3 }, mpsView(3, 4, 1, 3).?);
    try std.testing.expectEqual(View{ .trans = false, .ld = 4 }, mpsView(1, 4, 99, 1).?);
    try std.testing.expectEqual(View{ .trans = false, .ld = 1 }, mpsView(3, 1, 1, 7).?); // a column: rows of one
    try std.testing.expectEqual(View{ .trans = true, .ld = 3 }, mpsView(3, 2, 1, 3).?); // column-major 3 × 2
    try std.testing.expect(mpsView(3, 4, 8, 2) == null); // every other column
    try std.testing.expect(mpsView(3, 4, -4, 1) == null); // reversed rows
    try std.testing.expect(mpsView(3, 4, 3, 1) == null); // overlapping rows
}
