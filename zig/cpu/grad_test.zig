//! Tests of grad.zig against plain f64 definitions: softmax / logSoftmax backward and layerNorm /
//! rmsNorm backward (dx, dweight, dbias) for contiguous, transposed, column and strided rows,
//! sizes that are not multiples of the vector width, and a job split into chunks run in reverse
//! order (results must be bit-identical to the serial run). Compiled at every ISA level.
//! The helpers marked pub are shared with gather_test.zig and optim_test.zig.
const std = @import("std");
const layout_util = @import("test_layout.zig");
const permStrides = layout_util.permStrides;
const offsetOf = layout_util.offsetOf;
const nextIdx = layout_util.nextIdx;
const build_options = @import("build_options");
const dt = @import("dtype.zig");
const args = @import("args.zig");
const strided = @import("strided.zig");
const ew = @import("elementwise.zig");
const grad = @import("grad.zig");
const Parallel = @import("parallel.zig").Parallel;
const DType = dt.DType;
const testing = std.testing;

const vbits = build_options.vector_bits;

/// A test operand: values (rounded to `d`) in storage, read back as f64.
pub fn Buf(comptime d: DType) type {
    return struct {
        data: []dt.Storage(d),

        pub fn init(vals: []const f64) !@This() {
            const data = try testing.allocator.alloc(dt.Storage(d), vals.len);
            for (data, vals) |*p, v| p.* = dt.fromFloat(d, v);
            return .{ .data = data };
        }
        pub fn get(self: @This(), i: usize) f64 {
            return @floatCast(ew.load(d, 1, self.data.ptr + i)[0]);
        }
        pub fn deinit(self: @This()) void {
            testing.allocator.free(self.data);
        }
    };
}

/// Serial, with test scratch memory, but jobs go through run_fn as one-item chunks in reverse
/// order: a stand-in for a pool that hands out work in another order than the serial loop.
pub fn reversed() Parallel {
    var p = Parallel.testing();
    p.threads = 4;
    p.run_fn = struct {
        fn run(_: ?*anyopaque, n: usize, _: usize, ctx: *const anyopaque, task: @import("parallel.zig").TaskFn) callconv(.c) void {
            var i = n;
            while (i > 0) {
                i -= 1;
                task(ctx, i, i + 1);
            }
        }
    }.run;
    return p;
}

/// Pseudo-random values in [lo, hi) (deterministic).
pub fn noise(seed: u64, i: usize, lo: f64, hi: f64) f64 {
    var z = seed *% 0x9E3779B97F4A7C15 +% @as(u64, i) *% 0xBF58476D1CE4E5B9;
    z = (z ^ (z >> 30)) *% 0xBF58476D1CE4E5B9;
    z = (z ^ (z >> 27)) *% 0x94D049BB133111EB;
    z ^= z >> 31;
    const u: f64 = @as(f64, @floatFromInt(z >> 11)) / 9007199254740992.0;
    return lo + (hi - lo) * u;
}




pub fn tolFor(d: DType) f64 {
    return switch (d) {
        .f32 => 2e-6,
        .f16 => 2e-3,
        .bf16 => 1.6e-2,
        else => unreachable,
    };
}

fn layout3(shape: []const usize, st: [3][]const isize) strided.Layout(3) {
    var l: strided.Layout(3) = .{ .ndim = shape.len, .shape = undefined, .strides = undefined };
    for (shape, 0..) |s, i| {
        l.shape[i] = s;
        inline for (0..3) |o| l.strides[o][i] = st[o][i];
    }
    return l;
}

/// A case: the layout's shape (last axis reduced) and the memory axis order of dx, y|x and g.
const Case = struct { shape: []const usize, perm: [3][]const usize };

fn checkSoftmaxBack(comptime d: DType, log: bool, c: Case, par: *const Parallel) !void {
    const shape = c.shape;
    const nd = shape.len;
    var total: usize = 1;
    for (shape) |s| total *= s;
    const yv = try testing.allocator.alloc(f64, total);
    defer testing.allocator.free(yv);
    const gv = try testing.allocator.alloc(f64, total);
    defer testing.allocator.free(gv);
    for (yv, gv, 0..) |*y, *g, i| {
        y.* = if (log) noise(1, i, -4, 0) else noise(1, i, 0, 1);
        g.* = noise(2, i, -2, 2);
    }
    const y = try Buf(d).init(yv);
    defer y.deinit();
    const g = try Buf(d).init(gv);
    defer g.deinit();
    const o = try Buf(d).init(gv);
    defer o.deinit();
    var st: [3][8]isize = undefined;
    for (0..3) |k| permStrides(shape, c.perm[k], st[k][0..nd]);
    const a: args.SoftmaxBackwardArgs = .{ .dtype = d, .log = @intFromBool(log), .dx = @ptrCast(o.data.ptr), .y = @ptrCast(y.data.ptr), .g = @ptrCast(g.data.ptr), .layout = layout3(shape, .{ st[0][0..nd], st[1][0..nd], st[2][0..nd] }) };
    grad.softmaxBackward(vbits, par, &a);
    const last = nd - 1;
    var idx: [8]usize = @splat(0);
    while (true) {
        var s: f64 = 0;
        var sa: f64 = 0;
        for (0..shape[last]) |j| {
            idx[last] = j;
            const yy = y.get(offsetOf(idx[0..nd], st[1][0..nd]));
            const gg = g.get(offsetOf(idx[0..nd], st[2][0..nd]));
            s += if (log) gg else gg * yy;
            sa += @abs(if (log) gg else gg * yy);
        }
        for (0..shape[last]) |j| {
            idx[last] = j;
            const yy = y.get(offsetOf(idx[0..nd], st[1][0..nd]));
            const gg = g.get(offsetOf(idx[0..nd], st[2][0..nd]));
            const want = if (log) gg - @exp(yy) * s else yy * (gg - s);
            const scale = if (log) @abs(gg) + @exp(yy) * sa else yy * (@abs(gg) + sa);
            const got = o.get(offsetOf(idx[0..nd], st[0][0..nd]));
            if (!(@abs(got - want) <= tolFor(d) * @abs(want) + 1e-5 * scale)) {
                std.debug.print("softmax backward vbits={d} {t} log={} shape={any} idx={any}: got {d} want {d}\n", .{ vbits, d, log, shape, idx[0..nd], got, want });
                return error.TestUnexpectedResult;
            }
        }
        idx[last] = 0;
        if (nd == 1 or !nextIdx(idx[0..last], shape[0..last])) break;
    }
}

const id2 = [_]usize{ 0, 1 };
const tr2 = [_]usize{ 1, 0 };
const id3 = [_]usize{ 0, 1, 2 };
const mid3 = [_]usize{ 0, 2, 1 };

const softmax_cases = [_]Case{
    .{ .shape = &.{ 3, 37 }, .perm = .{ &id2, &id2, &id2 } }, // contiguous rows, vector tails
    .{ .shape = &.{70}, .perm = .{ &.{0}, &.{0}, &.{0} } },
    .{ .shape = &.{ 19, 37 }, .perm = .{ &tr2, &tr2, &tr2 } }, // over memory axis 0: columns
    .{ .shape = &.{ 70, 9 }, .perm = .{ &tr2, &tr2, &tr2 } }, // columns, 4 vectors wide + tails
    .{ .shape = &.{ 5, 33 }, .perm = .{ &id2, &tr2, &id2 } }, // y transposed: strided rows
    .{ .shape = &.{ 6, 11 }, .perm = .{ &id2, &id2, &tr2 } }, // g transposed
    .{ .shape = &.{ 2, 17, 4 }, .perm = .{ &mid3, &mid3, &mid3 } }, // reduced axis in the middle
    .{ .shape = &.{ 2, 3, 5 }, .perm = .{ &id3, &mid3, &id3 } },
    .{ .shape = &.{ 5000, 4 }, .perm = .{ &tr2, &tr2, &tr2 } }, // columns in several job items
};

test "softmax and logSoftmax backward match the f64 definition" {
    const par = Parallel.testing();
    inline for (.{ DType.f32, DType.f16, DType.bf16 }) |d| {
        for ([_]bool{ false, true }) |log| {
            for (softmax_cases) |c| try checkSoftmaxBack(d, log, c, &par);
        }
    }
}

test "softmax backward: a job run in another order gives the same bits" {
    const rev = reversed();
    for ([_]bool{ false, true }) |log| {
        for (softmax_cases) |c| try checkSoftmaxBack(.f32, log, c, &rev);
    }
    // Bits: one big contiguous case, serial vs reversed.
    const shape = [_]usize{ 300, 129 };
    var y: [300 * 129]f32 = undefined;
    var g: [300 * 129]f32 = undefined;
    for (&y, &g, 0..) |*a, *b, i| {
        a.* = @floatCast(noise(3, i, 0, 1));
        b.* = @floatCast(noise(4, i, -1, 1));
    }
    var o1: [300 * 129]f32 = undefined;
    var o2: [300 * 129]f32 = undefined;
    const st = [_]isize{ 129, 1 };
    var a: args.SoftmaxBackwardArgs = .{ .dtype = .f32, .log = 0, .dx = @ptrCast(&o1), .y = @ptrCast(&y), .g = @ptrCast(&g), .layout = layout3(&shape, .{ &st, &st, &st }) };
    grad.softmaxBackward(vbits, &Parallel.serial, &a);
    a.dx = @ptrCast(&o2);
    grad.softmaxBackward(vbits, &rev, &a);
    try testing.expectEqualSlices(u32, @ptrCast(&o1), @ptrCast(&o2));
}

/// Checks dx (and dweight/dbias when `params`) against f64; returns dx, dweight, dbias bits
/// hashed (to compare runs).
fn checkNormBack(comptime d: DType, comptime wd: DType, kind: args.NormKind, hw: bool, params: bool, c: Case, big_mean: bool, par: *const Parallel) !u64 {
    const shape = c.shape;
    const nd = shape.len;
    const last = nd - 1;
    const len = shape[last];
    var total: usize = 1;
    for (shape) |s| total *= s;
    const xv = try testing.allocator.alloc(f64, total);
    defer testing.allocator.free(xv);
    const gv = try testing.allocator.alloc(f64, total);
    defer testing.allocator.free(gv);
    for (xv, gv, 0..) |*x, *g, i| {
        x.* = @as(f64, if (big_mean) 1e3 else 0) + noise(5, i, -3, 3);
        g.* = noise(6, i, -1, 1);
    }
    const wv = try testing.allocator.alloc(f64, len);
    defer testing.allocator.free(wv);
    for (wv, 0..) |*w, j| w.* = noise(7, j, 0.5, 1.5);
    const x = try Buf(d).init(xv);
    defer x.deinit();
    const g = try Buf(d).init(gv);
    defer g.deinit();
    const o = try Buf(d).init(gv);
    defer o.deinit();
    const w = try Buf(wd).init(wv);
    defer w.deinit();
    const dw = try testing.allocator.alloc(f32, len);
    defer testing.allocator.free(dw);
    const db = try testing.allocator.alloc(f32, len);
    defer testing.allocator.free(db);
    @memset(dw, std.math.nan(f32));
    @memset(db, std.math.nan(f32));
    var st: [3][8]isize = undefined;
    for (0..3) |k| permStrides(shape, c.perm[k], st[k][0..nd]);
    const eps = 1e-5;
    const a: args.NormBackwardArgs = .{
        .kind = kind,
        .dtype = d,
        .w_dtype = wd,
        .eps = eps,
        .dx = @ptrCast(o.data.ptr),
        .x = @ptrCast(x.data.ptr),
        .g = @ptrCast(g.data.ptr),
        .weight = if (hw) @ptrCast(w.data.ptr) else null,
        .dweight = if (params) dw.ptr else null,
        .dbias = if (params) db.ptr else null,
        .layout = layout3(shape, .{ st[0][0..nd], st[1][0..nd], st[2][0..nd] }),
    };
    try testing.expectEqual(@as(u32, 0), grad.normBackward(vbits, par, &a));
    const rdw = try testing.allocator.alloc(f64, 3 * len); // sums of g * xhat, g, |g * xhat| + |g|
    defer testing.allocator.free(rdw);
    @memset(rdw, 0);
    const lf: f64 = @floatFromInt(len);
    var idx: [8]usize = @splat(0);
    while (true) {
        var mean: f64 = 0;
        var q: f64 = 0;
        for (0..len) |j| {
            idx[last] = j;
            mean += x.get(offsetOf(idx[0..nd], st[1][0..nd]));
        }
        mean = if (kind == .layer) mean / lf else 0;
        for (0..len) |j| {
            idx[last] = j;
            const cx = x.get(offsetOf(idx[0..nd], st[1][0..nd])) - mean;
            q += cx * cx;
        }
        const r = 1 / @sqrt(q / lf + eps);
        var m1: f64 = 0;
        var m2: f64 = 0;
        for (0..len) |j| {
            idx[last] = j;
            const xh = (x.get(offsetOf(idx[0..nd], st[1][0..nd])) - mean) * r;
            const gg = g.get(offsetOf(idx[0..nd], st[2][0..nd]));
            const gh = gg * (if (hw) w.get(j) else 1);
            m1 += gh / lf;
            m2 += gh * xh / lf;
            rdw[j] += gg * xh;
            rdw[len + j] += gg;
            rdw[2 * len + j] += @abs(gg * xh) + @abs(gg);
        }
        if (kind == .rms) m1 = 0;
        for (0..len) |j| {
            idx[last] = j;
            const xh = (x.get(offsetOf(idx[0..nd], st[1][0..nd])) - mean) * r;
            const gh = g.get(offsetOf(idx[0..nd], st[2][0..nd])) * (if (hw) w.get(j) else 1);
            const want = r * (gh - m1 - xh * m2);
            const scale = r * (@abs(gh) + @abs(m1) + @abs(xh * m2));
            const got = o.get(offsetOf(idx[0..nd], st[0][0..nd]));
            const tol = tolFor(d) * @abs(want) + @as(f64, if (big_mean) 2e-4 else 2e-5) * scale;
            if (!(@abs(got - want) <= tol)) {
                std.debug.print("norm backward vbits={d} {t}/{t} {t} w={} shape={any} idx={any}: got {d} want {d}\n", .{ vbits, d, wd, kind, hw, shape, idx[0..nd], got, want });
                return error.TestUnexpectedResult;
            }
        }
        idx[last] = 0;
        if (nd == 1 or !nextIdx(idx[0..last], shape[0..last])) break;
    }
    var h = std.hash.Wyhash.init(0);
    h.update(std.mem.sliceAsBytes(o.data));
    if (params) {
        for (0..len) |j| {
            const tol = @as(f64, if (big_mean) 2e-4 else 2e-5) * rdw[2 * len + j] + 1e-6;
            if (!(@abs(dw[j] - rdw[j]) <= tol) or !(@abs(db[j] - rdw[len + j]) <= tol)) {
                std.debug.print("norm backward params vbits={d} {t} {t} shape={any} col {d}: dweight {d} want {d}, dbias {d} want {d}\n", .{ vbits, d, kind, shape, j, dw[j], rdw[j], db[j], rdw[len + j] });
                return error.TestUnexpectedResult;
            }
        }
        h.update(std.mem.sliceAsBytes(dw));
        h.update(std.mem.sliceAsBytes(db));
    }
    return h.final();
}

const norm_cases = [_]Case{
    .{ .shape = &.{ 3, 37 }, .perm = .{ &id2, &id2, &id2 } },
    .{ .shape = &.{64}, .perm = .{ &.{0}, &.{0}, &.{0} } },
    .{ .shape = &.{ 6, 19 }, .perm = .{ &id2, &tr2, &tr2 } }, // x, g transposed: strided rows
    .{ .shape = &.{ 4, 9 }, .perm = .{ &id2, &id2, &tr2 } }, // only g transposed
    .{ .shape = &.{ 2, 3, 5 }, .perm = .{ &id3, &[_]usize{ 1, 0, 2 }, &id3 } },
    .{ .shape = &.{ 1, 1 }, .perm = .{ &id2, &id2, &id2 } },
};

test "layerNorm and rmsNorm backward match the f64 definition, with and without weight" {
    const par = Parallel.testing();
    inline for (.{ DType.f32, DType.f16, DType.bf16 }) |d| {
        inline for (.{ DType.f32, DType.bf16 }) |wd| {
            for ([_]args.NormKind{ .layer, .rms }) |kind| {
                for ([_]bool{ false, true }) |hw| {
                    for ([_]bool{ false, true }) |params| {
                        for (norm_cases) |c| _ = try checkNormBack(d, wd, kind, hw, params, c, false, &par);
                        _ = try checkNormBack(d, wd, kind, hw, params, norm_cases[0], true, &par);
                    }
                }
            }
        }
    }
}

test "norm backward: dweight/dbias over many row chunks are identical in any job order" {
    const par = Parallel.testing();
    const rev = reversed();
    // 3000 rows of 7: two partial chunks; 20000 rows of 3: four; 7000 strided rows of 5: three.
    const cases = [_]Case{
        .{ .shape = &.{ 3000, 7 }, .perm = .{ &id2, &id2, &id2 } },
        .{ .shape = &.{ 20000, 3 }, .perm = .{ &id2, &id2, &id2 } },
        .{ .shape = &.{ 7000, 5 }, .perm = .{ &id2, &tr2, &id2 } },
    };
    try testing.expect(grad.paramChunkRows(3000, 7) < 3000);
    for (cases) |c| {
        for ([_]args.NormKind{ .layer, .rms }) |kind| {
            const h1 = try checkNormBack(.f32, .f32, kind, true, true, c, false, &par);
            const h2 = try checkNormBack(.f32, .f32, kind, true, true, c, false, &rev);
            try testing.expectEqual(h1, h2);
        }
    }
}

test "norm backward with no rows zero-fills dweight and dbias" {
    var dw = [_]f32{ 7, 7, 7 };
    var db = [_]f32{ 7, 7, 7 };
    var dummy: [1]f32 = .{0};
    const st = [_]isize{ 3, 1 };
    const a: args.NormBackwardArgs = .{ .kind = .layer, .dtype = .f32, .w_dtype = .f32, .eps = 1e-5, .dx = @ptrCast(&dummy), .x = @ptrCast(&dummy), .g = @ptrCast(&dummy), .weight = null, .dweight = &dw, .dbias = &db, .layout = layout3(&.{ 0, 3 }, .{ &st, &st, &st }) };
    const par = Parallel.testing();
    try testing.expectEqual(@as(u32, 0), grad.normBackward(vbits, &par, &a));
    try testing.expectEqualSlices(f32, &.{ 0, 0, 0 }, &dw);
    try testing.expectEqualSlices(f32, &.{ 0, 0, 0 }, &db);
}

test "norm backward reports refused scratch memory" {
    var x = [_]f32{ 1, 2, 3 };
    var o: [3]f32 = undefined;
    const st = [_]isize{ 3, 1 };
    const a: args.NormBackwardArgs = .{ .kind = .rms, .dtype = .f32, .w_dtype = .f32, .eps = 1e-5, .dx = @ptrCast(&o), .x = @ptrCast(&x), .g = @ptrCast(&x), .weight = null, .dweight = null, .dbias = null, .layout = layout3(&.{ 1, 3 }, .{ &st, &st, &st }) };
    try testing.expectEqual(@as(u32, 1), grad.normBackward(vbits, &Parallel.serial, &a));
}
