//! Linear algebra: inv, solve, det, cholesky, qr, svd, eigh and norms, batched over leading axes.
//!
//! Written once, generic over the vector width `vbits` of the ISA level this object is compiled
//! for. Every matrix is read through its strides (any dtype, converted to f64), factorised in an
//! f64 row-major scratch copy, and written to a contiguous output in the output dtype. Scratch
//! comes from `par.alloc` (the engine's pool); a refusal is reported as `Fail.oom`.
//!
//! Algorithms (LAPACK's, in row-major form so the inner loops run along contiguous rows):
//! - LU with partial pivoting (getrf), blocked: an unblocked panel of `nb` columns, a triangular
//!   solve for the block row, and a GEMM update of the trailing matrix. inv and solve apply the
//!   factors to the identity / right-hand sides with blocked triangular solves (getrs). det is the
//!   product of U's diagonal times the permutation's sign. A pivot that is exactly zero makes
//!   inv/solve fail as singular (as LAPACK); det then returns 0.
//! - Cholesky (potrf, lower), blocked right-looking; the trailing update is a GEMM against a
//!   transposed copy of the panel. A non-positive (or NaN) pivot means "not positive definite".
//! - QR: Householder reflectors (geqrf), blocked with the compact WY form (larft/larfb), Q formed
//!   by applying the blocks backwards to the identity (orgqr).
//! - eigh: Householder tridiagonalisation of the lower triangle (sytrd), Qᵀ accumulated, then the
//!   implicit QL algorithm with Wilkinson-like shifts (tql2); rotations act on rows of Qᵀ.
//! - SVD: Golub-Kahan bidiagonalisation (gebrd) with Uᵀ and Vᵀ formed from the reflectors, then
//!   the Golub-Reinsch implicit-shift QR on the bidiagonal; rotations act on rows of Uᵀ and Vᵀ.
//!   A wide matrix (m < n) is decomposed transposed. Iterations are capped; non-convergence
//!   (or NaN input) fails with `Fail.no_convergence`.
//!
//! Files: this one holds the batched entry point (`linalg`), the per-op drivers, matrix I/O and
//! scratch; linalg_blas.zig the vector primitives, small GEMM and Householder generator;
//! linalg_factor.zig LU, Cholesky and QR; linalg_eig.zig eigh and SVD; linalg_test.zig the tests.
const std = @import("std");
const dt = @import("dtype.zig");
const args = @import("args.zig");
const Parallel = @import("parallel.zig").Parallel;
const ptrAt = @import("copy.zig").ptrAt;
const DType = dt.DType;
const Op = args.LinalgOp;
const MatrixNorm = args.MatrixNorm;
const factor_mod = @import("linalg_factor.zig");
const eig_mod = @import("linalg_eig.zig");

/// Outcome of one matrix (the kernel's return value is the first failing item's code).
pub const Fail = enum(u32) { ok = 0, oom = 1, singular = 2, not_pd = 3, no_convergence = 4 };

const Res = struct {
    code: Fail = .ok,
    at: usize = 0,
};

/// Block size of the blocked factorisations.
pub const nb = factor_mod.nb;

// ---- reading and writing matrices ----------------------------------------------------------------

/// dst[i*ld + j] = src[off + i*rs + j*cs] as f64, for a rows x cols matrix of dtype d.
fn loadMat(d: DType, src: [*]const u8, off: isize, rs: isize, cs: isize, rows: usize, cols: usize, dst: [*]f64, ld: usize) void {
    switch (d) {
        inline else => |dd| {
            const S = dt.Storage(dd);
            const base: [*]const S = @ptrCast(@alignCast(src));
            for (0..rows) |i| {
                const row: [*]const S = @ptrCast(ptrAt(S, base, off + @as(isize, @intCast(i)) * rs));
                const o = dst + i * ld;
                if (cs == 1) {
                    for (0..cols) |j| o[j] = dt.toF64(dd, row[j]);
                } else {
                    for (0..cols) |j| o[j] = dt.toF64(dd, ptrAt(S, row, @as(isize, @intCast(j)) * cs).*);
                }
            }
        },
    }
}

/// Contiguous rows x cols output at element `off` of `dst` (dtype d) from src[i*rs + j*cs].
fn storeMat(d: DType, dst: [*]u8, off: usize, src: [*]const f64, rs: usize, cs: usize, rows: usize, cols: usize) void {
    switch (d) {
        inline .f32, .f16, .bf16, .f64 => |dd| {
            const S = dt.Storage(dd);
            const o: [*]S = @as([*]S, @ptrCast(@alignCast(dst))) + off;
            for (0..rows) |i| {
                for (0..cols) |j| o[i * cols + j] = dt.fromFloat(dd, src[i * rs + j * cs]);
            }
        },
        else => unreachable, // the door only asks for float outputs
    }
}

fn storeOne(d: DType, dst: [*]u8, off: usize, v: f64) void {
    var x = v;
    storeMat(d, dst, off, @ptrCast(&x), 1, 1, 1, 1);
}

/// Scratch for one item: one pool block carved into pieces.
const Arena = struct {
    block: ?[]align(64) f64 = null,
    used: usize = 0,

    fn init(par: *const Parallel, n: usize) ?Arena {
        const b = par.alloc(f64, n) orelse return null;
        return .{ .block = b };
    }
    fn take(self: *Arena, n: usize) [*]f64 {
        // Keep pieces 64-byte aligned.
        const p = self.block.?.ptr + self.used;
        self.used += (n + 7) / 8 * 8;
        std.debug.assert(self.used <= self.block.?.len + 8);
        return p;
    }
    fn takeIdx(self: *Arena, n: usize) [*]usize {
        return @ptrCast(self.take(n));
    }
    fn deinit(self: *Arena, par: *const Parallel) void {
        if (self.block) |b| par.free(b);
        self.block = null;
    }
};

/// Words an Arena needs for pieces of the given sizes.
fn words(sizes: []const usize) usize {
    var t: usize = 0;
    for (sizes) |s| t += (s + 7) / 8 * 8;
    return t + 8;
}
// ---- all the kernels of one vector width ------------------------------------------------------------

/// The kernels the drivers below call, gathered from linalg_blas.zig, linalg_factor.zig and
/// linalg_eig.zig into one namespace.
pub fn Kernels(comptime vbits: u32) type {
    const B = @import("linalg_blas.zig").Blas(vbits);
    const F = factor_mod.Factor(vbits);
    const E = eig_mod.Eig(vbits);
    return struct {
        pub const dot = B.dot;
        pub const gemm = B.gemm;
        pub const getrf = F.getrf;
        pub const getrs = F.getrs;
        pub const potrf = F.potrf;
        pub const geqrf = F.geqrf;
        pub const orgqr = F.orgqr;
        pub const sytrd = E.sytrd;
        pub const orgtrT = E.orgtrT;
        pub const tql = E.tql;
        pub const gebrd = E.gebrd;
        pub const orgbr = E.orgbr;
        pub const bdsqr = E.bdsqr;
    };
}

// ---- the batched entry point ----------------------------------------------------------------------

/// Sorts idx[0..n] by key (ascending, or descending when `desc`), stable.
fn sortIdx(idx: [*]usize, key: [*]const f64, n: usize, desc: bool) void {
    for (0..n) |i| idx[i] = i;
    const Ctx = struct {
        key: [*]const f64,
        desc: bool,
        fn less(c: @This(), x: usize, y: usize) bool {
            return if (c.desc) c.key[x] > c.key[y] else c.key[x] < c.key[y];
        }
    };
    std.sort.insertion(usize, idx[0..n], Ctx{ .key = key, .desc = desc }, Ctx.less);
}

pub fn linalg(comptime vbits: u32, par: *const Parallel, la: *args.LinalgArgs) u32 {
    const K = Kernels(vbits);
    const Job = struct {
        const Self = @This();
        la: *args.LinalgArgs,
        nbatch: usize,
        m: usize,
        n: usize,
        lock: std.atomic.Value(u32) = .init(0),
        first: usize = std.math.maxInt(usize),
        code: Fail = .ok,
        at: usize = 0,
        /// The handle items of a batch use: one thread each (their kernels never nest jobs).
        sub: Parallel,

        fn offsets(self: *const Self, idx: usize) [2]isize {
            var rest = idx;
            var offs: [2]isize = .{ 0, 0 };
            const l = &self.la.layout;
            var ax = self.nbatch;
            while (ax > 0) {
                ax -= 1;
                const i = rest % l.shape[ax];
                rest /= l.shape[ax];
                offs[0] += l.strides[0][ax] * @as(isize, @intCast(i));
                offs[1] += l.strides[1][ax] * @as(isize, @intCast(i));
            }
            return offs;
        }

        fn record(self: *Self, idx: usize, r: Res) void {
            while (self.lock.cmpxchgWeak(0, 1, .acquire, .monotonic) != null) std.atomic.spinLoopHint();
            if (idx < self.first) {
                self.first = idx;
                self.code = r.code;
                self.at = r.at;
            }
            self.lock.store(0, .release);
        }

        fn one(self: *Self, idx: usize, p: *const Parallel) void {
            const r = item(K, self, idx, p);
            if (r.code != .ok) self.record(idx, r);
        }

        fn task(self: *Self, b: usize, e: usize) void {
            for (b..e) |idx| self.one(idx, &self.sub);
        }
    };
    const l = &la.layout;
    const nbatch = l.ndim - 2;
    var batch: usize = 1;
    for (l.shape[0..nbatch]) |s| batch *= s;
    var job: Job = .{ .la = la, .nbatch = nbatch, .m = l.shape[nbatch], .n = l.shape[nbatch + 1], .sub = par.* };
    job.sub.threads = 1;
    if (batch == 1) {
        job.one(0, par);
    } else if (batch > 1) {
        // Items run in parallel; inside an item, kernels run on that thread alone.
        par.run(batch, 1, &job, Job.task);
    }
    la.fail_item = job.first;
    la.fail_at = job.at;
    return @intFromEnum(job.code);
}

fn item(comptime K: type, job: anytype, idx: usize, par: *const Parallel) Res {
    const la = job.la;
    const l = &la.layout;
    const nbt = job.nbatch;
    const m = job.m;
    const n = job.n;
    const offs = job.offsets(idx);
    const ars = l.strides[0][nbt];
    const acs = l.strides[0][nbt + 1];
    switch (la.op) {
        .inv, .solve, .det => {
            const k: usize = switch (la.op) {
                .inv => n,
                .solve => la.k,
                else => 0,
            };
            var ar = Arena.init(par, words(&.{ n * n, n * k, n })) orelse return .{ .code = .oom };
            defer ar.deinit(par);
            const a = ar.take(n * n);
            const b = ar.take(n * k);
            const piv = ar.takeIdx(n);
            loadMat(la.in_dtype, la.a, offs[0], ars, acs, n, n, a, n);
            const zero = K.getrf(par, a, n, piv);
            if (la.op == .det) {
                var det: f64 = 1;
                for (0..n) |i| {
                    det *= a[i * n + i];
                    if (piv[i] != i) det = -det;
                }
                if (zero != null) det = 0;
                storeOne(la.out_dtype, la.out[0].?, idx, det);
                return .{};
            }
            if (zero) |z| return .{ .code = .singular, .at = z };
            if (la.op == .inv) {
                for (0..n) |i| {
                    @memset(b[i * n .. i * n + n], 0);
                    b[i * n + i] = 1;
                }
            } else {
                loadMat(la.in_dtype, la.b.?, offs[1], l.strides[1][nbt], l.strides[1][nbt + 1], n, k, b, k);
            }
            K.getrs(par, a, n, piv, b, k);
            storeMat(la.out_dtype, la.out[0].?, idx * n * k, b, k, 1, n, k);
            return .{};
        },
        .cholesky => {
            var ar = Arena.init(par, words(&.{ n * n, nb * n })) orelse return .{ .code = .oom };
            defer ar.deinit(par);
            const a = ar.take(n * n);
            const panel = ar.take(nb * n);
            loadMat(la.in_dtype, la.a, offs[0], ars, acs, n, n, a, n);
            if (K.potrf(par, a, n, panel)) |bad| return .{ .code = .not_pd, .at = bad };
            for (0..n) |i| @memset(a[i * n + i + 1 .. i * n + n], 0);
            storeMat(la.out_dtype, la.out[0].?, idx * n * n, a, n, 1, n, n);
            return .{};
        },
        .qr => {
            const kk = @min(m, n);
            const mc = if (la.flags & 1 != 0) m else kk;
            const wc = @max(n, mc);
            var ar = Arena.init(par, words(&.{ m * n, kk, m * nb, nb * nb, nb * wc, m * mc, n })) orelse return .{ .code = .oom };
            defer ar.deinit(par);
            const a = ar.take(m * n);
            const tau = ar.take(kk);
            const vb = ar.take(m * nb);
            const t = ar.take(nb * nb);
            const w = ar.take(nb * wc);
            const q = ar.take(m * mc);
            const colw = ar.take(n);
            loadMat(la.in_dtype, la.a, offs[0], ars, acs, m, n, a, n);
            K.geqrf(par, a, m, n, tau, vb, t, w, colw);
            K.orgqr(par, a, m, n, tau, q, mc, vb, t, w);
            storeMat(la.out_dtype, la.out[0].?, idx * m * mc, q, mc, 1, m, mc);
            // R: mc x n, upper.
            for (0..mc) |i| @memset(a[i * n .. i * n + @min(i, n)], 0);
            storeMat(la.out_dtype, la.out[1].?, idx * mc * n, a, n, 1, mc, n);
            return .{};
        },
        .eigh => {
            var ar = Arena.init(par, words(&.{ n * n, n * n, n, n, n, n, n, n })) orelse return .{ .code = .oom };
            defer ar.deinit(par);
            const a = ar.take(n * n);
            const zt = ar.take(n * n);
            const d = ar.take(n);
            const e = ar.take(n);
            const tau = ar.take(n);
            const p = ar.take(n);
            const p1 = ar.take(n);
            const perm = ar.takeIdx(n);
            loadMat(la.in_dtype, la.a, offs[0], ars, acs, n, n, a, n);
            K.sytrd(a, n, d, e, tau, p, p1); // reads the lower triangle only (UPLO = 'L')
            K.orgtrT(a, n, tau, zt);
            if (!K.tql(d, e, n, zt)) return .{ .code = .no_convergence };
            sortIdx(perm, d, n, false);
            for (0..n) |j| p[j] = d[perm[j]];
            storeMat(la.out_dtype, la.out[0].?, idx * n, p, 1, 1, 1, n);
            // V[i, j] = zt[perm[j], i]
            const o = la.out[1].?;
            for (0..n) |j| {
                // Write column j: rows of zt are eigenvectors; gather through a permuted copy.
                @memcpy(a[j * n .. j * n + n], zt[perm[j] * n .. perm[j] * n + n]);
            }
            storeMat(la.out_dtype, o, idx * n * n, a, 1, n, n, n);
            return .{};
        },
        .svd => return svdItem(K, la, idx, offs, m, n, ars, acs, par),
        .norm_vector => {
            const p = la.p;
            var ar = Arena.init(par, words(&.{n})) orelse return .{ .code = .oom };
            defer ar.deinit(par);
            const row = ar.take(n);
            var acc: f64 = if (p == -std.math.inf(f64)) std.math.inf(f64) else 0;
            for (0..m) |i| {
                loadMat(la.in_dtype, la.a, offs[0] + @as(isize, @intCast(i)) * ars, 0, acs, 1, n, row, n);
                for (row[0..n]) |x| {
                    const ax = @abs(x);
                    if (p == std.math.inf(f64)) {
                        acc = if (ax > acc or std.math.isNan(ax)) ax else acc;
                    } else if (p == -std.math.inf(f64)) {
                        acc = if (ax < acc or std.math.isNan(ax)) ax else acc;
                    } else if (p == 0) {
                        acc += if (x != 0) 1 else 0;
                    } else if (p == 1) {
                        acc += ax;
                    } else if (p == 2) {
                        acc += x * x;
                    } else {
                        acc += std.math.pow(f64, ax, p);
                    }
                }
            }
            const r = if (p == 2) @sqrt(acc) else if (p == 0 or p == 1 or std.math.isInf(p)) acc else std.math.pow(f64, acc, 1.0 / p);
            storeOne(la.out_dtype, la.out[0].?, idx, r);
            return .{};
        },
        .norm_matrix => {
            const kind: MatrixNorm = @fromBackingInt(@intCast(la.flags));
            switch (kind) {
                .two, .neg_two, .nuc => return svdItem(K, la, idx, offs, m, n, ars, acs, par),
                else => {},
            }
            var ar = Arena.init(par, words(&.{ m * n, @max(m, n) })) orelse return .{ .code = .oom };
            defer ar.deinit(par);
            const a = ar.take(m * n);
            const sums = ar.take(@max(m, n));
            loadMat(la.in_dtype, la.a, offs[0], ars, acs, m, n, a, n);
            var r: f64 = 0;
            switch (kind) {
                .fro => r = @sqrt(K.dot(a, a, m * n)),
                .one, .neg_one => {
                    @memset(sums[0..n], 0);
                    for (0..m) |i| for (0..n) |j| {
                        sums[j] += @abs(a[i * n + j]);
                    };
                    r = extreme(sums, n, kind == .one);
                },
                .inf, .neg_inf => {
                    for (0..m) |i| {
                        var s: f64 = 0;
                        for (0..n) |j| s += @abs(a[i * n + j]);
                        sums[i] = s;
                    }
                    r = extreme(sums, m, kind == .inf);
                },
                else => unreachable,
            }
            storeOne(la.out_dtype, la.out[0].?, idx, r);
            return .{};
        },
    }
}

fn extreme(x: [*]const f64, n: usize, max: bool) f64 {
    var r = x[0];
    for (1..n) |i| {
        if (std.math.isNan(x[i])) return x[i];
        r = if (max) @max(r, x[i]) else @min(r, x[i]);
    }
    return r;
}

/// svd (flags bit 0: full matrices, bit 1: compute U and Vt) or the singular-value matrix norms.
fn svdItem(comptime K: type, la: *args.LinalgArgs, idx: usize, offs: [2]isize, m0: usize, n0: usize, ars: isize, acs: isize, par: *const Parallel) Res {
    const is_norm = la.op == .norm_matrix;
    const full = !is_norm and la.flags & 1 != 0;
    const want_uv = !is_norm and la.flags & 2 != 0;
    // Work on the tall one of A and A^T: mm >= nn.
    const trans = m0 < n0;
    const mm = if (trans) n0 else m0;
    const nn = if (trans) m0 else n0;
    const uc = if (!want_uv) 0 else if (full) mm else nn;
    var ar = Arena.init(par, words(&.{ mm * nn, nn, nn, nn, nn, mm, uc * mm, if (want_uv) nn * nn else 0, nn, nn, nn })) orelse return .{ .code = .oom };
    defer ar.deinit(par);
    const a = ar.take(mm * nn);
    const d = ar.take(nn);
    const e = ar.take(nn);
    const tauq = ar.take(nn);
    const taup = ar.take(nn);
    const w = ar.take(mm);
    const ut = ar.take(uc * mm);
    const vt = ar.take(if (want_uv) nn * nn else 0);
    const perm = ar.takeIdx(nn);
    const s = ar.take(nn);
    const z = ar.take(nn);
    if (trans) loadMat(la.in_dtype, la.a, offs[0], acs, ars, mm, nn, a, nn) else loadMat(la.in_dtype, la.a, offs[0], ars, acs, mm, nn, a, nn);
    K.gebrd(a, mm, nn, d, e, tauq, taup, w, z);
    if (want_uv) K.orgbr(a, mm, nn, tauq, taup, ut, uc, vt, w);
    // rv1[i] = B[i-1, i]
    if (nn > 0) {
        var i = nn - 1;
        while (i > 0) : (i -= 1) e[i] = e[i - 1];
        e[0] = 0;
    }
    if (!K.bdsqr(d, e, nn, if (want_uv) ut else null, mm, if (want_uv) vt else null, nn)) return .{ .code = .no_convergence };
    sortIdx(perm, d, nn, true);
    for (0..nn) |j| s[j] = d[perm[j]];
    if (is_norm) {
        const kind: MatrixNorm = @fromBackingInt(@intCast(la.flags));
        var r: f64 = 0;
        if (nn > 0) switch (kind) {
            .two => r = s[0],
            .neg_two => r = s[nn - 1],
            else => for (0..nn) |j| {
                r += s[j];
            },
        };
        storeOne(la.out_dtype, la.out[0].?, idx, r);
        return .{};
    }
    const kmin = nn;
    const sv_out = if (want_uv) la.out[1].? else la.out[0].?;
    storeMat(la.out_dtype, sv_out, idx * kmin, s, 1, 1, 1, kmin);
    if (!want_uv) return .{};
    // Sort the first nn rows of ut and the rows of vt by perm, through `a` (mm * nn words).
    @memcpy(a[0 .. nn * mm], ut[0 .. nn * mm]);
    for (0..nn) |j| @memcpy(ut[j * mm .. j * mm + mm], a[perm[j] * mm .. perm[j] * mm + mm]);
    @memcpy(a[0 .. nn * nn], vt[0 .. nn * nn]);
    for (0..nn) |j| @memcpy(vt[j * nn .. j * nn + nn], a[perm[j] * nn .. perm[j] * nn + nn]);
    const uo = la.out[0].?;
    const vo = la.out[2].?;
    if (!trans) {
        // U (mm x uc) = ut^T; Vt (nn x nn) = vt.
        storeMat(la.out_dtype, uo, idx * mm * uc, ut, 1, mm, mm, uc);
        storeMat(la.out_dtype, vo, idx * nn * nn, vt, nn, 1, nn, nn);
    } else {
        // A^T = U' S V'^T  =>  A = V' S U'^T: U (nn x nn) = vt^T; Vt (uc x mm) = ut.
        storeMat(la.out_dtype, uo, idx * nn * nn, vt, 1, nn, nn, nn);
        storeMat(la.out_dtype, vo, idx * uc * mm, ut, mm, 1, uc, mm);
    }
    return .{};
}


test {
    _ = @import("linalg_test.zig");
}
