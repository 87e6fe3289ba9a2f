// Float64 references of the differentiable ops and a gradient checker: the analytic gradient the
// library's autograd computes (f32 kernels) against central finite differences of these
// references in float64. Written from the definitions, independent of the engine.
import { expect } from "bun:test";
import * as bn from "../src/index.ts";
import { Ref, toF32 } from "./helpers.ts";

export type F = (x: number) => number;

export function broadcastShape(a: number[], b: number[]): number[] {
  const n = Math.max(a.length, b.length);
  return Array.from({ length: n }, (_, i) => {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    return x === 1 ? y : x;
  });
}

export const un = (a: Ref, f: F) => new Ref(a.shape, a.data.map(f));

export function bin(a: Ref, b: Ref, f: (x: number, y: number) => number): Ref {
  const s = broadcastShape(a.shape, b.shape);
  const A = a.broadcastTo(s);
  const B = b.broadcastTo(s);
  return new Ref(s, A.data.map((x, i) => f(x, B.data[i]!)));
}

/** Reduction over `axes` (all when null) with `f` of the reduced values. */
export function red(x: Ref, axes: number[] | null, keepdims: boolean, f: (v: number[]) => number): Ref {
  const nd = x.shape.length;
  const ax = axes === null ? [...Array(nd).keys()] : axes.map((a) => (a < 0 ? a + nd : a));
  const keepShape = x.shape.map((d, i) => (ax.includes(i) ? 1 : d));
  const redShape = ax.map((a) => x.shape[a]!);
  const out = Ref.build(keepShape, (idx) => {
    const vals: number[] = [];
    const sub = new Array<number>(ax.length).fill(0);
    const total = redShape.reduce((p, q) => p * q, 1);
    for (let k = 0; k < total; k++) {
      const full = idx.slice();
      ax.forEach((a, j) => (full[a] = sub[j]!));
      vals.push(x.at(full));
      for (let j = ax.length - 1; j >= 0; j--) {
        if (++sub[j]! < redShape[j]!) break;
        sub[j] = 0;
      }
    }
    return f(vals);
  });
  return keepdims ? out : new Ref(x.shape.filter((_, i) => !ax.includes(i)), out.data);
}

/** `f` applied to every 1-D lane along `axis` (returning a lane of the same length). */
export function lanes(x: Ref, axis: number, f: (v: number[]) => number[]): Ref {
  const nd = x.shape.length;
  const a = axis < 0 ? axis + nd : axis;
  const out = new Float64Array(x.size);
  const st = x.strides();
  const n = x.shape[a]!;
  for (let base = 0; base < x.size; base++) {
    if (Math.floor(base / st[a]!) % n !== 0) continue; // first element of its lane
    const v = Array.from({ length: n }, (_, k) => x.data[base + k * st[a]!]!);
    f(v).forEach((y, k) => (out[base + k * st[a]!] = y));
  }
  return new Ref(x.shape, out);
}

export const sumv = (v: number[]) => v.reduce((p, q) => p + q, 0);
export const meanv = (v: number[]) => sumv(v) / v.length;
export const varv = (v: number[], ddof = 0) => {
  const m = meanv(v);
  return sumv(v.map((x) => (x - m) ** 2)) / (v.length - ddof);
};

export function softmaxRef(x: Ref, axis: number, log: boolean): Ref {
  return lanes(x, axis, (v) => {
    const m = Math.max(...v);
    const lse = m + Math.log(sumv(v.map((y) => Math.exp(y - m))));
    return v.map((y) => (log ? y - lse : Math.exp(y - lse)));
  });
}

export function normRef(x: Ref, w: Ref | null, b: Ref | null, eps: number, kind: "layer" | "rms"): Ref {
  const n = x.shape[x.shape.length - 1]!;
  const y = lanes(x, -1, (v) => {
    const m = kind === "layer" ? meanv(v) : 0;
    const r = 1 / Math.sqrt(meanv(v.map((t) => (t - m) ** 2)) + eps);
    return v.map((t) => (t - m) * r);
  });
  return new Ref(y.shape, y.data.map((t, i) => t * (w ? w.data[i % n]! : 1) + (b ? b.data[i % n]! : 0)));
}

/** NumPy matmul of float64 arrays (1-D promotion, batch broadcasting). */
export function matmulRef(a: Ref, b: Ref): Ref {
  const A = a.shape.length === 1 ? new Ref([1, a.shape[0]!], a.data) : a;
  const B = b.shape.length === 1 ? new Ref([b.shape[0]!, 1], b.data) : b;
  const m = A.shape[A.shape.length - 2]!;
  const k = A.shape[A.shape.length - 1]!;
  const n = B.shape[B.shape.length - 1]!;
  const batch = broadcastShape(A.shape.slice(0, -2), B.shape.slice(0, -2));
  const Ab = A.broadcastTo([...batch, m, k]);
  const Bb = B.broadcastTo([...batch, k, n]);
  const nb = batch.reduce((p, q) => p * q, 1);
  const out = new Float64Array(nb * m * n);
  for (let t = 0; t < nb; t++)
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let q = 0; q < k; q++) s += Ab.data[t * m * k + i * k + q]! * Bb.data[t * k * n + q * n + j]!;
        out[t * m * n + i * n + j] = s;
      }
  const shape = [...batch, ...(a.shape.length > 1 ? [m] : []), ...(b.shape.length > 1 ? [n] : [])];
  return new Ref(shape, out);
}

/** Deterministic values in [-scale, scale) (rounded to f32 so the engine and the reference see the same inputs). */
export function values(n: number, seed: number, scale = 2, offset = 0): Float64Array {
  let s = (seed * 2654435761 + 12345) >>> 0;
  return Float64Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return toF32(offset + ((s / 2 ** 32) * 2 - 1) * scale);
  });
}

export interface CheckInput {
  shape: number[];
  /** Values (default: uniform in [-2, 2)). */
  data?: Float64Array;
  /** Make the leaf a transposed (strided) view of its storage. */
  strided?: boolean;
  /** Does not require grad (a constant operand). */
  constant?: boolean;
}

/**
 * Checks d(sum(w · f(inputs)))/d(input) from the library's backward against central differences
 * of `ref` in float64, for every input that requires grad. Also checks that the forward values
 * agree. (Memory release is checked in autograd.test.ts with explicitly disposed intermediates:
 * the ones made inside `lib` here are left to the garbage collector.)
 */
export function gradcheck(
  lib: (xs: bn.Tensor[]) => bn.Tensor,
  ref: (xs: Ref[]) => Ref,
  inputs: CheckInput[],
  seed: number,
  tol = { atol: 2e-3, rtol: 2e-3 },
): void {
  const refs = inputs.map((inp, k) => new Ref(inp.shape, inp.data ?? values(inp.shape.reduce((p, q) => p * q, 1), seed * 31 + k)));
  const leaves = inputs.map((inp, k) => {
    const r = refs[k]!;
    let t: bn.Tensor;
    if (inp.strided && r.shape.length >= 2) {
      // Store the transpose of the last two axes, then view it back: a leaf with swapped strides.
      const perm = [...r.shape.keys()];
      const nd = perm.length;
      [perm[nd - 2], perm[nd - 1]] = [perm[nd - 1]!, perm[nd - 2]!];
      const stored = r.permute(perm);
      using base = bn.tensor(stored.data, { shape: stored.shape });
      t = base.transpose(-1, -2);
      if (r.shape[nd - 1]! > 1 && r.shape[nd - 2]! > 1) expect(t.isContiguous()).toBe(false);
    } else t = bn.tensor(r.data, { shape: r.shape });
    if (!inp.constant) t.requiresGrad = true;
    return t;
  });
  const y = lib(leaves);
  const yRef = ref(refs);
  expect(y.shape).toEqual(yRef.shape);
  const yv = Array.from(y._toFloat64("test"));
  yv.forEach((v, i) => expect(Math.abs(v - yRef.data[i]!)).toBeLessThanOrEqual(tol.atol + tol.rtol * Math.abs(yRef.data[i]!)));
  const w = values(yRef.size, seed * 7 + 3, 1);
  const loss = (xs: Ref[]) => {
    const r = ref(xs);
    let s = 0;
    for (let i = 0; i < r.size; i++) s += w[i]! * r.data[i]!;
    return s;
  };
  {
    using wt = bn.tensor(w, { shape: y.shape });
    y.backward(wt);
  }
  y.dispose();
  inputs.forEach((inp, k) => {
    const leaf = leaves[k]!;
    if (inp.constant) {
      expect(leaf.grad).toBeNull();
      return;
    }
    const g = leaf.grad;
    expect(g).not.toBeNull();
    expect(g!.shape).toEqual(inp.shape);
    const got = Array.from(g!._toFloat64("test"));
    const r = refs[k]!;
    for (let j = 0; j < r.size; j++) {
      const h = 1e-6 * Math.max(1, Math.abs(r.data[j]!));
      const orig = r.data[j]!;
      r.data[j] = orig + h;
      const lp = loss(refs);
      r.data[j] = orig - h;
      const lm = loss(refs);
      r.data[j] = orig;
      const num = (lp - lm) / (2 * h);
      if (!(Math.abs(got[j]! - num) <= tol.atol + tol.rtol * Math.abs(num))) {
        throw new Error(`input ${k} ${JSON.stringify(inp.shape)} element ${j}: autograd ${got[j]} vs finite differences ${num}`);
      }
    }
  });
  for (const l of leaves) l.dispose();
}
