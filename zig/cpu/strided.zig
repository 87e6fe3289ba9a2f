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
        pub fn forRows(self: *const Self, begin: usize, end: usize, body: anytype) void {
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
                body.row(offs, end - begin, st);
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
                body.row(offs, self.shape[inner], inner_strides);
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

        /// Calls `body.row(offsets, len, inner_strides)` for each innermost row, where offsets are
        /// the element offsets of the row's first element in each operand. Assumes size() > 0.
        pub fn forEachRow(self: *const Self, body: anytype) void {
            if (self.ndim == 0) {
                body.row(@as([k]isize, @splat(0)), 1, @as([k]isize, @splat(0)));
                return;
            }
            const inner = self.ndim - 1;
            var inner_strides: [k]isize = undefined;
            inline for (0..k) |op| inner_strides[op] = self.strides[op][inner];
            var idx: [max_ndim]usize = @splat(0);
            var offs: [k]isize = @as([k]isize, @splat(0));
            while (true) {
                body.row(offs, self.shape[inner], inner_strides);
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
