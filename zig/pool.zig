//! HybridMemoryPool: a thread-safe caching allocator, one instance per device.
//!
//! All metadata (slab records, free stacks, bitmaps, the slab lookup table, the large-block
//! tables) lives in host memory from the `meta` allocator; nothing is ever written into the
//! memory handed out, so the same code can manage device memory the CPU cannot dereference.
//! Raw memory comes from a comptime `Backing` (`map(len, alignment) ?[*]u8`, `unmap(ptr, len)`);
//! a Backing may also declare `pub const slab_size` (power of two, 64 KiB..16 MiB; default 256 KiB).
//!
//! Small path (nbytes <= 32 KiB): 32 size classes, 64,128,192,256 then 4 per power of two
//! (320,384,448,512, 640,...,32768): waste < 64 B up to 256 B, <= 25% above. A slab of
//! `slab_size` bytes, mapped with alignment `slab_size`, serves one class; the slab of a pointer is
//! found in O(1) from `ptr >> log2(slab_size)` in a 4-level radix table (host memory, a few
//! 32 KiB nodes per GiB of address space touched). Each slab record holds a stack of free block
//! indices and an allocated-bit bitmap (which rejects interior pointers and double frees). A class
//! keeps a list of partially used slabs (preferred) and a list of empty slabs (used only when no
//! partial slab exists); empty slabs stay mapped until trim().
//!
//! Large path (> 32 KiB): sizes rounded up to pages up to 1 MiB, above that to 1/16 of the power
//! of two below the size (<= 6.25% waste); each block is mapped on its own. Live blocks are in a
//! hash map address -> size; freed blocks go to a size-sorted cache and are reused best-fit only
//! if at most 1/8 bigger than the rounded request. trim() unmaps the whole cache.
//!
//! Locking: one os.Lock guards everything (classes, table, large tables, counters, calls into
//! `meta`, which therefore need not be thread-safe). Backing.map runs with the lock released (the
//! limit is checked again afterwards); unmap runs under it only in trim() and on error paths. One
//! lock costs 2 atomic RMWs per alloc+free pair; per-class locks plus an atomic byte counter
//! (needed for an exact global peak and limit) cost 4 and measured ~40% slower single-threaded.
//! Accounting: all counters are plain fields under the lock, so stats() is always exact.
//! bytes_in_use counts rounded block sizes; bytes_reserved counts slabs + large blocks mapped.
const std = @import("std");
const os = @import("os.zig");

/// Also available as Pool(B).Error / .FreeError / .Stats.
pub const PoolError = error{ LimitExceeded, OutOfMemory };
pub const PoolFreeError = error{InvalidPointer}; // unknown pointer, interior pointer, or double free
pub const PoolStats = extern struct {
    bytes_in_use: u64,
    bytes_reserved: u64,
    peak_bytes: u64,
    allocations: u64,
    frees: u64,
    pool_hits: u64,
    pool_misses: u64,
    live_blocks: u64,
    limit: u64,
};

/// Host memory from the OS.
pub const HostBacking = struct {
    pub fn map(len: usize, alignment: usize) ?[*]u8 {
        return os.mapAligned(len, alignment);
    }
    pub fn unmap(ptr: [*]u8, len: usize) void {
        os.unmap(@alignCast(ptr), len);
    }
};

pub const max_small: usize = 32 * 1024;
pub const num_classes = 32;
pub const class_sizes: [num_classes]u32 = blk: {
    var t: [num_classes]u32 = undefined;
    for (0..num_classes) |i| {
        const g = (i -| 4) / 4;
        t[i] = if (i < 4) (i + 1) * 64 else (256 << g) + ((i - 4) % 4 + 1) * (64 << g);
    }
    break :blk t;
};
/// idx = (off * magic) >> 40 equals off / class_size for off < 2^25 (verified in a test).
const magic: [num_classes]u64 = blk: {
    var t: [num_classes]u64 = undefined;
    for (class_sizes, 0..) |d, i| t[i] = ((1 << 40) + @as(u64, d) - 1) / d;
    break :blk t;
};

/// Size class of a small request (nbytes <= max_small).
pub inline fn classOf(n: usize) usize {
    if (n <= 256) return (n -| 1) >> 6;
    const m = n - 1;
    const p = std.math.log2_int(usize, m);
    return 4 + (@as(usize, p) - 8) * 4 + ((m - (@as(usize, 1) << p)) >> (p - 2));
}

/// Rounded size of a large block, null on overflow.
pub fn largeSize(n: usize) ?usize {
    const g: usize = if (n <= 1 << 20) os.page_size else @as(usize, 1) << (std.math.log2_int(usize, n) - 4);
    const r = std.math.add(usize, n, g - 1) catch return null;
    return r & ~(g - 1);
}

pub fn Pool(comptime Backing: type) type {
    return struct {
        const Self = @This();
        pub const Error = PoolError;
        pub const FreeError = PoolFreeError;
        pub const Stats = PoolStats;

        pub const slab_size: usize = if (@hasDecl(Backing, "slab_size")) Backing.slab_size else 256 * 1024;
        const slab_shift = std.math.log2_int(usize, slab_size);
        comptime {
            std.debug.assert(std.math.isPowerOfTwo(slab_size) and slab_size >= 64 * 1024 and slab_size <= 1 << 24);
        }
        const Idx = if (slab_size / 64 <= 1 << 16) u16 else u32;

        const Slab = struct {
            base: usize,
            class: u8,
            prev: ?*Slab = null,
            next: ?*Slab = null,
            used: u32 = 0,
            top: u32, // number of indices on `stack`
            nblocks: u32,
            stack: []Idx, // free block indices
            bits: []u64, // allocated blocks
        };
        const Class = struct { partial: ?*Slab = null, empty: ?*Slab = null };
        const Cached = struct { size: usize, addr: usize };

        // Radix table over slab numbers (addr >> slab_shift): root inline, three node levels.
        const key_bits = 64 - @as(usize, slab_shift);
        const fan_bits = (key_bits + 3) / 4;
        const root_bits = key_bits - 3 * fan_bits;
        const fan_mask = (@as(usize, 1) << fan_bits) - 1;
        const Node = struct { e: [1 << fan_bits]usize };

        meta: std.mem.Allocator,
        lock: os.Lock = .{},
        st: Stats = std.mem.zeroes(Stats),
        classes: [num_classes]Class = @splat(.{}),
        live: std.AutoHashMapUnmanaged(usize, usize) = .empty,
        cache: std.ArrayList(Cached) = .empty, // sorted by size
        root: [1 << root_bits]usize = @splat(0),

        pub fn init(meta: std.mem.Allocator) Self {
            return .{ .meta = meta };
        }

        /// Returns all memory to Backing (live blocks included) and frees all metadata.
        pub fn deinit(self: *Self) void {
            for (self.root) |v| self.freeNodes(v, 0);
            var it = self.live.iterator();
            while (it.next()) |e| Backing.unmap(@ptrFromInt(e.key_ptr.*), e.value_ptr.*);
            self.live.deinit(self.meta);
            for (self.cache.items) |b| Backing.unmap(@ptrFromInt(b.addr), b.size);
            self.cache.deinit(self.meta);
            self.* = undefined;
        }

        fn freeNodes(self: *Self, v: usize, comptime depth: usize) void {
            if (v == 0) return;
            const n: *Node = @ptrFromInt(v);
            for (n.e) |e| {
                if (depth < 2) self.freeNodes(e, depth + 1) else if (e != 0) self.destroySlab(@ptrFromInt(e));
            }
            self.meta.destroy(n);
        }

        pub fn alloc(self: *Self, nbytes: usize) Error![*]align(64) u8 {
            if (nbytes > max_small) return self.allocLarge(nbytes);
            const ci = classOf(nbytes);
            const size: usize = class_sizes[ci];
            const c = &self.classes[ci];
            self.lock.lock();
            defer self.lock.unlock();
            var hit = true;
            while (true) {
                try self.checkLimit(size);
                const s = c.partial orelse c.empty orelse {
                    try self.growClass(ci);
                    hit = false;
                    continue;
                };
                if (s.used == 0) {
                    unlink(&c.empty, s);
                    push(&c.partial, s);
                }
                s.top -= 1;
                const idx: usize = s.stack[s.top];
                s.bits[idx >> 6] |= bit(idx);
                s.used += 1;
                if (s.used == s.nblocks) unlink(&c.partial, s);
                self.account(size, hit);
                return @ptrFromInt(s.base + idx * size);
            }
        }

        pub fn free(self: *Self, ptr: [*]u8) FreeError!void {
            const addr = @intFromPtr(ptr);
            self.lock.lock();
            defer self.lock.unlock();
            const s = self.lookup(addr) orelse return self.freeLarge(addr);
            const idx = try blockIndex(s, addr);
            const c = &self.classes[s.class];
            s.bits[idx >> 6] &= ~bit(idx);
            s.stack[s.top] = @intCast(idx);
            s.top += 1;
            if (s.used == s.nblocks) push(&c.partial, s);
            s.used -= 1;
            if (s.used == 0) {
                unlink(&c.partial, s);
                push(&c.empty, s);
            }
            self.unaccount(class_sizes[s.class]);
        }

        /// Size of the live block starting at ptr, or null.
        pub fn blockSize(self: *Self, ptr: [*]u8) ?usize {
            const addr = @intFromPtr(ptr);
            self.lock.lock();
            defer self.lock.unlock();
            if (self.lookup(addr)) |s| {
                _ = blockIndex(s, addr) catch return null;
                return class_sizes[s.class];
            }
            return self.live.get(addr);
        }

        pub fn stats(self: *Self) Stats {
            self.lock.lock();
            defer self.lock.unlock();
            return self.st;
        }

        /// Returns every empty slab and every cached large block to Backing.
        pub fn trim(self: *Self) void {
            self.lock.lock();
            defer self.lock.unlock();
            for (&self.classes) |*c| {
                while (c.empty) |s| {
                    unlink(&c.empty, s);
                    self.leaf(s.base).* = 0;
                    self.destroySlab(s);
                }
            }
            for (self.cache.items) |b| {
                Backing.unmap(@ptrFromInt(b.addr), b.size);
                self.st.bytes_reserved -= b.size;
            }
            self.cache.clearRetainingCapacity();
        }

        pub fn setLimit(self: *Self, bytes: usize) void {
            self.lock.lock();
            defer self.lock.unlock();
            self.st.limit = bytes;
        }

        pub fn resetPeak(self: *Self) void {
            self.lock.lock();
            defer self.lock.unlock();
            self.st.peak_bytes = self.st.bytes_in_use;
        }

        // ---- accounting (lock held) ----

        inline fn checkLimit(self: *Self, size: usize) Error!void {
            if (self.st.limit != 0 and self.st.bytes_in_use + size > self.st.limit) return error.LimitExceeded;
        }

        inline fn account(self: *Self, size: usize, hit: bool) void {
            self.st.bytes_in_use += size;
            self.st.peak_bytes = @max(self.st.peak_bytes, self.st.bytes_in_use);
            self.st.allocations += 1;
            self.st.live_blocks += 1;
            if (hit) self.st.pool_hits += 1 else self.st.pool_misses += 1;
        }

        inline fn unaccount(self: *Self, size: usize) void {
            self.st.bytes_in_use -= size;
            self.st.frees += 1;
            self.st.live_blocks -= 1;
        }

        // ---- small path (lock held) ----

        inline fn bit(idx: usize) u64 {
            return @as(u64, 1) << @intCast(idx & 63);
        }

        /// Maps a slab for class ci (lock released meanwhile) and adds it to the empty list.
        fn growClass(self: *Self, ci: usize) Error!void {
            self.lock.unlock();
            const mem = Backing.map(slab_size, slab_size);
            self.lock.lock();
            const base = mem orelse return error.OutOfMemory;
            errdefer Backing.unmap(base, slab_size);
            const n: u32 = @intCast(slab_size / class_sizes[ci]);
            const s = try self.meta.create(Slab);
            errdefer self.meta.destroy(s);
            const stack = try self.meta.alloc(Idx, n);
            errdefer self.meta.free(stack);
            const bits = try self.meta.alloc(u64, (n + 63) / 64);
            errdefer self.meta.free(bits);
            try self.slot(@intFromPtr(base));
            @memset(bits, 0);
            for (stack, 0..) |*x, i| x.* = @intCast(n - 1 - i);
            s.* = .{ .base = @intFromPtr(base), .class = @intCast(ci), .top = n, .nblocks = n, .stack = stack, .bits = bits };
            self.leaf(s.base).* = @intFromPtr(s);
            push(&self.classes[ci].empty, s);
            self.st.bytes_reserved += slab_size;
        }

        fn destroySlab(self: *Self, s: *Slab) void {
            Backing.unmap(@ptrFromInt(s.base), slab_size);
            self.st.bytes_reserved -= slab_size;
            self.meta.free(s.stack);
            self.meta.free(s.bits);
            self.meta.destroy(s);
        }

        /// Creates the table nodes on the path to addr's entry.
        fn slot(self: *Self, addr: usize) Error!void {
            const k = addr >> slab_shift;
            var entry = &self.root[k >> (3 * fan_bits)];
            inline for (0..3) |lvl| {
                if (entry.* == 0) {
                    const n = try self.meta.create(Node);
                    @memset(&n.e, 0);
                    entry.* = @intFromPtr(n);
                }
                const n: *Node = @ptrFromInt(entry.*);
                entry = &n.e[(k >> ((2 - lvl) * fan_bits)) & fan_mask];
            }
        }

        /// addr's entry; the path must exist.
        fn leaf(self: *Self, addr: usize) *usize {
            const k = addr >> slab_shift;
            var entry = &self.root[k >> (3 * fan_bits)];
            inline for (0..3) |lvl| {
                const n: *Node = @ptrFromInt(entry.*);
                entry = &n.e[(k >> ((2 - lvl) * fan_bits)) & fan_mask];
            }
            return entry;
        }

        /// The slab containing addr, or null.
        inline fn lookup(self: *Self, addr: usize) ?*Slab {
            const k = addr >> slab_shift;
            var v = self.root[k >> (3 * fan_bits)];
            inline for (0..3) |lvl| {
                if (v == 0) return null;
                const n: *Node = @ptrFromInt(v);
                v = n.e[(k >> ((2 - lvl) * fan_bits)) & fan_mask];
            }
            return @ptrFromInt(v);
        }

        /// Index of the allocated block starting at addr.
        inline fn blockIndex(s: *Slab, addr: usize) FreeError!usize {
            const off = addr - s.base;
            const idx: usize = @intCast((@as(u64, off) * magic[s.class]) >> 40);
            if (idx * class_sizes[s.class] != off or idx >= s.nblocks) return error.InvalidPointer;
            if (s.bits[idx >> 6] & bit(idx) == 0) return error.InvalidPointer;
            return idx;
        }

        fn push(head: *?*Slab, s: *Slab) void {
            s.prev = null;
            s.next = head.*;
            if (head.*) |h| h.prev = s;
            head.* = s;
        }

        fn unlink(head: *?*Slab, s: *Slab) void {
            if (s.prev) |p| p.next = s.next else head.* = s.next;
            if (s.next) |n| n.prev = s.prev;
            s.prev = null;
            s.next = null;
        }

        // ---- large path (lock held) ----

        /// First cached block of size >= need.
        fn lowerBound(self: *Self, need: usize) usize {
            var lo: usize = 0;
            var hi: usize = self.cache.items.len;
            while (lo < hi) {
                const mid = (lo + hi) / 2;
                if (self.cache.items[mid].size < need) lo = mid + 1 else hi = mid;
            }
            return lo;
        }

        fn allocLarge(self: *Self, nbytes: usize) Error![*]align(64) u8 {
            const need = largeSize(nbytes) orelse return error.OutOfMemory;
            self.lock.lock();
            defer self.lock.unlock();
            const i = self.lowerBound(need);
            if (i < self.cache.items.len and self.cache.items[i].size - need <= need / 8) {
                const b = self.cache.items[i];
                if (self.checkLimit(b.size)) |_| {
                    try self.live.ensureUnusedCapacity(self.meta, 1);
                    _ = self.cache.orderedRemove(i);
                    self.live.putAssumeCapacity(b.addr, b.size);
                    self.account(b.size, true);
                    return @ptrFromInt(b.addr);
                } else |_| {} // the cached block is over the limit; an exact one may fit
            }
            try self.checkLimit(need);
            self.lock.unlock();
            const mem = Backing.map(need, os.page_size);
            self.lock.lock();
            const p = mem orelse return error.OutOfMemory;
            errdefer Backing.unmap(p, need);
            try self.checkLimit(need); // other threads ran while unlocked
            try self.live.ensureUnusedCapacity(self.meta, 1);
            self.live.putAssumeCapacity(@intFromPtr(p), need);
            self.st.bytes_reserved += need;
            self.account(need, false);
            return @alignCast(p);
        }

        fn freeLarge(self: *Self, addr: usize) FreeError!void {
            const kv = self.live.fetchRemove(addr) orelse return error.InvalidPointer;
            self.unaccount(kv.value);
            self.cache.insert(self.meta, self.lowerBound(kv.value), .{ .size = kv.value, .addr = addr }) catch {
                Backing.unmap(@ptrFromInt(addr), kv.value); // no room to cache it
                self.st.bytes_reserved -= kv.value;
            };
        }
    };
}

pub const CpuPool = Pool(HostBacking);

// ------------------------------------------------------------------------------------------------
const testing = std.testing;

/// Host memory with a byte count and an optional failure countdown; one instance per test.
fn TestBacking(comptime tag: anytype) type {
    return struct {
        const _t = tag;
        var mapped: std.atomic.Value(usize) = .init(0);
        var maps_left: std.atomic.Value(isize) = .init(-1); // -1: never fail
        pub fn map(len: usize, alignment: usize) ?[*]u8 {
            if (maps_left.load(.monotonic) == 0) return null;
            if (maps_left.load(.monotonic) > 0) _ = maps_left.fetchSub(1, .monotonic);
            const p = HostBacking.map(len, alignment) orelse return null;
            _ = mapped.fetchAdd(len, .monotonic);
            return p;
        }
        pub fn unmap(ptr: [*]u8, len: usize) void {
            _ = mapped.fetchSub(len, .monotonic);
            HostBacking.unmap(ptr, len);
        }
    };
}

test "size classes and index magic" {
    for (0..max_small + 1) |n| {
        const ci = classOf(n);
        try testing.expect(class_sizes[ci] >= n and (ci == 0 or class_sizes[ci - 1] < n));
        try testing.expect(if (n <= 256) class_sizes[ci] - n <= 64 else class_sizes[ci] * 4 <= n * 5);
    }
    for (class_sizes, 0..) |d, ci| {
        var off: usize = 0;
        while (off < CpuPool.slab_size) : (off += 1) {
            try testing.expectEqual(off / d, (off * magic[ci]) >> 40);
        }
    }
    try testing.expectEqual(@as(?usize, 36 * 4096), largeSize(35 * 4096 + 1));
    try testing.expectEqual(@as(?usize, (1 << 20) + (64 << 10)), largeSize((1 << 20) + 1));
}

test "basic alloc/free, alignment, blockSize, exact stats" {
    var p = CpuPool.init(testing.allocator);
    defer p.deinit();
    const sizes = [_]usize{ 0, 1, 16, 63, 64, 65, 200, 256, 257, 1000, 4096, 5000, 32768, 32769, 100_000, 1 << 20, 3 << 20 };
    var ptrs: [sizes.len][*]u8 = undefined;
    var total: u64 = 0;
    for (sizes, 0..) |n, i| {
        const q = try p.alloc(n);
        try testing.expect(@intFromPtr(q) % 64 == 0);
        const bs = p.blockSize(q).?;
        try testing.expect(bs >= n and bs >= 64);
        for (ptrs[0..i]) |o| try testing.expect(o != q);
        ptrs[i] = q;
        total += bs;
    }
    var st = p.stats();
    try testing.expectEqual(total, st.bytes_in_use);
    try testing.expectEqual(total, st.peak_bytes);
    try testing.expectEqual(@as(u64, sizes.len), st.allocations);
    try testing.expectEqual(@as(u64, sizes.len), st.live_blocks);
    try testing.expect(st.bytes_reserved >= total);
    for (ptrs) |q| {
        try p.free(q);
        try testing.expectEqual(@as(?usize, null), p.blockSize(q));
    }
    st = p.stats();
    try testing.expectEqual(@as(u64, 0), st.bytes_in_use);
    try testing.expectEqual(st.allocations, st.frees);
    try testing.expectEqual(@as(u64, 0), st.live_blocks);
    try testing.expectEqual(total, st.peak_bytes);
    p.resetPeak();
    try testing.expectEqual(@as(u64, 0), p.stats().peak_bytes);
}

const Blk = struct { ptr: [*]u8, len: usize, tag: u8 };

fn fillBlk(b: Blk) void {
    @memset(b.ptr[0..b.len], b.tag);
}

fn checkBlk(b: Blk) bool {
    return std.mem.allEqual(u8, b.ptr[0..b.len], b.tag);
}

fn lessBlk(_: void, a: Blk, b: Blk) bool {
    return @intFromPtr(a.ptr) < @intFromPtr(b.ptr);
}

fn expectDisjoint(blks: []Blk) !void {
    std.mem.sort(Blk, blks, {}, lessBlk);
    for (blks[0..blks.len -| 1], blks[1..]) |a, b| try testing.expect(@intFromPtr(a.ptr) + a.len <= @intFromPtr(b.ptr));
}

test "every byte of many mixed blocks is writable and private" {
    var p = CpuPool.init(testing.allocator);
    defer p.deinit();
    var rng = std.Random.DefaultPrng.init(42);
    const r = rng.random();
    var blks: [400]Blk = undefined;
    for (&blks, 0..) |*b, i| {
        const n = if (i % 20 == 0) r.uintAtMost(usize, 300_000) else r.uintAtMost(usize, 4096);
        const q = try p.alloc(n);
        b.* = .{ .ptr = q, .len = p.blockSize(q).?, .tag = @truncate(i * 7 + 1) };
        fillBlk(b.*);
    }
    for (blks) |b| try testing.expect(checkBlk(b));
    try expectDisjoint(&blks);
    for (blks) |b| try p.free(b.ptr);
    try testing.expectEqual(@as(u64, 0), p.stats().bytes_in_use);
}

const Worker = struct {
    pool: *CpuPool,
    tid: usize,
    allocs: u64 = 0,
    failed: bool = false,
    live: [48]?Blk = @splat(null),

    fn run(w: *Worker) void {
        var rng = std.Random.DefaultPrng.init(0x9e3779b97f4a7c15 *% (w.tid + 1));
        const r = rng.random();
        for (0..3000) |op| {
            const slot = &w.live[r.uintLessThan(usize, w.live.len)];
            if (slot.*) |b| {
                if (!checkBlk(b) or w.pool.blockSize(b.ptr) != b.len) w.failed = true;
                w.pool.free(b.ptr) catch {
                    w.failed = true;
                };
                slot.* = null;
            } else {
                const roll = r.uintLessThan(u32, 100);
                const n = if (roll < 80) r.uintAtMost(usize, 1024) else if (roll < 96) r.uintAtMost(usize, max_small) else max_small + r.uintAtMost(usize, 200_000);
                const q = w.pool.alloc(n) catch {
                    w.failed = true;
                    continue;
                };
                const b = Blk{ .ptr = q, .len = w.pool.blockSize(q) orelse 0, .tag = @truncate(w.tid * 31 + op * 7 + 1) };
                fillBlk(b);
                slot.* = b;
                w.allocs += 1;
            }
        }
    }
};

fn trimmer(p: *CpuPool, done: *std.atomic.Value(bool)) void {
    while (!done.load(.acquire)) {
        p.trim();
        _ = p.stats();
        std.Thread.yield() catch {};
    }
}

test "8 threads of random alloc/free with a concurrent trimmer" {
    var p = CpuPool.init(testing.allocator);
    defer p.deinit();
    var workers: [8]Worker = undefined;
    var threads: [8]std.Thread = undefined;
    for (&workers, &threads, 0..) |*w, *t, i| {
        w.* = .{ .pool = &p, .tid = i };
        t.* = try std.Thread.spawn(.{}, Worker.run, .{w});
    }
    var done: std.atomic.Value(bool) = .init(false);
    const tt = try std.Thread.spawn(.{}, trimmer, .{ &p, &done });
    for (threads) |t| t.join();
    done.store(true, .release);
    tt.join();
    var all: [8 * 48]Blk = undefined;
    var n: usize = 0;
    var total: u64 = 0;
    for (workers) |w| {
        try testing.expect(!w.failed);
        total += w.allocs;
        for (w.live) |ob| if (ob) |b| {
            all[n] = b;
            n += 1;
        };
    }
    for (all[0..n]) |b| try testing.expect(checkBlk(b));
    try expectDisjoint(all[0..n]);
    try testing.expectEqual(@as(u64, n), p.stats().live_blocks);
    for (all[0..n]) |b| try p.free(b.ptr);
    const st = p.stats();
    try testing.expectEqual(total, st.allocations);
    try testing.expectEqual(total, st.frees);
    try testing.expectEqual(@as(u64, 0), st.bytes_in_use);
    try testing.expectEqual(@as(u64, 0), st.live_blocks);
    p.trim();
    try testing.expectEqual(@as(u64, 0), p.stats().bytes_reserved);
}

test "trim returns cached memory; reserved tracks Backing exactly" {
    const B = TestBacking(.trim);
    var p = Pool(B).init(testing.allocator);
    var rng = std.Random.DefaultPrng.init(7);
    const r = rng.random();
    var ptrs: [600][*]u8 = undefined;
    for (&ptrs, 0..) |*q, i| q.* = try p.alloc(if (i % 10 == 0) 40_000 + r.uintAtMost(usize, 500_000) else r.uintAtMost(usize, 8000));
    for (ptrs) |q| try p.free(q);
    var st = p.stats();
    try testing.expect(st.bytes_reserved > 0);
    try testing.expectEqual(B.mapped.load(.monotonic), st.bytes_reserved);
    p.trim();
    st = p.stats();
    try testing.expectEqual(@as(u64, 0), st.bytes_reserved);
    try testing.expectEqual(@as(usize, 0), B.mapped.load(.monotonic));

    // Mostly-large live set: after trim the excess is at most one partially used slab per small
    // class in use (here 4 classes, <= 1 MiB) against ~70 MiB of large blocks.
    var large: [64][*]u8 = undefined;
    var small: [2000][*]u8 = undefined;
    for (&large, 0..) |*q, i| q.* = try p.alloc((1 << 20) + r.uintAtMost(usize, 2 << 20) + i);
    for (&small) |*q| q.* = try p.alloc(r.uintAtMost(usize, 256));
    for (large, 0..) |q, i| if (i % 2 == 0) try p.free(q);
    for (small, 0..) |q, i| if (i % 10 != 0) try p.free(q);
    p.trim();
    st = p.stats();
    try testing.expect(st.bytes_in_use > 0);
    try testing.expect(@as(f64, @floatFromInt(st.bytes_reserved)) <= 1.05 * @as(f64, @floatFromInt(st.bytes_in_use)));
    try testing.expectEqual(B.mapped.load(.monotonic), st.bytes_reserved);
    p.deinit(); // live blocks included
    try testing.expectEqual(@as(usize, 0), B.mapped.load(.monotonic));
}

test "setLimit: LimitExceeded changes nothing; freeing makes room" {
    var p = CpuPool.init(testing.allocator);
    defer p.deinit();
    p.setLimit(1 << 20);
    const a = try p.alloc(512 << 10);
    const before = p.stats();
    try testing.expectEqual(@as(u64, 1 << 20), before.limit);
    try testing.expectError(error.LimitExceeded, p.alloc(600 << 10));
    try testing.expectEqual(before, p.stats());
    try p.free(a);
    const b = try p.alloc(600 << 10);
    p.setLimit(p.stats().bytes_in_use + 64);
    const s1 = try p.alloc(64);
    const before2 = p.stats();
    try testing.expectError(error.LimitExceeded, p.alloc(1));
    try testing.expectEqual(before2, p.stats());
    try p.free(s1);
    try p.free(b);
    p.setLimit(0);
    try p.free(try p.alloc(8 << 20));
}

test "invalid frees return InvalidPointer and change nothing" {
    var p = CpuPool.init(testing.allocator);
    defer p.deinit();
    const s = try p.alloc(16);
    const l = try p.alloc(100_000);
    const before = p.stats();
    var local: [64]u8 align(64) = undefined;
    const heap = try testing.allocator.alloc(u8, 64);
    defer testing.allocator.free(heap);
    const bad = [_][*]u8{ &local, heap.ptr, s + 1, s + 64, s + 4096, l + 64, l + 4096, l + 100_000 };
    for (bad) |q| {
        try testing.expectError(error.InvalidPointer, p.free(q));
        try testing.expectEqual(@as(?usize, null), p.blockSize(q));
    }
    try testing.expectEqual(before, p.stats());
    try p.free(s);
    try p.free(l);
    const after = p.stats();
    try testing.expectError(error.InvalidPointer, p.free(s));
    try testing.expectError(error.InvalidPointer, p.free(l));
    try testing.expectEqual(after, p.stats());
}

test "pool hits and misses" {
    var p = CpuPool.init(testing.allocator);
    defer p.deinit();
    const a = try p.alloc(16);
    const b = try p.alloc(16);
    try testing.expectEqual(@as(u64, 1), p.stats().pool_misses);
    try testing.expectEqual(@as(u64, 1), p.stats().pool_hits);
    try p.free(a);
    try p.free(try p.alloc(16));
    try testing.expectEqual(@as(u64, 2), p.stats().pool_hits);
    const l = try p.alloc(1 << 20);
    try p.free(l);
    const l2 = try p.alloc((1 << 20) - 100);
    try testing.expectEqual(l, l2);
    try testing.expectEqual(@as(u64, 3), p.stats().pool_hits);
    try testing.expectEqual(@as(u64, 2), p.stats().pool_misses);
    const big = try p.alloc(2 << 20);
    try p.free(big);
    const l3 = try p.alloc(1 << 20); // the cached 2 MiB block is too big to hand out
    try testing.expectEqual(@as(u64, 4), p.stats().pool_misses);
    try testing.expectEqual(@as(usize, 1 << 20), p.blockSize(l3).?);
    for ([_][*]u8{ b, l2, l3 }) |q| try p.free(q);
}

test "failing Backing or metadata allocator gives OutOfMemory and changes nothing" {
    const B = TestBacking(.fail);
    B.maps_left.store(0, .monotonic);
    var p = Pool(B).init(testing.allocator);
    try testing.expectError(error.OutOfMemory, p.alloc(16));
    try testing.expectError(error.OutOfMemory, p.alloc(1 << 20));
    try testing.expectEqual(std.mem.zeroes(PoolStats), p.stats());
    B.maps_left.store(1, .monotonic);
    const a = try p.alloc(16);
    const before = p.stats();
    try testing.expectError(error.OutOfMemory, p.alloc(40_000));
    try testing.expectError(error.OutOfMemory, p.alloc(1000));
    try testing.expectEqual(before, p.stats());
    try p.free(a);
    p.deinit();
    try testing.expectEqual(@as(usize, 0), B.mapped.load(.monotonic));

    var fa = std.testing.FailingAllocator.init(testing.allocator, .{ .fail_index = 0 });
    var q = CpuPool.init(fa.allocator());
    defer q.deinit();
    try testing.expectError(error.OutOfMemory, q.alloc(16));
    try testing.expectError(error.OutOfMemory, q.alloc(1 << 20));
    try testing.expectEqual(std.mem.zeroes(PoolStats), q.stats());
}
