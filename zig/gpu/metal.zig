//! The Metal backend's engine side (macOS). Like cuda.zig with the CUDA driver, it opens the shim
//! (metal/shim.m, C ABI in metal/bn_metal.h) at run time: `$BITNET_METAL_SHIM`, else
//! libbitnet_metal.dylib beside the engine library. Where there is no shim (every other system,
//! or a Mac without it) the device is absent, with the reason kept for `bn.devices()` users.
//!
//! Memory is the shim's shared-storage MTLBuffers: one address space with the CPU (unified
//! memory), so host↔device copies are memcpy once the queued work has finished, and the device's
//! pool maps its slabs from the shim. Work is queued by the shim in order; `synchronize` waits.
const std = @import("std");
const builtin = @import("builtin");
const os = @import("../os.zig");

/// metal/bn_metal.h BN_MTL_ABI.
pub const abi_version: i32 = 1;

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
};

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
    if (comptime !builtin.os.tag.isDarwin()) return setReason("Metal runs on macOS only", .{});
    if (os.getenv("BITNET_NO_METAL")) |v| {
        if (v.len > 0 and !std.mem.eql(u8, v, "0")) return setReason("disabled by BITNET_NO_METAL", .{});
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
    // On Linux (where the tests run here) there is no Metal; on a Mac without the shim beside the
    // test binary, the reason names the shim.
    if (comptime builtin.os.tag.isDarwin()) return error.SkipZigTest;
    try std.testing.expect(!present());
    try std.testing.expectEqualStrings("Metal runs on macOS only", reason());
    try std.testing.expectEqual(Status.unavailable, synchronize().?);
}
