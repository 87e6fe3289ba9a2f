//! Bodies of the matmul, linear algebra and ternary exports of zig/root.zig (which keeps the
//! signatures and their documentation). Same rules: check every argument, return a status.
const std = @import("std");
const dt = @import("cpu/dtype.zig");
const args_mod = @import("cpu/args.zig");
const DType = dt.DType;
const door = @import("door.zig");
const fail = door.fail;
const ok = door.ok;
const count = door.count;
const dtypeOr = door.dtypeOr;
const readLayout = door.readLayout;
const isTensorFloat = door.isTensorFloat;
const getEngine = door.getEngine;
const Engine = door.Engine;

/// Whether the current level has fused int8 dot products on this CPU (AVX-512 VNNI, AVX-VNNI,
/// NEON dot product), so the ternary kernel may use them.
pub fn dotExt(e: *const Engine) bool {
    const f = e.detected.features;
    return switch (e.level) {
        .avx512 => f.avx512_vnni,
        .avx2 => f.avx_vnni,
        .neon => f.dotprod,
        else => false,
    };
}

pub fn matmul(out: ?*anyopaque, out_dtype: u32, a: ?*const anyopaque, b: ?*const anyopaque, in_dtype: u32, alpha: f64, beta: f64, ndim: u32) i32 {
    const id = switch (dtypeOr(in_dtype, "matmul")) {
        .ok => |v| v,
        .err => |e| return e,
    };
    const od = switch (dtypeOr(out_dtype, "matmul")) {
        .ok => |v| v,
        .err => |e| return e,
    };
    switch (id) {
        .f32, .f16, .bf16, .i32, .f64 => {},
        else => return fail(.dtype, "matmul: the kernel reads f32, f16, bf16 or i32 operands, not {t} (widen integers to i32 first)", .{id}),
    }
    const want: DType = if (isTensorFloat(id)) .f32 else if (id == .f64) .f64 else .i32;
    if (od != want) return fail(.dtype, "matmul of {t} accumulates in {t}, not {t}", .{ id, want, od });
    if (ndim < 3) return fail(.shape, "matmul: a layout needs [batch..., M, N, K], got {d} axes", .{ndim});
    var args: args_mod.GemmArgs = .{ .in_dtype = id, .out_dtype = od, .alpha = alpha, .beta = beta, .out = undefined, .a = undefined, .b = undefined, .layout = undefined };
    if (readLayout(3, "matmul", ndim, &args.layout)) |st| return st;
    var out_size: usize = 1;
    for (args.layout.shape[0 .. ndim - 1]) |dim| out_size *= dim;
    if (out_size == 0) return ok();
    args.out = @ptrCast(out orelse return fail(.invalid_argument, "matmul: null output", .{}));
    const kdim = args.layout.shape[ndim - 1];
    args.a = if (kdim == 0) @ptrCast(out.?) else @ptrCast(a orelse return fail(.invalid_argument, "matmul: null operand", .{}));
    args.b = if (kdim == 0) @ptrCast(out.?) else @ptrCast(b orelse return fail(.invalid_argument, "matmul: null operand", .{}));
    const e = getEngine();
    switch (e.table.gemm(&e.par, &args)) {
        0 => {},
        1 => return fail(.out_of_memory, "matmul: scratch memory for packing was refused", .{}),
        else => return fail(.dtype, "matmul: no kernel for {t}", .{id}),
    }
    return ok();
}

pub fn linalg(op: u32, in_dtype: u32, out_dtype: u32, a: ?*const anyopaque, b: ?*const anyopaque, out0: ?*anyopaque, out1: ?*anyopaque, out2: ?*anyopaque, k: f64, flags: u32, p: f64, ndim: u32) i32 {
    const lop = std.enums.fromInt(args_mod.LinalgOp, op) orelse return fail(.invalid_argument, "linalg: unknown op {d}", .{op});
    const name = @tagName(lop);
    const id = switch (dtypeOr(in_dtype, name)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    const od = switch (dtypeOr(out_dtype, name)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    if (id == .f64) return fail(.dtype, "{s}: {t} is not a tensor dtype", .{ name, id });
    const want: DType = if (isTensorFloat(id)) id else .f32;
    if (od != want) return fail(.dtype, "{s} of {t} gives {t}, not {t}", .{ name, id, want, od });
    if (ndim < 2) return fail(.shape, "{s}: needs [batch..., m, n], got {d} axes", .{ name, ndim });
    var args: args_mod.LinalgArgs = .{ .op = lop, .in_dtype = id, .out_dtype = od, .flags = flags, .k = 0, .p = p, .a = undefined, .b = null, .out = .{ @ptrCast(out0), @ptrCast(out1), @ptrCast(out2) }, .fail_item = 0, .fail_at = 0, .layout = undefined };
    if (readLayout(2, name, ndim, &args.layout)) |st| return st;
    const m = args.layout.shape[ndim - 2];
    const n = args.layout.shape[ndim - 1];
    var batch: usize = 1;
    for (args.layout.shape[0 .. ndim - 2]) |dim| batch *= dim;
    const outs: usize = switch (lop) {
        .inv, .det, .cholesky, .solve => 1,
        .qr, .eigh => 2,
        .svd => if (flags & 2 != 0) 3 else 1,
        .norm_vector, .norm_matrix => 1,
    };
    switch (lop) {
        .inv, .det, .cholesky, .eigh, .solve => if (m != n) return fail(.shape, "{s}: needs square matrices, got {d}x{d}", .{ name, m, n }),
        .qr => if (flags > 1) return fail(.invalid_argument, "qr: unknown mode flags {d}", .{flags}),
        .svd => if (flags > 3) return fail(.invalid_argument, "svd: unknown flags {d}", .{flags}),
        .norm_matrix => if (std.enums.fromInt(args_mod.MatrixNorm, flags) == null) return fail(.invalid_argument, "norm: unknown matrix order code {d}", .{flags}),
        .norm_vector => if (std.math.isNan(p)) return fail(.invalid_argument, "norm: the order is NaN", .{}),
    }
    if (lop == .solve) args.k = count(k) orelse return fail(.shape, "solve: invalid column count {d}", .{k});
    if (batch == 0) return ok();
    args.a = @ptrCast(a orelse return fail(.invalid_argument, "{s}: null operand", .{name}));
    if (lop == .solve) args.b = @ptrCast(b orelse return fail(.invalid_argument, "solve: null right-hand side", .{}));
    for (args.out[0..outs]) |o| if (o == null) return fail(.invalid_argument, "{s}: null output", .{name});
    const e = getEngine();
    const code = e.table.linalg(&e.par, &args);
    return switch (code) {
        0 => ok(),
        1 => fail(.out_of_memory, "scratch memory for a {d}x{d} matrix was refused", .{ m, n }),
        2 => fail(.linalg, "singular matrix (matrix {d} of the batch: pivot {d} is exactly zero)", .{ args.fail_item, args.fail_at }),
        3 => fail(.linalg, "matrix is not positive definite (matrix {d} of the batch: the leading minor of order {d} is not positive)", .{ args.fail_item, args.fail_at + 1 }),
        4 => fail(.linalg, "did not converge (matrix {d} of the batch; NaN or Inf in the input?)", .{args.fail_item}),
        else => fail(.internal, "{s}: unknown kernel status {d}", .{ name, code }),
    };
}

pub fn ternary_pack(op: u32, format: u32, dtype: u32, values: ?*anyopaque, scales: ?*anyopaque, blocks: ?*anyopaque, out: ?*anyopaque, n: f64) i32 {
    const top = std.enums.fromInt(args_mod.TernaryOp, op) orelse return fail(.invalid_argument, "ternary_pack: unknown op {d}", .{op});
    const f = std.enums.fromInt(args_mod.TernaryFormat, format) orelse return fail(.invalid_argument, "ternary_pack: unknown format code {d}", .{format});
    const d = switch (dtypeOr(dtype, "ternary_pack")) {
        .ok => |v| v,
        .err => |e| return e,
    };
    const len = count(n) orelse return fail(.invalid_argument, "ternary_pack: invalid weight count {d}", .{n});
    if (len % 256 != 0) return fail(.shape, "ternary_pack: {t} blocks hold 256 weights; {d} weights is not a multiple of 256", .{ f, len });
    if (top == .dequantize and !isTensorFloat(d)) return fail(.dtype, "ternary_pack: dequantize gives f32, f16 or bf16, not {t}", .{d});
    if (top == .dequantize and f == .i2) return fail(.invalid_argument, "ternary_pack: i2 blocks carry no scale to dequantize with", .{});
    var args: args_mod.TernaryPackArgs = .{ .op = top, .format = f, .dtype = d, .nblocks = len / 256, .values = @ptrCast(values), .scales = @ptrCast(scales), .blocks = undefined, .out = @ptrCast(out), .fail_at = 0 };
    if (len == 0) return ok();
    args.blocks = @ptrCast(blocks orelse return fail(.invalid_argument, "ternary_pack: null blocks", .{}));
    switch (top) {
        .pack => if (values == null or (scales == null and f != .i2)) return fail(.invalid_argument, "ternary_pack: pack needs values and scales", .{}),
        .unpack => if (values == null) return fail(.invalid_argument, "ternary_pack: unpack needs a values buffer", .{}),
        .dequantize => if (out == null) return fail(.invalid_argument, "ternary_pack: null output", .{}),
    }
    const e = getEngine();
    if (e.table.ternary_pack(&e.par, &args) != 0) {
        const v: i8 = @as([*]const i8, @ptrCast(values.?))[args.fail_at];
        return fail(.invalid_argument, "ternary_pack: value {d} at index {d} is not -1, 0 or 1", .{ v, args.fail_at });
    }
    return ok();
}

/// The checked arguments of a ternary matmul (shared by the CPU and CUDA exports).
pub const TernaryCall = struct { f: args_mod.TernaryFormat, d: dt.DType, mm: usize, nn: usize, kk: usize, xs: usize, g: usize };

/// Checks the arguments common to bn_ternary_matmul and bn_gpu_ternary_matmul.
pub fn ternaryCall(name: []const u8, x_dtype: u32, scales: ?*const anyopaque, format: u32, scale_mode: u32, m: f64, n: f64, k: f64, x_stride: f64, group: f64) union(enum) { ok: TernaryCall, err: i32 } {
    const f = std.enums.fromInt(args_mod.TernaryFormat, format) orelse return .{ .err = fail(.invalid_argument, "{s}: unknown format code {d}", .{ name, format }) };
    const d = switch (dtypeOr(x_dtype, name)) {
        .ok => |v| v,
        .err => |e| return .{ .err = e },
    };
    if (!isTensorFloat(d)) return .{ .err = fail(.dtype, "{s}: activations must be f32, f16 or bf16, not {t}", .{ name, d }) };
    const c: TernaryCall = .{
        .f = f,
        .d = d,
        .mm = count(m) orelse return .{ .err = fail(.invalid_argument, "{s}: invalid token count {d}", .{ name, m }) },
        .nn = count(n) orelse return .{ .err = fail(.invalid_argument, "{s}: invalid row count {d}", .{ name, n }) },
        .kk = count(k) orelse return .{ .err = fail(.invalid_argument, "{s}: invalid inner size {d}", .{ name, k }) },
        .xs = count(x_stride) orelse return .{ .err = fail(.invalid_argument, "{s}: invalid row stride {d}", .{ name, x_stride }) },
        .g = count(group) orelse return .{ .err = fail(.invalid_argument, "{s}: invalid group {d}", .{ name, group }) },
    };
    if (f != .i2 and c.kk % 256 != 0) return .{ .err = fail(.shape, "{s}: {t} rows hold whole 256-weight blocks; k = {d} is not a multiple of 256", .{ name, f, c.kk }) };
    if (f == .i2) {
        if (scale_mode > 2) return .{ .err = fail(.invalid_argument, "{s}: unknown scale mode {d}", .{ name, scale_mode }) };
        if (scale_mode == 2 and (c.g == 0 or c.g % 256 != 0 or c.kk % c.g != 0)) return .{ .err = fail(.shape, "{s}: group {d} must be a multiple of 256 dividing k = {d}", .{ name, c.g, c.kk }) };
        if (scales == null and c.mm * c.nn > 0) return .{ .err = fail(.invalid_argument, "{s}: i2 needs scales", .{name}) };
    }
    return .{ .ok = c };
}

pub fn ternary_matmul(out: ?*anyopaque, x: ?*anyopaque, x_dtype: u32, w: ?*anyopaque, scales: ?*anyopaque, format: u32, scale_mode: u32, m: f64, n: f64, k: f64, x_stride: f64, group: f64, flags: u32) i32 {
    const name = "ternary_matmul";
    const c = switch (ternaryCall(name, x_dtype, scales, format, scale_mode, m, n, k, x_stride, group)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    const f = c.f;
    const d = c.d;
    const mm = c.mm;
    const nn = c.nn;
    const kk = c.kk;
    const xs = c.xs;
    const g = c.g;
    if (mm == 0 or nn == 0) return ok();
    const e = getEngine();
    const args: args_mod.TernaryMatmulArgs = .{
        .format = f,
        .x_dtype = d,
        .scale_mode = scale_mode,
        .dot_ext = @intFromBool(flags & 1 == 0 and dotExt(e)),
        .m = mm,
        .n = nn,
        .k = kk,
        .x_stride = xs,
        .group_blocks = g / 256,
        .x = @ptrCast(x orelse return fail(.invalid_argument, "{s}: null activations", .{name})),
        .w = @ptrCast(w orelse return fail(.invalid_argument, "{s}: null weights", .{name})),
        .scales = @ptrCast(@alignCast(scales)),
        .out = @ptrCast(@alignCast(out orelse return fail(.invalid_argument, "{s}: null output", .{name}))),
    };
    if (kk == 0) {
        @memset(args.out[0 .. mm * nn], 0);
        return ok();
    }
    if (e.table.ternary_matmul(&e.par, &args) != 0) return fail(.out_of_memory, "{s}: scratch memory for {d} tokens of {d} was refused", .{ name, mm, kk });
    return ok();
}
