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

/// Outcome of one matrix (the kernel's return value is the first failing item's code).
pub const Fail = enum(u32) { ok = 0, oom = 1, singular = 2, not_pd = 3, no_convergence = 4 };

const Res = struct {
    code: Fail = .ok,
    at: usize = 0,
};

const has_fma = switch (builtin.cpu.arch) {
    .x86_64 => std.Target.x86.featureSetHas(builtin.cpu.features, .fma),
    .aarch64 => true,
    else => false,
};

/// Block size of the blocked factorisations.
const nb = 32;

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

// ---- vector primitives and a small GEMM ------------------------------------------------------------

pub fn Kernels(comptime vbits: u32) type {
    return struct {
        const L: usize = if (vbits == 0) 1 else @max(1, vbits / 64);
        const V = @Vector(L, f64);
        /// Rows of the GEMM micro-tile (the accumulators are R x 2 vectors).
        const R: usize = if (L >= 8) 8 else 4;

        inline fn ld(p: [*]const f64) V {
            return p[0..L].*;
        }
        inline fn st(p: [*]f64, v: V) void {
            p[0..L].* = v;
        }
        inline fn fma(a: V, b: V, c: V) V {
            return if (has_fma) @mulAdd(V, a, b, c) else a * b + c;
        }
        inline fn fma1(a: f64, b: f64, c: f64) f64 {
            return if (has_fma) @mulAdd(f64, a, b, c) else a * b + c;
        }

        pub fn dot(x: [*]const f64, y: [*]const f64, n: usize) f64 {
            var a0: V = @splat(0);
            var a1: V = @splat(0);
            var i: usize = 0;
            while (i + 2 * L <= n) : (i += 2 * L) {
                a0 = fma(ld(x + i), ld(y + i), a0);
                a1 = fma(ld(x + i + L), ld(y + i + L), a1);
            }
            while (i + L <= n) : (i += L) a0 = fma(ld(x + i), ld(y + i), a0);
            var s = @reduce(.Add, a0 + a1);
            while (i < n) : (i += 1) s = fma1(x[i], y[i], s);
            return s;
        }

        /// y += alpha * x
        pub fn axpy(alpha: f64, x: [*]const f64, y: [*]f64, n: usize) void {
            const va: V = @splat(alpha);
            var i: usize = 0;
            while (i + L <= n) : (i += L) st(y + i, fma(va, ld(x + i), ld(y + i)));
            while (i < n) : (i += 1) y[i] = fma1(alpha, x[i], y[i]);
        }

        /// y += a * x + b * z
        fn axpy2(a: f64, x: [*]const f64, b: f64, z: [*]const f64, y: [*]f64, n: usize) void {
            const va: V = @splat(a);
            const vb: V = @splat(b);
            var i: usize = 0;
            while (i + L <= n) : (i += L) st(y + i, fma(vb, ld(z + i), fma(va, ld(x + i), ld(y + i))));
            while (i < n) : (i += 1) y[i] = fma1(b, z[i], fma1(a, x[i], y[i]));
        }

        fn scal(alpha: f64, x: [*]f64, n: usize) void {
            const va: V = @splat(alpha);
            var i: usize = 0;
            while (i + L <= n) : (i += L) st(x + i, ld(x + i) * va);
            while (i < n) : (i += 1) x[i] *= alpha;
        }

        /// (x, y) <- (c x + s y, c y - s x)
        fn rot(x: [*]f64, y: [*]f64, n: usize, c: f64, s: f64) void {
            const vc: V = @splat(c);
            const vs: V = @splat(s);
            var i: usize = 0;
            while (i + L <= n) : (i += L) {
                const a = ld(x + i);
                const b = ld(y + i);
                st(x + i, fma(vc, a, vs * b));
                st(y + i, fma(vc, b, -(vs * a)));
            }
            while (i < n) : (i += 1) {
                const a = x[i];
                const b = y[i];
                x[i] = c * a + s * b;
                y[i] = c * b - s * a;
            }
        }

        fn swap(x: [*]f64, y: [*]f64, n: usize) void {
            var i: usize = 0;
            while (i + L <= n) : (i += L) {
                const a = ld(x + i);
                st(x + i, ld(y + i));
                st(y + i, a);
            }
            while (i < n) : (i += 1) std.mem.swap(f64, &x[i], &y[i]);
        }

        // ---- GEMM: C = alpha * A·B + beta * C (beta 0 or 1); A by strides, B and C row-major --

        const Gemm = struct {
            m: usize,
            n: usize,
            k: usize,
            alpha: f64,
            a: [*]const f64,
            ars: usize,
            acs: usize,
            b: [*]const f64,
            ldb: usize,
            beta: f64,
            c: [*]f64,
            ldc: usize,

            const W = 2 * L; // columns of a micro-tile

            inline fn tile(g: *const Gemm, comptime rows: usize, comptime nv: usize, ia: usize, j0: usize, k0: usize, kc: usize, beta: f64) void {
                var acc: [rows][nv]V = undefined;
                inline for (0..rows) |r| inline for (0..nv) |q| {
                    acc[r][q] = @splat(0);
                };
                const ap = g.a + ia * g.ars + k0 * g.acs;
                var bp = g.b + k0 * g.ldb + j0;
                for (0..kc) |p| {
                    var bv: [nv]V = undefined;
                    inline for (0..nv) |q| bv[q] = ld(bp + q * L);
                    inline for (0..rows) |r| {
                        const av: V = @splat(ap[r * g.ars + p * g.acs]);
                        inline for (0..nv) |q| acc[r][q] = fma(av, bv[q], acc[r][q]);
                    }
                    bp += g.ldb;
                }
                const va: V = @splat(g.alpha);
                inline for (0..rows) |r| inline for (0..nv) |q| {
                    const cp = g.c + (ia + r) * g.ldc + j0 + q * L;
                    st(cp, if (beta == 0) acc[r][q] * va else fma(acc[r][q], va, ld(cp)));
                };
            }

            /// Columns [j0, j1) of C, all rows, the k range [k0, k0 + kc).
            fn cols(g: *const Gemm, j0: usize, j1: usize, k0: usize, kc: usize, beta: f64) void {
                var j = j0;
                while (j + W <= j1) : (j += W) {
                    var i: usize = 0;
                    while (i + R <= g.m) : (i += R) g.tile(R, 2, i, j, k0, kc, beta);
                    while (i < g.m) : (i += 1) g.tile(1, 2, i, j, k0, kc, beta);
                }
                while (j + L <= j1) : (j += L) {
                    var i: usize = 0;
                    while (i + R <= g.m) : (i += R) g.tile(R, 1, i, j, k0, kc, beta);
                    while (i < g.m) : (i += 1) g.tile(1, 1, i, j, k0, kc, beta);
                }
                while (j < j1) : (j += 1) {
                    for (0..g.m) |i| {
                        var s: f64 = 0;
                        for (k0..k0 + kc) |p| s = fma1(g.a[i * g.ars + p * g.acs], g.b[p * g.ldb + j], s);
                        const cp = &g.c[i * g.ldc + j];
                        cp.* = if (beta == 0) g.alpha * s else fma1(g.alpha, s, cp.*);
                    }
                }
            }

            fn task(g: *const Gemm, b: usize, e: usize) void {
                const j0 = b * W;
                const j1 = @min(g.n, e * W);
                if (j0 >= j1) return;
                const kblk = 256;
                var k0: usize = 0;
                var beta = g.beta;
                if (g.k == 0) {
                    if (beta == 0) for (0..g.m) |i| @memset(g.c[i * g.ldc + j0 .. i * g.ldc + j1], 0);
                    return;
                }
                while (k0 < g.k) : (k0 += kblk) {
                    g.cols(j0, j1, k0, @min(kblk, g.k - k0), beta);
                    beta = 1;
                }
            }
        };

        pub fn gemm(par: *const Parallel, m: usize, n: usize, k: usize, alpha: f64, a: [*]const f64, ars: usize, acs: usize, b: [*]const f64, ldb: usize, beta: f64, c: [*]f64, ldc: usize) void {
            if (m == 0 or n == 0) return;
            const g: Gemm = .{ .m = m, .n = n, .k = k, .alpha = alpha, .a = a, .ars = ars, .acs = acs, .b = b, .ldb = ldb, .beta = beta, .c = c, .ldc = ldc };
            const panels = (n + Gemm.W - 1) / Gemm.W;
            const work = m * @max(k, 1) * Gemm.W;
            par.run(panels, @max(1, (96 * 1024) / work), &g, Gemm.task);
        }

        /// C (ldc) -= A (lda) B (ldb), all row-major: the trailing updates of the blocked
        /// factorisations. Large ones go to the engine's packed GEMM (zig/cpu/gemm.zig); small
        /// ones, and any whose packing memory is refused, to the register-tiled loop above.
        fn update(par: *const Parallel, m: usize, n: usize, k: usize, a: [*]const f64, lda: usize, b: [*]const f64, ldb: usize, c: [*]f64, ldc: usize) void {
            if (m >= 64 and n >= 64 and m * n * k >= 1 << 19) {
                const s = struct {
                    fn i(x: usize) isize {
                        return @intCast(x);
                    }
                }.i;
                if (gemm_mod.matmul(vbits, f64, par, m, n, k, -1, a, s(lda), 1, b, s(ldb), 1, 1, c, s(ldc), 1)) |_| return else |_| {}
            }
            gemm(par, m, n, k, -1, a, lda, 1, b, ldb, 1, c, ldc);
        }

        // ---- LU -------------------------------------------------------------------------------

        /// In-place LU with partial pivoting of the n x n matrix a (ld n): piv[j] = row swapped
        /// with j. Returns the first exactly-zero pivot, if any (the factorisation completes).
        fn getrf(par: *const Parallel, a: [*]f64, n: usize, piv: [*]usize) ?usize {
            var zero: ?usize = null;
            var j0: usize = 0;
            while (j0 < n) {
                const je = @min(n, j0 + nb);
                for (j0..je) |j| {
                    var p = j;
                    var best = @abs(a[j * n + j]);
                    for (j + 1..n) |i| {
                        const v = @abs(a[i * n + j]);
                        if (v > best) {
                            best = v;
                            p = i;
                        }
                    }
                    piv[j] = p;
                    if (p != j) swap(a + j * n, a + p * n, n);
                    const pv = a[j * n + j];
                    if (pv == 0) {
                        if (zero == null) zero = j;
                        continue;
                    }
                    const r = 1.0 / pv;
                    const urow = a + j * n + j + 1;
                    for (j + 1..n) |i| {
                        const l = a[i * n + j] * r;
                        a[i * n + j] = l;
                        if (je > j + 1) axpy(-l, urow, a + i * n + j + 1, je - j - 1);
                    }
                }
                if (je < n) {
                    // U12 = L11^-1 A12, then A22 -= L21 U12.
                    for (j0 + 1..je) |r| {
                        for (j0..r) |p| axpy(-a[r * n + p], a + p * n + je, a + r * n + je, n - je);
                    }
                    update(par, n - je, n - je, je - j0, a + je * n + j0, n, a + j0 * n + je, n, a + je * n + je, n);
                }
                j0 = je;
            }
            return zero;
        }

        /// B (n x k, ld k) <- A^-1 B from getrf's factors.
        fn getrs(par: *const Parallel, a: [*]const f64, n: usize, piv: [*]const usize, b: [*]f64, k: usize) void {
            for (0..n) |j| {
                if (piv[j] != j) swap(b + j * k, b + piv[j] * k, k);
            }
            if (k == 1) {
                for (0..n) |r| b[r] -= dot(a + r * n, b, r);
                var r = n;
                while (r > 0) {
                    r -= 1;
                    b[r] = (b[r] - dot(a + r * n + r + 1, b + r + 1, n - r - 1)) / a[r * n + r];
                }
                return;
            }
            // Forward: unit lower.
            var ia: usize = 0;
            while (ia < n) {
                const ie = @min(n, ia + nb);
                if (ia > 0) gemm(par, ie - ia, k, ia, -1, a + ia * n, n, 1, b, k, 1, b + ia * k, k);
                for (ia + 1..ie) |r| {
                    for (ia..r) |p| axpy(-a[r * n + p], b + p * k, b + r * k, k);
                }
                ia = ie;
            }
            // Backward: upper.
            var ie = n;
            while (ie > 0) {
                const s = if (ie > nb) ie - nb else 0;
                if (ie < n) gemm(par, ie - s, k, n - ie, -1, a + s * n + ie, n, 1, b + ie * k, k, 1, b + s * k, k);
                var r = ie;
                while (r > s) {
                    r -= 1;
                    for (r + 1..ie) |p| axpy(-a[r * n + p], b + p * k, b + r * k, k);
                    scal(1.0 / a[r * n + r], b + r * k, k);
                }
                ie = s;
            }
        }

        // ---- Cholesky -------------------------------------------------------------------------

        /// In-place lower Cholesky of a (n x n, ld n), reading the lower triangle only. panel:
        /// nb * n words. Returns the row whose pivot is not positive, if any.
        fn potrf(par: *const Parallel, a: [*]f64, n: usize, panel: [*]f64) ?usize {
            var j0: usize = 0;
            while (j0 < n) {
                const je = @min(n, j0 + nb);
                const jb = je - j0;
                for (j0..je) |i| {
                    const ri = a + i * n + j0;
                    for (j0..i) |j| ri[j - j0] = (ri[j - j0] - dot(ri, a + j * n + j0, j - j0)) / a[j * n + j];
                    const d = a[i * n + i] - dot(ri, ri, i - j0);
                    if (!(d > 0)) return i;
                    a[i * n + i] = @sqrt(d);
                }
                if (je < n) {
                    const rest = n - je;
                    for (je..n) |i| {
                        const ri = a + i * n + j0;
                        for (j0..je) |j| ri[j - j0] = (ri[j - j0] - dot(ri, a + j * n + j0, j - j0)) / a[j * n + j];
                        for (0..jb) |p| panel[p * rest + (i - je)] = ri[p];
                    }
                    // A22 -= L21 L21^T, lower part, by row blocks.
                    const rb = 64;
                    var r0: usize = 0;
                    while (r0 < rest) : (r0 += rb) {
                        const r1 = @min(rest, r0 + rb);
                        update(par, r1 - r0, r1, jb, a + (je + r0) * n + j0, n, panel, rest, a + (je + r0) * n + je, n);
                    }
                }
                j0 = je;
            }
            return null;
        }

        // ---- Householder ----------------------------------------------------------------------

        /// LAPACK's larfg on x[0] (alpha) and x[1..len] at stride inc: on return x[0] = beta,
        /// x[1..] = v[1..] (v[0] = 1 implicit); returns tau (0: H = I).
        fn larfg(x: [*]f64, len: usize, inc: usize) f64 {
            var sc: f64 = 0;
            return larfgScale(x, len, inc, &sc);
        }

        /// larfg that also reports the factor v[1..] = x[1..] * scale.
        fn larfgScale(x: [*]f64, len: usize, inc: usize, scale: *f64) f64 {
            if (len <= 1) return 0;
            var ss: f64 = 0;
            var mx: f64 = 0;
            for (1..len) |i| mx = @max(mx, @abs(x[i * inc]));
            if (mx == 0) return 0;
            for (1..len) |i| {
                const t = x[i * inc] / mx;
                ss += t * t;
            }
            const xnorm = mx * @sqrt(ss);
            const alpha = x[0];
            const beta = -std.math.copysign(std.math.hypot(alpha, xnorm), alpha);
            const tau = (beta - alpha) / beta;
            const sc = 1.0 / (alpha - beta);
            scale.* = sc;
            for (1..len) |i| x[i * inc] *= sc;
            x[0] = beta;
            return tau;
        }

        // ---- QR -------------------------------------------------------------------------------

        /// Copies reflectors j0..j0+jb of a (m x n, ld n; vectors below the diagonal) into vb
        /// ((m - j0) x jb, unit diagonal, zeros above) and builds T (jb x jb upper, ld nb).
        fn blockReflector(a: [*]const f64, m: usize, n: usize, j0: usize, jb: usize, tau: [*]const f64, vb: [*]f64, t: [*]f64) void {
            const rows = m - j0;
            for (0..rows) |i| {
                for (0..jb) |q| {
                    vb[i * jb + q] = if (i == q) 1 else if (i < q) 0 else a[(j0 + i) * n + j0 + q];
                }
            }
            for (0..jb) |i| {
                const ti = tau[j0 + i];
                t[i * nb + i] = ti;
                if (i == 0) continue;
                // z = V[:, 0:i]^T v_i, into column i of T above the diagonal.
                for (0..i) |q| t[q * nb + i] = 0;
                for (i..rows) |r| {
                    const vi = vb[r * jb + i];
                    if (vi == 0) continue;
                    for (0..i) |q| t[q * nb + i] += vb[r * jb + q] * vi;
                }
                // T[0:i, i] = -tau_i * T[0:i, 0:i] z (upper triangular matvec, top-down in place).
                for (0..i) |q| {
                    var s: f64 = 0;
                    for (q..i) |p| s += t[q * nb + p] * t[p * nb + i];
                    t[q * nb + i] = -ti * s;
                }
            }
        }

        /// C (rows x cols, ld ldc) <- (I - V T V^T) C, or with T^T when `trans`. w: jb x cols.
        fn applyBlock(par: *const Parallel, vb: [*]const f64, rows: usize, jb: usize, t: [*]const f64, trans: bool, c: [*]f64, ldc: usize, cols: usize, w: [*]f64) void {
            // W = V^T C
            gemm(par, jb, cols, rows, 1, vb, 1, jb, c, ldc, 0, w, cols);
            if (trans) {
                // W = T^T W (T^T lower): bottom-up in place.
                var r = jb;
                while (r > 0) {
                    r -= 1;
                    scal(t[r * nb + r], w + r * cols, cols);
                    for (0..r) |q| axpy(t[q * nb + r], w + q * cols, w + r * cols, cols);
                }
            } else {
                // W = T W (T upper): top-down in place.
                for (0..jb) |r| {
                    scal(t[r * nb + r], w + r * cols, cols);
                    for (r + 1..jb) |q| axpy(t[r * nb + q], w + q * cols, w + r * cols, cols);
                }
            }
            gemm(par, rows, cols, jb, -1, vb, jb, 1, w, cols, 1, c, ldc);
        }

        /// Householder QR of a (m x n, ld n) in place; reflectors below the diagonal, R above.
        fn geqrf(par: *const Parallel, a: [*]f64, m: usize, n: usize, tau: [*]f64, vb: [*]f64, t: [*]f64, w: [*]f64, colw: [*]f64) void {
            const kk = @min(m, n);
            var j0: usize = 0;
            while (j0 < kk) {
                const je = @min(kk, j0 + nb);
                for (j0..je) |j| {
                    tau[j] = larfg(a + j * n + j, m - j, n);
                    if (tau[j] == 0 or je == j + 1) continue;
                    // Apply H_j to a[j.., j+1..je]: colw = v^T A, A -= tau v colw.
                    const width = je - j - 1;
                    const first = a + j * n + j + 1;
                    @memcpy(colw[0..width], first[0..width]);
                    for (j + 1..m) |i| axpy(a[i * n + j], a + i * n + j + 1, colw, width);
                    axpy(-tau[j], colw, first, width);
                    for (j + 1..m) |i| axpy(-tau[j] * a[i * n + j], colw, a + i * n + j + 1, width);
                }
                if (je < n) {
                    blockReflector(a, m, n, j0, je - j0, tau, vb, t);
                    applyBlock(par, vb, m - j0, je - j0, t, true, a + j0 * n + je, n, n - je, w);
                }
                j0 = je;
            }
        }

        /// q (m x mc, ld mc) <- the first mc columns of H_0 ... H_{k-1} from geqrf's a.
        fn orgqr(par: *const Parallel, a: [*]const f64, m: usize, n: usize, tau: [*]const f64, q: [*]f64, mc: usize, vb: [*]f64, t: [*]f64, w: [*]f64) void {
            const kk = @min(m, n);
            for (0..m) |i| {
                @memset(q[i * mc .. i * mc + mc], 0);
                if (i < mc) q[i * mc + i] = 1;
            }
            if (kk == 0) return;
            var j0 = (kk - 1) / nb * nb;
            while (true) {
                const je = @min(kk, j0 + nb);
                blockReflector(a, m, n, j0, je - j0, tau, vb, t);
                applyBlock(par, vb, m - j0, je - j0, t, false, q + j0 * mc + j0, mc, mc - j0, w);
                if (j0 == 0) break;
                j0 -= nb;
            }
        }

        // ---- symmetric eigenproblem ----------------------------------------------------------

        /// Tridiagonalises the symmetric matrix whose LOWER triangle is in a (n x n, ld n): d
        /// diagonal, e[k] = T[k+1, k]; reflector k stored in row k's upper part (columns k+1..,
        /// v[0] = 1) with tau[k]. One pass over the lower triangle per step: the rank-2 update
        /// of step k and the symmetric matrix-vector product of step k+1 share it (the next
        /// reflector's column is updated first, from the vectors alone). p0, p1: n words each.
        fn sytrd(a: [*]f64, n: usize, d: [*]f64, e: [*]f64, tau: [*]f64, p0: [*]f64, p1: [*]f64) void {
            if (n == 0) return;
            e[n - 1] = 0;
            tau[n - 1] = 0;
            var p = p0;
            var pn = p1;
            if (n >= 2) {
                // Reflector 0 from column 0, gathered into row 0; then p = tau S v.
                const x = a + 1;
                for (1..n) |i| x[i - 1] = a[i * n];
                const t0 = larfg(x, n - 1, 1);
                tau[0] = t0;
                e[0] = x[0];
                if (t0 != 0) {
                    x[0] = 1;
                    @memset(p[0 .. n - 1], 0);
                    for (0..n - 1) |ii| symvRow(a + (1 + ii) * n + 1, x, p, ii);
                    scal(t0, p, n - 1);
                }
            }
            for (0..n) |k| {
                d[k] = a[k * n + k];
                if (k + 1 >= n) break;
                const len = n - k - 1;
                const v = a + k * n + k + 1;
                const tk = tau[k];
                if (tk != 0) axpy(-0.5 * tk * dot(p, v, len), v, p, len); // p = w
                // The next reflector, from column k+1 of the updated trailing matrix.
                var tn: f64 = 0;
                const xn = a + (k + 1) * n + k + 2;
                if (len >= 2) {
                    for (1..len) |i| {
                        var c = a[(k + 1 + i) * n + k + 1];
                        if (tk != 0) c -= v[i] * p[0] + p[i] * v[0];
                        xn[i - 1] = c;
                    }
                    tn = larfg(xn, len - 1, 1);
                    tau[k + 1] = tn;
                    e[k + 1] = xn[0];
                    if (tn != 0) {
                        xn[0] = 1;
                        @memset(pn[0 .. len - 1], 0);
                    }
                }
                if (tk == 0 and tn == 0) continue;
                for (0..len) |i| {
                    const row = a + (k + 1 + i) * n + k + 1;
                    if (tk != 0) axpy2(-v[i], p, -p[i], v, row, i + 1);
                    if (tn != 0 and i >= 1) symvRow(row + 1, xn, pn, i - 1);
                }
                if (tn != 0) scal(tn, pn, len - 1);
                const t = p;
                p = pn;
                pn = t;
            }
        }

        /// Row i of a symmetric matrix stored as its lower triangle (r = row start, r[0..i+1]):
        /// adds its contributions to p = S x.
        inline fn symvRow(r: [*]const f64, x: [*]const f64, p: [*]f64, i: usize) void {
            p[i] += dot(r, x, i) + r[i] * x[i];
            axpy(x[i], r, p, i);
        }

        /// zt (n x n) <- Q^T of sytrd's reflectors.
        fn orgtrT(a: [*]const f64, n: usize, tau: [*]const f64, zt: [*]f64) void {
            for (0..n) |i| {
                @memset(zt[i * n .. i * n + n], 0);
                zt[i * n + i] = 1;
            }
            if (n < 2) return;
            var k = n - 1;
            while (k > 0) {
                k -= 1;
                const tk = tau[k];
                if (tk == 0) continue;
                const v = a + k * n + k + 1; // v[0] is 1 (set by sytrd)
                const len = n - k - 1;
                for (k + 1..n) |r| {
                    const row = zt + r * n + k + 1;
                    axpy(-tk * dot(row, v, len), v, row, len);
                }
            }
        }

        /// Implicit QL on the tridiagonal (d, e[i] = T[i+1, i]); rotations on rows of zt (n x
        /// n) when given. Returns false when an eigenvalue needs more than the iteration cap.
        fn tql(d: [*]f64, e: [*]f64, n: usize, zt: ?[*]f64) bool {
            const eps = std.math.floatEps(f64);
            for (0..n) |l| {
                var iter: usize = 0;
                while (true) {
                    var m = l;
                    while (m + 1 < n) : (m += 1) {
                        const dd = @abs(d[m]) + @abs(d[m + 1]);
                        if (@abs(e[m]) <= eps * dd) break;
                    }
                    if (m == l) break;
                    iter += 1;
                    if (iter > 60) return false;
                    var g = (d[l + 1] - d[l]) / (2.0 * e[l]);
                    var r = std.math.hypot(g, 1.0);
                    g = d[m] - d[l] + e[l] / (g + std.math.copysign(r, g));
                    var s: f64 = 1;
                    var c: f64 = 1;
                    var p: f64 = 0;
                    var i = m;
                    var early = false;
                    while (i > l) {
                        i -= 1;
                        const f = s * e[i];
                        const b = c * e[i];
                        r = std.math.hypot(f, g);
                        e[i + 1] = r;
                        if (r == 0) {
                            d[i + 1] -= p;
                            e[m] = 0;
                            early = true;
                            break;
                        }
                        s = f / r;
                        c = g / r;
                        g = d[i + 1] - p;
                        r = (d[i] - g) * s + 2.0 * c * b;
                        p = s * r;
                        d[i + 1] = g + p;
                        g = c * r - b;
                        if (zt) |z| rot(z + (i + 1) * n, z + i * n, n, c, s);
                    }
                    if (early) continue;
                    d[l] -= p;
                    e[l] = g;
                    e[m] = 0;
                }
            }
            return true;
        }

        // ---- SVD ------------------------------------------------------------------------------

        /// Bidiagonalises a (m x n, ld n, m >= n) in place: d diagonal, e[k] = B[k, k+1]; left
        /// reflector k below the diagonal of column k (tauq), right reflector k in row k from
        /// column k+2 (taup). One pass over the trailing rows per step: each row gets the left
        /// update, then the right one, then feeds the next left reflector's vᵀA (its column is
        /// final once the row is). w, z: n words each.
        fn gebrd(a: [*]f64, m: usize, n: usize, d: [*]f64, e: [*]f64, tauq: [*]f64, taup: [*]f64, w: [*]f64, z: [*]f64) void {
            if (n == 0) return;
            // Left reflector 0 and w = v^T A[:, 1..].
            tauq[0] = larfg(a, m, n);
            if (tauq[0] != 0 and n > 1) {
                @memcpy(w[0 .. n - 1], a[1..n]);
                for (1..m) |i| axpy(a[i * n], a + i * n + 1, w, n - 1);
            }
            for (0..n) |k| {
                const tq = tauq[k];
                d[k] = a[k * n + k];
                const width = n - k - 1;
                if (width == 0) {
                    e[k] = 0;
                    taup[k] = 0;
                    break;
                }
                const x = a + k * n + k + 1;
                if (tq != 0) axpy(-tq, w, x, width);
                const tp = larfg(x, width, 1);
                taup[k] = tp;
                e[k] = x[0];
                if (tp != 0) x[0] = 1;
                if (width >= 2) @memset(z[0 .. width - 1], 0);
                for (k + 1..m) |i| {
                    const row = a + i * n + k + 1;
                    if (tq != 0) axpy(-tq * a[i * n + k], w, row, width);
                    if (tp != 0) axpy(-tp * dot(row, x, width), x, row, width);
                    if (i >= k + 2 and width >= 2) axpy(row[0], row + 1, z, width - 1);
                }
                if (tp != 0) x[0] = e[k];
                // The next left reflector (column k+1) and its w = v^T A[k+1.., k+2..].
                var sc: f64 = 0;
                const tn = larfgScale(a + (k + 1) * n + k + 1, m - k - 1, n, &sc);
                tauq[k + 1] = tn;
                if (tn != 0 and width >= 2) {
                    const r1 = a + (k + 1) * n + k + 2;
                    for (0..width - 1) |j| w[j] = r1[j] + sc * z[j];
                }
            }
        }

        /// ut (uc x m) <- the first uc rows of Q^T (left reflectors); vt (n x n) <- P^T.
        fn orgbr(a: [*]f64, m: usize, n: usize, tauq: [*]const f64, taup: [*]const f64, ut: [*]f64, uc: usize, vt: [*]f64, vbuf: [*]f64) void {
            for (0..uc) |i| {
                @memset(ut[i * m .. i * m + m], 0);
                ut[i * m + i] = 1;
            }
            var k = n;
            while (k > 0) {
                k -= 1;
                const tk = tauq[k];
                if (tk == 0) continue;
                // v = (1, a[k+1.., k]): gathered from its column, then row operations on ut.
                const len = m - k;
                vbuf[0] = 1;
                for (1..len) |i| vbuf[i] = a[(k + i) * n + k];
                for (k..uc) |r| {
                    const row = ut + r * m + k;
                    axpy(-tk * dot(row, vbuf, len), vbuf, row, len);
                }
            }
            for (0..n) |i| {
                @memset(vt[i * n .. i * n + n], 0);
                vt[i * n + i] = 1;
            }
            if (n < 2) return;
            k = n - 1;
            while (k > 0) {
                k -= 1;
                const tk = taup[k];
                if (tk == 0) continue;
                const v = a + k * n + k + 1;
                v[0] = 1;
                const len = n - k - 1;
                for (k + 1..n) |r| {
                    const row = vt + r * n + k + 1;
                    axpy(-tk * dot(row, v, len), v, row, len);
                }
            }
        }

        /// Golub-Reinsch implicit QR on the bidiagonal (w diagonal, rv1[i] = B[i-1, i], rv1[0]
        /// = 0); rotations on rows of ut (stride ldu) and vt (stride ldv) when given. Makes the
        /// values non-negative. Returns false when the iteration cap is hit.
        fn bdsqr(w: [*]f64, rv1: [*]f64, n: usize, ut: ?[*]f64, ldu: usize, vt: ?[*]f64, ldv: usize) bool {
            var anorm: f64 = 0;
            for (0..n) |i| anorm = @max(anorm, @abs(w[i]) + @abs(rv1[i]));
            if (std.math.isNan(anorm)) return false;
            var k = n;
            while (k > 0) {
                k -= 1;
                var its: usize = 0;
                while (true) : (its += 1) {
                    var flag = true;
                    var l = k;
                    var nm: usize = 0;
                    while (true) {
                        if (l == 0 or @abs(rv1[l]) + anorm == anorm) {
                            flag = false;
                            break;
                        }
                        nm = l - 1;
                        if (@abs(w[nm]) + anorm == anorm) break;
                        l -= 1;
                    }
                    if (flag) {
                        var c: f64 = 0;
                        var s: f64 = 1;
                        for (l..k + 1) |i| {
                            const f = s * rv1[i];
                            rv1[i] = c * rv1[i];
                            if (@abs(f) + anorm == anorm) break;
                            const g = w[i];
                            var h = std.math.hypot(f, g);
                            w[i] = h;
                            h = 1.0 / h;
                            c = g * h;
                            s = -f * h;
                            if (ut) |u| rot(u + nm * ldu, u + i * ldu, ldu, c, s);
                        }
                    }
                    const z0 = w[k];
                    if (l == k) {
                        if (z0 < 0) {
                            w[k] = -z0;
                            if (vt) |v| scal(-1, v + k * ldv, ldv);
                        }
                        break;
                    }
                    if (its >= 75) return false;
                    var x = w[l];
                    nm = k - 1;
                    var y = w[nm];
                    var g = rv1[nm];
                    var h = rv1[k];
                    var f = ((y - z0) * (y + z0) + (g - h) * (g + h)) / (2.0 * h * y);
                    g = std.math.hypot(f, 1.0);
                    f = ((x - z0) * (x + z0) + h * ((y / (f + std.math.copysign(g, f))) - h)) / x;
                    var c: f64 = 1;
                    var s: f64 = 1;
                    for (l..nm + 1) |j| {
                        const i = j + 1;
                        g = rv1[i];
                        y = w[i];
                        h = s * g;
                        g = c * g;
                        var z = std.math.hypot(f, h);
                        rv1[j] = z;
                        c = f / z;
                        s = h / z;
                        f = x * c + g * s;
                        g = g * c - x * s;
                        h = y * s;
                        y *= c;
                        if (vt) |v| rot(v + j * ldv, v + i * ldv, ldv, c, s);
                        z = std.math.hypot(f, h);
                        w[j] = z;
                        if (z != 0) {
                            z = 1.0 / z;
                            c = f * z;
                            s = h * z;
                        }
                        f = c * g + s * y;
                        x = c * y - s * g;
                        if (ut) |u| rot(u + j * ldu, u + i * ldu, ldu, c, s);
                    }
                    rv1[l] = 0;
                    rv1[k] = f;
                    w[k] = x;
                }
            }
            return true;
        }
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

// ---- tests ------------------------------------------------------------------------------------------

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
