//! Every call that touches the operating system lives here, so that kernels and the pool never
//! depend on a moving std API (Zig 0.16+ moved files, clocks and locks behind std.Io).
//! Pages, a small lock, environment variables, processor count, cache sizes, dynamic libraries
//! and whole-file reads and writes (the CUDA kernel cache).
const std = @import("std");
const builtin = @import("builtin");
const c = std.c;

/// Smallest page size of the target (16 KiB on Apple Silicon, 4 KiB elsewhere).
pub const page_size: usize = std.heap.page_size_min;

/// Map `len` bytes (a multiple of `page_size`) of zeroed read/write memory whose address is a
/// multiple of `alignment` (a power of two, >= page_size). Returns null when the OS refuses.
pub fn mapAligned(len: usize, alignment: usize) ?[*]align(page_size) u8 {
    std.debug.assert(len % page_size == 0 and std.math.isPowerOfTwo(alignment) and alignment >= page_size);
    const extra = alignment - page_size;
    const total = std.math.add(usize, len, extra) catch return null;
    const raw = mmapAnon(total) orelse return null;
    const addr = @intFromPtr(raw);
    const aligned = std.mem.alignForward(usize, addr, alignment);
    const head = aligned - addr;
    const tail = total - head - len;
    if (head > 0) unmap(@ptrFromInt(addr), head);
    if (tail > 0) unmap(@ptrFromInt(aligned + len), tail);
    return @ptrFromInt(aligned);
}

fn mmapAnon(len: usize) ?[*]align(page_size) u8 {
    const rc = c.mmap(null, len, .{ .READ = true, .WRITE = true }, .{ .TYPE = .PRIVATE, .ANONYMOUS = true }, -1, 0);
    if (rc == c.MAP_FAILED) return null;
    return @ptrCast(@alignCast(rc));
}

/// Return pages obtained from `mapAligned` (or part of them, page-aligned) to the OS.
pub fn unmap(ptr: [*]align(page_size) u8, len: usize) void {
    _ = c.munmap(ptr, len);
}

/// A test-and-test-and-set lock that yields the processor while it waits. Critical sections in
/// the pool are a few dozen instructions, so this beats a futex round trip and needs no std.Io.
pub const Lock = struct {
    state: std.atomic.Value(u32) = .init(0),

    pub fn lock(self: *Lock) void {
        var spins: u32 = 0;
        while (true) {
            if (self.state.cmpxchgWeak(0, 1, .acquire, .monotonic) == null) return;
            while (self.state.load(.monotonic) != 0) {
                spins += 1;
                if (spins < 64) std.atomic.spinLoopHint() else {
                    _ = c.sched_yield();
                }
            }
        }
    }

    pub fn unlock(self: *Lock) void {
        self.state.store(0, .release);
    }
};

/// A mutex and condition variable (pthreads, from libc on every target we ship), for threads that
/// sleep between jobs (zig/threads.zig).
pub const Monitor = struct {
    mutex: c.pthread_mutex_t = c.PTHREAD_MUTEX_INITIALIZER,
    cond: c.pthread_cond_t = c.PTHREAD_COND_INITIALIZER,

    pub fn lock(self: *Monitor) void {
        _ = c.pthread_mutex_lock(&self.mutex);
    }
    pub fn unlock(self: *Monitor) void {
        _ = c.pthread_mutex_unlock(&self.mutex);
    }
    /// Releases the lock, sleeps until `broadcast`, takes the lock again.
    pub fn wait(self: *Monitor) void {
        _ = c.pthread_cond_wait(&self.cond, &self.mutex);
    }
    pub fn broadcast(self: *Monitor) void {
        _ = c.pthread_cond_broadcast(&self.cond);
    }
};

/// Starts a detached thread running `func(arg)` with the system's default stack. Returns false
/// when the system refuses (the caller then runs with fewer threads).
pub fn spawnDetached(comptime T: type, comptime func: fn (*T) void, arg: *T) bool {
    const Entry = struct {
        fn run(p: ?*anyopaque) callconv(.c) ?*anyopaque {
            func(@ptrCast(@alignCast(p.?)));
            return null;
        }
    };
    var handle: c.pthread_t = undefined;
    if (c.pthread_create(&handle, null, Entry.run, arg) != .SUCCESS) return false;
    _ = c.pthread_detach(handle);
    return true;
}

/// Gives the processor to another thread.
pub fn yieldCpu() void {
    _ = c.sched_yield();
}

/// Value of an environment variable, or null.
pub fn getenv(name: [*:0]const u8) ?[]const u8 {
    const v = c.getenv(name) orelse return null;
    return std.mem.span(v);
}

/// Number of online processors (at least 1).
pub fn cpuCount() usize {
    return std.Thread.getCpuCount() catch 1;
}

pub const CacheSizes = struct { l1d: usize = 0, l2: usize = 0, l3: usize = 0 };

/// Data cache sizes as the OS reports them (0 where unknown); zig/cpu/features.zig prefers CPUID
/// on x86 and falls back to this.
pub fn cacheSizes() CacheSizes {
    var out: CacheSizes = .{};
    switch (builtin.os.tag) {
        .linux => {
            const names = [_][]const u8{ "index0", "index1", "index2", "index3", "index4" };
            for (names) |idx| {
                var path_buf: [96]u8 = undefined;
                const level = readSysfsNumber(&path_buf, idx, "level") orelse continue;
                const size_kib = readSysfsNumber(&path_buf, idx, "size") orelse continue;
                var type_buf: [32]u8 = undefined;
                const kind = readSysfs(&path_buf, &type_buf, idx, "type") orelse continue;
                if (std.mem.startsWith(u8, kind, "Instruction")) continue;
                const bytes = size_kib * 1024;
                switch (level) {
                    1 => out.l1d = bytes,
                    2 => out.l2 = bytes,
                    3 => out.l3 = bytes,
                    else => {},
                }
            }
        },
        .macos => {
            out.l1d = sysctlUsize("hw.l1dcachesize");
            out.l2 = sysctlUsize("hw.l2cachesize");
            out.l3 = sysctlUsize("hw.l3cachesize");
        },
        else => {},
    }
    return out;
}

fn readSysfs(path_buf: *[96]u8, out: []u8, idx: []const u8, field: []const u8) ?[]const u8 {
    const path = std.fmt.bufPrintSentinel(path_buf, "/sys/devices/system/cpu/cpu0/cache/{s}/{s}", .{ idx, field }, 0) catch return null;
    const fd = c.open(path.ptr, .{}, @as(c.mode_t, 0));
    if (fd < 0) return null;
    defer _ = c.close(fd);
    const n = c.read(fd, out.ptr, out.len);
    if (n <= 0) return null;
    return std.mem.trim(u8, out[0..@intCast(n)], " \n\t");
}

fn readSysfsNumber(path_buf: *[96]u8, idx: []const u8, field: []const u8) ?usize {
    var buf: [32]u8 = undefined;
    const text = readSysfs(path_buf, &buf, idx, field) orelse return null;
    const digits = std.mem.trimEnd(u8, text, "KkMm");
    return std.fmt.parseInt(usize, digits, 10) catch null;
}

/// Whether an AArch64 processor has the dot-product instructions (FEAT_DotProd: SDOT/UDOT), as
/// the OS reports it (Linux: AT_HWCAP's ASIMDDP bit; macOS: hw.optional.arm.FEAT_DotProd).
pub fn armDotProd() bool {
    if (builtin.cpu.arch != .aarch64) return false;
    return switch (builtin.os.tag) {
        .linux => (c.getauxval(16) & (1 << 20)) != 0,
        .macos => sysctlUsize("hw.optional.arm.FEAT_DotProd") != 0,
        else => false,
    };
}

fn sysctlUsize(name: [*:0]const u8) usize {
    if (builtin.os.tag != .macos) return 0;
    var v: u64 = 0;
    var len: usize = @sizeOf(u64);
    if (c.sysctlbyname(name, &v, &len, null, 0) != 0) return 0;
    return @intCast(v);
}

test "mapAligned returns aligned zeroed pages" {
    const len = 3 * page_size;
    const p = mapAligned(len, 1 << 20) orelse return error.MapFailed;
    defer unmap(p, len);
    try std.testing.expect(@intFromPtr(p) % (1 << 20) == 0);
    for (p[0..len]) |b| try std.testing.expectEqual(@as(u8, 0), b);
    p[len - 1] = 7;
}

test "lock excludes" {
    var l: Lock = .{};
    l.lock();
    try std.testing.expect(l.state.load(.monotonic) == 1);
    l.unlock();
    try std.testing.expect(l.state.load(.monotonic) == 0);
}

test "cpuCount and cacheSizes" {
    try std.testing.expect(cpuCount() >= 1);
    _ = cacheSizes();
}

/// Opens a shared library by name (the loader's search path), or null when it is not there.
pub fn dlopen(name: [*:0]const u8) ?*anyopaque {
    if (builtin.os.tag == .windows) return null;
    return c.dlopen(name, .{ .NOW = true });
}

/// Looks a symbol up in a library opened by `dlopen`.
pub fn dlsym(lib: *anyopaque, name: [*:0]const u8) ?*anyopaque {
    if (builtin.os.tag == .windows) return null;
    return c.dlsym(lib, name);
}

/// <dlfcn.h> Dl_info and dladdr (macOS libSystem).
const DlInfo = extern struct { fname: [*:0]const u8, fbase: ?*anyopaque, sname: ?[*:0]const u8, saddr: ?*anyopaque };
extern "c" fn dladdr(addr: *const anyopaque, info: *DlInfo) c_int;

/// The path of the shared library (or executable) that holds this code, written into buf, or null
/// where the loader cannot say (only asked on macOS, where the Metal shim sits beside the engine).
pub fn selfPath(buf: []u8) ?[:0]const u8 {
    if (comptime !builtin.os.tag.isDarwin()) return null;
    var info: DlInfo = undefined;
    if (dladdr(@ptrCast(&selfPath), &info) == 0) return null;
    const name = std.mem.span(info.fname);
    if (name.len + 1 > buf.len) return null;
    @memcpy(buf[0..name.len], name);
    buf[name.len] = 0;
    return buf[0..name.len :0];
}

/// A whole file (at most `max` bytes) read into memory from `gpa` (free with `gpa.free`), or null
/// when it is missing, unreadable, empty or larger than `max`.
pub fn readFile(gpa: std.mem.Allocator, path: [*:0]const u8, max: usize) ?[]u8 {
    if (builtin.os.tag == .windows) return null;
    const fd = c.open(path, .{ .ACCMODE = .RDONLY, .CLOEXEC = true });
    if (fd < 0) return null;
    defer _ = c.close(fd);
    var buf = gpa.alloc(u8, @min(max, 1 << 20)) catch return null;
    var len: usize = 0;
    while (true) {
        if (len == buf.len) {
            if (buf.len >= max) break;
            buf = gpa.realloc(buf, @min(buf.len * 2, max)) catch break;
        }
        const n = c.read(fd, buf.ptr + len, buf.len - len);
        if (n <= 0) {
            if (n == 0) return finish(gpa, buf, len);
            break;
        }
        len += @intCast(n);
    }
    gpa.free(buf);
    return null;
}

fn finish(gpa: std.mem.Allocator, buf: []u8, len: usize) ?[]u8 {
    if (len == 0) {
        gpa.free(buf);
        return null;
    }
    return gpa.realloc(buf, len) catch {
        gpa.free(buf);
        return null;
    };
}

/// Writes `bytes` to `path` through a temporary file renamed into place (readers never see a
/// partial file), creating missing parent folders. False when anything fails.
pub fn writeFileAtomic(path: [:0]const u8, bytes: []const u8) bool {
    if (builtin.os.tag == .windows) return false;
    makeParents(path);
    var tmp_buf: [1024]u8 = undefined;
    const tmp = std.fmt.bufPrintSentinel(&tmp_buf, "{s}.{d}.tmp", .{ path, c.getpid() }, 0) catch return false;
    const fd = c.open(tmp.ptr, .{ .ACCMODE = .WRONLY, .CREAT = true, .TRUNC = true, .CLOEXEC = true }, @as(c.mode_t, 0o644));
    if (fd < 0) return false;
    var done: usize = 0;
    while (done < bytes.len) {
        const n = c.write(fd, bytes.ptr + done, bytes.len - done);
        if (n <= 0) break;
        done += @intCast(n);
    }
    _ = c.close(fd);
    if (done != bytes.len or c.rename(tmp.ptr, path.ptr) != 0) {
        _ = c.unlink(tmp.ptr);
        return false;
    }
    return true;
}

/// mkdir -p of the folders above `path` (errors ignored: the write that follows reports them).
fn makeParents(path: []const u8) void {
    var buf: [1024]u8 = undefined;
    if (path.len >= buf.len) return;
    var i: usize = 1;
    while (i < path.len) : (i += 1) {
        if (path[i] != '/') continue;
        @memcpy(buf[0..i], path[0..i]);
        buf[i] = 0;
        _ = c.mkdir(@ptrCast(&buf), 0o755);
    }
}

test "writeFileAtomic then readFile round-trips; missing files are null" {
    const gpa = std.testing.allocator;
    var name_buf: [256]u8 = undefined;
    const name = try std.fmt.bufPrintSentinel(&name_buf, "/tmp/bitnet-os-test-{d}/sub/file.bin", .{c.getpid()}, 0);
    var data: [3000]u8 = undefined;
    for (&data, 0..) |*b, i| b.* = @truncate(i * 7);
    try std.testing.expect(writeFileAtomic(name, &data));
    const back = readFile(gpa, name.ptr, 1 << 20) orelse return error.TestUnexpectedResult;
    defer gpa.free(back);
    try std.testing.expectEqualSlices(u8, &data, back);
    try std.testing.expect(readFile(gpa, name.ptr, 100) == null); // larger than max
    try std.testing.expect(readFile(gpa, "/nonexistent/bitnet/file", 100) == null);
    _ = c.unlink(name.ptr);
}
