//! Bodies of the CUDA exports of zig/root.zig (which keeps the signatures and their
//! documentation): device queries, copies and the NVRTC kernels' launches. Layouts are read
//! from the mailbox exactly as the CPU exports read them.
const std = @import("std");
const strided = @import("../cpu/strided.zig");
const args_mod = @import("../cpu/args.zig");
const devices = @import("../devices.zig");
const cuda = @import("cuda.zig");
const cublas = @import("cublas.zig");
const metal_door = @import("metal_door.zig");
const metal = @import("metal.zig");
const door = @import("../door.zig");
const math_door = @import("../door_math.zig");
const fail = door.fail;
const ok = door.ok;
const okMessage = door.okMessage;
const mailbox = door.mailbox;
const mb = door.mb;
const count = door.count;
const dtypeArg = door.dtypeArg;
const readLayout = door.readLayout;
const isTensorFloat = door.isTensorFloat;
const getEngine = door.getEngine;

/// The CUDA kernel `k` of engine device `device` and its index, or an error status (Metal devices
/// take kernelFor's branch, never this one).
pub fn cudaKernel(device: u32, k: cuda.Kernel, op: []const u8) union(enum) { ok: struct { i: usize, f: *anyopaque }, err: i32 } {
    const i = devices.cudaIndex(device) orelse return .{ .err = fail(.device, "{s}: device index {d} is not a CUDA device", .{ op, device }) };
    if (i >= cuda.deviceCount()) return .{ .err = fail(.device, "{s}: cuda:{d} is not present", .{ op, i }) };
    const f = cuda.function(i, k) orelse return .{ .err = fail(.unsupported, "{s}: the CUDA kernels could not be built: {s}", .{ op, cuda.kernelError() }) };
    return .{ .ok = .{ .i = i, .f = f } };
}

/// The kernels' layout descriptor from a checked strided layout (axes merged first; at most 8).
pub fn cudaLayout(comptime k: usize, l: *strided.Layout(k), op: []const u8, out: *cuda.Layout) ?i32 {
    l.coalesce();
    if (l.ndim > 8) return fail(.shape, "{s}: {d} dimensions that cannot be merged (CUDA kernels take at most 8)", .{ op, l.ndim });
    out.* = std.mem.zeroes(cuda.Layout);
    out.ndim = @intCast(l.ndim);
    for (0..l.ndim) |d| {
        out.shape[d] = @intCast(l.shape[d]);
        inline for (0..k) |o| out.st[o][d] = l.strides[o][d];
    }
    return null;
}

pub fn cudaDType(code: u32, op: []const u8) ?i32 {
    const d = dtypeArg(code) orelse return fail(.dtype, "{s}: unknown dtype code {d}", .{ op, code });
    if (d == .f64) return fail(.dtype, "{s}: f64 is not a tensor dtype", .{op});
    return null;
}

/// A row layout for the CUDA row kernels: the axis they run along stays last (no merging).
pub fn cudaRowLayout(l: *const strided.Layout(2), op: []const u8, out: *cuda.Layout, rows: *usize) ?i32 {
    if (l.ndim == 0 or l.ndim > 8) return fail(.shape, "{s}: {d} dimensions (CUDA row kernels take 1 to 8)", .{ op, l.ndim });
    out.* = std.mem.zeroes(cuda.Layout);
    out.ndim = @intCast(l.ndim);
    rows.* = 1;
    for (0..l.ndim) |d| {
        out.shape[d] = @intCast(l.shape[d]);
        out.st[0][d] = l.strides[0][d];
        out.st[1][d] = l.strides[1][d];
        if (d + 1 < l.ndim) rows.* *= l.shape[d];
    }
    return null;
}

pub fn cuda_info(index: i32) i32 {
    const m = mailbox();
    if (index < 0) {
        m.f[mb.info] = @floatFromInt(cuda.deviceCount());
        m.f[mb.info + 1] = @floatFromInt(cuda.driverVersion());
        return okMessage("{s}", .{cuda.absenceReason()});
    }
    const i: usize = @intCast(index);
    const inf = cuda.info(i) orelse return fail(.device, "cuda:{d} is not present ({d} CUDA devices)", .{ i, cuda.deviceCount() });
    var free: usize = 0;
    var total: usize = 0;
    if (cuda.memInfo(i, &free, &total)) |f| return fail(.device, "cuda:{d}: cuMemGetInfo failed: {s}", .{ i, cuda.errorName(f.code) });
    const rec = [_]f64{
        @floatFromInt(inf.cc_major),   @floatFromInt(inf.cc_minor),      @floatFromInt(inf.sm_count),
        @floatFromInt(inf.l2_bytes),   @floatFromInt(inf.clock_khz),     @floatFromInt(inf.mem_bus_bits),
        @floatFromInt(inf.mem_clock_khz), @floatFromInt(inf.total_mem), @floatFromInt(free),
        @floatFromInt(cuda.kernel_origin[i]),
    };
    @memcpy(m.f[mb.info..][0..rec.len], &rec);
    return okMessage("{s}", .{inf.name[0..inf.name_len]});
}

pub fn memcpy(dst_dev: u32, dst: ?*anyopaque, src_dev: u32, src: ?*const anyopaque, nbytes: f64) i32 {
    const n = count(nbytes) orelse return fail(.invalid_argument, "memcpy: invalid byte count {d}", .{nbytes});
    if (n == 0) return ok();
    const d = dst orelse return fail(.invalid_argument, "memcpy: null destination", .{});
    const s = src orelse return fail(.invalid_argument, "memcpy: null source", .{});
    // The Metal device's memory is host memory once its queue is done (unified memory).
    if (metal_door.settleForCopy(dst_dev, src_dev)) |st| return st;
    const di = devices.cudaIndex(metal_door.asHost(dst_dev));
    const si = devices.cudaIndex(metal_door.asHost(src_dev));
    if ((metal_door.asHost(dst_dev) != 0 and di == null) or (metal_door.asHost(src_dev) != 0 and si == null)) return fail(.device, "memcpy: unknown device index {d} or {d}", .{ dst_dev, src_dev });
    if ((di != null and di.? >= cuda.deviceCount()) or (si != null and si.? >= cuda.deviceCount())) return fail(.device, "memcpy: cuda device not present", .{});
    const staged = n >= staged_min;
    const r: ?cuda.Failure = if (di == null and si == null) blk: {
        @memcpy(@as([*]u8, @ptrCast(d))[0..n], @as([*]const u8, @ptrCast(s))[0..n]);
        break :blk null;
    } else if (si == null)
        (if (staged) stagedHtoD(di.?, @intFromPtr(d), @ptrCast(s), n) else cuda.copyHtoD(di.?, @intFromPtr(d), s, n))
    else if (di == null)
        (if (staged) stagedDtoH(si.?, @ptrCast(d), @intFromPtr(s), n) else cuda.copyDtoH(si.?, d, @intFromPtr(s), n))
    else
        cuda.copyDtoD(di.?, @intFromPtr(d), si.?, @intFromPtr(s), n);
    if (r) |f| return fail(if (f.code == 2) .out_of_memory else .internal, "memcpy: {d} bytes from device {d} to device {d}: {s}", .{ n, src_dev, dst_dev, cuda.errorName(f.code) });
    return ok();
}

/// How a kernel is launched: a grid-stride loop over n elements, n blocks of 256 threads (row and
/// reduction kernels), or an explicit grid.
const Grid = union(enum) { elements: usize, blocks: usize, grid: struct { x: usize, y: usize, threads: u32, shared: u32 = 0, dependent: bool = false } };

/// Launches kernel f of device i with the argument values `args` (a tuple of the kernel's C
/// types, in order); a launch failure becomes a status naming the op and the CUDA error.
fn launchWith(op: []const u8, i: usize, f: *anyopaque, grid: Grid, args: anytype) i32 {
    var vals = args;
    const len = @typeInfo(@TypeOf(args)).@"struct".field_names.len;
    var params: [len]?*anyopaque = undefined;
    inline for (0..len) |j| params[j] = @ptrCast(@constCast(&vals[j]));
    const r = switch (grid) {
        .elements => |n| cuda.launch(i, f, n, &params),
        .blocks => |n| cuda.launchBlocks(i, f, n, &params),
        .grid => |g| if (g.dependent) cuda.launchGridDependent(i, f, g.x, g.y, g.threads, g.shared, &params) else cuda.launchGrid(i, f, g.x, g.y, g.threads, g.shared, &params),
    };
    if (r) |e| return fail(if (e.code == 2) .out_of_memory else .internal, "{s}: kernel launch on cuda:{d} failed: {s}", .{ op, i, cuda.errorName(e.code) });
    return ok();
}

/// What the elementwise and row exports share once their arguments are checked: the kernels'
/// layout, the element (or row) count, and the kernel: a CUDA function with its device, or the
/// Metal pipeline of the same name (metal/kernels.metal mirrors the CUDA kernels).
const Prepared = struct { cl: cuda.Layout, n: usize, k: Launch };
const Launch = union(enum) { cuda: struct { i: usize, f: *anyopaque }, metal: *anyopaque };

/// Reads the k-operand layout from the mailbox, merges it (elementwise) or keeps its last axis
/// (rows), and finds kernel `kern` on the tensor's device. `.done` is the status to return at
/// once: an error, or ok for an empty result.
fn prepare(comptime k: usize, comptime rows: bool, device: u32, kern: cuda.Kernel, op: []const u8, ndim: u32) union(enum) { run: Prepared, done: i32 } {
    var l: strided.Layout(k) = undefined;
    if (readLayout(k, op, ndim, &l)) |st| return .{ .done = st };
    if (l.size() == 0) return .{ .done = ok() };
    var p: Prepared = undefined;
    if (rows) {
        if (cudaRowLayout(&l, op, &p.cl, &p.n)) |st| return .{ .done = st };
    } else {
        p.n = l.size();
        if (cudaLayout(k, &l, op, &p.cl)) |st| return .{ .done = st };
    }
    p.k = switch (kernelFor(device, kern, op)) {
        .ok => |v| v,
        .err => |e| return .{ .done = e },
    };
    return .{ .run = p };
}

/// Kernel `kern` on engine device `device`: CUDA's, or Metal's pipeline of the same name.
fn kernelFor(device: u32, kern: cuda.Kernel, op: []const u8) union(enum) { ok: Launch, err: i32 } {
    if (devices.isMetal(device)) {
        const mk = std.meta.stringToEnum(metal.Kernel, @tagName(kern)) orelse return .{ .err = noMetalKernel(op) };
        return switch (metal_door.pipeline(mk, op)) {
            .ok => |pl| .{ .ok = .{ .metal = pl } },
            .err => |e| .{ .err = e },
        };
    }
    return switch (cudaKernel(device, kern, op)) {
        .ok => |v| .{ .ok = .{ .cuda = .{ .i = v.i, .f = v.f } } },
        .err => |e| .{ .err = e },
    };
}

fn int(x: anytype) c_int {
    return @intCast(x);
}

fn long(x: usize) i64 {
    return @intCast(x);
}

pub fn gpu_convert(device: u32, out: ?*anyopaque, out_dtype: u32, in: ?*const anyopaque, in_dtype: u32, ndim: u32) i32 {
    const op = "astype";
    if (cudaDType(out_dtype, op) orelse cudaDType(in_dtype, op)) |st| return st;
    const p = switch (prepare(2, false, device, .convert, op, ndim)) {
        .run => |v| v,
        .done => |st| return st,
    };
    return switch (p.k) {
        .cuda => |c| launchWith(op, c.i, c.f, .{ .elements = p.n }, .{ p.cl, long(p.n), out, int(out_dtype), in, int(in_dtype) }),
        .metal => |pl| metal_door.convert(pl, &p.cl, p.n, out, out_dtype, in, in_dtype),
    };
}

pub fn gpu_binary(device: u32, op_code: u32, dtype: u32, out: ?*anyopaque, out_dtype: u32, a: ?*const anyopaque, b: ?*const anyopaque, flags: u32, av: f64, bv: f64, ndim: u32) i32 {
    const op = "binary";
    if (cudaDType(dtype, op) orelse cudaDType(out_dtype, op)) |st| return st;
    if (op_code > 12) return fail(.invalid_argument, "{s}: unknown op code {d}", .{ op, op_code });
    const p = switch (prepare(3, false, device, .binary, op, ndim)) {
        .run => |v| v,
        .done => |st| return st,
    };
    return switch (p.k) {
        .cuda => |c| launchWith(op, c.i, c.f, .{ .elements = p.n }, .{ p.cl, long(p.n), int(op_code), int(dtype), out, int(out_dtype), a, b, int(flags), av, bv }),
        .metal => |pl| metal_door.binary(pl, &p.cl, p.n, op_code, dtype, out, out_dtype, a, b, flags, av, bv),
    };
}

pub fn gpu_unary(device: u32, op_code: u32, dtype: u32, out: ?*anyopaque, in: ?*const anyopaque, p0: f64, p1: f64, ndim: u32) i32 {
    const op = "unary";
    if (cudaDType(dtype, op)) |st| return st;
    if (op_code > 25) return fail(.invalid_argument, "{s}: unknown op code {d}", .{ op, op_code });
    const p = switch (prepare(2, false, device, .unary, op, ndim)) {
        .run => |v| v,
        .done => |st| return st,
    };
    return switch (p.k) {
        .cuda => |c| launchWith(op, c.i, c.f, .{ .elements = p.n }, .{ p.cl, long(p.n), int(op_code), int(dtype), out, in, p0, p1 }),
        .metal => |pl| metal_door.unary(pl, &p.cl, p.n, op_code, dtype, out, in, p0, p1),
    };
}

pub fn gpu_where(device: u32, dtype: u32, out: ?*anyopaque, cond: ?*const anyopaque, a: ?*const anyopaque, b: ?*const anyopaque, flags: u32, av: f64, bv: f64, ndim: u32) i32 {
    const op = "where";
    if (cudaDType(dtype, op)) |st| return st;
    const p = switch (prepare(4, false, device, .where, op, ndim)) {
        .run => |v| v,
        .done => |st| return st,
    };
    return switch (p.k) {
        .cuda => |c| launchWith(op, c.i, c.f, .{ .elements = p.n }, .{ p.cl, long(p.n), int(dtype), out, cond, a, b, int(flags), av, bv }),
        .metal => |pl| metal_door.where(pl, &p.cl, p.n, dtype, out, cond, a, b, flags, av, bv),
    };
}

pub fn gpu_reduce(device: u32, op_code: u32, out: ?*anyopaque, out_dtype: u32, in: ?*const anyopaque, in_dtype: u32, kept: u32, ndim: u32, ddof: f64) i32 {
    const op = "reduce";
    if (cudaDType(out_dtype, op) orelse cudaDType(in_dtype, op)) |st| return st;
    if (op_code > 9) return fail(.invalid_argument, "{s}: unknown op code {d}", .{ op, op_code });
    if (kept > ndim) return fail(.invalid_argument, "{s}: {d} kept axes of {d}", .{ op, kept, ndim });
    var l: strided.Layout(2) = undefined;
    if (readLayout(2, op, ndim, &l)) |st| return st;
    if (ndim > 8) return fail(.shape, "{s}: {d} dimensions (CUDA kernels take at most 8)", .{ op, ndim });
    var nk: usize = 1;
    for (l.shape[0..kept]) |d| nk *= d;
    var nr: usize = 1;
    for (l.shape[kept..ndim]) |d| nr *= d;
    if (nk == 0) return ok();
    // Kept axes first, reduced axes after: no merging across the boundary.
    var cl: cuda.Layout = std.mem.zeroes(cuda.Layout);
    cl.ndim = @intCast(ndim);
    for (0..ndim) |d| {
        cl.shape[d] = @intCast(l.shape[d]);
        cl.st[0][d] = l.strides[0][d];
        cl.st[1][d] = l.strides[1][d];
    }
    return switch (kernelFor(device, .reduce, op)) {
        .err => |e| e,
        .ok => |kl| switch (kl) {
            .cuda => |c| launchWith(op, c.i, c.f, .{ .blocks = nk }, .{ cl, long(kept), long(nk), long(nr), int(op_code), int(in_dtype), out, int(out_dtype), in, ddof }),
            .metal => |pl| metal_door.reduce(pl, &cl, kept, nk, nr, op_code, in_dtype, out, out_dtype, in, ddof),
        },
    };
}

pub fn gpu_softmax(device: u32, out: ?*anyopaque, in: ?*const anyopaque, dtype: u32, log: u32, ndim: u32) i32 {
    const op = "softmax";
    if (dtype > 2) return fail(.dtype, "{s}: float tensors only (dtype code {d})", .{ op, dtype }); // nn.cu bn_softmax: loadf
    const p = switch (prepare(2, true, device, .softmax, op, ndim)) {
        .run => |v| v,
        .done => |st| return st,
    };
    return switch (p.k) {
        .cuda => |c| launchWith(op, c.i, c.f, .{ .blocks = p.n }, .{ p.cl, long(p.n), int(log), int(dtype), out, in }),
        .metal => |pl| metal_door.softmax(pl, &p.cl, p.n, log, dtype, out, in),
    };
}

pub fn gpu_norm(device: u32, kind: u32, out: ?*anyopaque, in: ?*const anyopaque, dtype: u32, weight: ?*const anyopaque, bias: ?*const anyopaque, wb_dtype: u32, eps: f64, ndim: u32) i32 {
    const op = "norm";
    if (kind > 1) return fail(.invalid_argument, "{s}: unknown kind {d}", .{ op, kind });
    if (cudaDType(dtype, op) orelse cudaDType(wb_dtype, op)) |st| return st;
    const p = switch (prepare(2, true, device, .norm, op, ndim)) {
        .run => |v| v,
        .done => |st| return st,
    };
    return switch (p.k) {
        .cuda => |c| launchWith(op, c.i, c.f, .{ .blocks = p.n }, .{ p.cl, long(p.n), int(kind), int(dtype), out, in, weight, bias, int(wb_dtype), eps }),
        .metal => |pl| metal_door.norm(pl, &p.cl, p.n, kind, dtype, out, in, weight, bias, wb_dtype, eps),
    };
}

pub fn cuda_synchronize(device: u32) i32 {
    const i = devices.cudaIndex(device) orelse return fail(.device, "synchronize: device index {d} is not a CUDA device", .{device});
    if (i >= cuda.deviceCount()) return fail(.device, "synchronize: cuda:{d} is not present", .{i});
    if (cuda.synchronize(i)) |e| return fail(.internal, "synchronize: cuda:{d}: {s}", .{ i, cuda.errorName(e.code) });
    return ok();
}

// ---- large host transfers: pinned staging, CPU copies on the engine's threads -------------------

/// Copies from this size up go through the staging buffers (smaller ones: the driver's copy).
const staged_min: usize = 4 * 1024 * 1024;

/// A host memcpy split over the engine's threads (256 KiB a task).
fn parallelCopy(dst: [*]u8, src: [*]const u8, n: usize) void {
    const piece: usize = 256 * 1024;
    const Ctx = struct {
        dst: [*]u8,
        src: [*]const u8,
        n: usize,
        fn task(c: *const @This(), b: usize, e: usize) void {
            const lo = b * piece;
            const hi = @min(e * piece, c.n);
            @memcpy(c.dst[lo..hi], c.src[lo..hi]);
        }
    };
    const ctx: Ctx = .{ .dst = dst, .src = src, .n = n };
    getEngine().par.run((n + piece - 1) / piece, 1, &ctx, Ctx.task);
}

/// Host (pageable) → device i through the staging buffers: while the DMA engine reads one buffer
/// the CPU fills the other. Returns once the last chunk is queued (the source may be reused at
/// once; the copy completes in stream order before any later kernel or copy).
fn stagedHtoD(i: usize, dst: u64, src: [*]const u8, n: usize) ?cuda.Failure {
    const st = cuda.staging(i) orelse return cuda.copyHtoD(i, dst, src, n);
    st.lock.lock();
    defer st.lock.unlock();
    var off: usize = 0;
    var b: usize = 0;
    while (off < n) : (b ^= 1) {
        const len = @min(cuda.Staging.chunk, n - off);
        if (st.busy[b]) if (cuda.eventSync(st.ev[b])) |f| return f;
        parallelCopy(st.buf[b], src + off, len);
        if (cuda.copyHtoDAsync(i, dst + off, st.buf[b], len)) |f| return f;
        if (cuda.eventRecord(st.ev[b])) |f| return f;
        st.busy[b] = true;
        off += len;
    }
    return null;
}

/// Device i → host (pageable) through the staging buffers: the DMA engine fills one buffer while
/// the CPU empties the other. Returns when every byte has arrived.
fn stagedDtoH(i: usize, dst: [*]u8, src: u64, n: usize) ?cuda.Failure {
    const st = cuda.staging(i) orelse return cuda.copyDtoH(i, dst, src, n);
    st.lock.lock();
    defer st.lock.unlock();
    // Earlier host→device chunks may still be reading the buffers.
    for (0..2) |b| if (st.busy[b]) {
        if (cuda.eventSync(st.ev[b])) |f| return f;
        st.busy[b] = false;
    };
    const chunks = (n + cuda.Staging.chunk - 1) / cuda.Staging.chunk;
    // Queue chunk 0, then for each chunk: queue the next into the other buffer, wait for this one,
    // copy it out.
    if (queueDtoH(i, st, 0, src, n)) |f| return f;
    for (0..chunks) |c| {
        const b = c & 1;
        if (c + 1 < chunks) if (queueDtoH(i, st, c + 1, src, n)) |f| return f;
        if (cuda.eventSync(st.ev[b])) |f| return f;
        st.busy[b] = false;
        const off = c * cuda.Staging.chunk;
        parallelCopy(dst + off, st.buf[b], @min(cuda.Staging.chunk, n - off));
    }
    return null;
}

fn queueDtoH(i: usize, st: *cuda.Staging, c: usize, src: u64, n: usize) ?cuda.Failure {
    const b = c & 1;
    const off = c * cuda.Staging.chunk;
    if (cuda.copyDtoHAsync(i, st.buf[b], src + off, @min(cuda.Staging.chunk, n - off))) |f| return f;
    if (cuda.eventRecord(st.ev[b])) |f| return f;
    st.busy[b] = true;
    return null;
}

/// An op whose kernel exists for CUDA only (the Metal kernels: metal/kernels.metal).
fn noMetalKernel(op: []const u8) i32 {
    return fail(.device, "{s}: no Metal kernel for this op; move the tensor with toCpu()", .{op});
}

/// The CUDA device index of engine device `device`, or an error status.
fn gpuIndex(device: u32, op: []const u8) union(enum) { ok: usize, err: i32 } {
    if (devices.isMetal(device)) return .{ .err = noMetalKernel(op) };
    const i = devices.cudaIndex(device) orelse return .{ .err = fail(.device, "{s}: device index {d} is not a CUDA device", .{ op, device }) };
    if (i >= cuda.deviceCount()) return .{ .err = fail(.device, "{s}: cuda:{d} is not present", .{ op, i }) };
    return .{ .ok = i };
}

const max_int: usize = std.math.maxInt(c_int);

pub fn cuda_matmul(device: u32, out: ?*anyopaque, out_dtype: u32, a: ?*const anyopaque, b: ?*const anyopaque, in_dtype: u32, ndim: u32) i32 {
    const op = "matmul";
    const ty = cublas.dataType(in_dtype) orelse return fail(.dtype, "{s}: products on cuda take f32, f16 or bf16 operands (dtype code {d})", .{ op, in_dtype });
    if (out_dtype != in_dtype) return fail(.dtype, "{s}: on cuda the result has the operands' dtype (codes {d} and {d})", .{ op, in_dtype, out_dtype });
    if (ndim < 3) return fail(.shape, "{s}: a layout needs [batch..., M, N, K], got {d} axes", .{ op, ndim });
    var l: strided.Layout(3) = undefined;
    if (readLayout(3, op, ndim, &l)) |st| return st;
    const i = switch (gpuIndex(device, op)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    const nb = ndim - 3;
    const M = l.shape[nb];
    const N = l.shape[nb + 1];
    const K = l.shape[nb + 2];
    var batch: usize = 1;
    for (l.shape[0..nb]) |d| batch *= d;
    // K = 0: the caller zero-fills the result (cuBLAS is not asked to).
    if (batch * M * N == 0 or K == 0) return ok();
    if (M > max_int or N > max_int or K > max_int) return fail(.shape, "{s}: {d}x{d}x{d} exceeds cuBLAS's 32-bit dimensions", .{ op, M, N, K });
    // Row-major C = A·B as column-major Cᵀ = Bᵀ·Aᵀ: cuBLAS's A is Bᵀ (N × K), its B is Aᵀ (K × M).
    const cv = cublas.operandView(N, M, l.strides[0][nb + 1], l.strides[0][nb]);
    const av = cublas.operandView(N, K, l.strides[2][nb + 1], l.strides[2][nb + 2]);
    const bv = cublas.operandView(K, M, l.strides[1][nb + 2], l.strides[1][nb]);
    if (cv == null or cv.?.op != cublas.op_n) return fail(.invalid_argument, "{s}: the result must have unit column stride", .{op});
    if (av == null or bv == null) return fail(.invalid_argument, "{s}: an operand's matrices are neither row- nor column-contiguous (pass contiguous operands)", .{op});
    if (av.?.ld > max_int or bv.?.ld > max_int or cv.?.ld > max_int) return fail(.shape, "{s}: a leading dimension exceeds cuBLAS's 32-bit range", .{op});
    // Batch axes: drop size-1 axes, merge those every operand walks evenly; the last becomes
    // cuBLAS's batch, the others are looped here.
    var bs: [strided.max_ndim]usize = undefined;
    var bst: [3][strided.max_ndim]i64 = undefined;
    var nbat: usize = 0;
    for (0..nb) |d| {
        if (l.shape[d] == 1) continue;
        if (nbat > 0 and l.strides[0][d] * @as(i64, @intCast(l.shape[d])) == bst[0][nbat - 1] and l.strides[1][d] * @as(i64, @intCast(l.shape[d])) == bst[1][nbat - 1] and l.strides[2][d] * @as(i64, @intCast(l.shape[d])) == bst[2][nbat - 1]) {
            bs[nbat - 1] *= l.shape[d];
            inline for (0..3) |o| bst[o][nbat - 1] = l.strides[o][d];
            continue;
        }
        bs[nbat] = l.shape[d];
        inline for (0..3) |o| bst[o][nbat] = l.strides[o][d];
        nbat += 1;
    }
    for (0..nbat) |d| inline for (0..3) |o| if (bst[o][d] < 0) return fail(.invalid_argument, "{s}: negative batch strides (pass contiguous operands)", .{op});
    const inner: usize = if (nbat > 0) bs[nbat - 1] else 1;
    if (inner > max_int) return fail(.shape, "{s}: a batch of {d} exceeds cuBLAS's 32-bit count", .{ op, inner });
    const hd = cublas.handle(i) orelse return fail(.unsupported, "{s}: cuBLAS is not usable on cuda:{d}: {s}", .{ op, i, cublas.why() });
    const g: cublas.Gemm = .{
        .m = @intCast(N),
        .n = @intCast(M),
        .k = @intCast(K),
        .a = av.?,
        .b = bv.?,
        .ldc = cv.?.ld,
        .stride_a = if (nbat > 0) bst[2][nbat - 1] else 0,
        .stride_b = if (nbat > 0) bst[1][nbat - 1] else 0,
        .stride_c = if (nbat > 0) bst[0][nbat - 1] else 0,
        .batch = @intCast(inner),
        .in_type = ty,
        .out_type = ty,
    };
    const esize: i64 = if (in_dtype == 0) 4 else 2;
    const o_ptr: i64 = @intCast(@intFromPtr(out orelse return fail(.invalid_argument, "{s}: null output", .{op})));
    const a_ptr: i64 = @intCast(@intFromPtr(a orelse return fail(.invalid_argument, "{s}: null operand", .{op})));
    const b_ptr: i64 = @intCast(@intFromPtr(b orelse return fail(.invalid_argument, "{s}: null operand", .{op})));
    if (cuda.makeCurrent(i)) |f| return fail(.internal, "{s}: cuda:{d}: {s}", .{ op, i, cuda.errorName(f.code) });
    // Odometer over the outer batch axes.
    var idx: [strided.max_ndim]usize = @splat(0);
    const outer = batch / inner;
    for (0..outer) |_| {
        var off: [3]i64 = .{ 0, 0, 0 };
        for (0..nbat -| 1) |d| inline for (0..3) |o| {
            off[o] += @as(i64, @intCast(idx[d])) * bst[o][d];
        };
        // cuBLAS's A is our B (operand 2), its B our A (operand 1), its C our out (operand 0).
        if (cublas.gemm(i, hd, g, @intCast(b_ptr + off[2] * esize), @intCast(a_ptr + off[1] * esize), @intCast(o_ptr + off[0] * esize))) |r| {
            return fail(if (r == 3) .out_of_memory else .internal, "{s}: cublasGemmStridedBatchedEx on cuda:{d} failed: {s}", .{ op, i, cublas.statusName(r) });
        }
        var d = nbat -| 1;
        while (d > 0) {
            d -= 1;
            idx[d] += 1;
            if (idx[d] < bs[d]) break;
            idx[d] = 0;
        }
    }
    return ok();
}

pub fn gpu_ternary_matmul(device: u32, out: ?*anyopaque, x: ?*const anyopaque, x_dtype: u32, w: ?*const anyopaque, scales: ?*const anyopaque, format: u32, scale_mode: u32, m: f64, n: f64, k: f64, x_stride: f64, group: f64) i32 {
    const op = "ternary_matmul";
    const c = switch (math_door.ternaryCall(op, x_dtype, scales, format, scale_mode, m, n, k, x_stride, group)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    const f = c.f;
    if (f == .tq1_0) return fail(.unsupported, "{s}: tq1_0 weights do not run on {s} (convert them with toFormat(\"tq2_0\") or toFormat(\"i2\"))", .{ op, if (devices.isMetal(device)) "metal" else "cuda" });
    if (devices.isMetal(device)) return metal_door.ternary(device, c, out, x, x_dtype, w, scales, scale_mode);
    const mm = c.mm;
    const nn = c.nn;
    const kk = c.kk;
    const xs = c.xs;
    const g = c.g;
    if (nn > max_int * 8) return fail(.shape, "{s}: {d} weight rows exceed the grid", .{ op, nn });
    if (mm == 0 or nn == 0) return ok();
    const o = out orelse return fail(.invalid_argument, "{s}: null output", .{op});
    const i = switch (gpuIndex(device, op)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    if (kk == 0) {
        if (cuda.memset(i, @intFromPtr(o), 0, mm * nn * 4)) |e| return fail(.internal, "{s}: cuMemsetD8 on cuda:{d} failed: {s}", .{ op, i, cuda.errorName(e.code) });
        return ok();
    }
    const nb = (kk + 255) / 256;
    const row_bytes = (nb + 7) / 8 * 2048; // ternary.cu tq_row_bytes
    const dev_info = cuda.info(i).?;
    const xp = x orelse return fail(.invalid_argument, "{s}: null activations", .{op});
    const wp = w orelse return fail(.invalid_argument, "{s}: null weights", .{op});
    const fmt: c_int = if (f == .i2) 2 else 0;
    const mode: c_int = if (f == .i2) int(scale_mode) else 3;
    const gb: i64 = if (f == .i2 and scale_mode == 2) long(g / 256) else 1;
    // Several tokens on the tensor cores (ternary.cu bn_tq_mma) from sm_80 on; dp4a before.
    const tensor = dev_info.cc_major >= 8 and tq_path != 1 and mm > 1;
    if (mm == 1 and row_bytes + row_bytes / 16 <= 48 * 1024 and tq_path != 2) {
        // One token: one launch that quantizes in shared memory (ternary.cu bn_tq_gemv1) with its
        // first weights already in flight (a programmatic dependent launch on sm_90: they load
        // while the previous kernel drains), one block of 16 warps an SM, each a contiguous range
        // of rows (a multiple of 64: 16 warps × 4 rows). On the H100 (bench/gpu_ternary_shapes.ts)
        // 8192² takes 7.0 µs a call against 16.5 through the two kernels, 8192 × 32768 33.2
        // against 42.6, 32768 × 8192 the same 33.3.
        const gf = switch (cudaKernel(device, .tq_gemv1, op)) {
            .ok => |v| v,
            .err => |e| return e,
        };
        const want = @max(1, @min(cuda.smCount(i), (nn + 63) / 64));
        const per = ((nn + want - 1) / want + 63) / 64 * 64;
        const grid: Grid = .{ .grid = .{ .x = (nn + per - 1) / per, .y = 1, .threads = 512, .shared = @intCast(row_bytes + row_bytes / 16), .dependent = true } };
        return launchWith(op, i, gf.f, grid, .{ xp, int(x_dtype), wp, scales, fmt, mode, gb, long(nn), long(nb), long(kk), long(per), o });
    }
    const qf = switch (cudaKernel(device, .tq_quantize, op)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    // Workspace from the device's pool: q [m, row] i8 (piece order; rows padded to whole runs of
    // 8 blocks, ternary.cu tq_row_bytes), s [m] f32, and for the tensor cores each token's Σq
    // [m] i32. Returned at once: later work on the same (default) stream runs after these kernels.
    const q_bytes = mm * row_bytes;
    const ws_bytes = q_bytes + mm * @as(usize, if (tensor) 8 else 4);
    const pool = devices.gpuPool(device).?;
    const ws = pool.alloc(ws_bytes) catch return fail(.out_of_memory, "{s}: {d} bytes of workspace for {d} tokens were refused on cuda:{d}", .{ op, ws_bytes, mm, i });
    defer pool.free(ws) catch {};
    const qp: u64 = @intFromPtr(ws);
    const sp: u64 = qp + q_bytes;
    const sums: u64 = if (tensor) sp + mm * 4 else 0;
    const st = launchWith(op, i, qf.f, .{ .grid = .{ .x = @min(mm, 65535), .y = 1, .threads = 1024 } }, .{ xp, int(x_dtype), long(xs), long(mm), long(kk), long(nb), qp, sp, sums });
    if (st != ok()) return st;
    if (tensor) {
        // 16-row tiles, 4 warps a block; y over chunks of 8 tokens.
        const mf = switch (cudaKernel(device, .tq_mma, op)) {
            .ok => |v| v,
            .err => |e| return e,
        };
        const grid: Grid = .{ .grid = .{ .x = ((nn + 15) / 16 + 3) / 4, .y = (mm + 7) / 8, .threads = 128 } };
        return launchWith(op, i, mf.f, grid, .{ wp, scales, fmt, mode, gb, long(nn), long(nb), qp, sp, sums, long(mm), o });
    }
    // Tokens a pass and rows a warp: ternary.cu's bn_tq_matmul1/4/8.
    const tpb: usize = if (mm == 1) 1 else if (mm <= 4) 4 else 8;
    const rows_per_block: usize = 4 * @as(usize, if (tpb == 1) 2 else 4); // TQ_WARPS · R
    const mf = switch (cudaKernel(device, if (tpb == 1) .tq_matmul1 else if (tpb == 4) .tq_matmul4 else .tq_matmul8, op)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    const grid: Grid = .{ .grid = .{ .x = (nn + rows_per_block - 1) / rows_per_block, .y = (mm + tpb - 1) / tpb, .threads = 128 } };
    return launchWith(op, i, mf.f, grid, .{ wp, scales, fmt, mode, gb, long(nn), long(nb), qp, sp, long(mm), o });
}

/// Which ternary kernels later calls use (tests and benchmarks run each path on one device):
/// 0 the choice above; 1 no tensor cores (the kernels of devices before sm_80); 2 no one-launch
/// GEMV (a single token through the quantize kernel and bn_tq_matmul1).
pub var tq_path: u32 = 0;

pub fn cuda_debug_tq_path(path: u32) i32 {
    if (path > 2) return fail(.invalid_argument, "ternary kernel path {d} (0 to 2)", .{path});
    tq_path = path;
    return ok();
}

pub fn cuda_compile_check(cc: u32) i32 {
    const size = cuda.compileCheck(@intCast(cc)) orelse return fail(.unsupported, "NVRTC could not build the kernels for sm_{d}: {s}", .{ cc, cuda.kernelError() });
    mailbox().f[mb.out] = @floatFromInt(size);
    return ok();
}
