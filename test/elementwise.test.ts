import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import * as bn from "../src/index.ts";
import { Ref, arbShape, castRef, toF32, wrapInt } from "./helpers.ts";

const FLOAT = ["f32", "f16", "bf16"] as const;
const INT = ["i8", "i16", "i32", "u8", "u16", "u32"] as const;

/** erf in float64 (Abramowitz–Stegun 7.1.26 is too coarse; use the series / continued fraction). */
function erf64(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 80; n++) {
      term *= (-ax * ax) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction (Lentz) for large |x|.
  let f = ax;
  let C = ax;
  let D = 0;
  for (let n = 1; n < 200; n++) {
    const an = n / 2;
    D = ax + an * D;
    D = 1 / D;
    C = ax + an / C;
    const delta = C * D;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

const sigmoid64 = (x: number) => 1 / (1 + Math.exp(-x));
const REF_UNARY: Record<string, (x: number) => number> = {
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  sin: Math.sin,
  cos: Math.cos,
  tanh: Math.tanh,
  erf: erf64,
  sigmoid: sigmoid64,
  silu: (x) => x * sigmoid64(x),
  gelu: (x) => 0.5 * x * (1 + erf64(x / Math.SQRT2)),
  relu: (x) => (x > 0 ? x : Number.isNaN(x) ? x : 0),
  abs: Math.abs,
  neg: (x) => -x,
  floor: Math.floor,
  ceil: Math.ceil,
  sign: (x) => (x > 0 ? 1 : x < 0 ? -1 : x),
};

/** Values of a tensor as float64, flattened. */
const vals = (t: bn.Tensor) => Array.from(t._toFloat64("test"));

/** Random data of a dtype, as exact values of that dtype. */
function randomValues(n: number, dtype: bn.DType, seed: number): number[] {
  let s = seed >>> 0 || 1;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  return Array.from({ length: n }, () => {
    if (dtype === "bool") return rnd() < 0.5 ? 0 : 1;
    if ((INT as readonly string[]).includes(dtype)) return castRef(Math.floor((rnd() - 0.5) * 600), dtype);
    return castRef((rnd() - 0.5) * 20, dtype);
  });
}

function make(shape: number[], dtype: bn.DType, seed: number): bn.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return bn.tensor(randomValues(n, dtype, seed), { shape, dtype });
}

/** Exact reference of a op b in the compute dtype d (values are exact members of d). */
function refBinary(op: string, x: number, y: number, d: bn.DType): number {
  const isInt = (INT as readonly string[]).includes(d) || d === "bool";
  if (isInt && ["add", "sub", "mul"].includes(op)) {
    const X = BigInt(x);
    const Y = BigInt(y);
    const r = op === "add" ? X + Y : op === "sub" ? X - Y : X * Y;
    if (d === "bool") return r !== 0n ? 1 : 0;
    const bits = BigInt(d.endsWith("8") ? 8 : d.endsWith("16") ? 16 : 32);
    return wrapInt(Number(BigInt.asIntN(64, r) & ((1n << bits) - 1n)), d);
  }
  switch (op) {
    case "add": return castRef(x + y, d);
    case "sub": return castRef(x - y, d);
    case "mul": return castRef(x * y, d);
    case "div": return castRef(x / y, d);
    case "maximum": return Number.isNaN(x) || Number.isNaN(y) ? NaN : castRef(Math.max(x, y), d);
    case "minimum": return Number.isNaN(x) || Number.isNaN(y) ? NaN : castRef(Math.min(x, y), d);
    case "eq": return x === y ? 1 : 0;
    case "ne": return x !== y ? 1 : 0;
    case "lt": return x < y ? 1 : 0;
    case "le": return x <= y ? 1 : 0;
    case "gt": return x > y ? 1 : 0;
    case "ge": return x >= y ? 1 : 0;
  }
  throw new Error(op);
}

/** NumPy's broadcast shape, written independently of the library. */
function broadcast(a: number[], b: number[]): number[] {
  const n = Math.max(a.length, b.length);
  return Array.from({ length: n }, (_, i) => {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    return x === 1 ? y : x;
  });
}

/** Two shapes that broadcast: b is a with some axes set to 1 and some leading axes dropped. */
const arbBroadcastPair = arbShape(0, 4, 5).chain((a) =>
  fc.tuple(
    fc.constant(a),
    fc.array(fc.boolean(), { minLength: a.length, maxLength: a.length }),
    fc.integer({ min: 0, max: a.length }),
    fc.boolean(),
  ).map(([s, ones, drop, swap]) => {
    const b = s.map((d, i) => (ones[i] ? 1 : d)).slice(drop);
    return (swap ? [b, s] : [s, b]) as [number[], number[]];
  }),
);

describe("binary ops against a float64 reference", () => {
  const ops = ["add", "sub", "mul", "div", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge"] as const;
  test("every op, every dtype, broadcasting and transposed operands", () => {
    fc.assert(
      fc.property(
        arbBroadcastPair,
        fc.constantFrom(...ops),
        fc.constantFrom(...FLOAT, ...INT, "bool" as const),
        fc.boolean(),
        fc.integer({ min: 1, max: 1 << 30 }),
        ([sa, sb], op, dtype, transpose, seed) => {
          if (dtype === "bool" && op === "sub") return;
          const a0 = make(sa, dtype, seed);
          const b = make(sb, dtype, seed + 1);
          const a = transpose && sa.length >= 2 ? a0.T.contiguous().T : a0.reshape(sa); // same values, other strides
          const shape = broadcast(sa, sb);
          const cd: bn.DType = op === "div" && !FLOAT.includes(dtype as never) ? "f32" : dtype;
          const ra = Ref.build(shape, (idx) => new Ref(sa, Float64Array.from(vals(a))).at(idx.slice(shape.length - sa.length).map((v, i) => (sa[i] === 1 ? 0 : v))));
          const rb = Ref.build(shape, (idx) => new Ref(sb, Float64Array.from(vals(b))).at(idx.slice(shape.length - sb.length).map((v, i) => (sb[i] === 1 ? 0 : v))));
          using out = bn[op](a, b);
          expect(out.shape).toEqual(shape);
          expect(out.dtype).toBe(["eq", "ne", "lt", "le", "gt", "ge"].includes(op) ? "bool" : cd);
          const want = Array.from(ra.data, (x, i) => refBinary(op, x, rb.data[i]!, cd));
          expect(vals(out)).toEqual(want);
          a0.dispose();
          a.dispose();
          b.dispose();
        },
      ),
      { numRuns: 300 },
    );
  });

  test("pow: floats within a few ulp, integers exact (wrapping)", () => {
    using x = bn.tensor([0.5, 2, 3, -2, 9, 0], { dtype: "f32" });
    using y = bn.tensor([2, 0.5, -1, 3, 0.5, 0], { dtype: "f32" });
    using p = bn.pow(x, y);
    const want = [0.25, Math.SQRT2, 1 / 3, -8, 3, 1];
    vals(p).forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThanOrEqual(Math.abs(want[i]!) * 3e-7));
    using i = bn.tensor([2, -3, 7, 1, -1], { dtype: "i32" });
    using e = bn.tensor([10, 3, 12, -5, -3], { dtype: "i32" });
    using q = bn.pow(i, e);
    expect(q.toArray()).toEqual([1024, -27, wrapInt(7 ** 12, "i32"), 1, -1]);
    using z = bn.pow(bn.tensor([2], { dtype: "i32" }), -1);
    expect(z.toArray()).toEqual([0]);
  });
});

describe("scalars and type promotion (NumPy 2 weak scalars)", () => {
  test("tensor with number keeps the tensor's dtype within its kind", () => {
    using a = bn.tensor([1, 2, 3], { dtype: "i8" });
    using b = a.add(100);
    expect(b.dtype).toBe("i8");
    expect(b.toArray()).toEqual([101, 102, 103]);
    using c = a.mul(0.5);
    expect(c.dtype).toBe("f32");
    expect(c.toArray()).toEqual([0.5, 1, 1.5]);
    expect(() => a.add(300)).toThrow(bn.ValueError);
    using h = bn.tensor([1, 2], { dtype: "f16" });
    using h2 = h.add(1e-3);
    expect(h2.dtype).toBe("f16");
    using s = bn.sub(10, a);
    expect(s.toArray()).toEqual([9, 8, 7]);
    using d = bn.div(a, 2);
    expect(d.dtype).toBe("f32");
    expect(d.toArray()).toEqual([0.5, 1, 1.5]);
    using cmp = a.gt(1.5);
    expect(cmp.toArray()).toEqual([false, true, true]);
  });

  test("mixed tensor dtypes promote; bool rules", () => {
    using a = bn.tensor([1, 2], { dtype: "u8" });
    using b = bn.tensor([-1, 1], { dtype: "i8" });
    using c = a.add(b);
    expect(c.dtype).toBe("i16");
    expect(c.toArray()).toEqual([0, 3]);
    using t = bn.tensor([true, false]);
    using u = bn.tensor([true, true]);
    using or = t.add(u);
    expect(or.dtype).toBe("bool");
    expect(or.toArray()).toEqual([true, true]);
    using and = t.mul(u);
    expect(and.toArray()).toEqual([true, false]);
    using bi = t.add(1);
    expect(bi.dtype).toBe("i32");
    expect(() => t.sub(u)).toThrow(bn.DTypeError);
    expect(() => t.neg()).toThrow(bn.DTypeError);
  });
});

describe("in-place", () => {
  test("add_/sub_/mul_/div_ broadcast into the target and return it", () => {
    const a = bn.arange(6).reshape([2, 3]);
    using row = bn.tensor([10, 20, 30]);
    expect(a.add_(row)).toBe(a);
    expect(a.toArray()).toEqual([[10, 21, 32], [13, 24, 35]]);
    a.sub_(1).mul_(2).div_(4);
    expect(a.toArray()).toEqual([[4.5, 10, 15.5], [6, 11.5, 17]]);
    using i = bn.tensor([1, 2], { dtype: "i16" });
    i.add_(bn.tensor([3, 4], { dtype: "i8" }));
    expect(i.toArray()).toEqual([4, 6]);
    a.dispose();
  });

  test("overlapping operand is read before it is overwritten", () => {
    using a = bn.arange(9).reshape([3, 3]);
    using at = a.T;
    a.add_(at);
    expect(a.toArray()).toEqual([[0, 4, 8], [4, 8, 12], [8, 12, 16]]);
  });

  test("results that do not fit the target are refused, target unchanged", () => {
    using a = bn.tensor([1, 2, 3], { dtype: "i32" });
    expect(() => a.div_(2)).toThrow(bn.DTypeError);
    expect(() => a.add_(0.5)).toThrow(/cannot be stored in the i32 target/);
    using big = bn.zeros([2, 3], { dtype: "i32" });
    expect(() => a.add_(big)).toThrow(bn.ShapeError);
    expect(() => a.add_(big)).toThrow(/does not fit the target's shape \[3\]/);
    expect(a.toArray()).toEqual([1, 2, 3]);
  });
});

describe("unary math and activations", () => {
  const names = Object.keys(REF_UNARY);
  test("float ops against float64 (f32 within a few ulp; f16/bf16 within their rounding)", () => {
    fc.assert(
      fc.property(fc.constantFrom(...names), fc.constantFrom(...FLOAT), fc.integer({ min: 1, max: 1 << 30 }), (name, dtype, seed) => {
        const n = 64;
        let xs = randomValues(n, dtype, seed);
        if (name === "log" || name === "sqrt" || name === "rsqrt") xs = xs.map((v) => Math.abs(v) + 0.01).map((v) => castRef(v, dtype));
        using x = bn.tensor(xs, { dtype });
        using y = (bn as unknown as Record<string, (t: bn.Tensor) => bn.Tensor>)[name]!(x);
        expect(y.dtype).toBe(dtype);
        const got = vals(y);
        const eps = dtype === "f32" ? 2 ** -21 : dtype === "f16" ? 2 ** -9 : 2 ** -6;
        xs.forEach((v, i) => {
          const want = REF_UNARY[name]!(v);
          const tol = Math.max(Math.abs(want), 1e-30) * eps + (dtype === "f32" ? 1e-7 : eps) * (["sin", "cos", "erf", "tanh", "gelu", "silu"].includes(name) ? 1 : 0);
          if (Number.isNaN(want)) expect(Number.isNaN(got[i]!)).toBe(true);
          else expect(Math.abs(got[i]! - want)).toBeLessThanOrEqual(tol);
        });
      }),
      { numRuns: 120 },
    );
  });

  test("round is half to even; sign keeps NaN and zeros; clip with NaN bounds", () => {
    using x = bn.tensor([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.49, NaN]);
    using r = x.round();
    expect(vals(r)).toEqual([-2, -2, -0, 0, 2, 2, 3, NaN]);
    using s = bn.tensor([-3, -0, 0, 2, NaN]).sign();
    expect(vals(s)).toEqual([-1, -0, 0, 1, NaN]);
    using c = x.clip(-1, 1);
    expect(vals(c)).toEqual([-1, -1, -0.5, 0.5, 1, 1, 1, NaN]);
    using c2 = x.clip(null, 0);
    expect(vals(c2)).toEqual([-2.5, -1.5, -0.5, 0, 0, 0, 0, NaN]);
    using ic = bn.tensor([-5, 0, 5, 100], { dtype: "i8" }).clip(-2, 50);
    expect(ic.toArray()).toEqual([-2, 0, 5, 50]);
    using ia = bn.tensor([-128, -3, 4], { dtype: "i8" }).abs();
    expect(ia.toArray()).toEqual([-128, 3, 4]); // wraps like NumPy
  });

  test("float functions of integers give f32; gelu tanh approximation", () => {
    using i = bn.tensor([0, 1, 2], { dtype: "i32" });
    using e = i.exp();
    expect(e.dtype).toBe("f32");
    expect(vals(e).map((v, k) => Math.abs(v - Math.exp(k)) <= Math.exp(k) * 3e-7)).toEqual([true, true, true]);
    using x = bn.linspace(-4, 4, 33);
    using g = x.gelu({ approximate: "tanh" });
    const ref = vals(x).map((v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
    vals(g).forEach((v, k) => expect(Math.abs(v - ref[k]!)).toBeLessThan(1e-6));
    expect(() => x.gelu({ approximate: "fast" as never })).toThrow(bn.ValueError);
  });

  test("activation derivatives match central differences", () => {
    using x = bn.linspace(-5, 5, 41);
    const xs = vals(x);
    const fns: Record<string, (v: number) => number> = {
      relu: REF_UNARY.relu!,
      gelu: REF_UNARY.gelu!,
      gelu_tanh: (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))),
      silu: REF_UNARY.silu!,
      sigmoid: sigmoid64,
      tanh: Math.tanh,
    };
    for (const [name, f] of Object.entries(fns)) {
      using d = bn.activationGrad(name as never, x);
      vals(d).forEach((v, k) => {
        const h = 1e-6;
        const xv = xs[k]!;
        if (name === "relu" && Math.abs(xv) < 1e-9) return; // kink
        const want = (f(xv + h) - f(xv - h)) / (2 * h);
        expect(Math.abs(v - want)).toBeLessThan(2e-5);
      });
    }
  });
});

describe("where", () => {
  test("broadcasts condition and operands; scalars; promotion", () => {
    using c = bn.tensor([[true], [false]]);
    using a = bn.arange(3);
    using w = bn.where(c, a, -1);
    expect(w.toArray()).toEqual([[0, 1, 2], [-1, -1, -1]]);
    using m = bn.tensor([0, 2, 0], { dtype: "i32" });
    using w2 = bn.where(m, 1.5, bn.tensor([7, 8, 9], { dtype: "i8" }));
    expect(w2.dtype).toBe("f32");
    expect(w2.toArray()).toEqual([7, 1.5, 9]);
    using t = bn.arange(6).reshape([2, 3]);
    using w3 = bn.where(t.T.gt(1), t.T, 0);
    expect(w3.toArray()).toEqual([[0, 3], [0, 4], [2, 5]]);
  });
});

describe("bad input", () => {
  test("non-broadcastable shapes name both shapes; operands unchanged; nothing leaks", () => {
    using a = bn.zeros([2, 3]);
    using b = bn.zeros([4]);
    using mask = bn.ones([5]).gt(0); // (the ones() temporary is left to the collector)
    bn.memory.collect();
    const before = bn.memory.stats();
    expect(() => a.add(b)).toThrow(bn.ShapeError);
    expect(() => a.add(b)).toThrow(/shapes \[2, 3\] and \[4\] do not broadcast/);
    expect(() => bn.where(mask, a, 1)).toThrow(bn.ShapeError);
    expect(() => a.add("x" as never)).toThrow(bn.DTypeError);
    const after = bn.memory.stats();
    expect(after.liveTensors).toBe(before.liveTensors);
    const d = bn.ones([2]);
    d.dispose();
    expect(() => a.add(d)).toThrow(bn.DisposedTensorError);
    expect(() => bn.exp(d)).toThrow(bn.DisposedTensorError);
    expect(() => bn.exp(3 as never)).toThrow(bn.DTypeError);
    expect(vals(a)).toEqual([0, 0, 0, 0, 0, 0]);
  });
});

test("toF32 helper sanity", () => {
  expect(toF32(0.1)).toBe(Math.fround(0.1));
});
