//! Bodies of the Metal exports of zig/root.zig (device query, synchronisation, matmul on MPS), the
//! Metal side of copies, and the launches of the Metal kernels (metal/kernels.metal) for the GPU
//! exports of gpu/door.zig, which check the arguments and prepare the layouts for both backends.
//! The Metal device's memory is shared with the CPU (unified memory), so the engine may touch it
//! directly, but only once the work the shim has queued is done: every host read or write of
//! Metal memory here waits for the queue first.
const std = @import("std");
const strided = @import("../cpu/strided.zig");
const devices = @import("../devices.zig");
const metal = @import("metal.zig");
const cublas = @import("cublas.zig");
const cuda = @import("cuda.zig");
const math_door = @import("../door_math.zig");
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

// ---- the Metal kernels ------------------------------------------------------------------------
// Each launch fills the parameter record of its kernel (an extern struct laid out as the Metal
// struct of the same name in metal/kernels.metal: C layout rules, no vector members) and binds the
// tensors' addresses as buffers 1 ... The CUDA kernels' f64 arguments travel as f32 (Metal has no
// f64) and, for integer dtypes, as 64-bit integers.

const ConvertParams = extern struct { L: cuda.Layout, n: i64, out_dt: i32, in_dt: i32 };
const BinaryParams = extern struct { L: cuda.Layout, n: i64, op: i32, dt: i32, out_dt: i32, flags: i32, af: f32, bf: f32, ai: i64, bi: i64 };
const UnaryParams = extern struct { L: cuda.Layout, n: i64, op: i32, dt: i32, p0: f32, p1: f32, lo_cmp: i64, lo_val: i64, hi_cmp: i64, hi_val: i64, has_lo: i32, has_hi: i32 };
const WhereParams = extern struct { L: cuda.Layout, n: i64, dt: i32, flags: i32, af: f32, bf: f32, ai: i64, bi: i64 };
const ReduceParams = extern struct { L: cuda.Layout, kept: i64, nk: i64, nr: i64, op: i32, dt: i32, out_dt: i32, ddof: f32 };
const SoftmaxParams = extern struct { L: cuda.Layout, rows: i64, lg: i32, dt: i32 };
const NormParams = extern struct { L: cuda.Layout, rows: i64, kind: i32, dt: i32, wdt: i32, flags: i32, eps: f32 };
const TqQuantParams = extern struct { x_stride: i64, m: i64, k: i64, nb: i64, dt: i32, pad: i32 = 0 };
const TqParams = extern struct { n: i64, nb: i64, m: i64, gb: i64, fmt: i32, mode: i32 };

/// Threads of every threadgroup (the kernels' RB) and the most threadgroups an elementwise launch
/// spreads its grid-stride loop over.
const group_threads: u32 = 256;
const max_groups: usize = 4096;

/// The pipeline of kernel k, or the status of why there is none.
pub fn pipeline(k: metal.Kernel, op: []const u8) union(enum) { ok: *anyopaque, err: i32 } {
    if (!metal.present()) return .{ .err = fail(.device, "{s}: the Metal device is not present: {s}", .{ op, metal.reason() }) };
    const p = metal.pipeline(k) orelse return .{ .err = fail(.unsupported, "{s}: {s}", .{ op, metal.kernelError() }) };
    return .{ .ok = p };
}

fn launch(op: []const u8, p: *anyopaque, groups: usize, gy: usize, params: anytype, bufs: []const ?*const anyopaque) i32 {
    const gx: u32 = @intCast(@max(1, @min(groups, std.math.maxInt(u32))));
    if (metal.dispatch(p, gx, @intCast(@max(1, gy)), group_threads, params, bufs)) |st| {
        return fail(if (st == .out_of_memory) .out_of_memory else if (st == .invalid) .invalid_argument else .internal, "{s}: {s}", .{ op, metal.message() });
    }
    return ok();
}

fn elementGroups(n: usize) usize {
    return @min(max_groups, (n + group_threads - 1) / group_threads);
}

/// A scalar operand as a 64-bit integer (truncated, saturated, NaN 0) for integer dtypes.
fn toI64(v: f64) i64 {
    if (v != v) return 0;
    if (v >= 9.2233720368547758e18) return std.math.maxInt(i64);
    if (v <= -9.2233720368547758e18) return std.math.minInt(i64);
    return @intFromFloat(v);
}

fn toF32(v: f64) f32 {
    return @floatCast(v);
}

pub fn convert(p: *anyopaque, l: *const cuda.Layout, n: usize, out: ?*anyopaque, out_dtype: u32, in: ?*const anyopaque, in_dtype: u32) i32 {
    const rec: ConvertParams = .{ .L = l.*, .n = @intCast(n), .out_dt = @intCast(out_dtype), .in_dt = @intCast(in_dtype) };
    return launch("astype", p, elementGroups(n), 1, &rec, &.{ out, in });
}

pub fn binary(p: *anyopaque, l: *const cuda.Layout, n: usize, op_code: u32, dtype: u32, out: ?*anyopaque, out_dtype: u32, a: ?*const anyopaque, b: ?*const anyopaque, flags: u32, av: f64, bv: f64) i32 {
    const rec: BinaryParams = .{ .L = l.*, .n = @intCast(n), .op = @intCast(op_code), .dt = @intCast(dtype), .out_dt = @intCast(out_dtype), .flags = @intCast(flags), .af = toF32(av), .bf = toF32(bv), .ai = toI64(av), .bi = toI64(bv) };
    return launch("binary", p, elementGroups(n), 1, &rec, &.{ out, if (flags & 1 != 0) null else a, if (flags & 2 != 0) null else b });
}

pub fn unary(p: *anyopaque, l: *const cuda.Layout, n: usize, op_code: u32, dtype: u32, out: ?*anyopaque, in: ?*const anyopaque, p0: f64, p1: f64) i32 {
    // clip on integers: x < lo gives trunc(lo), x > hi gives trunc(hi) (as the CUDA kernel's
    // double arithmetic): for an integer x, x < lo is x < ceil(lo) and x > hi is x > floor(hi).
    const rec: UnaryParams = .{
        .L = l.*,
        .n = @intCast(n),
        .op = @intCast(op_code),
        .dt = @intCast(dtype),
        .p0 = toF32(p0),
        .p1 = toF32(p1),
        .lo_cmp = toI64(@ceil(p0)),
        .lo_val = toI64(p0),
        .hi_cmp = toI64(@floor(p1)),
        .hi_val = toI64(p1),
        .has_lo = @intFromBool(p0 == p0),
        .has_hi = @intFromBool(p1 == p1),
    };
    return launch("unary", p, elementGroups(n), 1, &rec, &.{ out, in });
}

pub fn where(p: *anyopaque, l: *const cuda.Layout, n: usize, dtype: u32, out: ?*anyopaque, cond: ?*const anyopaque, a: ?*const anyopaque, b: ?*const anyopaque, flags: u32, av: f64, bv: f64) i32 {
    const rec: WhereParams = .{ .L = l.*, .n = @intCast(n), .dt = @intCast(dtype), .flags = @intCast(flags), .af = toF32(av), .bf = toF32(bv), .ai = toI64(av), .bi = toI64(bv) };
    return launch("where", p, elementGroups(n), 1, &rec, &.{ out, cond, if (flags & 1 != 0) null else a, if (flags & 2 != 0) null else b });
}

pub fn reduce(p: *anyopaque, l: *const cuda.Layout, kept: u32, nk: usize, nr: usize, op_code: u32, in_dtype: u32, out: ?*anyopaque, out_dtype: u32, in: ?*const anyopaque, ddof: f64) i32 {
    const rec: ReduceParams = .{ .L = l.*, .kept = kept, .nk = @intCast(nk), .nr = @intCast(nr), .op = @intCast(op_code), .dt = @intCast(in_dtype), .out_dt = @intCast(out_dtype), .ddof = toF32(ddof) };
    return launch("reduce", p, @min(nk, 65535), 1, &rec, &.{ out, in });
}

pub fn softmax(p: *anyopaque, l: *const cuda.Layout, rows: usize, log: u32, dtype: u32, out: ?*anyopaque, in: ?*const anyopaque) i32 {
    const rec: SoftmaxParams = .{ .L = l.*, .rows = @intCast(rows), .lg = @intCast(log), .dt = @intCast(dtype) };
    return launch("softmax", p, @min(rows, 65535), 1, &rec, &.{ out, in });
}

pub fn norm(p: *anyopaque, l: *const cuda.Layout, rows: usize, kind: u32, dtype: u32, out: ?*anyopaque, in: ?*const anyopaque, weight: ?*const anyopaque, bias: ?*const anyopaque, wb_dtype: u32, eps: f64) i32 {
    const flags: i32 = @as(i32, @intFromBool(weight != null)) | @as(i32, @intFromBool(bias != null)) << 1;
    const rec: NormParams = .{ .L = l.*, .rows = @intCast(rows), .kind = @intCast(kind), .dt = @intCast(dtype), .wdt = @intCast(wb_dtype), .flags = flags, .eps = toF32(eps) };
    return launch("norm", p, @min(rows, 65535), 1, &rec, &.{ out, in, weight, bias });
}

/// The ternary matmul on Metal (arguments checked by gpu/door.zig): the activations quantized a
/// token a threadgroup into a workspace from the device's pool (q [m, nb·256] int8, s [m] f32),
/// then bn_tq_gemv, a simdgroup a weight row and four tokens a pass.
pub fn ternary(device: u32, c: math_door.TernaryCall, out: ?*anyopaque, x: ?*const anyopaque, x_dtype: u32, w: ?*const anyopaque, scales: ?*const anyopaque, scale_mode: u32) i32 {
    const op = "ternary_matmul";
    if (!metal.present()) return fail(.device, "{s}: the Metal device is not present: {s}", .{ op, metal.reason() });
    if (c.mm == 0 or c.nn == 0) return ok();
    const o = out orelse return fail(.invalid_argument, "{s}: null output", .{op});
    if (c.kk == 0) return zero(@ptrCast(o), c.mm * c.nn * 4) orelse ok();
    const xp = x orelse return fail(.invalid_argument, "{s}: null activations", .{op});
    const wp = w orelse return fail(.invalid_argument, "{s}: null weights", .{op});
    if ((c.mm + 3) / 4 > std.math.maxInt(u32) or (c.nn + 7) / 8 > std.math.maxInt(u32)) return fail(.shape, "{s}: {d} tokens of {d} rows exceed the Metal grid", .{ op, c.mm, c.nn });
    const qk = switch (pipeline(.tq_quantize, op)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    const gk = switch (pipeline(.tq_gemv, op)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    const nb = (c.kk + 255) / 256;
    const q_bytes = c.mm * nb * 256;
    const pool = devices.gpuPool(device).?;
    const ws = pool.alloc(q_bytes + c.mm * 4) catch return fail(.out_of_memory, "{s}: {d} bytes of workspace for {d} tokens were refused on metal", .{ op, q_bytes + c.mm * 4, c.mm });
    // Freed at once: later work runs after these kernels in queue order, and the host touches
    // the block again only after waiting for the queue.
    defer pool.free(ws) catch {};
    const q: ?*const anyopaque = @ptrCast(ws);
    const s: ?*const anyopaque = @ptrCast(ws + q_bytes);
    const qrec: TqQuantParams = .{ .x_stride = @intCast(c.xs), .m = @intCast(c.mm), .k = @intCast(c.kk), .nb = @intCast(nb), .dt = @intCast(x_dtype) };
    const st = launch(op, qk, @min(c.mm, 65535), 1, &qrec, &.{ xp, q, s });
    if (st != ok()) return st;
    const two_bit = c.f == .i2;
    const rec: TqParams = .{
        .n = @intCast(c.nn),
        .nb = @intCast(nb),
        .m = @intCast(c.mm),
        .gb = if (two_bit and scale_mode == 2) @intCast(c.g / 256) else 1,
        .fmt = if (two_bit) 2 else 0,
        .mode = if (two_bit) @intCast(scale_mode) else 3,
    };
    return launch(op, gk, (c.nn + 7) / 8, (c.mm + 3) / 4, &rec, &.{ wp, if (two_bit) scales else null, q, s, o });
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
