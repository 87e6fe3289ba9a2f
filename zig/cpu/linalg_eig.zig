//! The iterative decompositions of linalg.zig, generic over the vector width `vbits`: the
//! symmetric eigenproblem (Householder tridiagonalisation sytrd, Qᵀ formed by orgtrT, implicit QL
//! tql) and the SVD (Golub-Kahan bidiagonalisation gebrd, Uᵀ and Vᵀ formed by orgbr, implicit-shift
//! QR bdsqr). Rotations act on rows of the transposed factors; primitives from linalg_blas.zig.
const std = @import("std");
const blas_mod = @import("linalg_blas.zig");

pub fn Eig(comptime vbits: u32) type {
    return struct {
        const B = blas_mod.Blas(vbits);
        const dot = B.dot;
        const axpy = B.axpy;
        const axpy2 = B.axpy2;
        const scal = B.scal;
        const rot = B.rot;
        const larfg = B.larfg;
        const larfgScale = B.larfgScale;

        // ---- symmetric eigenproblem ----------------------------------------------------------

        /// Tridiagonalises the symmetric matrix whose LOWER triangle is in a (n x n, ld n): d
        /// diagonal, e[k] = T[k+1, k]; reflector k stored in row k's upper part (columns k+1..,
        /// v[0] = 1) with tau[k]. One pass over the lower triangle per step: the rank-2 update
        /// of step k and the symmetric matrix-vector product of step k+1 share it (the next
        /// reflector's column is updated first, from the vectors alone). p0, p1: n words each.
        pub fn sytrd(a: [*]f64, n: usize, d: [*]f64, e: [*]f64, tau: [*]f64, p0: [*]f64, p1: [*]f64) void {
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
        pub inline fn symvRow(r: [*]const f64, x: [*]const f64, p: [*]f64, i: usize) void {
            p[i] += dot(r, x, i) + r[i] * x[i];
            axpy(x[i], r, p, i);
        }

        /// zt (n x n) <- Q^T of sytrd's reflectors.
        pub fn orgtrT(a: [*]const f64, n: usize, tau: [*]const f64, zt: [*]f64) void {
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
        pub fn tql(d: [*]f64, e: [*]f64, n: usize, zt: ?[*]f64) bool {
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
        pub fn gebrd(a: [*]f64, m: usize, n: usize, d: [*]f64, e: [*]f64, tauq: [*]f64, taup: [*]f64, w: [*]f64, z: [*]f64) void {
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
        pub fn orgbr(a: [*]f64, m: usize, n: usize, tauq: [*]const f64, taup: [*]const f64, ut: [*]f64, uc: usize, vt: [*]f64, vbuf: [*]f64) void {
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
        pub fn bdsqr(w: [*]f64, rv1: [*]f64, n: usize, ut: ?[*]f64, ldu: usize, vt: ?[*]f64, ldv: usize) bool {
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
