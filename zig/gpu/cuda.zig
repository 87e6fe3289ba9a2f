//! The CUDA backend's foundation, found at run time: the driver API is opened with dlopen
//! (`libcuda.so.1`) on first use and never linked, so the same library loads on machines with no
//! GPU. What is here: device discovery and properties, one primary context per device, device
//! memory for the pools (zig/pool.zig over `Backing(i)`), copies between host and device and
//! between devices, memset, and the kernels (elementwise.cu: elementwise ops and reductions;
//! nn.cu: softmax and norms; ternary.cu: the ternary matmul), compiled by NVRTC for the device on
//! first use (the CUBIN is kept in a disk cache keyed by a hash of the sources, so later processes
//! load it without NVRTC) and launched over the strided-layout descriptor the CPU kernels read.
//!
//! Every function that talks to the driver makes the device's primary context current on the
//! calling thread first (cheap when it already is), so any thread may call in.
const std = @import("std");
const os = @import("../os.zig");
const nvrtc = @import("nvrtc.zig");

/// Devices addressed by the engine (device index 1 + i is "cuda:i").
pub const max_devices = 8;

const CUresult = c_int;
const CUdevice = c_int;
const CUcontext = ?*anyopaque;
pub const CUdeviceptr = u64;

/// The driver entry points we use, resolved by name (the struct field names are the symbols).
const Api = struct {
    cuInit: *const fn (c_uint) callconv(.c) CUresult,
    cuDriverGetVersion: *const fn (*c_int) callconv(.c) CUresult,
    cuDeviceGetCount: *const fn (*c_int) callconv(.c) CUresult,
    cuDeviceGet: *const fn (*CUdevice, c_int) callconv(.c) CUresult,
    cuDeviceGetName: *const fn ([*]u8, c_int, CUdevice) callconv(.c) CUresult,
    cuDeviceTotalMem_v2: *const fn (*usize, CUdevice) callconv(.c) CUresult,
    cuDeviceGetAttribute: *const fn (*c_int, c_int, CUdevice) callconv(.c) CUresult,
    cuDevicePrimaryCtxRetain: *const fn (*CUcontext, CUdevice) callconv(.c) CUresult,
    cuCtxSetCurrent: *const fn (CUcontext) callconv(.c) CUresult,
    cuCtxGetCurrent: *const fn (*CUcontext) callconv(.c) CUresult,
    cuCtxSynchronize: *const fn () callconv(.c) CUresult,
    cuMemAlloc_v2: *const fn (*CUdeviceptr, usize) callconv(.c) CUresult,
    cuMemFree_v2: *const fn (CUdeviceptr) callconv(.c) CUresult,
    cuMemGetInfo_v2: *const fn (*usize, *usize) callconv(.c) CUresult,
    cuMemcpyHtoD_v2: *const fn (CUdeviceptr, *const anyopaque, usize) callconv(.c) CUresult,
    cuMemcpyDtoH_v2: *const fn (*anyopaque, CUdeviceptr, usize) callconv(.c) CUresult,
    cuMemcpyDtoD_v2: *const fn (CUdeviceptr, CUdeviceptr, usize) callconv(.c) CUresult,
    cuMemcpyPeer: *const fn (CUdeviceptr, CUcontext, CUdeviceptr, CUcontext, usize) callconv(.c) CUresult,
    cuMemsetD8_v2: *const fn (CUdeviceptr, u8, usize) callconv(.c) CUresult,
    cuMemHostAlloc: *const fn (*?*anyopaque, usize, c_uint) callconv(.c) CUresult,
    cuMemcpyHtoDAsync_v2: *const fn (CUdeviceptr, *const anyopaque, usize, ?*anyopaque) callconv(.c) CUresult,
    cuMemcpyDtoHAsync_v2: *const fn (*anyopaque, CUdeviceptr, usize, ?*anyopaque) callconv(.c) CUresult,
    cuEventCreate: *const fn (*?*anyopaque, c_uint) callconv(.c) CUresult,
    cuEventRecord: *const fn (?*anyopaque, ?*anyopaque) callconv(.c) CUresult,
    cuEventSynchronize: *const fn (?*anyopaque) callconv(.c) CUresult,
    cuGetErrorName: *const fn (CUresult, *?[*:0]const u8) callconv(.c) CUresult,
    cuModuleLoadData: *const fn (*?*anyopaque, *const anyopaque) callconv(.c) CUresult,
    cuModuleGetFunction: *const fn (*?*anyopaque, ?*anyopaque, [*:0]const u8) callconv(.c) CUresult,
    cuModuleUnload: *const fn (?*anyopaque) callconv(.c) CUresult,
    cuLaunchKernel: *const fn (?*anyopaque, c_uint, c_uint, c_uint, c_uint, c_uint, c_uint, c_uint, ?*anyopaque, ?[*]?*anyopaque, ?[*]?*anyopaque) callconv(.c) CUresult,
};

/// cuLaunchKernelEx (driver 12.0 and later; optional): a launch with attributes (cuda.h layouts).
const LaunchAttribute = extern struct {
    id: u32,
    pad: [4]u8 = .{ 0, 0, 0, 0 },
    value: [64]u8 = @splat(0),
};
const LaunchConfig = extern struct {
    grid: [3]c_uint,
    block: [3]c_uint,
    shared: c_uint,
    stream: ?*anyopaque,
    attrs: ?[*]LaunchAttribute,
    n_attrs: c_uint,
};
const launch_attr_programmatic_serialization: u32 = 6; // CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION
var cuLaunchKernelEx: ?*const fn (*const LaunchConfig, ?*anyopaque, ?[*]?*anyopaque, ?[*]?*anyopaque) callconv(.c) CUresult = null;

// CUdevice_attribute values (cuda.h).
const attr_sm_count = 16;
const attr_cc_major = 75;
const attr_cc_minor = 76;
const attr_l2_bytes = 38;
const attr_clock_khz = 13;
const attr_mem_bus_bits = 37;
const attr_mem_clock_khz = 36;

/// What the engine reports about one device.
pub const Info = struct {
    name: [128]u8 = std.mem.zeroes([128]u8),
    name_len: usize = 0,
    cc_major: i32 = 0,
    cc_minor: i32 = 0,
    sm_count: i32 = 0,
    l2_bytes: i32 = 0,
    clock_khz: i32 = 0,
    mem_bus_bits: i32 = 0,
    mem_clock_khz: i32 = 0,
    total_mem: usize = 0,
};

const State = enum { unknown, ready, absent };

var state: State = .unknown;
var lock: os.Lock = .{};
var api: Api = undefined;
var n_devices: usize = 0;
var contexts: [max_devices]CUcontext = @splat(null);
var infos: [max_devices]Info = @splat(.{});
var driver_version: i32 = 0;
var reason_buf: [256]u8 = undefined;
var reason_len: usize = 0;

fn setReason(comptime fmt: []const u8, args: anytype) void {
    const s = std.fmt.bufPrint(&reason_buf, fmt, args) catch reason_buf[0..0];
    reason_len = s.len;
}

/// Opens the driver and enumerates devices, once. Never fails: absence is a state with a reason.
pub fn init() void {
    if (@atomicLoad(State, &state, .acquire) != .unknown) return;
    lock.lock();
    defer lock.unlock();
    if (state != .unknown) return;
    load();
    @atomicStore(State, &state, if (n_devices > 0) .ready else .absent, .release);
}

fn load() void {
    if (os.getenv("BITNET_NO_CUDA")) |v| {
        if (v.len > 0 and !std.mem.eql(u8, v, "0")) return setReason("disabled by BITNET_NO_CUDA", .{});
    }
    const lib = os.dlopen("libcuda.so.1") orelse os.dlopen("libcuda.so") orelse {
        return setReason("the CUDA driver library (libcuda.so.1) was not found: no NVIDIA driver on this machine", .{});
    };
    inline for (@typeInfo(Api).@"struct".field_names) |name| {
        const p = os.dlsym(lib, name) orelse return setReason("the CUDA driver library lacks {s} (driver too old?)", .{name});
        @field(api, name) = @ptrCast(@alignCast(p));
    }
    if (os.dlsym(lib, "cuLaunchKernelEx")) |p| cuLaunchKernelEx = @ptrCast(@alignCast(p));
    var r = api.cuInit(0);
    if (r != 0) return setReason("cuInit failed: {s}", .{errorName(r)});
    _ = api.cuDriverGetVersion(&driver_version);
    var count: c_int = 0;
    r = api.cuDeviceGetCount(&count);
    if (r != 0) return setReason("cuDeviceGetCount failed: {s}", .{errorName(r)});
    if (count <= 0) return setReason("the CUDA driver reports no device", .{});
    const n: usize = @min(@as(usize, @intCast(count)), max_devices);
    for (0..n) |i| {
        var dev: CUdevice = 0;
        if (api.cuDeviceGet(&dev, @intCast(i)) != 0) break;
        var ctx: CUcontext = null;
        r = api.cuDevicePrimaryCtxRetain(&ctx, dev);
        if (r != 0) return setReason("cuDevicePrimaryCtxRetain(cuda:{d}) failed: {s}", .{ i, errorName(r) });
        contexts[i] = ctx;
        var inf: Info = .{};
        if (api.cuDeviceGetName(&inf.name, inf.name.len, dev) == 0) inf.name_len = std.mem.indexOfScalar(u8, &inf.name, 0) orelse inf.name.len;
        _ = api.cuDeviceTotalMem_v2(&inf.total_mem, dev);
        _ = api.cuDeviceGetAttribute(&inf.cc_major, attr_cc_major, dev);
        _ = api.cuDeviceGetAttribute(&inf.cc_minor, attr_cc_minor, dev);
        _ = api.cuDeviceGetAttribute(&inf.sm_count, attr_sm_count, dev);
        _ = api.cuDeviceGetAttribute(&inf.l2_bytes, attr_l2_bytes, dev);
        _ = api.cuDeviceGetAttribute(&inf.clock_khz, attr_clock_khz, dev);
        _ = api.cuDeviceGetAttribute(&inf.mem_bus_bits, attr_mem_bus_bits, dev);
        _ = api.cuDeviceGetAttribute(&inf.mem_clock_khz, attr_mem_clock_khz, dev);
        infos[i] = inf;
        n_devices = i + 1;
    }
    reason_len = 0;
}

/// The driver's name for a result code (e.g. "CUDA_ERROR_OUT_OF_MEMORY").
pub fn errorName(r: CUresult) []const u8 {
    var s: ?[*:0]const u8 = null;
    if (api.cuGetErrorName(r, &s) != 0 or s == null) return "CUDA_ERROR_UNKNOWN";
    return std.mem.span(s.?);
}

/// Number of usable devices (0 when absent).
pub fn deviceCount() usize {
    init();
    return if (state == .ready) n_devices else 0;
}

/// Why there is no device (empty when there are some).
pub fn absenceReason() []const u8 {
    init();
    return reason_buf[0..reason_len];
}

pub fn info(i: usize) ?*const Info {
    return if (i < deviceCount()) &infos[i] else null;
}

pub fn driverVersion() i32 {
    init();
    return driver_version;
}

/// A failed driver call: its result code (name through errorName).
pub const Failure = struct { code: CUresult };

fn current(i: usize) ?Failure {
    var cur: CUcontext = null;
    if (api.cuCtxGetCurrent(&cur) == 0 and cur == contexts[i]) return null;
    const r = api.cuCtxSetCurrent(contexts[i]);
    return if (r != 0) .{ .code = r } else null;
}

/// Makes device i's primary context current on this thread (for libraries such as cuBLAS).
pub fn makeCurrent(i: usize) ?Failure {
    return current(i);
}

fn check(r: CUresult) ?Failure {
    return if (r != 0) .{ .code = r } else null;
}

/// Bytes free and total on device i.
pub fn memInfo(i: usize, free: *usize, total: *usize) ?Failure {
    if (current(i)) |f| return f;
    return check(api.cuMemGetInfo_v2(free, total));
}

pub fn copyHtoD(i: usize, dst: CUdeviceptr, src: *const anyopaque, n: usize) ?Failure {
    if (current(i)) |f| return f;
    return check(api.cuMemcpyHtoD_v2(dst, src, n));
}

pub fn copyDtoH(i: usize, dst: *anyopaque, src: CUdeviceptr, n: usize) ?Failure {
    if (current(i)) |f| return f;
    return check(api.cuMemcpyDtoH_v2(dst, src, n));
}

/// Device to device: within one device, or between two (through the driver's peer copy).
pub fn copyDtoD(di: usize, dst: CUdeviceptr, si: usize, src: CUdeviceptr, n: usize) ?Failure {
    if (current(di)) |f| return f;
    if (di == si) return check(api.cuMemcpyDtoD_v2(dst, src, n));
    return check(api.cuMemcpyPeer(dst, contexts[di], src, contexts[si], n));
}

pub fn memset(i: usize, dst: CUdeviceptr, value: u8, n: usize) ?Failure {
    if (current(i)) |f| return f;
    return check(api.cuMemsetD8_v2(dst, value, n));
}

/// Device memory outside the pools (a library's long-lived workspace), or null.
pub fn rawAlloc(i: usize, n: usize) ?u64 {
    if (current(i) != null) return null;
    var p: CUdeviceptr = 0;
    return if (api.cuMemAlloc_v2(&p, n) == 0) p else null;
}

pub fn synchronize(i: usize) ?Failure {
    if (current(i)) |f| return f;
    return check(api.cuCtxSynchronize());
}

// ---- pinned staging for large host transfers ----------------------------------------------------

/// Two page-locked buffers a device and an event each: a large host→device copy is cut into
/// chunks that the CPU copies into one buffer while the DMA engine reads the other (device→host
/// the other way round). Made on the first large copy; kept for the process.
pub const Staging = struct {
    pub const chunk: usize = 8 * 1024 * 1024;
    buf: [2][*]u8,
    ev: [2]?*anyopaque,
    /// Whether a copy through buffer b may still be running (wait on ev[b] before reusing it).
    busy: [2]bool = .{ false, false },
    lock: os.Lock = .{},
};

var stagings: [max_devices]?Staging = @splat(null);
var staging_failed: [max_devices]bool = @splat(false);
var staging_lock: os.Lock = .{};

/// Device i's staging buffers, or null when page-locked memory cannot be had (callers then use
/// the driver's plain copies).
pub fn staging(i: usize) ?*Staging {
    staging_lock.lock();
    defer staging_lock.unlock();
    if (stagings[i] == null and !staging_failed[i]) {
        staging_failed[i] = true;
        if (current(i) != null) return null;
        var st: Staging = .{ .buf = undefined, .ev = .{ null, null } };
        for (0..2) |b| {
            var p: ?*anyopaque = null;
            if (api.cuMemHostAlloc(&p, Staging.chunk, 0) != 0 or p == null) return null;
            st.buf[b] = @ptrCast(p.?);
            if (api.cuEventCreate(&st.ev[b], 2) != 0) return null; // CU_EVENT_DISABLE_TIMING
        }
        stagings[i] = st;
        staging_failed[i] = false;
    }
    return if (stagings[i]) |*st| st else null;
}

/// Queues a copy from page-locked host memory to device i on the default stream.
pub fn copyHtoDAsync(i: usize, dst: CUdeviceptr, src: *const anyopaque, n: usize) ?Failure {
    if (current(i)) |f| return f;
    return check(api.cuMemcpyHtoDAsync_v2(dst, src, n, null));
}

/// Queues a copy from device i to page-locked host memory on the default stream.
pub fn copyDtoHAsync(i: usize, dst: *anyopaque, src: CUdeviceptr, n: usize) ?Failure {
    if (current(i)) |f| return f;
    return check(api.cuMemcpyDtoHAsync_v2(dst, src, n, null));
}

/// Marks the point the default stream has reached (device i's context must be current).
pub fn eventRecord(ev: ?*anyopaque) ?Failure {
    return check(api.cuEventRecord(ev, null));
}

/// Waits until the work before the event's record has finished.
pub fn eventSync(ev: ?*anyopaque) ?Failure {
    return check(api.cuEventSynchronize(ev));
}

// ---- device memory for the pools ----------------------------------------------------------------

/// Aligned block -> the address cuMemAlloc returned (blocks are over-allocated to reach the
/// pool's slab alignment, which the driver does not promise).
var bases: std.AutoHashMapUnmanaged(u64, u64) = .empty;
var bases_lock: os.Lock = .{};

/// The memory a pool of device i maps: device memory from cuMemAlloc. Blocks are never
/// dereferenced on the host (the pool keeps its metadata in host memory).
pub fn Backing(comptime i: usize) type {
    return struct {
        /// 2 MiB slabs: the driver's own allocation granularity for large blocks.
        pub const slab_size: usize = 2 * 1024 * 1024;
        pub fn map(len: usize, alignment: usize) ?[*]u8 {
            if (current(i) != null) return null;
            const total = std.math.add(usize, len, alignment) catch return null;
            var base: CUdeviceptr = 0;
            if (api.cuMemAlloc_v2(&base, total) != 0) return null;
            const aligned = std.mem.alignForward(u64, base, alignment);
            bases_lock.lock();
            defer bases_lock.unlock();
            bases.put(std.heap.c_allocator, aligned, base) catch {
                _ = api.cuMemFree_v2(base);
                return null;
            };
            return @ptrFromInt(aligned);
        }
        pub fn unmap(ptr: [*]u8, len: usize) void {
            _ = len;
            bases_lock.lock();
            const kv = bases.fetchRemove(@intFromPtr(ptr));
            bases_lock.unlock();
            const base = if (kv) |e| e.value else @intFromPtr(ptr);
            _ = current(i);
            _ = api.cuMemFree_v2(base);
        }
    };
}

// ---- kernels ------------------------------------------------------------------------------------

/// The strided layout the kernels walk (struct Layout in elementwise.cu).
pub const Layout = extern struct {
    ndim: i64,
    shape: [8]i64,
    st: [4][8]i64,
};

pub const Kernel = enum(u32) { convert, binary, unary, where, reduce, softmax, norm, tq_quantize, tq_matmul1, tq_matmul4, tq_matmul8, tq_gemv1, tq_mma };
const kernel_names = [_][*:0]const u8{ "bn_convert", "bn_binary", "bn_unary", "bn_where", "bn_reduce", "bn_softmax", "bn_norm", "bn_tq_quantize", "bn_tq_matmul1", "bn_tq_matmul4", "bn_tq_matmul8", "bn_tq_gemv1", "bn_tq_mma" };
/// One NVRTC program: the elementwise and reduction kernels, then the row kernels and the ternary
/// matmul (nn.cu and ternary.cu use elementwise.cu's helpers).
const source: [*:0]const u8 = @ptrCast(@embedFile("elementwise.cu") ++ @embedFile("nn.cu") ++ @embedFile("ternary.cu") ++ "\x00");

/// Compiles the kernels for sm_<cc> without a device (a check that the sources build with this
/// NVRTC): the CUBIN's size, or null with the log in `kernelError()`.
pub fn compileCheck(cc: i32) ?usize {
    compile_lock.lock();
    defer compile_lock.unlock();
    if (!nvrtc.available()) {
        const w = nvrtc.why;
        @memcpy(log_buf[0..w.len], w);
        log_len = w.len;
        return null;
    }
    const bin = nvrtc.compile(std.heap.c_allocator, source, "bitnet_kernels.cu", cc, &log_buf, &log_len) orelse return null;
    defer std.heap.c_allocator.free(bin);
    return bin.len;
}

var functions: [max_devices][kernel_names.len]?*anyopaque = @splat(@splat(null));
var compiled: [max_devices]bool = @splat(false);
var compile_lock: os.Lock = .{};
var log_buf: [8192]u8 = undefined;
var log_len: usize = 0;

/// Why the kernels of device i could not be made (after `function` returned null).
pub fn kernelError() []const u8 {
    return log_buf[0..log_len];
}

/// Where the kernel state of device i came from: 0 not yet, 1 compiled by NVRTC, 2 the disk cache.
pub var kernel_origin: [max_devices]u8 = @splat(0);

/// The kernel `k` on device i, made on first use: the CUBIN for sm_<cc> from the disk cache when
/// one was written for exactly these sources, else compiled by NVRTC (and written to the cache).
pub fn function(i: usize, k: Kernel) ?*anyopaque {
    if (@atomicLoad(bool, &compiled[i], .acquire)) return functions[i][@intFromEnum(k)];
    compile_lock.lock();
    defer compile_lock.unlock();
    if (!compiled[i]) {
        const gpa = std.heap.c_allocator;
        const cc = infos[i].cc_major * 10 + infos[i].cc_minor;
        var path_buf: [1024]u8 = undefined;
        const path = cachePath(&path_buf, cc);
        if (path) |p| if (os.readFile(gpa, p.ptr, 64 << 20)) |bin| {
            defer gpa.free(bin);
            if (loadModule(i, bin) == null) {
                kernel_origin[i] = 2;
                @atomicStore(bool, &compiled[i], true, .release);
                return functions[i][@intFromEnum(k)];
            }
            // A stale or damaged file: compile and write it again.
        };
        if (!nvrtc.available()) {
            const w = nvrtc.why;
            @memcpy(log_buf[0..w.len], w);
            log_len = w.len;
            return null;
        }
        const bin = nvrtc.compile(gpa, source, "bitnet_kernels.cu", cc, &log_buf, &log_len) orelse return null;
        defer gpa.free(bin);
        if (loadModule(i, bin)) |f| return moduleFail(f.what, f.code);
        if (path) |p| _ = os.writeFileAtomic(p, bin);
        kernel_origin[i] = 1;
        @atomicStore(bool, &compiled[i], true, .release);
    }
    return functions[i][@intFromEnum(k)];
}

/// Loads a CUBIN on device i and looks every kernel up (null when all went well).
fn loadModule(i: usize, bin: []const u8) ?struct { what: []const u8, code: CUresult } {
    if (current(i)) |f| return .{ .what = "cuCtxSetCurrent", .code = f.code };
    var module: ?*anyopaque = null;
    const r = api.cuModuleLoadData(&module, bin.ptr);
    if (r != 0) return .{ .what = "cuModuleLoadData", .code = r };
    for (kernel_names, 0..) |name, j| {
        const rf = api.cuModuleGetFunction(&functions[i][j], module, name);
        if (rf != 0) {
            _ = api.cuModuleUnload(module);
            return .{ .what = "cuModuleGetFunction", .code = rf };
        }
    }
    return null;
}

/// The disk cache file of the kernels for sm_<cc>: `$BITNET_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/bitnet-bun`, else `$HOME/.cache/bitnet-bun`, named after a hash of the
/// sources (an edited kernel never loads a stale CUBIN). Null when `BITNET_NO_KERNEL_CACHE` is
/// set or no folder is known.
fn cachePath(buf: []u8, cc: i32) ?[:0]const u8 {
    if (os.getenv("BITNET_NO_KERNEL_CACHE")) |v| {
        if (v.len > 0 and !std.mem.eql(u8, v, "0")) return null;
    }
    const hash = std.hash.Wyhash.hash(0x6269746e6574, std.mem.span(source));
    const name = "kernels-{x:0>16}-sm{d}.cubin";
    if (os.getenv("BITNET_CACHE_DIR")) |d| if (d.len > 0) return std.fmt.bufPrintSentinel(buf, "{s}/" ++ name, .{ d, hash, cc }, 0) catch null;
    if (os.getenv("XDG_CACHE_HOME")) |d| if (d.len > 0) return std.fmt.bufPrintSentinel(buf, "{s}/bitnet-bun/" ++ name, .{ d, hash, cc }, 0) catch null;
    if (os.getenv("HOME")) |d| if (d.len > 0) return std.fmt.bufPrintSentinel(buf, "{s}/.cache/bitnet-bun/" ++ name, .{ d, hash, cc }, 0) catch null;
    return null;
}

fn moduleFail(what: []const u8, r: CUresult) ?*anyopaque {
    const s = std.fmt.bufPrint(&log_buf, "{s} failed: {s}", .{ what, errorName(r) }) catch log_buf[0..0];
    log_len = s.len;
    return null;
}

/// Launches `f` over `n` elements (a grid-stride loop: up to 32 blocks of 256 per SM). `params`
/// holds pointers to each kernel argument, in order.
pub fn launch(i: usize, f: *anyopaque, n: usize, params: []?*anyopaque) ?Failure {
    return launchBlocks(i, f, (n + 255) / 256, params);
}

/// Launches `f` with up to `want` blocks of 256 threads (capped at 32 per SM; kernels loop).
pub fn launchBlocks(i: usize, f: *anyopaque, want: usize, params: []?*anyopaque) ?Failure {
    if (want == 0) return null;
    if (current(i)) |e| return e;
    const per_sm: usize = 32;
    const blocks: usize = @max(1, @min(want, @as(usize, @intCast(@max(infos[i].sm_count, 1))) * per_sm));
    return check(api.cuLaunchKernel(f, @intCast(blocks), 1, 1, 256, 1, 1, 0, null, params.ptr, null));
}

/// Launches `f` on a gx × gy grid of blocks of `threads` threads with `shared_bytes` of dynamic
/// shared memory (the caller sizes the grid; gy is capped at 65535 and kernels loop over the rest).
pub fn launchGrid(i: usize, f: *anyopaque, gx: usize, gy: usize, threads: u32, shared_bytes: u32, params: []?*anyopaque) ?Failure {
    if (gx == 0 or gy == 0) return null;
    if (current(i)) |e| return e;
    return check(api.cuLaunchKernel(f, @intCast(gx), @intCast(@min(gy, 65535)), 1, threads, 1, 1, shared_bytes, null, params.ptr, null));
}

/// launchGrid as a programmatic dependent launch where the device (sm_90 and later) and the
/// driver allow it: the kernel may start while the previous kernel on the stream drains, and must
/// execute `griddepcontrol.wait` before touching memory that kernel may write (ternary.cu
/// bn_tq_gemv1 loads only its weights before). Elsewhere an ordinary launch.
pub fn launchGridDependent(i: usize, f: *anyopaque, gx: usize, gy: usize, threads: u32, shared_bytes: u32, params: []?*anyopaque) ?Failure {
    const ex = cuLaunchKernelEx orelse return launchGrid(i, f, gx, gy, threads, shared_bytes, params);
    if (infos[i].cc_major < 9) return launchGrid(i, f, gx, gy, threads, shared_bytes, params);
    if (gx == 0 or gy == 0) return null;
    if (current(i)) |e| return e;
    var attr: LaunchAttribute = .{ .id = launch_attr_programmatic_serialization };
    attr.value[0] = 1; // programmaticStreamSerializationAllowed (an int)
    const cfg: LaunchConfig = .{ .grid = .{ @intCast(gx), @intCast(@min(gy, 65535)), 1 }, .block = .{ threads, 1, 1 }, .shared = shared_bytes, .stream = null, .attrs = @ptrCast(&attr), .n_attrs = 1 };
    return check(ex(&cfg, f, params.ptr, null));
}

/// Multiprocessors of device i.
pub fn smCount(i: usize) usize {
    return @intCast(@max(infos[i].sm_count, 1));
}
