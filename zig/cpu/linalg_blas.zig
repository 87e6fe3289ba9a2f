//! The shared building blocks of linalg.zig's factorisations, generic over the vector width `vbits`:
//! f64 vector primitives (dot, axpy, axpy2, scal, rot, swap), a small register-tiled GEMM
//! (R rows x 2 vectors, the fallback for small or strided products; large trailing updates go
//! to gemm.zig's packed `matmul`), and LAPACK's Householder reflector generator (larfg).
//! linalg_factor.zig (LU, Cholesky, QR) and linalg_eig.zig (eigh, SVD) build on `Blas(vbits)`.
const std = @import("std");
const builtin = @import("builtin");
const Parallel = @import("parallel.zig").Parallel;
const gemm_mod = @import("gemm.zig");

const has_fma = switch (builtin.cpu.arch) {
    .x86_64 => std.Target.x86.featureSetHas(builtin.cpu.features, .fma),
    .aarch64 => true,
    else => false,
};

// ---- vector primitives and a small GEMM ------------------------------------------------------------

pub fn Blas(comptime vbits: u32) type {
    return struct {
        pub const L: usize = if (vbits == 0) 1 else @max(1, vbits / 64);
        pub const V = @Vector(L, f64);
        /// Rows of the GEMM micro-tile (the accumulators are R x 2 vectors).
        pub const R: usize = if (L >= 8) 8 else 4;

        pub inline fn ld(p: [*]const f64) V {
            return p[0..L].*;
        }
        pub inline fn st(p: [*]f64, v: V) void {
            p[0..L].* = v;
        }
        pub inline fn fma(a: V, b: V, c: V) V {
            return if (has_fma) @mulAdd(V, a, b, c) else a * b + c;
        }
        pub inline fn fma1(a: f64, b: f64, c: f64) f64 {
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
        pub fn axpy2(a: f64, x: [*]const f64, b: f64, z: [*]const f64, y: [*]f64, n: usize) void {
            const va: V = @splat(a);
            const vb: V = @splat(b);
            var i: usize = 0;
            while (i + L <= n) : (i += L) st(y + i, fma(vb, ld(z + i), fma(va, ld(x + i), ld(y + i))));
            while (i < n) : (i += 1) y[i] = fma1(b, z[i], fma1(a, x[i], y[i]));
        }

        pub fn scal(alpha: f64, x: [*]f64, n: usize) void {
            const va: V = @splat(alpha);
            var i: usize = 0;
            while (i + L <= n) : (i += L) st(x + i, ld(x + i) * va);
            while (i < n) : (i += 1) x[i] *= alpha;
        }

        /// (x, y) <- (c x + s y, c y - s x)
        pub fn rot(x: [*]f64, y: [*]f64, n: usize, c: f64, s: f64) void {
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

        pub fn swap(x: [*]f64, y: [*]f64, n: usize) void {
            var i: usize = 0;
            while (i + L <= n) : (i += L) {
                const a = ld(x + i);
                st(x + i, ld(y + i));
                st(y + i, a);
            }
            while (i < n) : (i += 1) std.mem.swap(f64, &x[i], &y[i]);
        }

        // ---- GEMM: C = alpha * A·B + beta * C (beta 0 or 1); A by strides, B and C row-major --

        pub const Gemm = struct {
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
        pub fn update(par: *const Parallel, m: usize, n: usize, k: usize, a: [*]const f64, lda: usize, b: [*]const f64, ldb: usize, c: [*]f64, ldc: usize) void {
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


        // ---- Householder ----------------------------------------------------------------------

        /// LAPACK's larfg on x[0] (alpha) and x[1..len] at stride inc: on return x[0] = beta,
        /// x[1..] = v[1..] (v[0] = 1 implicit); returns tau (0: H = I).
        pub fn larfg(x: [*]f64, len: usize, inc: usize) f64 {
            var sc: f64 = 0;
            return larfgScale(x, len, inc, &sc);
        }

        /// larfg that also reports the factor v[1..] = x[1..] * scale.
        pub fn larfgScale(x: [*]f64, len: usize, inc: usize, scale: *f64) f64 {
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

    };
}
