// matmul / dot / outer against float64 references written here: random shapes, broadcast batches,
// 1-D operands, transposed and strided views, every dtype, every SIMD level, and bad input.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import * as bn from "../src/index.ts";
import type { DType } from "../src/index.ts";
import { castRef, runnableLevels, wrapInt, rowMajorStrides } from "./helpers.ts";

/** A row-major float64 array with its shape. */
interface Arr {
  shape: number[];
  data: Float64Array;
}

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

const stridesOf = rowMajorStrides;

/** Deterministic small values: integers in [-lim, lim] (exact in every dtype we test). */
function ints(shape: number[], seed: number, lim = 4, nonneg = false): Arr {
  const n = size(shape);
  const data = new Float64Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const v = (s >>> 16) % (2 * lim + 1);
    data[i] = nonneg ? v % (lim + 1) : v - lim;
  }
  return { shape, data };
}

/** Random floats in [-1, 1). */
function floats(shape: number[], seed: number): Arr {
  const a = ints(shape, seed, 1 << 20);
  return { shape, data: a.data.map((v) => v / (1 << 20)) };
}

/**
 * The tensor of `a` in dtype d, laid out as a view: `layout` 0 = contiguous, 1 = the last two
 * axes stored transposed (a `.T`-style view), 2 = every axis strided (a step-2 slice of a larger
 * tensor).
 */
function make(a: Arr, d: DType, layout: number): bn.Tensor {
  const nd = a.shape.length;
  if (layout === 1 && nd >= 2) {
    const perm = [...Array(nd).keys()];
    [perm[nd - 2], perm[nd - 1]] = [perm[nd - 1]!, perm[nd - 2]!];
    const pshape = perm.map((p) => a.shape[p]!);
    const st = stridesOf(a.shape);
    const pst = stridesOf(pshape);
    const data = new Float64Array(a.data.length);
    // data laid out in pshape order: element at permuted index j holds a[inverse(j)]
    for (let i = 0; i < data.length; i++) {
      let rem = i;
      let src = 0;
      for (let ax = 0; ax < nd; ax++) {
        const idx = Math.floor(rem / pst[ax]!);
        rem -= idx * pst[ax]!;
        src += idx * st[perm[ax]!]!;
      }
      data[i] = a.data[src]!;
    }
    using base = bn.tensor(data, { dtype: d, shape: pshape });
    return base.permute(perm);
  }
  if (layout === 2 && nd >= 1) {
    const big = a.shape.map((s) => 2 * s);
    const data = new Float64Array(size(big)).fill(99);
    const st = stridesOf(a.shape);
    const bst = stridesOf(big);
    for (let i = 0; i < a.data.length; i++) {
      let rem = i;
      let dst = 0;
      for (let ax = 0; ax < nd; ax++) {
        const idx = Math.floor(rem / st[ax]!);
        rem -= idx * st[ax]!;
        dst += 2 * idx * bst[ax]!;
      }
      data[dst] = a.data[i]!;
    }
    using base = bn.tensor(data, { dtype: d, shape: big });
    return base.slice(a.shape.map(() => [null, null, 2] as [null, null, number]));
  }
  return bn.tensor(a.data, { dtype: d, shape: a.shape });
}

/** NumPy matmul in float64. */
function refMatmul(a: Arr, b: Arr): Arr {
  const as = a.shape.length === 1 ? [1, a.shape[0]!] : a.shape;
  const bs = b.shape.length === 1 ? [b.shape[0]!, 1] : b.shape;
  const m = as[as.length - 2]!;
  const k = as[as.length - 1]!;
  const n = bs[bs.length - 1]!;
  const ab = as.slice(0, -2);
  const bb = bs.slice(0, -2);
  const nb = Math.max(ab.length, bb.length);
  const batch: number[] = [];
  for (let i = 0; i < nb; i++) {
    const x = ab[ab.length - nb + i] ?? 1;
    const y = bb[bb.length - nb + i] ?? 1;
    batch.push(x === 1 ? y : x);
  }
  const out = new Float64Array(size(batch) * m * n);
  const bidx = new Array<number>(nb).fill(0);
  const offOf = (bshape: number[], idx: number[]) => {
    let off = 0;
    let mul = 1;
    for (let i = bshape.length - 1; i >= 0; i--) {
      const dim = bshape[i]!;
      const j = idx[idx.length - bshape.length + i]!;
      off += (dim === 1 ? 0 : j) * mul;
      mul *= dim;
    }
    return off;
  };
  for (let bi = 0; bi < size(batch); bi++) {
    const ao = offOf(ab, bidx) * m * k;
    const bo = offOf(bb, bidx) * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a.data[ao + i * k + p]! * b.data[bo + p * n + j]!;
        out[(bi * m + i) * n + j] = s;
      }
    }
    for (let ax = nb - 1; ax >= 0; ax--) {
      if (++bidx[ax]! < batch[ax]!) break;
      bidx[ax] = 0;
    }
  }
  const shape = [...batch];
  if (a.shape.length > 1) shape.push(m);
  if (b.shape.length > 1) shape.push(n);
  return { shape, data: out };
}

function flat(t: bn.Tensor): number[] {
  const out: number[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) for (const x of v) walk(x);
    else out.push(Number(v));
  };
  walk(t.toArray());
  return out;
}

/** The exact result of an integer-valued product in dtype d (numpy's answer). */
function exactIn(x: number, d: DType): number {
  if (d === "bool") return x !== 0 ? 1 : 0;
  if (d === "f32" || d === "f16" || d === "bf16") return castRef(x, d);
  return wrapInt(x, d);
}

const LEVELS = runnableLevels();

function atEveryLevel(body: () => void): void {
  const caps = bn.deviceCapabilities();
  try {
    for (const l of LEVELS) {
      bn.setSimdLevel(l);
      body();
    }
  } finally {
    bn.setSimdLevel(caps.simdDetected);
  }
}

const arbDims = fc.record({
  m: fc.integer({ min: 0, max: 19 }),
  n: fc.integer({ min: 0, max: 37 }),
  k: fc.integer({ min: 0, max: 45 }),
});
const arbBatch = fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 2 });

describe("matmul", () => {
  test("exact on integer-valued operands: random shapes, broadcast batches, layouts, levels", () => {
    atEveryLevel(() => {
      fc.assert(
        fc.property(
          arbDims,
          arbBatch,
          arbBatch,
          fc.boolean(),
          fc.boolean(),
          fc.integer({ min: 0, max: 2 }),
          fc.integer({ min: 0, max: 2 }),
          fc.integer({ min: 1, max: 1e6 }),
          ({ m, n, k }, ba, bb0, dropA, dropB, la, lb, seed) => {
            // batch shapes that broadcast: bb takes ba's dims or 1
            const bb = bb0.map((d, i) => (ba[ba.length - bb0.length + i] === undefined ? d : i % 2 ? 1 : ba[ba.length - bb0.length + i]!));
            const ashape = dropA ? [k] : [...ba, m, k];
            const bshape = dropB ? [k] : [...bb, k, n];
            const a = ints(ashape, seed);
            const b = ints(bshape, seed + 7);
            const want = refMatmul(a, b);
            using ta = make(a, "f32", la);
            using tb = make(b, "f32", lb);
            using c = bn.matmul(ta, tb);
            expect(c.shape).toEqual(want.shape);
            expect(c.dtype).toBe("f32");
            expect(flat(c)).toEqual(Array.from(want.data));
          },
        ),
        { numRuns: 60 },
      );
    });
  });

  test("random floats: within the f32 accumulation bound", () => {
    fc.assert(
      fc.property(arbDims, fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 1, max: 1e6 }), ({ m, n, k }, la, lb, seed) => {
        const a = floats([m, k], seed);
        const b = floats([k, n], seed + 1);
        const want = refMatmul(a, b);
        using ta = make(a, "f32", la);
        using tb = make(b, "f32", lb);
        using c = bn.matmul(ta, tb);
        const got = flat(c);
        for (let i = 0; i < got.length; i++) expect(Math.abs(got[i]! - want.data[i]!)).toBeLessThanOrEqual((k + 1) * 1.2e-7 * k + 1e-30);
      }),
      { numRuns: 100 },
    );
  });

  test("blocked sizes: K, M and N past the cache blocks, transposed operands, every level", () => {
    const cases: [number, number, number][] = [
      [67, 45, 700], // several K blocks
      [301, 50, 33], // several row blocks per thread
      [5, 4200, 7], // more than one column block
    ];
    atEveryLevel(() => {
      for (const [m, n, k] of cases) {
        const a = ints([m, k], m + n, 3);
        const b = ints([k, n], m * n, 3);
        const want = refMatmul(a, b);
        using ta = make(a, "f32", 1);
        using tb = make(b, "f32", (m + k) % 2);
        using c = bn.matmul(ta, tb);
        const got = c.data as Float32Array;
        let bad = 0;
        for (let i = 0; i < got.length; i++) if (got[i] !== want.data[i]) bad++;
        expect(bad).toBe(0);
      }
    });
  });

  test("GEMV paths: matrix @ vector and vector @ matrix, rows or columns contiguous, f16 weights", () => {
    atEveryLevel(() => {
      for (const [m, k] of [
        [1, 1],
        [9, 33],
        [130, 257],
        [1000, 70],
        // vector @ matrix with more outputs than one 16 KiB row block, k split between threads
        // with a tail of fewer than four columns in each part
        [37, 4500],
      ] as [number, number][]) {
        for (const layout of [0, 1, 2]) {
          for (const d of ["f32", "f16", "bf16", "i8"] as DType[]) {
            const a = ints([m, k], m * 31 + k, 3);
            const x = ints([k], k, 3);
            const want = refMatmul(a, x);
            using ta = make(a, d, layout);
            using tx = make(x, d, layout === 2 ? 2 : 0);
            using y = bn.matmul(ta, tx);
            expect(y.shape).toEqual([m]);
            expect(flat(y)).toEqual(Array.from(want.data, (v) => exactIn(v, d)));
            // vector @ matrix: x [m] @ a [m, k]
            const xv = ints([m], m + 5, 3);
            const want2 = refMatmul(xv, a);
            using txv = make(xv, d, 0);
            using y2 = bn.matmul(txv, ta);
            expect(y2.shape).toEqual([k]);
            expect(flat(y2)).toEqual(Array.from(want2.data, (v) => exactIn(v, d)));
          }
        }
      }
    });
  });

  test("every dtype: result dtype promotes, values are the exact sum rounded (or wrapped) once", () => {
    const dtypes: DType[] = ["f32", "f16", "bf16", "i8", "i16", "i32", "u8", "u16", "u32", "bool"];
    for (const da of dtypes) {
      for (const db of ["f32", "i8", "u8", "bool", da] as DType[]) {
        const nonneg = da.startsWith("u") || db.startsWith("u") || da === "bool" || db === "bool";
        const lim = da === "bool" || db === "bool" ? 1 : 40; // sums of 40*40*11 wrap i8/u8/i16
        const a = ints([3, 2, 11], 5, lim, nonneg);
        const b = ints([11, 4], 9, lim, nonneg);
        const rd = bn.promoteTypes(da, db);
        const want = refMatmul(a, b);
        // inputs as the dtypes see them (exact: the values fit, except bool which is nonzero)
        using ta = bn.tensor(a.data, { dtype: da, shape: a.shape });
        using tb = bn.tensor(b.data, { dtype: db, shape: b.shape });
        const ca = { shape: a.shape, data: a.data.map((v) => exactIn(v, da)) };
        const cb = { shape: b.shape, data: b.data.map((v) => exactIn(v, db)) };
        const w = refMatmul(ca, cb);
        using c = bn.matmul(ta, tb);
        expect(c.dtype).toBe(rd);
        expect(c.shape).toEqual(want.shape);
        const got = flat(c);
        if (rd === "f16" || rd === "bf16") {
          // accumulated in f32 (exact here), rounded once
          expect(got).toEqual(Array.from(w.data, (v) => castRef(v, rd)));
        } else {
          expect(got).toEqual(Array.from(w.data, (v) => exactIn(v, rd)));
        }
      }
    }
  });

  test("operands converted before the product keep their layout: mixed dtypes, transposed and strided views", () => {
    for (const [da, db] of [["i8", "f32"], ["f16", "bf16"], ["u8", "i16"], ["bool", "i32"], ["f32", "f16"]] as [DType, DType][]) {
      for (const la of [0, 1, 2]) {
        const nonneg = da === "u8" || da === "bool";
        const a = ints([2, 5, 7], 11, da === "bool" ? 1 : 3, nonneg);
        const b = ints([7, 6], 12, 3);
        const ca = { shape: a.shape, data: a.data.map((v) => exactIn(v, da)) };
        const w = refMatmul(ca, b);
        using ta = make(a, da, la);
        using tb = make(b, db, 2 - la);
        using c = bn.matmul(ta, tb);
        const rd = bn.promoteTypes(da, db);
        expect(flat(c)).toEqual(Array.from(w.data, (v) => exactIn(v, rd)));
        using d = bn.dot(ta, tb);
        expect(flat(d)).toEqual(Array.from(w.data, (v) => exactIn(v, rd)));
      }
    }
  });

  test("1-D operands and batches", () => {
    using v = bn.tensor([1, 2, 3]);
    using s = bn.matmul(v, v);
    expect(s.shape).toEqual([]);
    expect(s.item()).toBe(14);
    using m = bn.arange(0, 24).reshape([2, 3, 4]);
    using r = bn.matmul(v, m); // [3] @ [2, 3, 4] -> [2, 4]
    expect(r.shape).toEqual([2, 4]);
    const ref = refMatmul({ shape: [3], data: Float64Array.from([1, 2, 3]) }, { shape: [2, 3, 4], data: Float64Array.from({ length: 24 }, (_, i) => i) });
    expect(flat(r)).toEqual(Array.from(ref.data));
    using w = bn.arange(0, 4);
    using r2 = bn.matmul(m, w); // [2, 3, 4] @ [4] -> [2, 3]
    expect(r2.shape).toEqual([2, 3]);
    using e = bn.matmul(bn.zeros([2, 0]), bn.zeros([0, 3]));
    expect(e.toArray()).toEqual([
      [0, 0, 0],
      [0, 0, 0],
    ]);
    using e2 = bn.matmul(bn.zeros([0, 5]), bn.zeros([5, 3]));
    expect(e2.shape).toEqual([0, 3]);
  });

  test("many small products in a batch (threads over the batch) match one at a time", () => {
    const a = floats([64, 8, 16], 3);
    const b = floats([64, 16, 8], 4);
    using ta = make(a, "f32", 0);
    using tb = make(b, "f32", 1);
    using c = bn.matmul(ta, tb);
    for (const i of [0, 17, 63]) {
      using ai = ta.slice([i]);
      using bi = tb.slice([i]);
      using ci = bn.matmul(ai, bi);
      using cs = c.slice([i]);
      expect(flat(ci)).toEqual(flat(cs));
    }
  });

  test("method form and operands unchanged", () => {
    using a = bn.randn([4, 5], { seed: 1 });
    using b = bn.randn([5, 3], { seed: 2 });
    const before = flat(a);
    using c1 = a.matmul(b);
    using c2 = bn.matmul(a, b);
    expect(flat(c1)).toEqual(flat(c2));
    expect(flat(a)).toEqual(before);
  });
});

describe("dot and outer", () => {
  test("dot: N-D contracts a's last axis with b's second-to-last (no batch broadcasting)", () => {
    const a = ints([2, 3, 4], 1);
    const b = ints([5, 4, 6], 2);
    using ta = make(a, "f32", 1);
    using tb = make(b, "f32", 2);
    using c = bn.dot(ta, tb);
    expect(c.shape).toEqual([2, 3, 5, 6]);
    const got = flat(c);
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 3; j++)
        for (let q = 0; q < 5; q++)
          for (let r = 0; r < 6; r++) {
            let s = 0;
            for (let p = 0; p < 4; p++) s += a.data[(i * 3 + j) * 4 + p]! * b.data[(q * 4 + p) * 6 + r]!;
            expect(got[((i * 3 + j) * 5 + q) * 6 + r]).toBe(s);
          }
    // 1-D first operand against N-D
    const v = ints([4], 3);
    using tv = make(v, "f32", 0);
    using c2 = bn.dot(tv, tb);
    expect(c2.shape).toEqual([5, 6]);
    // 0-d multiplies
    using two = bn.tensor(2);
    using c3 = bn.dot(two, tv);
    expect(flat(c3)).toEqual(Array.from(v.data, (x) => 2 * x));
    using c4 = ta.dot(tv);
    expect(c4.shape).toEqual([2, 3]);
  });

  test("outer flattens and multiplies", () => {
    using a = bn.tensor([
      [1, 2],
      [3, 4],
    ]);
    using b = bn.tensor([10, 20, 30], { dtype: "i32" });
    using c = bn.outer(a, b);
    expect(c.shape).toEqual([4, 3]);
    expect(c.dtype).toBe("f32");
    expect(c.toArray()).toEqual([
      [10, 20, 30],
      [20, 40, 60],
      [30, 60, 90],
      [40, 80, 120],
    ]);
  });
});

describe("bad input", () => {
  test("inner dimensions, batch shapes, 0-d operands, non-tensors, disposed operands", () => {
    using a = bn.zeros([2, 3]);
    using b = bn.zeros([4, 5]);
    expect(() => bn.matmul(a, b)).toThrow(bn.ShapeError);
    expect(() => bn.matmul(a, b)).toThrow(/\[2, 3\].*\[4, 5\]/);
    using c = bn.zeros([2, 3, 4]);
    using d = bn.zeros([3, 4, 5]);
    expect(() => bn.matmul(c, d)).toThrow(/batch dimensions \[2\] and \[3\] do not broadcast/);
    using s = bn.tensor(1);
    expect(() => bn.matmul(s, a)).toThrow(bn.ShapeError);
    expect(() => bn.matmul(a, [1, 2] as unknown as bn.Tensor)).toThrow(bn.DTypeError);
    expect(() => bn.dot(a, b)).toThrow(bn.ShapeError);
    const gone = bn.zeros([3, 2]);
    gone.dispose();
    expect(() => bn.matmul(a, gone)).toThrow(bn.DisposedTensorError);
    expect(flat(a)).toEqual([0, 0, 0, 0, 0, 0]);
  });

  test("a failing call leaks nothing", () => {
    using a = bn.zeros([2, 3], { dtype: "f16" });
    using b = bn.zeros([4, 5], { dtype: "i8" });
    const before = bn.memory.stats().bytesInUse;
    for (let i = 0; i < 5; i++) expect(() => bn.matmul(a, b)).toThrow(bn.ShapeError);
    expect(bn.memory.stats().bytesInUse).toBe(before);
  });

  test("shape errors are found before any operand is converted (no allocation at all)", () => {
    using a = bn.zeros([2, 3], { dtype: "f16" });
    using b = bn.zeros([4, 5], { dtype: "i8" });
    using c = bn.zeros([2, 2, 3], { dtype: "bf16" });
    using d = bn.zeros([3, 3, 4], { dtype: "i16" });
    using e = bn.zeros([2, 4, 3], { dtype: "u8" });
    const allocs = bn.memory.stats().allocations;
    expect(() => bn.matmul(a, b)).toThrow(bn.ShapeError);
    expect(() => bn.matmul(c, d)).toThrow(/do not broadcast/);
    expect(() => bn.dot(c, e)).toThrow(/summed dimensions 3 and 4/);
    expect(bn.memory.stats().allocations).toBe(allocs);
  });
});
