//! The Metal backend's engine side (macOS). Like cuda.zig with the CUDA driver, it opens the shim
//! (metal/shim.m, C ABI in metal/bn_metal.h) at run time: `$BITNET_METAL_SHIM`, else
//! libbitnet_metal.dylib beside the engine library. Where there is no shim (every other system,
//! or a Mac without it) the device is absent, with the reason kept for `bn.devices()` users.
//!
//! Memory is the shim's shared-storage MTLBuffers: one address space with the CPU (unified
//! memory), so host↔device copies are memcpy once the queued work has finished, and the device's
//! pool maps its slabs from the shim. Work is queued by the shim in order; `synchronize` waits.
//! The engine's own kernels (metal/kernels.metal, embedded here) are handed to the shim as source
//! on first use and launched by name with a parameter record and buffer addresses.
//!
//! Off macOS, `$BITNET_METAL_SHIM` may name the CPU emulator of the shim (metal/emu.cpp, built by
//! `zig build metal-emu` for the tests): the same ABI, the same kernel source compiled as C++, so
//! every line of the engine's Metal path runs on Linux; only shim.m and Apple's compiler do not.
const std = @import("std");
const builtin = @import("builtin");
const os = @import("../os.zig");

/// metal/bn_metal.h BN_MTL_ABI.
pub const abi_version: i32 = 2;

/// metal/bn_metal.h bn_mtl_info.
pub const Info = extern struct {
    name: [128]u8,
    recommended_working_set: u64,
    max_buffer: u64,
    unified: u32,
    reserved: u32,
};

/// metal/bn_metal.h statuses.
pub const Status = enum(i32) { ok = 0, unavailable = 1, out_of_memory = 2, invalid = 3, failed = 4, _ };

const Api = struct {
    bn_mtl_abi: *const fn () callconv(.c) i32,
    bn_mtl_init: *const fn (?*Info) callconv(.c) i32,
    bn_mtl_message: *const fn () callconv(.c) [*:0]const u8,
    bn_mtl_alloc: *const fn (u64, u64) callconv(.c) ?*anyopaque,
    bn_mtl_free: *const fn (?*anyopaque) callconv(.c) i32,
    bn_mtl_synchronize: *const fn () callconv(.c) i32,
    bn_mtl_gemm: *const fn (u32, u64, u64, u64, ?*const anyopaque, u64, u32, ?*const anyopaque, u64, u32, ?*anyopaque, u64) callconv(.c) i32,
    bn_mtl_library: *const fn ([*]const u8, u64) callconv(.c) i32,
    bn_mtl_pipeline: *const fn ([*:0]const u8, *u32, *u32) callconv(.c) ?*anyopaque,
    bn_mtl_dispatch: *const fn (?*anyopaque, u32, u32, u32, [*]const Arg, u32) callconv(.c) i32,
};

/// metal/bn_metal.h bn_mtl_arg.
pub const Arg = extern struct { ptr: ?*const anyopaque, bytes: u64 };

/// The kernels of metal/kernels.metal (their names: "bn_" ++ the tag).
pub const Kernel = enum(u8) { convert, binary, unary, where, reduce, softmax, norm, tq_quantize, tq_gemv };
const source = @import("metal_kernels").source;

var api: Api = undefined;
const State = enum(u8) { unknown, ready, absent };
var state: State = .unknown;
var lock: os.Lock = .{};
var dev_info: Info = std.mem.zeroes(Info);
var reason_buf: [600]u8 = undefined;
var reason_len: usize = 0;

fn setReason(comptime fmt: []const u8, args: anytype) void {
    const s = std.fmt.bufPrint(&reason_buf, fmt, args) catch reason_buf[0..];
    reason_len = s.len;
}

fn init() void {
    if (@atomicLoad(State, &state, .acquire) != .unknown) return;
    lock.lock();
    defer lock.unlock();
    if (state != .unknown) return;
    load();
    @atomicStore(State, &state, if (reason_len == 0) .ready else .absent, .release);
}

fn load() void {
    if (os.getenv("BITNET_NO_METAL")) |v| {
        if (v.len > 0 and !std.mem.eql(u8, v, "0")) return setReason("disabled by BITNET_NO_METAL", .{});
    }
    // Elsewhere only a shim named explicitly (the CPU emulator) is opened.
    if (comptime !builtin.os.tag.isDarwin()) {
        const named = os.getenv("BITNET_METAL_SHIM") orelse "";
        if (named.len == 0) return setReason("Metal runs on macOS only", .{});
    }
    var path_buf: [1024]u8 = undefined;
    const path: [:0]const u8 = blk: {
        if (os.getenv("BITNET_METAL_SHIM")) |v| {
            if (v.len > 0 and v.len < path_buf.len) {
                @memcpy(path_buf[0..v.len], v);
                path_buf[v.len] = 0;
                break :blk path_buf[0..v.len :0];
            }
        }
        var self_buf: [1024]u8 = undefined;
        const self = os.selfPath(&self_buf) orelse return setReason("the engine library's own path is unknown, so the Metal shim cannot be found (set BITNET_METAL_SHIM)", .{});
        const dir = std.fs.path.dirname(self) orelse ".";
        const s = std.fmt.bufPrintSentinel(&path_buf, "{s}/libbitnet_metal.dylib", .{dir}, 0) catch return setReason("the Metal shim's path is too long", .{});
        break :blk s;
    };
    const lib = os.dlopen(path.ptr) orelse return setReason("the Metal shim ({s}) could not be opened", .{path});
    inline for (@typeInfo(Api).@"struct".field_names) |name| {
        const p = os.dlsym(lib, name) orelse return setReason("the Metal shim ({s}) lacks {s}", .{ path, name });
        @field(api, name) = @ptrCast(@alignCast(p));
    }
    const abi = api.bn_mtl_abi();
    if (abi != abi_version) return setReason("the Metal shim ({s}) has ABI {d}; this engine needs {d}", .{ path, abi, abi_version });
    if (api.bn_mtl_init(&dev_info) != 0) return setReason("{s}", .{std.mem.span(api.bn_mtl_message())});
}

/// Whether the Metal device is there (the shim is opened on first use).
pub fn present() bool {
    init();
    return state == .ready;
}

/// Why there is no Metal device ("" when there is one).
pub fn reason() []const u8 {
    init();
    return reason_buf[0..reason_len];
}

/// The device's facts (present() first).
pub fn info() *const Info {
    return &dev_info;
}

/// The shim's message for its last failure on this thread.
pub fn message() []const u8 {
    return std.mem.span(api.bn_mtl_message());
}

/// Waits for all queued work; the failure's status (message()) when a command buffer failed.
pub fn synchronize() ?Status {
    if (!present()) return .unavailable;
    const st = api.bn_mtl_synchronize();
    return if (st == 0) null else @enumFromInt(st);
}

/// Queues C = op(A)·op(B) on MPS (row-major; see bn_mtl_gemm). dtype 0 f32, 1 f16.
pub fn gemm(dtype: u32, m: u64, n: u64, k: u64, a: ?*const anyopaque, lda: u64, trans_a: bool, b: ?*const anyopaque, ldb: u64, trans_b: bool, c: ?*anyopaque, ldc: u64) ?Status {
    const st = api.bn_mtl_gemm(dtype, m, n, k, a, lda, @intFromBool(trans_a), b, ldb, @intFromBool(trans_b), c, ldc);
    return if (st == 0) null else @enumFromInt(st);
}

var kernel_lock: os.Lock = .{};
var library: enum(u8) { unknown, ready, failed } = .unknown;
var pipelines: [@typeInfo(Kernel).@"enum".field_names.len]?*anyopaque = @splat(null);
var kernel_reason: [1024]u8 = undefined;
var kernel_reason_len: usize = 0;

/// Why the kernels are not usable (after pipeline() returned null).
pub fn kernelError() []const u8 {
    return kernel_reason[0..kernel_reason_len];
}

/// The pipeline of kernel k: the library is compiled from the embedded source on first use (a
/// compiler error is kept and returned by kernelError() for every later call), pipelines are
/// built once and kept.
pub fn pipeline(k: Kernel) ?*anyopaque {
    if (!present()) return null;
    kernel_lock.lock();
    defer kernel_lock.unlock();
    if (pipelines[@intFromEnum(k)]) |p| return p;
    if (library == .failed) return null;
    if (library == .unknown) {
        if (api.bn_mtl_library(source.ptr, source.len) != 0) {
            library = .failed;
            const s = std.fmt.bufPrint(&kernel_reason, "the Metal kernels did not compile: {s}", .{message()}) catch kernel_reason[0..];
            kernel_reason_len = s.len;
            return null;
        }
        library = .ready;
    }
    var name_buf: [64]u8 = undefined;
    const name = std.fmt.bufPrintSentinel(&name_buf, "bn_{t}", .{k}, 0) catch unreachable;
    var max_threads: u32 = 0;
    var simd_width: u32 = 0;
    const p = api.bn_mtl_pipeline(name.ptr, &max_threads, &simd_width) orelse {
        const s = std.fmt.bufPrint(&kernel_reason, "the Metal pipeline {s} could not be built: {s}", .{ name, message() }) catch kernel_reason[0..];
        kernel_reason_len = s.len;
        return null;
    };
    // The kernels take threadgroups of 256 threads in simdgroups of 32.
    if (max_threads < 256 or simd_width != 32) {
        const s = std.fmt.bufPrint(&kernel_reason, "the Metal pipeline {s} allows {d} threads a threadgroup in SIMD groups of {d} (the kernels need 256 and 32)", .{ name, max_threads, simd_width }) catch kernel_reason[0..];
        kernel_reason_len = s.len;
        return null;
    }
    pipelines[@intFromEnum(k)] = p;
    return p;
}

/// Queues pipeline p over gx × gy threadgroups of `threads`, with the parameter record `params`
/// (a pointer to an extern struct that mirrors the kernel's) in buffer 0 and `bufs` in 1 ...
/// (device addresses; a null one is bound to the first non-null: every declared buffer is bound).
pub fn dispatch(p: *anyopaque, gx: u32, gy: u32, threads: u32, params: anytype, bufs: []const ?*const anyopaque) ?Status {
    var args: [6]Arg = undefined;
    args[0] = .{ .ptr = params, .bytes = @sizeOf(@TypeOf(params.*)) };
    var any: ?*const anyopaque = null;
    for (bufs) |b| {
        if (any == null) any = b;
    }
    for (0..5) |i| args[1 + i] = .{ .ptr = if (i < bufs.len and bufs[i] != null) bufs[i] else any, .bytes = 0 };
    const st = api.bn_mtl_dispatch(p, gx, gy, threads, &args, 6);
    return if (st == 0) null else @enumFromInt(st);
}

/// The memory the Metal device's pool maps: shared-storage buffers from the shim (CPU-visible).
pub const Backing = struct {
    /// 2 MiB slabs, as for CUDA devices: one MTLBuffer each.
    pub const slab_size: usize = 2 * 1024 * 1024;
    pub fn map(len: usize, alignment: usize) ?[*]u8 {
        if (!present()) return null;
        const p = api.bn_mtl_alloc(len, alignment) orelse return null;
        return @ptrCast(p);
    }
    pub fn unmap(ptr: [*]u8, len: usize) void {
        _ = len;
        _ = api.bn_mtl_free(ptr);
    }
};

test "without the shim the device is absent and says why" {
    // On Linux (where the tests run here) there is no Metal unless a shim is named; on a Mac
    // without the shim beside the test binary, the reason names the shim.
    if (comptime builtin.os.tag.isDarwin()) return error.SkipZigTest;
    if (os.getenv("BITNET_METAL_SHIM") != null) return error.SkipZigTest;
    try std.testing.expect(!present());
    try std.testing.expectEqualStrings("Metal runs on macOS only", reason());
    try std.testing.expectEqual(Status.unavailable, synchronize().?);
}
