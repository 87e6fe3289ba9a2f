//! N-dimensional strided iteration shared by every kernel that reads views in place.
//!
//! A `Layout(k)` holds one shape and k stride vectors (in elements; 0 for a broadcast axis,
//! negative for reversed slices). `coalesce` drops size-1 axes and merges axes that are
//! contiguous with each other in every operand, so most calls end with one long inner loop.
//! `forEachRow` then calls `body(offsets, inner_len, inner_strides)` once per inner row.
const std = @import("std");

pub const max_ndim = 32;

pub fn Layout(comptime k: usize) type {
    return extern struct {
        const Self = @This();

        /// A row visitor with its type erased, so the iteration code below is compiled once per
        /// operand count instead of once per kernel (this keeps the engine's build time down).
        const Row = struct {
            ctx: *const anyopaque,
            func: *const fn (ctx: *const anyopaque, offs: [k]isize, len: usize, st: [k]isize) void,
            inline fn call(self: Row, offs: [k]isize, len: usize, st: [k]isize) void {
                self.func(self.ctx, offs, len, st);
            }
        };

        /// `body` is a pointer to a value with `pub fn row(self, offs, len, inner_strides)`.
        fn erase(body: anytype) Row {
            const P = @TypeOf(body);
            const Wrap = struct {
                fn call(ctx: *const anyopaque, offs: [k]isize, len: usize, st: [k]isize) void {
                    const b: P = @ptrCast(@alignCast(@constCast(ctx)));
                    b.row(offs, len, st);
                }
            };
            return .{ .ctx = @ptrCast(body), .func = Wrap.call };
        }

        /// Like forEachRow, for rows [begin, end) only (threads take ranges of rows). For a 1-d
        /// layout, [begin, end) are element indices of the single row instead.
        pub fn forRows(self: *const Self, begin: usize, end: usize, body: anytype) void {
            self.forRowsErased(begin, end, erase(body));
        }

        /// Visits tile rows [begin, end) (see forTilesErased).
        pub fn forTiles(self: *const Self, begin: usize, end: usize, body: anytype) void {
            self.forTilesErased(begin, end, erase(body));
        }

        /// Calls `body.row(offsets, len, inner_strides)` for each innermost row, where offsets are
        /// the element offsets of the row's first element in each operand. Assumes size() > 0.
        pub fn forEachRow(self: *const Self, body: anytype) void {
            self.forEachRowErased(erase(body));
        }

        ndim: usize,
        shape: [max_ndim]usize,
        strides: [k][max_ndim]isize,

        pub fn size(self: *const Self) usize {
            var n: usize = 1;
            for (self.shape[0..self.ndim]) |d| n *= d;
            return n;
        }

        /// Remove size-1 axes and merge neighbouring axes that every operand walks contiguously.
        pub fn coalesce(self: *Self) void {
            var out: usize = 0;
            for (0..self.ndim) |ax| {
                if (self.shape[ax] == 1) continue;
                if (out > 0) {
                    const prev = out - 1;
                    var mergeable = true;
                    inline for (0..k) |op| {
                        if (self.strides[op][prev] != self.strides[op][ax] * @as(isize, @intCast(self.shape[ax]))) mergeable = false;
                    }
                    if (mergeable) {
                        self.shape[prev] *= self.shape[ax];
                        inline for (0..k) |op| self.strides[op][prev] = self.strides[op][ax];
                        continue;
                    }
                }
                self.shape[out] = self.shape[ax];
                inline for (0..k) |op| self.strides[op][out] = self.strides[op][ax];
                out += 1;
            }
            self.ndim = out;
        }

        /// Number of innermost rows (1 for 0-d and 1-d layouts).
        pub fn rows(self: *const Self) usize {
            if (self.ndim <= 1) return 1;
            var n: usize = 1;
            for (self.shape[0 .. self.ndim - 1]) |d| n *= d;
            return n;
        }

        /// Length of the innermost rows.
        pub fn rowLen(self: *const Self) usize {
            return if (self.ndim == 0) 1 else self.shape[self.ndim - 1];
        }

        /// Like forEachRow, for rows [begin, end) only (threads take ranges of rows). For a 1-d
        /// layout, [begin, end) are element indices of the single row instead.
        fn forRowsErased(self: *const Self, begin: usize, end: usize, body: Row) void {
            if (begin >= end) return;
            if (self.ndim <= 1) {
                var offs: [k]isize = @splat(0);
                var st: [k]isize = @splat(0);
                if (self.ndim == 1) {
                    inline for (0..k) |op| {
                        st[op] = self.strides[op][0];
                        offs[op] = st[op] * @as(isize, @intCast(begin));
                    }
                }
                body.call(offs, end - begin, st);
                return;
            }
            const inner = self.ndim - 1;
            var inner_strides: [k]isize = undefined;
            inline for (0..k) |op| inner_strides[op] = self.strides[op][inner];
            // Offsets of row `begin`: decompose its index over the outer axes.
            var idx: [max_ndim]usize = @splat(0);
            var offs: [k]isize = @splat(0);
            var rem = begin;
            var ax = inner;
            while (ax > 0) {
                ax -= 1;
                idx[ax] = rem % self.shape[ax];
                rem /= self.shape[ax];
                inline for (0..k) |op| offs[op] += self.strides[op][ax] * @as(isize, @intCast(idx[ax]));
            }
            var r = begin;
            while (true) {
                body.call(offs, self.shape[inner], inner_strides);
                r += 1;
                if (r == end) return;
                var a = inner;
                while (a > 0) {
                    a -= 1;
                    idx[a] += 1;
                    inline for (0..k) |op| offs[op] += self.strides[op][a];
                    if (idx[a] < self.shape[a]) break;
                    inline for (0..k) |op| offs[op] -= self.strides[op][a] * @as(isize, @intCast(self.shape[a]));
                    idx[a] = 0;
                }
            }
        }

        /// Edge of the square tiles used when an operand walks the innermost axis with a large
        /// stride (a transposed view): 32 x 32 elements keep every operand's lines in L1.
        pub const tile = 32;

        /// Whether iterating in tiles over the last two axes beats plain rows: some operand
        /// jumps through memory along the innermost axis, and both axes are long enough.
        pub fn wantsTiles(self: *const Self) bool {
            if (self.ndim < 2) return false;
            const inner = self.ndim - 1;
            if (self.shape[inner] < tile or self.shape[inner - 1] < tile) return false;
            inline for (0..k) |op| {
                if (@abs(self.strides[op][inner]) > 16) return true;
            }
            return false;
        }

        /// Number of tile rows (units of work for forTiles): outer index x row-tiles.
        pub fn tileRows(self: *const Self) usize {
            var n: usize = 1;
            for (self.shape[0 .. self.ndim - 2]) |d| n *= d;
            return n * ((self.shape[self.ndim - 2] + tile - 1) / tile);
        }

        /// Visits tile rows [begin, end): for each, the tile x tile blocks along the last axis,
        /// each block as up to `tile` calls of body.row with rows of up to `tile` elements.
        fn forTilesErased(self: *const Self, begin: usize, end: usize, body: Row) void {
            const r_ax = self.ndim - 2;
            const c_ax = self.ndim - 1;
            const rows_n = self.shape[r_ax];
            const cols_n = self.shape[c_ax];
            const per = (rows_n + tile - 1) / tile;
            var inner_strides: [k]isize = undefined;
            inline for (0..k) |op| inner_strides[op] = self.strides[op][c_ax];
            for (begin..end) |t| {
                // Offsets of the outer index t / per.
                var rem = t / per;
                var base: [k]isize = @splat(0);
                var ax = r_ax;
                while (ax > 0) {
                    ax -= 1;
                    const i = rem % self.shape[ax];
                    rem /= self.shape[ax];
                    inline for (0..k) |op| base[op] += self.strides[op][ax] * @as(isize, @intCast(i));
                }
                const r0 = (t % per) * tile;
                const r1 = @min(rows_n, r0 + tile);
                var c0: usize = 0;
                while (c0 < cols_n) : (c0 += tile) {
                    const len = @min(tile, cols_n - c0);
                    for (r0..r1) |r| {
                        var offs: [k]isize = undefined;
                        inline for (0..k) |op| offs[op] = base[op] + self.strides[op][r_ax] * @as(isize, @intCast(r)) + self.strides[op][c_ax] * @as(isize, @intCast(c0));
                        body.call(offs, len, inner_strides);
                    }
                }
            }
        }

        /// Calls `body.call(offsets, len, inner_strides)` for each innermost row, where offsets are
        /// the element offsets of the row's first element in each operand. Assumes size() > 0.
        fn forEachRowErased(self: *const Self, body: Row) void {
            if (self.ndim == 0) {
                body.call(@as([k]isize, @splat(0)), 1, @as([k]isize, @splat(0)));
                return;
            }
            const inner = self.ndim - 1;
            var inner_strides: [k]isize = undefined;
            inline for (0..k) |op| inner_strides[op] = self.strides[op][inner];
            var idx: [max_ndim]usize = @splat(0);
            var offs: [k]isize = @as([k]isize, @splat(0));
            while (true) {
                body.call(offs, self.shape[inner], inner_strides);
                // Odometer over the outer axes.
                var ax = inner;
                while (ax > 0) {
                    ax -= 1;
                    idx[ax] += 1;
                    inline for (0..k) |op| offs[op] += self.strides[op][ax];
                    if (idx[ax] < self.shape[ax]) break;
                    inline for (0..k) |op| offs[op] -= self.strides[op][ax] * @as(isize, @intCast(self.shape[ax]));
                    idx[ax] = 0;
                } else return;
            }
        }
    };
}

test "forRows over ranges covers exactly what forEachRow covers" {
    var l: Layout(1) = .{ .ndim = 3, .shape = undefined, .strides = undefined };
    l.shape[0..3].* = .{ 2, 3, 2 };
    l.strides[0][0..3].* = .{ 1, 4, 2 }; // a permuted layout over 12 elements
    const Collect = struct {
        seen: [12]isize = undefined,
        n: usize = 0,
        pub fn row(self: *@This(), offs: [1]isize, len: usize, st: [1]isize) void {
            for (0..len) |i| {
                self.seen[self.n] = offs[0] + @as(isize, @intCast(i)) * st[0];
                self.n += 1;
            }
        }
    };
    var whole: Collect = .{};
    l.forEachRow(&whole);
    var parts: Collect = .{};
    l.forRows(0, 2, &parts);
    l.forRows(2, 5, &parts);
    l.forRows(5, 6, &parts);
    try std.testing.expectEqualSlices(isize, &whole.seen, &parts.seen);
    var one: Layout(1) = .{ .ndim = 1, .shape = undefined, .strides = undefined };
    one.shape[0] = 10;
    one.strides[0][0] = -1;
    var c: Collect = .{};
    one.forRows(3, 7, &c);
    try std.testing.expectEqualSlices(isize, &.{ -3, -4, -5, -6 }, c.seen[0..4]);
}

test "forTiles covers every element exactly once" {
    var l: Layout(2) = .{ .ndim = 3, .shape = undefined, .strides = undefined };
    l.shape[0..3].* = .{ 2, 70, 45 };
    l.strides[0][0..3].* = .{ 70 * 45, 45, 1 };
    l.strides[1][0..3].* = .{ 70 * 45, 1, 70 }; // transposed in the last two axes
    try std.testing.expect(l.wantsTiles());
    const Count = struct {
        hits: [2 * 70 * 45]u8 = @splat(0),
        pub fn row(self: *@This(), offs: [2]isize, len: usize, st: [2]isize) void {
            for (0..len) |i| self.hits[@intCast(offs[0] + @as(isize, @intCast(i)) * st[0])] += 1;
        }
    };
    var c: Count = .{};
    const n = l.tileRows();
    l.forTiles(0, n / 2, &c);
    l.forTiles(n / 2, n, &c);
    for (c.hits) |h| try std.testing.expectEqual(@as(u8, 1), h);
}

test "coalesce merges contiguous axes and drops ones" {
    var l: Layout(2) = .{ .ndim = 3, .shape = undefined, .strides = undefined };
    l.shape[0..3].* = .{ 2, 1, 3 };
    l.strides[0][0..3].* = .{ 3, 3, 1 };
    l.strides[1][0..3].* = .{ 3, 99, 1 };
    l.coalesce();
    try std.testing.expectEqual(@as(usize, 1), l.ndim);
    try std.testing.expectEqual(@as(usize, 6), l.shape[0]);
}

test "forEachRow visits a transposed view in order" {
    var l: Layout(1) = .{ .ndim = 2, .shape = undefined, .strides = undefined };
    l.shape[0..2].* = .{ 3, 2 };
    l.strides[0][0..2].* = .{ 1, 3 }; // transpose of a [2,3] row-major matrix
    l.coalesce();
    const Collect = struct {
        seen: [6]isize = undefined,
        n: usize = 0,
        pub fn row(self: *@This(), offs: [1]isize, len: usize, st: [1]isize) void {
            for (0..len) |i| {
                self.seen[self.n] = offs[0] + @as(isize, @intCast(i)) * st[0];
                self.n += 1;
            }
        }
    };
    var c: Collect = .{};
    l.forEachRow(&c);
    try std.testing.expectEqualSlices(isize, &.{ 0, 3, 1, 4, 2, 5 }, &c.seen);
}
