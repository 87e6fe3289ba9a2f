// Autograd: every differentiable op's gradient against central finite differences of a float64
// reference (test/grad_ref.ts) over random shapes, with broadcasting and strided leaves; then the
// engine's behaviours (accumulation, shared subgraphs, noGrad, detach, retainGraph) and its
// errors.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import * as bn from "../src/index.ts";
import { Ref } from "./helpers.ts";
import { bin, gradcheck, lanes, matmulRef, meanv, normRef, red, softmaxRef, sumv, un, values, varv } from "./grad_ref.ts";

const RUNS = { numRuns: 12 };

/** Two shapes that broadcast together (some axes of size 1, possibly fewer dims on one side). */
const arbBroadcastPair = fc
  .tuple(fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }), fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 3, maxLength: 3 }), fc.integer({ min: 0, max: 2 }))
  .map(([full, mask, drop]) => {
    const a = full.map((d, i) => (mask[i] === 1 ? 1 : d));
    const b = full.map((d, i) => (mask[i] === 2 ? 1 : d)).slice(Math.min(drop, full.length - 1));
    return [a, b] as [number[], number[]];
  });
const arbMatrixShape = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 2, maxLength: 3 });

describe("elementwise gradients match finite differences", () => {
  const cases: [string, (a: bn.Tensor, b: bn.Tensor) => bn.Tensor, (x: number, y: number) => number, { bOffset?: number; aPos?: boolean }][] = [
    ["add", bn.add, (x, y) => x + y, {}],
    ["sub", bn.sub, (x, y) => x - y, {}],
    ["mul", bn.mul, (x, y) => x * y, {}],
    ["div", bn.div, (x, y) => x / y, { bOffset: 3 }],
    ["pow", bn.pow, (x, y) => x ** y, { aPos: true }],
    ["maximum", bn.maximum, Math.max, {}],
    ["minimum", bn.minimum, Math.min, {}],
  ];
  for (const [name, lib, f, o] of cases) {
    test(`${name} with broadcasting and strided operands`, () => {
      fc.assert(
        fc.property(arbBroadcastPair, fc.integer({ min: 0, max: 1000 }), fc.boolean(), ([sa, sb], seed, strided) => {
          const a = { shape: sa, data: values(sa.reduce((p, q) => p * q, 1), seed, o.aPos ? 1 : 2, o.aPos ? 1.5 : 0), strided };
          const b = { shape: sb, data: values(sb.reduce((p, q) => p * q, 1), seed + 1, 2, o.bOffset ?? 0) };
          gradcheck(([x, y]) => lib(x!, y!), ([x, y]) => bin(x!, y!, f), [a, b], seed);
        }),
        RUNS,
      );
    });
  }

  test("scalar operands and a constant tensor operand", () => {
    gradcheck(([x]) => bn.mul(bn.add(x!, 2), 3), ([x]) => un(x!, (v) => (v + 2) * 3), [{ shape: [3, 2] }], 1);
    gradcheck(([x]) => bn.div(1.5, bn.add(x!, 4)), ([x]) => un(x!, (v) => 1.5 / (v + 4)), [{ shape: [4] }], 2);
    gradcheck(([x]) => bn.pow(bn.add(x!, 3), 2.5), ([x]) => un(x!, (v) => (v + 3) ** 2.5), [{ shape: [5] }], 3);
    gradcheck(([x]) => bn.pow(2, x!), ([x]) => un(x!, (v) => 2 ** v), [{ shape: [5] }], 3);
    gradcheck(([x, c]) => bn.mul(x!, c!), ([x, c]) => bin(x!, c!, (p, q) => p * q), [{ shape: [2, 3] }, { shape: [3], constant: true }], 4);
  });

  test("where passes the gradient to the chosen side", () => {
    const cond = bn.tensor([true, false, true, false, false, true]).reshape([2, 3]);
    const c = [1, 0, 1, 0, 0, 1];
    gradcheck(([a, b]) => bn.where(cond, a!, b!), ([a, b]) => Ref.build([2, 3], ([i, j]) => (c[i! * 3 + j!] ? a!.at([i!, j!]) : b!.at([j!]))), [{ shape: [2, 3] }, { shape: [3] }], 5);
    cond.dispose();
  });
});

describe("unary and activation gradients match finite differences", () => {
  const erf = (x: number) => {
    // Abramowitz-Stegun 7.1.26 is too coarse for differences; integrate the series instead.
    let s = 0;
    let term = x;
    for (let n = 0; n < 60; n++) {
      s += term / (2 * n + 1);
      term *= (-x * x) / (n + 1);
    }
    return (2 / Math.sqrt(Math.PI)) * s;
  };
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  const cases: [string, (t: bn.Tensor) => bn.Tensor, (x: number) => number, number?][] = [
    ["neg", bn.neg, (x) => -x],
    ["abs", bn.abs, Math.abs],
    ["exp", bn.exp, Math.exp],
    ["log", bn.log, Math.log, 3],
    ["sqrt", bn.sqrt, Math.sqrt, 3],
    ["rsqrt", bn.rsqrt, (x) => 1 / Math.sqrt(x), 3],
    ["sin", bn.sin, Math.sin],
    ["cos", bn.cos, Math.cos],
    ["tanh", bn.tanh, Math.tanh],
    ["erf", bn.erf, erf],
    ["relu", bn.relu, (x) => Math.max(x, 0)],
    ["gelu", (t) => bn.gelu(t), (x) => 0.5 * x * (1 + erf(x / Math.SQRT2))],
    ["gelu tanh", (t) => bn.gelu(t, { approximate: "tanh" }), (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)))],
    ["silu", bn.silu, (x) => x * sig(x)],
    ["sigmoid", bn.sigmoid, sig],
    ["clip", (t) => bn.clip(t, -0.7, 1.1), (x) => Math.min(Math.max(x, -0.7), 1.1)],
    ["floor (zero gradient)", bn.floor, Math.floor],
  ];
  for (const [name, lib, f, offset] of cases) {
    test(name, () => {
      fc.assert(
        fc.property(fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }), fc.integer({ min: 0, max: 1000 }), fc.boolean(), (shape, seed, strided) => {
          const data = values(shape.reduce((p, q) => p * q, 1), seed, 2, offset ?? 0);
          gradcheck(([x]) => lib(x!), ([x]) => un(x!, f), [{ shape, data, strided }], seed);
        }),
        RUNS,
      );
    });
  }
});

describe("reduction gradients match finite differences", () => {
  const arbReduce = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }).chain((shape) =>
    fc.tuple(fc.constant(shape), fc.oneof(fc.constant(null), fc.subarray([...shape.keys()], { minLength: 1 })), fc.boolean(), fc.integer({ min: 0, max: 1000 })),
  );
  const cases: [string, (t: bn.Tensor, o: bn.ReduceOptions) => bn.Tensor, (v: number[]) => number][] = [
    ["sum", bn.sum, sumv],
    ["mean", bn.mean, meanv],
    ["prod", bn.prod, (v) => v.reduce((p, q) => p * q, 1)],
    ["max", bn.max, (v) => Math.max(...v)],
    ["min", bn.min, (v) => Math.min(...v)],
    ["var", bn.var, (v) => varv(v)],
    ["std", (t, o) => bn.std(t, { ...o, ddof: 1 }), (v) => Math.sqrt(varv(v, 1))],
    ["logsumexp", bn.logsumexp, (v) => Math.log(sumv(v.map(Math.exp)))],
  ];
  for (const [name, lib, f] of cases) {
    test(`${name} over random axes, keepdims or not`, () => {
      fc.assert(
        fc.property(arbReduce, ([shape, axes, keepdims, seed]) => {
          const n = shape.reduce((p, q) => p * q, 1);
          const count = axes === null ? n : axes.reduce((p, a) => p * shape[a]!, 1);
          if (name === "std" && count < 2) return; // ddof 1 needs two values
          const data = values(n, seed, name === "prod" ? 1 : 2, name === "prod" ? 1.5 : 0);
          gradcheck(([x]) => lib(x!, { axis: axes ?? undefined, keepdims }), ([x]) => red(x!, axes, keepdims, f), [{ shape, data, strided: seed % 2 === 0 }], seed);
        }),
        RUNS,
      );
    });
  }
  test("cumsum along an axis and flattened", () => {
    const cum = (v: number[]) => v.map((_, i) => sumv(v.slice(0, i + 1)));
    gradcheck(([x]) => bn.cumsum(x!, 1), ([x]) => lanes(x!, 1, cum), [{ shape: [3, 4], strided: true }], 1);
    gradcheck(([x]) => bn.cumsum(x!, 0), ([x]) => lanes(x!, 0, cum), [{ shape: [3, 2] }], 2);
    gradcheck(([x]) => bn.cumsum(x!), ([x]) => new Ref([x!.size], Float64Array.from(cum(Array.from(x!.data)))), [{ shape: [2, 3] }], 3);
  });
});

describe("view, copy and join gradients", () => {
  const T = (x: Ref) => x.permute([...x.shape.keys()].reverse());
  test("reshape, transpose, permute, squeeze, unsqueeze, flatten, contiguous, clone", () => {
    gradcheck(([x]) => bn.mul(x!.reshape([6, 2]), bn.tensor([1, 2])), ([x]) => bin(new Ref([6, 2], x!.data), new Ref([2], Float64Array.from([1, 2])), (p, q) => p * q), [{ shape: [3, 4], strided: true }], 1);
    gradcheck(([x]) => x!.T.contiguous(), ([x]) => T(x!), [{ shape: [2, 3] }], 2);
    gradcheck(([x]) => x!.permute([2, 0, 1]).mul(x!.permute([2, 0, 1])), ([x]) => un(x!.permute([2, 0, 1]), (v) => v * v), [{ shape: [2, 3, 2] }], 3);
    gradcheck(([x]) => x!.unsqueeze(1).squeeze(1).flatten().clone(), ([x]) => new Ref([x!.size], x!.data), [{ shape: [2, 3], strided: true }], 4);
  });
  test("slice with steps and negative indices; expand", () => {
    gradcheck(
      ([x]) => x!.slice([[null, null, -2], 1]),
      ([x]) => Ref.build([2], ([i]) => x!.at([3 - 2 * i!, 1])),
      [{ shape: [4, 3] }],
      5,
    );
    gradcheck(([x]) => x!.expand([3, 2, 4]).mul(2), ([x]) => un(x!.broadcastTo([3, 2, 4]), (v) => 2 * v), [{ shape: [2, 1] }], 6);
  });
  test("concat, stack and split route each part's gradient", () => {
    gradcheck(
      ([a, b]) => bn.concat([a!, b!], 1),
      ([a, b]) => Ref.build([2, 5], ([i, j]) => (j! < 2 ? a!.at([i!, j!]) : b!.at([i!, j! - 2]))),
      [{ shape: [2, 2] }, { shape: [2, 3], strided: true }],
      7,
    );
    gradcheck(([a, b]) => bn.stack([a!, b!], 0), ([a, b]) => new Ref([2, 3], Float64Array.from([...a!.data, ...b!.data])), [{ shape: [3] }, { shape: [3] }], 8);
    gradcheck(
      ([x]) => {
        const [p, q] = bn.split(x!, [1], 1);
        const r = bn.mul(p!, q!.sum({ axis: 1, keepdims: true }));
        p!.dispose();
        q!.dispose();
        return r;
      },
      ([x]) => Ref.build([3, 1], ([i]) => x!.at([i!, 0]) * (x!.at([i!, 1]) + x!.at([i!, 2]))),
      [{ shape: [3, 3] }],
      9,
    );
  });
});

describe("matmul gradients", () => {
  test("batched with broadcasting and strided operands", () => {
    fc.assert(
      fc.property(arbMatrixShape, fc.integer({ min: 1, max: 4 }), fc.boolean(), fc.integer({ min: 0, max: 1000 }), (as, n, bBatch, seed) => {
        const k = as[as.length - 1]!;
        const bs = bBatch && as.length === 3 ? [1, k, n] : [k, n];
        gradcheck(([a, b]) => bn.matmul(a!, b!), ([a, b]) => matmulRef(a!, b!), [{ shape: as, strided: seed % 2 === 0 }, { shape: bs, strided: seed % 3 === 0 }], seed);
      }),
      RUNS,
    );
  });
  test("1-D operands, dot and outer", () => {
    gradcheck(([a, b]) => bn.matmul(a!, b!), ([a, b]) => matmulRef(a!, b!), [{ shape: [3] }, { shape: [3, 2] }], 1);
    gradcheck(([a, b]) => bn.matmul(a!, b!), ([a, b]) => matmulRef(a!, b!), [{ shape: [2, 4, 3] }, { shape: [3] }], 2);
    gradcheck(([a, b]) => bn.matmul(a!, b!), ([a, b]) => matmulRef(a!, b!), [{ shape: [4] }, { shape: [4] }], 3);
    gradcheck(([a, b]) => bn.outer(a!, b!), ([a, b]) => Ref.build([3, 2], ([i, j]) => a!.data[i!]! * b!.data[j!]!), [{ shape: [3] }, { shape: [2] }], 4);
    // N-D dot: out[a, b, n] = sum_k x[a, k] y[b, k, n]
    gradcheck(
      ([x, y]) => bn.dot(x!, y!),
      ([x, y]) => Ref.build([2, 3, 2], ([a, b, n]) => sumv([0, 1, 2, 3].map((k) => x!.at([a!, k]) * y!.at([b!, k, n!])))),
      [{ shape: [2, 4] }, { shape: [3, 4, 2] }],
      5,
    );
  });
});

describe("softmax, norms, gathers and losses", () => {
  test("softmax and logSoftmax along any axis", () => {
    for (const [axis, log, seed] of [[-1, false, 1], [0, false, 2], [-1, true, 3], [1, true, 4]] as const) {
      gradcheck(([x]) => (log ? bn.logSoftmax(x!, { axis }) : bn.softmax(x!, { axis })), ([x]) => softmaxRef(x!, axis, log), [{ shape: [3, 4], strided: seed % 2 === 0 }], seed);
    }
  });
  test("softmax, logSoftmax, layerNorm and rmsNorm over random shapes and axes", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }), fc.integer({ min: 0, max: 1000 }), fc.boolean(), (shape, seed, strided) => {
        const axis = seed % shape.length;
        const log = seed % 2 === 0;
        gradcheck(([x]) => (log ? bn.logSoftmax(x!, { axis }) : bn.softmax(x!, { axis })), ([x]) => softmaxRef(x!, axis, log), [{ shape, strided }], seed);
        const n = shape[shape.length - 1]!;
        if (n < 2) return; // a one-element row normalises to a constant
        const layer = seed % 3 !== 0;
        gradcheck(
          ([x, w]) => (layer ? bn.layerNorm(x!, { weight: w!, eps: 1e-5 }) : bn.rmsNorm(x!, { weight: w!, eps: 1e-6 })),
          ([x, w]) => normRef(x!, w!, null, layer ? 1e-5 : 1e-6, layer ? "layer" : "rms"),
          [{ shape, strided }, { shape: [n] }],
          seed,
        );
      }),
      RUNS,
    );
  });
  test("layerNorm and rmsNorm with and without weight and bias", () => {
    gradcheck(([x, w, b]) => bn.layerNorm(x!, { weight: w!, bias: b!, eps: 1e-5 }), ([x, w, b]) => normRef(x!, w!, b!, 1e-5, "layer"), [{ shape: [3, 5], strided: true }, { shape: [5] }, { shape: [5] }], 1);
    gradcheck(([x]) => bn.layerNorm(x!), ([x]) => normRef(x!, null, null, 1e-5, "layer"), [{ shape: [2, 2, 4] }], 2);
    gradcheck(([x, w]) => bn.rmsNorm(x!, { weight: w!, eps: 1e-6 }), ([x, w]) => normRef(x!, w!, null, 1e-6, "rms"), [{ shape: [4, 6] }, { shape: [6] }], 3);
    gradcheck(([x]) => bn.rmsNorm(x!), ([x]) => normRef(x!, null, null, 1e-6, "rms"), [{ shape: [3, 3], strided: true }], 4);
  });
  test("Embedding (take) accumulates repeated ids", () => {
    using ids = bn.tensor([[2, 0], [2, 3]], { dtype: "i32" });
    gradcheck(([w]) => bn.take(w!, ids, 0), ([w]) => Ref.build([2, 2, 3], ([i, j, c]) => w!.at([[2, 0, 2, 3][i! * 2 + j!]!, c!])), [{ shape: [4, 3] }], 1);
  });
  test("crossEntropy and mse", () => {
    using t = bn.tensor([2, 0, 1], { dtype: "i32" });
    const ce = (x: Ref) => {
      const lp = softmaxRef(x, -1, true);
      return new Ref([], Float64Array.from([-meanv([2, 0, 1].map((c, i) => lp.at([i, c])))]));
    };
    gradcheck(([x]) => bn.nn.crossEntropy(x!, t), ([x]) => ce(x!), [{ shape: [3, 4], strided: true }], 1);
    gradcheck(([p, q]) => bn.nn.mse(p!, q!), ([p, q]) => new Ref([], Float64Array.from([meanv(Array.from(p!.data, (v, i) => (v - q!.data[i]!) ** 2))])), [{ shape: [2, 3] }, { shape: [2, 3] }], 2);
    gradcheck(([p, q]) => bn.nn.mse(p!, q!, { reduction: "none" }), ([p, q]) => bin(p!, q!, (a, b) => (a - b) ** 2), [{ shape: [4] }, { shape: [4], constant: true }], 3);
  });
});

describe("the engine", () => {
  test("gradients accumulate over backward calls and through shared subexpressions", () => {
    using x = bn.tensor([1, 2, 3], { requiresGrad: true });
    {
      using y = x.mul(x).add(x).sum(); // d/dx = 2x + 1
      y.backward();
    }
    expect(x.grad!.toArray()).toEqual([3, 5, 7]);
    {
      using y = x.sum();
      y.backward();
    }
    expect(x.grad!.toArray()).toEqual([4, 6, 8]);
    x.grad = null;
    expect(x.grad).toBeNull();
  });
  test("retainGraph allows a second pass; without it the released graph is an error", () => {
    using x = bn.tensor([0.5, -1], { requiresGrad: true });
    using y = x.exp().sum();
    y.backward(null, { retainGraph: true });
    y.backward();
    expect(x.grad!.toArray()).toEqual([2 * Math.fround(Math.exp(0.5)), 2 * Math.fround(Math.exp(-1))].map(Math.fround));
    expect(() => y.backward()).toThrow(bn.AutogradError);
    expect(() => y.backward()).toThrow(/already released/);
  });
  test("noGrad, detach and requiresGrad flags", () => {
    using x = bn.tensor([1, 2], { requiresGrad: true });
    expect(x.isLeaf).toBe(true);
    using y = bn.noGrad(() => x.mul(2));
    expect(y.requiresGrad).toBe(false);
    using z = x.mul(2);
    expect(z.requiresGrad).toBe(true);
    expect(z.isLeaf).toBe(false);
    expect(z.gradFn).toBe("mul");
    using d = z.detach();
    expect(d.requiresGrad).toBe(false);
    expect(bn.isGradEnabled()).toBe(true);
    expect(bn.noGrad(() => bn.isGradEnabled())).toBe(false);
    expect(bn.noGrad(() => bn.enableGrad(() => x.mul(3).requiresGrad))).toBe(true);
    using i = bn.tensor([1, 2], { dtype: "i32" });
    expect(() => (i.requiresGrad = true)).toThrow(bn.DTypeError);
    expect(() => (z.requiresGrad = false)).toThrow(bn.AutogradError);
  });
  test("bad input: typed errors, operands unchanged", () => {
    using x = bn.tensor([1, 2, 3], { requiresGrad: true });
    using c = bn.tensor([1, 2, 3]);
    using y = x.mul(2);
    expect(() => y.backward()).toThrow(bn.AutogradError); // non-scalar without a gradient
    expect(() => y.backward()).toThrow(/one element.*\[3\]/);
    using bad = bn.ones([2]);
    expect(() => y.backward(bad)).toThrow(bn.ShapeError);
    expect(() => c.sum().backward()).toThrow(/does not require grad/);
    expect(() => x.add_(1)).toThrow(bn.AutogradError);
    expect(() => c.add_(x)).toThrow(bn.AutogradError);
    expect(c.toArray()).toEqual([1, 2, 3]);
    expect(x.toArray()).toEqual([1, 2, 3]);
    // A saved operand changed in place after the forward pass.
    using p = bn.tensor([1, 2, 3]);
    using q = x.mul(p).sum();
    bn.noGrad(() => p.mul_(2));
    expect(() => q.backward()).toThrow(/changed in place/);
    expect(x.grad).toBeNull();
  });
  test("backward releases saved tensors as it goes", () => {
    using x = bn.randn([64, 64], { seed: 1, requiresGrad: true });
    const h = x.matmul(x.T); // saves x (twice, as views)
    const e = h.tanh(); // saves h
    const s = e.softmax(); // saves its output
    using loss = s.sum();
    h.dispose();
    e.dispose();
    s.dispose();
    // h's storage is held by the graph only now; the softmax output's too.
    const before = bn.memory.stats().bytesInUse;
    loss.backward();
    // Released: h and the softmax output (2 x 16 KiB); added: x.grad (16 KiB).
    expect(before - bn.memory.stats().bytesInUse).toBe(2 * 64 * 64 * 4 - x.grad!.nbytes);
  });
});
