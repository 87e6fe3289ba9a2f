//! Tests of optim.zig against plain f64 definitions (PyTorch's SGD and AdamW) over three steps:
//! momentum, dampening, Nesterov, weight decay, maximize, amsgrad; f32 and half-type parameters;
//! lengths that are not multiples of the vector width; a reversed job order (identical bits).
//! Compiled at every ISA level.
const std = @import("std");
const build_options = @import("build_options");
const dt = @import("dtype.zig");
const args = @import("args.zig");
const optim = @import("optim.zig");
const gt = @import("grad_test.zig");
const Parallel = @import("parallel.zig").Parallel;
const DType = dt.DType;
const testing = std.testing;

const vbits = build_options.vector_bits;

const Sgd = struct { lr: f64, momentum: f64, dampening: f64, wd: f64, nesterov: bool, maximize: bool };

fn baseArgs(kind: args.OptimKind, d: DType, n: usize) args.OptimArgs {
    return .{ .kind = kind, .dtype = d, .flags = 0, .n = n, .lr = 0, .momentum = 0, .dampening = 0, .weight_decay = 0, .beta1 = 0, .beta2 = 0, .eps = 0, .step = 0, .p = undefined, .g = undefined, .s0 = null, .s1 = null, .s2 = null };
}

fn checkSgd(comptime d: DType, o: Sgd, n: usize, par: *const Parallel) !u64 {
    const pv = try testing.allocator.alloc(f64, n);
    defer testing.allocator.free(pv);
    for (pv, 0..) |*v, i| v.* = gt.noise(10, i, -2, 2);
    const p = try gt.Buf(d).init(pv);
    defer p.deinit();
    for (pv, 0..) |*v, i| v.* = p.get(i);
    const buf = try testing.allocator.alloc(f32, n);
    defer testing.allocator.free(buf);
    @memset(buf, std.math.nan(f32)); // the first step must not read it
    const rbuf = try testing.allocator.alloc(f64, n);
    defer testing.allocator.free(rbuf);
    const gv = try testing.allocator.alloc(f64, n);
    defer testing.allocator.free(gv);
    for (1..4) |step| {
        for (gv, 0..) |*v, i| v.* = gt.noise(20 + step, i, -1, 1);
        const g = try gt.Buf(d).init(gv);
        defer g.deinit();
        var a = baseArgs(.sgd, d, n);
        a.lr = o.lr;
        a.momentum = o.momentum;
        a.dampening = o.dampening;
        a.weight_decay = o.wd;
        a.flags = (if (o.maximize) args.optim_maximize else 0) | (if (o.nesterov) args.optim_nesterov else 0) | (if (step == 1) args.optim_first else 0);
        a.p = @ptrCast(p.data.ptr);
        a.g = @ptrCast(g.data.ptr);
        a.s0 = if (o.momentum != 0) buf.ptr else null;
        optim.optim(vbits, par, &a);
        for (0..n) |i| {
            var dd = (if (o.maximize) -g.get(i) else g.get(i)) + o.wd * pv[i];
            if (o.momentum != 0) {
                rbuf[i] = if (step == 1) dd else o.momentum * rbuf[i] + (1 - o.dampening) * dd;
                dd = if (o.nesterov) dd + o.momentum * rbuf[i] else rbuf[i];
            }
            const want = pv[i] - o.lr * dd;
            const got = p.get(i);
            const tol = (if (d == .f32) 1e-6 else gt.tolFor(d)) * @max(1.0, @abs(want));
            if (!(@abs(got - want) <= tol)) {
                std.debug.print("sgd vbits={d} {t} {any} n={d} step {d} at {d}: got {d} want {d}\n", .{ vbits, d, o, n, step, i, got, want });
                return error.TestUnexpectedResult;
            }
            pv[i] = if (d == .f32) want else got; // half types: follow the stored value
        }
    }
    var h = std.hash.Wyhash.init(1);
    h.update(std.mem.sliceAsBytes(p.data));
    if (o.momentum != 0) h.update(std.mem.sliceAsBytes(buf));
    return h.final();
}

const sgd_cases = [_]Sgd{
    .{ .lr = 0.1, .momentum = 0, .dampening = 0, .wd = 0, .nesterov = false, .maximize = false },
    .{ .lr = 0.05, .momentum = 0.9, .dampening = 0.1, .wd = 0.01, .nesterov = false, .maximize = false },
    .{ .lr = 0.05, .momentum = 0.9, .dampening = 0, .wd = 0.05, .nesterov = true, .maximize = false },
    .{ .lr = 0.2, .momentum = 0.5, .dampening = 0, .wd = 0, .nesterov = false, .maximize = true },
    .{ .lr = 0.1, .momentum = 0, .dampening = 0, .wd = 0.1, .nesterov = false, .maximize = true },
};

test "SGD over three steps matches the f64 definition" {
    const par = Parallel.testing();
    inline for (.{ DType.f32, DType.f16, DType.bf16 }) |d| {
        for (sgd_cases) |o| {
            for ([_]usize{ 1, 37, 1000 }) |n| _ = try checkSgd(d, o, n, &par);
        }
    }
}

test "SGD with weight decay 0 leaves an infinite parameter infinite (no 0 * inf)" {
    var p = [_]f32{ std.math.inf(f32), 1 };
    var g = [_]f32{ 1, 1 };
    var a = baseArgs(.sgd, .f32, 2);
    a.lr = 0.5;
    a.p = @ptrCast(&p);
    a.g = @ptrCast(&g);
    optim.optim(vbits, &Parallel.serial, &a);
    try testing.expectEqualSlices(f32, &.{ std.math.inf(f32), 0.5 }, &p);
}

const Adam = struct { lr: f64, b1: f64, b2: f64, eps: f64, wd: f64, ams: bool, maximize: bool };

fn checkAdamw(comptime d: DType, o: Adam, n: usize, par: *const Parallel) !u64 {
    const pv = try testing.allocator.alloc(f64, n);
    defer testing.allocator.free(pv);
    for (pv, 0..) |*v, i| v.* = gt.noise(11, i, -2, 2);
    const p = try gt.Buf(d).init(pv);
    defer p.deinit();
    for (pv, 0..) |*v, i| v.* = p.get(i);
    const st = try testing.allocator.alloc(f32, 3 * n);
    defer testing.allocator.free(st);
    @memset(st, 0);
    const rs = try testing.allocator.alloc(f64, 5 * n); // m, v, vmax, error bounds of m and v
    defer testing.allocator.free(rs);
    @memset(rs, 0);
    const gv = try testing.allocator.alloc(f64, n);
    defer testing.allocator.free(gv);
    for (1..4) |step| {
        // Gradients of varied size, some tiny (v near 0 tests eps).
        for (gv, 0..) |*v, i| v.* = gt.noise(30 + step, i, -1, 1) * @as(f64, if (i % 5 == 0) 1e-4 else 1);
        const g = try gt.Buf(d).init(gv);
        defer g.deinit();
        var a = baseArgs(.adamw, d, n);
        a.lr = o.lr;
        a.beta1 = o.b1;
        a.beta2 = o.b2;
        a.eps = o.eps;
        a.weight_decay = o.wd;
        a.step = @floatFromInt(step);
        a.flags = (if (o.maximize) args.optim_maximize else 0) | (if (o.ams) args.optim_amsgrad else 0);
        a.p = @ptrCast(p.data.ptr);
        a.g = @ptrCast(g.data.ptr);
        a.s0 = st.ptr;
        a.s1 = st.ptr + n;
        a.s2 = if (o.ams) st.ptr + 2 * n else null;
        optim.optim(vbits, par, &a);
        const t: f64 = @floatFromInt(step);
        const bc1 = 1 - std.math.pow(f64, o.b1, t);
        const bc2 = 1 - std.math.pow(f64, o.b2, t);
        for (0..n) |i| {
            const gg = if (o.maximize) -g.get(i) else g.get(i);
            var pp = pv[i] * (1 - o.lr * o.wd);
            // f32 state: running error bounds relative to the size of the terms (m may cancel).
            rs[3 * n + i] = o.b1 * rs[3 * n + i] + 1e-6 * (@abs(rs[i]) + @abs(gg));
            rs[4 * n + i] = o.b2 * rs[4 * n + i] + 1e-6 * (rs[n + i] + gg * gg);
            const mtol = rs[3 * n + i] + 1e-30;
            const vtol = rs[4 * n + i] + 1e-30;
            rs[i] = o.b1 * rs[i] + (1 - o.b1) * gg;
            rs[n + i] = o.b2 * rs[n + i] + (1 - o.b2) * gg * gg;
            var vu = rs[n + i];
            if (o.ams) {
                rs[2 * n + i] = @max(rs[2 * n + i], vu);
                vu = rs[2 * n + i];
            }
            pp -= o.lr / bc1 * rs[i] / (@sqrt(vu / bc2) + o.eps);
            const got = p.get(i);
            const tol = (if (d == .f32) 2e-6 else gt.tolFor(d)) * @max(1.0, @abs(pp));
            if (!(@abs(got - pp) <= tol) or !(@abs(st[i] - rs[i]) <= mtol) or !(@abs(st[n + i] - rs[n + i]) <= vtol)) {
                std.debug.print("adamw vbits={d} {t} {any} n={d} step {d} at {d}: p {d} want {d}, m {d} want {d} (tol {d}), v {d} want {d} (tol {d})\n", .{ vbits, d, o, n, step, i, got, pp, st[i], rs[i], mtol, st[n + i], rs[n + i], vtol });
                return error.TestUnexpectedResult;
            }
            pv[i] = if (d == .f32) pp else got;
        }
    }
    var h = std.hash.Wyhash.init(2);
    h.update(std.mem.sliceAsBytes(p.data));
    h.update(std.mem.sliceAsBytes(st));
    return h.final();
}

const adam_cases = [_]Adam{
    .{ .lr = 1e-2, .b1 = 0.9, .b2 = 0.999, .eps = 1e-8, .wd = 0.01, .ams = false, .maximize = false },
    .{ .lr = 3e-2, .b1 = 0.8, .b2 = 0.99, .eps = 1e-6, .wd = 0, .ams = true, .maximize = false },
    .{ .lr = 1e-2, .b1 = 0.9, .b2 = 0.999, .eps = 1e-8, .wd = 0.1, .ams = true, .maximize = true },
    .{ .lr = 1e-3, .b1 = 0, .b2 = 0, .eps = 1e-3, .wd = 0, .ams = false, .maximize = false },
};

test "AdamW over three steps matches the f64 definition" {
    const par = Parallel.testing();
    inline for (.{ DType.f32, DType.f16, DType.bf16 }) |d| {
        for (adam_cases) |o| {
            for ([_]usize{ 1, 37, 1000 }) |n| _ = try checkAdamw(d, o, n, &par);
        }
    }
}

test "optimizer steps are identical in any job order" {
    const par = Parallel.testing();
    const rev = gt.reversed();
    const n = 3 * optim.grain_elems + 13;
    for (sgd_cases[1..3]) |o| try testing.expectEqual(try checkSgd(.f32, o, n, &par), try checkSgd(.f32, o, n, &rev));
    for (adam_cases[0..2]) |o| try testing.expectEqual(try checkAdamw(.bf16, o, n, &par), try checkAdamw(.bf16, o, n, &rev));
}
