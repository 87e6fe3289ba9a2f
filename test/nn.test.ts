import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import * as bn from "../src/index.ts";
import { Ref, arbPerm, arbShape, castRef } from "./helpers.ts";

const FLOAT = ["f32", "f16", "bf16"] as const;
type Float = (typeof FLOAT)[number];

/** Relative tolerance of a result rounded to `d` (a few units in the last place). */
const RTOL: Record<Float, number> = { f32: 4e-6, f16: 2e-3, bf16: 1.6e-2 };

/** Values of a tensor as float64, row-major. */
const vals = (t: bn.Tensor) => Array.from(t._toFloat64("test"));

/** A tensor of dtype `d` from float64 values, and the Ref of the values it actually holds. */
function make(shape: number[], d: Float, f: (i: number) => number): [bn.Tensor, Ref] {
  const n = shape.reduce((a, b) => a * b, 1);
  const raw = Float64Array.from({ length: n }, (_, i) => f(i));
  const held = raw.map((v) => castRef(v, d));
  return [bn.tensor(raw, { shape, dtype: d }), new Ref(shape, held)];
}

/** Pseudo-random values in [-scale, scale) from a seed (deterministic, independent of the engine). */
function noise(seed: number, scale = 4, offset = 0): (i: number) => number {
  return (i) => {
    const s = Math.sin((i + 1) * 12.9898 + seed * 78.233) * 43758.5453;
    return offset + (s - Math.floor(s) - 0.5) * 2 * scale;
  };
}

/** Calls f(rowValues, setOut) for every 1-d slice of `ref` along `ax`. */
function alongAxis(ref: Ref, ax: number, f: (row: number[]) => number[]): Ref {
  const out = new Float64Array(ref.size);
  const st = ref.strides();
  const len = ref.shape[ax]!;
  const outer = ref.shape.map((d, i) => (i === ax ? 1 : d));
  const idx = new Array<number>(ref.shape.length).fill(0);
  const nOuter = outer.reduce((a, b) => a * b, 1);
  if (len === 0) return new Ref(ref.shape, out);
  for (let k = 0; k < nOuter; k++) {
    let base = 0;
    for (let i = 0; i < idx.length; i++) base += idx[i]! * st[i]!;
    const row = Array.from({ length: len }, (_, j) => ref.data[base + j * st[ax]!]!);
    const r = f(row);
    for (let j = 0; j < len; j++) out[base + j * st[ax]!] = r[j]!;
    for (let i = idx.length - 1; i >= 0; i--) {
      if (++idx[i]! < outer[i]!) break;
      idx[i] = 0;
    }
  }
  return new Ref(ref.shape, out);
}

function softmaxRow(row: number[], log: boolean): number[] {
  const m = Math.max(...row);
  if (!Number.isFinite(m) || row.some(Number.isNaN)) return row.map(() => NaN);
  const s = row.reduce((a, v) => a + Math.exp(v - m), 0);
  return row.map((v) => (log ? v - m - Math.log(s) : Math.exp(v - m) / s));
}

function normRow(row: number[], kind: "layer" | "rms", eps: number, w?: number[], b?: number[]): number[] {
  const n = row.length;
  const mean = kind === "layer" ? row.reduce((a, v) => a + v, 0) / n : 0;
  const v = row.reduce((a, x) => a + (x - mean) ** 2, 0) / n;
  const r = 1 / Math.sqrt(v + eps);
  return row.map((x, j) => (x - mean) * r * (w ? w[j]! : 1) + (b ? b[j]! : 0));
}

/** Expects got ≈ want elementwise: |got - want| <= rtol * max(|want|, floor) + atol; NaN matches NaN. */
function expectClose(got: number[], want: number[], rtol: number, floor = 0, atol = 0): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < got.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    if (Number.isNaN(w) || !Number.isFinite(w)) {
      if (!Object.is(g, w)) expect([i, g]).toEqual([i, w]);
      continue;
    }
    const tol = rtol * Math.max(Math.abs(w), floor) + atol;
    if (!(Math.abs(g - w) <= tol)) expect([i, g]).toEqual([i, w]); // shows the element
  }
}

/** An input view of `shape` built as a permutation or a stepped slice of a bigger base tensor. */
const arbLayout = fc.oneof(fc.constant("contiguous" as const), fc.constant("permuted" as const), fc.constant("sliced" as const));

function viewOf(shape: number[], d: Float, seed: number, kind: "contiguous" | "permuted" | "sliced", perm: number[], scale = 4, offset = 0): [bn.Tensor, Ref] {
  if (kind === "permuted" && shape.length > 1) {
    // base shape such that base.permute(perm) has `shape`: base[perm[i]] = shape[i]
    const bshape = new Array<number>(shape.length);
    perm.forEach((p, i) => (bshape[p] = shape[i]!));
    const [base, bref] = make(bshape, d, noise(seed, scale, offset));
    // permute(axes) with axes[i] = which base axis becomes axis i: perm
    const inv = perm;
    const v = base.permute(inv);
    base.dispose();
    return [v, bref.permute(inv)];
  }
  if (kind === "sliced" && shape.length > 0) {
    // take every other element of a base twice as long on each axis, reversed on the last
    const bshape = shape.map((s) => 2 * s + 1);
    const [base, bref] = make(bshape, d, noise(seed, scale, offset));
    const specs = shape.map((s, i) => (i === shape.length - 1 ? ([2 * s, 0, -2] as const) : ([1, null, 2] as const)));
    const v = base.slice(specs);
    base.dispose();
    const ranges = shape.map((s, i): [number, number, number] => (i === shape.length - 1 ? [2 * s, 0, -2] : [1, 2 * s + 1, 2]));
    return [v, bref.sliceRanges(ranges)];
  }
  return make(shape, d, noise(seed, scale, offset));
}

describe("softmax / logSoftmax", () => {
  test("match a float64 reference: random shapes, axes, dtypes and views", () => {
    fc.assert(
      fc.property(
        arbShape(1, 4, 6).chain((s) => fc.tuple(fc.constant(s), arbPerm(s.length), fc.integer({ min: -s.length, max: s.length - 1 }))),
        fc.constantFrom(...FLOAT),
        fc.boolean(),
        arbLayout,
        fc.integer({ min: 0, max: 1000 }),
        ([shape, perm, axis], d, log, layout, seed) => {
          const [x, ref] = viewOf(shape, d, seed, layout, perm);
          const y = log ? bn.logSoftmax(x, { axis }) : bn.softmax(x, { axis });
          try {
            expect(y.shape).toEqual(shape);
            expect(y.dtype).toBe(d);
            expect(y.isContiguous()).toBe(true);
            const ax = axis < 0 ? axis + shape.length : axis;
            const want = alongAxis(ref, ax, (r) => softmaxRow(r, log));
            if (log) expectClose(vals(y), Array.from(want.data), RTOL[d], 1);
            else expectClose(vals(y), Array.from(want.data), RTOL[d], 0, d === "f16" ? 6e-8 : 1e-37);
          } finally {
            y.dispose();
            x.dispose();
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  test("rows sum to 1 and logSoftmax = log(softmax), also for large rows split across threads", () => {
    for (const [shape, axis] of [
      [[300, 1000], -1],
      [[1000, 300], 0],
      [[7, 5000], 1],
      [[3, 40, 50], 1],
    ] as [number[], number][]) {
      const [x] = make(shape, "f32", noise(shape[0]!, 10));
      using s = bn.softmax(x, { axis });
      using l = bn.logSoftmax(x, { axis });
      const sv = new Ref(shape, Float64Array.from(vals(s)));
      const lv = vals(l);
      const sums = alongAxis(sv, axis < 0 ? axis + shape.length : axis, (r) => {
        const t = r.reduce((a, v) => a + v, 0);
        return r.map(() => t);
      });
      for (const t of sums.data) expect(Math.abs(t - 1)).toBeLessThan(2e-5);
      const logS = Array.from(sv.data, Math.log);
      // where softmax is not tiny, log(softmax) and logSoftmax agree
      for (let i = 0; i < lv.length; i++) if (sv.data[i]! > 1e-30) expect(Math.abs(lv[i]! - logS[i]!)).toBeLessThan(1e-5 * Math.max(1, Math.abs(lv[i]!)));
      x.dispose();
    }
  });

  test("softmax along a non-last axis of a contiguous tensor (lanes across rows) matches the reference", () => {
    for (const d of FLOAT) {
      for (const [shape, axis] of [
        [[20, 33], 0],
        [[3, 7, 40], 1],
        [[9, 2, 17], 0],
        [[5, 64], 0],
      ] as [number[], number][]) {
        const [x, ref] = make(shape, d, noise(7, 6));
        for (const log of [false, true]) {
          using y = log ? x.logSoftmax({ axis }) : x.softmax({ axis });
          const want = alongAxis(ref, axis, (r) => softmaxRow(r, log));
          expectClose(vals(y), Array.from(want.data), RTOL[d], log ? 1 : 0, 1e-7);
        }
        x.dispose();
      }
    }
  });

  test("large inputs do not overflow", () => {
    for (const d of FLOAT) {
      for (const offset of [1e4, -1e4, 3e38 * (d === "f32" ? 1 : 0)]) {
        const [x, ref] = make([4, 37], d, noise(3, 20, offset));
        using s = bn.softmax(x);
        using l = bn.logSoftmax(x);
        const sv = vals(s);
        expect(sv.every(Number.isFinite)).toBe(true);
        expectClose(sv, Array.from(alongAxis(ref, 1, (r) => softmaxRow(r, false)).data), RTOL[d], 0, 1e-7);
        expectClose(vals(l), Array.from(alongAxis(ref, 1, (r) => softmaxRow(r, true)).data), RTOL[d], 1);
        x.dispose();
      }
    }
  });

  test("-inf entries, all -inf rows, +inf and NaN behave like PyTorch", () => {
    const ninf = -Infinity;
    for (const d of FLOAT) {
      for (const axis of [1, 0]) {
        const rows = [
          [1, ninf, 2, ninf],
          [ninf, ninf, ninf, ninf],
          [1, Infinity, 2, 3],
          [1, NaN, 2, 3],
        ];
        using base = bn.tensor(rows, { dtype: d });
        using x = axis === 1 ? base.contiguous() : base.T.contiguous();
        using s = x.softmax({ axis });
        using l = x.logSoftmax({ axis });
        const sv = axis === 1 ? (s.toArray() as number[][]) : ((s.T.toArray() as number[][]));
        const lv = axis === 1 ? (l.toArray() as number[][]) : ((l.T.toArray() as number[][]));
        const e = Math.exp(-1);
        expectClose(sv[0]!, [e / (1 + e), 0, 1 / (1 + e), 0], RTOL[d]);
        expectClose(lv[0]!, [Math.log(e / (1 + e)), ninf, Math.log(1 / (1 + e)), ninf], RTOL[d], 1);
        for (const r of [1, 2, 3]) {
          expect(sv[r]!.every(Number.isNaN)).toBe(true);
          expect(lv[r]!.every(Number.isNaN)).toBe(true);
        }
      }
    }
  });

  test("empty tensors and rows of length 0 or 1", () => {
    for (const shape of [[3, 0], [0, 5], [0]]) {
      using x = bn.zeros(shape);
      using s = bn.softmax(x);
      using l = bn.logSoftmax(x, { axis: 0 });
      expect(s.shape).toEqual(shape);
      expect(l.shape).toEqual(shape);
    }
    using one = bn.tensor([[5], [-3]]);
    using s1 = one.softmax();
    using l1 = one.logSoftmax();
    expect(s1.toArray()).toEqual([[1], [1]]);
    expect(l1.toArray()).toEqual([[0], [0]]);
    using s0 = one.softmax({ axis: 0 });
    expectClose(vals(s0), [1 / (1 + Math.exp(-8)), Math.exp(-8) / (1 + Math.exp(-8))], RTOL.f32);
  });

  test("methods and the default axis", () => {
    using x = bn.tensor([[1, 2, 3], [0, 0, 0]]);
    using a = x.softmax();
    using b = bn.softmax(x, { axis: -1 });
    using c = x.logSoftmax({ axis: 0 });
    expect(a.toArray()).toEqual(b.toArray());
    const cols = [1, 2, 3].map((v) => softmaxRow([v, 0], true));
    expectClose(vals(c), [...cols.map((r) => r[0]!), ...cols.map((r) => r[1]!)], RTOL.f32, 1);
  });
});

describe("layerNorm / rmsNorm", () => {
  test("match a float64 reference: random shapes, dtypes, views, weight and bias", () => {
    fc.assert(
      fc.property(
        fc.tuple(arbShape(0, 3, 5), fc.integer({ min: 1, max: 40 })).chain(([s, last]) => {
          const shape = [...s, last];
          return fc.tuple(fc.constant(shape), arbPerm(shape.length));
        }),
        fc.constantFrom(...FLOAT),
        fc.constantFrom("layer" as const, "rms" as const),
        fc.constantFrom(null, ...FLOAT),
        fc.constantFrom(null, ...FLOAT),
        arbLayout,
        fc.boolean(), // strided weight
        fc.integer({ min: 0, max: 1000 }),
        fc.constantFrom(0, 50), // offset of the data
        ([shape, perm], d, kind, wd, bd, layout, wStrided, seed, offset) => {
          const [x, ref] = viewOf(shape, d, seed, layout, perm, 3, offset);
          const n = shape[shape.length - 1]!;
          const temps: bn.Tensor[] = [x];
          const vec = (vd: Float | null, s: number): [bn.Tensor | undefined, number[] | undefined] => {
            if (vd === null) return [undefined, undefined];
            const [base, bref] = make([wStrided ? 2 * n : n], vd, noise(s, 2, 0.5));
            temps.push(base);
            if (!wStrided) return [base, Array.from(bref.data)];
            const v = base.slice([[null, null, 2]]);
            temps.push(v);
            return [v, Array.from(bref.data).filter((_, i) => i % 2 === 0)];
          };
          const [w, wv] = vec(wd, seed + 1);
          const [b, bv] = kind === "layer" ? vec(bd, seed + 2) : [undefined, undefined];
          try {
            const eps = kind === "layer" ? 1e-5 : 1e-6;
            const y = kind === "layer" ? bn.layerNorm(x, { weight: w, bias: b }) : bn.rmsNorm(x, { weight: w });
            temps.push(y);
            expect(y.shape).toEqual(shape);
            expect(y.dtype).toBe(d);
            const want = alongAxis(ref, shape.length - 1, (r) => normRow(r, kind, eps, wv, bv));
            // f32: the data's magnitude (offset) limits what f32 statistics can resolve
            const rtol = d === "f32" ? 2e-5 * (offset ? 4 : 1) : 2 * RTOL[d];
            expectClose(vals(y), Array.from(want.data), rtol, 1);
          } finally {
            for (const t of temps) t.dispose();
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  test("defaults, eps, bias without weight, a data offset much larger than the spread", () => {
    using x = bn.tensor([[1, 2, 3, 4], [10000, 10001, 10002, 10003]]);
    const rows = [[1, 2, 3, 4], [10000, 10001, 10002, 10003]];
    using a = bn.layerNorm(x);
    expectClose(vals(a), rows.flatMap((r) => normRow(r, "layer", 1e-5)), 1e-6, 1);
    using b = bn.layerNorm(x, { eps: 0.5 });
    expectClose(vals(b), rows.flatMap((r) => normRow(r, "layer", 0.5)), 1e-6, 1);
    using bias = bn.tensor([1, -1, 0, 2]);
    using c = bn.layerNorm(x, { bias });
    expectClose(vals(c), rows.flatMap((r) => normRow(r, "layer", 1e-5, undefined, [1, -1, 0, 2])), 1e-6, 1);
    using d = bn.rmsNorm(x);
    expectClose(vals(d), rows.flatMap((r) => normRow(r, "rms", 1e-6)), 1e-6, 1);
    using e = bn.rmsNorm(x, { eps: 0 });
    expectClose(vals(e), rows.flatMap((r) => normRow(r, "rms", 0)), 1e-6, 1);
  });

  test("weight and bias of different dtypes; large rows split across threads", () => {
    const [x, ref] = make([200, 700], "bf16", noise(5, 3));
    const [w, wr] = make([700], "f16", noise(6, 1, 1));
    const [b, br] = make([700], "f32", noise(7, 1));
    using y = bn.layerNorm(x, { weight: w, bias: b });
    expect(y.dtype).toBe("bf16");
    const want = alongAxis(ref, 1, (r) => normRow(r, "layer", 1e-5, Array.from(wr.data), Array.from(br.data)));
    expectClose(vals(y), Array.from(want.data), 2 * RTOL.bf16, 1);
    using z = bn.rmsNorm(x.T.contiguous().T, { weight: w }); // strided rows
    const wantZ = alongAxis(ref, 1, (r) => normRow(r, "rms", 1e-6, Array.from(wr.data)));
    expectClose(vals(z), Array.from(wantZ.data), 2 * RTOL.bf16, 1);
    for (const t of [x, w, b]) t.dispose();
  });

  test("empty inputs and rows of one element", () => {
    using e = bn.zeros([0, 4]);
    using w4 = bn.ones([4]);
    using y = bn.layerNorm(e, { weight: w4 });
    expect(y.shape).toEqual([0, 4]);
    using e2 = bn.zeros([3, 0]);
    using w0 = bn.ones([0]);
    using y2 = bn.rmsNorm(e2, { weight: w0 });
    expect(y2.shape).toEqual([3, 0]);
    using one = bn.tensor([[5], [-3]]);
    using bias = bn.tensor([0.25]);
    using y3 = bn.layerNorm(one, { bias });
    expect(y3.toArray()).toEqual([[0.25], [0.25]]);
  });
});

describe("SIMD levels", () => {
  test("every level the CPU runs matches the reference", () => {
    const caps = bn.deviceCapabilities();
    const [x, ref] = make([5, 77], "f32", noise(9, 5));
    const [xt, reft] = make([77, 5], "f32", noise(9, 5));
    const [w, wr] = make([77], "f32", noise(10, 1, 1));
    const tested: string[] = [];
    try {
      for (const level of caps.simdCompiled) {
        try {
          bn.setSimdLevel(level);
        } catch (e) {
          expect(e).toBeInstanceOf(bn.DeviceError);
          continue;
        }
        tested.push(level);
        using s = bn.softmax(x);
        expectClose(vals(s), Array.from(alongAxis(ref, 1, (r) => softmaxRow(r, false)).data), RTOL.f32, 0, 1e-37);
        using s0 = bn.logSoftmax(xt, { axis: 0 });
        expectClose(vals(s0), Array.from(alongAxis(reft, 0, (r) => softmaxRow(r, true)).data), RTOL.f32, 1);
        using l = bn.layerNorm(x, { weight: w, bias: w });
        expectClose(vals(l), Array.from(alongAxis(ref, 1, (r) => normRow(r, "layer", 1e-5, Array.from(wr.data), Array.from(wr.data))).data), 2e-5, 1);
        using r = bn.rmsNorm(x, { weight: w });
        expectClose(vals(r), Array.from(alongAxis(ref, 1, (rw) => normRow(rw, "rms", 1e-6, Array.from(wr.data))).data), 2e-5, 1);
      }
    } finally {
      bn.setSimdLevel(caps.simdDetected);
      for (const t of [x, xt, w]) t.dispose();
    }
    expect(tested.length).toBeGreaterThanOrEqual(1);
  });
});

describe("bad input", () => {
  test("typed errors; operands unchanged; nothing leaks", () => {
    using x = bn.tensor([[1, 2, 3], [4, 5, 6]]);
    using xi = bn.tensor([[1, 2, 3]], { dtype: "i32" });
    using xb = bn.tensor([true, false]);
    using s = bn.tensor(3);
    using w2 = bn.ones([2]);
    using w23 = bn.ones([2, 3]);
    using wi = bn.ones([3], { dtype: "i8" });
    using w3 = bn.ones([3]);
    const before = bn.memory.stats();
    for (const f of [bn.softmax, bn.logSoftmax]) {
      expect(() => f(x, { axis: 2 })).toThrow(bn.ShapeError);
      expect(() => f(x, { axis: -3 })).toThrow(bn.ShapeError);
      expect(() => f(x, { axis: 0.5 })).toThrow(bn.ShapeError);
      expect(() => f(x, { axis: "1" as never })).toThrow(bn.ShapeError);
      expect(() => f(s)).toThrow(bn.ShapeError); // 0-d: no axis (as NumPy)
      expect(() => f(xi)).toThrow(bn.DTypeError);
      expect(() => f(xb)).toThrow(bn.DTypeError);
      expect(() => f([1, 2] as never)).toThrow(bn.DTypeError);
      expect(() => f(x, 1 as never)).toThrow(bn.ValueError);
    }
    expect(() => x.softmax({ axis: 5 })).toThrow(/axis 5 is out of range/);
    expect(() => bn.softmax(xi)).toThrow(/float tensor.*i32/);
    for (const f of [bn.layerNorm, bn.rmsNorm]) {
      expect(() => f(x, { weight: w2 })).toThrow(bn.ShapeError);
      expect(() => f(x, { weight: w23 })).toThrow(bn.ShapeError);
      expect(() => f(x, { weight: wi })).toThrow(bn.DTypeError);
      expect(() => f(x, { weight: [1, 2, 3] as never })).toThrow(bn.DTypeError);
      expect(() => f(xi)).toThrow(bn.DTypeError);
      expect(() => f(s)).toThrow(bn.ShapeError);
      expect(() => f(x, { eps: -1 })).toThrow(bn.ValueError);
      expect(() => f(x, { eps: NaN })).toThrow(bn.ValueError);
      expect(() => f(x, "x" as never)).toThrow(bn.ValueError);
    }
    expect(() => bn.layerNorm(x, { weight: w3, bias: w2 })).toThrow(bn.ShapeError);
    expect(() => bn.layerNorm(x, { weight: w3, bias: wi })).toThrow(bn.DTypeError);
    expect(() => bn.layerNorm(x, { weight: w2 })).toThrow(/weight must have shape \[3\]/);
    const after = bn.memory.stats();
    expect(after.liveTensors).toBe(before.liveTensors);
    expect(after.bytesInUse).toBe(before.bytesInUse);
    expect(x.toArray()).toEqual([[1, 2, 3], [4, 5, 6]]);
    expect(w3.toArray()).toEqual([1, 1, 1]);
  });

  test("disposed operands", () => {
    using x = bn.ones([2, 3]);
    const d = bn.ones([2, 3]);
    const dw = bn.ones([3]);
    d.dispose();
    dw.dispose();
    expect(() => bn.softmax(d)).toThrow(bn.DisposedTensorError);
    expect(() => d.logSoftmax()).toThrow(bn.DisposedTensorError);
    expect(() => bn.layerNorm(d)).toThrow(bn.DisposedTensorError);
    expect(() => bn.layerNorm(x, { weight: dw })).toThrow(bn.DisposedTensorError);
    expect(() => bn.layerNorm(x, { bias: dw })).toThrow(bn.DisposedTensorError);
    expect(() => bn.rmsNorm(x, { weight: dw })).toThrow(bn.DisposedTensorError);
  });

  test("temporaries of strided or mixed-dtype weights are released", () => {
    using x = bn.ones([2, 3]);
    using wb = bn.ones([6]);
    using w = wb.slice([[null, null, 2]]);
    using b = bn.zeros([3], { dtype: "f16" });
    const before = bn.memory.stats().liveTensors;
    using y = bn.layerNorm(x, { weight: w, bias: b });
    expect(bn.memory.stats().liveTensors).toBe(before + 1);
    expect(y.toArray()).toEqual([[0, 0, 0], [0, 0, 0]]);
  });
});
