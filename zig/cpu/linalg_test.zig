//! Tests of linalg.zig: the small GEMM, LU and Cholesky solves and inverses (unblocked, blocked,
//! packed-GEMM trailing updates), and the reconstruction of cholesky, qr, eigh and svd.
const std = @import("std");
const builtin = @import("builtin");
const dt = @import("dtype.zig");
const args = @import("args.zig");
const Parallel = @import("parallel.zig").Parallel;
const ptrAt = @import("copy.zig").ptrAt;
const gemm_mod = @import("gemm.zig");
const DType = dt.DType;
const Op = args.LinalgOp;
const MatrixNorm = args.MatrixNorm;
const linalg_mod = @import("linalg.zig");
const Kernels = linalg_mod.Kernels;
const Fail = linalg_mod.Fail;
const nb = linalg_mod.nb;
const linalg = linalg_mod.linalg;

const testing = std.testing;
const TK = Kernels(256);

fn matmulRef(a: []const f64, b: []const f64, c: []f64, m: usize, k: usize, n: usize) void {
    for (0..m) |i| for (0..n) |j| {
        var s: f64 = 0;
        for (0..k) |p| s += a[i * k + p] * b[p * n + j];
        c[i * n + j] = s;
    };
}

fn testArgs(op: Op, flags: u32, a: []const f64, m: usize, n: usize, rs: isize, cs: isize, out: [3]?[*]u8) args.LinalgArgs {
    var la: args.LinalgArgs = .{ .op = op, .in_dtype = .f64, .out_dtype = .f64, .flags = flags, .k = 0, .p = 0, .a = @ptrCast(a.ptr), .b = null, .out = out, .fail_item = 0, .fail_at = 0, .layout = undefined };
    la.layout.ndim = 2;
    la.layout.shape[0] = m;
    la.layout.shape[1] = n;
    la.layout.strides[0][0] = rs;
    la.layout.strides[0][1] = cs;
    la.layout.strides[1][0] = 0;
    la.layout.strides[1][1] = 0;
    return la;
}

fn fillRand(x: []f64, seed: u64) void {
    var r = std.Random.DefaultPrng.init(seed);
    for (x) |*v| v.* = r.random().float(f64) * 2 - 1;
}

test "gemm matches a reference for odd sizes" {
    const par = Parallel.testing();
    const m = 13;
    const k = 7;
    const n = 37;
    var a: [m * k]f64 = undefined;
    var b: [k * n]f64 = undefined;
    var c: [m * n]f64 = undefined;
    var want: [m * n]f64 = undefined;
    fillRand(&a, 1);
    fillRand(&b, 2);
    fillRand(&c, 3);
    matmulRef(&a, &b, &want, m, k, n);
    for (&want, c) |*w, x| w.* = x - w.*;
    TK.gemm(&par, m, n, k, -1, &a, k, 1, &b, n, 1, &c, n);
    for (want, c) |w, x| try testing.expectApproxEqAbs(w, x, 1e-12);
}

test "LU and Cholesky solve and invert (unblocked, blocked, and packed-GEMM trailing updates)" {
    const par = Parallel.testing();
    const al = testing.allocator;
    for ([_]usize{ 5, 70, 200 }) |n| {
        const a = try al.alloc(f64, n * n);
        defer al.free(a);
        const lu = try al.alloc(f64, n * n);
        defer al.free(lu);
        const x = try al.alloc(f64, n * n);
        defer al.free(x);
        const prod = try al.alloc(f64, n * n);
        defer al.free(prod);
        const piv = try al.alloc(usize, n);
        defer al.free(piv);
        fillRand(a, 7);
        @memcpy(lu, a);
        try testing.expect(TK.getrf(&par, lu.ptr, n, piv.ptr) == null);
        for (0..n) |i| for (0..n) |j| {
            x[i * n + j] = if (i == j) 1 else 0;
        };
        TK.getrs(&par, lu.ptr, n, piv.ptr, x.ptr, n);
        matmulRef(a, x, prod, n, n, n);
        for (0..n) |i| for (0..n) |j| try testing.expectApproxEqAbs(@as(f64, if (i == j) 1 else 0), prod[i * n + j], 1e-8);
        // Cholesky of A A^T + n I.
        for (0..n) |i| for (0..n) |j| {
            var s: f64 = 0;
            for (0..n) |p| s += a[i * n + p] * a[j * n + p];
            lu[i * n + j] = s + if (i == j) @as(f64, @floatFromInt(n)) else 0;
        };
        @memcpy(x, lu);
        const panel = try al.alloc(f64, nb * n);
        defer al.free(panel);
        try testing.expect(TK.potrf(&par, x.ptr, n, panel.ptr) == null);
        for (0..n) |i| for (0..i + 1) |j| {
            var s: f64 = 0;
            for (0..j + 1) |p| s += x[i * n + p] * x[j * n + p];
            try testing.expectApproxEqAbs(lu[i * n + j], s, 1e-8 * @as(f64, @floatFromInt(n)));
        };
    }
}

test "cholesky, qr, eigh and svd reconstruct" {
    var par = Parallel.testing();
    const n = 40;
    var b: [n * n]f64 = undefined;
    fillRand(&b, 11);
    var spd: [n * n]f64 = undefined;
    for (0..n) |i| for (0..n) |j| {
        var s: f64 = 0;
        for (0..n) |p| s += b[p * n + i] * b[p * n + j];
        spd[i * n + j] = s + if (i == j) @as(f64, n) else 0;
    };
    // Cholesky
    var l = spd;
    var panel: [nb * n]f64 = undefined;
    try testing.expect(TK.potrf(&par, &l, n, &panel) == null);
    for (0..n) |i| for (0..n) |j| {
        var s: f64 = 0;
        for (0..@min(i, j) + 1) |p| s += l[i * n + p] * l[j * n + p];
        try testing.expectApproxEqAbs(spd[i * n + j], s, 1e-9);
    };
    // Not positive definite.
    var neg = spd;
    neg[5 * n + 5] = -1e6;
    try testing.expectEqual(@as(?usize, 5), TK.potrf(&par, &neg, n, &panel));
    // Through the batched entry point: eigh, qr and svd of one matrix (f64 in and out).
    var w: [n]f64 = undefined;
    var v: [n * n]f64 = undefined;
    var la = testArgs(.eigh, 0, &spd, n, n, n, 1, .{ @ptrCast(&w), @ptrCast(&v), null });
    try testing.expectEqual(@as(u32, 0), linalg(256, &par, &la));
    for (0..n) |i| for (0..n) |j| {
        var s: f64 = 0;
        for (0..n) |p| s += v[i * n + p] * w[p] * v[j * n + p];
        try testing.expectApproxEqAbs(spd[i * n + j], s, 1e-8);
    };
    for (1..n) |i| try testing.expect(w[i - 1] <= w[i]);
    // svd of a 40 x 25 slice (strided) and its transpose, full matrices.
    inline for (.{ false, true }) |tr| {
        const m = if (tr) 25 else 40;
        const c = if (tr) 40 else 25;
        var u: [m * m]f64 = undefined;
        var sv: [25]f64 = undefined;
        var vt: [c * c]f64 = undefined;
        la = testArgs(.svd, 3, &b, m, c, if (tr) 1 else n, if (tr) n else 1, .{ @ptrCast(&u), @ptrCast(&sv), @ptrCast(&vt) });
        try testing.expectEqual(@as(u32, 0), linalg(256, &par, &la));
        for (0..m) |i| for (0..c) |j| {
            var s: f64 = 0;
            for (0..25) |p| s += u[i * m + p] * sv[p] * vt[p * c + j];
            const want = if (tr) b[j * n + i] else b[i * n + j];
            try testing.expectApproxEqAbs(want, s, 1e-10);
        };
        for (1..25) |i| try testing.expect(sv[i - 1] >= sv[i]);
    }
    // qr complete of a 40 x 25 matrix.
    {
        var q: [40 * 40]f64 = undefined;
        var r: [40 * 25]f64 = undefined;
        la = testArgs(.qr, 1, &b, 40, 25, n, 1, .{ @ptrCast(&q), @ptrCast(&r), null });
        try testing.expectEqual(@as(u32, 0), linalg(256, &par, &la));
        for (0..40) |i| for (0..25) |j| {
            var s: f64 = 0;
            for (0..40) |p| s += q[i * 40 + p] * r[p * 25 + j];
            try testing.expectApproxEqAbs(b[i * n + j], s, 1e-12);
            if (i > j) try testing.expectEqual(@as(f64, 0), r[i * 25 + j]);
        };
    }
    // Memory refused: reported, nothing leaks.
    par.alloc_fn = Parallel.serial.alloc_fn;
    try testing.expectEqual(@intFromEnum(Fail.oom), linalg(256, &par, &la));
}
