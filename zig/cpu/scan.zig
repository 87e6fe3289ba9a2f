//! cumsum (args.ScanArgs): inclusive prefix sums along the last layout axis, exported through
//! reduce.zig. Floats accumulate sequentially in f64, integers wrap in 64 bits (stored wrapped);
//! the output dtype is the one sum gives (`scanOut`). Rows are scanned along contiguous runs, or
//! a tile of neighbouring columns at once when the kept axis is the contiguous one.
const std = @import("std");
const dt = @import("dtype.zig");
const args = @import("args.zig");
const strided = @import("strided.zig");
const Parallel = @import("parallel.zig").Parallel;
const ptrAt = @import("copy.zig").ptrAt;
const elementwise = @import("elementwise.zig");
const DType = dt.DType;
const ReduceOp = args.ReduceOp;
const reduce_mod = @import("reduce.zig");
const acc_mod = @import("reduce_acc.zig");
const task_elems = reduce_mod.task_elems;
const tile = reduce_mod.tile;
const min_cols = reduce_mod.min_cols;
const units = reduce_mod.units;
const Val = acc_mod.Val;
const load1 = acc_mod.load1;
const toF64 = acc_mod.toF64;

fn scanOut(comptime d: DType) DType {
    return switch (d) {
        .f32, .f16, .bf16, .f64 => d,
        .u8, .u16, .u32 => .u32,
        else => .i32,
    };
}

pub fn cumsum(comptime vbits: u32, par: *const Parallel, a: *const args.ScanArgs) void {
    _ = vbits;
    switch (a.in_dtype) {
        inline .f32, .f16, .bf16, .i8, .i16, .i32, .u8, .u16, .u32, .bool => |d| {
            // src/ops/reduce.ts always asks for scanOut(d); anything else is not compiled in.
            if (a.out_dtype == scanOut(d)) scanTyped(d, scanOut(d), par, a);
        },
        .f64 => unreachable,
    }
}

fn scanTyped(comptime d: DType, comptime od: DType, par: *const Parallel, a: *const args.ScanArgs) void {
    const S = dt.Storage(d);
    const O = dt.Storage(od);
    // Floats accumulate in f64 (sequentially), integers wrap in 64 bits (stored wrapped).
    const T = if (comptime dt.isFloat(d)) f64 else i64;
    const Ctx = struct {
        outer: strided.Layout(2),
        len: usize,
        so: isize,
        si: isize,
        out: [*]O,
        in: [*]const S,

        inline fn step(acc: *T, x: Val(d)) O {
            if (T == f64) {
                acc.* += toF64(x);
                return dt.fromFloat(od, acc.*);
            }
            acc.* +%= x;
            return dt.fromInt(od, acc.*);
        }

        // One scan per outer position.
        pub fn row(self: *const @This(), offs: [2]isize, n: usize, st: [2]isize) void {
            var oo = offs[0];
            var io = offs[1];
            for (0..n) |_| {
                var acc: T = 0;
                var po = oo;
                var pi = io;
                for (0..self.len) |_| {
                    ptrAt(O, self.out, po).* = step(&acc, load1(d, self.in, pi));
                    po += self.so;
                    pi += self.si;
                }
                oo += st[0];
                io += st[1];
            }
        }

        fn rowsTask(self: *const @This(), b: usize, e: usize) void {
            self.outer.forRows(b, e, self);
        }

        /// Tiles of `tile` neighbouring scans whose elements are contiguous (columns).
        fn colsTask(self: *const @This(), b: usize, e: usize) void {
            const k = self.outer.ndim;
            const cols = self.outer.shape[k - 1];
            const ntiles = (cols + tile - 1) / tile;
            for (b..e) |item| {
                var rem = item / ntiles;
                const j0 = (item % ntiles) * tile;
                const cnt = @min(tile, cols - j0);
                var oo: isize = @intCast(j0);
                var io: isize = @intCast(j0);
                var ax = k - 1;
                while (ax > 0) {
                    ax -= 1;
                    const i: isize = @intCast(rem % self.outer.shape[ax]);
                    rem /= self.outer.shape[ax];
                    oo += i * self.outer.strides[0][ax];
                    io += i * self.outer.strides[1][ax];
                }
                var acc: [tile]T = @splat(0);
                for (0..self.len) |_| {
                    const o: [*]O = @ptrCast(ptrAt(O, self.out, oo));
                    const x: [*]const S = @ptrCast(ptrAt(S, self.in, io));
                    for (0..cnt) |c| o[c] = step(&acc[c], load1(d, x, @intCast(c)));
                    oo += self.so;
                    io += self.si;
                }
            }
        }
    };
    const nd = a.layout.ndim;
    var c: Ctx = .{ .outer = undefined, .len = 1, .so = 0, .si = 0, .out = @ptrCast(@alignCast(a.out)), .in = @ptrCast(@alignCast(a.in)) };
    if (nd > 0) {
        c.len = a.layout.shape[nd - 1];
        c.so = a.layout.strides[0][nd - 1];
        c.si = a.layout.strides[1][nd - 1];
    }
    c.outer.ndim = if (nd > 0) nd - 1 else 0;
    for (0..c.outer.ndim) |i| {
        c.outer.shape[i] = a.layout.shape[i];
        c.outer.strides[0][i] = a.layout.strides[0][i];
        c.outer.strides[1][i] = a.layout.strides[1][i];
    }
    c.outer.coalesce();
    if (c.outer.size() == 0 or c.len == 0) return;
    const k = c.outer.ndim;
    const cc: *const Ctx = &c;
    if (k >= 1 and c.outer.strides[0][k - 1] == 1 and c.outer.strides[1][k - 1] == 1 and c.outer.shape[k - 1] >= min_cols and c.len > 1) {
        const cols = c.outer.shape[k - 1];
        const items = (c.outer.size() / cols) * ((cols + tile - 1) / tile);
        par.run(items, @max(1, task_elems / (@min(cols, tile) * c.len)), cc, Ctx.colsTask);
        return;
    }
    const per_unit = @max(1, (if (k <= 1) 1 else c.outer.rowLen()) * c.len);
    par.run(units(2, &c.outer), @max(1, task_elems / per_unit), cc, Ctx.rowsTask);
}


const testing = std.testing;

test "cumsum along rows and columns" {
    var x: [3 * 9]f32 = undefined;
    for (&x, 0..) |*v, i| v.* = @floatFromInt(i);
    var o: [3 * 9]f32 = undefined;
    var a: args.ScanArgs = .{ .in_dtype = .f32, .out_dtype = .f32, .out = std.mem.sliceAsBytes(&o).ptr, .in = std.mem.sliceAsBytes(&x).ptr, .layout = undefined };
    // Along axis 1 (rows).
    a.layout.ndim = 2;
    a.layout.shape[0..2].* = .{ 3, 9 };
    a.layout.strides[0][0..2].* = .{ 9, 1 };
    a.layout.strides[1][0..2].* = .{ 9, 1 };
    cumsum(0, &Parallel.serial, &a);
    for (0..3) |r| {
        var s: f32 = 0;
        for (0..9) |c| {
            s += x[r * 9 + c];
            try testing.expectEqual(s, o[r * 9 + c]);
        }
    }
    // Along axis 0 (the scan axis last in the layout: shape [9, 3]).
    a.layout.shape[0..2].* = .{ 9, 3 };
    a.layout.strides[0][0..2].* = .{ 1, 9 };
    a.layout.strides[1][0..2].* = .{ 1, 9 };
    cumsum(0, &Parallel.serial, &a);
    for (0..9) |c| {
        var s: f32 = 0;
        for (0..3) |r| {
            s += x[r * 9 + c];
            try testing.expectEqual(s, o[r * 9 + c]);
        }
    }
}
