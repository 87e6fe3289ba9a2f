//! In-place optimizer steps (args.OptimArgs) over contiguous parameters: SGD and AdamW with
//! PyTorch's semantics. Tests: optim_test.zig.
//!
//! Written once: generic over the parameter dtype (f32, f16, bf16; gradients in the same dtype,
//! state in f32, all arithmetic in f32 with the step's scalars computed in f64) and the vector
//! width `vbits`. Every element is independent, so threads take plain ranges of elements.
//!
//! SGD:   d = ±g + wd * p (wd term only when wd != 0); with momentum: buf = first ? d :
//!        momentum * buf + (1 - dampening) * d, d = nesterov ? d + momentum * buf : buf; p -= lr * d.
//! AdamW: p *= 1 - lr * wd; m += (1 - b1) * (g - m); v = b2 * v + (1 - b2) * g²; amsgrad: vmax =
//!        max(vmax, v), used instead of v; p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
const std = @import("std");
const dt = @import("dtype.zig");
const args = @import("args.zig");
const ew = @import("elementwise.zig");
const Parallel = @import("parallel.zig").Parallel;
const DType = dt.DType;
const lanes = ew.lanes;
const load = ew.load;
const store = ew.store;

/// Elements per job chunk handed to a thread.
pub const grain_elems = 32 * 1024;

pub fn optim(comptime vbits: u32, par: *const Parallel, a: *const args.OptimArgs) void {
    if (a.n == 0) return;
    switch (a.dtype) {
        inline .f32, .f16, .bf16 => |d| switch (a.kind) {
            .sgd => sgd(vbits, d, par, a),
            .adamw => adamw(vbits, d, par, a),
        },
        else => unreachable, // the door refuses non-float parameters
    }
}

const Momentum = enum { none, first, running };

fn sgd(comptime vbits: u32, comptime d: DType, par: *const Parallel, a: *const args.OptimArgs) void {
    const mom: Momentum = if (a.s0 == null or a.momentum == 0) .none else if (a.flags & args.optim_first != 0) .first else .running;
    const nesterov = a.flags & args.optim_nesterov != 0 and mom != .none;
    switch (mom) {
        inline else => |m| switch (nesterov) {
            inline else => |ne| switch (a.weight_decay != 0) {
                inline else => |wd| sgdTyped(vbits, d, m, ne, wd, par, a),
            },
        },
    }
}

fn sgdTyped(comptime vbits: u32, comptime d: DType, comptime mom: Momentum, comptime nesterov: bool, comptime has_wd: bool, par: *const Parallel, a: *const args.OptimArgs) void {
    const S = dt.Storage(d);
    const n = comptime lanes(vbits, f32);
    const Ctx = struct {
        p: [*]S,
        g: [*]const S,
        buf: [*]f32,
        sign: f32,
        wd: f32,
        lr: f32,
        momentum: f32,
        damp: f32, // 1 - dampening

        inline fn step(self: *const @This(), comptime m: usize, i: usize) void {
            const V = @Vector(m, f32);
            const p = load(d, m, self.p + i);
            var dv = load(d, m, self.g + i) * @as(V, @splat(self.sign));
            if (has_wd) dv += @as(V, @splat(self.wd)) * p;
            if (mom != .none) {
                const bp: *[m]f32 = @ptrCast(self.buf + i);
                const b: V = if (mom == .first) dv else @as(V, @splat(self.momentum)) * @as(V, bp.*) + @as(V, @splat(self.damp)) * dv;
                bp.* = b;
                dv = if (nesterov) dv + @as(V, @splat(self.momentum)) * b else b;
            }
            store(d, m, self.p + i, p - @as(V, @splat(self.lr)) * dv);
        }

        fn task(self: *const @This(), b: usize, e: usize) void {
            var i = b;
            while (i + n <= e) : (i += n) self.step(n, i);
            while (i < e) : (i += 1) self.step(1, i);
        }
    };
    const ctx: Ctx = .{
        .p = @ptrCast(@alignCast(a.p)),
        .g = @ptrCast(@alignCast(a.g)),
        .buf = if (a.s0) |s| s else undefined,
        .sign = if (a.flags & args.optim_maximize != 0) -1 else 1,
        .wd = @floatCast(a.weight_decay),
        .lr = @floatCast(a.lr),
        .momentum = @floatCast(a.momentum),
        .damp = @floatCast(1 - a.dampening),
    };
    par.run(a.n, grain_elems, &ctx, Ctx.task);
}

fn adamw(comptime vbits: u32, comptime d: DType, par: *const Parallel, a: *const args.OptimArgs) void {
    switch (a.flags & args.optim_amsgrad != 0 and a.s2 != null) {
        inline else => |ams| adamwTyped(vbits, d, ams, par, a),
    }
}

fn adamwTyped(comptime vbits: u32, comptime d: DType, comptime ams: bool, par: *const Parallel, a: *const args.OptimArgs) void {
    const S = dt.Storage(d);
    const n = comptime lanes(vbits, f32);
    const Ctx = struct {
        p: [*]S,
        g: [*]const S,
        m: [*]f32,
        v: [*]f32,
        vmax: [*]f32,
        sign: f32,
        decay: f32, // 1 - lr * wd
        b1c: f32, // 1 - beta1
        b2: f32,
        b2c: f32, // 1 - beta2
        step_size: f32, // lr / (1 - beta1^t)
        inv_bc2_sqrt: f32, // 1 / sqrt(1 - beta2^t)
        eps: f32,

        inline fn step(self: *const @This(), comptime k: usize, i: usize) void {
            const V = @Vector(k, f32);
            const sp = struct {
                inline fn f(x: f32) V {
                    return @splat(x);
                }
            }.f;
            const mp: *[k]f32 = @ptrCast(self.m + i);
            const vp: *[k]f32 = @ptrCast(self.v + i);
            const g = load(d, k, self.g + i) * sp(self.sign);
            const p = load(d, k, self.p + i) * sp(self.decay);
            var mv: V = mp.*;
            mv += (g - mv) * sp(self.b1c);
            const vv: V = @as(V, vp.*) * sp(self.b2) + g * g * sp(self.b2c);
            mp.* = mv;
            vp.* = vv;
            var vu = vv;
            if (ams) {
                const xp: *[k]f32 = @ptrCast(self.vmax + i);
                vu = @max(@as(V, xp.*), vv);
                xp.* = vu;
            }
            const denom = @sqrt(vu) * sp(self.inv_bc2_sqrt) + sp(self.eps);
            store(d, k, self.p + i, p - sp(self.step_size) * (mv / denom));
        }

        fn task(self: *const @This(), b: usize, e: usize) void {
            var i = b;
            while (i + n <= e) : (i += n) self.step(n, i);
            while (i < e) : (i += 1) self.step(1, i);
        }
    };
    const bc1 = 1 - std.math.pow(f64, a.beta1, a.step);
    const bc2 = 1 - std.math.pow(f64, a.beta2, a.step);
    const ctx: Ctx = .{
        .p = @ptrCast(@alignCast(a.p)),
        .g = @ptrCast(@alignCast(a.g)),
        .m = a.s0.?,
        .v = a.s1.?,
        .vmax = if (a.s2) |s| s else undefined,
        .sign = if (a.flags & args.optim_maximize != 0) -1 else 1,
        .decay = @floatCast(1 - a.lr * a.weight_decay),
        .b1c = @floatCast(1 - a.beta1),
        .b2 = @floatCast(a.beta2),
        .b2c = @floatCast(1 - a.beta2),
        .step_size = @floatCast(a.lr / bc1),
        .inv_bc2_sqrt = @floatCast(1 / @sqrt(bc2)),
        .eps = @floatCast(a.eps),
    };
    par.run(a.n, grain_elems, &ctx, Ctx.task);
}
