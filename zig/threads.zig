//! The engine's thread pool: made once, at first use, with `BITNET_THREADS` workers (default: one
//! per core, the calling thread included). A job is split into chunks that threads claim from an
//! atomic counter; the caller works too and returns when all chunks are done. One job runs at a
//! time: a second caller (another JS thread) that finds the pool busy runs its job alone, so jobs
//! never wait on each other and nested calls cannot deadlock. Kernels see the pool only through
//! `cpu/parallel.zig`'s handle.
const std = @import("std");
const os = @import("os.zig");
const Parallel = @import("cpu/parallel.zig").Parallel;
const TaskFn = @import("cpu/parallel.zig").TaskFn;

pub const max_threads = 256;

pub const Pool = struct {
    monitor: os.Monitor = .{},
    busy: std.atomic.Value(bool) = .init(false),
    n_threads: u32 = 1,
    // The current job (written by the caller under the monitor, before `generation` moves).
    generation: std.atomic.Value(u64) = .init(0),
    ctx: *const anyopaque = undefined,
    task: TaskFn = undefined,
    n: usize = 0,
    chunk: usize = 1,
    next: std.atomic.Value(usize) = .init(0),
    done: std.atomic.Value(usize) = .init(0),
    active: std.atomic.Value(u32) = .init(0),

    /// Starts `threads - 1` workers (the caller is the last thread).
    pub fn start(self: *Pool, threads: u32) void {
        self.n_threads = 1;
        var i: u32 = 1;
        while (i < threads) : (i += 1) {
            if (!os.spawnDetached(Pool, worker, self)) break;
            self.n_threads += 1;
        }
    }

    pub fn handle(self: *Pool) Parallel {
        return .{ .pool = self, .run_fn = runC, .threads = self.n_threads };
    }

    fn runC(p: ?*anyopaque, n: usize, grain: usize, ctx: *const anyopaque, task: TaskFn) callconv(.c) void {
        const self: *Pool = @ptrCast(@alignCast(p.?));
        self.run(n, grain, ctx, task);
    }

    pub fn run(self: *Pool, n: usize, grain: usize, ctx: *const anyopaque, task: TaskFn) void {
        if (self.n_threads <= 1 or n <= grain or self.busy.swap(true, .acquire)) {
            task(ctx, 0, n);
            return;
        }
        defer self.busy.store(false, .release);
        const pieces = @as(usize, self.n_threads) * 4;
        const chunk = @max(grain, (n + pieces - 1) / pieces);
        self.monitor.lock();
        self.ctx = ctx;
        self.task = task;
        self.n = n;
        self.chunk = chunk;
        self.next.store(0, .monotonic);
        self.done.store(0, .monotonic);
        _ = self.generation.fetchAdd(1, .release);
        self.monitor.broadcast();
        self.monitor.unlock();
        self.work();
        // Wait for the last chunk, and for every worker to have left this job.
        var spins: u32 = 0;
        while (self.done.load(.acquire) < n or self.active.load(.acquire) != 0) {
            spins += 1;
            if (spins < 1000) std.atomic.spinLoopHint() else os.yieldCpu();
        }
    }

    fn work(self: *Pool) void {
        const n = self.n;
        const chunk = self.chunk;
        while (true) {
            const b = self.next.fetchAdd(chunk, .monotonic);
            if (b >= n) break;
            const e = @min(n, b + chunk);
            self.task(self.ctx, b, e);
            _ = self.done.fetchAdd(e - b, .release);
        }
    }

    /// Spins a worker makes for the next job before it sleeps (some 10-40 µs): back-to-back jobs
    /// (a model's layers, a GEMV in a loop) then start without a wake-up through the OS.
    const spin_limit = 512;

    fn worker(self: *Pool) void {
        var seen: u64 = 0;
        while (true) {
            var spins: u32 = 0;
            while (self.generation.load(.acquire) == seen and spins < spin_limit) : (spins += 1) std.atomic.spinLoopHint();
            self.monitor.lock();
            while (self.generation.load(.monotonic) == seen) self.monitor.wait();
            seen = self.generation.load(.monotonic);
            // Join only a job that still has chunks: a worker that comes late must not touch the
            // counters once the caller may have returned (and may be setting up the next job).
            const join = self.done.load(.acquire) < self.n;
            if (join) _ = self.active.fetchAdd(1, .acquire);
            self.monitor.unlock();
            if (!join) continue;
            self.work();
            _ = self.active.fetchSub(1, .release);
        }
    }
};

/// Threads to use: BITNET_THREADS if it is a positive number, else the core count.
pub fn configuredThreads(cores: usize) u32 {
    if (os.getenv("BITNET_THREADS")) |s| {
        if (std.fmt.parseInt(u32, s, 10)) |v| {
            if (v >= 1) return @min(v, max_threads);
        } else |_| {}
    }
    return @intCast(@min(@max(cores, 1), max_threads));
}

test "pool runs every item exactly once, in parallel and reentrantly" {
    var pool: Pool = .{};
    pool.start(4);
    const par = pool.handle();
    const Ctx = struct { hits: []std.atomic.Value(u32) };
    var hits: [10_000]std.atomic.Value(u32) = undefined;
    for (&hits) |*h| h.* = .init(0);
    var c: Ctx = .{ .hits = &hits };
    for (0..50) |_| {
        par.run(hits.len, 16, &c, struct {
            fn f(ctx: *Ctx, b: usize, e: usize) void {
                for (b..e) |i| _ = ctx.hits[i].fetchAdd(1, .monotonic);
            }
        }.f);
    }
    for (&hits) |*h| try std.testing.expectEqual(@as(u32, 50), h.load(.monotonic));
}
