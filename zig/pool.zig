//! HybridMemoryPool: a thread-safe caching allocator, one instance per device.
//!
//! All metadata (slab records, free stacks, bitmaps, the slab lookup table, the large-block
//! tables) lives in host memory from the `meta` allocator; nothing is ever written into the
//! memory handed out, so the same code can manage device memory the CPU cannot dereference.
//! Raw memory comes from a comptime `Backing` (`map(len, alignment) ?[*]u8`, `unmap(ptr, len)`);
//! a Backing may also declare `pub const slab_size` (power of two, 64 KiB..16 MiB; default 256 KiB).
//!
//! Small path (nbytes <= 32 KiB): 32 size classes, 64,128,192,256 then 4 per power of two
//! (320,384,448,512, 640,...,32768): waste <= 64 B up to 256 B, <= 25% above. A slab of
//! `slab_size` bytes, mapped with alignment `slab_size`, serves one class; the slab of a pointer is
//! found in O(1) from `ptr >> log2(slab_size)`: a 64-entry direct-mapped cache of recent lookups,
//! then a hash map slab number -> slab record. Each slab record holds a stack of free block indices and an allocated-bit bitmap (which rejects interior
//! pointers and double frees). A class keeps one list of its non-full slabs, partially used ones
//! first and empty ones at the tail; alloc takes the head, so partial slabs fill up first and
//! empty ones stay empty. Empty slabs stay mapped until trim().
//!
//! Large path (> 32 KiB): sizes rounded up to pages up to 1 MiB, above that to 1/16 of the power
//! of two below the size (<= 6.25% waste); each block is mapped on its own. Live blocks are in a
//! hash map address -> size; freed blocks go to a size-sorted cache and are reused best-fit only
//! if at most 1/8 bigger than the rounded request. trim() unmaps the whole cache.
//!
//! Locking: one os.Lock guards everything (classes, tables, counters, and calls into `meta`,
//! which therefore need not be thread-safe). Backing.map runs with the lock released (the limit is
//! checked again afterwards); unmap runs under it only in trim() and on error paths. One lock is
//! 2 atomic RMWs per alloc+free pair; per-class locks would need an atomic global byte counter as
//! well (for an exact peak and limit), 4 RMWs, at 6-9 ns each on the 2-core test machine.
//! Accounting: all counters are plain fields under the lock, so stats() is always exact.
//! bytes_in_use counts rounded block sizes; bytes_reserved counts slabs + large blocks mapped.
//! After trim(), bytes_reserved - bytes_in_use is only the free blocks of partially used slabs
//! (< slab_size per such slab, so at most a few slabs per small class in use when frees are not
//! scattered); large blocks are then exact. So reserved ~= in_use when the live set is mostly large.
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
    /// 64 KiB slabs: a few small survivors pin little memory after trim() (the 1.05 bound), and
    /// 64 KiB is a multiple of every page size we ship for (4 KiB, 16 KiB on Apple Silicon).
    pub const slab_size: usize = 64 * 1024;
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
            node: std.DoublyLinkedList.Node = .{}, // in its class list while not full
            used: u32 = 0,
            top: u32, // number of indices on `stack`
            nblocks: u32,
            stack: []Idx, // free block indices
            bits: []u64, // allocated blocks
        };
        /// A class's slabs with free blocks: partially used ones first, then empty ones.
        const Class = std.DoublyLinkedList;
        const Cached = struct {
            size: usize,
            addr: usize,
            fn smaller(need: usize, b: Cached) bool {
                return b.size < need;
            }
        };

        const recent_len = 64;

        meta: std.mem.Allocator,
        lock: os.Lock = .{},
        st: Stats = std.mem.zeroes(Stats),
        classes: [num_classes]Class = @splat(.{}),
        live: std.AutoHashMapUnmanaged(usize, usize) = .empty,
        cache: std.ArrayList(Cached) = .empty, // sorted by size
        slabs: std.AutoHashMapUnmanaged(usize, *Slab) = .empty, // slab number (addr >> slab_shift) -> slab
        recent: [recent_len]struct { key: usize, slab: ?*Slab } = @splat(.{ .key = 0, .slab = null }),

        pub fn init(meta: std.mem.Allocator) Self {
            return .{ .meta = meta };
        }

        /// Returns all memory to Backing (live blocks included) and frees all metadata.
        pub fn deinit(self: *Self) void {
            var sit = self.slabs.valueIterator();
            while (sit.next()) |s| self.destroySlab(s.*);
            self.slabs.deinit(self.meta);
            var it = self.live.iterator();
            while (it.next()) |e| Backing.unmap(@ptrFromInt(e.key_ptr.*), e.value_ptr.*);
            self.live.deinit(self.meta);
            for (self.cache.items) |b| Backing.unmap(@ptrFromInt(b.addr), b.size);
            self.cache.deinit(self.meta);
            self.* = undefined;
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
                const s: *Slab = @fieldParentPtr("node", c.first orelse {
                    try self.growClass(ci);
                    hit = false;
                    continue;
                });
                s.top -= 1;
                const idx: usize = s.stack[s.top];
                s.bits[idx >> 6] |= bit(idx);
                s.used += 1;
                if (s.used == s.nblocks) c.remove(&s.node);
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
            if (s.used == s.nblocks) c.prepend(&s.node);
            s.used -= 1;
            if (s.used == 0 and s.node.next != null) { // empty slabs go behind the partial ones
                c.remove(&s.node);
                c.append(&s.node);
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
                while (c.last) |n| {
                    const s: *Slab = @fieldParentPtr("node", n);
                    if (s.used != 0) break;
                    c.remove(n);
                    _ = self.slabs.remove(s.base >> slab_shift);
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
            if (self.st.limit != 0 and self.st.bytes_in_use +| size > self.st.limit) return error.LimitExceeded;
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

        /// Maps a slab for class ci (lock released meanwhile) and adds it to the class list.
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
            try self.slabs.ensureUnusedCapacity(self.meta, 1);
            @memset(bits, 0);
            for (stack, 0..) |*x, i| x.* = @intCast(n - 1 - i);
            s.* = .{ .base = @intFromPtr(base), .class = @intCast(ci), .top = n, .nblocks = n, .stack = stack, .bits = bits };
            self.slabs.putAssumeCapacity(s.base >> slab_shift, s);
            self.classes[ci].append(&s.node);
            self.st.bytes_reserved += slab_size;
        }

        fn destroySlab(self: *Self, s: *Slab) void {
            const e = &self.recent[(s.base >> slab_shift) % recent_len];
            if (e.slab == s) e.slab = null;
            Backing.unmap(@ptrFromInt(s.base), slab_size);
            self.st.bytes_reserved -= slab_size;
            self.meta.free(s.stack);
            self.meta.free(s.bits);
            self.meta.destroy(s);
        }

        /// The slab containing addr, or null: a direct-mapped cache of recent slabs, then the map.
        inline fn lookup(self: *Self, addr: usize) ?*Slab {
            const k = addr >> slab_shift;
            const e = &self.recent[k % recent_len];
            if (e.key == k) if (e.slab) |s| return s;
            const s = self.slabs.get(k) orelse return null;
            e.* = .{ .key = k, .slab = s };
            return s;
        }

        /// Index of the allocated block starting at addr.
        inline fn blockIndex(s: *Slab, addr: usize) FreeError!usize {
            const off = addr - s.base;
            const idx: usize = @intCast((@as(u64, off) * magic[s.class]) >> 40);
            if (idx * class_sizes[s.class] != off or idx >= s.nblocks) return error.InvalidPointer;
            if (s.bits[idx >> 6] & bit(idx) == 0) return error.InvalidPointer;
            return idx;
        }

        // ---- large path (lock held) ----

        /// Index of the first cached block of size >= need.
        fn lowerBound(self: *Self, need: usize) usize {
            return std.sort.partitionPoint(Cached, self.cache.items, need, Cached.smaller);
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
const expect = testing.expect;

/// Host memory with a byte count and an optional failure countdown; one instance per tag.
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

fn expectIdle(st: PoolStats, allocations: u64) !void {
    try expect(st.bytes_in_use == 0 and st.live_blocks == 0 and st.allocations == allocations and st.frees == allocations);
}

/// A test block: filled with `tag`, with a unique `id` in its first and last 8 bytes.
const Blk = struct {
    ptr: [*]u8,
    len: usize,
    tag: u8,
    id: u64 = 0,
    fn fill(b: Blk) void {
        @memset(b.ptr[0..b.len], b.tag);
        std.mem.writeInt(u64, b.ptr[0..8], b.id, .little);
        std.mem.writeInt(u64, b.ptr[b.len - 8 ..][0..8], b.id, .little);
    }
    fn ok(b: Blk) bool {
        return std.mem.allEqual(u8, b.ptr[8 .. b.len - 8], b.tag) and std.mem.readInt(u64, b.ptr[0..8], .little) == b.id and
            std.mem.readInt(u64, b.ptr[b.len - 8 ..][0..8], .little) == b.id;
    }
    fn less(_: void, a: Blk, b: Blk) bool {
        return @intFromPtr(a.ptr) < @intFromPtr(b.ptr);
    }
    fn expectDisjoint(blks: []Blk) !void {
        std.mem.sort(Blk, blks, {}, less);
        for (blks[0..blks.len -| 1], blks[1..]) |a, b| try expect(@intFromPtr(a.ptr) + a.len <= @intFromPtr(b.ptr));
    }
};

test "size classes, index magic, large rounding" {
    for (0..max_small + 1) |n| {
        const ci = classOf(n);
        try expect(class_sizes[ci] >= n and (ci == 0 or class_sizes[ci - 1] < n));
        try expect(if (n <= 256) class_sizes[ci] - n <= 64 else class_sizes[ci] * 4 <= n * 5); // waste <= 25%
    }
    for (class_sizes, 0..) |d, ci| for (0..CpuPool.slab_size) |off| try expect(off / d == (off * magic[ci]) >> 40);
    try expect(largeSize(35 * 4096 + 1) == 36 * 4096 and largeSize((1 << 20) + 1) == (1 << 20) + (64 << 10));
}

test "basic alloc/free: alignment, blockSize, exact stats" {
    var p = CpuPool.init(testing.allocator);
    defer p.deinit();
    const sizes = [_]usize{ 0, 1, 16, 63, 64, 65, 200, 256, 257, 1000, 4096, 5000, 32768, 32769, 100_000, 1 << 20, 3 << 20 };
    var ptrs: [sizes.len][*]u8 = undefined;
    var total: u64 = 0;
    for (sizes, 0..) |n, i| {
        ptrs[i] = try p.alloc(n);
        const bs = p.blockSize(ptrs[i]).?;
        try expect(@intFromPtr(ptrs[i]) % 64 == 0 and bs >= n and bs >= 64);
        for (ptrs[0..i]) |o| try expect(o != ptrs[i]);
        total += bs;
    }
    var st = p.stats();
    try expect(st.bytes_in_use == total and st.peak_bytes == total and st.bytes_reserved >= total);
    try expect(st.allocations == sizes.len and st.live_blocks == sizes.len and st.frees == 0);
    for (ptrs) |q| {
        try p.free(q);
        try expect(p.blockSize(q) == null);
    }
    st = p.stats();
    try expectIdle(st, sizes.len);
    try expect(st.peak_bytes == total);
    p.resetPeak();
    try expect(p.stats().peak_bytes == 0);
}

test "every byte of many live mixed blocks is writable and private" {
    var p = CpuPool.init(testing.allocator);
    defer p.deinit();
    var rng = std.Random.DefaultPrng.init(42);
    var blks: [400]Blk = undefined;
    for (&blks, 0..) |*b, i| {
        const q = try p.alloc(rng.random().uintAtMost(usize, if (i % 20 == 0) 300_000 else 4096));
        b.* = .{ .ptr = q, .len = p.blockSize(q).?, .tag = @truncate(i * 7 + 1), .id = i };
        b.fill();
    }
    for (blks) |b| try expect(b.ok());
    try Blk.expectDisjoint(&blks);
    for (blks) |b| try p.free(b.ptr);
    try expectIdle(p.stats(), blks.len);
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
                if (!b.ok() or w.pool.blockSize(b.ptr) != b.len) w.failed = true;
                w.pool.free(b.ptr) catch {
                    w.failed = true;
                };
                slot.* = null;
                continue;
            }
            const roll = r.uintLessThan(u32, 100); // 80% <= 1 KiB, 16% <= 32 KiB, 4% large
            const n = if (roll < 80) r.uintAtMost(usize, 1024) else if (roll < 96) r.uintAtMost(usize, max_small) else max_small + r.uintAtMost(usize, 200_000);
            const q = w.pool.alloc(n) catch {
                w.failed = true;
                continue;
            };
            const len = w.pool.blockSize(q) orelse 64;
            slot.* = .{ .ptr = q, .len = len, .tag = @truncate(w.tid * 31 + op * 7 + 1), .id = w.tid << 32 | op };
            slot.*.?.fill();
            w.allocs += 1;
        }
    }

    fn trimmer(p: *CpuPool, done: *std.atomic.Value(bool)) void {
        while (!done.load(.acquire)) {
            p.trim();
            _ = p.stats();
            std.Thread.yield() catch {};
        }
    }
};

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
    const tt = try std.Thread.spawn(.{}, Worker.trimmer, .{ &p, &done });
    for (threads) |t| t.join();
    done.store(true, .release);
    tt.join();
    var all: [8 * 48]Blk = undefined;
    var n: usize = 0;
    var total: u64 = 0;
    for (workers) |w| {
        try expect(!w.failed);
        total += w.allocs;
        for (w.live) |ob| if (ob) |b| {
            all[n] = b;
            n += 1;
        };
    }
    for (all[0..n]) |b| try expect(b.ok());
    try Blk.expectDisjoint(all[0..n]); // the blocks still live at the end never overlapped
    try expect(p.stats().live_blocks == n);
    for (all[0..n]) |b| try p.free(b.ptr);
    try expectIdle(p.stats(), total);
    p.trim();
    try expect(p.stats().bytes_reserved == 0);
}

test "trim returns cached memory; reserved tracks Backing exactly" {
    const B = TestBacking(.trim);
    var p = Pool(B).init(testing.allocator);
    var rng = std.Random.DefaultPrng.init(7);
    const r = rng.random();
    var ptrs: [600][*]u8 = undefined;
    for (&ptrs, 0..) |*q, i| q.* = try p.alloc(if (i % 10 == 0) 40_000 + r.uintAtMost(usize, 500_000) else r.uintAtMost(usize, 8000));
    for (ptrs) |q| try p.free(q);
    try expect(p.stats().bytes_reserved > 0 and p.stats().bytes_reserved == B.mapped.load(.monotonic));
    p.trim();
    try expect(p.stats().bytes_reserved == 0 and B.mapped.load(.monotonic) == 0);

    // Mostly-large live set. After trim, reserved - in_use <= (partially used slabs) * slab_size
    // - (small bytes in use): here 4 classes (<= 256 B) in one slab each, <= 1 MiB against
    // ~70 MiB of large blocks, which are exact after trim (cache empty).
    var large: [64][*]u8 = undefined;
    var small: [2000][*]u8 = undefined;
    for (&large, 0..) |*q, i| q.* = try p.alloc((1 << 20) + r.uintAtMost(usize, 2 << 20) + i);
    for (&small) |*q| q.* = try p.alloc(r.uintAtMost(usize, 256));
    for (large, 0..) |q, i| if (i % 2 == 0) try p.free(q);
    for (small, 0..) |q, i| if (i % 10 != 0) try p.free(q);
    p.trim();
    const st = p.stats();
    try expect(st.bytes_in_use > 0 and st.bytes_reserved == B.mapped.load(.monotonic));
    try expect(@as(f64, @floatFromInt(st.bytes_reserved)) <= 1.05 * @as(f64, @floatFromInt(st.bytes_in_use)));
    p.deinit(); // live blocks included
    try expect(B.mapped.load(.monotonic) == 0);
}

test "setLimit: LimitExceeded changes nothing; freeing makes room" {
    var p = CpuPool.init(testing.allocator);
    defer p.deinit();
    p.setLimit(1 << 20);
    const a = try p.alloc(512 << 10);
    const before = p.stats();
    try expect(before.limit == 1 << 20);
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
    var local: [64]u8 align(64) = undefined;
    const heap = try testing.allocator.alloc(u8, 64);
    defer testing.allocator.free(heap);
    const before = p.stats();
    for ([_][*]u8{ &local, heap.ptr, s + 1, s + 64, s + 4096, l + 64, l + 4096, l + 100_000 }) |q| {
        try testing.expectError(error.InvalidPointer, p.free(q));
        try expect(p.blockSize(q) == null);
    }
    try testing.expectEqual(before, p.stats());
    try p.free(s);
    try p.free(l);
    const after = p.stats();
    try testing.expectError(error.InvalidPointer, p.free(s)); // double frees
    try testing.expectError(error.InvalidPointer, p.free(l));
    try testing.expectEqual(after, p.stats());
}

test "pool hits and misses" {
    var p = CpuPool.init(testing.allocator);
    defer p.deinit();
    const a = try p.alloc(16); // miss: maps a slab
    const b = try p.alloc(16); // hit
    try p.free(a);
    try p.free(try p.alloc(16)); // hit: reuse after free
    try expect(p.stats().pool_misses == 1 and p.stats().pool_hits == 2);
    const l = try p.alloc(1 << 20); // miss
    try p.free(l);
    const l2 = try p.alloc((1 << 20) - 100); // hit: the cached block
    try expect(l == l2 and p.stats().pool_misses == 2 and p.stats().pool_hits == 3);
    try p.free(try p.alloc(2 << 20)); // miss
    const l3 = try p.alloc(1 << 20); // miss: the cached 2 MiB block is too big to hand out
    try expect(p.stats().pool_misses == 4 and p.stats().pool_hits == 3 and p.blockSize(l3).? == 1 << 20);
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
    try expect(B.mapped.load(.monotonic) == 0);

    var fa = std.testing.FailingAllocator.init(testing.allocator, .{ .fail_index = 0 });
    var q = CpuPool.init(fa.allocator());
    defer q.deinit();
    try testing.expectError(error.OutOfMemory, q.alloc(16));
    try testing.expectError(error.OutOfMemory, q.alloc(1 << 20));
    try testing.expectEqual(std.mem.zeroes(PoolStats), q.stats());
}
