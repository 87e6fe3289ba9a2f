// The training kernels against independent float64 references written here: softmax /
// logSoftmax backward, layerNorm / rmsNorm backward (also against finite differences of a float64
// forward), take / indexAdd_, and SGD / AdamW steps; plus the typed errors of bad inputs.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import * as bn from "../src/index.ts";
import { indexAdd_, take } from "../src/ops/gather.ts";
import { normBackward, softmaxBackward } from "../src/ops/grad_kernels.ts";
import { adamwUpdate_, sgdUpdate_ } from "../src/optim/update.ts";
import { Ref, arbPerm, arbShape, castRef, runnableLevels } from "./helpers.ts";

const FLOAT = ["f32", "f16", "bf16"] as const;
type Float = (typeof FLOAT)[number];
const RTOL: Record<Float, number> = { f32: 4e-6, f16: 2e-3, bf16: 1.6e-2 };

const vals = (t: bn.Tensor) => Array.from(t._toFloat64("test"));

/** Pseudo-random values in [lo, hi) from a seed (deterministic, independent of the engine). */
function noise(seed: number, lo: number, hi: number): (i: number) => number {
  return (i) => {
    const s = Math.sin((i + 1) * 12.9898 + seed * 78.233) * 43758.5453;
    return lo + (s - Math.floor(s)) * (hi - lo);
  };
}

/** A tensor of dtype d from values, and the Ref of the values it holds (rounded to d). */
function make(shape: number[], d: Float, f: (i: number) => number): [bn.Tensor, Ref] {
  const n = shape.reduce((a, b) => a * b, 1);
  const raw = Float64Array.from({ length: n }, (_, i) => f(i));
  return [bn.tensor(raw, { shape, dtype: d }), new Ref(shape, raw.map((v) => castRef(v, d)))];
}

/** A view of `shape` whose memory is laid out in axis order `perm` (a permuted contiguous base). */
function viewOf(shape: number[], d: Float, f: (i: number) => number, perm: number[]): [bn.Tensor, Ref] {
  const bshape = new Array<number>(shape.length);
  perm.forEach((p, i) => (bshape[p] = shape[i]!));
  const [base, ref] = make(bshape, d, f);
  const v = base.permute(perm);
  base.dispose();
  return [v, ref.permute(perm)];
}

/** For each 1-d slice along `ax` of the refs (same shape): out slice = f(slices). */
function alongAxis(refs: Ref[], ax: number, f: (rows: number[][]) => number[]): Ref {
  const r0 = refs[0]!;
  const out = new Float64Array(r0.size);
  const st = r0.strides();
  const len = r0.shape[ax]!;
  if (len === 0 || r0.size === 0) return new Ref(r0.shape, out);
  const outer = r0.shape.map((d, i) => (i === ax ? 1 : d));
  const idx = new Array<number>(outer.length).fill(0);
  const count = outer.reduce((a, b) => a * b, 1);
  for (let k = 0; k < count; k++) {
    let base = 0;
    for (let i = 0; i < idx.length; i++) base += idx[i]! * st[i]!;
    const rows = refs.map((r) => Array.from({ length: len }, (_, j) => r.data[base + j * st[ax]!]!));
    const res = f(rows);
    for (let j = 0; j < len; j++) out[base + j * st[ax]!] = res[j]!;
    for (let i = idx.length - 1; i >= 0; i--) {
      if (++idx[i]! < outer[i]!) break;
      idx[i] = 0;
    }
  }
  return new Ref(r0.shape, out);
}

/** got ≈ want elementwise: |got - want| <= rtol * |want| + atol[i]. */
function expectClose(got: number[], want: number[], rtol: number, atol: number | number[]): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < got.length; i++) {
    const a = typeof atol === "number" ? atol : atol[i]!;
    if (!(Math.abs(got[i]! - want[i]!) <= rtol * Math.abs(want[i]!) + a)) expect([i, got[i]]).toEqual([i, want[i]]);
  }
}

function softmaxBackRef(y: number[], g: number[], log: boolean): number[] {
  const s = y.reduce((a, yy, j) => a + (log ? g[j]! : g[j]! * yy), 0);
  return y.map((yy, j) => (log ? g[j]! - Math.exp(yy) * s : yy * (g[j]! - s)));
}

describe("softmaxBackward", () => {
  test("matches the float64 definition: random shapes, axes, dtypes and layouts of y and g", () => {
    fc.assert(
      fc.property(
        arbShape(1, 4, 6).chain((s) => fc.tuple(fc.constant(s), arbPerm(s.length), arbPerm(s.length), fc.integer({ min: -s.length, max: s.length - 1 }))),
        fc.constantFrom(...FLOAT),
        fc.boolean(),
        fc.integer({ min: 0, max: 1000 }),
        ([shape, py, pg, axis], d, log, seed) => {
          const [y, yr] = viewOf(shape, d, log ? noise(seed, -4, 0) : noise(seed, 0, 1), py);
          const [g, gr] = viewOf(shape, d, noise(seed + 1, -2, 2), pg);
          const dx = softmaxBackward(y, g, axis, log);
          try {
            expect(dx.shape).toEqual(shape);
            expect(dx.dtype).toBe(d);
            expect(dx.isContiguous()).toBe(true);
            const ax = axis < 0 ? axis + shape.length : axis;
            const want = alongAxis([yr, gr], ax, ([yy, gg]) => softmaxBackRef(yy!, gg!, log));
            const scale = alongAxis([yr, gr], ax, ([yy, gg]) => {
              const sa = yy!.reduce((a, v, j) => a + Math.abs(log ? gg![j]! : gg![j]! * v), 0);
              return yy!.map((v, j) => (log ? Math.abs(gg![j]!) + Math.exp(v) * sa : v * (Math.abs(gg![j]!) + sa)));
            });
            expectClose(vals(dx), Array.from(want.data), RTOL[d], Array.from(scale.data, (s) => 1e-5 * s));
          } finally {
            dx.dispose();
            y.dispose();
            g.dispose();
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  test("axis 0 and -1 of a transposed y, for softmax and logSoftmax outputs", () => {
    for (const log of [false, true]) {
      for (const axis of [0, -1]) {
        using x0 = bn.tensor(Float64Array.from({ length: 37 * 21 }, (_, i) => noise(3, -3, 3)(i)), { shape: [37, 21] });
        using x = x0.transpose(); // [21, 37], strided
        using y = log ? bn.logSoftmax(x, { axis }) : bn.softmax(x, { axis });
        using yt = y.transpose().contiguous().transpose(); // same values, transposed memory
        const [g, gr] = make([21, 37], "f32", noise(4, -1, 1));
        using dx = softmaxBackward(yt, g, axis, log);
        const yr = new Ref([21, 37], Float64Array.from(vals(y)));
        const want = alongAxis([yr, gr], axis < 0 ? 1 : 0, ([yy, gg]) => softmaxBackRef(yy!, gg!, log));
        expectClose(vals(dx), Array.from(want.data), 1e-5, 1e-6);
        g.dispose();
      }
    }
  });

  test("a g of another float dtype is converted; bad inputs throw typed errors", () => {
    using y = bn.tensor([[0.2, 0.3, 0.5]], { dtype: "f32" });
    using g16 = bn.tensor([[1, -1, 2]], { dtype: "bf16" });
    using dx = softmaxBackward(y, g16, -1, false);
    expectClose(vals(dx), softmaxBackRef([0.2, 0.3, 0.5].map((v) => castRef(v, "f32")), [1, -1, 2], false), 1e-6, 1e-7);
    using g2 = bn.tensor([[1, 2]]);
    expect(() => softmaxBackward(y, g2, -1, false)).toThrow(bn.ShapeError);
    expect(() => softmaxBackward(y, g16, 2, false)).toThrow(bn.ShapeError);
    using yi = bn.tensor([[1, 2, 3]], { dtype: "i32" });
    expect(() => softmaxBackward(yi, g16, 0, true)).toThrow(bn.DTypeError);
    expect(() => softmaxBackward(y, yi, 0, true)).toThrow(bn.DTypeError);
    using s = bn.tensor(1);
    expect(() => softmaxBackward(s, s, 0, false)).toThrow(bn.ShapeError);
  });
});

/** dx, dweight, dbias of one row, from the definitions (float64). */
function normBackRef(kind: "layer" | "rms", x: number[], g: number[], w: number[] | null, eps: number) {
  const n = x.length;
  const mean = kind === "layer" ? x.reduce((a, v) => a + v, 0) / n : 0;
  const r = 1 / Math.sqrt(x.reduce((a, v) => a + (v - mean) ** 2, 0) / n + eps);
  const xh = x.map((v) => (v - mean) * r);
  const gh = g.map((v, j) => v * (w ? w[j]! : 1));
  const m1 = kind === "layer" ? gh.reduce((a, v) => a + v, 0) / n : 0;
  const m2 = gh.reduce((a, v, j) => a + v * xh[j]!, 0) / n;
  return {
    dx: gh.map((v, j) => r * (v - m1 - xh[j]! * m2)),
    scale: gh.map((v, j) => r * (Math.abs(v) + Math.abs(m1) + Math.abs(xh[j]! * m2))),
    gx: g.map((v, j) => v * xh[j]!),
  };
}

/** The float64 forward, for finite differences. */
function normFwd(kind: "layer" | "rms", x: number[], w: number[] | null, eps: number): number[] {
  const n = x.length;
  const mean = kind === "layer" ? x.reduce((a, v) => a + v, 0) / n : 0;
  const r = 1 / Math.sqrt(x.reduce((a, v) => a + (v - mean) ** 2, 0) / n + eps);
  return x.map((v, j) => (v - mean) * r * (w ? w[j]! : 1));
}

describe("normBackward", () => {
  test("dx, dweight and dbias match the float64 definition: layer/rms, with and without weight, transposed x", () => {
    fc.assert(
      fc.property(
        arbShape(1, 3, 9, false).chain((s) => fc.tuple(fc.constant(s), arbPerm(s.length), arbPerm(s.length))),
        fc.constantFrom(...FLOAT),
        fc.constantFrom("layer" as const, "rms" as const),
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 0, max: 1000 }),
        ([shape, px, pg], d, kind, hasW, params, seed) => {
          const n = shape[shape.length - 1]!;
          const [x, xr] = viewOf(shape, d, noise(seed, -3, 3), px);
          const [g, gr] = viewOf(shape, d, noise(seed + 1, -1, 1), pg);
          const [w, wr] = make([n], "f32", noise(seed + 2, 0.5, 1.5));
          const eps = 1e-5;
          const res = normBackward(kind, x, g, hasW ? w : null, eps, params);
          try {
            expect(res.dx.shape).toEqual(shape);
            expect(res.dx.dtype).toBe(d);
            const last = shape.length - 1;
            const wv = hasW ? Array.from(wr.data) : null;
            const want = alongAxis([xr, gr], last, ([xx, gg]) => normBackRef(kind, xx!, gg!, wv, eps).dx);
            const scale = alongAxis([xr, gr], last, ([xx, gg]) => normBackRef(kind, xx!, gg!, wv, eps).scale);
            expectClose(vals(res.dx), Array.from(want.data), RTOL[d], Array.from(scale.data, (s) => 3e-5 * s));
            if (!params) {
              expect(res.dweight).toBeNull();
              expect(res.dbias).toBeNull();
              return;
            }
            const gx = alongAxis([xr, gr], last, ([xx, gg]) => normBackRef(kind, xx!, gg!, wv, eps).gx);
            const dw = new Array<number>(n).fill(0);
            const db = new Array<number>(n).fill(0);
            const mag = new Array<number>(n).fill(0);
            for (let i = 0; i < gx.size; i++) {
              dw[i % n]! += gx.data[i]!;
              db[i % n]! += gr.data[i]!;
              mag[i % n]! += Math.abs(gx.data[i]!) + Math.abs(gr.data[i]!);
            }
            expect(res.dweight!.shape).toEqual([n]);
            expect(res.dweight!.dtype).toBe("f32");
            expectClose(vals(res.dweight!), dw, 0, mag.map((m) => 3e-5 * m + 1e-6));
            if (kind === "layer") expectClose(vals(res.dbias!), db, 0, mag.map((m) => 1e-6 * m + 1e-6));
            else expect(res.dbias).toBeNull();
          } finally {
            res.dx.dispose();
            res.dweight?.dispose();
            res.dbias?.dispose();
            for (const t of [x, g, w]) t.dispose();
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  test("dx agrees with central differences of a float64 forward", () => {
    for (const kind of ["layer", "rms"] as const) {
      const shape = [3, 5];
      const [x, xr] = make(shape, "f32", noise(9, -2, 2));
      const [g, gr] = make(shape, "f32", noise(10, -1, 1));
      const [w, wr] = make([5], "f32", noise(11, 0.5, 1.5));
      const wv = Array.from(wr.data);
      const res = normBackward(kind, x, g, w, 1e-5, true);
      const got = vals(res.dx);
      const loss = (xs: number[]) => {
        let s = 0;
        for (let r = 0; r < 3; r++) {
          const y = normFwd(kind, xs.slice(r * 5, r * 5 + 5), wv, 1e-5);
          for (let j = 0; j < 5; j++) s += y[j]! * gr.data[r * 5 + j]!;
        }
        return s;
      };
      const xs = Array.from(xr.data);
      for (let i = 0; i < xs.length; i++) {
        const h = 1e-6;
        const up = xs.slice();
        const dn = xs.slice();
        up[i]! += h;
        dn[i]! -= h;
        const fd = (loss(up) - loss(dn)) / (2 * h);
        expect(Math.abs(got[i]! - fd)).toBeLessThan(1e-4 * Math.max(1, Math.abs(fd)));
      }
      for (const t of [x, g, w, res.dx, res.dweight!]) t.dispose();
      res.dbias?.dispose();
    }
  });

  test("many rows (threads, chunked partials): dweight/dbias are the same bits on every call", () => {
    const [x] = make([4000, 24], "f32", noise(12, -3, 3));
    const [g] = make([4000, 24], "f32", noise(13, -1, 1));
    const a = normBackward("layer", x, g, null, 1e-5, true);
    const b = normBackward("layer", x, g, null, 1e-5, true);
    expect(Array.from(a.dweight!.data as Float32Array)).toEqual(Array.from(b.dweight!.data as Float32Array));
    expect(Array.from(a.dbias!.data as Float32Array)).toEqual(Array.from(b.dbias!.data as Float32Array));
    expect(Array.from(a.dx.data as Float32Array)).toEqual(Array.from(b.dx.data as Float32Array));
    for (const t of [x, g, a.dx, a.dweight!, a.dbias!, b.dx, b.dweight!, b.dbias!]) t.dispose();
  });

  test("empty rows give zero dweight/dbias; bad inputs throw typed errors", () => {
    using x0 = bn.zeros([0, 4]);
    const r = normBackward("layer", x0, x0, null, 1e-5, true);
    expect(vals(r.dweight!)).toEqual([0, 0, 0, 0]);
    expect(vals(r.dbias!)).toEqual([0, 0, 0, 0]);
    for (const t of [r.dx, r.dweight!, r.dbias!]) t.dispose();
    using x = bn.ones([2, 3]);
    using g = bn.ones([3, 2]);
    expect(() => normBackward("rms", x, g, null, 1e-5, false)).toThrow(bn.ShapeError);
    using w = bn.ones([2]);
    expect(() => normBackward("layer", x, x, w, 1e-5, false)).toThrow(bn.ShapeError);
    using xi = bn.ones([2, 3], { dtype: "i32" });
    expect(() => normBackward("layer", xi, x, null, 1e-5, false)).toThrow(bn.DTypeError);
    expect(() => normBackward("layer", x, xi, null, 1e-5, false)).toThrow(bn.DTypeError);
    expect(() => normBackward("layer", x, x, null, -1, false)).toThrow(bn.ValueError);
    expect(() => normBackward("rms", x, x, xi.reshape([6]).slice([[0, 3]]), 1e-5, false)).toThrow(bn.DTypeError);
  });
});

describe("take", () => {
  test("NumPy take: negative indices, axis 1, 2-d indices, any dtype, strided x", () => {
    fc.assert(
      fc.property(
        arbShape(1, 3, 5, false).chain((s) => fc.tuple(fc.constant(s), fc.integer({ min: -s.length, max: s.length - 1 }))),
        fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 2 }),
        fc.constantFrom("f32", "bf16", "i32", "u8", "bool", "i16"),
        fc.constantFrom("i32", "i8", "u16", "i16", "u32", "u8"),
        fc.boolean(),
        fc.integer({ min: 0, max: 1000 }),
        (shape, ishape, xd, id, transposed, seed) => {
          const [xshape, axis] = shape;
          const ax = axis < 0 ? axis + xshape.length : axis;
          const len = xshape[ax]!;
          const ni = ishape.reduce((a, b) => a * b, 1);
          const signed = id.startsWith("i");
          const iv = Array.from({ length: ni }, (_, i) => {
            const k = Math.floor(noise(seed, 0, len)(i));
            return signed && i % 2 === 1 ? k - len : k;
          });
          const ref = Ref.build(xshape, (idx) => idx.reduce((a, v, i) => a * 7 + v + i, 0) % 100);
          const data = xd === "bool" ? ref.data.map((v) => v % 2) : ref.data;
          const rev = [...xshape.keys()].reverse();
          using x0 = bn.tensor(data, { shape: xshape, dtype: xd as bn.DType });
          using xt = x0.permute(rev).contiguous();
          using x = transposed ? xt.permute(rev) : x0.reshape(xshape); // same values, strided or not
          using ind = bn.tensor(iv, { shape: ishape, dtype: id as bn.DType });
          using out = take(x, ind, axis);
          const oshape = [...xshape.slice(0, ax), ...ishape, ...xshape.slice(ax + 1)];
          expect(out.shape).toEqual(oshape);
          expect(out.dtype).toBe(xd);
          const want = Ref.build(oshape, (o) => {
            const pre = o.slice(0, ax);
            const ii = o.slice(ax, ax + ishape.length);
            const post = o.slice(ax + ishape.length);
            let flat = 0;
            for (let k = 0; k < ishape.length; k++) flat = flat * ishape[k]! + ii[k]!;
            const v = iv[ishape.length === 0 ? 0 : flat]!;
            const src = [...pre, v < 0 ? v + len : v, ...post];
            return new Ref(xshape, data).at(src);
          });
          expect(vals(out)).toEqual(Array.from(want.data));
        },
      ),
      { numRuns: 150 },
    );
  });

  test("embedding rows: take(table, ids) along axis 0", () => {
    const [table, tr] = make([50, 16], "f32", noise(20, -1, 1));
    using ids = bn.tensor([[3, 49, -1], [0, 3, 7]], { dtype: "i32" });
    using e = take(table, ids);
    expect(e.shape).toEqual([2, 3, 16]);
    const rows = [3, 49, 49, 0, 3, 7];
    expect(vals(e)).toEqual(rows.flatMap((r) => Array.from(tr.data.subarray(r * 16, r * 16 + 16))));
    table.dispose();
  });

  test("an out-of-range index is a ShapeError naming it and the axis size; bad index dtypes are DTypeErrors", () => {
    using x = bn.tensor([[1, 2, 3], [4, 5, 6]]);
    using bad = bn.tensor([0, 3, 9], { dtype: "i32" });
    expect(() => take(x, bad, 1)).toThrow(bn.ShapeError);
    expect(() => take(x, bad, 1)).toThrow(/index 3 .*size 3/);
    using neg = bn.tensor([-3], { dtype: "i8" });
    expect(() => take(x, neg, 0)).toThrow(/index -3 .*size 2/);
    expect(() => take(x, neg, 2)).toThrow(bn.ShapeError);
    using fl = bn.tensor([0, 1]);
    expect(() => take(x, fl, 0)).toThrow(bn.DTypeError);
    using bo = bn.tensor([true, false]);
    expect(() => take(x, bo, 0)).toThrow(bn.DTypeError);
  });
});

describe("indexAdd_", () => {
  test("repeated indices accumulate along axis 0 and 1 (float64 reference)", () => {
    for (const [tshape, axis, idxv] of [
      [[5, 4], 0, [1, 3, 1, -1, 1, 0]],
      [[3, 6, 2], 1, [5, 5, 0, -6, 2]],
      [[4, 3], 1, [2, 2, 2]],
      [[300, 40], 0, Array.from({ length: 900 }, (_, i) => (i * 7) % 300)],
    ] as [number[], number, number[]][]) {
      const [t, tr] = make(tshape, "f32", noise(30, -1, 1));
      const sshape = tshape.map((d, i) => (i === axis ? idxv.length : d));
      const [s, sr] = make(sshape, "f32", noise(31, -1, 1));
      using ind = bn.tensor(idxv, { dtype: "i32" });
      const want = Float64Array.from(tr.data);
      const tst = tr.strides();
      const sst = sr.strides();
      for (let k = 0; k < sr.size; k++) {
        const sidx = sst.map((st, i) => Math.floor(k / st) % sshape[i]!);
        const j = sidx[axis]!;
        const tidx = sidx.slice();
        tidx[axis] = idxv[j]! < 0 ? idxv[j]! + tshape[axis]! : idxv[j]!;
        want[tidx.reduce((a, v, i) => a + v * tst[i]!, 0)]! += sr.data[k]!;
      }
      const r = indexAdd_(t, axis, ind, s);
      expect(r).toBe(t);
      expectClose(vals(t), Array.from(want), 0, 2e-6 * (idxv.length + 1));
      t.dispose();
      s.dispose();
    }
  });

  test("half-type target, strided f32 source", () => {
    using t = bn.zeros([3, 4], { dtype: "bf16" });
    using s0 = bn.tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]]); // [4, 3]
    using s = s0.transpose(); // [3, 4] strided
    using ind = bn.tensor([0, 0, 2, 1], { dtype: "u8" });
    indexAdd_(t, 1, ind, s);
    // s[i][j] = s0[j][i]: t[i][0] = s[i][0] + s[i][1], t[i][1] = s[i][3], t[i][2] = s[i][2]
    expect(t.toArray()).toEqual([
      [5, 10, 7, 0],
      [7, 11, 8, 0],
      [9, 12, 9, 0],
    ]);
  });

  test("errors: non-contiguous target, wrong src shape, out-of-range index (target unchanged), dtypes", () => {
    using t = bn.zeros([4, 3]);
    using ind = bn.tensor([0, 5], { dtype: "i32" });
    using s = bn.ones([2, 3]);
    expect(() => indexAdd_(t, 0, ind, s)).toThrow(/index 5 .*size 4/);
    expect(vals(t).every((v) => v === 0)).toBe(true);
    using ok = bn.tensor([0, 1], { dtype: "i32" });
    using sBad = bn.ones([3, 3]);
    expect(() => indexAdd_(t, 0, ok, sBad)).toThrow(bn.ShapeError);
    using tt = t.transpose();
    using s2 = bn.ones([3, 2]);
    expect(() => indexAdd_(tt, 1, ok, s2)).toThrow(bn.ShapeError);
    using ti = bn.zeros([4, 3], { dtype: "i32" });
    expect(() => indexAdd_(ti, 0, ok, s)).toThrow(bn.DTypeError);
    using fi = bn.tensor([0, 1]);
    expect(() => indexAdd_(t, 0, fi, s)).toThrow(bn.DTypeError);
    using i2 = bn.tensor([[0, 1]], { dtype: "i32" });
    expect(() => indexAdd_(t, 0, i2, s)).toThrow(bn.ShapeError);
  });
});

describe("optimizer updates", () => {
  const N = 37;
  const p0 = Array.from({ length: N }, (_, i) => noise(40, -2, 2)(i));
  const grads = [1, 2, 3].map((s) => Array.from({ length: N }, (_, i) => noise(40 + s, -1, 1)(i)));
  const f32 = (a: number[]) => a.map((v) => castRef(v, "f32"));

  test("SGD with momentum, dampening, Nesterov, weight decay, maximize over 3 steps (float64 reference)", () => {
    for (const o of [
      { lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false },
      { lr: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 0.01, nesterov: false, maximize: false },
      { lr: 0.05, momentum: 0.9, dampening: 0, weightDecay: 0.05, nesterov: true, maximize: false },
      { lr: 0.2, momentum: 0.5, dampening: 0, weightDecay: 0, nesterov: false, maximize: true },
    ]) {
      using p = bn.tensor(p0, { dtype: "f32" });
      using buf = bn.zeros([N]);
      let rp = f32(p0);
      let rb = new Array<number>(N).fill(0);
      for (let step = 0; step < 3; step++) {
        using g = bn.tensor(grads[step]!, { dtype: "f32" });
        const gv = f32(grads[step]!);
        sgdUpdate_(p, g, o.momentum !== 0 ? buf : null, { ...o, first: step === 0 });
        const d0 = gv.map((v, i) => (o.maximize ? -v : v) + o.weightDecay * rp[i]!);
        let d = d0;
        if (o.momentum !== 0) {
          rb = step === 0 ? d0.slice() : rb.map((b, i) => o.momentum * b + (1 - o.dampening) * d0[i]!);
          d = o.nesterov ? d0.map((v, i) => v + o.momentum * rb[i]!) : rb;
        }
        rp = rp.map((v, i) => v - o.lr * d[i]!);
        expectClose(vals(p), rp, 1e-6, 1e-6);
        if (o.momentum !== 0) expectClose(vals(buf), rb, 1e-6, 1e-6);
      }
    }
  });

  test("AdamW (and amsgrad, maximize) over 3 steps (float64 reference)", () => {
    for (const [o, ams] of [
      [{ lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maximize: false }, false],
      [{ lr: 3e-2, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.1, maximize: true }, true],
    ] as const) {
      using p = bn.tensor(p0, { dtype: "f32" });
      using m = bn.zeros([N]);
      using v = bn.zeros([N]);
      using vmax = bn.zeros([N]);
      let rp = f32(p0);
      let rm = new Array<number>(N).fill(0);
      let rv = new Array<number>(N).fill(0);
      let rx = new Array<number>(N).fill(0);
      for (let t = 1; t <= 3; t++) {
        using g = bn.tensor(grads[t - 1]!, { dtype: "f32" });
        const gv = f32(grads[t - 1]!).map((x) => (o.maximize ? -x : x));
        adamwUpdate_(p, g, m, v, ams ? vmax : null, { ...o, step: t });
        rm = rm.map((x, i) => o.beta1 * x + (1 - o.beta1) * gv[i]!);
        rv = rv.map((x, i) => o.beta2 * x + (1 - o.beta2) * gv[i]! ** 2);
        rx = rx.map((x, i) => Math.max(x, rv[i]!));
        const vu = ams ? rx : rv;
        const bc1 = 1 - o.beta1 ** t;
        const bc2 = 1 - o.beta2 ** t;
        rp = rp.map((x, i) => x * (1 - o.lr * o.weightDecay) - (o.lr / bc1) * rm[i]! / (Math.sqrt(vu[i]! / bc2) + o.eps));
        expectClose(vals(p), rp, 2e-6, 2e-6);
        expectClose(vals(m), rm, 1e-5, 1e-7);
        expectClose(vals(v), rv, 1e-5, 1e-9);
      }
    }
  });

  test("bf16 parameters step in f32 and round once per step", () => {
    using p = bn.tensor([1, -2, 0.5], { dtype: "bf16" });
    using g = bn.tensor([0.25, 0.5, -1], { dtype: "bf16" });
    sgdUpdate_(p, g, null, { lr: 0.5, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false, first: true });
    expect(vals(p)).toEqual([0.875, -2.25, 1]);
  });

  test("bad inputs: shape mismatch, integer dtype, non-contiguous param, state dtype, options", () => {
    const sgd = { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: false, maximize: false, first: true };
    const adam = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, step: 1, maximize: false };
    using p = bn.zeros([4, 3]);
    using g = bn.zeros([4, 3]);
    using g2 = bn.zeros([3, 4]);
    using buf = bn.zeros([4, 3]);
    expect(() => sgdUpdate_(p, g2, buf, sgd)).toThrow(bn.ShapeError);
    using pi = bn.zeros([4, 3], { dtype: "i32" });
    expect(() => sgdUpdate_(pi, pi, buf, sgd)).toThrow(bn.DTypeError);
    using pt = g2.transpose();
    expect(() => sgdUpdate_(pt, g, buf, sgd)).toThrow(/not contiguous/);
    expect(() => sgdUpdate_(pt, g, buf, sgd)).toThrow(bn.ShapeError);
    using g16 = bn.zeros([4, 3], { dtype: "f16" });
    expect(() => sgdUpdate_(p, g16, buf, sgd)).toThrow(bn.DTypeError);
    expect(() => sgdUpdate_(p, g, null, sgd)).toThrow(bn.ValueError);
    expect(() => sgdUpdate_(p, g, buf, { ...sgd, nesterov: true, dampening: 0.1 })).toThrow(bn.ValueError);
    expect(() => sgdUpdate_(p, g, buf, { ...sgd, lr: NaN })).toThrow(bn.ValueError);
    using m16 = bn.zeros([4, 3], { dtype: "bf16" });
    expect(() => adamwUpdate_(p, g, m16, buf, null, adam)).toThrow(bn.DTypeError);
    expect(() => adamwUpdate_(p, g, buf, g2, null, adam)).toThrow(bn.ShapeError);
    expect(() => adamwUpdate_(p, g, buf, buf.transpose().contiguous().transpose(), null, adam)).toThrow(bn.ShapeError);
    expect(() => adamwUpdate_(p, g, buf, g, null, { ...adam, step: 0 })).toThrow(bn.ValueError);
    expect(() => adamwUpdate_(p, g, buf, g, null, { ...adam, beta1: 1 })).toThrow(bn.ValueError);
    // A strided gradient is read through a copy: the step still happens.
    using gs = bn.ones([3, 4]).transpose();
    sgdUpdate_(p, gs, null, { ...sgd, momentum: 0 });
    expect(vals(p).every((v) => Math.abs(v + 0.1) < 1e-7)).toBe(true);
  });
});

// ---- every compiled SIMD level this CPU runs ---------------------------------------------------

const caps = bn.deviceCapabilities();

for (const level of runnableLevels()) {
  describe(`SIMD ${level}`, () => {
    beforeAll(() => bn.setSimdLevel(level));
    afterAll(() => bn.setSimdLevel(caps.simdDetected));

    test("softmax backward: rows, columns (axis 0) and strided rows match the reference", () => {
      for (const d of FLOAT) {
        for (const log of [false, true]) {
          for (const [shape, axis, py, pg] of [
            [[5, 37], 1, [0, 1], [0, 1]],
            [[37, 19], 0, [0, 1], [0, 1]],
            [[6, 33], 1, [1, 0], [0, 1]],
            [[2, 9, 70], 1, [0, 1, 2], [0, 1, 2]],
          ] as [number[], number, number[], number[]][]) {
            const [y, yr] = viewOf(shape, d, log ? noise(1, -4, 0) : noise(1, 0, 1), py);
            const [g, gr] = viewOf(shape, d, noise(2, -2, 2), pg);
            using dx = softmaxBackward(y, g, axis, log);
            const want = alongAxis([yr, gr], axis, ([yy, gg]) => softmaxBackRef(yy!, gg!, log));
            expectClose(vals(dx), Array.from(want.data), RTOL[d], 2e-5 * 37);
            y.dispose();
            g.dispose();
          }
        }
      }
    });

    test("norm backward: dx, dweight, dbias over many rows match the reference", () => {
      for (const d of FLOAT) {
        for (const kind of ["layer", "rms"] as const) {
          const shape = [300, 37];
          const [x, xr] = viewOf(shape, d, noise(3, -3, 3), [0, 1]);
          const [g, gr] = viewOf(shape, d, noise(4, -1, 1), [1, 0]);
          const [w, wr] = make([37], "bf16", noise(5, 0.5, 1.5));
          const res = normBackward(kind, x, g, w, 1e-5, true);
          const wv = Array.from(wr.data);
          const want = alongAxis([xr, gr], 1, ([xx, gg]) => normBackRef(kind, xx!, gg!, wv, 1e-5).dx);
          const scale = alongAxis([xr, gr], 1, ([xx, gg]) => normBackRef(kind, xx!, gg!, wv, 1e-5).scale);
          expectClose(vals(res.dx), Array.from(want.data), RTOL[d], Array.from(scale.data, (v) => 3e-5 * v));
          const gx = alongAxis([xr, gr], 1, ([xx, gg]) => normBackRef(kind, xx!, gg!, wv, 1e-5).gx);
          const dw = new Array<number>(37).fill(0);
          const db = new Array<number>(37).fill(0);
          for (let i = 0; i < gx.size; i++) {
            dw[i % 37]! += gx.data[i]!;
            db[i % 37]! += gr.data[i]!;
          }
          expectClose(vals(res.dweight!), dw, 1e-4, 1e-3);
          if (res.dbias) expectClose(vals(res.dbias), db, 1e-5, 1e-4);
          for (const t of [x, g, w, res.dx, res.dweight!]) t.dispose();
          res.dbias?.dispose();
        }
      }
    });

    test("take, indexAdd_ and the optimizer steps match the reference", () => {
      const [table, tr] = make([40, 19], "f32", noise(6, -1, 1));
      using ids = bn.tensor([5, -1, 5, 0, 39, 12, 5], { dtype: "i16" });
      using e = take(table, ids);
      const rows = [5, 39, 5, 0, 39, 12, 5];
      expect(vals(e)).toEqual(rows.flatMap((r) => Array.from(tr.data.subarray(r * 19, r * 19 + 19))));
      const want = Float64Array.from(tr.data);
      const ev = vals(e);
      rows.forEach((r, j) => {
        for (let c = 0; c < 19; c++) want[r * 19 + c]! += ev[j * 19 + c]!;
      });
      indexAdd_(table, 0, ids, e);
      expectClose(vals(table), Array.from(want), 0, 1e-6);
      table.dispose();

      const n = 1001;
      const p0 = Array.from({ length: n }, (_, i) => noise(7, -1, 1)(i));
      const g0 = Array.from({ length: n }, (_, i) => noise(8, -1, 1)(i)).map((v) => castRef(v, "f32"));
      using p = bn.tensor(p0, { dtype: "f32" });
      using g = bn.tensor(g0, { dtype: "f32" });
      using m = bn.zeros([n]);
      using v = bn.zeros([n]);
      adamwUpdate_(p, g, m, v, null, { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, step: 1, maximize: false });
      // Step 1: m/(1-b1) = g, v/(1-b2) = g², so p = p(1 - lr wd) - lr g / (|g| + eps).
      const rp = p0.map((x, i) => castRef(x, "f32") * (1 - 0.001) - (0.01 * g0[i]!) / (Math.abs(g0[i]!) + 1e-8));
      expectClose(vals(p), rp, 2e-6, 2e-6);
      using q = bn.tensor(p0, { dtype: "f32" });
      using buf = bn.zeros([n]);
      sgdUpdate_(q, g, buf, { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 0.01, nesterov: true, maximize: false, first: true });
      // Nesterov, first step: buf = d, p -= lr * (d + momentum * d).
      const rq = p0.map((x, i) => {
        const pf = castRef(x, "f32");
        const dd = g0[i]! + 0.01 * pf;
        return pf - 0.1 * (dd + 0.9 * dd);
      });
      expectClose(vals(q), rq, 1e-6, 1e-6);
    });
  });
}
