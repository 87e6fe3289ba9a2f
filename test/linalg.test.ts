// bn.linalg against independent float64 references written here (matrix products, LU, Jacobi
// eigenvalues), fast-check properties over random shapes, batches and views, golden NumPy
// fixtures for ill-conditioned cases, and every error path.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as bn from "../src/index.ts";
import { castRef, runnableLevels } from "./helpers.ts";

const L = bn.linalg;
type Float = "f32" | "f16" | "bf16";

/** The single value of a tensor as a number. */
const num = (t: bn.Tensor) => Number(t.item());
/** Values of a tensor as float64, row-major. */
const vals = (t: bn.Tensor) => Float64Array.from(t._toFloat64("test"));

/** Pseudo-random values in [-1, 1) from a seed (deterministic, independent of the engine). */
function noise(seed: number): (i: number) => number {
  return (i) => {
    const s = Math.sin((i + 1) * 12.9898 + seed * 78.233) * 43758.5453;
    return (s - Math.floor(s) - 0.5) * 2;
  };
}

/** A tensor of `shape` and dtype d from f(i), and the float64 values it actually holds. */
function make(shape: number[], f: (i: number) => number, d: bn.DType = "f32"): [bn.Tensor, Float64Array] {
  const n = shape.reduce((a, b) => a * b, 1);
  const raw = Float64Array.from({ length: n }, (_, i) => f(i));
  const t = bn.tensor(raw, { shape, dtype: d });
  return [t, raw.map((v) => castRef(v, d))];
}

// ---- float64 matrix helpers (row-major, m x n in a flat array) ----------------------------------

function mm(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) {
    const x = a[i * k + p]!;
    for (let j = 0; j < n; j++) c[i * n + j]! += x * b[p * n + j]!;
  }
  return c;
}
function tr(a: ArrayLike<number>, m: number, n: number): Float64Array {
  const t = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) t[j * m + i] = a[i * n + j]!;
  return t;
}
function eye(n: number): Float64Array {
  const e = new Float64Array(n * n);
  for (let i = 0; i < n; i++) e[i * n + i] = 1;
  return e;
}
const fro = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((s, x) => s + x * x, 0));
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
};
/** Expects |a - b|_max <= tol (and equal lengths), reporting the worst element. */
function near(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what = ""): void {
  expect(a.length).toBe(b.length);
  const d = maxAbsDiff(a, b);
  if (!(d <= tol)) throw new Error(`${what}: max difference ${d} > ${tol}`);
}
/** The i-th matrix (r x c) of a batch stored flat. */
const at = (x: Float64Array, i: number, r: number, c: number) => x.subarray(i * r * c, (i + 1) * r * c);

/** det by LU with partial pivoting in float64 (the reference). */
function detRef(a0: ArrayLike<number>, n: number): number {
  const a = Float64Array.from(a0);
  let det = 1;
  for (let j = 0; j < n; j++) {
    let p = j;
    for (let i = j + 1; i < n; i++) if (Math.abs(a[i * n + j]!) > Math.abs(a[p * n + j]!)) p = i;
    if (a[p * n + j] === 0) return 0;
    if (p !== j) {
      for (let c = 0; c < n; c++) [a[j * n + c], a[p * n + c]] = [a[p * n + c]!, a[j * n + c]!];
      det = -det;
    }
    det *= a[j * n + j]!;
    for (let i = j + 1; i < n; i++) {
      const l = a[i * n + j]! / a[j * n + j]!;
      for (let c = j; c < n; c++) a[i * n + c]! -= l * a[j * n + c]!;
    }
  }
  return det;
}

/** Eigenvalues of a symmetric matrix by cyclic Jacobi in float64, ascending (the reference). */
function jacobiEig(s0: ArrayLike<number>, n: number): number[] {
  const a = Float64Array.from(s0);
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j) off += a[i * n + j]! ** 2;
    if (off < 1e-30 * (fro(a) ** 2 + 1e-300)) break;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) {
      const apq = a[p * n + q]!;
      if (apq === 0) continue;
      const theta = (a[q * n + q]! - a[p * n + p]!) / (2 * apq);
      const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
      const c = 1 / Math.sqrt(t * t + 1);
      const s = t * c;
      for (let k = 0; k < n; k++) {
        const akp = a[k * n + p]!;
        const akq = a[k * n + q]!;
        a[k * n + p] = c * akp - s * akq;
        a[k * n + q] = s * akp + c * akq;
      }
      for (let k = 0; k < n; k++) {
        const apk = a[p * n + k]!;
        const aqk = a[q * n + k]!;
        a[p * n + k] = c * apk - s * aqk;
        a[q * n + k] = s * apk + c * aqk;
      }
    }
  }
  return Array.from({ length: n }, (_, i) => a[i * n + i]!).sort((x, y) => x - y);
}
/** Singular values (descending) from the eigenvalues of AᵀA (fine for well-conditioned checks). */
function svalsRef(a: ArrayLike<number>, m: number, n: number): number[] {
  const g = m >= n ? mm(tr(a, m, n), a, n, m, n) : mm(a, tr(a, m, n), m, n, m);
  return jacobiEig(g, Math.min(m, n))
    .map((x) => Math.sqrt(Math.max(x, 0)))
    .reverse();
}

// ---- arbitraries ------------------------------------------------------------------------------------

const arbBatch = fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 0, maxLength: 2 });
const arbN = fc.integer({ min: 1, max: 24 });
/** How the input is laid out: contiguous, a transposed view, or a strided slice of a bigger one. */
const arbView = fc.constantFrom("contiguous", "transposed", "sliced");

/**
 * A [...batch, m, n] f32 input built as `view`, with the float64 values of each matrix (row-major,
 * batch-major). `f(b, i, j)` gives the value of matrix b's element (i, j).
 */
function input(batch: number[], m: number, n: number, view: string, f: (b: number, i: number, j: number) => number, d: bn.DType = "f32"): [bn.Tensor, Float64Array] {
  const nb = batch.reduce((x, y) => x * y, 1);
  const ref = new Float64Array(nb * m * n);
  for (let b = 0; b < nb; b++) for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) ref[(b * m + i) * n + j] = castRef(f(b, i, j), d);
  if (view === "transposed") {
    // Store the transposes contiguously, then view them transposed back.
    const base = bn.tensor(tr2(ref, nb, m, n), { shape: [...batch, n, m], dtype: d });
    const t = base.transpose(-1, -2);
    base.dispose();
    return [t, ref];
  }
  if (view === "sliced") {
    // Every other row and column of a [.., 2m, 2n] tensor.
    const big = new Float64Array(nb * 4 * m * n);
    for (let b = 0; b < nb; b++) for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) big[(b * 2 * m + 2 * i) * 2 * n + 2 * j] = ref[(b * m + i) * n + j]!;
    const base = bn.tensor(big, { shape: [...batch, 2 * m, 2 * n], dtype: d });
    const t = base.slice([...batch.map(() => null), [0, null, 2], [0, null, 2]]);
    base.dispose();
    return [t, ref];
  }
  return [bn.tensor(ref, { shape: [...batch, m, n], dtype: d }), ref];
}
function tr2(x: Float64Array, nb: number, m: number, n: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let b = 0; b < nb; b++) out.set(tr(at(x, b, m, n), m, n), b * m * n);
  return out;
}
const count = (batch: number[]) => batch.reduce((x, y) => x * y, 1);

const EPS = 2 ** -23; // f32 output rounding
const RUNS = { numRuns: 40 };

describe("properties (f32, random shapes, batches and views)", () => {
  test("inv: A·A⁻¹ ≈ I", () => {
    fc.assert(
      fc.property(arbBatch, arbN, arbView, fc.integer(), (batch, n, view, seed) => {
        const [a, ref] = input(batch, n, n, view, (b, i, j) => noise(seed)((b * n + i) * n + j));
        using x = L.inv(a);
        expect(x.shape).toEqual([...batch, n, n]);
        expect(x.dtype).toBe("f32");
        const xv = vals(x);
        for (let b = 0; b < count(batch); b++) {
          const A = at(ref, b, n, n);
          const X = at(xv, b, n, n);
          near(mm(A, X, n, n, n), eye(n), 20 * n * EPS * fro(A) * fro(X), "A·inv(A) - I");
        }
        a.dispose();
      }),
      RUNS,
    );
  });

  test("solve: A·x ≈ b for vector and matrix right-hand sides, batches broadcast", () => {
    fc.assert(
      fc.property(arbBatch, arbN, fc.integer({ min: 0, max: 3 }), arbView, fc.boolean(), fc.integer(), (batch, n, k, view, vector, seed) => {
        const [a, ref] = input(batch, n, n, view, (b, i, j) => noise(seed)((b * n + i) * n + j));
        // b: a vector [n] (shared by the batch) or matrices [1 or batch..., n, k] (broadcast on axis 0).
        const bBatch = vector ? [] : batch.map((d, i) => (i === 0 ? 1 : d));
        const kk = vector ? 1 : k;
        const [bt, bref] = make(vector ? [n] : [...bBatch, n, kk], noise(seed + 1));
        using x = L.solve(a, bt);
        expect(x.shape).toEqual(vector ? [...batch, n] : [...batch, n, kk]);
        const xv = vals(x);
        const inner = batch.length ? count(batch) / batch[0]! : 1;
        for (let b = 0; b < count(batch); b++) {
          const A = at(ref, b, n, n);
          const X = at(xv, b, n, kk);
          const B = vector ? bref : at(bref, b % inner, n, kk);
          near(mm(A, X, n, n, kk), B, 20 * n * EPS * fro(A) * (fro(X) + 1e-30), "A·x - b");
        }
        a.dispose();
        bt.dispose();
      }),
      RUNS,
    );
  });

  test("qr: Q·R ≈ A, QᵀQ ≈ I, R upper triangular (reduced and complete)", () => {
    fc.assert(
      fc.property(arbBatch, arbN, arbN, arbView, fc.boolean(), fc.integer(), (batch, m, n, view, complete, seed) => {
        const [a, ref] = input(batch, m, n, view, (b, i, j) => noise(seed)((b * m + i) * n + j));
        const { Q, R } = L.qr(a, { mode: complete ? "complete" : "reduced" });
        const mc = complete ? m : Math.min(m, n);
        expect(Q.shape).toEqual([...batch, m, mc]);
        expect(R.shape).toEqual([...batch, mc, n]);
        const qv = vals(Q);
        const rv = vals(R);
        for (let b = 0; b < count(batch); b++) {
          const A = at(ref, b, m, n);
          const q = at(qv, b, m, mc);
          const r = at(rv, b, mc, n);
          near(mm(q, r, m, mc, n), A, 30 * m * EPS * (fro(A) + 1), "Q·R - A");
          near(mm(tr(q, m, mc), q, mc, m, mc), eye(mc), 30 * m * EPS, "QᵀQ - I");
          for (let i = 0; i < mc; i++) for (let j = 0; j < Math.min(i, n); j++) expect(r[i * n + j]).toBe(0);
        }
        Q.dispose();
        R.dispose();
        a.dispose();
      }),
      RUNS,
    );
  });

  test("svd: U·diag(S)·Vt ≈ A, S descending, U and V orthonormal (both fullMatrices settings)", () => {
    fc.assert(
      fc.property(arbBatch, arbN, arbN, arbView, fc.boolean(), fc.integer(), (batch, m, n, view, full, seed) => {
        const [a, ref] = input(batch, m, n, view, (b, i, j) => noise(seed)((b * m + i) * n + j));
        const { U, S, Vt } = L.svd(a, { fullMatrices: full });
        const k = Math.min(m, n);
        const uc = full ? m : k;
        const vr = full ? n : k;
        expect(U.shape).toEqual([...batch, m, uc]);
        expect(S.shape).toEqual([...batch, k]);
        expect(Vt.shape).toEqual([...batch, vr, n]);
        const uv = vals(U);
        const sv = vals(S);
        const vv = vals(Vt);
        using sOnly = L.svdvals(a);
        near(vals(sOnly), sv, 1e-6 * (Math.max(...sv, 0) + 1), "svdvals vs svd");
        for (let b = 0; b < count(batch); b++) {
          const A = at(ref, b, m, n);
          const u = at(uv, b, m, uc);
          const s = at(sv, b, 1, k);
          const vt = at(vv, b, vr, n);
          for (let i = 1; i < k; i++) expect(s[i]!).toBeLessThanOrEqual(s[i - 1]!);
          for (let i = 0; i < k; i++) expect(s[i]!).toBeGreaterThanOrEqual(0);
          const us = new Float64Array(m * k);
          for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) us[i * k + j] = u[i * uc + j]! * s[j]!;
          near(mm(us, vt.subarray(0, k * n), m, k, n), A, 30 * Math.max(m, n) * EPS * (fro(A) + 1), "U·S·Vt - A");
          near(mm(tr(u, m, uc), u, uc, m, uc), eye(uc), 30 * m * EPS, "UᵀU - I");
          near(mm(vt, tr(vt, vr, n), vr, n, vr), eye(vr), 30 * n * EPS, "Vt·V - I");
          near(s, svalsRef(A, m, n), 1e-5 * (fro(A) + 1), "S vs Jacobi");
        }
        for (const t of [U, S, Vt, a]) t.dispose();
      }),
      RUNS,
    );
  });

  test("cholesky: L·Lᵀ ≈ A for SPD A = BᵀB + nI, L lower with a positive diagonal", () => {
    fc.assert(
      fc.property(arbBatch, arbN, arbView, fc.integer(), (batch, n, view, seed) => {
        const nb = count(batch);
        const spd = new Float64Array(nb * n * n);
        for (let b = 0; b < nb; b++) {
          const B = Float64Array.from({ length: n * n }, (_, i) => noise(seed)(b * n * n + i));
          const g = mm(tr(B, n, n), B, n, n, n);
          for (let i = 0; i < n; i++) g[i * n + i]! += n;
          spd.set(g, b * n * n);
        }
        const [a, ref] = input(batch, n, n, view, (b, i, j) => spd[(b * n + i) * n + j]!);
        using l = L.cholesky(a);
        const lv = vals(l);
        for (let b = 0; b < nb; b++) {
          const A = at(ref, b, n, n);
          const lb = at(lv, b, n, n);
          for (let i = 0; i < n; i++) {
            expect(lb[i * n + i]!).toBeGreaterThan(0);
            for (let j = i + 1; j < n; j++) expect(lb[i * n + j]).toBe(0);
          }
          near(mm(lb, tr(lb, n, n), n, n, n), A, 20 * n * EPS * fro(A), "L·Lᵀ - A");
        }
        a.dispose();
      }),
      RUNS,
    );
  });

  test("eigh: V·diag(w)·Vᵀ ≈ A, VᵀV ≈ I, w ascending and equal to Jacobi's; only the lower triangle is read", () => {
    fc.assert(
      fc.property(arbBatch, arbN, arbView, fc.integer(), (batch, n, view, seed) => {
        // The lower triangle holds the matrix; the upper triangle is garbage that must be ignored.
        const f = (b: number, i: number, j: number) => (i >= j ? noise(seed)((b * n + i) * n + j) : 1e3 * noise(seed + 7)((b * n + i) * n + j));
        const [a, raw] = input(batch, n, n, view, f);
        const { eigenvalues: w, eigenvectors: v } = L.eigh(a);
        expect(w.shape).toEqual([...batch, n]);
        expect(v.shape).toEqual([...batch, n, n]);
        const wv = vals(w);
        const vv = vals(v);
        for (let b = 0; b < count(batch); b++) {
          const A = Float64Array.from(at(raw, b, n, n));
          for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) A[i * n + j] = A[j * n + i]!;
          const wb = at(wv, b, 1, n);
          const V = at(vv, b, n, n);
          for (let i = 1; i < n; i++) expect(wb[i]!).toBeGreaterThanOrEqual(wb[i - 1]!);
          const vw = new Float64Array(n * n);
          for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) vw[i * n + j] = V[i * n + j]! * wb[j]!;
          near(mm(vw, tr(V, n, n), n, n, n), A, 30 * n * EPS * fro(A), "V·diag(w)·Vᵀ - A");
          near(mm(tr(V, n, n), V, n, n, n), eye(n), 30 * n * EPS, "VᵀV - I");
          near(wb, jacobiEig(A, n), 1e-5 * fro(A), "w vs Jacobi");
        }
        for (const t of [w, v, a]) t.dispose();
      }),
      RUNS,
    );
  });

  test("det matches a float64 LU", () => {
    fc.assert(
      fc.property(arbBatch, fc.integer({ min: 1, max: 12 }), arbView, fc.integer(), (batch, n, view, seed) => {
        const [a, ref] = input(batch, n, n, view, (b, i, j) => 2 * noise(seed)((b * n + i) * n + j));
        using d = L.det(a);
        expect(d.shape).toEqual(batch);
        const dv = vals(d);
        for (let b = 0; b < count(batch); b++) {
          const A = at(ref, b, n, n);
          const want = detRef(A, n);
          // Hadamard's bound scales the absolute error of a tiny determinant.
          let h = 1;
          for (let i = 0; i < n; i++) h *= fro(A.subarray(i * n, (i + 1) * n));
          expect(Math.abs(dv[b]! - want)).toBeLessThanOrEqual(4 * EPS * Math.abs(want) + 1e-12 * h);
        }
        a.dispose();
      }),
      RUNS,
    );
  });

  test("vector norms along an axis match float64 formulas (with keepdims)", () => {
    const ORDS = [undefined, 2, 1, Infinity, -Infinity, 0, 3, 0.5, -1];
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 3 }), fc.nat(), fc.constantFrom(...ORDS), fc.boolean(), fc.integer(), (shape, axSeed, ord, keep, seed) => {
        const ax = axSeed % shape.length;
        const [x, ref] = make(shape, (i) => (i % 5 === 3 ? 0 : noise(seed)(i) * 3));
        using r = L.norm(x, ord, ax, keep);
        const outShape = shape.map((d, i) => (i === ax ? 1 : d));
        expect(r.shape).toEqual(keep ? outShape : shape.filter((_, i) => i !== ax));
        const st = shape.map((_, i) => shape.slice(i + 1).reduce((p, q) => p * q, 1));
        const got = vals(r);
        let k = 0;
        const idx = outShape.map(() => 0);
        const total = outShape.reduce((p, q) => p * q, 1);
        for (let o = 0; o < total; o++) {
          const row: number[] = [];
          for (let t = 0; t < shape[ax]!; t++) row.push(ref[idx.reduce((s, v, i) => s + (i === ax ? t : v) * st[i]!, 0)]!);
          const abs = row.map(Math.abs);
          const p = ord ?? 2;
          const want =
            p === Infinity ? Math.max(...abs) : p === -Infinity ? Math.min(...abs) : p === 0 ? abs.filter((v) => v !== 0).length : abs.reduce((s, v) => s + v ** p, 0) ** (1 / p);
          const g = got[k++]!;
          if (Number.isFinite(want)) expect(Math.abs(g - want)).toBeLessThanOrEqual(4 * EPS * Math.abs(want) + 1e-30);
          else expect(g).toBe(want);
          for (let i = idx.length - 1; i >= 0; i--) {
            if (++idx[i]! < outShape[i]!) break;
            idx[i] = 0;
          }
        }
        x.dispose();
      }),
      RUNS,
    );
  });

  test("matrix norms over an axis pair match float64 formulas (fro, ±1, ±inf, ±2, nuc)", () => {
    const ORDS = ["fro", "nuc", 1, -1, 2, -2, Infinity, -Infinity] as const;
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 8 }), fc.constantFrom(...ORDS), fc.boolean(), fc.boolean(), fc.integer(), (nb, m, n, ord, swap, keep, seed) => {
        // x: [m, nb, n]; the matrix axes are (0, 2) or (2, 0).
        const [x, ref] = make([m, nb, n], noise(seed));
        const axes = swap ? [2, 0] : [0, 2];
        using r = L.norm(x, ord, axes, keep);
        expect(r.shape).toEqual(keep ? [1, nb, 1] : [nb]);
        const got = vals(r);
        for (let b = 0; b < nb; b++) {
          const rows = swap ? n : m;
          const cols = swap ? m : n;
          const A = new Float64Array(rows * cols);
          for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
            const v = ref[(i * nb + b) * n + j]!;
            if (swap) A[j * cols + i] = v;
            else A[i * cols + j] = v;
          }
          const colSums = Array.from({ length: cols }, (_, j) => Array.from({ length: rows }, (_, i) => Math.abs(A[i * cols + j]!)).reduce((s, v) => s + v, 0));
          const rowSums = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => Math.abs(A[i * cols + j]!)).reduce((s, v) => s + v, 0));
          const s = svalsRef(A, rows, cols);
          const want = {
            fro: fro(A),
            nuc: s.reduce((p, q) => p + q, 0),
            1: Math.max(...colSums),
            [-1]: Math.min(...colSums),
            2: s[0]!,
            [-2]: s[s.length - 1]!,
            Infinity: Math.max(...rowSums),
            [-Infinity]: Math.min(...rowSums),
          }[String(ord)]!;
          expect(Math.abs(got[b]! - want)).toBeLessThanOrEqual(1e-5 * (fro(A) + 1));
        }
        x.dispose();
      }),
      RUNS,
    );
  });
});

describe("norm defaults", () => {
  test("no ord and no axis: the 2-norm of every element, any ndim, keepdims", () => {
    const [x, ref] = make([2, 3, 4], noise(3));
    using t = x.transpose(0, 2);
    using r = L.norm(t);
    expect(r.shape).toEqual([]);
    expect(Math.abs(num(r) - fro(ref))).toBeLessThanOrEqual(4 * EPS * fro(ref));
    using k = L.norm(t, null, null, true);
    expect(k.shape).toEqual([1, 1, 1]);
    // ord without axis: 1-D is a vector norm, 2-D a matrix norm.
    const [m, mref] = make([3, 4], noise(4));
    using m1 = L.norm(m, 1);
    const colMax = Math.max(...[0, 1, 2, 3].map((j) => [0, 1, 2].reduce((s, i) => s + Math.abs(mref[i * 4 + j]!), 0)));
    expect(Math.abs(num(m1) - colMax)).toBeLessThanOrEqual(4 * EPS * colMax);
    const [v, vref] = make([5], noise(5));
    using v1 = L.norm(v, 1);
    const s1 = Array.from(vref).reduce((s, q) => s + Math.abs(q), 0);
    expect(Math.abs(num(v1) - s1)).toBeLessThanOrEqual(4 * EPS * s1);
    for (const q of [x, m, v]) q.dispose();
  });
});

describe("dtypes", () => {
  const TOL: Record<Float, number> = { f32: 2 ** -23, f16: 2 ** -10, bf16: 2 ** -7 };
  for (const d of ["f16", "bf16"] as const) {
    test(`${d} in, ${d} out, computed in float64 and rounded once`, () => {
      const n = 6;
      const [a, ref] = input([2], n, n, "contiguous", (b, i, j) => noise(9)((b * n + i) * n + j) + (i === j ? 3 : 0), d);
      using x = L.inv(a);
      expect(x.dtype).toBe(d);
      const xv = vals(x);
      for (let b = 0; b < 2; b++) {
        const X = at(xv, b, n, n);
        near(mm(at(ref, b, n, n), X, n, n, n), eye(n), 4 * n * TOL[d] * fro(at(ref, b, n, n)) * fro(X), `${d} A·inv(A) - I`);
      }
      using dt = L.det(a);
      expect(dt.dtype).toBe(d);
      for (let b = 0; b < 2; b++) {
        const want = detRef(at(ref, b, n, n), n);
        expect(Math.abs(vals(dt)[b]! - want)).toBeLessThanOrEqual(TOL[d] * Math.abs(want));
      }
      const { S } = L.svd(a);
      expect(S.dtype).toBe(d);
      using nm = L.norm(a, "fro", [-2, -1]);
      expect(nm.dtype).toBe(d);
      S.dispose();
      a.dispose();
    });
  }

  test("integer and bool inputs are promoted to f32 results (NumPy gives float64)", () => {
    const ints = [
      [4, 7],
      [2, 6],
    ];
    for (const d of ["i32", "i8", "u8", "i16", "u16", "u32"] as const) {
      using a = bn.tensor(ints, { dtype: d });
      using x = L.inv(a);
      expect(x.dtype).toBe("f32");
      near(vals(x), [0.6, -0.7, -0.2, 0.4], 1e-7, d);
      using dt = L.det(a);
      expect(dt.dtype).toBe("f32");
      expect(Math.abs(num(dt) - 10)).toBeLessThan(1e-5);
      using nv = L.norm(a);
      expect(nv.dtype).toBe("f32");
      expect(Math.abs(num(nv) - Math.sqrt(105))).toBeLessThan(1e-5);
    }
    using bo = bn.tensor([[true, false], [true, true]], { dtype: "bool" });
    using bi = L.inv(bo);
    expect(bi.dtype).toBe("f32");
    near(vals(bi), [1, 0, -1, 1], 0, "bool inv");
    // solve promotes mixed dtypes (f16 with i32 -> f16).
    using a16 = bn.tensor([[3, 1], [1, 2]], { dtype: "f16" });
    using b32 = bn.tensor([9, 8], { dtype: "i32" });
    using x = L.solve(a16, b32);
    expect(x.dtype).toBe("f16");
    near(vals(x), [2, 3], 2e-3, "mixed solve");
  });
});

describe("edge shapes", () => {
  test("1x1 matrices", () => {
    using a = bn.tensor([[-2]]);
    using i = L.inv(a);
    expect(i.toArray()).toEqual([[-0.5]]);
    using d = L.det(a);
    expect(num(d)).toBe(-2);
    const { Q, R } = L.qr(a);
    expect(vals(Q)[0]! * vals(R)[0]!).toBe(-2);
    const { U, S, Vt } = L.svd(a);
    expect(S.toArray()).toEqual([2]);
    expect(vals(U)[0]! * vals(Vt)[0]!).toBe(-1);
    const e = L.eigh(a);
    expect(e.eigenvalues.toArray()).toEqual([-2]);
    expect(Math.abs(num(e.eigenvectors))).toBe(1);
    using c = bn.tensor([[9]]);
    using l = L.cholesky(c);
    expect(l.toArray()).toEqual([[3]]);
    for (const t of [Q, R, U, S, Vt, e.eigenvalues, e.eigenvectors]) t.dispose();
  });

  test("empty batches give empty results of the right shapes", () => {
    using a = bn.zeros([0, 3, 3]);
    using i = L.inv(a);
    expect(i.shape).toEqual([0, 3, 3]);
    using d = L.det(a);
    expect(d.shape).toEqual([0]);
    const { Q, R } = L.qr(bn.zeros([2, 0, 4, 3]));
    expect(Q.shape).toEqual([2, 0, 4, 3]);
    expect(R.shape).toEqual([2, 0, 3, 3]);
    const { U, S, Vt } = L.svd(a);
    expect([U.shape, S.shape, Vt.shape]).toEqual([[0, 3, 3], [0, 3], [0, 3, 3]]);
    using x = L.solve(a, bn.zeros([0, 3, 2]));
    expect(x.shape).toEqual([0, 3, 2]);
    for (const t of [Q, R, U, S, Vt]) t.dispose();
  });

  test("0x0 matrices: det 1 (as NumPy), inv empty", () => {
    using a = bn.zeros([2, 0, 0]);
    using d = L.det(a);
    expect(d.toArray()).toEqual([1, 1]);
    using i = L.inv(a);
    expect(i.shape).toEqual([2, 0, 0]);
  });

  test("a broadcast (stride-0) batch is read in place", () => {
    using base = bn.tensor([[2, 1], [1, 3]]);
    using a = base.unsqueeze(0).expand([3, 2, 2]);
    using i = L.inv(a);
    expect(i.shape).toEqual([3, 2, 2]);
    const iv = vals(i);
    for (let b = 0; b < 3; b++) near(at(iv, b, 2, 2), [0.6, -0.2, -0.2, 0.4], 1e-7, "broadcast inv");
  });
});

// ---- golden fixtures ----------------------------------------------------------------------------------

interface Golden {
  name: string;
  shape: [number, number];
  a: number[];
  cond: number | null;
  inv?: number[];
  det?: number;
  b?: number[];
  solve?: number[];
  eigvals?: number[];
  svals?: number[];
  cholesky?: number[];
}
const golden = JSON.parse(readFileSync(join(import.meta.dir, "fixtures", "linalg_golden.json"), "utf8")) as { cases: Golden[] };

describe("golden NumPy float64 results for ill-conditioned inputs", () => {
  const E64 = 2 ** -53;
  for (const c of golden.cases) {
    test(c.name, () => {
      const [m, n] = c.shape;
      using a = bn.tensor(Float32Array.from(c.a), { shape: [m, n] });
      // f32 storage is exact: the fixture holds f32 values.
      expect(Array.from(vals(a))).toEqual(c.a);
      const cond = c.cond ?? 1;
      const tol = (ref: number[]) => (200 * n * cond * E64 + 2 * EPS) * Math.max(...ref.map(Math.abs));
      if (c.inv) {
        using x = L.inv(a);
        near(vals(x), c.inv, tol(c.inv), "inv");
      }
      if (c.solve) {
        using b = bn.tensor(Float32Array.from(c.b!));
        using x = L.solve(a, b);
        near(vals(x), c.solve, tol(c.solve), "solve");
      }
      if (c.det !== undefined) {
        using d = L.det(a);
        // det's relative error is about n * cond * eps (the product of U's diagonal).
        const scale = Math.max(Math.abs(c.det), 1e-300);
        expect(Math.abs(num(d) - c.det)).toBeLessThanOrEqual((200 * n * cond * E64 + 2 * EPS) * scale + 1e-6 * E64);
      }
      if (c.eigvals) {
        const e = L.eigh(a);
        // Eigenvalues of a symmetric matrix are well-conditioned: absolute error ~ eps * ||A||.
        near(vals(e.eigenvalues), c.eigvals, 50 * n * E64 * fro(c.a) + 2 * EPS * Math.max(...c.eigvals.map(Math.abs)), "eigenvalues");
        // Repeated eigenvalues: any orthonormal basis of the eigenspace will do.
        const v = vals(e.eigenvectors);
        near(mm(tr(v, n, n), v, n, n, n), eye(n), 30 * n * EPS, "VᵀV - I");
        e.eigenvalues.dispose();
        e.eigenvectors.dispose();
      }
      if (c.svals) {
        using s = L.svdvals(a);
        near(vals(s), c.svals, 50 * Math.max(m, n) * E64 * fro(c.a) + 2 * EPS * c.svals[0]!, "singular values");
        const { U, S, Vt } = L.svd(a, { fullMatrices: false });
        const k = Math.min(m, n);
        const uv = vals(U);
        const sv = vals(S);
        const us = uv.map((x, i) => x * sv[i % k]!);
        near(mm(us, vals(Vt), m, k, n), c.a, 30 * Math.max(m, n) * EPS * fro(c.a), "U·S·Vt - A");
        for (const t of [U, S, Vt]) t.dispose();
      }
      if (c.cholesky) {
        using l = L.cholesky(a);
        near(vals(l), c.cholesky, tol(c.cholesky), "cholesky");
      }
    });
  }
});

// ---- errors -------------------------------------------------------------------------------------------

/** Expects fn to throw `cls` whose message contains every string of `parts`. */
function throwsWith(fn: () => unknown, cls: new (...a: never[]) => Error, parts: string[]): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(cls);
  for (const p of parts) expect((err as Error).message).toContain(p);
}

describe("errors", () => {
  test("non-square input to inv, det, cholesky, eigh and solve is a ShapeError naming the shape", () => {
    using a = bn.zeros([2, 3, 4]);
    for (const [name, f] of [
      ["inv", () => L.inv(a)],
      ["det", () => L.det(a)],
      ["cholesky", () => L.cholesky(a)],
      ["eigh", () => L.eigh(a)],
      ["solve", () => L.solve(a, bn.zeros([3]))],
    ] as const) {
      throwsWith(f, bn.ShapeError, [name, "f32 [2, 3, 4]"]);
    }
  });

  test("fewer than two dimensions is a ShapeError", () => {
    using v = bn.zeros([3]);
    for (const f of [() => L.inv(v), () => L.qr(v), () => L.svd(v), () => L.eigh(v), () => L.det(v), () => L.cholesky(v)]) {
      throwsWith(f, bn.ShapeError, ["f32 [3]"]);
    }
  });

  test("singular matrices: inv and solve raise LinAlgError (op, shape, dtype, batch index); det gives 0", () => {
    using a = bn.tensor([
      [
        [1, 2],
        [3, 4],
      ],
      [
        [1, 2],
        [2, 4],
      ],
    ]);
    const before = Array.from(vals(a));
    throwsWith(() => L.inv(a), bn.LinAlgError, ["inv", "singular", "matrix 1", "f32 [2, 2, 2]"]);
    using b = bn.tensor([1, 1]);
    throwsWith(() => L.solve(a, b), bn.LinAlgError, ["solve", "singular", "a: f32 [2, 2, 2]", "b: f32 [2]"]);
    using d = L.det(a);
    expect(d.toArray()).toEqual([-2, 0]);
    expect(Array.from(vals(a))).toEqual(before);
    using z = bn.zeros([3, 3], { dtype: "f16" });
    throwsWith(() => L.inv(z), bn.LinAlgError, ["inv", "f16 [3, 3]"]);
  });

  test("not positive definite: cholesky raises LinAlgError; the upper triangle is ignored", () => {
    using a = bn.tensor([
      [1, 2],
      [2, 1],
    ]);
    const before = Array.from(vals(a));
    throwsWith(() => L.cholesky(a), bn.LinAlgError, ["cholesky", "not positive definite", "f32 [2, 2]"]);
    expect(Array.from(vals(a))).toEqual(before);
    // The upper 100 would make this indefinite; only the lower triangle counts.
    using b = bn.tensor([
      [4, 100],
      [2, 3],
    ]);
    using l = L.cholesky(b);
    near(vals(l), [2, 0, 1, Math.SQRT2], 1e-6, "lower only");
  });

  test("NaN input: svd, eigh and the spectral norms do not converge (LinAlgError)", () => {
    using a = bn.tensor([
      [1, NaN],
      [NaN, 1],
    ]);
    throwsWith(() => L.svd(a), bn.LinAlgError, ["svd", "did not converge", "f32 [2, 2]"]);
    throwsWith(() => L.eigh(a), bn.LinAlgError, ["eigh", "did not converge"]);
    throwsWith(() => L.norm(a, 2), bn.LinAlgError, ["norm"]);
  });

  test("solve: mismatched rows and non-broadcasting batches are ShapeErrors", () => {
    using a = bn.zeros([2, 3, 3]);
    throwsWith(() => L.solve(a, bn.zeros([4])), bn.ShapeError, ["solve", "3 rows", "b: f32 [4]"]);
    throwsWith(() => L.solve(a, bn.zeros([3, 3, 1])), bn.ShapeError, ["solve", "do not broadcast", "[2]", "[3]"]);
    throwsWith(() => L.solve(a, bn.tensor(1)), bn.ShapeError, ["solve"]);
  });

  test("bad options and orders are ValueErrors; non-tensors DTypeErrors; disposed tensors DisposedTensorErrors", () => {
    using a = bn.zeros([3, 3]);
    throwsWith(() => L.qr(a, { mode: "r" as "reduced" }), bn.ValueError, ["qr", "mode"]);
    throwsWith(() => L.svd(a, { fullMatrices: 1 as unknown as boolean }), bn.ValueError, ["svd"]);
    throwsWith(() => L.norm(a, "fro", 0), bn.ValueError, ["norm", "vectors"]);
    throwsWith(() => L.norm(a, 3, [0, 1]), bn.ValueError, ["norm", "matrices"]);
    throwsWith(() => L.norm(a, 2, [1, 1]), bn.ValueError, ["duplicate"]);
    throwsWith(() => L.norm(a, 2, [0, 1, 0] as unknown as number[]), bn.ValueError, ["norm"]);
    throwsWith(() => L.norm(a, "max" as "fro"), bn.ValueError, ["norm"]);
    throwsWith(() => L.norm(a, NaN), bn.ValueError, ["NaN"]);
    throwsWith(() => L.norm(a, 2, 5), bn.ShapeError, ["norm"]);
    using c = bn.zeros([2, 2, 2]);
    throwsWith(() => L.norm(c, 2), bn.ValueError, ["norm", "f32 [2, 2, 2]"]);
    using e = bn.zeros([0, 3]);
    throwsWith(() => L.norm(e, Infinity, 0), bn.ValueError, ["empty"]);
    throwsWith(() => L.norm(e, 1), bn.ValueError, ["empty"]);
    using fz = L.norm(e, "fro");
    expect(num(fz)).toBe(0);
    throwsWith(() => L.inv([[1]] as unknown as bn.Tensor), bn.DTypeError, ["inv"]);
    const d = bn.eye(2);
    d.dispose();
    expect(() => L.inv(d)).toThrow(bn.DisposedTensorError);
  });

  test("refused scratch memory is an OutOfMemoryError; failures leak nothing", () => {
    using a = bn.randn([96, 96], { seed: 1 });
    using sing = bn.zeros([4, 4]);
    // Warm up and collect, then check that failing calls leave the pool as they found it.
    L.inv(a).dispose();
    Bun.gc(true);
    const before = bn.memory.stats().bytesInUse;
    for (let i = 0; i < 3; i++) expect(() => L.inv(sing)).toThrow(bn.LinAlgError);
    expect(bn.memory.stats().bytesInUse).toBe(before);
    // Room for the output (36 KiB) but not for the f64 scratch (~150 KiB).
    bn.memory.setLimit(before + 64 * 1024);
    try {
      throwsWith(() => L.inv(a), bn.OutOfMemoryError, ["inv"]);
    } finally {
      bn.memory.setLimit(0);
    }
    // At the limit the pool may collect earlier garbage too, so at most what it was.
    expect(bn.memory.stats().bytesInUse).toBeLessThanOrEqual(before);
  });
});

// ---- every SIMD level ---------------------------------------------------------------------------------

describe("every compiled SIMD level the CPU runs", () => {
  const caps = bn.deviceCapabilities();
  const levels = runnableLevels();
  test("levels exist", () => expect(levels).toContain(caps.simdDetected));
  for (const level of levels) {
    test(`${level}: inv, cholesky (blocked sizes), qr, svd and eigh reconstruct`, () => {
      bn.setSimdLevel(level);
      try {
        for (const n of [5, 33, 100]) {
          const [a, A] = input([], n, n, "transposed", (_, i, j) => noise(n)(i * n + j));
          using x = L.inv(a);
          const X = vals(x);
          near(mm(A, X, n, n, n), eye(n), 20 * n * EPS * fro(A) * fro(X), `${level} inv ${n}`);
          const spd = mm(tr(A, n, n), A, n, n, n);
          for (let i = 0; i < n; i++) spd[i * n + i]! += n;
          using s = bn.tensor(spd, { shape: [n, n] });
          const S = vals(s);
          using l = L.cholesky(s);
          const Lv = vals(l);
          near(mm(Lv, tr(Lv, n, n), n, n, n), S, 20 * n * EPS * fro(S), `${level} cholesky ${n}`);
          const { U, S: sv, Vt } = L.svd(a);
          const uv = vals(U);
          const sg = vals(sv);
          const us = uv.map((v, i) => v * sg[i % n]!);
          near(mm(us, vals(Vt), n, n, n), A, 30 * n * EPS * fro(A), `${level} svd ${n}`);
          const e = L.eigh(s);
          const V = vals(e.eigenvectors);
          const w = vals(e.eigenvalues);
          near(mm(V.map((v, i) => v * w[i % n]!), tr(V, n, n), n, n, n), S, 30 * n * EPS * fro(S), `${level} eigh ${n}`);
          const { Q, R } = L.qr(a);
          near(mm(vals(Q), vals(R), n, n, n), A, 30 * n * EPS * fro(A), `${level} qr ${n}`);
          for (const t of [U, sv, Vt, e.eigenvalues, e.eigenvectors, Q, R, a]) t.dispose();
        }
      } finally {
        bn.setSimdLevel(caps.simdDetected);
      }
    });
  }
});
