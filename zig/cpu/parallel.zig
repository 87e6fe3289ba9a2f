//! How kernels ask for threads. The thread pool lives once in the engine (zig/threads.zig); each
//! per-ISA kernel object receives this handle with every call, so there is one pool per process
//! however many kernel objects are linked in.
const std = @import("std");

/// A task processes items [begin, end) of a job; `ctx` is the kernel's own argument block.
pub const TaskFn = *const fn (ctx: *const anyopaque, begin: usize, end: usize) callconv(.c) void;

pub const Parallel = extern struct {
    pool: ?*anyopaque,
    run_fn: *const fn (pool: ?*anyopaque, n: usize, grain: usize, ctx: *const anyopaque, task: TaskFn) callconv(.c) void,
    threads: u32,

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

    /// A handle that runs everything on the calling thread (tests, single-threaded builds).
    pub const serial: Parallel = .{ .pool = null, .run_fn = serialRun, .threads = 1 };

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
