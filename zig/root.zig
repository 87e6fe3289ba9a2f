//! The C ABI of libbitnet: the only file with `export fn`.
//!
//! Rules (docs/tensor_implementation_guide.md):
//! - Every export returns an i32 status (zig/status.zig); outputs go to the calling thread's
//!   mailbox, and a failure leaves a message there. `bn_abi_version` and `bn_mailbox` are the two
//!   queries that cannot fail and return their value directly; `bn_borrowed_release` is a callback
//!   handed to Bun, never called from JS.
//! - Arguments are u32, i32, f64 and pointers only: those cross bun:ffi without BigInt
//!   conversion. Sizes travel as f64 (exact below 2^53) and are checked here.
//! - Array arguments (shapes, strides) are read from the mailbox at fixed slots.
//! - Every export's signature and documentation live here. Short bodies are here too; longer ones
//!   are one-line delegations to zig/door_math.zig, zig/door_train.zig and zig/gpu/door.zig, which
//!   check arguments and map errors the same way (plumbing: zig/door.zig). The work happens in
//!   zig/pool.zig, the kernel table chosen at load time (zig/cpu/kernels.zig) and zig/gpu/.
//! scripts/gen-abi.ts reads the export signatures below to generate src/abi.gen.ts.
const std = @import("std");
const os = @import("os.zig");
const pool_mod = @import("pool.zig");
const Status = @import("status.zig").Status;
const features = @import("cpu/features.zig");
const dt = @import("cpu/dtype.zig");
const copy_mod = @import("cpu/copy.zig");
const args_mod = @import("cpu/args.zig");
const threads = @import("threads.zig");
const elementwise = @import("cpu/elementwise.zig");
const devices = @import("devices.zig");
const cuda = @import("gpu/cuda.zig");
const DType = dt.DType;
const door = @import("door.zig");
const math_door = @import("door_math.zig");
const train_door = @import("door_train.zig");
const gpu_door = @import("gpu/door.zig");
const metal_door = @import("gpu/metal_door.zig");
const fail = door.fail;
const ok = door.ok;
const mailbox = door.mailbox;
const mb = door.mb;
const Mailbox = door.Mailbox;
const count = door.count;
const dtypeArg = door.dtypeArg;
const dtypeOr = door.dtypeOr;
const readLayout = door.readLayout;
const isTensorFloat = door.isTensorFloat;
const getEngine = door.getEngine;
const poolFor = door.poolFor;
const tableFor = door.tableFor;
const levels = door.levels;

/// Bumped whenever an export's signature or meaning changes.
pub const abi_version: u32 = 2;

// ---------------------------------------------------------------------------------------------
// Exports
// ---------------------------------------------------------------------------------------------

export fn bn_abi_version() u32 {
    return abi_version;
}

/// This thread's mailbox (allocated on first use).
export fn bn_mailbox() ?*Mailbox {
    return mailbox();
}

/// Deallocator handed to bun:ffi's toArrayBuffer for `t.data` views. It frees nothing: the
/// ArrayBuffer borrows pool memory and keeps its storage alive from the JS side (src/memory.ts).
/// Passing it explicitly stops Bun from ever applying its own allocator's free to our blocks.
export fn bn_borrowed_release(bytes: ?*anyopaque, ctx: ?*anyopaque) void {
    _ = bytes;
    _ = ctx;
}

/// Detects the CPU and picks the kernel level (BITNET_SIMD may force a lower one). Idempotent.
export fn bn_init() i32 {
    _ = getEngine();
    return ok();
}

/// info[0..]: level, best detected level, forced (0/1), feature bits, cores, l1d, l2, l3 bytes,
/// vector bits, mask of compiled levels, threads in the pool.
export fn bn_capabilities() i32 {
    const e = getEngine();
    const m = mailbox();
    const caches = os.cacheSizes();
    var compiled: u32 = 0;
    inline for (levels) |name| compiled |= @as(u32, 1) << @intCast(@intFromEnum(features.Level.parse(name).?));
    const rec = [_]f64{
        @floatFromInt(@intFromEnum(e.level)),
        @floatFromInt(@intFromEnum(e.detected.best)),
        @floatFromInt(@intFromBool(e.forced)),
        @floatFromInt(@as(u32, @bitCast(e.detected.features))),
        @floatFromInt(os.cpuCount()),
        @floatFromInt(caches.l1d),
        @floatFromInt(caches.l2),
        @floatFromInt(caches.l3),
        @floatFromInt(e.table.vector_bits),
        @floatFromInt(compiled),
        @floatFromInt(e.par.threads),
    };
    @memcpy(m.f[mb.info..][0..rec.len], &rec);
    return ok();
}

/// Switch the kernel level at run time (tests run the suite at every level the CPU supports).
export fn bn_set_simd(level: u32) i32 {
    const e = getEngine();
    const l = std.enums.fromInt(features.Level, level) orelse return fail(.invalid_argument, "set_simd: unknown level {d}", .{level});
    if (!l.runsOn(e.detected.best)) return fail(.unsupported, "set_simd: this CPU cannot run {s} (best: {s})", .{ l.name(), e.detected.best.name() });
    e.table = tableFor(l) orelse return fail(.unsupported, "set_simd: {s} kernels are not built for this architecture", .{l.name()});
    e.level = l;
    return ok();
}

/// out[0] = address of a new 64-byte aligned block of at least `nbytes` bytes, zero-filled when
/// `zero` is not 0.
export fn bn_alloc(device: u32, nbytes: f64, zero: u32) i32 {
    const p = poolFor(device) orelse return fail(.device, "alloc: no memory pool for device {d}", .{device});
    const n = count(nbytes) orelse return fail(.invalid_argument, "alloc: invalid byte count {d}", .{nbytes});
    const ptr = p.alloc(n) catch |err| return switch (err) {
        error.LimitExceeded => fail(.limit_exceeded, "alloc: {d} bytes would pass the memory limit ({d} bytes in use, limit {d})", .{ n, p.stats().bytes_in_use, p.stats().limit }),
        error.OutOfMemory => fail(.out_of_memory, "alloc: the system refused {d} bytes", .{n}),
    };
    if (zero != 0 and n > 0) {
        if (devices.cudaIndex(device)) |i| {
            if (cuda.memset(i, @intFromPtr(ptr), 0, n)) |f| {
                p.free(ptr) catch {};
                return fail(.internal, "alloc: zeroing {d} bytes on cuda:{d} failed: {s}", .{ n, i, cuda.errorName(f.code) });
            }
        } else if (devices.isMetal(device)) {
            if (metal_door.zero(ptr, n)) |st| {
                p.free(ptr) catch {};
                return st;
            }
        } else @memset(ptr[0..n], 0);
    }
    mailbox().f[mb.out] = @floatFromInt(@intFromPtr(ptr));
    return ok();
}

export fn bn_free(device: u32, ptr: ?*anyopaque) i32 {
    const p = poolFor(device) orelse return fail(.device, "free: no memory pool for device {d}", .{device});
    const raw = ptr orelse return fail(.invalid_argument, "free: null pointer", .{});
    p.free(@ptrCast(raw)) catch return fail(.invalid_argument, "free: 0x{x} is not a live block of this pool (double free?)", .{@intFromPtr(raw)});
    return ok();
}

/// info[0..9] = bytes_in_use, bytes_reserved, peak_bytes, allocations, frees, pool_hits,
/// pool_misses, live_blocks, limit.
export fn bn_pool_stats(device: u32) i32 {
    const p = poolFor(device) orelse return fail(.device, "memory.stats: no memory pool for device {d}", .{device});
    const s = p.stats();
    const rec = [_]u64{ s.bytes_in_use, s.bytes_reserved, s.peak_bytes, s.allocations, s.frees, s.pool_hits, s.pool_misses, s.live_blocks, s.limit };
    const m = mailbox();
    for (rec, 0..) |v, i| m.f[mb.info + i] = @floatFromInt(v);
    return ok();
}

export fn bn_pool_trim(device: u32) i32 {
    const p = poolFor(device) orelse return fail(.device, "memory.trim: no memory pool for device {d}", .{device});
    p.trim();
    return ok();
}

export fn bn_pool_set_limit(device: u32, bytes: f64) i32 {
    const p = poolFor(device) orelse return fail(.device, "memory.setLimit: no memory pool for device {d}", .{device});
    const n = count(bytes) orelse return fail(.invalid_argument, "memory.setLimit: invalid byte count {d}", .{bytes});
    p.setLimit(n);
    return ok();
}

export fn bn_pool_reset_peak(device: u32) i32 {
    const p = poolFor(device) orelse return fail(.device, "memory.resetPeak: no memory pool for device {d}", .{device});
    p.resetPeak();
    return ok();
}

/// CUDA devices: with index < 0, info[0] = device count, info[1] = driver version (e.g. 13000),
/// and the message holds why there is none; with index i >= 0, info[0..10] = compute capability
/// major, minor, multiprocessors, L2 bytes, SM clock kHz, memory bus bits, memory clock kHz, total
/// bytes, free bytes, where the kernels came from (0 not made yet, 1 compiled by NVRTC, 2 the disk
/// cache), and the message holds the device's name.
export fn bn_cuda_info(index: i32) i32 {
    return gpu_door.cuda_info(index);
}

/// Copies `nbytes` contiguous bytes from `src` on engine device `src_dev` to `dst` on `dst_dev`
/// (0 = host memory, 1 + i = cuda:i, the Metal index of bn_metal_info: after its queue has
/// finished, Metal memory is host memory): host to device, device to host, device to device (also
/// across devices) and host to host. Returns when the copy is complete, except host→device copies
/// of 4 MiB or more (through pinned staging, zig/gpu/door.zig): they return once queued, the
/// source already copied out, and complete in stream order before any later kernel or copy.
export fn bn_memcpy(dst_dev: u32, dst: ?*anyopaque, src_dev: u32, src: ?*const anyopaque, nbytes: f64) i32 {
    return gpu_door.memcpy(dst_dev, dst, src_dev, src, nbytes);
}

// ---- GPU kernels: CUDA's (zig/gpu/*.cu, NVRTC) or Metal's (metal/kernels.metal), chosen by the
// tensor's engine device (zig/gpu/door.zig). Layouts as the CPU exports read them. ----

/// out (out_dtype) = in (in_dtype) converted, on GPU device `device`. Layout: 0 = out, 1 = in.
export fn bn_gpu_convert(device: u32, out: ?*anyopaque, out_dtype: u32, in: ?*const anyopaque, in_dtype: u32, ndim: u32) i32 {
    return gpu_door.gpu_convert(device, out, out_dtype, in, in_dtype, ndim);
}

/// The GPU form of bn_binary (same codes, flags and layout: 0 = out, 1 = a, 2 = b).
export fn bn_gpu_binary(device: u32, op_code: u32, dtype: u32, out: ?*anyopaque, out_dtype: u32, a: ?*const anyopaque, b: ?*const anyopaque, flags: u32, av: f64, bv: f64, ndim: u32) i32 {
    return gpu_door.gpu_binary(device, op_code, dtype, out, out_dtype, a, b, flags, av, bv, ndim);
}

/// The GPU form of bn_unary (same codes and parameters; layout 0 = out, 1 = in).
export fn bn_gpu_unary(device: u32, op_code: u32, dtype: u32, out: ?*anyopaque, in: ?*const anyopaque, p0: f64, p1: f64, ndim: u32) i32 {
    return gpu_door.gpu_unary(device, op_code, dtype, out, in, p0, p1, ndim);
}

/// The GPU form of bn_where (layout 0 = out, 1 = cond, 2 = a, 3 = b).
export fn bn_gpu_where(device: u32, dtype: u32, out: ?*anyopaque, cond: ?*const anyopaque, a: ?*const anyopaque, b: ?*const anyopaque, flags: u32, av: f64, bv: f64, ndim: u32) i32 {
    return gpu_door.gpu_where(device, dtype, out, cond, a, b, flags, av, bv, ndim);
}

/// The GPU form of bn_reduce (same codes and layout: kept axes first; 0 = out, 1 = in).
export fn bn_gpu_reduce(device: u32, op_code: u32, out: ?*anyopaque, out_dtype: u32, in: ?*const anyopaque, in_dtype: u32, kept: u32, ndim: u32, ddof: f64) i32 {
    return gpu_door.gpu_reduce(device, op_code, out, out_dtype, in, in_dtype, kept, ndim, ddof);
}

/// The GPU form of bn_softmax (the axis is the layout's last; 0 = out, 1 = in).
export fn bn_gpu_softmax(device: u32, out: ?*anyopaque, in: ?*const anyopaque, dtype: u32, log: u32, ndim: u32) i32 {
    return gpu_door.gpu_softmax(device, out, in, dtype, log, ndim);
}

/// The GPU form of bn_norm (kind 0 layer, 1 rms, over the last axis; weight/bias may be null).
export fn bn_gpu_norm(device: u32, kind: u32, out: ?*anyopaque, in: ?*const anyopaque, dtype: u32, weight: ?*const anyopaque, bias: ?*const anyopaque, wb_dtype: u32, eps: f64, ndim: u32) i32 {
    return gpu_door.gpu_norm(device, kind, out, in, dtype, weight, bias, wb_dtype, eps, ndim);
}

/// Waits for the work queued on CUDA device `device` (kernel errors surface here).
export fn bn_cuda_synchronize(device: u32) i32 {
    return gpu_door.cuda_synchronize(device);
}

/// out = a @ b on CUDA device `device` through cuBLAS (zig/gpu/cublas.zig): the layout of
/// bn_matmul ([batch..., M, N, K]; strides0 = out, strides1 = a, strides2 = b). Operands and out
/// are all f32, f16 or bf16 (in_dtype = out_dtype; f32 accumulation). Each operand's matrices
/// must be row- or column-contiguous, and the result's rows contiguous; K = 0 leaves out as is.
export fn bn_cuda_matmul(device: u32, out: ?*anyopaque, out_dtype: u32, a: ?*const anyopaque, b: ?*const anyopaque, in_dtype: u32, ndim: u32) i32 {
    return gpu_door.cuda_matmul(device, out, out_dtype, a, b, in_dtype, ndim);
}

/// bn_ternary_matmul on GPU device `device` (zig/gpu/ternary.cu on CUDA, metal/kernels.metal on
/// Metal): same arguments and results; formats tq2_0 and i2 (tq1_0 is refused). The int8
/// activations live in pool workspace.
export fn bn_gpu_ternary_matmul(device: u32, out: ?*anyopaque, x: ?*const anyopaque, x_dtype: u32, w: ?*const anyopaque, scales: ?*const anyopaque, format: u32, scale_mode: u32, m: f64, n: f64, k: f64, x_stride: f64, group: f64) i32 {
    return gpu_door.gpu_ternary_matmul(device, out, x, x_dtype, w, scales, format, scale_mode, m, n, k, x_stride, group);
}

/// The Metal device (macOS, through the shim metal/shim.m, opened at run time): with index < 0,
/// info[0] = 1 when present else 0 (the message says why), info[1] = its engine device index;
/// with index 0, info[0..3] = recommended working set bytes, largest buffer bytes, unified memory
/// (1/0), and the message holds the device's name.
export fn bn_metal_info(index: i32) i32 {
    return metal_door.metal_info(index);
}

/// Waits until the work queued on the Metal device has finished; `internal` with Metal's
/// description when a command buffer failed.
export fn bn_metal_synchronize() i32 {
    return metal_door.metal_synchronize();
}

/// bn_cuda_matmul's arguments and layout on the Metal device, through MPS
/// (MPSMatrixMultiplication): f32 or f16, the result in the operands' dtype; operands' matrices
/// row- or column-contiguous, the result's rows contiguous; one MPS product a batch item.
export fn bn_metal_matmul(device: u32, out: ?*anyopaque, out_dtype: u32, a: ?*const anyopaque, b: ?*const anyopaque, in_dtype: u32, ndim: u32) i32 {
    return metal_door.metal_matmul(device, out, out_dtype, a, b, in_dtype, ndim);
}

/// Which ternary matmul kernels later CUDA calls use, for tests and benchmarks that run every
/// path on one device: 0 automatic (several tokens on the tensor cores from sm_80; one token
/// through the one-launch GEMV where its row fits in shared memory), 1 no tensor cores, 2 no
/// one-launch GEMV. Process-wide.
export fn bn_cuda_debug_tq_path(path: u32) i32 {
    return gpu_door.cuda_debug_tq_path(path);
}

/// Compiles the embedded CUDA kernels for sm_<cc> with NVRTC, no device needed (a build check
/// of the sources): out[0] = CUBIN bytes; `unsupported` with the compiler's log on failure.
export fn bn_cuda_compile_check(cc: u32) i32 {
    return gpu_door.cuda_compile_check(cc);
}

/// Strided copy with conversion. shape at mailbox `shape`, dst strides at `strides0`, src strides
/// at `strides1` (elements). Pointers are those of element 0 of each view.
export fn bn_copy(dst: ?*anyopaque, dst_dtype: u32, src: ?*const anyopaque, src_dtype: u32, ndim: u32) i32 {
    const dd = dtypeArg(dst_dtype) orelse return fail(.dtype, "copy: unknown dtype code {d}", .{dst_dtype});
    const sd = dtypeArg(src_dtype) orelse return fail(.dtype, "copy: unknown dtype code {d}", .{src_dtype});
    var args: copy_mod.CopyArgs = .{ .dst = undefined, .dst_dtype = dd, .src = undefined, .src_dtype = sd, .layout = undefined };
    if (readLayout(2, "copy", ndim, &args.layout)) |st| return st;
    if (args.layout.size() == 0) return ok();
    args.dst = @ptrCast(dst orelse return fail(.invalid_argument, "copy: null destination", .{}));
    args.src = @ptrCast(src orelse return fail(.invalid_argument, "copy: null source", .{}));
    getEngine().table.copy(&args);
    return ok();
}

export fn bn_fill(dst: ?*anyopaque, dtype: u32, n: f64, value: f64) i32 {
    const d = dtypeArg(dtype) orelse return fail(.dtype, "fill: unknown dtype code {d}", .{dtype});
    const len = count(n) orelse return fail(.invalid_argument, "fill: invalid length {d}", .{n});
    if (len == 0) return ok();
    getEngine().table.fill(@ptrCast(dst orelse return fail(.invalid_argument, "fill: null pointer", .{})), d, len, value);
    return ok();
}

/// out[i] = start + i*step; with has_last != 0 the final element is exactly `last`.
export fn bn_range(dst: ?*anyopaque, dtype: u32, n: f64, start: f64, step: f64, has_last: u32, last: f64) i32 {
    const d = dtypeArg(dtype) orelse return fail(.dtype, "range: unknown dtype code {d}", .{dtype});
    const len = count(n) orelse return fail(.invalid_argument, "range: invalid length {d}", .{n});
    if (len == 0) return ok();
    getEngine().table.range(@ptrCast(dst orelse return fail(.invalid_argument, "range: null pointer", .{})), d, len, start, step, has_last != 0, last);
    return ok();
}

export fn bn_eye(dst: ?*anyopaque, dtype: u32, rows: f64, cols: f64, k: f64) i32 {
    const d = dtypeArg(dtype) orelse return fail(.dtype, "eye: unknown dtype code {d}", .{dtype});
    const r = count(rows) orelse return fail(.shape, "eye: invalid rows {d}", .{rows});
    const c = count(cols) orelse return fail(.shape, "eye: invalid cols {d}", .{cols});
    if (@floor(k) != k or !(@abs(k) < 9007199254740992.0)) return fail(.invalid_argument, "eye: invalid diagonal {d}", .{k});
    if (r * c == 0) return ok();
    getEngine().table.eye(@ptrCast(dst orelse return fail(.invalid_argument, "eye: null pointer", .{})), d, r, c, @intFromFloat(k));
    return ok();
}

/// dist 0 = uniform [a, b), 1 = normal (mean a, std b); seed = seed_hi * 2^32 + seed_lo;
/// elements are draws offset .. offset + n of that seed (zig/cpu/random.zig).
export fn bn_random(dst: ?*anyopaque, dtype: u32, n: f64, dist: u32, seed_lo: u32, seed_hi: u32, offset: f64, a: f64, b: f64) i32 {
    const d = dtypeArg(dtype) orelse return fail(.dtype, "random: unknown dtype code {d}", .{dtype});
    if (!dt.isFloat(d)) return fail(.dtype, "random: needs a float dtype, got {t}", .{d});
    const len = count(n) orelse return fail(.invalid_argument, "random: invalid length {d}", .{n});
    const off = count(offset) orelse return fail(.invalid_argument, "random: invalid offset {d}", .{offset});
    const kind = std.enums.fromInt(@import("cpu/random.zig").Dist, dist) orelse return fail(.invalid_argument, "random: unknown distribution {d}", .{dist});
    if (len == 0) return ok();
    const seed = (@as(u64, seed_hi) << 32) | seed_lo;
    getEngine().table.random(@ptrCast(dst orelse return fail(.invalid_argument, "random: null pointer", .{})), d, len, kind, seed, off, a, b);
    return ok();
}

/// out = a op b (args.BinOp) with broadcasting by strides. flags bit 0: a is the scalar a_value,
/// bit 1: b is the scalar b_value. Layout: shape, strides0 = out, strides1 = a, strides2 = b.
export fn bn_binary(op: u32, dtype: u32, out_dtype: u32, out: ?*anyopaque, a: ?*const anyopaque, b: ?*const anyopaque, flags: u32, a_value: f64, b_value: f64, ndim: u32) i32 {
    const bop = std.enums.fromInt(args_mod.BinOp, op) orelse return fail(.invalid_argument, "binary: unknown op {d}", .{op});
    const d = switch (dtypeOr(dtype, "binary")) {
        .ok => |v| v,
        .err => |e| return e,
    };
    const od = switch (dtypeOr(out_dtype, "binary")) {
        .ok => |v| v,
        .err => |e| return e,
    };
    if (d == .f64 or !elementwise.binaryValid(bop, d)) return fail(.dtype, "binary: {t} is not defined for {t}", .{ bop, d });
    if (od != (if (elementwise.isCompare(bop)) DType.bool else d)) return fail(.dtype, "binary: {t} of {t} cannot write {t}", .{ bop, d, od });
    var args: args_mod.BinaryArgs = .{
        .op = bop,
        .dtype = d,
        .out_dtype = od,
        .a_scalar = flags & 1,
        .b_scalar = (flags >> 1) & 1,
        .a_value = a_value,
        .b_value = b_value,
        .out = undefined,
        .a = undefined,
        .b = undefined,
        .layout = undefined,
    };
    if (readLayout(3, "binary", ndim, &args.layout)) |st| return st;
    if (args.layout.size() == 0) return ok();
    args.out = @ptrCast(out orelse return fail(.invalid_argument, "binary: null output", .{}));
    args.a = if (args.a_scalar != 0) @ptrCast(&args.a_value) else @ptrCast(a orelse return fail(.invalid_argument, "binary: null operand", .{}));
    args.b = if (args.b_scalar != 0) @ptrCast(&args.b_value) else @ptrCast(b orelse return fail(.invalid_argument, "binary: null operand", .{}));
    const e = getEngine();
    e.table.binary(&e.par, &args);
    return ok();
}

/// out = op(x) (args.UnOp); p0, p1: clip bounds. Layout: shape, strides0 = out, strides1 = x.
export fn bn_unary(op: u32, dtype: u32, out: ?*anyopaque, x: ?*const anyopaque, p0: f64, p1: f64, ndim: u32) i32 {
    const uop = std.enums.fromInt(args_mod.UnOp, op) orelse return fail(.invalid_argument, "unary: unknown op {d}", .{op});
    const d = switch (dtypeOr(dtype, "unary")) {
        .ok => |v| v,
        .err => |e| return e,
    };
    if (d == .f64 or !elementwise.unaryValid(uop, d)) return fail(.dtype, "unary: {t} is not defined for {t}", .{ uop, d });
    var args: args_mod.UnaryArgs = .{ .op = uop, .dtype = d, .p0 = p0, .p1 = p1, .out = undefined, .x = undefined, .layout = undefined };
    if (readLayout(2, "unary", ndim, &args.layout)) |st| return st;
    if (args.layout.size() == 0) return ok();
    args.out = @ptrCast(out orelse return fail(.invalid_argument, "unary: null output", .{}));
    args.x = @ptrCast(x orelse return fail(.invalid_argument, "unary: null operand", .{}));
    const e = getEngine();
    e.table.unary(&e.par, &args);
    return ok();
}

/// out = cond ? a : b with broadcasting. flags bit 0: a is a_value, bit 1: b is b_value.
/// Layout: strides0 = out, strides1 = cond (bool), strides2 = a, strides3 = b.
export fn bn_where(dtype: u32, out: ?*anyopaque, cond: ?*const anyopaque, a: ?*const anyopaque, b: ?*const anyopaque, flags: u32, a_value: f64, b_value: f64, ndim: u32) i32 {
    const d = switch (dtypeOr(dtype, "where")) {
        .ok => |v| v,
        .err => |e| return e,
    };
    if (d == .f64) return fail(.dtype, "where: {t} is not a tensor dtype", .{d});
    var args: args_mod.WhereArgs = .{ .dtype = d, .a_scalar = flags & 1, .b_scalar = (flags >> 1) & 1, .a_value = a_value, .b_value = b_value, .out = undefined, .cond = undefined, .a = undefined, .b = undefined, .layout = undefined };
    if (readLayout(4, "where", ndim, &args.layout)) |st| return st;
    if (args.layout.size() == 0) return ok();
    args.out = @ptrCast(out orelse return fail(.invalid_argument, "where: null output", .{}));
    args.cond = @ptrCast(cond orelse return fail(.invalid_argument, "where: null condition", .{}));
    args.a = if (args.a_scalar != 0) @ptrCast(&args.a_value) else @ptrCast(a orelse return fail(.invalid_argument, "where: null operand", .{}));
    args.b = if (args.b_scalar != 0) @ptrCast(&args.b_value) else @ptrCast(b orelse return fail(.invalid_argument, "where: null operand", .{}));
    const e = getEngine();
    e.table.where(&e.par, &args);
    return ok();
}

/// Reduction (args.ReduceOp) of the trailing ndim - kept axes. Layout: shape (kept axes first),
/// strides0 = out strides (kept axes), strides1 = input strides.
export fn bn_reduce(op: u32, out: ?*anyopaque, out_dtype: u32, in: ?*const anyopaque, in_dtype: u32, kept: u32, ndim: u32, ddof: f64) i32 {
    const rop = std.enums.fromInt(args_mod.ReduceOp, op) orelse return fail(.invalid_argument, "reduce: unknown op {d}", .{op});
    const od = switch (dtypeOr(out_dtype, "reduce")) {
        .ok => |v| v,
        .err => |e| return e,
    };
    const id = switch (dtypeOr(in_dtype, "reduce")) {
        .ok => |v| v,
        .err => |e| return e,
    };
    if (kept > ndim) return fail(.invalid_argument, "reduce: {d} kept axes of {d}", .{ kept, ndim });
    var args: args_mod.ReduceArgs = .{ .op = rop, .in_dtype = id, .out_dtype = od, .kept = kept, .ddof = ddof, .out = undefined, .in = undefined, .layout = undefined };
    if (readLayout(2, "reduce", ndim, &args.layout)) |st| return st;
    var kept_size: usize = 1;
    for (args.layout.shape[0..kept]) |dim| kept_size *= dim;
    if (kept_size == 0) return ok();
    args.out = @ptrCast(out orelse return fail(.invalid_argument, "reduce: null output", .{}));
    args.in = @ptrCast(in orelse return fail(.invalid_argument, "reduce: null input", .{}));
    const e = getEngine();
    e.table.reduce(&e.par, &args);
    return ok();
}

/// Inclusive prefix sum along the last axis. Layout: shape, strides0 = out, strides1 = in.
export fn bn_cumsum(out: ?*anyopaque, out_dtype: u32, in: ?*const anyopaque, in_dtype: u32, ndim: u32) i32 {
    const od = switch (dtypeOr(out_dtype, "cumsum")) {
        .ok => |v| v,
        .err => |e| return e,
    };
    const id = switch (dtypeOr(in_dtype, "cumsum")) {
        .ok => |v| v,
        .err => |e| return e,
    };
    const want: DType = if (isTensorFloat(id)) id else switch (id) {
        .u8, .u16, .u32 => .u32,
        .f64 => return fail(.dtype, "cumsum: {t} is not a tensor dtype", .{id}),
        else => .i32,
    };
    if (od != want) return fail(.dtype, "cumsum of {t} gives {t}, not {t}", .{ id, want, od });
    var args: args_mod.ScanArgs = .{ .in_dtype = id, .out_dtype = od, .out = undefined, .in = undefined, .layout = undefined };
    if (readLayout(2, "cumsum", ndim, &args.layout)) |st| return st;
    if (args.layout.size() == 0) return ok();
    args.out = @ptrCast(out orelse return fail(.invalid_argument, "cumsum: null output", .{}));
    args.in = @ptrCast(in orelse return fail(.invalid_argument, "cumsum: null input", .{}));
    const e = getEngine();
    e.table.cumsum(&e.par, &args);
    return ok();
}

/// softmax (log = 0) or logSoftmax (log = 1) along the last axis. Layout: strides0 = out, strides1 = in.
export fn bn_softmax(out: ?*anyopaque, in: ?*const anyopaque, dtype: u32, log: u32, ndim: u32) i32 {
    const d = switch (dtypeOr(dtype, "softmax")) {
        .ok => |v| v,
        .err => |e| return e,
    };
    if (!isTensorFloat(d)) return fail(.dtype, "softmax: needs f32, f16 or bf16, got {t}", .{d});
    var args: args_mod.SoftmaxArgs = .{ .dtype = d, .log = log, .out = undefined, .in = undefined, .layout = undefined };
    if (readLayout(2, "softmax", ndim, &args.layout)) |st| return st;
    if (args.layout.size() == 0) return ok();
    args.out = @ptrCast(out orelse return fail(.invalid_argument, "softmax: null output", .{}));
    args.in = @ptrCast(in orelse return fail(.invalid_argument, "softmax: null input", .{}));
    const e = getEngine();
    e.table.softmax(&e.par, &args);
    return ok();
}

/// layerNorm (kind 0) or rmsNorm (kind 1) over the last axis; weight/bias may be null.
/// Layout: strides0 = out, strides1 = in.
export fn bn_norm(kind: u32, out: ?*anyopaque, in: ?*const anyopaque, dtype: u32, weight: ?*const anyopaque, bias: ?*const anyopaque, wb_dtype: u32, eps: f64, ndim: u32) i32 {
    const k = std.enums.fromInt(args_mod.NormKind, kind) orelse return fail(.invalid_argument, "norm: unknown kind {d}", .{kind});
    const d = switch (dtypeOr(dtype, "norm")) {
        .ok => |v| v,
        .err => |e| return e,
    };
    const wd = switch (dtypeOr(wb_dtype, "norm")) {
        .ok => |v| v,
        .err => |e| return e,
    };
    if (!isTensorFloat(d)) return fail(.dtype, "norm: needs f32, f16 or bf16, got {t}", .{d});
    if ((weight != null or bias != null) and !isTensorFloat(wd)) return fail(.dtype, "norm: weight/bias need f32, f16 or bf16, got {t}", .{wd});
    var args: args_mod.NormArgs = .{ .kind = k, .dtype = d, .wb_dtype = wd, .eps = eps, .out = undefined, .in = undefined, .weight = @ptrCast(weight), .bias = @ptrCast(bias), .layout = undefined };
    if (readLayout(2, "norm", ndim, &args.layout)) |st| return st;
    if (args.layout.size() == 0) return ok();
    args.out = @ptrCast(out orelse return fail(.invalid_argument, "norm: null output", .{}));
    args.in = @ptrCast(in orelse return fail(.invalid_argument, "norm: null input", .{}));
    const e = getEngine();
    e.table.norm(&e.par, &args);
    return ok();
}

/// out = alpha * a @ b + beta * out for every matrix of a batch (args.GemmArgs). Layout: shape
/// [batch..., M, N, K]; strides0 = out [batch..., row, col, 0], strides1 = a [batch..., row, 0, k],
/// strides2 = b [batch..., 0, col, k]. out_dtype: f32 for float inputs, i32 for integer/bool ones.
export fn bn_matmul(out: ?*anyopaque, out_dtype: u32, a: ?*const anyopaque, b: ?*const anyopaque, in_dtype: u32, alpha: f64, beta: f64, ndim: u32) i32 {
    return math_door.matmul(out, out_dtype, a, b, in_dtype, alpha, beta, ndim);
}

/// bn.linalg (args.LinalgArgs, zig/cpu/linalg.zig): op = args.LinalgOp over a batch of matrices.
/// Layout: shape [batch..., m, n] of a; strides0 = a's strides, strides1 = b's (solve: b is
/// [batch..., n, k], stride 0 on broadcast batch axes). Outputs are contiguous in out_dtype (f32,
/// f16 or bf16: the input's float dtype, f32 for integer inputs). flags: qr 1 = complete; svd bit
/// 0 = full matrices, bit 1 = compute U/Vt; norm_matrix: args.MatrixNorm. p: the vector norm order.
export fn bn_linalg(op: u32, in_dtype: u32, out_dtype: u32, a: ?*const anyopaque, b: ?*const anyopaque, out0: ?*anyopaque, out1: ?*anyopaque, out2: ?*anyopaque, k: f64, flags: u32, p: f64, ndim: u32) i32 {
    return math_door.linalg(op, in_dtype, out_dtype, a, b, out0, out1, out2, k, flags, p, ndim);
}

/// ggml's ternary block formats (args.TernaryPackArgs, zig/cpu/ternary_pack.zig) over `n`
/// weights (a multiple of 256, contiguous). op 0 pack: values (i8) + scales (f32 per block) ->
/// blocks; op 1 unpack: blocks -> values (i8) and, when not null, scales (f32); op 2 dequantize:
/// blocks -> out in dtype (f32, f16 or bf16). format: 0 = tq2_0, 1 = tq1_0.
export fn bn_ternary_pack(op: u32, format: u32, dtype: u32, values: ?*anyopaque, scales: ?*anyopaque, blocks: ?*anyopaque, out: ?*anyopaque, n: f64) i32 {
    return math_door.ternary_pack(op, format, dtype, values, scales, blocks, out, n);
}

/// out[m, n] (f32) = x[m, k] @ wᵀ for a packed ternary w[n, k] (args.TernaryMatmulArgs,
/// zig/cpu/ternary_matmul.zig). format: 0 tq2_0, 1 tq1_0, 2 i2 (then scales: f32, scale_mode 0
/// tensor / 1 channel / 2 groups of `group` weights). x rows are `x_stride` elements apart.
/// `flags` bit 0: do not use fused dot-product instructions (tests compare both paths).
export fn bn_ternary_matmul(out: ?*anyopaque, x: ?*anyopaque, x_dtype: u32, w: ?*anyopaque, scales: ?*anyopaque, format: u32, scale_mode: u32, m: f64, n: f64, k: f64, x_stride: f64, group: f64, flags: u32) i32 {
    return math_door.ternary_matmul(out, x, x_dtype, w, scales, format, scale_mode, m, n, k, x_stride, group, flags);
}

// ---- gradients, gather / scatter, optimizers ------------------------------------------------

/// Backward of softmax (log = 0) or logSoftmax (log = 1) along the last axis, given y (the
/// forward's output) and the upstream gradient g, all of `dtype` (args.SoftmaxBackwardArgs).
/// Layout: strides0 = dx, strides1 = y, strides2 = g.
export fn bn_softmax_backward(dx: ?*anyopaque, y: ?*const anyopaque, g: ?*const anyopaque, dtype: u32, log: u32, ndim: u32) i32 {
    return train_door.softmax_backward(dx, y, g, dtype, log, ndim);
}

/// Backward of layerNorm (kind 0) or rmsNorm (kind 1) over the last axis (args.NormBackwardArgs):
/// dx from x, the upstream g (both `dtype`) and the optional weight (`w_dtype`); dweight (sum of
/// g * xhat over rows) and dbias (sum of g) are f32 vectors of the last axis' length, each filled
/// when not null. Layout: strides0 = dx, strides1 = x, strides2 = g.
export fn bn_norm_backward(kind: u32, dx: ?*anyopaque, x: ?*const anyopaque, g: ?*const anyopaque, dtype: u32, weight: ?*const anyopaque, w_dtype: u32, dweight: ?*anyopaque, dbias: ?*anyopaque, eps: f64, ndim: u32) i32 {
    return train_door.norm_backward(kind, dx, x, g, dtype, weight, w_dtype, dweight, dbias, eps, ndim);
}

/// out [outer, nidx, inner] = x [outer, axis_len, inner][:, idx, :] (args.GatherArgs): x and out
/// contiguous of any `dtype`, idx contiguous of any integer dtype (negative counts from the end).
/// An out-of-range index is a shape error naming the first one; then nothing is written.
export fn bn_take(out: ?*anyopaque, x: ?*const anyopaque, dtype: u32, idx: ?*const anyopaque, idx_dtype: u32, outer: f64, axis_len: f64, inner: f64, nidx: f64) i32 {
    return train_door.take(out, x, dtype, idx, idx_dtype, outer, axis_len, inner, nidx);
}

/// target [outer, axis_len, inner][:, idx[j], :] += src [outer, nidx, inner][:, j, :] for j in
/// order (args.GatherArgs): target and src contiguous floats, idx contiguous of any integer dtype.
/// An out-of-range index is a shape error naming the first one; then nothing is written.
export fn bn_index_add(target: ?*anyopaque, dtype: u32, src: ?*const anyopaque, src_dtype: u32, idx: ?*const anyopaque, idx_dtype: u32, outer: f64, axis_len: f64, inner: f64, nidx: f64) i32 {
    return train_door.index_add(target, dtype, src, src_dtype, idx, idx_dtype, outer, axis_len, inner, nidx);
}

/// One SGD step in place over n contiguous parameters p (`dtype`: f32, f16 or bf16) with
/// gradients g (same dtype) and the f32 momentum buffer buf (needed when momentum != 0). flags:
/// bit 0 maximize, bit 1 nesterov, bit 2 first step (buf := d). See zig/cpu/optim.zig.
export fn bn_sgd_update(p: ?*anyopaque, g: ?*const anyopaque, buf: ?*anyopaque, dtype: u32, n: f64, lr: f64, momentum: f64, dampening: f64, weight_decay: f64, flags: u32) i32 {
    return train_door.sgd_update(p, g, buf, dtype, n, lr, momentum, dampening, weight_decay, flags);
}

/// One AdamW step in place (decoupled weight decay, PyTorch semantics) over n contiguous
/// parameters p (`dtype`: f32, f16 or bf16) with gradients g (same dtype) and f32 state m, v and,
/// with amsgrad (flags bit 3), vmax. step: t >= 1, a whole number. flags: bit 0 maximize, bit 3
/// amsgrad. See zig/cpu/optim.zig.
export fn bn_adamw_update(p: ?*anyopaque, g: ?*const anyopaque, m: ?*anyopaque, v: ?*anyopaque, vmax: ?*anyopaque, dtype: u32, n: f64, lr: f64, beta1: f64, beta2: f64, eps: f64, weight_decay: f64, step: f64, flags: u32) i32 {
    return train_door.adamw_update(p, g, m, v, vmax, dtype, n, lr, beta1, beta2, eps, weight_decay, step, flags);
}

test {
    _ = os;
    _ = threads;
    _ = pool_mod;
    _ = features;
    _ = @import("gpu/cublas.zig");
    _ = @import("gpu/metal.zig");
    _ = metal_door;
}

test "cuda is found at run time, never required" {
    const n = cuda.deviceCount();
    if (n == 0) try std.testing.expect(cuda.absenceReason().len > 0);
    try std.testing.expectEqual(@intFromEnum(Status.device), bn_alloc(@intCast(1 + n), 64, 0));
    try std.testing.expectEqual(@intFromEnum(Status.ok), bn_cuda_info(-1));
    try std.testing.expectEqual(@as(f64, @floatFromInt(n)), mailbox().f[mb.info]);
    try std.testing.expectEqual(@intFromEnum(Status.device), bn_cuda_info(@intCast(n)));
}

test "engine picks a runnable level and every compiled table answers" {
    const e = getEngine();
    try std.testing.expect(e.level.runsOn(e.detected.best));
    inline for (levels) |name| {
        const l = features.Level.parse(name).?;
        if (l.runsOn(e.detected.best)) {
            const t = tableFor(l).?;
            try std.testing.expectEqualStrings(name, std.mem.span(t.level));
        }
    }
}

test "exports report errors through the mailbox" {
    try std.testing.expectEqual(@intFromEnum(Status.invalid_argument), bn_alloc(0, -1, 0));
    const m = mailbox();
    const len: usize = @intFromFloat(m.f[mb.msg_len]);
    try std.testing.expect(std.mem.indexOf(u8, m.msg[0..len], "alloc") != null);
    try std.testing.expectEqual(@intFromEnum(Status.device), bn_alloc(7, 64, 0));
    try std.testing.expectEqual(@intFromEnum(Status.ok), bn_alloc(0, 100, 1));
    const p: *anyopaque = @ptrFromInt(@as(usize, @intFromFloat(m.f[mb.out])));
    try std.testing.expectEqual(@intFromEnum(Status.ok), bn_fill(p, @intFromEnum(DType.f32), 25, 2.5));
    try std.testing.expectEqual(@as(f32, 2.5), @as([*]f32, @ptrCast(@alignCast(p)))[24]);
    try std.testing.expectEqual(@intFromEnum(Status.ok), bn_free(0, p));
    try std.testing.expectEqual(@intFromEnum(Status.invalid_argument), bn_free(0, p));
    try std.testing.expectEqual(@intFromEnum(Status.dtype), bn_random(p, @intFromEnum(DType.i32), 4, 0, 1, 0, 0, 0, 1));
}
