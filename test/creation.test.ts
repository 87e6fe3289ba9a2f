import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import * as bn from "../src/index.ts";
import { castRef, toF32 } from "./helpers.ts";

describe("tensor()", () => {
  test("nested arrays: shape inferred, values copied, default f32", () => {
    using t = bn.tensor([[1, 2, 3], [4, 5, 6]]);
    expect(t.shape).toEqual([2, 3]);
    expect(t.dtype).toBe("f32");
    expect(t.ndim).toBe(2);
    expect(t.size).toBe(6);
    expect(t.strides).toEqual([3, 1]);
    expect(t.toArray()).toEqual([[1, 2, 3], [4, 5, 6]]);
    expect(t.device).toBe("cpu");
  });

  test("scalars make 0-d tensors", () => {
    using a = bn.tensor(3.5);
    expect(a.shape).toEqual([]);
    expect(a.item()).toBe(3.5);
    expect(a.toArray()).toBe(3.5);
    using b = bn.tensor(true);
    expect(b.dtype).toBe("bool");
    expect(b.item()).toBe(true);
  });

  test("booleans infer bool; TypedArrays infer their own dtype and are copied", () => {
    using b = bn.tensor([[true, false], [false, true]]);
    expect(b.dtype).toBe("bool");
    expect(b.toArray()).toEqual([[true, false], [false, true]]);
    const src = new Int16Array([1, -2, 300]);
    using t = bn.tensor(src);
    expect(t.dtype).toBe("i16");
    src[0] = 99;
    expect(t.toArray()).toEqual([1, -2, 300]);
    using d = bn.tensor(new Float64Array([0.1, 0.2]));
    expect(d.dtype).toBe("f32");
    expect(d.toArray()).toEqual([toF32(0.1), toF32(0.2)]);
    using h = bn.tensor(new Float16Array([1.5, -2]));
    expect(h.dtype).toBe("f16");
    expect(h.data).toBeInstanceOf(Float16Array);
  });

  test("shape option reshapes flat data; dtype option converts", () => {
    using t = bn.tensor([1, 2, 3, 4, 5, 6], { shape: [3, 2], dtype: "i32" });
    expect(t.shape).toEqual([3, 2]);
    expect(t.dtype).toBe("i32");
    expect(t.data).toEqual(new Int32Array([1, 2, 3, 4, 5, 6]));
  });

  test("property: any nested data round-trips through every dtype as castRef says", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -1e5, max: 1e5, noNaN: true }), { minLength: 0, maxLength: 40 }),
        fc.constantFrom(...bn.DTYPES),
        (values, dtype) => {
          using t = bn.tensor(values, { dtype });
          const got = t.toArray() as (number | boolean)[];
          expect(got.map(Number)).toEqual(values.map((v) => castRef(v, dtype)));
        },
      ),
      { numRuns: 60 },
    );
  });

  test("bad input: ragged, wrong types, size mismatch, unknown dtype, BigInt", () => {
    expect(() => bn.tensor([[1, 2], [3]])).toThrow(bn.ShapeError);
    expect(() => bn.tensor([[1, 2], 3] as never)).toThrow(bn.ShapeError);
    expect(() => bn.tensor([1, [2]] as never)).toThrow(/ragged/);
    expect(() => bn.tensor(["a"] as never)).toThrow(bn.DTypeError);
    expect(() => bn.tensor([1, 2, 3], { shape: [2, 2] })).toThrow(/3 elements but shape \[2, 2\]/);
    expect(() => bn.tensor([1], { dtype: "f64" as never })).toThrow(bn.DTypeError);
    expect(() => bn.tensor([1], { dtype: "float32" as never })).toThrow(/unknown dtype "float32"/);
    expect(() => bn.tensor(new BigInt64Array(2) as never)).toThrow(bn.DTypeError);
    expect(() => bn.tensor(null as never)).toThrow(bn.BitNetError);
  });
});

describe("filled creation", () => {
  test("zeros, ones, full, empty for every dtype", () => {
    for (const dtype of bn.DTYPES) {
      using z = bn.zeros([2, 3], { dtype });
      using o = bn.ones([3], { dtype });
      using f = bn.full([2], 7.75, { dtype });
      using e = bn.empty([4, 0, 2], { dtype });
      expect(z.dtype).toBe(dtype);
      expect((z.toArray() as unknown[][]).flat().map(Number)).toEqual([0, 0, 0, 0, 0, 0]);
      expect((o.toArray() as unknown[]).map(Number)).toEqual([1, 1, 1]);
      expect((f.toArray() as unknown[]).map(Number)).toEqual([castRef(7.75, dtype), castRef(7.75, dtype)]);
      expect(e.shape).toEqual([4, 0, 2]);
      expect(e.size).toBe(0);
    }
    using b = bn.full([2], true, { dtype: "bool" });
    expect(b.toArray()).toEqual([true, true]);
    using n = bn.zeros(5);
    expect(n.shape).toEqual([5]);
  });

  test("bad shapes: negative, fractional, NaN, too many dimensions", () => {
    for (const bad of [[-1], [2.5], [NaN], [Infinity], ["3"], [1, -3]]) {
      expect(() => bn.zeros(bad as never)).toThrow(bn.ShapeError);
      expect(() => bn.empty(bad as never)).toThrow(/invalid dimension/);
    }
    expect(() => bn.ones(new Array(33).fill(1))).toThrow(/at most 32/);
    expect(() => bn.zeros([2], { dtype: "int" as never })).toThrow(bn.DTypeError);
    expect(() => bn.full([2], "x" as never)).toThrow(bn.DTypeError);
  });
});

describe("ranges", () => {
  test("arange follows NumPy's length and values", () => {
    const cases: [number, number | undefined, number | undefined][] = [
      [5, undefined, undefined],
      [1, 7, 2],
      [5, 0, -1.5],
      [0, 1, 0.1],
      [3, 3, 1],
      [3, 1, 1],
    ];
    for (const [a, b, s] of cases) {
      using t = bn.arange(a, b, s);
      const start = b === undefined ? 0 : a;
      const stop = b === undefined ? a : b;
      const step = s ?? 1;
      const n = Math.max(0, Math.ceil((stop - start) / step));
      expect(t.shape).toEqual([n]);
      expect(t.toArray()).toEqual(Array.from({ length: n }, (_, i) => toF32(start + i * step)));
    }
    using i = bn.arange(-3, 3, 1, { dtype: "i8" });
    expect(i.toArray()).toEqual([-3, -2, -1, 0, 1, 2]);
    expect(() => bn.arange(0, 5, 0)).toThrow(bn.ValueError);
    expect(() => bn.arange(NaN)).toThrow(bn.ValueError);
  });

  test("linspace includes the endpoint exactly (or not, when asked)", () => {
    using t = bn.linspace(-1, 2, 7);
    const step = 3 / 6;
    expect(t.toArray()).toEqual(Array.from({ length: 7 }, (_, i) => (i === 6 ? 2 : toF32(-1 + i * step))));
    using u = bn.linspace(0, 1, 4, { endpoint: false });
    expect(u.toArray()).toEqual([0, 0.25, 0.5, 0.75]);
    using one = bn.linspace(5, 9, 1);
    expect(one.toArray()).toEqual([5]);
    using none = bn.linspace(0, 1, 0);
    expect(none.shape).toEqual([0]);
    expect(() => bn.linspace(0, 1, -1)).toThrow(bn.ShapeError);
    expect(() => bn.linspace(0, 1, 2.5)).toThrow(bn.ShapeError);
  });

  test("eye with offsets and shapes", () => {
    using a = bn.eye(3);
    expect(a.toArray()).toEqual([[1, 0, 0], [0, 1, 0], [0, 0, 1]]);
    using b = bn.eye(2, 4, { k: 2, dtype: "u8" });
    expect(b.toArray()).toEqual([[0, 0, 1, 0], [0, 0, 0, 1]]);
    using c = bn.eye(3, 2, { k: -1, dtype: "bool" });
    expect(c.toArray()).toEqual([[false, false], [true, false], [false, true]]);
    expect(() => bn.eye(-2)).toThrow(bn.ShapeError);
    expect(() => bn.eye(2, 2, { k: 0.5 })).toThrow(bn.ValueError);
  });
});
