// bn.quant.int8 (src/quant/int8.ts) against an independent float64 reference written here with
// Math.fround where the rule rounds to f32: random shapes and values, f32/f16/bf16 inputs, per
// tensor and per token, symmetric and asymmetric, every SIMD level; plus ties, zero rows,
// NaN/Inf, subnormal maxima, empty tensors, strided inputs, dequantize bounds, errors and leaks.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import * as bn from "../src/index.ts";
import { int8, QuantizedTensor } from "../src/quant/int8.ts";
import { castRef, runnableLevels } from "./helpers.ts";

type FDT = "f32" | "f16" | "bf16";
type Gran = "tensor" | "token";
const F32_MAX = 3.4028234663852886e38;
const fr = Math.fround;
const LEVELS = runnableLevels();
const caps = bn.deviceCapabilities();

// ---- the reference ------------------------------------------------------------------------------

/** Round half to even of a float64 (NaN and ±Infinity pass through). */
function rintEven(v: number): number {
  if (!Number.isFinite(v)) return v;
  const f = Math.floor(v);
  const d = v - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}
const clampNum = (v: number, lo: number, hi: number) => (Number.isNaN(v) ? v : Math.min(Math.max(v, lo), hi));
/** Float to integer as the library stores it: NaN → 0 (values are integral by then). */
const toInt = (v: number) => (Number.isNaN(v) ? 0 : v + 0);

interface RefQ {
  values: number[];
  scale: number[];
  zp: number[];
}

/** Rows of the granularity: the whole tensor, or each row of the last axis. */
function rowsOf(shape: number[], g: Gran): { n: number; len: number } {
  const size = shape.reduce((a, b) => a * b, 1);
  if (g === "tensor") return { n: 1, len: size };
  const len = shape[shape.length - 1]!;
  return { n: len === 0 ? shape.slice(0, -1).reduce((a, b) => a * b, 1) : size / len, len };
}

/** BitNet's absmax rule with the lead's native quantizer's f32 steps (m = 0 → scale 1). */
function refSymmetric(xs: Float64Array, shape: number[], g: Gran): RefQ {
  const { n, len } = rowsOf(shape, g);
  const out: RefQ = { values: new Array(xs.length), scale: [], zp: [] };
  for (let r = 0; r < n; r++) {
    let m = 0;
    for (let j = 0; j < len; j++) {
      const a = Math.abs(xs[r * len + j]!);
      m = Number.isNaN(a) || Number.isNaN(m) ? NaN : Math.max(m, a);
    }
    const s = m === 0 ? 1 : fr(127 / m);
    out.scale.push(s);
    out.zp.push(0);
    for (let j = 0; j < len; j++) out.values[r * len + j] = toInt(clampNum(rintEven(fr(xs[r * len + j]! * s)), -127, 127));
  }
  return out;
}

/** The asymmetric rule as documented: range with 0, s = min(127.5 / (hi/2 − lo/2), F32_MAX). */
function refAsymmetric(xs: Float64Array, shape: number[], g: Gran): RefQ {
  const { n, len } = rowsOf(shape, g);
  const out: RefQ = { values: new Array(xs.length), scale: [], zp: [] };
  for (let r = 0; r < n; r++) {
    let lo = 0;
    let hi = 0;
    for (let j = 0; j < len; j++) {
      const x = xs[r * len + j]!;
      if (Number.isNaN(x) || Number.isNaN(lo)) lo = hi = NaN;
      else {
        lo = Math.min(lo, x);
        hi = Math.max(hi, x);
      }
    }
    const half = fr(fr(hi * 0.5) - fr(lo * 0.5));
    const s = half === 0 ? 1 : Math.min(fr(127.5 / half), F32_MAX);
    const zp = clampNum(rintEven(fr(-lo * s)), 0, 255);
    out.scale.push(s);
    out.zp.push(toInt(zp));
    for (let j = 0; j < len; j++) out.values[r * len + j] = toInt(clampNum(rintEven(fr(xs[r * len + j]! * s)) + zp, 0, 255));
  }
  return out;
}

// ---- helpers ------------------------------------------------------------------------------------

/** The elements of any tensor as float64 (row-major). */
function flat(t: bn.Tensor): number[] {
  using c = t.astype("f32");
  return Array.from(c.data as Float32Array);
}

function expectSameFloats(got: number[], want: number[]): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    if (Number.isNaN(want[i]!)) expect(got[i]).toBeNaN();
    else expect(got[i]).toBe(want[i]!);
  }
}

function make(xs: Float64Array, shape: number[], dtype: FDT): bn.Tensor {
  return bn.tensor(xs, { dtype, shape });
}

function checkAgainstRef(q: QuantizedTensor, xs: Float64Array, shape: number[], g: Gran, symmetric: boolean): void {
  const want = symmetric ? refSymmetric(xs, shape, g) : refAsymmetric(xs, shape, g);
  expect(q.values.dtype).toBe(symmetric ? "i8" : "u8");
  expect(q.values.shape).toEqual(shape);
  expect(q.scale.dtype).toBe("f32");
  expect(q.scale.shape).toEqual(g === "tensor" ? [] : [...shape.slice(0, -1), 1]);
  expect(q.zeroPoint.dtype).toBe("i32");
  expect(q.zeroPoint.shape).toEqual(q.scale.shape);
  expect(q.granularity).toBe(g);
  expect(q.symmetric).toBe(symmetric);
  expect(Array.from(q.values.data as Int8Array | Uint8Array)).toEqual(want.values);
  expectSameFloats(Array.from(q.scale.data as Float32Array), want.scale);
  expect(Array.from(q.zeroPoint.data as Int32Array)).toEqual(want.zp);
}

/** Values an f32/f16/bf16 tensor holds exactly: a mix of wide, small, tie-prone and zero values. */
function arbValue(d: FDT): fc.Arbitrary<number> {
  const wide = d === "f16" ? fc.float({ min: -65504, max: 65504, noNaN: true }) : fc.float({ noNaN: true, noDefaultInfinity: true });
  return fc
    .oneof(
      { arbitrary: wide, weight: 1 },
      { arbitrary: fc.float({ min: -8, max: 8, noNaN: true }), weight: 4 },
      { arbitrary: fc.integer({ min: -600, max: 600 }).map((i) => i / 4), weight: 3 },
      { arbitrary: fc.constantFrom(0, -0, 127, -127, 0.5, -2.5), weight: 1 },
    )
    .map((v) => castRef(v, d));
}

const arbShape = fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 0, maxLength: 4 });

const arbCase = fc
  .record({
    shape: arbShape,
    dtype: fc.constantFrom<FDT>("f32", "f16", "bf16"),
    granularity: fc.constantFrom<Gran>("tensor", "token"),
    symmetric: fc.boolean(),
  })
  .filter((c) => c.shape.reduce((a, b) => a * b, 1) <= 400 && !(c.granularity === "token" && c.shape.length === 0))
  .chain((c) =>
    fc.array(arbValue(c.dtype), { minLength: c.shape.reduce((a, b) => a * b, 1), maxLength: c.shape.reduce((a, b) => a * b, 1) }).map((vals) => ({ ...c, xs: Float64Array.from(vals) })),
  );

// ---- properties ---------------------------------------------------------------------------------

describe("against the reference", () => {
  test("random shapes, dtypes, granularities and modes: values, scales and zero points are exact", () => {
    fc.assert(
      fc.property(arbCase, ({ shape, dtype, granularity, symmetric, xs }) => {
        using x = make(xs, shape, dtype);
        const before = flat(x);
        using q = int8(x, { granularity, symmetric });
        checkAgainstRef(q, xs, shape, granularity, symmetric);
        expect(flat(x)).toEqual(before); // operand unchanged
        expect(x.dtype).toBe(dtype);
      }),
      { numRuns: 400 },
    );
  });

  test("the symmetric rule is bit-identical at every SIMD level (long rows cross vector widths)", () => {
    const arb = fc.record({
      rows: fc.integer({ min: 1, max: 4 }),
      len: fc.integer({ min: 1, max: 300 }),
      seed: fc.integer({ min: 0, max: 1 << 30 }),
      dtype: fc.constantFrom<FDT>("f32", "f16", "bf16"),
    });
    try {
      fc.assert(
        fc.property(arb, ({ rows, len, seed, dtype }) => {
          using r = bn.randn([rows, len], { seed });
          using scaled = r.mul(seed % 7 === 0 ? 1e-3 : 3);
          using x = scaled.astype(dtype);
          const xs = Float64Array.from(flat(x));
          for (const level of LEVELS) {
            bn.setSimdLevel(level);
            for (const g of ["tensor", "token"] as const) {
              for (const symmetric of [true, false]) {
                using q = int8(x, { granularity: g, symmetric });
                checkAgainstRef(q, xs, [rows, len], g, symmetric);
              }
            }
          }
        }),
        { numRuns: 30 },
      );
    } finally {
      bn.setSimdLevel(caps.simdDetected);
    }
  });

  test("dequantize is within half a step (1/(2·scale)) of every finite input", () => {
    fc.assert(
      fc.property(arbCase, ({ shape, dtype, granularity, symmetric, xs }) => {
        using x = make(xs, shape, dtype);
        using q = int8(x, { granularity, symmetric });
        using d = q.dequantize();
        expect(d.dtype).toBe("f32");
        expect(d.shape).toEqual(shape);
        const deq = flat(d);
        const vals = Array.from(q.values.data as Int8Array | Uint8Array);
        const scale = Array.from(q.scale.data as Float32Array);
        const zp = Array.from(q.zeroPoint.data as Int32Array);
        const { n, len } = rowsOf(shape, granularity);
        for (let r = 0; r < n; r++) {
          const row = Array.from(xs.subarray(r * len, (r + 1) * len));
          const s = scale[r]!;
          // (values − zp) / scale in f32
          for (let j = 0; j < len; j++) expect(deq[r * len + j]).toBe(fr((vals[r * len + j]! - zp[r]!) / s));
          if (!row.every(Number.isFinite)) {
            for (let j = 0; j < len; j++) expect(deq[r * len + j]).toBeNaN();
            continue;
          }
          const big = Math.max(0, ...row.map(Math.abs));
          if (big === 0) {
            expect(s).toBe(1);
            for (let j = 0; j < len; j++) expect(deq[r * len + j]).toBe(0);
            continue;
          }
          if (s === Infinity) {
            // a subnormal maximum: 127 / m overflows; everything dequantizes to 0
            expect(big).toBeLessThan(127 / F32_MAX);
            for (let j = 0; j < len; j++) expect(Math.abs(deq[r * len + j]!)).toBe(0);
            continue;
          }
          const slack = 4 * big * 2 ** -24 + 2 ** -149;
          for (let j = 0; j < len; j++) {
            const v = vals[r * len + j]!;
            const step = !symmetric && (v === 0 || v === 255) ? 1 : 0.5; // asymmetric clamps may cost a full step
            if (!Number.isFinite(deq[r * len + j]!)) {
              // (q − zp) / scale overflowed: only within a step of the largest f32 (documented)
              expect(Math.abs(row[j]!)).toBeGreaterThanOrEqual(F32_MAX - 1 / s);
              expect(Math.sign(deq[r * len + j]!)).toBe(Math.sign(row[j]!));
              continue;
            }
            expect(Math.abs(deq[r * len + j]! - row[j]!)).toBeLessThanOrEqual(step / s + slack);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  test("dequantize to f16 / bf16 rounds the f32 result once", () => {
    fc.assert(
      fc.property(arbCase, ({ shape, dtype, granularity, symmetric, xs }) => {
        using x = make(xs, shape, dtype);
        using q = int8(x, { granularity, symmetric });
        using d32 = q.dequantize("f32");
        const want = flat(d32);
        for (const half of ["f16", "bf16"] as const) {
          using d = q.dequantize(half);
          expect(d.dtype).toBe(half);
          expectSameFloats(flat(d), want.map((v) => castRef(v, half)));
        }
      }),
      { numRuns: 100 },
    );
  });

  test("strided views quantize like their contiguous copies and stay unchanged", () => {
    using base = bn.randn([5, 7, 3], { seed: 4 });
    using v = base.permute([2, 0, 1]).slice([null, [null, null, 2], null]); // [3, 3, 7], strided
    expect(v.isContiguous()).toBe(false);
    using c = v.contiguous();
    const before = flat(base);
    for (const g of ["tensor", "token"] as const) {
      for (const symmetric of [true, false]) {
        using a = int8(v, { granularity: g, symmetric });
        using b = int8(c, { granularity: g, symmetric });
        checkAgainstRef(a, Float64Array.from(flat(c)), c.shape, g, symmetric);
        expect(Array.from(a.values.data as Int8Array)).toEqual(Array.from(b.values.data as Int8Array));
      }
    }
    expect(flat(base)).toEqual(before);
  });
});

// ---- fixed cases --------------------------------------------------------------------------------

describe("fixed values", () => {
  test("defaults: per tensor, symmetric, scale = 127 / max|x|, ties to even", () => {
    using x = bn.tensor([127, 0.5, 1.5, 2.5, -0.5, -2.5, -127, 3.49]);
    using q = int8(x);
    expect(q.granularity).toBe("tensor");
    expect(q.symmetric).toBe(true);
    expect(q.scale.item()).toBe(1);
    expect(q.values.toArray()).toEqual([127, 0, 2, 2, 0, -2, -127, 3]);
    expect(q.zeroPoint.item()).toBe(0);
    expect(q.shape).toEqual([8]);
  });

  test("BitNet's example row: [1, -2, 4] → scale 31.75, values [32, -64, 127]", () => {
    using x = bn.tensor([[1, -2, 4], [0.5, 0.25, -0.125]]);
    using q = int8(x, { granularity: "token" });
    expect(q.scale.shape).toEqual([2, 1]);
    expect(q.scale.toArray()).toEqual([[31.75], [254]]);
    expect(q.values.toArray()).toEqual([
      [32, -64, 127],
      [127, 64, -32],
    ]);
    using d = q.dequantize();
    expect(d.toArray()).toEqual([
      [32 / 31.75, -64 / 31.75, 4].map(fr),
      [127 / 254, 64 / 254, -32 / 254].map(fr),
    ]);
  });

  test("all-zero rows (and -0) give values 0, scale 1 and exact zeros back, beside normal rows", () => {
    using x = bn.tensor([
      [0, -0, 0],
      [3, 0, -1.5],
      [-0, -0, -0],
    ]);
    for (const symmetric of [true, false]) {
      using q = int8(x, { granularity: "token", symmetric });
      expect(q.scale.toArray()).toEqual(symmetric ? [[1], [127 / 3], [1]].map((r) => r.map(fr)) : [[1], [255 / 4.5], [1]].map((r) => r.map(fr)));
      using d = q.dequantize();
      const rows = d.toArray() as number[][];
      for (const i of [0, 2]) for (const v of rows[i]!) expect(Object.is(v, 0) || Object.is(v, -0)).toBe(true);
      expect(flat(d).every(Number.isFinite)).toBe(true);
      expect(flat(q.scale).every(Number.isFinite)).toBe(true);
    }
    using t = bn.zeros([2, 3]);
    using q = int8(t);
    expect(q.scale.item()).toBe(1);
    expect(flat(q.values)).toEqual([0, 0, 0, 0, 0, 0]);
  });

  test("asymmetric: the range includes 0, so 0 is exact; the zero point places it", () => {
    using x = bn.tensor([[1, 2, 3], [-1, -2, -4], [-1, 0, 3]]);
    using q = int8(x, { granularity: "token", symmetric: false });
    expect(q.values.dtype).toBe("u8");
    expect(q.scale.toArray()).toEqual([[85], [63.75], [63.75]]);
    expect(q.zeroPoint.toArray()).toEqual([[0], [255], [64]]);
    expect(q.values.toArray()).toEqual([
      [85, 170, 255],
      [191, 127, 0], // -127.5 rounds to -128 (even), + 255
      [0, 64, 255],
    ]);
    using d = q.dequantize();
    expect((d.toArray() as number[][])[2]![1]).toBe(0);
    expect((d.toArray() as number[][])[0]).toEqual([1, 2, 3]);
  });

  test("NaN rows: scale NaN, values 0, dequantized NaN; the other rows are unaffected", () => {
    using x = bn.tensor([
      [1, NaN, -2],
      [1, -2, 4],
    ]);
    for (const symmetric of [true, false]) {
      using q = int8(x, { granularity: "token", symmetric });
      const s = flat(q.scale);
      expect(s[0]).toBeNaN();
      expect(s[1]).toBe(symmetric ? 31.75 : fr(255 / 6));
      expect(flat(q.values).slice(0, 3)).toEqual([0, 0, 0]);
      expect(flat(q.zeroPoint)[0]).toBe(0);
      using d = q.dequantize();
      const dv = flat(d);
      expect(dv.slice(0, 3).every(Number.isNaN)).toBe(true);
      expect(dv.slice(3).every(Number.isFinite)).toBe(true);
      // per tensor, one NaN poisons everything
      using qt = int8(x, { symmetric });
      expect(qt.scale.item()).toBeNaN();
      expect(flat(qt.values).every((v) => v === 0)).toBe(true);
    }
  });

  test("±Infinity rows: max = Inf, scale 0, values 0 (Inf·0 is NaN, stored 0), dequantized NaN", () => {
    using x = bn.tensor([
      [Infinity, 1, -3],
      [1, -Infinity, 0],
      [1, -2, 4],
    ]);
    for (const symmetric of [true, false]) {
      using q = int8(x, { granularity: "token", symmetric });
      const s = flat(q.scale);
      expect(s.slice(0, 2)).toEqual([0, 0]);
      expect(flat(q.values).slice(0, 6)).toEqual([0, 0, 0, 0, 0, 0]);
      using d = q.dequantize();
      const dv = flat(d);
      expect(dv.slice(0, 6).every(Number.isNaN)).toBe(true);
      expect(dv.slice(6).every(Number.isFinite)).toBe(true);
    }
  });

  test("a subnormal maximum overflows 127/m to Infinity: ±127 where x ≠ 0, zeros back", () => {
    using x = bn.tensor([1e-45, -4e-45, 0, 2e-45]); // f32 subnormals
    using q = int8(x);
    expect(q.scale.item()).toBe(Infinity);
    expect(q.values.toArray()).toEqual([127, -127, 0, 127]);
    using d = q.dequantize();
    expect(flat(d).every((v) => v === 0)).toBe(true);
    // just above the threshold s is finite and the rule is the ordinary one
    const m = fr(127 / F32_MAX) * 2;
    using y = bn.tensor([m, -m / 4]);
    using qy = int8(y);
    expect(Number.isFinite(qy.scale.item() as number)).toBe(true);
    expect(qy.values.toArray()).toEqual([127, -32]);
    // asymmetric: s is capped at the largest f32
    using qa = int8(x, { symmetric: false });
    expect(qa.scale.item()).toBe(F32_MAX);
    using da = qa.dequantize();
    expect(flat(da).every(Number.isFinite)).toBe(true);
  });

  test("huge ranges do not overflow (asymmetric halves before subtracting)", () => {
    const vals = [3e38, -3e38, 0, 1e38];
    const xs = Float64Array.from(vals.map(fr));
    using x = bn.tensor(vals);
    using q = int8(x, { symmetric: false });
    expect(q.scale.item()).toBe(fr(127.5 / fr(3e38)));
    checkAgainstRef(q, xs, [4], "tensor", false);
    using d = q.dequantize();
    const dv = flat(d);
    for (let i = 0; i < 4; i++) expect(Math.abs(dv[i]! - xs[i]!)).toBeLessThanOrEqual(1 / (q.scale.item() as number));
    using qs = int8(x);
    expect(qs.values.toArray()).toEqual([127, -127, 0, 42]);
    // at the very top of f32, (q − zp) / scale can exceed the largest f32: ±Infinity (documented)
    using top = bn.tensor([F32_MAX, -F32_MAX]);
    using qt = int8(top, { symmetric: false });
    checkAgainstRef(qt, Float64Array.from([F32_MAX, -F32_MAX]), [2], "tensor", false);
    using dt = qt.dequantize();
    for (const v of flat(dt)) expect(Number.isNaN(v)).toBe(false);
  });

  test("0-d and empty tensors", () => {
    using s = bn.tensor(-3);
    using q = int8(s);
    expect(q.values.shape).toEqual([]);
    expect(q.values.item()).toBe(-127);
    expect(q.scale.item()).toBe(fr(127 / 3));
    for (const shape of [[0], [3, 0], [0, 4], [2, 0, 5]]) {
      using e = bn.zeros(shape);
      for (const g of ["tensor", "token"] as const) {
        for (const symmetric of [true, false]) {
          using qe = int8(e, { granularity: g, symmetric });
          expect(qe.values.shape).toEqual(shape);
          expect(qe.scale.shape).toEqual(g === "tensor" ? [] : [...shape.slice(0, -1), 1]);
          expect(flat(qe.scale).every((v) => v === 1)).toBe(true);
          using d = qe.dequantize();
          expect(d.shape).toEqual(shape);
        }
      }
    }
  });

  test("1-d per token: one row, scale shape [1]", () => {
    using x = bn.tensor([2, -1]);
    using q = int8(x, { granularity: "token" });
    expect(q.scale.shape).toEqual([1]);
    expect(q.values.toArray()).toEqual([127, -64]);
  });
});

// ---- errors and lifetime ------------------------------------------------------------------------

describe("errors", () => {
  function thrown(f: () => unknown): Error {
    try {
      f();
    } catch (e) {
      return e as Error;
    }
    throw new Error("did not throw");
  }

  test("non-float inputs are DTypeErrors naming the op, dtype and shape", () => {
    for (const d of ["i8", "u8", "i32", "bool"] as const) {
      using x = bn.zeros([2, 3], { dtype: d });
      const e = thrown(() => int8(x));
      expect(e).toBeInstanceOf(bn.DTypeError);
      expect(e.message).toMatch(new RegExp(`^quant\\.int8: .*${d} \\[2, 3\\]`));
      expect((e as bn.BitNetError).op).toBe("quant.int8");
    }
    expect(() => int8([1, 2] as never)).toThrow(bn.DTypeError);
    expect(() => int8(null as never)).toThrow(bn.DTypeError);
  });

  test("0-d input per token is a ShapeError", () => {
    using x = bn.tensor(1.5);
    const e = thrown(() => int8(x, { granularity: "token" }));
    expect(e).toBeInstanceOf(bn.ShapeError);
    expect(e.message).toMatch(/quant\.int8: .*0-d/);
  });

  test("bad options are ValueErrors", () => {
    using x = bn.ones([2, 2]);
    expect(() => int8(x, { granularity: "channel" } as never)).toThrow(bn.ValueError);
    expect(() => int8(x, { symmetric: 1 } as never)).toThrow(bn.ValueError);
    expect(() => int8(x, { axis: 0 } as never)).toThrow(/unknown option "axis"/);
    expect(() => int8(x, "token" as never)).toThrow(bn.ValueError);
    expect(() => int8(x, [] as never)).toThrow(bn.ValueError);
    using ok = int8(x, { granularity: undefined, symmetric: undefined });
    expect(ok.granularity).toBe("tensor");
  });

  test("disposed tensors: the input, and a QuantizedTensor after dispose()", () => {
    const x = bn.ones([2]);
    x.dispose();
    expect(() => int8(x)).toThrow(bn.DisposedTensorError);
    using y = bn.ones([2]);
    const q = int8(y);
    q.dispose();
    expect(q.disposed).toBe(true);
    expect(() => q.dequantize()).toThrow(bn.DisposedTensorError);
    expect(q.values.disposed && q.scale.disposed && q.zeroPoint.disposed).toBe(true);
    q.dispose(); // idempotent
    expect(String(q)).toBe("QuantizedTensor(disposed)");
  });

  test("dequantize to a non-float dtype is a DTypeError", () => {
    using y = bn.ones([2]);
    using q = int8(y);
    expect(() => q.dequantize("i8")).toThrow(bn.DTypeError);
    expect(() => q.dequantize("f64" as never)).toThrow(bn.DTypeError);
  });

  test("the constructor checks its parts", () => {
    using v = bn.zeros([2, 3], { dtype: "i8" });
    using s = bn.ones([2, 1]);
    using z = bn.zeros([2, 1], { dtype: "i32" });
    using f = bn.zeros([2, 3]);
    using s0 = bn.ones([]);
    expect(() => new QuantizedTensor(f, s, z, "token")).toThrow(bn.DTypeError);
    expect(() => new QuantizedTensor(v, z, z, "token")).toThrow(bn.DTypeError);
    expect(() => new QuantizedTensor(v, s, s, "token")).toThrow(bn.DTypeError);
    expect(() => new QuantizedTensor(v, s, z, "tensor")).toThrow(bn.ShapeError);
    expect(() => new QuantizedTensor(v, s0, z, "tensor")).toThrow(bn.ShapeError);
    expect(() => new QuantizedTensor(v, s, z, "row" as never)).toThrow(bn.ValueError);
  });
});

describe("lifetime", () => {
  test("nothing leaks: quantizing, dequantizing, every error path; dispose releases 3 tensors", () => {
    using x = bn.tensor([
      [1, NaN, -2],
      [0, 0, 0],
    ]);
    using xi = bn.zeros([2], { dtype: "i32" });
    using x0 = bn.tensor(2);
    using xe = bn.zeros([3, 0]);
    Bun.gc(true);
    const before = bn.memory.stats();
    for (const g of ["tensor", "token"] as const) {
      for (const symmetric of [true, false]) {
        for (const dtype of ["f32", "f16", "bf16"] as const) {
          using xd = x.astype(dtype);
          using q = int8(xd, { granularity: g, symmetric });
          q.dequantize().dispose();
          q.dequantize("bf16").dispose();
        }
        using qe = int8(xe, { granularity: g, symmetric });
      }
    }
    expect(() => int8(xi)).toThrow();
    expect(() => int8(x0, { granularity: "token" })).toThrow();
    expect(() => int8(x, { foo: 1 } as never)).toThrow();
    {
      using q = int8(x);
      expect(() => q.dequantize("i32")).toThrow();
    }
    expect(bn.memory.stats().liveTensors).toBe(before.liveTensors);
    expect(bn.memory.stats().bytesInUse).toBe(before.bytesInUse);

    const q = int8(x);
    expect(bn.memory.stats().liveTensors).toBe(before.liveTensors + 3);
    q.dispose();
    expect(bn.memory.stats().liveTensors).toBe(before.liveTensors);
    {
      using q2 = int8(x, { symmetric: false });
      expect(String(q2)).toBe("QuantizedTensor(u8 [2, 3], asymmetric, per tensor)");
    }
    expect(bn.memory.stats().liveTensors).toBe(before.liveTensors);
  });
});
