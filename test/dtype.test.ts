import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import * as bn from "../src/index.ts";
import { castRef, toBF16, toF16, wrapInt } from "./helpers.ts";

const FLOATS = new Set(["f32", "f16", "bf16"]);
const SPECIAL = [0, -0, 1, -1, 1.5, -2.5, 2.5, 0.1, 65504, 65519, 65520, 1e6, 3e38, -1e9, 2 ** 31, -(2 ** 31) - 5, 300.7, -129, 1e-8, 6e-5, NaN, Infinity, -Infinity];

/** The expected value of converting `v` (already a value of dtype s) to d, per the documented rules. */
function expected(v: number, s: bn.DType, d: bn.DType): number {
  if (!FLOATS.has(s) && !FLOATS.has(d) && d !== "bool") return wrapInt(v, d);
  return castRef(v, d);
}

describe("astype between every pair of dtypes", () => {
  for (const s of bn.DTYPES) {
    test(`from ${s}`, () => {
      using src = bn.tensor(SPECIAL, { dtype: s });
      const vals = (src.toArray() as (number | boolean)[]).map(Number);
      expect(vals).toEqual(SPECIAL.map((v) => castRef(v, s)));
      for (const d of bn.DTYPES) {
        using out = src.astype(d);
        expect(out.dtype).toBe(d);
        expect((out.toArray() as (number | boolean)[]).map(Number)).toEqual(vals.map((v) => expected(v, s, d)));
      }
    });
  }

  test("f16 and bf16 round to nearest even (property over f32 bit patterns)", () => {
    const f = new Float32Array(1);
    const u = new Uint32Array(f.buffer);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 1, maxLength: 64 }), (bits) => {
        const vals = bits.map((b) => ((u[0] = b), f[0]!));
        using t = bn.tensor(Float32Array.from(vals));
        using h = t.astype("f16");
        using b = t.astype("bf16");
        expect(h.toArray()).toEqual(vals.map(toF16));
        expect(b.toArray()).toEqual(vals.map(toBF16));
      }),
      { numRuns: 100 },
    );
  });

  test("t.data types: Float16Array for f16, raw Uint16Array bits for bf16, 0/1 bytes for bool", () => {
    using h = bn.tensor([1.5, -2], { dtype: "f16" });
    expect(h.data).toBeInstanceOf(Float16Array);
    expect(Array.from(h.data as Float16Array)).toEqual([1.5, -2]);
    using b = bn.tensor([1, -2], { dtype: "bf16" });
    expect(b.data).toBeInstanceOf(Uint16Array);
    expect(Array.from(b.data as Uint16Array)).toEqual([0x3f80, 0xc000]);
    using q = bn.tensor([true, false, true]);
    expect(q.data).toBeInstanceOf(Uint8Array);
    expect(Array.from(q.data)).toEqual([1, 0, 1]);
    const ctors: Record<string, unknown> = { f32: Float32Array, i8: Int8Array, i16: Int16Array, i32: Int32Array, u8: Uint8Array, u16: Uint16Array, u32: Uint32Array };
    for (const [d, C] of Object.entries(ctors)) {
      using t = bn.zeros([2], { dtype: d as bn.DType });
      expect(t.data).toBeInstanceOf(C as never);
      expect(t.itemsize).toBe((C as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT);
    }
  });

  test("astype of strided views converts in place of a copy loop", () => {
    using t = bn.arange(12, undefined, undefined, { dtype: "i32" }).reshape([3, 4]);
    using v = t.T.slice([[null, null, 2]]);
    using c = v.astype("f16");
    expect(c.isContiguous()).toBe(true);
    expect(c.toArray()).toEqual([[0, 4, 8], [2, 6, 10]]);
    expect(() => t.astype("f64" as never)).toThrow(bn.DTypeError);
  });

  test("promotion table (NumPy rules restricted to our dtypes)", () => {
    const p = bn.promoteTypes;
    expect(p("bool", "i8")).toBe("i8");
    expect(p("u8", "i8")).toBe("i16");
    expect(p("u16", "i16")).toBe("i32");
    expect(p("u8", "i32")).toBe("i32");
    expect(p("u32", "i8")).toBe("i32");
    expect(p("u8", "u16")).toBe("u16");
    expect(p("i32", "f16")).toBe("f16");
    expect(p("f16", "bf16")).toBe("f32");
    expect(p("bf16", "f32")).toBe("f32");
    for (const a of bn.DTYPES) for (const b of bn.DTYPES) expect(p(a, b)).toBe(p(b, a));
  });
});
