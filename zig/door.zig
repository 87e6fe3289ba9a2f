//! The door's plumbing, shared by zig/root.zig (the `export fn`s) and the files that hold the
//! longer export bodies (zig/door_math.zig, zig/door_train.zig, zig/gpu/door.zig): the per-thread
//! mailbox, status helpers, the engine (kernel table, CPU pool, worker threads) and argument
//! checks. scripts/gen-abi.ts reads the mailbox slots (`mb`) and `stage_len` from this file.
const std = @import("std");
const build_options = @import("build_options");
const os = @import("os.zig");
const pool_mod = @import("pool.zig");
const Status = @import("status.zig").Status;
const features = @import("cpu/features.zig");
const dt = @import("cpu/dtype.zig");
const strided = @import("cpu/strided.zig");
const threads = @import("threads.zig");
const Parallel = @import("cpu/parallel.zig").Parallel;
const Table = @import("cpu/table.zig").Table;
const devices = @import("devices.zig");
const DType = dt.DType;

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

pub fn mailbox() *Mailbox {
    if (tls_mailbox) |m| return m;
    const m = std.heap.c_allocator.create(Mailbox) catch @panic("bitnet: cannot allocate the thread mailbox");
    m.* = std.mem.zeroes(Mailbox);
    tls_mailbox = m;
    return m;
}

pub fn fail(status: Status, comptime fmt: []const u8, args: anytype) i32 {
    const m = mailbox();
    const text = std.fmt.bufPrint(&m.msg, fmt, args) catch m.msg[0..];
    m.f[mb.msg_len] = @floatFromInt(text.len);
    return @intFromEnum(status);
}

/// Success with a message in the mailbox (for exports that return text).
pub fn okMessage(comptime fmt: []const u8, args: anytype) i32 {
    _ = fail(.ok, fmt, args);
    return ok();
}

pub fn ok() i32 {
    return @intFromEnum(Status.ok);
}

// ---------------------------------------------------------------------------------------------
// Engine state: kernel table and device pools, set up once.
// ---------------------------------------------------------------------------------------------

pub const levels = build_options.levels;

pub fn tableSymbol(comptime name: []const u8) *const fn () callconv(.c) *const Table {
    return @extern(*const fn () callconv(.c) *const Table, .{ .name = "bn_kernels_" ++ name });
}

pub fn tableFor(level: features.Level) ?*const Table {
    inline for (levels) |name| {
        if (std.mem.eql(u8, name, level.name())) return tableSymbol(name)();
    }
    return null;
}

pub const Engine = struct {
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

pub fn getEngine() *Engine {
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
pub fn scratchAlloc(ctx: ?*anyopaque, bytes: usize) callconv(.c) ?[*]align(64) u8 {
    const p: *pool_mod.CpuPool = @ptrCast(@alignCast(ctx.?));
    return p.alloc(bytes) catch null;
}

pub fn scratchFree(ctx: ?*anyopaque, ptr: [*]align(64) u8) callconv(.c) void {
    const p: *pool_mod.CpuPool = @ptrCast(@alignCast(ctx.?));
    p.free(ptr) catch unreachable;
}

pub fn bestCompiled(best: features.Level) features.Level {
    var chosen: features.Level = .scalar;
    inline for (levels) |name| {
        const l = features.Level.parse(name).?;
        if (l.runsOn(best) and @intFromEnum(l) >= @intFromEnum(chosen)) chosen = l;
    }
    return chosen;
}

/// The pool of engine device `device`: 0 = CPU, 1 + i = cuda:i (when present).
pub fn poolFor(device: u32) ?devices.AnyPool {
    if (device == 0) return devices.AnyPool.of(pool_mod.CpuPool, &getEngine().cpu_pool);
    return devices.gpuPool(device);
}

// ---------------------------------------------------------------------------------------------
// Argument checks
// ---------------------------------------------------------------------------------------------

/// A non-negative whole number below 2^53 from an f64 argument.
pub fn count(x: f64) ?usize {
    if (!(x >= 0 and x <= 9007199254740992.0) or @floor(x) != x) return null;
    return @intFromFloat(x);
}

pub fn dtypeArg(code: u32) ?DType {
    return DType.fromInt(code);
}

/// Fills a k-operand layout from the mailbox: shape at `shape`, operand i's strides at
/// `strides<i>`. Returns an error status (as from `fail`) or null.
pub fn readLayout(comptime k: usize, op: []const u8, ndim: u32, layout: *strided.Layout(k)) ?i32 {
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
pub fn isTensorFloat(d: DType) bool {
    return d == .f32 or d == .f16 or d == .bf16;
}

pub fn dtypeOr(code: u32, op: []const u8) union(enum) { ok: DType, err: i32 } {
    if (DType.fromInt(code)) |d| return .{ .ok = d };
    return .{ .err = fail(.dtype, "{s}: unknown dtype code {d}", .{ op, code }) };
}

/// A finite f64 argument, else null.
pub fn finite(x: f64) ?f64 {
    return if (std.math.isFinite(x)) x else null;
}
