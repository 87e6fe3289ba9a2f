//! How kernels ask for threads. The thread pool lives once in the engine (zig/threads.zig); each
//! per-ISA kernel object receives this handle with every call, so there is one pool per process
//! however many kernel objects are linked in. The handle also lends scratch memory (packing
//! buffers, workspaces) from the engine's CPU pool, so kernels never call the OS themselves.
const std = @import("std");

/// A task processes items [begin, end) of a job; `ctx` is the kernel's own argument block.
pub const TaskFn = *const fn (ctx: *const anyopaque, begin: usize, end: usize) callconv(.c) void;

pub const Parallel = extern struct {
    pool: ?*anyopaque,
    run_fn: *const fn (pool: ?*anyopaque, n: usize, grain: usize, ctx: *const anyopaque, task: TaskFn) callconv(.c) void,
    threads: u32,
    /// Scratch memory: 64-byte aligned blocks, null when the pool refuses (limit or system).
    scratch: ?*anyopaque = null,
    alloc_fn: *const fn (scratch: ?*anyopaque, bytes: usize) callconv(.c) ?[*]align(64) u8 = noAlloc,
    free_fn: *const fn (scratch: ?*anyopaque, p: [*]align(64) u8) callconv(.c) void = noFree,

    /// A scratch slice of `n` elements of T, or null when memory is refused. Release with `free`.
    pub fn alloc(self: *const Parallel, comptime T: type, n: usize) ?[]align(64) T {
        const bytes = @max(n, 1) * @sizeOf(T);
        const p = self.alloc_fn(self.scratch, bytes) orelse return null;
        const tp: [*]align(64) T = @ptrCast(p);
        return tp[0..n];
    }

    pub fn free(self: *const Parallel, s: anytype) void {
        self.free_fn(self.scratch, @ptrCast(@alignCast(s.ptr)));
    }

    /// Runs task over [0, n) in chunks of at least `grain` items, on the calling thread alone when
    /// the job is small; returns when every item is done.
    pub fn run(self: *const Parallel, n: usize, grain: usize, ctx: anytype, comptime task: fn (@TypeOf(ctx), usize, usize) void) void {
        const C = @TypeOf(ctx);
        const Wrap = struct {
            fn call(p: *const anyopaque, b: usize, e: usize) callconv(.c) void {
                task(@as(C, @ptrCast(@alignCast(@constCast(p)))), b, e);
            }
        };
        if (n == 0) return;
        if (self.threads <= 1 or n <= grain) return task(ctx, 0, n);
        self.run_fn(self.pool, n, grain, @ptrCast(ctx), Wrap.call);
    }

    /// A handle that runs everything on the calling thread and lends no memory.
    pub const serial: Parallel = .{ .pool = null, .run_fn = serialRun, .threads = 1 };

    /// For Zig tests: serial, with scratch memory from std.testing.allocator (leaks fail the test).
    pub fn testing() Parallel {
        return .{ .pool = null, .run_fn = serialRun, .threads = 1, .alloc_fn = testAlloc, .free_fn = testFree };
    }

    fn noAlloc(_: ?*anyopaque, _: usize) callconv(.c) ?[*]align(64) u8 {
        return null;
    }

    fn noFree(_: ?*anyopaque, _: [*]align(64) u8) callconv(.c) void {}

    // Test scratch keeps its length in a 64-byte header so free() needs no size.
    fn testAlloc(_: ?*anyopaque, bytes: usize) callconv(.c) ?[*]align(64) u8 {
        const mem = std.testing.allocator.alignedAlloc(u8, .@"64", bytes + 64) catch return null;
        std.mem.writeInt(usize, mem[0..@sizeOf(usize)], bytes + 64, .little);
        return @alignCast(mem.ptr + 64);
    }

    fn testFree(_: ?*anyopaque, p: [*]align(64) u8) callconv(.c) void {
        const base: [*]align(64) u8 = @alignCast(p - 64);
        const len = std.mem.readInt(usize, base[0..@sizeOf(usize)], .little);
        std.testing.allocator.free(base[0..len]);
    }

    fn serialRun(_: ?*anyopaque, n: usize, _: usize, ctx: *const anyopaque, task: TaskFn) callconv(.c) void {
        task(ctx, 0, n);
    }
};

test "serial runs everything once" {
    const Ctx = struct { sum: usize = 0 };
    var c: Ctx = .{};
    const par = Parallel.serial;
    par.run(100, 1, &c, struct {
        fn f(ctx: *Ctx, b: usize, e: usize) void {
            for (b..e) |i| ctx.sum += i;
        }
    }.f);
    try std.testing.expectEqual(@as(usize, 4950), c.sum);
}
