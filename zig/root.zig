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
//! - This file checks arguments and maps errors; the work happens in zig/pool.zig and in the
//!   kernel table chosen at load time (zig/cpu/kernels.zig).
//! scripts/gen-abi.ts reads the export signatures below to generate src/abi.gen.ts.
const std = @import("std");
const builtin = @import("builtin");
const build_options = @import("build_options");
const os = @import("os.zig");
const pool_mod = @import("pool.zig");
const Status = @import("status.zig").Status;
const features = @import("cpu/features.zig");
const dt = @import("cpu/dtype.zig");
const strided = @import("cpu/strided.zig");
const copy_mod = @import("cpu/copy.zig");
const args_mod = @import("cpu/args.zig");
const threads = @import("threads.zig");
const elementwise = @import("cpu/elementwise.zig");
const Parallel = @import("cpu/parallel.zig").Parallel;
const Table = @import("cpu/table.zig").Table;
const devices = @import("devices.zig");
const cuda = @import("gpu/cuda.zig");
const DType = dt.DType;

/// Bumped whenever an export's signature or meaning changes.
pub const abi_version: u32 = 1;

// ---------------------------------------------------------------------------------------------
// Mailbox: a per-thread scratch area shared with JS (src/native.ts maps it once per thread).
// ---------------------------------------------------------------------------------------------

/// f64 slot indices (mirrored in src/native.ts as MB_*).
pub const mb = struct {
    pub const out = 0; // outputs: [0..8)
    pub const msg_len = 7; // length of the error message in `msg`
    pub const info = 8; // stats and capability records: [8..64)
    pub const shape = 64; // [64..96)
    pub const strides0 = 96; // [96..128)
    pub const strides1 = 128; // [128..160)
    pub const strides2 = 160; // [160..192)
    pub const strides3 = 192; // [192..224)
};

pub const Mailbox = extern struct {
    f: [256]f64,
    msg: [1024]u8,
    /// Staging for small inputs from JS (e.g. the numbers of `bn.tensor([..])`), so they cross
    /// without a temporary TypedArray; used as a `bn_copy` source.
    stage: [stage_len]f64,
};

/// f64 elements of the mailbox's staging area (mirrored in src/abi.gen.ts as STAGE_LEN).
pub const stage_len = 1024;

threadlocal var tls_mailbox: ?*Mailbox = null;

fn mailbox() *Mailbox {
    if (tls_mailbox) |m| return m;
    const m = std.heap.c_allocator.create(Mailbox) catch @panic("bitnet: cannot allocate the thread mailbox");
    m.* = std.mem.zeroes(Mailbox);
    tls_mailbox = m;
    return m;
}

fn fail(status: Status, comptime fmt: []const u8, args: anytype) i32 {
    const m = mailbox();
    const text = std.fmt.bufPrint(&m.msg, fmt, args) catch m.msg[0..];
    m.f[mb.msg_len] = @floatFromInt(text.len);
    return @intFromEnum(status);
}

/// Success with a message in the mailbox (for exports that return text).
fn okMessage(comptime fmt: []const u8, args: anytype) i32 {
    _ = fail(.ok, fmt, args);
    return ok();
}

fn ok() i32 {
    return @intFromEnum(Status.ok);
}

// ---------------------------------------------------------------------------------------------
// Engine state: kernel table and device pools, set up once.
// ---------------------------------------------------------------------------------------------

const levels = build_options.levels;

fn tableSymbol(comptime name: []const u8) *const fn () callconv(.c) *const Table {
    return @extern(*const fn () callconv(.c) *const Table, .{ .name = "bn_kernels_" ++ name });
}

fn tableFor(level: features.Level) ?*const Table {
    inline for (levels) |name| {
        if (std.mem.eql(u8, name, level.name())) return tableSymbol(name)();
    }
    return null;
}

const Engine = struct {
    table: *const Table,
    level: features.Level,
    detected: features.Detected,
    forced: bool,
    cpu_pool: pool_mod.CpuPool,
    workers: threads.Pool,
    par: Parallel,
};

var engine: Engine = undefined;
var engine_ready = std.atomic.Value(bool).init(false);
var engine_lock: os.Lock = .{};

fn getEngine() *Engine {
    if (engine_ready.load(.acquire)) return &engine;
    engine_lock.lock();
    defer engine_lock.unlock();
    if (!engine_ready.load(.monotonic)) {
        var det = features.detect();
        det.features.dotprod = det.features.dotprod or os.armDotProd();
        var level = bestCompiled(det.best);
        var forced = false;
        if (os.getenv("BITNET_SIMD")) |want| {
            if (features.Level.parse(want)) |l| {
                if (l.runsOn(det.best) and tableFor(l) != null) {
                    level = l;
                    forced = true;
                }
            }
        }
        engine = .{
            .table = tableFor(level).?,
            .level = level,
            .detected = det,
            .forced = forced,
            .cpu_pool = pool_mod.CpuPool.init(std.heap.c_allocator),
            .workers = .{},
            .par = undefined,
        };
        engine.workers.start(threads.configuredThreads(os.cpuCount()));
        engine.par = engine.workers.handle();
        engine.par.scratch = &engine.cpu_pool;
        engine.par.alloc_fn = scratchAlloc;
        engine.par.free_fn = scratchFree;
        engine_ready.store(true, .release);
    }
    return &engine;
}

/// Scratch memory for kernels (packing buffers, workspaces), lent from the CPU pool.
fn scratchAlloc(ctx: ?*anyopaque, bytes: usize) callconv(.c) ?[*]align(64) u8 {
    const p: *pool_mod.CpuPool = @ptrCast(@alignCast(ctx.?));
    return p.alloc(bytes) catch null;
}

fn scratchFree(ctx: ?*anyopaque, ptr: [*]align(64) u8) callconv(.c) void {
    const p: *pool_mod.CpuPool = @ptrCast(@alignCast(ctx.?));
    p.free(ptr) catch unreachable;
}

fn bestCompiled(best: features.Level) features.Level {
    var chosen: features.Level = .scalar;
    inline for (levels) |name| {
        const l = features.Level.parse(name).?;
        if (l.runsOn(best) and @intFromEnum(l) >= @intFromEnum(chosen)) chosen = l;
    }
    return chosen;
}

/// The pool of engine device `device`: 0 = CPU, 1 + i = cuda:i (when present).
fn poolFor(device: u32) ?devices.AnyPool {
    if (device == 0) return devices.AnyPool.of(pool_mod.CpuPool, &getEngine().cpu_pool);
    return devices.gpuPool(device);
}

// ---------------------------------------------------------------------------------------------
// Argument checks
// ---------------------------------------------------------------------------------------------

/// A non-negative whole number below 2^53 from an f64 argument.
fn count(x: f64) ?usize {
    if (!(x >= 0 and x <= 9007199254740992.0) or @floor(x) != x) return null;
    return @intFromFloat(x);
}

fn dtypeArg(code: u32) ?DType {
    return DType.fromInt(code);
}

/// Fills a k-operand layout from the mailbox: shape at `shape`, operand i's strides at
/// `strides<i>`. Returns an error status (as from `fail`) or null.
fn readLayout(comptime k: usize, op: []const u8, ndim: u32, layout: *strided.Layout(k)) ?i32 {
    if (ndim > strided.max_ndim) return fail(.shape, "{s}: {d} dimensions (at most {d})", .{ op, ndim, strided.max_ndim });
    const m = mailbox();
    const bases = [_]usize{ mb.strides0, mb.strides1, mb.strides2, mb.strides3 };
    layout.ndim = ndim;
    for (0..ndim) |i| {
        layout.shape[i] = count(m.f[mb.shape + i]) orelse return fail(.shape, "{s}: invalid dimension {d}", .{ op, m.f[mb.shape + i] });
        inline for (0..k) |o| {
            const v = m.f[bases[o] + i];
            if (@floor(v) != v or !(@abs(v) < 9007199254740992.0)) return fail(.invalid_argument, "{s}: invalid stride {d}", .{ op, v });
            layout.strides[o][i] = @intFromFloat(v);
        }
    }
    return null;
}

/// The float dtypes a tensor can have (f64 is only an interchange type).
fn isTensorFloat(d: DType) bool {
    return d == .f32 or d == .f16 or d == .bf16;
}

fn dtypeOr(code: u32, op: []const u8) union(enum) { ok: DType, err: i32 } {
    if (DType.fromInt(code)) |d| return .{ .ok = d };
    return .{ .err = fail(.dtype, "{s}: unknown dtype code {d}", .{ op, code }) };
}

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
/// and the message holds why there is none; with index i >= 0, info[0..9] = compute capability
/// major, minor, multiprocessors, L2 bytes, SM clock kHz, memory bus bits, memory clock kHz, total
/// bytes, free bytes, and the message holds the device's name.
export fn bn_cuda_info(index: i32) i32 {
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
    };
    @memcpy(m.f[mb.info..][0..rec.len], &rec);
    return okMessage("{s}", .{inf.name[0..inf.name_len]});
}

/// Copies `nbytes` contiguous bytes from `src` on engine device `src_dev` to `dst` on `dst_dev`
/// (0 = host memory, 1 + i = cuda:i): host to device, device to host, device to device (also
/// across devices) and host to host. Returns when the copy is complete.
export fn bn_memcpy(dst_dev: u32, dst: ?*anyopaque, src_dev: u32, src: ?*const anyopaque, nbytes: f64) i32 {
    const n = count(nbytes) orelse return fail(.invalid_argument, "memcpy: invalid byte count {d}", .{nbytes});
    if (n == 0) return ok();
    const d = dst orelse return fail(.invalid_argument, "memcpy: null destination", .{});
    const s = src orelse return fail(.invalid_argument, "memcpy: null source", .{});
    const di = devices.cudaIndex(dst_dev);
    const si = devices.cudaIndex(src_dev);
    if ((dst_dev != 0 and di == null) or (src_dev != 0 and si == null)) return fail(.device, "memcpy: unknown device index {d} or {d}", .{ dst_dev, src_dev });
    if ((di != null and di.? >= cuda.deviceCount()) or (si != null and si.? >= cuda.deviceCount())) return fail(.device, "memcpy: cuda device not present", .{});
    const r: ?cuda.Failure = if (di == null and si == null) blk: {
        @memcpy(@as([*]u8, @ptrCast(d))[0..n], @as([*]const u8, @ptrCast(s))[0..n]);
        break :blk null;
    } else if (si == null) cuda.copyHtoD(di.?, @intFromPtr(d), s, n) else if (di == null) cuda.copyDtoH(si.?, d, @intFromPtr(s), n) else cuda.copyDtoD(di.?, @intFromPtr(d), si.?, @intFromPtr(s), n);
    if (r) |f| return fail(if (f.code == 2) .out_of_memory else .internal, "memcpy: {d} bytes from device {d} to device {d}: {s}", .{ n, src_dev, dst_dev, cuda.errorName(f.code) });
    return ok();
}

// ---- CUDA elementwise kernels (zig/gpu/elementwise.cu). Layouts as the CPU exports read them. ----

/// The CUDA kernel `k` of engine device `device` and its index, or an error status.
fn cudaKernel(device: u32, k: cuda.Kernel, op: []const u8) union(enum) { ok: struct { i: usize, f: *anyopaque }, err: i32 } {
    const i = devices.cudaIndex(device) orelse return .{ .err = fail(.device, "{s}: device index {d} is not a CUDA device", .{ op, device }) };
    if (i >= cuda.deviceCount()) return .{ .err = fail(.device, "{s}: cuda:{d} is not present", .{ op, i }) };
    const f = cuda.function(i, k) orelse return .{ .err = fail(.unsupported, "{s}: the CUDA kernels could not be built: {s}", .{ op, cuda.kernelError() }) };
    return .{ .ok = .{ .i = i, .f = f } };
}

/// The kernels' layout descriptor from a checked strided layout (axes merged first; at most 8).
fn cudaLayout(comptime k: usize, l: *strided.Layout(k), op: []const u8, out: *cuda.Layout) ?i32 {
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

fn cudaLaunch(op: []const u8, i: usize, f: *anyopaque, n: usize, params: []?*anyopaque) i32 {
    if (cuda.launch(i, f, n, params)) |e| return fail(if (e.code == 2) .out_of_memory else .internal, "{s}: kernel launch on cuda:{d} failed: {s}", .{ op, i, cuda.errorName(e.code) });
    return ok();
}

fn cudaDType(code: u32, op: []const u8) ?i32 {
    const d = dtypeArg(code) orelse return fail(.dtype, "{s}: unknown dtype code {d}", .{ op, code });
    if (d == .f64) return fail(.dtype, "{s}: f64 is not a tensor dtype", .{op});
    return null;
}

/// out (out_dtype) = in (in_dtype) converted, on CUDA device `device`. Layout: 0 = out, 1 = in.
export fn bn_cuda_convert(device: u32, out: ?*anyopaque, out_dtype: u32, in: ?*const anyopaque, in_dtype: u32, ndim: u32) i32 {
    const op = "astype";
    if (cudaDType(out_dtype, op) orelse cudaDType(in_dtype, op)) |st| return st;
    var l: strided.Layout(2) = undefined;
    if (readLayout(2, op, ndim, &l)) |st| return st;
    const n = l.size();
    if (n == 0) return ok();
    var cl: cuda.Layout = undefined;
    if (cudaLayout(2, &l, op, &cl)) |st| return st;
    const kf = switch (cudaKernel(device, .convert, op)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    var nn: i64 = @intCast(n);
    var o = out;
    var od: c_int = @intCast(out_dtype);
    var x = in;
    var xd: c_int = @intCast(in_dtype);
    var params = [_]?*anyopaque{ @ptrCast(&cl), @ptrCast(&nn), @ptrCast(&o), @ptrCast(&od), @ptrCast(@constCast(&x)), @ptrCast(&xd) };
    return cudaLaunch(op, kf.i, kf.f, n, &params);
}

/// The CUDA form of bn_binary (same codes, flags and layout: 0 = out, 1 = a, 2 = b).
export fn bn_cuda_binary(device: u32, op_code: u32, dtype: u32, out: ?*anyopaque, out_dtype: u32, a: ?*const anyopaque, b: ?*const anyopaque, flags: u32, av: f64, bv: f64, ndim: u32) i32 {
    const op = "binary";
    if (cudaDType(dtype, op) orelse cudaDType(out_dtype, op)) |st| return st;
    if (op_code > 12) return fail(.invalid_argument, "{s}: unknown op code {d}", .{ op, op_code });
    var l: strided.Layout(3) = undefined;
    if (readLayout(3, op, ndim, &l)) |st| return st;
    const n = l.size();
    if (n == 0) return ok();
    var cl: cuda.Layout = undefined;
    if (cudaLayout(3, &l, op, &cl)) |st| return st;
    const kf = switch (cudaKernel(device, .binary, op)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    var nn: i64 = @intCast(n);
    var opc: c_int = @intCast(op_code);
    var dcode: c_int = @intCast(dtype);
    var o = out;
    var od: c_int = @intCast(out_dtype);
    var pa = a;
    var pb = b;
    var fl: c_int = @intCast(flags);
    var va = av;
    var vb = bv;
    var params = [_]?*anyopaque{ @ptrCast(&cl), @ptrCast(&nn), @ptrCast(&opc), @ptrCast(&dcode), @ptrCast(&o), @ptrCast(&od), @ptrCast(@constCast(&pa)), @ptrCast(@constCast(&pb)), @ptrCast(&fl), @ptrCast(&va), @ptrCast(&vb) };
    return cudaLaunch(op, kf.i, kf.f, n, &params);
}

/// The CUDA form of bn_unary (same codes and parameters; layout 0 = out, 1 = in).
export fn bn_cuda_unary(device: u32, op_code: u32, dtype: u32, out: ?*anyopaque, in: ?*const anyopaque, p0: f64, p1: f64, ndim: u32) i32 {
    const op = "unary";
    if (cudaDType(dtype, op)) |st| return st;
    if (op_code > 25) return fail(.invalid_argument, "{s}: unknown op code {d}", .{ op, op_code });
    var l: strided.Layout(2) = undefined;
    if (readLayout(2, op, ndim, &l)) |st| return st;
    const n = l.size();
    if (n == 0) return ok();
    var cl: cuda.Layout = undefined;
    if (cudaLayout(2, &l, op, &cl)) |st| return st;
    const kf = switch (cudaKernel(device, .unary, op)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    var nn: i64 = @intCast(n);
    var opc: c_int = @intCast(op_code);
    var dcode: c_int = @intCast(dtype);
    var o = out;
    var x = in;
    var q0 = p0;
    var q1 = p1;
    var params = [_]?*anyopaque{ @ptrCast(&cl), @ptrCast(&nn), @ptrCast(&opc), @ptrCast(&dcode), @ptrCast(&o), @ptrCast(@constCast(&x)), @ptrCast(&q0), @ptrCast(&q1) };
    return cudaLaunch(op, kf.i, kf.f, n, &params);
}

/// The CUDA form of bn_where (layout 0 = out, 1 = cond, 2 = a, 3 = b).
export fn bn_cuda_where(device: u32, dtype: u32, out: ?*anyopaque, cond: ?*const anyopaque, a: ?*const anyopaque, b: ?*const anyopaque, flags: u32, av: f64, bv: f64, ndim: u32) i32 {
    const op = "where";
    if (cudaDType(dtype, op)) |st| return st;
    var l: strided.Layout(4) = undefined;
    if (readLayout(4, op, ndim, &l)) |st| return st;
    const n = l.size();
    if (n == 0) return ok();
    var cl: cuda.Layout = undefined;
    if (cudaLayout(4, &l, op, &cl)) |st| return st;
    const kf = switch (cudaKernel(device, .where, op)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    var nn: i64 = @intCast(n);
    var dcode: c_int = @intCast(dtype);
    var o = out;
    var c = cond;
    var pa = a;
    var pb = b;
    var fl: c_int = @intCast(flags);
    var va = av;
    var vb = bv;
    var params = [_]?*anyopaque{ @ptrCast(&cl), @ptrCast(&nn), @ptrCast(&dcode), @ptrCast(&o), @ptrCast(@constCast(&c)), @ptrCast(@constCast(&pa)), @ptrCast(@constCast(&pb)), @ptrCast(&fl), @ptrCast(&va), @ptrCast(&vb) };
    return cudaLaunch(op, kf.i, kf.f, n, &params);
}

/// The CUDA form of bn_reduce (same codes and layout: kept axes first; 0 = out, 1 = in).
export fn bn_cuda_reduce(device: u32, op_code: u32, out: ?*anyopaque, out_dtype: u32, in: ?*const anyopaque, in_dtype: u32, kept: u32, ndim: u32, ddof: f64) i32 {
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
    var cl: cuda.Layout = std.mem.zeroes(cuda.Layout);
    cl.ndim = @intCast(ndim);
    for (0..ndim) |d| {
        cl.shape[d] = @intCast(l.shape[d]);
        cl.st[0][d] = l.strides[0][d];
        cl.st[1][d] = l.strides[1][d];
    }
    const kf = switch (cudaKernel(device, .reduce, op)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    var kk: i64 = @intCast(kept);
    var nkk: i64 = @intCast(nk);
    var nrr: i64 = @intCast(nr);
    var opc: c_int = @intCast(op_code);
    var dcode: c_int = @intCast(in_dtype);
    var o = out;
    var od: c_int = @intCast(out_dtype);
    var x = in;
    var dd = ddof;
    var params = [_]?*anyopaque{ @ptrCast(&cl), @ptrCast(&kk), @ptrCast(&nkk), @ptrCast(&nrr), @ptrCast(&opc), @ptrCast(&dcode), @ptrCast(&o), @ptrCast(&od), @ptrCast(@constCast(&x)), @ptrCast(&dd) };
    if (cuda.launchBlocks(kf.i, kf.f, nk, &params)) |e| return fail(.internal, "{s}: kernel launch on cuda:{d} failed: {s}", .{ op, kf.i, cuda.errorName(e.code) });
    return ok();
}

/// A row layout for the CUDA row kernels: the axis they run along stays last (no merging).
fn cudaRowLayout(l: *const strided.Layout(2), op: []const u8, out: *cuda.Layout, rows: *usize) ?i32 {
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

/// The CUDA form of bn_softmax (the axis is the layout's last; 0 = out, 1 = in).
export fn bn_cuda_softmax(device: u32, out: ?*anyopaque, in: ?*const anyopaque, dtype: u32, log: u32, ndim: u32) i32 {
    const op = "softmax";
    if (cudaDType(dtype, op)) |st| return st;
    var l: strided.Layout(2) = undefined;
    if (readLayout(2, op, ndim, &l)) |st| return st;
    if (l.size() == 0) return ok();
    var cl: cuda.Layout = undefined;
    var rows: usize = 0;
    if (cudaRowLayout(&l, op, &cl, &rows)) |st| return st;
    const kf = switch (cudaKernel(device, .softmax, op)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    var nrows: i64 = @intCast(rows);
    var lg: c_int = @intCast(log);
    var dcode: c_int = @intCast(dtype);
    var o = out;
    var x = in;
    var params = [_]?*anyopaque{ @ptrCast(&cl), @ptrCast(&nrows), @ptrCast(&lg), @ptrCast(&dcode), @ptrCast(&o), @ptrCast(@constCast(&x)) };
    if (cuda.launchBlocks(kf.i, kf.f, rows, &params)) |e| return fail(.internal, "{s}: kernel launch on cuda:{d} failed: {s}", .{ op, kf.i, cuda.errorName(e.code) });
    return ok();
}

/// The CUDA form of bn_norm (kind 0 layer, 1 rms, over the last axis; weight/bias may be null).
export fn bn_cuda_norm(device: u32, kind: u32, out: ?*anyopaque, in: ?*const anyopaque, dtype: u32, weight: ?*const anyopaque, bias: ?*const anyopaque, wb_dtype: u32, eps: f64, ndim: u32) i32 {
    const op = "norm";
    if (kind > 1) return fail(.invalid_argument, "{s}: unknown kind {d}", .{ op, kind });
    if (cudaDType(dtype, op) orelse cudaDType(wb_dtype, op)) |st| return st;
    var l: strided.Layout(2) = undefined;
    if (readLayout(2, op, ndim, &l)) |st| return st;
    if (l.size() == 0) return ok();
    var cl: cuda.Layout = undefined;
    var rows: usize = 0;
    if (cudaRowLayout(&l, op, &cl, &rows)) |st| return st;
    const kf = switch (cudaKernel(device, .norm, op)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    var nrows: i64 = @intCast(rows);
    var kd: c_int = @intCast(kind);
    var dcode: c_int = @intCast(dtype);
    var o = out;
    var x = in;
    var w = weight;
    var b = bias;
    var wd: c_int = @intCast(wb_dtype);
    var e = eps;
    var params = [_]?*anyopaque{ @ptrCast(&cl), @ptrCast(&nrows), @ptrCast(&kd), @ptrCast(&dcode), @ptrCast(&o), @ptrCast(@constCast(&x)), @ptrCast(@constCast(&w)), @ptrCast(@constCast(&b)), @ptrCast(&wd), @ptrCast(&e) };
    if (cuda.launchBlocks(kf.i, kf.f, rows, &params)) |err| return fail(.internal, "{s}: kernel launch on cuda:{d} failed: {s}", .{ op, kf.i, cuda.errorName(err.code) });
    return ok();
}

/// Waits for the work queued on CUDA device `device` (kernel errors surface here).
export fn bn_cuda_synchronize(device: u32) i32 {
    const i = devices.cudaIndex(device) orelse return fail(.device, "synchronize: device index {d} is not a CUDA device", .{device});
    if (i >= cuda.deviceCount()) return fail(.device, "synchronize: cuda:{d} is not present", .{i});
    if (cuda.synchronize(i)) |e| return fail(.internal, "synchronize: cuda:{d}: {s}", .{ i, cuda.errorName(e.code) });
    return ok();
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
    const id = switch (dtypeOr(in_dtype, "matmul")) {
        .ok => |v| v,
        .err => |e| return e,
    };
    const od = switch (dtypeOr(out_dtype, "matmul")) {
        .ok => |v| v,
        .err => |e| return e,
    };
    switch (id) {
        .f32, .f16, .bf16, .i32, .f64 => {},
        else => return fail(.dtype, "matmul: the kernel reads f32, f16, bf16 or i32 operands, not {t} (widen integers to i32 first)", .{id}),
    }
    const want: DType = if (isTensorFloat(id)) .f32 else if (id == .f64) .f64 else .i32;
    if (od != want) return fail(.dtype, "matmul of {t} accumulates in {t}, not {t}", .{ id, want, od });
    if (ndim < 3) return fail(.shape, "matmul: a layout needs [batch..., M, N, K], got {d} axes", .{ndim});
    var args: args_mod.GemmArgs = .{ .in_dtype = id, .out_dtype = od, .alpha = alpha, .beta = beta, .out = undefined, .a = undefined, .b = undefined, .layout = undefined };
    if (readLayout(3, "matmul", ndim, &args.layout)) |st| return st;
    var out_size: usize = 1;
    for (args.layout.shape[0 .. ndim - 1]) |dim| out_size *= dim;
    if (out_size == 0) return ok();
    args.out = @ptrCast(out orelse return fail(.invalid_argument, "matmul: null output", .{}));
    const kdim = args.layout.shape[ndim - 1];
    args.a = if (kdim == 0) @ptrCast(out.?) else @ptrCast(a orelse return fail(.invalid_argument, "matmul: null operand", .{}));
    args.b = if (kdim == 0) @ptrCast(out.?) else @ptrCast(b orelse return fail(.invalid_argument, "matmul: null operand", .{}));
    const e = getEngine();
    switch (e.table.gemm(&e.par, &args)) {
        0 => {},
        1 => return fail(.out_of_memory, "matmul: scratch memory for packing was refused", .{}),
        else => return fail(.dtype, "matmul: no kernel for {t}", .{id}),
    }
    return ok();
}

/// bn.linalg (args.LinalgArgs, zig/cpu/linalg.zig): op = args.LinalgOp over a batch of matrices.
/// Layout: shape [batch..., m, n] of a; strides0 = a's strides, strides1 = b's (solve: b is
/// [batch..., n, k], stride 0 on broadcast batch axes). Outputs are contiguous in out_dtype (f32,
/// f16 or bf16: the input's float dtype, f32 for integer inputs). flags: qr 1 = complete; svd bit
/// 0 = full matrices, bit 1 = compute U/Vt; norm_matrix: args.MatrixNorm. p: the vector norm order.
export fn bn_linalg(op: u32, in_dtype: u32, out_dtype: u32, a: ?*const anyopaque, b: ?*const anyopaque, out0: ?*anyopaque, out1: ?*anyopaque, out2: ?*anyopaque, k: f64, flags: u32, p: f64, ndim: u32) i32 {
    const lop = std.enums.fromInt(args_mod.LinalgOp, op) orelse return fail(.invalid_argument, "linalg: unknown op {d}", .{op});
    const name = @tagName(lop);
    const id = switch (dtypeOr(in_dtype, name)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    const od = switch (dtypeOr(out_dtype, name)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    if (id == .f64) return fail(.dtype, "{s}: {t} is not a tensor dtype", .{ name, id });
    const want: DType = if (isTensorFloat(id)) id else .f32;
    if (od != want) return fail(.dtype, "{s} of {t} gives {t}, not {t}", .{ name, id, want, od });
    if (ndim < 2) return fail(.shape, "{s}: needs [batch..., m, n], got {d} axes", .{ name, ndim });
    var args: args_mod.LinalgArgs = .{ .op = lop, .in_dtype = id, .out_dtype = od, .flags = flags, .k = 0, .p = p, .a = undefined, .b = null, .out = .{ @ptrCast(out0), @ptrCast(out1), @ptrCast(out2) }, .fail_item = 0, .fail_at = 0, .layout = undefined };
    if (readLayout(2, name, ndim, &args.layout)) |st| return st;
    const m = args.layout.shape[ndim - 2];
    const n = args.layout.shape[ndim - 1];
    var batch: usize = 1;
    for (args.layout.shape[0 .. ndim - 2]) |dim| batch *= dim;
    const outs: usize = switch (lop) {
        .inv, .det, .cholesky, .solve => 1,
        .qr, .eigh => 2,
        .svd => if (flags & 2 != 0) 3 else 1,
        .norm_vector, .norm_matrix => 1,
    };
    switch (lop) {
        .inv, .det, .cholesky, .eigh, .solve => if (m != n) return fail(.shape, "{s}: needs square matrices, got {d}x{d}", .{ name, m, n }),
        .qr => if (flags > 1) return fail(.invalid_argument, "qr: unknown mode flags {d}", .{flags}),
        .svd => if (flags > 3) return fail(.invalid_argument, "svd: unknown flags {d}", .{flags}),
        .norm_matrix => if (std.enums.fromInt(args_mod.MatrixNorm, flags) == null) return fail(.invalid_argument, "norm: unknown matrix order code {d}", .{flags}),
        .norm_vector => if (std.math.isNan(p)) return fail(.invalid_argument, "norm: the order is NaN", .{}),
    }
    if (lop == .solve) args.k = count(k) orelse return fail(.shape, "solve: invalid column count {d}", .{k});
    if (batch == 0) return ok();
    args.a = @ptrCast(a orelse return fail(.invalid_argument, "{s}: null operand", .{name}));
    if (lop == .solve) args.b = @ptrCast(b orelse return fail(.invalid_argument, "solve: null right-hand side", .{}));
    for (args.out[0..outs]) |o| if (o == null) return fail(.invalid_argument, "{s}: null output", .{name});
    const e = getEngine();
    const code = e.table.linalg(&e.par, &args);
    return switch (code) {
        0 => ok(),
        1 => fail(.out_of_memory, "scratch memory for a {d}x{d} matrix was refused", .{ m, n }),
        2 => fail(.linalg, "singular matrix (matrix {d} of the batch: pivot {d} is exactly zero)", .{ args.fail_item, args.fail_at }),
        3 => fail(.linalg, "matrix is not positive definite (matrix {d} of the batch: the leading minor of order {d} is not positive)", .{ args.fail_item, args.fail_at + 1 }),
        4 => fail(.linalg, "did not converge (matrix {d} of the batch; NaN or Inf in the input?)", .{args.fail_item}),
        else => fail(.internal, "{s}: unknown kernel status {d}", .{ name, code }),
    };
}

/// ggml's ternary block formats (args.TernaryPackArgs, zig/cpu/ternary_pack.zig) over `n`
/// weights (a multiple of 256, contiguous). op 0 pack: values (i8) + scales (f32 per block) ->
/// blocks; op 1 unpack: blocks -> values (i8) and, when not null, scales (f32); op 2 dequantize:
/// blocks -> out in dtype (f32, f16 or bf16). format: 0 = tq2_0, 1 = tq1_0.
export fn bn_ternary_pack(op: u32, format: u32, dtype: u32, values: ?*anyopaque, scales: ?*anyopaque, blocks: ?*anyopaque, out: ?*anyopaque, n: f64) i32 {
    const top = std.enums.fromInt(args_mod.TernaryOp, op) orelse return fail(.invalid_argument, "ternary_pack: unknown op {d}", .{op});
    const f = std.enums.fromInt(args_mod.TernaryFormat, format) orelse return fail(.invalid_argument, "ternary_pack: unknown format code {d}", .{format});
    const d = switch (dtypeOr(dtype, "ternary_pack")) {
        .ok => |v| v,
        .err => |e| return e,
    };
    const len = count(n) orelse return fail(.invalid_argument, "ternary_pack: invalid weight count {d}", .{n});
    if (len % 256 != 0) return fail(.shape, "ternary_pack: {t} blocks hold 256 weights; {d} weights is not a multiple of 256", .{ f, len });
    if (top == .dequantize and !isTensorFloat(d)) return fail(.dtype, "ternary_pack: dequantize gives f32, f16 or bf16, not {t}", .{d});
    if (top == .dequantize and f == .i2) return fail(.invalid_argument, "ternary_pack: i2 blocks carry no scale to dequantize with", .{});
    var args: args_mod.TernaryPackArgs = .{ .op = top, .format = f, .dtype = d, .nblocks = len / 256, .values = @ptrCast(values), .scales = @ptrCast(scales), .blocks = undefined, .out = @ptrCast(out), .fail_at = 0 };
    if (len == 0) return ok();
    args.blocks = @ptrCast(blocks orelse return fail(.invalid_argument, "ternary_pack: null blocks", .{}));
    switch (top) {
        .pack => if (values == null or (scales == null and f != .i2)) return fail(.invalid_argument, "ternary_pack: pack needs values and scales", .{}),
        .unpack => if (values == null) return fail(.invalid_argument, "ternary_pack: unpack needs a values buffer", .{}),
        .dequantize => if (out == null) return fail(.invalid_argument, "ternary_pack: null output", .{}),
    }
    const e = getEngine();
    if (e.table.ternary_pack(&e.par, &args) != 0) {
        const v: i8 = @as([*]const i8, @ptrCast(values.?))[args.fail_at];
        return fail(.invalid_argument, "ternary_pack: value {d} at index {d} is not -1, 0 or 1", .{ v, args.fail_at });
    }
    return ok();
}

/// Whether the current level has fused int8 dot products on this CPU (AVX-512 VNNI, AVX-VNNI,
/// NEON dot product), so the ternary kernel may use them.
fn dotExt(e: *const Engine) bool {
    const f = e.detected.features;
    return switch (e.level) {
        .avx512 => f.avx512_vnni,
        .avx2 => f.avx_vnni,
        .neon => f.dotprod,
        else => false,
    };
}

/// out[m, n] (f32) = x[m, k] @ wᵀ for a packed ternary w[n, k] (args.TernaryMatmulArgs,
/// zig/cpu/ternary_matmul.zig). format: 0 tq2_0, 1 tq1_0, 2 i2 (then scales: f32, scale_mode 0
/// tensor / 1 channel / 2 groups of `group` weights). x rows are `x_stride` elements apart.
/// `flags` bit 0: do not use fused dot-product instructions (tests compare both paths).
export fn bn_ternary_matmul(out: ?*anyopaque, x: ?*anyopaque, x_dtype: u32, w: ?*anyopaque, scales: ?*anyopaque, format: u32, scale_mode: u32, m: f64, n: f64, k: f64, x_stride: f64, group: f64, flags: u32) i32 {
    const name = "ternary_matmul";
    const f = std.enums.fromInt(args_mod.TernaryFormat, format) orelse return fail(.invalid_argument, "{s}: unknown format code {d}", .{ name, format });
    const d = switch (dtypeOr(x_dtype, name)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    if (!isTensorFloat(d)) return fail(.dtype, "{s}: activations must be f32, f16 or bf16, not {t}", .{ name, d });
    const mm = count(m) orelse return fail(.invalid_argument, "{s}: invalid token count {d}", .{ name, m });
    const nn = count(n) orelse return fail(.invalid_argument, "{s}: invalid row count {d}", .{ name, n });
    const kk = count(k) orelse return fail(.invalid_argument, "{s}: invalid inner size {d}", .{ name, k });
    const xs = count(x_stride) orelse return fail(.invalid_argument, "{s}: invalid row stride {d}", .{ name, x_stride });
    const g = count(group) orelse return fail(.invalid_argument, "{s}: invalid group {d}", .{ name, group });
    if (f != .i2 and kk % 256 != 0) return fail(.shape, "{s}: {t} rows hold whole 256-weight blocks; k = {d} is not a multiple of 256", .{ name, f, kk });
    if (f == .i2) {
        if (scale_mode > 2) return fail(.invalid_argument, "{s}: unknown scale mode {d}", .{ name, scale_mode });
        if (scale_mode == 2 and (g == 0 or g % 256 != 0 or kk % g != 0)) return fail(.shape, "{s}: group {d} must be a multiple of 256 dividing k = {d}", .{ name, g, kk });
        if (scales == null and mm * nn > 0) return fail(.invalid_argument, "{s}: i2 needs scales", .{name});
    }
    if (mm == 0 or nn == 0) return ok();
    const e = getEngine();
    const args: args_mod.TernaryMatmulArgs = .{
        .format = f,
        .x_dtype = d,
        .scale_mode = scale_mode,
        .dot_ext = @intFromBool(flags & 1 == 0 and dotExt(e)),
        .m = mm,
        .n = nn,
        .k = kk,
        .x_stride = xs,
        .group_blocks = g / 256,
        .x = @ptrCast(x orelse return fail(.invalid_argument, "{s}: null activations", .{name})),
        .w = @ptrCast(w orelse return fail(.invalid_argument, "{s}: null weights", .{name})),
        .scales = @ptrCast(@alignCast(scales)),
        .out = @ptrCast(@alignCast(out orelse return fail(.invalid_argument, "{s}: null output", .{name}))),
    };
    if (kk == 0) {
        @memset(args.out[0 .. mm * nn], 0);
        return ok();
    }
    if (e.table.ternary_matmul(&e.par, &args) != 0) return fail(.out_of_memory, "{s}: scratch memory for {d} tokens of {d} was refused", .{ name, mm, kk });
    return ok();
}

// ---- gradients, gather / scatter, optimizers ------------------------------------------------

/// A finite f64 argument, else null.
fn finite(x: f64) ?f64 {
    return if (std.math.isFinite(x)) x else null;
}

/// Backward of softmax (log = 0) or logSoftmax (log = 1) along the last axis, given y (the
/// forward's output) and the upstream gradient g, all of `dtype` (args.SoftmaxBackwardArgs).
/// Layout: strides0 = dx, strides1 = y, strides2 = g.
export fn bn_softmax_backward(dx: ?*anyopaque, y: ?*const anyopaque, g: ?*const anyopaque, dtype: u32, log: u32, ndim: u32) i32 {
    const name = "softmaxBackward";
    const d = switch (dtypeOr(dtype, name)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    if (!isTensorFloat(d)) return fail(.dtype, "{s}: needs f32, f16 or bf16, got {t}", .{ name, d });
    if (log > 1) return fail(.invalid_argument, "{s}: log must be 0 or 1, got {d}", .{ name, log });
    var args: args_mod.SoftmaxBackwardArgs = .{ .dtype = d, .log = log, .dx = undefined, .y = undefined, .g = undefined, .layout = undefined };
    if (readLayout(3, name, ndim, &args.layout)) |st| return st;
    if (args.layout.size() == 0) return ok();
    args.dx = @ptrCast(dx orelse return fail(.invalid_argument, "{s}: null output", .{name}));
    args.y = @ptrCast(y orelse return fail(.invalid_argument, "{s}: null input", .{name}));
    args.g = @ptrCast(g orelse return fail(.invalid_argument, "{s}: null gradient", .{name}));
    const e = getEngine();
    e.table.softmax_backward(&e.par, &args);
    return ok();
}

/// Backward of layerNorm (kind 0) or rmsNorm (kind 1) over the last axis (args.NormBackwardArgs):
/// dx from x, the upstream g (both `dtype`) and the optional weight (`w_dtype`); dweight (sum of
/// g * xhat over rows) and dbias (sum of g) are f32 vectors of the last axis' length, each filled
/// when not null. Layout: strides0 = dx, strides1 = x, strides2 = g.
export fn bn_norm_backward(kind: u32, dx: ?*anyopaque, x: ?*const anyopaque, g: ?*const anyopaque, dtype: u32, weight: ?*const anyopaque, w_dtype: u32, dweight: ?*anyopaque, dbias: ?*anyopaque, eps: f64, ndim: u32) i32 {
    const name = "normBackward";
    const k = std.enums.fromInt(args_mod.NormKind, kind) orelse return fail(.invalid_argument, "{s}: unknown kind {d}", .{ name, kind });
    const d = switch (dtypeOr(dtype, name)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    const wd = switch (dtypeOr(w_dtype, name)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    if (!isTensorFloat(d)) return fail(.dtype, "{s}: needs f32, f16 or bf16, got {t}", .{ name, d });
    if (weight != null and !isTensorFloat(wd)) return fail(.dtype, "{s}: the weight must be f32, f16 or bf16, not {t}", .{ name, wd });
    if (!(eps >= 0) or !std.math.isFinite(eps)) return fail(.invalid_argument, "{s}: eps must be finite and >= 0, got {d}", .{ name, eps });
    if (ndim == 0) return fail(.shape, "{s}: a 0-d layout has no last axis", .{name});
    var args: args_mod.NormBackwardArgs = .{ .kind = k, .dtype = d, .w_dtype = wd, .eps = eps, .dx = undefined, .x = undefined, .g = undefined, .weight = @ptrCast(weight), .dweight = @ptrCast(@alignCast(dweight)), .dbias = @ptrCast(@alignCast(dbias)), .layout = undefined };
    if (readLayout(3, name, ndim, &args.layout)) |st| return st;
    const len = args.layout.shape[ndim - 1];
    if (args.layout.size() == 0) {
        if (args.dweight) |p| @memset(p[0..len], 0);
        if (args.dbias) |p| @memset(p[0..len], 0);
        return ok();
    }
    args.dx = @ptrCast(dx orelse return fail(.invalid_argument, "{s}: null output", .{name}));
    args.x = @ptrCast(x orelse return fail(.invalid_argument, "{s}: null input", .{name}));
    args.g = @ptrCast(g orelse return fail(.invalid_argument, "{s}: null gradient", .{name}));
    const e = getEngine();
    if (e.table.norm_backward(&e.par, &args) != 0) return fail(.out_of_memory, "{s}: scratch memory for rows of {d} was refused", .{ name, len });
    return ok();
}

/// Reads the [outer, axis_len, inner] view and the index count of a take / indexAdd call.
fn gatherArgs(name: []const u8, dtype: u32, idx_dtype: u32, outer: f64, axis_len: f64, inner: f64, nidx: f64, a: *args_mod.GatherArgs) ?i32 {
    a.dtype = switch (dtypeOr(dtype, name)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    a.idx_dtype = switch (dtypeOr(idx_dtype, name)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    switch (a.idx_dtype) {
        .i8, .i16, .i32, .u8, .u16, .u32 => {},
        else => return fail(.dtype, "{s}: indices must be an integer dtype, not {t}", .{ name, a.idx_dtype }),
    }
    if (a.dtype == .f64) return fail(.dtype, "{s}: {t} is not a tensor dtype", .{ name, a.dtype });
    a.outer = count(outer) orelse return fail(.shape, "{s}: invalid outer size {d}", .{ name, outer });
    a.axis_len = count(axis_len) orelse return fail(.shape, "{s}: invalid axis size {d}", .{ name, axis_len });
    a.inner = count(inner) orelse return fail(.shape, "{s}: invalid inner size {d}", .{ name, inner });
    a.nidx = count(nidx) orelse return fail(.shape, "{s}: invalid index count {d}", .{ name, nidx });
    return null;
}

/// Maps a take / indexAdd kernel result to a status.
fn gatherStatus(name: []const u8, code: u32, a: *const args_mod.GatherArgs) i32 {
    return switch (code) {
        0 => ok(),
        1 => fail(.shape, "{s}: index {d} is out of bounds for an axis of size {d} (position {d} of the indices)", .{ name, a.fail_value, a.axis_len, a.fail_at }),
        2 => fail(.out_of_memory, "{s}: scratch memory for {d} indices was refused", .{ name, a.nidx }),
        else => fail(.internal, "{s}: unknown kernel status {d}", .{ name, code }),
    };
}

/// out [outer, nidx, inner] = x [outer, axis_len, inner][:, idx, :] (args.GatherArgs): x and out
/// contiguous of any `dtype`, idx contiguous of any integer dtype (negative counts from the end).
/// An out-of-range index is a shape error naming the first one; then nothing is written.
export fn bn_take(out: ?*anyopaque, x: ?*const anyopaque, dtype: u32, idx: ?*const anyopaque, idx_dtype: u32, outer: f64, axis_len: f64, inner: f64, nidx: f64) i32 {
    const name = "take";
    var a: args_mod.GatherArgs = .{ .dtype = undefined, .idx_dtype = undefined, .src_dtype = .f32, .outer = 0, .axis_len = 0, .inner = 0, .nidx = 0, .out = undefined, .x = undefined, .idx = undefined, .fail_at = 0, .fail_value = 0 };
    if (gatherArgs(name, dtype, idx_dtype, outer, axis_len, inner, nidx, &a)) |st| return st;
    if (a.nidx == 0) return ok();
    a.idx = @ptrCast(idx orelse return fail(.invalid_argument, "{s}: null indices", .{name}));
    const writes = a.outer * a.inner > 0;
    a.out = if (writes) @ptrCast(out orelse return fail(.invalid_argument, "{s}: null output", .{name})) else undefined;
    a.x = if (writes) @ptrCast(x orelse return fail(.invalid_argument, "{s}: null input", .{name})) else undefined;
    const e = getEngine();
    return gatherStatus(name, e.table.take(&e.par, &a), &a);
}

/// target [outer, axis_len, inner][:, idx[j], :] += src [outer, nidx, inner][:, j, :] for j in
/// order (args.GatherArgs): target and src contiguous floats, idx contiguous of any integer dtype.
/// An out-of-range index is a shape error naming the first one; then nothing is written.
export fn bn_index_add(target: ?*anyopaque, dtype: u32, src: ?*const anyopaque, src_dtype: u32, idx: ?*const anyopaque, idx_dtype: u32, outer: f64, axis_len: f64, inner: f64, nidx: f64) i32 {
    const name = "indexAdd_";
    var a: args_mod.GatherArgs = .{ .dtype = undefined, .idx_dtype = undefined, .src_dtype = undefined, .outer = 0, .axis_len = 0, .inner = 0, .nidx = 0, .out = undefined, .x = undefined, .idx = undefined, .fail_at = 0, .fail_value = 0 };
    if (gatherArgs(name, dtype, idx_dtype, outer, axis_len, inner, nidx, &a)) |st| return st;
    a.src_dtype = switch (dtypeOr(src_dtype, name)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    if (!isTensorFloat(a.dtype) or !isTensorFloat(a.src_dtype)) return fail(.dtype, "{s}: target and source must be f32, f16 or bf16, got {t} and {t}", .{ name, a.dtype, a.src_dtype });
    if (a.nidx == 0) return ok();
    a.idx = @ptrCast(idx orelse return fail(.invalid_argument, "{s}: null indices", .{name}));
    const writes = a.outer * a.inner > 0;
    a.out = if (writes) @ptrCast(target orelse return fail(.invalid_argument, "{s}: null target", .{name})) else undefined;
    a.x = if (writes) @ptrCast(src orelse return fail(.invalid_argument, "{s}: null source", .{name})) else undefined;
    const e = getEngine();
    return gatherStatus(name, e.table.index_add(&e.par, &a), &a);
}

/// One SGD step in place over n contiguous parameters p (`dtype`: f32, f16 or bf16) with
/// gradients g (same dtype) and the f32 momentum buffer buf (needed when momentum != 0). flags:
/// bit 0 maximize, bit 1 nesterov, bit 2 first step (buf := d). See zig/cpu/optim.zig.
export fn bn_sgd_update(p: ?*anyopaque, g: ?*const anyopaque, buf: ?*anyopaque, dtype: u32, n: f64, lr: f64, momentum: f64, dampening: f64, weight_decay: f64, flags: u32) i32 {
    const name = "sgdUpdate_";
    const d = switch (dtypeOr(dtype, name)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    if (!isTensorFloat(d)) return fail(.dtype, "{s}: parameters must be f32, f16 or bf16, not {t}", .{ name, d });
    const len = count(n) orelse return fail(.invalid_argument, "{s}: invalid length {d}", .{ name, n });
    if (flags > 7) return fail(.invalid_argument, "{s}: unknown flags {d}", .{ name, flags });
    const vals = [_]f64{ lr, momentum, dampening, weight_decay };
    for (vals) |v| if (finite(v) == null) return fail(.invalid_argument, "{s}: lr, momentum, dampening and weight decay must be finite, got {d}, {d}, {d}, {d}", .{ name, lr, momentum, dampening, weight_decay });
    if (flags & args_mod.optim_nesterov != 0 and (momentum <= 0 or dampening != 0)) return fail(.invalid_argument, "{s}: Nesterov momentum needs momentum > 0 and zero dampening", .{name});
    if (momentum != 0 and buf == null and len > 0) return fail(.invalid_argument, "{s}: momentum {d} needs a momentum buffer", .{ name, momentum });
    if (len == 0) return ok();
    const a: args_mod.OptimArgs = .{
        .kind = .sgd,
        .dtype = d,
        .flags = flags,
        .n = len,
        .lr = lr,
        .momentum = momentum,
        .dampening = dampening,
        .weight_decay = weight_decay,
        .beta1 = 0,
        .beta2 = 0,
        .eps = 0,
        .step = 0,
        .p = @ptrCast(p orelse return fail(.invalid_argument, "{s}: null parameters", .{name})),
        .g = @ptrCast(g orelse return fail(.invalid_argument, "{s}: null gradient", .{name})),
        .s0 = if (momentum != 0) @ptrCast(@alignCast(buf)) else null,
        .s1 = null,
        .s2 = null,
    };
    const e = getEngine();
    e.table.optim(&e.par, &a);
    return ok();
}

/// One AdamW step in place (decoupled weight decay, PyTorch semantics) over n contiguous
/// parameters p (`dtype`: f32, f16 or bf16) with gradients g (same dtype) and f32 state m, v and,
/// with amsgrad (flags bit 3), vmax. step: t >= 1, a whole number. flags: bit 0 maximize, bit 3
/// amsgrad. See zig/cpu/optim.zig.
export fn bn_adamw_update(p: ?*anyopaque, g: ?*const anyopaque, m: ?*anyopaque, v: ?*anyopaque, vmax: ?*anyopaque, dtype: u32, n: f64, lr: f64, beta1: f64, beta2: f64, eps: f64, weight_decay: f64, step: f64, flags: u32) i32 {
    const name = "adamwUpdate_";
    const d = switch (dtypeOr(dtype, name)) {
        .ok => |val| val,
        .err => |e| return e,
    };
    if (!isTensorFloat(d)) return fail(.dtype, "{s}: parameters must be f32, f16 or bf16, not {t}", .{ name, d });
    const len = count(n) orelse return fail(.invalid_argument, "{s}: invalid length {d}", .{ name, n });
    if (flags & ~(args_mod.optim_maximize | args_mod.optim_amsgrad) != 0) return fail(.invalid_argument, "{s}: unknown flags {d}", .{ name, flags });
    if (finite(lr) == null or finite(weight_decay) == null) return fail(.invalid_argument, "{s}: lr and weight decay must be finite, got {d} and {d}", .{ name, lr, weight_decay });
    if (!(beta1 >= 0 and beta1 < 1) or !(beta2 >= 0 and beta2 < 1)) return fail(.invalid_argument, "{s}: betas must be in [0, 1), got {d} and {d}", .{ name, beta1, beta2 });
    if (!(eps >= 0) or finite(eps) == null) return fail(.invalid_argument, "{s}: eps must be finite and >= 0, got {d}", .{ name, eps });
    const t = count(step) orelse return fail(.invalid_argument, "{s}: step must be a whole number >= 1, got {d}", .{ name, step });
    if (t < 1) return fail(.invalid_argument, "{s}: step must be a whole number >= 1, got {d}", .{ name, step });
    const ams = flags & args_mod.optim_amsgrad != 0;
    if (len == 0) return ok();
    const a: args_mod.OptimArgs = .{
        .kind = .adamw,
        .dtype = d,
        .flags = flags,
        .n = len,
        .lr = lr,
        .momentum = 0,
        .dampening = 0,
        .weight_decay = weight_decay,
        .beta1 = beta1,
        .beta2 = beta2,
        .eps = eps,
        .step = step,
        .p = @ptrCast(p orelse return fail(.invalid_argument, "{s}: null parameters", .{name})),
        .g = @ptrCast(g orelse return fail(.invalid_argument, "{s}: null gradient", .{name})),
        .s0 = @ptrCast(@alignCast(m orelse return fail(.invalid_argument, "{s}: null first moment", .{name}))),
        .s1 = @ptrCast(@alignCast(v orelse return fail(.invalid_argument, "{s}: null second moment", .{name}))),
        .s2 = if (ams) @ptrCast(@alignCast(vmax orelse return fail(.invalid_argument, "{s}: amsgrad needs the running maximum", .{name}))) else null,
    };
    const e = getEngine();
    e.table.optim(&e.par, &a);
    return ok();
}

test {
    _ = os;
    _ = threads;
    _ = pool_mod;
    _ = features;
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
