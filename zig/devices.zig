//! Memory pools by the engine's device index: 0 is the CPU pool, 1 + i is CUDA device i, and
//! `metal_device` (after the CUDA indices) the Metal device of a Mac: each a pool of the same
//! HybridMemoryPool code over the device's memory, made on first use. `AnyPool` gives every pool
//! one interface, so the exports in root.zig do not care which device they serve.
const std = @import("std");
const os = @import("os.zig");
const pool_mod = @import("pool.zig");
const cuda = @import("gpu/cuda.zig");
const metal = @import("gpu/metal.zig");

pub const AnyPool = struct {
    ctx: *anyopaque,
    vt: *const VTable,

    const VTable = struct {
        alloc: *const fn (*anyopaque, usize) pool_mod.PoolError![*]align(64) u8,
        free: *const fn (*anyopaque, [*]u8) pool_mod.PoolFreeError!void,
        stats: *const fn (*anyopaque) pool_mod.PoolStats,
        trim: *const fn (*anyopaque) void,
        setLimit: *const fn (*anyopaque, usize) void,
        resetPeak: *const fn (*anyopaque) void,
    };

    pub fn of(comptime P: type, p: *P) AnyPool {
        const W = struct {
            fn w_alloc(c: *anyopaque, n: usize) pool_mod.PoolError![*]align(64) u8 {
                return @as(*P, @ptrCast(@alignCast(c))).alloc(n);
            }
            fn w_free(c: *anyopaque, ptr: [*]u8) pool_mod.PoolFreeError!void {
                return @as(*P, @ptrCast(@alignCast(c))).free(ptr);
            }
            fn w_stats(c: *anyopaque) pool_mod.PoolStats {
                return @as(*P, @ptrCast(@alignCast(c))).stats();
            }
            fn w_trim(c: *anyopaque) void {
                @as(*P, @ptrCast(@alignCast(c))).trim();
            }
            fn w_setLimit(c: *anyopaque, n: usize) void {
                @as(*P, @ptrCast(@alignCast(c))).setLimit(n);
            }
            fn w_resetPeak(c: *anyopaque) void {
                @as(*P, @ptrCast(@alignCast(c))).resetPeak();
            }
            const vt: VTable = .{ .alloc = w_alloc, .free = w_free, .stats = w_stats, .trim = w_trim, .setLimit = w_setLimit, .resetPeak = w_resetPeak };
        };
        return .{ .ctx = p, .vt = &W.vt };
    }

    pub fn alloc(self: AnyPool, n: usize) pool_mod.PoolError![*]align(64) u8 {
        return self.vt.alloc(self.ctx, n);
    }
    pub fn free(self: AnyPool, ptr: [*]u8) pool_mod.PoolFreeError!void {
        return self.vt.free(self.ctx, ptr);
    }
    pub fn stats(self: AnyPool) pool_mod.PoolStats {
        return self.vt.stats(self.ctx);
    }
    pub fn trim(self: AnyPool) void {
        self.vt.trim(self.ctx);
    }
    pub fn setLimit(self: AnyPool, n: usize) void {
        self.vt.setLimit(self.ctx, n);
    }
    pub fn resetPeak(self: AnyPool) void {
        self.vt.resetPeak(self.ctx);
    }
};

/// A pool over `Backing`, made on first use (one per device, shared by all threads).
fn LazyPool(comptime Backing: type) type {
    return struct {
        const P = pool_mod.Pool(Backing);
        var pool: P = undefined;
        var ready = std.atomic.Value(bool).init(false);
        var lock: os.Lock = .{};
        fn get() AnyPool {
            if (!ready.load(.acquire)) {
                lock.lock();
                defer lock.unlock();
                if (!ready.load(.monotonic)) {
                    pool = P.init(std.heap.c_allocator);
                    ready.store(true, .release);
                }
            }
            return AnyPool.of(P, &pool);
        }
    };
}

/// The engine's index of the Metal device (one a Mac), after the CUDA devices'.
pub const metal_device: u32 = 1 + cuda.max_devices;

/// Whether engine device `device` is the Metal device (present or not).
pub fn isMetal(device: u32) bool {
    return device == metal_device;
}

/// Whether engine device `device` is a CUDA device (and which), without opening the driver.
pub fn cudaIndex(device: u32) ?usize {
    return if (device >= 1 and device <= cuda.max_devices) device - 1 else null;
}

/// The pool of a GPU's engine index (1 + i for cuda:i, `metal_device`), or null when that device
/// is not present.
pub fn gpuPool(device: u32) ?AnyPool {
    if (isMetal(device)) return if (metal.present()) LazyPool(metal.Backing).get() else null;
    const i = cudaIndex(device) orelse return null;
    if (i >= cuda.deviceCount()) return null;
    switch (i) {
        inline 0...cuda.max_devices - 1 => |k| return LazyPool(cuda.Backing(k)).get(),
        else => return null,
    }
}
