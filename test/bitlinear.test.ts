// BitLinear against references written here from the definition of a BitNet b1.58 layer.
//
// Which steps are exact. `exactRef` takes the normalised activations h from the library's norm
// (f32; the norm itself is checked separately against float64 with a tolerance in `f64Ref`) and
// recomputes every later step bit for bit as the kernel defines it, in JS doubles with
// Math.fround at each f32 rounding:
//   m = max|h|, s = fround(127 / m), q = rint_half_even(clamp(fround(h·s), ±127)) (q = 0 if m = 0),
//   isum = Σ q·t exactly (t from layer.quantized.unpack()), per scale segment of the row,
//   facc = fround(facc + fround(fround(isum)·scale)) over the segments, out = fround(facc / s),
//   + bias: fround(out + b), then for f16/bf16 input the IEEE rounding to that dtype.
// `f64Ref` is fully independent (norm, quantization and products in float64) and is compared
// with a tolerance of a few int8 rounding flips (scale / s each).
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import * as bn from "../src/index.ts";
import type { DType } from "../src/index.ts";
import { castRef } from "./helpers.ts";

const fr = Math.fround;
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Every element as a JS number, row-major. */
function vals(t: bn.Tensor): number[] {
  const a = t.toArray();
  return typeof a === "number" ? [a] : ((a as unknown[]).flat(Infinity) as number[]);
}

/** Round half to even (the kernel's rint). */
function rint(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The ternary values [out, in], the scale of (row, segment) and the segment length, read from the layer. */
function ternaryOf(layer: bn.BitLinear): { t: number[]; seg: number; scale: (r: number, s: number) => number } {
  const q = layer.quantized;
  using u = q.unpack();
  const t = vals(u);
  const sc = vals(q.scale);
  const k = layer.inFeatures;
  switch (q.granularity) {
    case "tensor":
      return { t, seg: k, scale: () => sc[0]! };
    case "channel":
      return { t, seg: k, scale: (r) => sc[r]! };
    default: {
      const g = q.group!;
      return { t, seg: g, scale: (r, s) => sc[r * (k / g) + s]! };
    }
  }
}

/** The library's norm of x (in f32) as the layer applies it, or x's values for norm "none". */
function libNorm(layer: bn.BitLinear, x: bn.Tensor): number[] {
  if (layer.norm === "none") return vals(x);
  using xf = x.astype("f32");
  using h =
    layer.norm === "rms"
      ? bn.rmsNorm(xf, { weight: layer.normWeight, eps: layer.eps })
      : bn.layerNorm(xf, { weight: layer.normWeight, bias: layer.normBias, eps: layer.eps });
  return vals(h);
}

/** Exact reference of forward given the normalised activations h (f32 values, rows of `in`). */
function exactRef(layer: bn.BitLinear, h: number[], outDtype: DType): number[] {
  const k = layer.inFeatures;
  const n = layer.outFeatures;
  const rows = h.length / k;
  const { t, seg, scale } = ternaryOf(layer);
  const b = layer.bias ? vals(layer.bias) : null;
  const out: number[] = [];
  for (let i = 0; i < rows; i++) {
    const row = h.slice(i * k, (i + 1) * k);
    const m = Math.max(...row.map(Math.abs));
    const s = fr(127 / m);
    const q = row.map((v) => (m === 0 ? 0 : rint(Math.min(127, Math.max(-127, fr(v * s))))));
    for (let r = 0; r < n; r++) {
      let facc = 0;
      for (let s0 = 0, si = 0; s0 < k; s0 += seg, si++) {
        let isum = 0;
        for (let j = s0; j < Math.min(k, s0 + seg); j++) isum += q[j]! * t[r * k + j]!;
        facc = fr(facc + fr(fr(isum) * scale(r, si)));
      }
      let y = fr(facc / s);
      if (b) y = fr(y + b[r]!);
      out.push(castRef(y, outDtype));
    }
  }
  return out;
}

/** Fully independent float64 reference (norm, absmax int8, ternary dot, rescale, bias). */
function f64Ref(layer: bn.BitLinear, x: number[]): { y: number[]; tol: number[] } {
  const k = layer.inFeatures;
  const n = layer.outFeatures;
  const rows = x.length / k;
  const { t, seg, scale } = ternaryOf(layer);
  const b = layer.bias ? vals(layer.bias) : null;
  const g = layer.normWeight ? vals(layer.normWeight) : null;
  const beta = layer.normBias ? vals(layer.normBias) : null;
  const y: number[] = [];
  const tol: number[] = [];
  for (let i = 0; i < rows; i++) {
    let h = x.slice(i * k, (i + 1) * k);
    if (layer.norm === "rms") {
      const ms = h.reduce((a, v) => a + v * v, 0) / k;
      h = h.map((v, j) => (v / Math.sqrt(ms + layer.eps)) * (g ? g[j]! : 1));
    } else if (layer.norm === "layer") {
      const mu = h.reduce((a, v) => a + v, 0) / k;
      const va = h.reduce((a, v) => a + (v - mu) ** 2, 0) / k;
      h = h.map((v, j) => ((v - mu) / Math.sqrt(va + layer.eps)) * (g ? g[j]! : 1) + (beta ? beta[j]! : 0));
    }
    const m = Math.max(...h.map(Math.abs));
    const s = 127 / m;
    const q = h.map((v) => (m === 0 ? 0 : Math.round(v * s)));
    for (let r = 0; r < n; r++) {
      let acc = 0;
      let smax = 0;
      for (let s0 = 0, si = 0; s0 < k; s0 += seg, si++) {
        let isum = 0;
        for (let j = s0; j < Math.min(k, s0 + seg); j++) isum += q[j]! * t[r * k + j]!;
        acc += isum * scale(r, si);
        smax = Math.max(smax, Math.abs(scale(r, si)));
      }
      const v = (m === 0 ? 0 : acc / s) + (b ? b[r]! : 0);
      y.push(v);
      // a few int8 rounding flips (each moves the result by scale / s) plus f32/f16 rounding
      tol.push((m === 0 ? 0 : (4 * smax) / s) + 1e-5 + 8e-3 * Math.abs(v));
    }
  }
  return { y, tol };
}

/** Deterministic activations [..., in] with one all-zero token when there are several. */
function input(shape: number[], seed: number, dtype: DType = "f32", zeroRow = false): bn.Tensor {
  using x = bn.randn(shape, { seed, std: 2 });
  const d = new Float32Array(vals(x));
  if (zeroRow && d.length >= 2 * shape[shape.length - 1]!) d.fill(0, 0, shape[shape.length - 1]!);
  using f = bn.tensor(d, { shape });
  return f.astype(dtype);
}

const outDtype = (d: DType): DType => (d === "f32" ? "f32" : d);

function expectExact(layer: bn.BitLinear, x: bn.Tensor): bn.Tensor {
  const y = layer.forward(x);
  expect(y.shape).toEqual([...x.shape.slice(0, -1), layer.outFeatures]);
  expect(y.dtype).toBe(outDtype(x.dtype));
  expect(vals(y)).toEqual(exactRef(layer, libNorm(layer, x), y.dtype));
  return y;
}

describe("construction", () => {
  test("defaults: no bias, RMS norm with a weight of ones, i2 per tensor, PyTorch init bounds", () => {
    using l = new bn.nn.BitLinear(50, 7, { seed: 3 }).eval();
    expect(l.inFeatures).toBe(50);
    expect(l.outFeatures).toBe(7);
    expect(l.norm).toBe("rms");
    expect(l.eps).toBe(1e-5);
    expect(l.format).toBe("i2");
    expect(l.granularity).toBe("tensor");
    expect(l.bias).toBeNull();
    expect(l.weight.shape).toEqual([7, 50]);
    expect(l.weight.dtype).toBe("f32");
    const w = vals(l.weight);
    const bound = 1 / Math.sqrt(50);
    expect(w.every((v) => v >= -bound && v < bound)).toBe(true);
    expect(Math.max(...w) - Math.min(...w)).toBeGreaterThan(bound); // spread over the range
    expect(vals(l.normWeight!)).toEqual(new Array(50).fill(1));
    expect(l.normBias).toBeNull();
    expect(l.parameters()).toEqual([l.weight, l.normWeight!]);
    expect(l.quantized.format).toBe("i2");
    expect(l.quantized.shape).toEqual([7, 50]);
    expect(String(l)).toBe("BitLinear(in=50, out=7, bias=false, norm=rms, format=i2, granularity=tensor)");
  });

  test("options: bias, layer norm, no affine, seeds reproducible", () => {
    using a = new bn.nn.BitLinear(9, 4, { seed: 11, bias: true, norm: "layer" }).eval();
    using b = new bn.nn.BitLinear(9, 4, { seed: 11, bias: true, norm: "layer" }).eval();
    using c = new bn.nn.BitLinear(9, 4, { seed: 12 }).eval();
    expect(vals(a.weight)).toEqual(vals(b.weight));
    expect(vals(a.bias!)).toEqual(vals(b.bias!));
    expect(vals(a.weight)).not.toEqual(vals(c.weight));
    expect(a.bias!.shape).toEqual([4]);
    expect(vals(a.bias!).every((v) => Math.abs(v) <= 1 / 3)).toBe(true);
    expect(vals(a.normBias!)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(a.parameters().length).toBe(4);
    using d = new bn.nn.BitLinear(9, 4, { norm: "rms", elementwiseAffine: false }).eval();
    expect(d.normWeight).toBeNull();
    expect(d.parameters()).toEqual([d.weight]);
    using e = new bn.nn.BitLinear(9, 4, { norm: "none" }).eval();
    expect(e.normWeight).toBeNull();
    expect(e.normBias).toBeNull();
  });

  test("fromFloat copies the weights (as f32), infers sizes, takes options", () => {
    using w = bn.tensor([[0.5, -0.25, 0], [1, -1, 0.125]], { dtype: "f16" });
    using bias = bn.tensor([0.5, -1.5]);
    using l = bn.nn.BitLinear.fromFloat(w, bias, { norm: "none" }).eval();
    expect([l.inFeatures, l.outFeatures]).toEqual([3, 2]);
    expect(l.weight.dtype).toBe("f32");
    expect(vals(l.weight)).toEqual([0.5, -0.25, 0, 1, -1, 0.125]);
    expect(vals(l.bias!)).toEqual([0.5, -1.5]);
    // the caller's tensors stay theirs: changing them changes nothing in the layer
    bn.mul_(w, 2);
    bias.dispose();
    expect(vals(l.weight)).toEqual([0.5, -0.25, 0, 1, -1, 0.125]);
    expect(vals(l.bias!)).toEqual([0.5, -1.5]);
    using x = bn.tensor([[1, 2, 3], [0, 0, 0], [-4, 0.5, 2]]);
    expectExact(l, x).dispose();
    using nob = bn.nn.BitLinear.fromFloat(w).eval();
    expect(nob.bias).toBeNull();
    using zb = bn.nn.BitLinear.fromFloat(w, null, { bias: true }).eval();
    expect(vals(zb.bias!)).toEqual([0, 0]);
  });
});

describe("forward equals the reference", () => {
  const shapes = (k: number) => [[k], [3, k], [2, 3, k]];
  for (const norm of ["rms", "layer", "none"] as const) {
    for (const bias of [false, true]) {
      test(`norm ${norm}, bias ${bias}: [in], [B, in], [B, T, in]; exact and float64`, () => {
        for (const k of [1, 7, 64, 300]) {
          using l = new bn.nn.BitLinear(k, 5, { norm, bias, seed: k }).eval();
          for (const shape of shapes(k)) {
            using x = input(shape, k + shape.length, "f32", true);
            const before = vals(x);
            using y = expectExact(l, x);
            expect(vals(x)).toEqual(before); // operand unchanged
            const { y: r, tol } = f64Ref(l, before);
            const got = vals(y);
            got.forEach((v, i) => expect(Math.abs(v - r[i]!)).toBeLessThanOrEqual(tol[i]!));
          }
        }
      });
    }
  }

  test("f16 and bf16 inputs: mixed precision, output in the input's dtype", () => {
    for (const dtype of ["f16", "bf16"] as const) {
      for (const norm of ["rms", "layer", "none"] as const) {
        using l = new bn.nn.BitLinear(260, 6, { norm, bias: true, seed: 5 }).eval();
        using x = input([2, 3, 260], 9, dtype, true);
        using y = expectExact(l, x);
        const { y: r, tol } = f64Ref(l, vals(x));
        vals(y).forEach((v, i) => expect(Math.abs(v - r[i]!)).toBeLessThanOrEqual(tol[i]! + Math.abs(r[i]!) * 2 ** -7));
      }
    }
  });

  test("per-channel, group and tq formats", () => {
    const cases: bn.BitLinearOptions[] = [
      { granularity: "channel" },
      { granularity: { group: 256 } },
      { format: "tq2_0" },
      { format: "tq1_0", bias: true },
      { format: "tq2_0", granularity: "channel" },
    ];
    for (const opts of cases) {
      using l = new bn.nn.BitLinear(512, 9, { seed: 1, ...opts }).eval();
      using x = input([4, 512], 2);
      expectExact(l, x).dispose();
    }
  });

  test("strided views and empty leading dimensions", () => {
    using l = new bn.nn.BitLinear(6, 3, { bias: true, seed: 2 }).eval();
    using x = input([6, 4], 3);
    using xt = x.T; // [4, 6], not contiguous
    expectExact(l, xt).dispose();
    using e = bn.zeros([0, 2, 6]);
    using y = l.forward(e);
    expect(y.shape).toEqual([0, 2, 3]);
  });

  test("property: random sizes, shapes, norms, dtypes", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 600 }),
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 2 }),
        fc.constantFrom("rms", "layer", "none"),
        fc.boolean(),
        fc.constantFrom<DType>("f32", "f16", "bf16"),
        fc.nat(1000),
        (k, n, lead, norm, bias, dtype, seed) => {
          using l = new bn.nn.BitLinear(k, n, { norm: norm as bn.BitLinearOptions["norm"], bias, seed }).eval();
          using x = input([...lead, k], seed + 1, dtype);
          expectExact(l, x).dispose();
        },
      ),
      { numRuns: 40 },
    );
  });

  test("three layers with relu between them", () => {
    using l1 = new bn.nn.BitLinear(40, 32, { seed: 1, bias: true }).eval();
    using l2 = new bn.nn.BitLinear(32, 24, { seed: 2, norm: "layer" }).eval();
    using l3 = new bn.nn.BitLinear(24, 8, { seed: 3, bias: true }).eval();
    using x = input([2, 5, 40], 4);
    using h1 = l1.forward(x);
    using a1 = bn.relu(h1);
    using h2 = l2.forward(a1);
    using a2 = bn.relu(h2);
    using y = l3.forward(a2);
    expect(y.shape).toEqual([2, 5, 8]);
    // the reference chain: each layer exactly, relu in JS, fed back as f32 tensors
    let cur = x.shape;
    let r = exactRef(l1, libNorm(l1, x), "f32");
    for (const [l, w] of [[l2, 32], [l3, 24]] as const) {
      cur = [2, 5, w];
      using t = bn.tensor(new Float32Array(r.map((v) => Math.max(0, v))), { shape: cur });
      r = exactRef(l, libNorm(l, t), "f32");
    }
    expect(vals(y)).toEqual(r);
  });
});

describe("quantized weights cache", () => {
  test("built once; rebuilt after an in-place change through the library, or by requantize()", () => {
    using l = new bn.nn.BitLinear(16, 4, { seed: 7 }).eval();
    using x = input([3, 16], 1);
    const q = l.quantized;
    expect(l.quantized).toBe(q); // cached
    const s0 = q.scale.item() as number;
    const w = vals(l.weight);
    expect(s0).toBeCloseTo(w.reduce((a, v) => a + Math.abs(v), 0) / w.length, 6); // absmean
    using y0 = expectExact(l, x);
    expect(() => bn.mul_(l.weight, -3)).toThrow(bn.AutogradError); // a parameter: only outside the graph
    expect(vals(l.weight)).toEqual(w);
    // A write through .data is invisible to the library: the cache is stale until requantize().
    const wd = l.weight.data as Float32Array;
    wd.set(wd.map((v) => -3 * v));
    using y1 = l.forward(x);
    expect(vals(y1)).toEqual(vals(y0));
    const q2 = l.requantize();
    expect(q.disposed).toBe(true);
    expect(l.quantized).toBe(q2);
    // An in-place op through the library (an optimizer step, or noGrad + mul_) rebuilds it by itself.
    bn.noGrad(() => bn.mul_(l.weight, -1 / 3));
    const q3 = l.quantized;
    expect(q2.disposed).toBe(true);
    expect(q3.scale.item()).toBeCloseTo(s0, 5);
    using y3 = l.forward(x);
    vals(y3).forEach((v, i) => expect(v).toBeCloseTo(vals(y0)[i]!, 5));
    wd.set(wd.map((v) => -3 * v));
    l.requantize();
    expect(l.quantized.scale.item()).toBeCloseTo(3 * s0, 5);
    using y2 = expectExact(l, x);
    // t flips sign, the scale triples: y2 ≈ -3 y0 (per-tensor scale, same int8 activations)
    vals(y2).forEach((v, i) => expect(v).toBeCloseTo(-3 * vals(y0)[i]!, 4));
  });

  test("a trained norm weight is used", () => {
    using l = new bn.nn.BitLinear(8, 3, { seed: 1, norm: "layer" }).eval();
    l.normWeight!.data.set([1, 2, 3, 4, 0.5, 0.25, 1, 1]);
    l.normBias!.data.set([0, 0.1, 0, -0.2, 0, 0, 0.3, 0]);
    using x = input([2, 8], 5);
    expectExact(l, x).dispose();
  });
});

describe("bad input and lifetime", () => {
  test("typed errors naming the shapes and the layer; operands unchanged; nothing leaks", () => {
    using l = new bn.nn.BitLinear(4, 3, { seed: 0 }).eval();
    l.quantized; // cache built before counting
    using x5 = bn.ones([2, 5]);
    using xi = bn.ones([2, 4], { dtype: "i32" });
    using s = bn.tensor(1);
    const before = bn.memory.stats();
    expect(() => l.forward(x5)).toThrow(bn.ShapeError);
    expect(() => l.forward(x5)).toThrow(/x \[2, 5\] must end in 4: BitLinear\(in=4, out=3\).*\[3, 4\]/);
    expect(() => l.forward(s)).toThrow(bn.ShapeError);
    expect(() => l.forward(xi)).toThrow(bn.DTypeError);
    expect(() => l.forward([1, 2, 3, 4] as never)).toThrow(bn.DTypeError);
    const gone = bn.ones([4]);
    gone.dispose();
    expect(() => l.forward(gone)).toThrow(bn.DisposedTensorError);
    const after = bn.memory.stats();
    expect(after.liveTensors).toBe(before.liveTensors);
    expect(after.bytesInUse).toBe(before.bytesInUse);
    expect(vals(x5)).toEqual(new Array(10).fill(1));
  });

  test("bad constructor arguments and options", () => {
    const before = bn.memory.stats().liveTensors;
    expect(() => new bn.nn.BitLinear(0, 3).eval()).toThrow(bn.ValueError);
    expect(() => new bn.nn.BitLinear(3, 1.5).eval()).toThrow(bn.ValueError);
    expect(() => new bn.nn.BitLinear(3, 2, { norm: "batch" as never }).eval()).toThrow(bn.ValueError);
    expect(() => new bn.nn.BitLinear(3, 2, { colour: 1 } as never).eval()).toThrow(bn.ValueError);
    expect(() => new bn.nn.BitLinear(3, 2, { eps: -1 }).eval()).toThrow(bn.ValueError);
    expect(() => new bn.nn.BitLinear(3, 2, { seed: -1 }).eval()).toThrow(bn.ValueError);
    expect(() => new bn.nn.BitLinear(3, 2, { format: "q4" as never }).eval()).toThrow(bn.ValueError);
    expect(() => new bn.nn.BitLinear(300, 2, { format: "tq2_0" }).eval()).toThrow(bn.ShapeError);
    expect(() => new bn.nn.BitLinear(512, 2, { granularity: { group: 384 } }).eval()).toThrow(bn.ShapeError);
    using w1 = bn.ones([3]);
    using w = bn.ones([2, 300]);
    using wi = bn.ones([2, 3], { dtype: "i8" });
    using b3 = bn.ones([3]);
    expect(() => bn.nn.BitLinear.fromFloat(w1).eval()).toThrow(bn.ShapeError);
    expect(() => bn.nn.BitLinear.fromFloat(wi).eval()).toThrow(bn.DTypeError);
    expect(() => bn.nn.BitLinear.fromFloat(w, b3).eval()).toThrow(/bias must have shape \[2\]/);
    expect(() => bn.nn.BitLinear.fromFloat(w, null, { format: "tq1_0" }).eval()).toThrow(bn.ShapeError); // copies released
    expect(bn.memory.stats().liveTensors).toBe(before + 4);
  });

  test("dispose releases everything exactly once; later use throws", () => {
    const before = bn.memory.stats().liveTensors;
    const l = new bn.nn.BitLinear(300, 10, { bias: true, norm: "layer", seed: 1 }).eval();
    {
      using x = input([2, 300], 1, "bf16");
      for (let i = 0; i < 3; i++) l.forward(x).dispose();
      l.requantize();
    }
    expect(bn.memory.stats().liveTensors).toBe(before + 6); // weight, bias, norm weight and bias, ternary codes and scale
    l.dispose();
    l.dispose();
    expect(l.disposed).toBe(true);
    expect(bn.memory.stats().liveTensors).toBe(before);
    expect(String(l)).toContain("disposed");
    using x = bn.ones([300]);
    expect(() => l.forward(x)).toThrow(bn.DisposedTensorError);
    expect(() => l.quantized).toThrow(bn.DisposedTensorError);
    expect(() => l.requantize()).toThrow(bn.DisposedTensorError);
    expect(() => l.parameters()).toThrow(bn.DisposedTensorError);
    {
      using m = new bn.nn.BitLinear(8, 2).eval();
      m.quantized;
    }
    expect(bn.memory.stats().liveTensors).toBe(before + 1); // only x
  });
});
