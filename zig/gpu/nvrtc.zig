//! NVRTC, found at run time: compiles the CUDA C kernel sources embedded in the library to CUBIN
//! for the device's compute capability. Searched as `BITNET_NVRTC` (a path), then libnvrtc.so
//! (and .so.13, .so.12) on the loader's path, then the CUDA toolkit's usual folder.
const std = @import("std");
const os = @import("../os.zig");

const Result = c_int;
const Program = ?*anyopaque;

const Api = struct {
    nvrtcVersion: *const fn (*c_int, *c_int) callconv(.c) Result,
    nvrtcCreateProgram: *const fn (*Program, [*:0]const u8, [*:0]const u8, c_int, ?[*]const [*:0]const u8, ?[*]const [*:0]const u8) callconv(.c) Result,
    nvrtcCompileProgram: *const fn (Program, c_int, [*]const [*:0]const u8) callconv(.c) Result,
    nvrtcGetCUBINSize: *const fn (Program, *usize) callconv(.c) Result,
    nvrtcGetCUBIN: *const fn (Program, [*]u8) callconv(.c) Result,
    nvrtcGetProgramLogSize: *const fn (Program, *usize) callconv(.c) Result,
    nvrtcGetProgramLog: *const fn (Program, [*]u8) callconv(.c) Result,
    nvrtcDestroyProgram: *const fn (*Program) callconv(.c) Result,
    nvrtcGetErrorString: *const fn (Result) callconv(.c) [*:0]const u8,
};

var api: Api = undefined;
var state: enum { unknown, ready, absent } = .unknown;
var lock: os.Lock = .{};
var version: [2]c_int = .{ 0, 0 };

const candidates = [_][*:0]const u8{
    "libnvrtc.so",
    "libnvrtc.so.13",
    "libnvrtc.so.12",
    "/usr/local/cuda/lib64/libnvrtc.so",
    "/usr/local/cuda/lib64/libnvrtc.so.13",
    "/usr/local/cuda/lib64/libnvrtc.so.12",
};

fn open() ?*anyopaque {
    if (os.getenv("BITNET_NVRTC")) |p| {
        var buf: [512]u8 = undefined;
        if (p.len < buf.len) {
            @memcpy(buf[0..p.len], p);
            buf[p.len] = 0;
            if (os.dlopen(@ptrCast(&buf))) |h| return h;
        }
    }
    for (candidates) |name| if (os.dlopen(name)) |h| return h;
    return null;
}

/// Loads NVRTC once; false when it is not there (the reason is then in `why`).
pub fn available() bool {
    if (@atomicLoad(@TypeOf(state), &state, .acquire) != .unknown) return state == .ready;
    lock.lock();
    defer lock.unlock();
    if (state == .unknown) {
        state = .absent;
        if (open()) |h| {
            var ok = true;
            inline for (@typeInfo(Api).@"struct".field_names) |name| {
                if (os.dlsym(h, name)) |p| @field(api, name) = @ptrCast(@alignCast(p)) else ok = false;
            }
            if (ok) {
                _ = api.nvrtcVersion(&version[0], &version[1]);
                state = .ready;
            }
        }
    }
    return state == .ready;
}

pub const why = "NVRTC (libnvrtc.so) was not found: install the CUDA toolkit's NVRTC or set BITNET_NVRTC to its path";

/// Compiles `source` for sm_<cc> to CUBIN (allocated with `gpa`). On failure returns null and
/// writes the compiler's log (or the error) into `log`, setting `log_len`.
pub fn compile(gpa: std.mem.Allocator, source: [*:0]const u8, name: [*:0]const u8, cc: i32, log: []u8, log_len: *usize) ?[]u8 {
    log_len.* = 0;
    var prog: Program = null;
    var r = api.nvrtcCreateProgram(&prog, source, name, 0, null, null);
    if (r != 0) return fail(log, log_len, "nvrtcCreateProgram: {s}", .{std.mem.span(api.nvrtcGetErrorString(r))});
    defer _ = api.nvrtcDestroyProgram(&prog);
    var arch_buf: [40]u8 = undefined;
    const arch = std.fmt.bufPrintSentinel(&arch_buf, "--gpu-architecture=sm_{d}", .{cc}, 0) catch unreachable;
    const opts = [_][*:0]const u8{ arch.ptr, "--std=c++17", "-default-device" };
    r = api.nvrtcCompileProgram(prog, opts.len, &opts);
    if (r != 0) {
        var n: usize = 0;
        _ = api.nvrtcGetProgramLogSize(prog, &n);
        if (n > 0 and n <= log.len) {
            _ = api.nvrtcGetProgramLog(prog, log.ptr);
            log_len.* = n - 1;
        } else _ = fail(log, log_len, "nvrtcCompileProgram: {s}", .{std.mem.span(api.nvrtcGetErrorString(r))});
        return null;
    }
    var size: usize = 0;
    if (api.nvrtcGetCUBINSize(prog, &size) != 0 or size == 0) return fail(log, log_len, "nvrtcGetCUBINSize failed", .{});
    const bin = gpa.alloc(u8, size) catch return fail(log, log_len, "out of host memory for {d} bytes of CUBIN", .{size});
    if (api.nvrtcGetCUBIN(prog, bin.ptr) != 0) {
        gpa.free(bin);
        return fail(log, log_len, "nvrtcGetCUBIN failed", .{});
    }
    return bin;
}

fn fail(log: []u8, log_len: *usize, comptime fmt: []const u8, args: anytype) ?[]u8 {
    const s = std.fmt.bufPrint(log, fmt, args) catch log[0..0];
    log_len.* = s.len;
    return null;
}

pub fn versionNumber() i32 {
    return version[0] * 1000 + version[1] * 10;
}
