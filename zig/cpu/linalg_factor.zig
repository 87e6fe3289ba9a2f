//! The blocked factorisations of linalg.zig, generic over the vector width `vbits`: LU with
//! partial pivoting (getrf) and its triangular solves (getrs), Cholesky (potrf, lower), and
//! Householder QR (geqrf, with the compact WY block reflectors of larft/larfb, and orgqr to form
//! Q). All work in place on f64 row-major scratch; the primitives come from linalg_blas.zig.
const std = @import("std");
const Parallel = @import("parallel.zig").Parallel;
const blas_mod = @import("linalg_blas.zig");

/// Block size of the blocked factorisations.
pub const nb = 32;

pub fn Factor(comptime vbits: u32) type {
    return struct {
        const B = blas_mod.Blas(vbits);
        const dot = B.dot;
        const axpy = B.axpy;
        const scal = B.scal;
        const swap = B.swap;
        const gemm = B.gemm;
        const update = B.update;
        const larfg = B.larfg;

        // ---- LU -------------------------------------------------------------------------------

        /// In-place LU with partial pivoting of the n x n matrix a (ld n): piv[j] = row swapped
        /// with j. Returns the first exactly-zero pivot, if any (the factorisation completes).
        pub fn getrf(par: *const Parallel, a: [*]f64, n: usize, piv: [*]usize) ?usize {
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
        pub fn getrs(par: *const Parallel, a: [*]const f64, n: usize, piv: [*]const usize, b: [*]f64, k: usize) void {
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
        pub fn potrf(par: *const Parallel, a: [*]f64, n: usize, panel: [*]f64) ?usize {
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
        // ---- QR -------------------------------------------------------------------------------

        /// Copies reflectors j0..j0+jb of a (m x n, ld n; vectors below the diagonal) into vb
        /// ((m - j0) x jb, unit diagonal, zeros above) and builds T (jb x jb upper, ld nb).
        pub fn blockReflector(a: [*]const f64, m: usize, n: usize, j0: usize, jb: usize, tau: [*]const f64, vb: [*]f64, t: [*]f64) void {
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
        pub fn applyBlock(par: *const Parallel, vb: [*]const f64, rows: usize, jb: usize, t: [*]const f64, trans: bool, c: [*]f64, ldc: usize, cols: usize, w: [*]f64) void {
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
        pub fn geqrf(par: *const Parallel, a: [*]f64, m: usize, n: usize, tau: [*]f64, vb: [*]f64, t: [*]f64, w: [*]f64, colw: [*]f64) void {
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
        pub fn orgqr(par: *const Parallel, a: [*]const f64, m: usize, n: usize, tau: [*]const f64, q: [*]f64, mc: usize, vb: [*]f64, t: [*]f64, w: [*]f64) void {
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

    };
}
