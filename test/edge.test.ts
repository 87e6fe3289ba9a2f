// Edge values at every SIMD level this CPU runs: signed zeros, infinities, NaN propagation,
// subnormals, f16/bf16 overflow and rounding, integer wrapping, division by zero and saturating
// conversions. References are float64 computations written here (rounded with the IEEE helpers
// of helpers.ts) or NumPy's documented answers; where this library deliberately differs from
// NumPy the test says so and checks the documented rule (docs/tensor_implementation_guide.md).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as bn from "../src/index.ts";
import { castRef, toBF16, toF16, toF32, wrapInt, runnableLevels } from "./helpers.ts";

const FLOAT = ["f32", "f16", "bf16"] as const;
const INT = ["i8", "i16", "i32", "u8", "u16", "u32"] as const;
const round: Record<string, (x: number) => number> = { f32: toF32, f16: toF16, bf16: toBF16 };
const vals = (t: bn.Tensor) => Array.from(t._toFloat64("test"));

/** Same value, with the sign of zero and NaN-ness compared too. */
const same = (a: number, b: number) => Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));
const show = (v: number) => (Object.is(v, -0) ? "-0" : String(v));

/** Repeats `xs` to at least 67 elements, so the values go through full vectors (64 i8 lanes at
 * AVX-512) and the scalar tail alike. */
function pad<T>(xs: T[]): T[] {
  const out: T[] = [];
  while (out.length < 67) out.push(...xs);
  return out;
}

/** op(x) for each x, in dtype d, against ref(x) (a float64 value, already in d). */
function unary(op: (t: bn.Tensor) => bn.Tensor, d: bn.DType, xs: number[], ref: (x: number) => number, outD: bn.DType = d): void {
  const p = pad(xs);
  using t = bn.tensor(p, { dtype: d });
  using o = op(t);
  expect(o.dtype).toBe(outD);
  const got = vals(o);
  const bad = p.flatMap((x, k) => (same(got[k]!, ref(x)) ? [] : [`${d} x=${show(x)}: got ${show(got[k]!)}, want ${show(ref(x))}`]));
  expect(bad).toEqual([]);
}

/** op(x, y) pairwise, in dtype d, against ref(x, y). */
function binary(op: (a: bn.Tensor, b: bn.Tensor) => bn.Tensor, d: bn.DType, pairs: [number, number][], ref: (x: number, y: number) => number, outD: bn.DType = d): void {
  const p = pad(pairs);
  using a = bn.tensor(p.map((q) => q[0]), { dtype: d });
  using b = bn.tensor(p.map((q) => q[1]), { dtype: d });
  using o = op(a, b);
  expect(o.dtype).toBe(outD);
  const got = vals(o);
  const bad = p.flatMap(([x, y], k) => (same(got[k]!, ref(x, y)) ? [] : [`${d} (${show(x)}, ${show(y)}): got ${show(got[k]!)}, want ${show(ref(x, y))}`]));
  expect(bad).toEqual([]);
  // A broadcast scalar operand takes another kernel path: the same answers.
  for (const [x, y] of pairs.slice(0, 4)) {
    using s = bn.tensor(y, { dtype: d });
    using a1 = bn.tensor(pad([x]), { dtype: d });
    using o1 = op(a1, s);
    expect(vals(o1).map(show)).toEqual(pad([x]).map(() => show(ref(x, y))));
  }
}

/** ulp of an f32 value (subnormal spacing near 0). */
const ulp32 = (r: number) => 2 ** (Math.max(Math.floor(Math.log2(Math.abs(r) || 2 ** -149)), -126) - 23);

const caps = bn.deviceCapabilities();
const LEVELS = runnableLevels();

test("edge tests run at several SIMD levels", () => {
  expect(LEVELS).toContain(caps.simdDetected);
  expect(LEVELS.length).toBeGreaterThanOrEqual(caps.arch === "x64" ? 3 : 2);
});

const NaN_ = NaN;
const inf = Infinity;
const sub32 = 2 ** -149; // the smallest f32 subnormal
const sub16 = 2 ** -24; // the smallest f16 subnormal

for (const level of LEVELS) {
  describe(`SIMD ${level}`, () => {
    beforeAll(() => bn.setSimdLevel(level));
    afterAll(() => bn.setSimdLevel(caps.simdDetected));

    describe("signed zeros (IEEE 754, as NumPy)", () => {
      for (const d of FLOAT) {
        test(`${d}: neg, mul, add, sub, div keep the sign of zero`, () => {
          unary(bn.neg, d, [0, -0, 1.5], (x) => -x);
          binary(bn.mul, d, [[-0, 1], [0, -1], [-0, -0], [-0, 0], [-2, 0]], (x, y) => x * y);
          binary(bn.add, d, [[-0, -0], [-0, 0], [0, -0], [1, -1]], (x, y) => x + y); // x - x = +0
          binary(bn.sub, d, [[-0, 0], [0, 0], [-0, -0], [0, -0]], (x, y) => x - y);
          binary(bn.div, d, [[1, -0], [-1, 0], [0, -3], [-0, 5], [0, 0]], (x, y) => x / y);
        });
        test(`${d}: sqrt, round, floor, ceil, abs, odd functions of -0`, () => {
          unary(bn.sqrt, d, [-0, 0], Math.sqrt); // sqrt(-0) = -0
          unary(bn.round, d, [-0.4, -0.5, -0, 0.4, 0.5, -1.5, 2.5], (x) => {
            const r = Math.round(x);
            const even = Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : r;
            return even === 0 ? (x < 0 || Object.is(x, -0) ? -0 : 0) : even;
          });
          unary(bn.floor, d, [-0, 0.5, -0.5], (x) => Math.floor(x));
          unary(bn.ceil, d, [-0.4, -0, 0.4], (x) => Math.ceil(x)); // Math.ceil(-0.4) = -0, as C
          unary(bn.abs, d, [-0, 0, -2], Math.abs);
          unary(bn.sin, d, [-0, 0], (x) => x);
          unary(bn.tanh, d, [-0, 0], (x) => x);
          unary(bn.erf, d, [-0, 0], (x) => x);
          unary(bn.exp, d, [-0, 0], () => 1);
          unary(bn.log, d, [-0, 0], () => -inf); // log(±0) = -inf
          unary(bn.rsqrt, d, [-0, 0], (x) => 1 / Math.sqrt(x)); // 1 / sqrt(-0) = -inf, as NumPy's 1/np.sqrt
        });
        test(`${d}: sign(-0) is documented as -0 (NumPy answers +0; the two compare equal)`, () => {
          unary(bn.sign, d, [-0, 0, -3, 7], (x) => (x > 0 ? 1 : x < 0 ? -1 : x));
          using s = bn.sign(bn.tensor([-0], { dtype: d }));
          expect(vals(s)[0] === 0).toBe(true); // NumPy's +0 equals it
        });
      }
    });

    describe("infinities and NaN", () => {
      for (const d of FLOAT) {
        test(`${d}: arithmetic with ±inf and NaN propagates like NumPy`, () => {
          const r = round[d]!;
          const pairs: [number, number][] = [[inf, -inf], [inf, 0], [inf, 2], [-inf, -inf], [NaN_, 1], [1, NaN_], [NaN_, NaN_], [NaN_, inf], [-inf, 0.5]];
          binary(bn.add, d, pairs, (x, y) => r(x + y));
          binary(bn.sub, d, pairs, (x, y) => r(x - y));
          binary(bn.mul, d, pairs, (x, y) => r(x * y));
          binary(bn.div, d, pairs, (x, y) => r(x / y));
        });
        test(`${d}: maximum and minimum propagate NaN from either side (NumPy, not fmax)`, () => {
          const pairs: [number, number][] = [[NaN_, 1], [1, NaN_], [NaN_, -inf], [inf, NaN_], [NaN_, NaN_], [-inf, inf], [3, -2]];
          const nan = (f: (x: number, y: number) => number) => (x: number, y: number) => (Number.isNaN(x) || Number.isNaN(y) ? NaN : f(x, y));
          binary(bn.maximum, d, pairs, nan(Math.max));
          binary(bn.minimum, d, pairs, nan(Math.min));
        });
        test(`${d}: comparisons with NaN are false, except ne`, () => {
          const pairs: [number, number][] = [[NaN_, 1], [1, NaN_], [NaN_, NaN_], [NaN_, inf], [-inf, -inf], [-0, 0]];
          const b = (v: boolean) => (v ? 1 : 0);
          binary(bn.eq, d, pairs, (x, y) => b(x === y), "bool");
          binary(bn.ne, d, pairs, (x, y) => b(x !== y), "bool");
          binary(bn.lt, d, pairs, (x, y) => b(x < y), "bool");
          binary(bn.le, d, pairs, (x, y) => b(x <= y), "bool");
          binary(bn.gt, d, pairs, (x, y) => b(x > y), "bool");
          binary(bn.ge, d, pairs, (x, y) => b(x >= y), "bool");
        });
        test(`${d}: unary functions at ±inf and NaN`, () => {
          const xs = [inf, -inf, NaN_];
          unary(bn.exp, d, xs, (x) => (x === -inf ? 0 : x));
          unary(bn.log, d, [inf, -inf, NaN_, -1], (x) => (x === inf ? inf : NaN));
          unary(bn.sqrt, d, [inf, -inf, NaN_, -1], Math.sqrt);
          unary(bn.rsqrt, d, [inf, NaN_, -1], (x) => 1 / Math.sqrt(x));
          unary(bn.tanh, d, xs, Math.tanh);
          unary(bn.erf, d, xs, (x) => (Number.isNaN(x) ? x : Math.sign(x)));
          unary(bn.sin, d, xs, () => NaN);
          unary(bn.cos, d, xs, () => NaN);
          unary(bn.sigmoid, d, xs, (x) => (Number.isNaN(x) ? x : x > 0 ? 1 : 0));
          for (const f of [bn.floor, bn.ceil, bn.round, bn.abs, bn.neg, bn.sign]) {
            const ref = { floor: Math.floor, ceil: Math.ceil, round: (x: number) => x, abs: Math.abs, neg: (x: number) => -x, sign: Math.sign }[f.name as "abs"];
            unary(f, d, xs, ref ?? ((x) => x));
          }
          unary((t) => bn.clip(t, -1, 1), d, xs, (x) => (Number.isNaN(x) ? x : Math.sign(x))); // NumPy's clip keeps NaN
          unary(bn.relu, d, xs, (x) => (x > 0 || Number.isNaN(x) ? x : 0));
          unary(bn.gelu, d, [inf, NaN_], (x) => x);
          unary(bn.silu, d, [inf, NaN_], (x) => x);
          // The limits at -inf (NumPy's x * sigmoid(x) formula would give NaN there): documented as -0.
          unary(bn.gelu, d, [-inf], () => -0);
          unary(bn.silu, d, [-inf], () => -0);
          unary((t) => bn.gelu(t, { approximate: "tanh" }), d, [-inf], () => -0);
        });
        test(`${d}: pow special values as C99 and NumPy's element-wise power`, () => {
          const r = round[d]!;
          const cases: [number, number, number][] = [
            [1, NaN_, 1], [NaN_, 0, 1], [NaN_, -0, 1], [-1, inf, 1], [-1, -inf, 1], [2, NaN_, NaN_], [NaN_, 2, NaN_],
            [-0, -1, -inf], [0, -1, inf], [-0, -2, inf], [-0, 3, -0], [-0, 2, 0], [-0, 0.5, 0], [-inf, 0.5, inf],
            [-0, -0.5, inf], [-inf, -0.5, 0], [-inf, 3, -inf], [-inf, -3, -0], [-8, 1 / 3, NaN_], [-2, 3, -8],
            [0.5, inf, 0], [2, -inf, 0], [2, inf, inf], [inf, -1, 0], [4, 0.5, 2],
          ];
          binary(bn.pow, d, cases.map(([x, y]) => [x, r(y)] as [number, number]), (x, y) => cases.find((c) => same(c[0], x) && same(r(c[1]), y))![2]);
        });
      }
    });

    describe("reductions with NaN (NumPy: sum, max, min, mean propagate; argmax/argmin give the first NaN)", () => {
      for (const d of FLOAT) {
        test(`${d}`, () => {
          const xs = pad([1, -2, 3]);
          xs[40] = NaN;
          xs[50] = NaN;
          using t = bn.tensor(xs, { dtype: d });
          for (const f of [bn.sum, bn.max, bn.min, bn.mean, bn.prod, bn.var, bn.std, bn.logsumexp]) {
            using o = f(t);
            expect(`${f.name} ${vals(o)[0]}`).toBe(`${f.name} NaN`);
          }
          for (const f of [bn.argmax, bn.argmin]) {
            using o = f(t);
            expect(`${f.name} ${vals(o)[0]}`).toBe(`${f.name} 40`);
          }
          using c = bn.cumsum(t, 0);
          const cs = vals(c);
          expect(cs.slice(0, 40).every((v) => !Number.isNaN(v))).toBe(true);
          expect(cs.slice(40).every((v) => Number.isNaN(v))).toBe(true);
          // Along an axis: only the rows holding a NaN.
          using m = bn.tensor([[1, NaN, NaN, 4], [3, 2, 1, 0], [NaN, -inf, inf, 0]], { dtype: d });
          using am = bn.argmax(m, { axis: 1 });
          using an = bn.argmin(m, { axis: 1 });
          using mx = bn.max(m, { axis: 1 });
          expect(vals(am)).toEqual([1, 0, 0]);
          expect(vals(an)).toEqual([1, 3, 0]);
          expect(vals(mx).map(show)).toEqual(["NaN", "3", "NaN"]);
          using allInf = bn.tensor([-inf, -inf], { dtype: d });
          using mi = bn.max(allInf);
          expect(vals(mi)).toEqual([-inf]);
        });
      }
    });

    describe("subnormals are computed, never flushed", () => {
      test("f32: arithmetic in and out of the subnormal range", () => {
        binary(bn.add, "f32", [[sub32, sub32], [2 ** -126, -sub32], [3 * sub32, -sub32]], (x, y) => x + y);
        binary(bn.mul, "f32", [[toF32(1e-20), toF32(1e-20)], [2 ** -100, 2 ** -45], [2 ** -75, 2 ** -75], [2 ** -140, 0.5]], (x, y) => toF32(x * y));
        binary(bn.div, "f32", [[toF32(1e-30), toF32(1e10)], [sub32, 2], [2 ** -126, 3]], (x, y) => toF32(x / y));
        unary(bn.neg, "f32", [sub32, -5 * sub32], (x) => -x);
        unary(bn.sqrt, "f32", [sub32, 2 ** -140, 3 * sub32, toF32(1e-40)], (x) => toF32(Math.sqrt(x)));
        unary(bn.abs, "f32", [-sub32], Math.abs);
        unary(bn.sin, "f32", [sub32, -(2 ** -130)], (x) => x); // sin x = x below 2^-12
        unary(bn.tanh, "f32", [sub32, -(2 ** -130)], (x) => x);
        unary(bn.floor, "f32", [sub32, -sub32], Math.floor);
        unary(bn.ceil, "f32", [sub32, -sub32], (x) => Math.ceil(x));
        unary(bn.round, "f32", [sub32, -sub32], (x) => (x < 0 ? -0 : 0));
      });
      test("f32: exp, log and sigmoid of extreme values stay within their stated bounds", () => {
        // exp: gradual underflow below -87.3 (results subnormal), 0 below -103.98
        const xs = [-87.5, -90, -95.25, -100, -103, -103.9, -104, -110, -200];
        using t = bn.tensor(xs);
        using e = bn.exp(t);
        vals(e).forEach((v, k) => {
          const r = Math.exp(xs[k]!);
          expect(Math.abs(v - r) / ulp32(r)).toBeLessThanOrEqual(0.99);
        });
        expect(vals(e).slice(0, 6).every((v) => v > 0)).toBe(true);
        using s = bn.sigmoid(t);
        vals(s).forEach((v, k) => {
          const r = Math.exp(xs[k]!) / (1 + Math.exp(xs[k]!));
          expect(Math.abs(v - r) / ulp32(r)).toBeLessThanOrEqual(2.4);
        });
        const small = [sub32, 2 ** -140, 2 ** -127, 3 * sub32];
        using ts = bn.tensor(small);
        using l = bn.log(ts);
        vals(l).forEach((v, k) => {
          const r = Math.log(small[k]!);
          expect(Math.abs(v - r) / ulp32(r)).toBeLessThanOrEqual(0.84);
        });
        using rs = bn.rsqrt(ts);
        vals(rs).forEach((v, k) => {
          const r = 1 / Math.sqrt(small[k]!);
          expect(Math.abs(v - r) / ulp32(r)).toBeLessThanOrEqual(1.49);
        });
      });
      test("f16: subnormal inputs and results", () => {
        binary(bn.mul, "f16", [[toF16(0.001), toF16(0.001)], [sub16, 0.5], [sub16 * 3, 0.5], [2 ** -14, 2 ** -3]], (x, y) => toF16(x * y));
        binary(bn.add, "f16", [[sub16, sub16], [2 ** -14, -sub16]], (x, y) => toF16(x + y));
        unary(bn.sqrt, "f16", [sub16, 4 * sub16, 7 * sub16], (x) => toF16(Math.sqrt(x)));
        unary(bn.neg, "f16", [sub16], (x) => -x);
        // exp through f32, rounded once to f16: e^-17 rounds to the smallest subnormal, e^-18 to 0.
        unary(bn.exp, "f16", [-10, -15, -16.5, -17, -18, -25], (x) => toF16(Math.exp(toF16(x))));
      });
    });

    describe("overflow of narrow floats", () => {
      test("f16: add, sub, mul, div, pow, exp beyond 65504 give ±inf; the largest finite survives", () => {
        binary(bn.add, "f16", [[65504, 32], [65504, 15], [60000, 10000], [-65504, -32]], (x, y) => toF16(x + y));
        binary(bn.sub, "f16", [[-65504, 100], [65504, -100]], (x, y) => toF16(x - y));
        binary(bn.mul, "f16", [[300, 300], [-256, 256], [255, 256]], (x, y) => toF16(x * y));
        binary(bn.div, "f16", [[1000, toF16(0.001)], [-60000, 0.5]], (x, y) => toF16(x / y));
        binary(bn.pow, "f16", [[2, 16], [2, 15], [-2, 17]], (x, y) => toF16(x ** y));
        unary(bn.exp, "f16", [11, 12, 20], (x) => toF16(Math.exp(x)));
        expect(toF16(Math.exp(11))).toBe(59872);
        expect(toF16(Math.exp(12))).toBe(inf);
      });
      test("astype f32 -> f16 / bf16 rounds, overflowing to ±inf (NumPy: 70000 -> inf)", () => {
        const xs = [70000, -70000, 65504, 65519, 65520, 1e38, -3.4e38, 2049, 2051, 1 + 2 ** -11];
        using t = bn.tensor(xs);
        using h = t.astype("f16");
        expect(vals(h)).toEqual(xs.map((x) => toF16(toF32(x))));
        expect(vals(h).slice(0, 5)).toEqual([inf, -inf, 65504, 65504, inf]);
        using b = t.astype("bf16");
        expect(vals(b)).toEqual(xs.map((x) => toBF16(toF32(x))));
        using big = bn.tensor([3.4028234663852886e38, -3.4028234663852886e38]).astype("bf16"); // FLT_MAX rounds up
        expect(vals(big)).toEqual([inf, -inf]);
      });
      test("f16 sums accumulate in f32 and round once (NumPy: [4e4, 4e4, -4e4] sums to 4e4)", () => {
        using t = bn.tensor([40000, 40000, -40000], { dtype: "f16" });
        using s = bn.sum(t);
        expect(vals(s)).toEqual([40000]);
        using u = bn.tensor([60000, 60000], { dtype: "f16" });
        using v = bn.sum(u);
        expect(vals(v)).toEqual([inf]);
      });
      test("bf16: arithmetic overflows to inf at 2^128", () => {
        binary(bn.mul, "bf16", [[toBF16(3e38), 2], [toBF16(-3e38), 2], [toBF16(1e38), 3]], (x, y) => toBF16(x * y));
        binary(bn.add, "bf16", [[toBF16(3e38), toBF16(3e38)]], (x, y) => toBF16(x + y));
      });
    });

    describe("bf16 rounding: to nearest, ties to even, NaN stays NaN", () => {
      test("arithmetic results and conversions", () => {
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa.
        binary(bn.add, "bf16", [[1, 2 ** -8], [1 + 2 ** -7, 2 ** -8], [1, 2 ** -8 + 2 ** -9], [256, 1], [258, 1]], (x, y) => toBF16(x + y));
        binary(bn.mul, "bf16", [[1 + 2 ** -7, 1 + 2 ** -7], [3, 1 + 2 ** -6]], (x, y) => toBF16(x * y));
        binary(bn.div, "bf16", [[1, 3], [2, 3], [-1, 7]], (x, y) => toBF16(x / y));
        const xs = [1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, -(1 + 2 ** -8), toF32(Math.PI), toF32(1e-40)];
        using t = bn.tensor(xs);
        using b = t.astype("bf16");
        expect(vals(b)).toEqual(xs.map(toBF16));
        expect(vals(b).slice(0, 2)).toEqual([1, 1 + 2 ** -6]);
        // A signalling NaN whose payload sits in the low 16 bits must not round to inf.
        const bits = new Uint32Array([0x7f800001, 0xff800001, 0x7fc00000]);
        using n = bn.tensor(new Float32Array(bits.buffer));
        using nb = n.astype("bf16");
        expect(vals(nb).every(Number.isNaN)).toBe(true);
        using nh = n.astype("f16");
        expect(vals(nh).every(Number.isNaN)).toBe(true);
        using ns = bn.add(nb, 1);
        expect(vals(ns).every(Number.isNaN)).toBe(true);
      });
    });

    describe("integer overflow wraps (two's complement, as NumPy)", () => {
      const big = (x: number, y: number, op: "add" | "sub" | "mul", d: bn.DType) => {
        const X = BigInt(x);
        const Y = BigInt(y);
        const r = op === "add" ? X + Y : op === "sub" ? X - Y : X * Y;
        const bits = BigInt(d.endsWith("8") ? 8 : d.endsWith("16") ? 16 : 32);
        let v = BigInt.asUintN(Number(bits), r);
        if (d.startsWith("i") && v >= 1n << (bits - 1n)) v -= 1n << bits;
        return Number(v);
      };
      for (const d of INT) {
        test(`${d}: add, sub, mul at the range limits`, () => {
          const bits = d.endsWith("8") ? 8 : d.endsWith("16") ? 16 : 32;
          const lo = d.startsWith("i") ? -(2 ** (bits - 1)) : 0;
          const hi = d.startsWith("i") ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
          const pairs: [number, number][] = [[hi, 1], [lo, 1], [hi, hi], [lo, lo], [hi, lo], [2 ** (bits / 2), 2 ** (bits / 2)], [0, 1], [lo, hi]];
          for (const op of ["add", "sub", "mul"] as const) {
            binary(bn[op], d, pairs, (x, y) => big(x, y, op, d));
          }
          binary(bn.maximum, d, pairs, Math.max);
          binary(bn.minimum, d, pairs, Math.min);
        });
      }
      test("the classic cases: i8 127 + 1, u8 0 - 1, i32 abs(-2^31), in-place wraps too", () => {
        using a = bn.tensor([127, -128], { dtype: "i8" });
        using s = bn.add(a, 1);
        expect(vals(s)).toEqual([-128, -127]);
        using u = bn.sub(bn.tensor([0], { dtype: "u8" }), 1);
        expect(vals(u)).toEqual([255]);
        using m = bn.abs(bn.tensor([-(2 ** 31), -5], { dtype: "i32" }));
        expect(vals(m)).toEqual([-(2 ** 31), 5]); // NumPy: abs(INT_MIN) wraps to itself
        using t = bn.tensor([250, 5], { dtype: "u8" });
        t.add_(10);
        expect(vals(t)).toEqual([4, 15]);
        t.mul_(bn.tensor([100, 100], { dtype: "u8" }));
        expect(vals(t)).toEqual([(4 * 100) % 256, (15 * 100) % 256]);
      });
      test("a scalar outside the integer dtype's range is a ValueError (NumPy 2), the operand unchanged", () => {
        using a = bn.tensor([1, 2], { dtype: "i8" });
        expect(() => bn.add(a, 300)).toThrow(bn.ValueError);
        expect(() => bn.add(bn.tensor([1], { dtype: "u8" }), -1)).toThrow(bn.ValueError);
        expect(() => a.add_(128)).toThrow(bn.ValueError);
        expect(vals(a)).toEqual([1, 2]);
      });
      test("integer pow wraps; negative exponents give the truncated value (NumPy refuses them)", () => {
        const ipow = (x: number, y: number, d: bn.DType) => {
          if (y < 0) return x === 1 ? 1 : x === -1 ? (y % 2 === 0 ? 1 : -1) : 0;
          return wrapInt(Number(BigInt.asIntN(64, BigInt(x) ** BigInt(y) & 0xffffffffn)), d);
        };
        binary(bn.pow, "i32", [[2, 31], [-2, 31], [3, 40], [7, 12], [0, 0], [-1, 7], [2, -1], [-1, -3], [1, -5], [-1, -4], [0, -1], [5, 0]], (x, y) => ipow(x, y, "i32"));
        binary(bn.pow, "i8", [[2, 7], [3, 5], [-3, 5], [2, 8], [-2, -1]], (x, y) => ipow(x, y, "i8"));
        binary(bn.pow, "u8", [[2, 8], [3, 5], [255, 2], [0, 0]], (x, y) => ipow(x, y, "u8"));
        binary(bn.pow, "u32", [[2, 32], [3, 21], [65536, 2]], (x, y) => ipow(x, y, "u32"));
      });
      test("integer division is true division in f32: x/0 is ±inf, 0/0 NaN (NumPy's values)", () => {
        for (const d of INT) {
          const neg = d.startsWith("i");
          const pairs: [number, number][] = neg ? [[1, 0], [-1, 0], [0, 0], [7, 2], [-7, 2]] : [[1, 0], [0, 0], [7, 2]];
          binary(bn.div, d, pairs, (x, y) => toF32(x / y), "f32");
        }
        using t = bn.tensor([1, 2], { dtype: "i32" });
        expect(() => t.div_(2)).toThrow(bn.DTypeError); // the f32 quotient cannot land in an integer target
        expect(vals(t)).toEqual([1, 2]);
      });
    });

    describe("unary ops on integer dtypes", () => {
      for (const d of INT) {
        test(`${d}: neg, abs, sign, clip, relu keep the dtype; floor/ceil/round are the identity`, () => {
          const bits = d.endsWith("8") ? 8 : d.endsWith("16") ? 16 : 32;
          const signed = d.startsWith("i");
          const lo = signed ? -(2 ** (bits - 1)) : 0;
          const hi = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
          const xs = [lo, hi, 0, 1, signed ? -1 : 2, signed ? -7 : 200 % (hi + 1)];
          unary(bn.neg, d, xs, (x) => wrapInt(-x, d)); // NumPy: negative of unsigned wraps too
          unary(bn.abs, d, xs, (x) => wrapInt(Math.abs(x), d));
          unary(bn.sign, d, xs, (x) => Math.sign(x) + 0);
          unary(bn.relu, d, xs, (x) => Math.max(x, 0));
          for (const f of [bn.floor, bn.ceil, bn.round]) unary(f, d, xs, (x) => x);
          // Bounds convert to the dtype saturating (NumPy 2 clips with out-of-range Python ints too).
          unary((t) => bn.clip(t, -1e6, 50), d, xs, (x) => Math.min(Math.max(x, castRef(-1e6, d)), 50));
          unary((t) => bn.clip(t, 3, 1e12), d, xs, (x) => Math.max(x, 3));
          unary((t) => bn.clip(t, 2, null), d, xs, (x) => Math.max(x, 2));
        });
        test(`${d}: float functions give f32 of the converted values (NumPy would pick a width by dtype)`, () => {
          const xs = [0, 1, 4, 100];
          unary(bn.sqrt, d, xs, (x) => toF32(Math.sqrt(x)), "f32");
          unary(bn.exp, d, [0], () => 1, "f32");
          unary(bn.log, d, [1, 0], (x) => (x === 0 ? -inf : 0), "f32");
          unary(bn.sigmoid, d, [0], () => 0.5, "f32");
        });
      }
      test("bool: neg and sub are DTypeErrors (as NumPy); add is logical or", () => {
        using b = bn.tensor([true, false, true], { dtype: "bool" });
        expect(() => bn.neg(b)).toThrow(bn.DTypeError);
        expect(() => bn.sub(b, b)).toThrow(bn.DTypeError);
        using s = bn.add(b, b);
        expect(s.dtype).toBe("bool");
        expect(vals(s)).toEqual([1, 0, 1]);
        using a = bn.abs(b);
        expect(vals(a)).toEqual([1, 0, 1]);
      });
    });

    describe("float -> integer conversion saturates (documented; NumPy leaves it undefined)", () => {
      test("astype truncates toward zero, clamps to the range, NaN -> 0", () => {
        const xs = [300, -300, NaN, inf, -inf, 1e10, -1e10, -2.7, 2.7, -0.5, 127.9, -128.9, 4294967295, 4294967296, -1];
        using t = bn.tensor(xs, { dtype: "f32" });
        for (const d of INT) {
          using c = t.astype(d);
          expect(`${d} ${vals(c)}`).toBe(`${d} ${xs.map((x) => castRef(toF32(x), d))}`);
        }
        using h = bn.tensor([70000, -70000, NaN], { dtype: "f32" }).astype("f16");
        using hi = h.astype("i16");
        expect(vals(hi)).toEqual([32767, -32768, 0]);
      });
      test("integer -> integer astype wraps, as NumPy", () => {
        using t = bn.tensor([300, -1, -129, 65536 + 5], { dtype: "i32" });
        using a = t.astype("i8");
        expect(vals(a)).toEqual([44, -1, 127, 5]);
        using b = t.astype("u8");
        expect(vals(b)).toEqual([44, 255, 127, 5]);
        using c = t.astype("u32");
        expect(vals(c)).toEqual([300, 4294967295, 4294967296 - 129, 65541]);
      });
    });
  });
}
