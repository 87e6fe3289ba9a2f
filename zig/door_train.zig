//! Bodies of the gradient, gather/scatter and optimizer exports of zig/root.zig (which keeps
//! the signatures and their documentation). Same rules: check every argument, return a status.
const std = @import("std");
const args_mod = @import("cpu/args.zig");
const door = @import("door.zig");
const fail = door.fail;
const ok = door.ok;
const count = door.count;
const finite = door.finite;
const dtypeOr = door.dtypeOr;
const readLayout = door.readLayout;
const isTensorFloat = door.isTensorFloat;
const getEngine = door.getEngine;

/// Reads the [outer, axis_len, inner] view and the index count of a take / indexAdd call.
pub fn gatherArgs(name: []const u8, dtype: u32, idx_dtype: u32, outer: f64, axis_len: f64, inner: f64, nidx: f64, a: *args_mod.GatherArgs) ?i32 {
    a.dtype = switch (dtypeOr(dtype, name)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    a.idx_dtype = switch (dtypeOr(idx_dtype, name)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    switch (a.idx_dtype) {
        .i8, .i16, .i32, .u8, .u16, .u32 => {},
        else => return fail(.dtype, "{s}: indices must be an integer dtype, not {t}", .{ name, a.idx_dtype }),
    }
    if (a.dtype == .f64) return fail(.dtype, "{s}: {t} is not a tensor dtype", .{ name, a.dtype });
    a.outer = count(outer) orelse return fail(.shape, "{s}: invalid outer size {d}", .{ name, outer });
    a.axis_len = count(axis_len) orelse return fail(.shape, "{s}: invalid axis size {d}", .{ name, axis_len });
    a.inner = count(inner) orelse return fail(.shape, "{s}: invalid inner size {d}", .{ name, inner });
    a.nidx = count(nidx) orelse return fail(.shape, "{s}: invalid index count {d}", .{ name, nidx });
    return null;
}

/// Maps a take / indexAdd kernel result to a status.
pub fn gatherStatus(name: []const u8, code: u32, a: *const args_mod.GatherArgs) i32 {
    return switch (code) {
        0 => ok(),
        1 => fail(.shape, "{s}: index {d} is out of bounds for an axis of size {d} (position {d} of the indices)", .{ name, a.fail_value, a.axis_len, a.fail_at }),
        2 => fail(.out_of_memory, "{s}: scratch memory for {d} indices was refused", .{ name, a.nidx }),
        else => fail(.internal, "{s}: unknown kernel status {d}", .{ name, code }),
    };
}

pub fn softmax_backward(dx: ?*anyopaque, y: ?*const anyopaque, g: ?*const anyopaque, dtype: u32, log: u32, ndim: u32) i32 {
    const name = "softmaxBackward";
    const d = switch (dtypeOr(dtype, name)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    if (!isTensorFloat(d)) return fail(.dtype, "{s}: needs f32, f16 or bf16, got {t}", .{ name, d });
    if (log > 1) return fail(.invalid_argument, "{s}: log must be 0 or 1, got {d}", .{ name, log });
    var args: args_mod.SoftmaxBackwardArgs = .{ .dtype = d, .log = log, .dx = undefined, .y = undefined, .g = undefined, .layout = undefined };
    if (readLayout(3, name, ndim, &args.layout)) |st| return st;
    if (args.layout.size() == 0) return ok();
    args.dx = @ptrCast(dx orelse return fail(.invalid_argument, "{s}: null output", .{name}));
    args.y = @ptrCast(y orelse return fail(.invalid_argument, "{s}: null input", .{name}));
    args.g = @ptrCast(g orelse return fail(.invalid_argument, "{s}: null gradient", .{name}));
    const e = getEngine();
    e.table.softmax_backward(&e.par, &args);
    return ok();
}

pub fn norm_backward(kind: u32, dx: ?*anyopaque, x: ?*const anyopaque, g: ?*const anyopaque, dtype: u32, weight: ?*const anyopaque, w_dtype: u32, dweight: ?*anyopaque, dbias: ?*anyopaque, eps: f64, ndim: u32) i32 {
    const name = "normBackward";
    const k = std.enums.fromInt(args_mod.NormKind, kind) orelse return fail(.invalid_argument, "{s}: unknown kind {d}", .{ name, kind });
    const d = switch (dtypeOr(dtype, name)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    const wd = switch (dtypeOr(w_dtype, name)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    if (!isTensorFloat(d)) return fail(.dtype, "{s}: needs f32, f16 or bf16, got {t}", .{ name, d });
    if (weight != null and !isTensorFloat(wd)) return fail(.dtype, "{s}: the weight must be f32, f16 or bf16, not {t}", .{ name, wd });
    if (!(eps >= 0) or !std.math.isFinite(eps)) return fail(.invalid_argument, "{s}: eps must be finite and >= 0, got {d}", .{ name, eps });
    if (ndim == 0) return fail(.shape, "{s}: a 0-d layout has no last axis", .{name});
    var args: args_mod.NormBackwardArgs = .{ .kind = k, .dtype = d, .w_dtype = wd, .eps = eps, .dx = undefined, .x = undefined, .g = undefined, .weight = @ptrCast(weight), .dweight = @ptrCast(@alignCast(dweight)), .dbias = @ptrCast(@alignCast(dbias)), .layout = undefined };
    if (readLayout(3, name, ndim, &args.layout)) |st| return st;
    const len = args.layout.shape[ndim - 1];
    if (args.layout.size() == 0) {
        if (args.dweight) |p| @memset(p[0..len], 0);
        if (args.dbias) |p| @memset(p[0..len], 0);
        return ok();
    }
    args.dx = @ptrCast(dx orelse return fail(.invalid_argument, "{s}: null output", .{name}));
    args.x = @ptrCast(x orelse return fail(.invalid_argument, "{s}: null input", .{name}));
    args.g = @ptrCast(g orelse return fail(.invalid_argument, "{s}: null gradient", .{name}));
    const e = getEngine();
    if (e.table.norm_backward(&e.par, &args) != 0) return fail(.out_of_memory, "{s}: scratch memory for rows of {d} was refused", .{ name, len });
    return ok();
}

pub fn take(out: ?*anyopaque, x: ?*const anyopaque, dtype: u32, idx: ?*const anyopaque, idx_dtype: u32, outer: f64, axis_len: f64, inner: f64, nidx: f64) i32 {
    const name = "take";
    var a: args_mod.GatherArgs = .{ .dtype = undefined, .idx_dtype = undefined, .src_dtype = .f32, .outer = 0, .axis_len = 0, .inner = 0, .nidx = 0, .out = undefined, .x = undefined, .idx = undefined, .fail_at = 0, .fail_value = 0 };
    if (gatherArgs(name, dtype, idx_dtype, outer, axis_len, inner, nidx, &a)) |st| return st;
    if (a.nidx == 0) return ok();
    a.idx = @ptrCast(idx orelse return fail(.invalid_argument, "{s}: null indices", .{name}));
    const writes = a.outer * a.inner > 0;
    a.out = if (writes) @ptrCast(out orelse return fail(.invalid_argument, "{s}: null output", .{name})) else undefined;
    a.x = if (writes) @ptrCast(x orelse return fail(.invalid_argument, "{s}: null input", .{name})) else undefined;
    const e = getEngine();
    return gatherStatus(name, e.table.take(&e.par, &a), &a);
}

pub fn index_add(target: ?*anyopaque, dtype: u32, src: ?*const anyopaque, src_dtype: u32, idx: ?*const anyopaque, idx_dtype: u32, outer: f64, axis_len: f64, inner: f64, nidx: f64) i32 {
    const name = "indexAdd_";
    var a: args_mod.GatherArgs = .{ .dtype = undefined, .idx_dtype = undefined, .src_dtype = undefined, .outer = 0, .axis_len = 0, .inner = 0, .nidx = 0, .out = undefined, .x = undefined, .idx = undefined, .fail_at = 0, .fail_value = 0 };
    if (gatherArgs(name, dtype, idx_dtype, outer, axis_len, inner, nidx, &a)) |st| return st;
    a.src_dtype = switch (dtypeOr(src_dtype, name)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    if (!isTensorFloat(a.dtype) or !isTensorFloat(a.src_dtype)) return fail(.dtype, "{s}: target and source must be f32, f16 or bf16, got {t} and {t}", .{ name, a.dtype, a.src_dtype });
    if (a.nidx == 0) return ok();
    a.idx = @ptrCast(idx orelse return fail(.invalid_argument, "{s}: null indices", .{name}));
    const writes = a.outer * a.inner > 0;
    a.out = if (writes) @ptrCast(target orelse return fail(.invalid_argument, "{s}: null target", .{name})) else undefined;
    a.x = if (writes) @ptrCast(src orelse return fail(.invalid_argument, "{s}: null source", .{name})) else undefined;
    const e = getEngine();
    return gatherStatus(name, e.table.index_add(&e.par, &a), &a);
}

pub fn sgd_update(p: ?*anyopaque, g: ?*const anyopaque, buf: ?*anyopaque, dtype: u32, n: f64, lr: f64, momentum: f64, dampening: f64, weight_decay: f64, flags: u32) i32 {
    const name = "sgdUpdate_";
    const d = switch (dtypeOr(dtype, name)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    if (!isTensorFloat(d)) return fail(.dtype, "{s}: parameters must be f32, f16 or bf16, not {t}", .{ name, d });
    const len = count(n) orelse return fail(.invalid_argument, "{s}: invalid length {d}", .{ name, n });
    if (flags > 7) return fail(.invalid_argument, "{s}: unknown flags {d}", .{ name, flags });
    const vals = [_]f64{ lr, momentum, dampening, weight_decay };
    for (vals) |v| if (finite(v) == null) return fail(.invalid_argument, "{s}: lr, momentum, dampening and weight decay must be finite, got {d}, {d}, {d}, {d}", .{ name, lr, momentum, dampening, weight_decay });
    if (flags & args_mod.optim_nesterov != 0 and (momentum <= 0 or dampening != 0)) return fail(.invalid_argument, "{s}: Nesterov momentum needs momentum > 0 and zero dampening", .{name});
    if (momentum != 0 and buf == null and len > 0) return fail(.invalid_argument, "{s}: momentum {d} needs a momentum buffer", .{ name, momentum });
    if (len == 0) return ok();
    const a: args_mod.OptimArgs = .{
        .kind = .sgd,
        .dtype = d,
        .flags = flags,
        .n = len,
        .lr = lr,
        .momentum = momentum,
        .dampening = dampening,
        .weight_decay = weight_decay,
        .beta1 = 0,
        .beta2 = 0,
        .eps = 0,
        .step = 0,
        .p = @ptrCast(p orelse return fail(.invalid_argument, "{s}: null parameters", .{name})),
        .g = @ptrCast(g orelse return fail(.invalid_argument, "{s}: null gradient", .{name})),
        .s0 = if (momentum != 0) @ptrCast(@alignCast(buf)) else null,
        .s1 = null,
        .s2 = null,
    };
    const e = getEngine();
    e.table.optim(&e.par, &a);
    return ok();
}

pub fn adamw_update(p: ?*anyopaque, g: ?*const anyopaque, m: ?*anyopaque, v: ?*anyopaque, vmax: ?*anyopaque, dtype: u32, n: f64, lr: f64, beta1: f64, beta2: f64, eps: f64, weight_decay: f64, step: f64, flags: u32) i32 {
    const name = "adamwUpdate_";
    const d = switch (dtypeOr(dtype, name)) {
        .ok => |val| val,
        .err => |e| return e,
    };
    if (!isTensorFloat(d)) return fail(.dtype, "{s}: parameters must be f32, f16 or bf16, not {t}", .{ name, d });
    const len = count(n) orelse return fail(.invalid_argument, "{s}: invalid length {d}", .{ name, n });
    if (flags & ~(args_mod.optim_maximize | args_mod.optim_amsgrad) != 0) return fail(.invalid_argument, "{s}: unknown flags {d}", .{ name, flags });
    if (finite(lr) == null or finite(weight_decay) == null) return fail(.invalid_argument, "{s}: lr and weight decay must be finite, got {d} and {d}", .{ name, lr, weight_decay });
    if (!(beta1 >= 0 and beta1 < 1) or !(beta2 >= 0 and beta2 < 1)) return fail(.invalid_argument, "{s}: betas must be in [0, 1), got {d} and {d}", .{ name, beta1, beta2 });
    if (!(eps >= 0) or finite(eps) == null) return fail(.invalid_argument, "{s}: eps must be finite and >= 0, got {d}", .{ name, eps });
    const t = count(step) orelse return fail(.invalid_argument, "{s}: step must be a whole number >= 1, got {d}", .{ name, step });
    if (t < 1) return fail(.invalid_argument, "{s}: step must be a whole number >= 1, got {d}", .{ name, step });
    const ams = flags & args_mod.optim_amsgrad != 0;
    if (len == 0) return ok();
    const a: args_mod.OptimArgs = .{
        .kind = .adamw,
        .dtype = d,
        .flags = flags,
        .n = len,
        .lr = lr,
        .momentum = 0,
        .dampening = 0,
        .weight_decay = weight_decay,
        .beta1 = beta1,
        .beta2 = beta2,
        .eps = eps,
        .step = step,
        .p = @ptrCast(p orelse return fail(.invalid_argument, "{s}: null parameters", .{name})),
        .g = @ptrCast(g orelse return fail(.invalid_argument, "{s}: null gradient", .{name})),
        .s0 = @ptrCast(@alignCast(m orelse return fail(.invalid_argument, "{s}: null first moment", .{name}))),
        .s1 = @ptrCast(@alignCast(v orelse return fail(.invalid_argument, "{s}: null second moment", .{name}))),
        .s2 = if (ams) @ptrCast(@alignCast(vmax orelse return fail(.invalid_argument, "{s}: amsgrad needs the running maximum", .{name}))) else null,
    };
    const e = getEngine();
    e.table.optim(&e.par, &a);
    return ok();
}
