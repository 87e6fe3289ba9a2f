// The GPU conformance suite, run on every GPU device the same way: test/cuda.test.ts runs it on
// "cuda" (the H100 through the device tool), test/metal.test.ts on "metal" (a Mac, or here the
// CPU emulator of the Metal shim, metal/emu.cpp). Every op that has a GPU kernel is checked against
// the CPU's result for the same inputs: transfers, the pool, elementwise ops, reductions, row ops,
// products, the ternary matmul, modules moved to the device, and the refusals.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import * as bn from "../src/index.ts";
import { INT_RANGE, arbPerm } from "./helpers.ts";

export type GpuDevice = "cuda" | "metal";

export const vals = (t: bn.Tensor) => Array.from(t._toFloat64("test"));

/** max |a - b| over max(1, max |b|). */
export function relErr(a: number[], b: number[]): number {
  let d = 0;
  let m = 1;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return d / m;
}

/**
 * How closely a device matches the CPU. `arith`: relative difference allowed for IEEE arithmetic
 * (0: the same bits; Apple's GPUs are not documented to round division and the ternary rescale
 * exactly, so a real Metal device gets one f32 ulp). `big`: run the large ternary shapes (the
 * emulator runs every GPU thread on the CPU: smaller shapes there).
 */
export interface GpuTolerance {
  arith: number;
  big: boolean;
}

/** The tolerance for `device` as present now (CUDA exact; Metal exact only in the emulator). */
export function toleranceFor(device: GpuDevice): GpuTolerance {
  if (device === "cuda") return { arith: 0, big: true };
  const emulated = bn.deviceCapabilities("metal").name.includes("emulator");
  return { arith: emulated ? 0 : 2 ** -23, big: !emulated };
}

function close(device: string, g: bn.Tensor, c: bn.Tensor, tol: number, what = "") {
  expect(g.device).toBe(device);
  expect(g.dtype).toBe(c.dtype);
  expect(g.shape).toEqual(c.shape);
  const x = vals(g);
  vals(c).forEach((v, i) => {
    if (x[i] === v) return; // infinities too
    if (Number.isNaN(v)) {
      if (!Number.isNaN(x[i]!)) throw new Error(`${what}[${i}]: ${x[i]} vs NaN`);
    } else if (!(Math.abs(x[i]! - v) <= tol * (1 + Math.abs(v)))) throw new Error(`${what}[${i}]: ${x[i]} vs ${v}`);
  });
}

/**
 * The ternary matmul on the GPU against the CPU's: every format and scale granularity, every
 * activation dtype, 1 to 37 tokens (a zero token and a NaN token among them). Tensor and channel
 * scales give the CPU's bits where `arith` is 0; group and block scales sum in another order.
 */
export function ternaryCases(device: GpuDevice, tol: GpuTolerance) {
  const configs: { fmt: bn.TernaryFormat; g?: bn.TernaryGranularity; k: number; n: number; exact: boolean }[] = [
    { fmt: "i2", g: "tensor", k: 768, n: 70, exact: true },
    { fmt: "i2", g: "channel", k: 1000, n: 70, exact: true }, // rows padded to whole blocks
    { fmt: "i2", g: { group: 512 }, k: 1024, n: 70, exact: false },
    { fmt: "tq2_0", k: 768, n: 70, exact: false },
    // more rows than the GPU has tile slots (several tiles a block), k past 8192
    { fmt: "i2", g: "channel", k: 9000, n: tol.big ? 2100 : 130, exact: true },
  ];
  let seed = 40;
  for (const c of configs) {
    using w = bn.randn([c.n, c.k], { seed: seed++ });
    using q = bn.quant.ternary(w, { format: c.fmt, ...(c.g ? { granularity: c.g } : {}) });
    using gq = q.to(device);
    expect(gq.device).toBe(device);
    expect(gq.format).toBe(c.fmt);
    for (const dtype of ["f32", "f16", "bf16"] as const) {
      for (const m of [1, 3, 16, 37]) {
        using xf = bn.randn([m, c.k], { seed: seed++ });
        const data = Float32Array.from(vals(xf));
        if (m >= 3) {
          // A zero token and a token with a NaN: 0 and NaN rows, as on the CPU.
          data.fill(0, c.k, 2 * c.k);
          data[2 * c.k + 5] = Number.NaN;
        }
        using x32 = bn.tensor(data, { shape: [m, c.k] });
        using x = x32.astype(dtype);
        using want = bn.quant.ternaryMatmul(x, q);
        using gx = x.to(device);
        using got = bn.quant.ternaryMatmul(gx, gq);
        expect(got.device).toBe(device);
        const a = vals(got);
        const b = vals(want);
        if (c.exact && tol.arith === 0) expect(a).toEqual(b);
        else {
          const t = c.exact ? tol.arith : 8e-6;
          for (let i = 0; i < b.length; i++) {
            if (Number.isNaN(b[i]!)) expect(a[i]).toBeNaN();
            else if (!(Math.abs(a[i]! - b[i]!) <= t * Math.max(1, Math.abs(b[i]!)))) throw new Error(`${c.fmt} ${dtype} m=${m} [${i}]: ${a[i]} vs ${b[i]}`);
          }
        }
      }
    }
  }
}

/** Registers the conformance suite for `device` (its tests skip where the device is absent). */
export function gpuConformance(device: GpuDevice, present: boolean) {
  const D = device;
  const tol = () => toleranceFor(D);

  describe(`GPU conformance on ${D}`, () => {
    test.if(present)("round trips of every dtype, strided views and reversed slices", () => {
      for (const dtype of bn.DTYPES) {
        using x = bn.arange(0, 24, 1, { dtype: dtype === "bool" ? "i32" : dtype }).reshape([2, 3, 4]);
        using h = dtype === "bool" ? x.astype("bool") : x.clone();
        using g = h.to(D);
        expect(g.device).toBe(D);
        expect(g.dtype).toBe(dtype);
        using back = g.toCpu();
        expect(back.device).toBe("cpu");
        expect(vals(back)).toEqual(vals(h));
        expect(vals(g)).toEqual(vals(h)); // reading values copies to the host
      }
      using a = bn.randn([5, 7], { seed: 1 });
      using ga = a.to(D);
      using gt = ga.T; // a strided view on the GPU
      using tb = gt.toCpu();
      expect(tb.toArray()).toEqual(a.T.toArray());
      using rs = ga.slice([[null, null, -2], [6, 0, -3]]);
      using rb = rs.toCpu();
      using want = a.slice([[null, null, -2], [6, 0, -3]]);
      expect(rb.toArray()).toEqual(want.toArray());
      using gs = a.T.to(D); // a strided CPU view goes over contiguous
      expect(gs.isContiguous()).toBe(true);
      expect(gs.toArray()).toEqual(a.T.toArray());
      expect(String(ga)).toContain(`device=${D}`);
    });

    test.if(present)("creation on the GPU, the pool's counters, trim and the limit", () => {
      const s0 = bn.memory.stats(D);
      {
        using z = bn.zeros([1000], { device: D });
        using o = bn.ones([3], { device: D, dtype: "bf16" });
        using r = bn.randn([64], { seed: 5, device: D });
        using rc = bn.randn([64], { seed: 5 });
        expect(vals(z).every((v) => v === 0)).toBe(true);
        expect(vals(o)).toEqual([1, 1, 1]);
        expect(vals(r)).toEqual(vals(rc));
        const s1 = bn.memory.stats(D);
        expect(s1.bytesInUse).toBeGreaterThanOrEqual(s0.bytesInUse + 4000 + 6 + 256);
        expect(s1.liveTensors).toBe(s0.liveTensors + 3);
        expect(bn.memory.liveAllocations(D).length).toBeGreaterThanOrEqual(3);
      }
      expect(bn.memory.stats(D).bytesInUse).toBe(s0.bytesInUse);
      bn.memory.trim(D);
      expect(bn.memory.stats(D).bytesReserved).toBeLessThanOrEqual(bn.memory.stats(D).bytesInUse + 64 * 2 ** 20);
      bn.memory.setLimit(2 ** 20, D);
      try {
        expect(() => bn.empty([2 ** 20], { device: D })).toThrow(bn.OutOfMemoryError);
        using small = bn.ones([16], { device: D });
        expect(vals(small)[0]).toBe(1);
      } finally {
        bn.memory.setLimit(0, D);
      }
    });

    test.if(present)("elementwise ops, where, astype and contiguous run on the GPU and match the CPU", () => {
      const exact = tol().arith;
      using a = bn.randn([3, 4, 5], { seed: 1 });
      using b = bn.randn([4, 1], { seed: 2 });
      using ga = a.to(D);
      using gb = b.to(D);
      // IEEE arithmetic and comparisons: the CPU's bits (within `exact`).
      for (const f of [bn.add, bn.sub, bn.mul, bn.div, bn.maximum, bn.minimum, bn.lt, bn.eq, bn.ge]) {
        using c = f(a, b);
        using g = f(ga, gb);
        close(D, g, c, exact, f.name);
      }
      using pc = bn.pow(bn.abs(a), b);
      using gab = bn.abs(ga);
      using pg = bn.pow(gab, gb);
      close(D, pg, pc, 2e-6, "pow");
      const un: [string, (t: bn.Tensor) => bn.Tensor][] = [
        ["exp", bn.exp], ["tanh", bn.tanh], ["sigmoid", bn.sigmoid], ["silu", bn.silu], ["erf", bn.erf], ["sin", bn.sin], ["cos", bn.cos],
        ["gelu", (t) => bn.gelu(t)], ["gelu tanh", (t) => bn.gelu(t, { approximate: "tanh" })], ["relu", bn.relu], ["floor", bn.floor],
        ["round", bn.round], ["sign", bn.sign], ["neg", bn.neg], ["clip", (t) => t.clip(-0.5, 0.25)], ["gelu grad", (t) => bn.activationGrad("gelu", t)],
        ["silu grad", (t) => bn.activationGrad("silu", t)], ["tanh grad", (t) => bn.activationGrad("tanh", t)],
      ];
      for (const [name, f] of un) {
        using c = f(a);
        using g = f(ga);
        close(D, g, c, 4e-6, name);
      }
      // erf and gelu far out in the tails and near zero (Metal's erf is the library's own).
      using tails = bn.tensor([-9, -5, -3.2, -1e-3, -1e-7, 0, 1e-7, 0.3, 0.49, 0.51, 2.5, 6]);
      using gtails = tails.to(D);
      for (const [name, f] of [["erf", bn.erf], ["gelu", (t: bn.Tensor) => bn.gelu(t)], ["gelu grad", (t: bn.Tensor) => bn.activationGrad("gelu", t)]] as const) {
        using c = f(tails);
        using g = f(gtails);
        close(D, g, c, 4e-6, `${name} tails`);
      }
      using sc = ga.mul(2).add(1);
      using sref = a.mul(2).add(1);
      close(D, sc, sref, exact, "scalar");
      // Integer wrap-around, integer clip, f16/bf16 rounding and saturating casts as on the CPU.
      using big = bn.tensor([2147483647, -5, 7], { dtype: "i32" });
      using gbig = big.to(D);
      using w1 = bn.add(gbig, 1);
      expect(w1.toArray()).toEqual([-2147483648, -4, 8]);
      using i8 = bn.tensor([-100, 50, 120], { dtype: "i8" }).to(D);
      using i8m = bn.mul(i8, 3);
      expect(i8m.toArray()).toEqual([-44, -106, 104]);
      using ic = bn.arange(-5, 6, 1, { dtype: "i32" });
      using gic = ic.to(D);
      using icr = ic.clip(-2, 3);
      using icg = gic.clip(-2, 3);
      expect(icg.toArray()).toEqual(icr.toArray());
      for (const d of ["f16", "bf16"] as const) {
        using h = a.astype(d);
        using gh = ga.astype(d);
        close(D, gh, h, 0, `astype ${d}`);
        using s1 = bn.add(h, h.T.contiguous().T);
        using s2 = bn.add(gh, gh.T.contiguous().T);
        close(D, s2, s1, 0, `add ${d}`);
      }
      // Half subnormals, overflow and NaN converted by hand, bit for bit.
      using edge = bn.tensor([1e-7, -3e-8, 65519, 65520, -1e6, Number.NaN, 6.1e-5, 0.1]);
      using gedge = edge.to(D);
      for (const d of ["f16", "bf16"] as const) {
        using h = edge.astype(d);
        using gh = gedge.astype(d);
        close(D, gh, h, 0, `edge ${d}`);
        using back = gh.astype("f32");
        using hb = h.astype("f32");
        close(D, back, hb, 0, `edge ${d} back`);
      }
      using big3 = bn.tensor([300.7, -1e9, Number.NaN, -2.9]);
      using gi = big3.to(D).astype("i8");
      expect(gi.toArray()).toEqual([127, -128, 0, -2]);
      using u32 = bn.tensor([5e9, -1, 4294967295.5, 7.9]).to(D).astype("u32");
      using u32c = bn.tensor([5e9, -1, 4294967295.5, 7.9]).astype("u32");
      expect(u32.toArray()).toEqual(u32c.toArray());
      using cond = bn.gt(a, 0);
      using gcond = cond.to(D);
      using wc = bn.where(cond, a, b);
      using wg = bn.where(gcond, ga, gb);
      close(D, wg, wc, 0, "where");
      using ws = bn.where(cond, a, -1);
      using wgs = bn.where(gcond, ga, -1);
      close(D, wgs, ws, 0, "where scalar");
      using tc = ga.transpose(0, 2).contiguous();
      expect(tc.isContiguous()).toBe(true);
      expect(tc.toArray()).toEqual(a.transpose(0, 2).toArray());
      using acc = bn.zeros([4, 5], { device: D });
      bn.add_(acc, gb);
      bn.mul_(acc, 2);
      using accRef = bn.mul(bn.add(bn.zeros([4, 5]), b), 2);
      close(D, acc, accRef, 0, "in place");
      using bl = bn.tensor([true, false, true], { dtype: "bool" });
      using bl2 = bn.tensor([true, true, false], { dtype: "bool" });
      using gbl = bl.to(D);
      using gbl2 = bl2.to(D);
      for (const f of [bn.add, bn.mul, bn.maximum, bn.eq]) {
        using c = f(bl, bl2);
        using g = f(gbl, gbl2);
        expect(g.toArray()).toEqual(c.toArray());
      }
    });

    // Random layouts: the kernels' strided descriptors (merged and unmerged axes, permuted and
    // reversed views, broadcast operands, up to 5 axes) in every dtype, against the CPU's result
    // for the same views.
    const DT = ["f32", "f16", "bf16", "i8", "i16", "i32", "u8", "u16", "u32", "bool"] as const;
    const data = (shape: number[], dtype: bn.DType, seed: number) => {
      const n = shape.reduce((a, b) => a * b, 1);
      const v = new Float64Array(n);
      let x = seed >>> 0;
      const next = () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32);
      const [lo, hi] = INT_RANGE[dtype] ?? [0, 0];
      for (let i = 0; i < n; i++) v[i] = dtype in INT_RANGE ? Math.floor(lo + next() * (hi - lo + 1)) : (next() - 0.5) * 8;
      return bn.tensor(Array.from(v), { shape, dtype });
    };
    /** The same view of a CPU tensor and of its GPU copy: a permutation, then a reversed axis. */
    const arbView = (nd: number) => fc.tuple(arbPerm(nd), fc.integer({ min: -1, max: nd - 1 }));
    const view = (t: bn.Tensor, [perm, flip]: [number[], number]) => {
      const p = t.permute(perm);
      if (flip < 0 || p.shape[flip]! < 2) return p;
      const spec: ([number | null, number | null, number] | null)[] = p.shape.map(() => null);
      spec[flip] = [null, null, -1];
      const r = p.slice(spec);
      p.dispose();
      return r;
    };
    const arbCase = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 5 }).chain((shape) =>
      fc.tuple(fc.constant(shape), arbView(shape.length), fc.array(fc.boolean(), { minLength: shape.length, maxLength: shape.length }), fc.integer({ min: 0, max: shape.length - 1 }), fc.constantFrom(...DT), fc.integer({ min: 1, max: 1 << 30 })),
    );

    test.if(present)("random layouts, dtypes and broadcasts: binary, unary and where equal the CPU's (fast-check)", () => {
      const exact = tol().arith;
      fc.assert(
        fc.property(arbCase, fc.constantFrom("add", "sub", "mul", "div", "maximum", "minimum", "lt", "eq", "ge"), ([shape, v, ones, drop, dtype, seed], op) => {
          if (dtype === "bool" && op === "sub") return;
          const isFloat = dtype === "f32" || dtype === "f16" || dtype === "bf16";
          using a0 = data(shape, dtype, seed);
          using ga0 = a0.to(D);
          using a = view(a0, v);
          using ga = view(ga0, v);
          // b broadcasts against the view: some axes of size 1, leading axes dropped.
          const bs = a.shape.map((d, i) => (ones[i] ? 1 : d)).slice(drop);
          using b = data(bs.length ? bs : [1], dtype, seed + 1);
          using gb = b.to(D);
          const f = bn[op as "add"]; // div of integers divides in f32, as NumPy's true division
          using want = f(a, b);
          using got = f(ga, gb);
          close(D, got, want, op === "div" ? exact : 0, `${op} ${dtype} ${JSON.stringify(shape)}`);
          if (isFloat) {
            using uw = bn.tanh(a);
            using ug = bn.tanh(ga);
            close(D, ug, uw, 4e-6, `tanh ${dtype}`);
          } else {
            using uw = bn.neg(a.astype("i32"));
            using ug = bn.neg(ga.astype("i32"));
            close(D, ug, uw, 0, `neg ${dtype}`);
          }
          using cond = bn.gt(a, b);
          using gcond = bn.gt(ga, gb);
          using ww = bn.where(cond, a, b);
          using wg = bn.where(gcond, ga, gb);
          close(D, wg, ww, 0, `where ${dtype}`);
        }),
        { numRuns: 60 },
      );
    });

    test.if(present)("random layouts and axes: reductions equal the CPU's (fast-check)", () => {
      fc.assert(
        fc.property(arbCase, fc.constantFrom("sum", "max", "min", "mean", "argmax", "prod"), fc.boolean(), ([shape, v, axesMask, , dtype, seed], op, keepdims) => {
          if (dtype === "bool") return;
          using a0 = data(shape, dtype, seed);
          using ga0 = a0.to(D);
          using a = view(a0, v);
          using ga = view(ga0, v);
          const axes = shape.map((_, i) => i).filter((i) => axesMask[i]);
          const axis = op === "argmax" ? (axes[0] ?? 0) : axes.length ? axes : undefined;
          const f = bn[op as "sum"] as (t: bn.Tensor, o: bn.ReduceOptions) => bn.Tensor;
          using want = f(a, { axis, keepdims });
          using got = f(ga, { axis, keepdims });
          const isFloat = dtype === "f32" || dtype === "f16" || dtype === "bf16";
          // Integer means: exact on CUDA (f64), within two f32 ulps on Metal (no f64: the exact
          // 64-bit sum divided in f32 parts).
          close(D, got, want, isFloat && (op === "sum" || op === "mean" || op === "prod") ? 2e-6 : op === "mean" ? 2.4e-7 : 0, `${op} ${dtype} ${JSON.stringify(shape)} axis ${JSON.stringify(axis)}`);
        }),
        { numRuns: 60 },
      );
    });

    test.if(present)("reductions run on the GPU and match the CPU", () => {
      using a = bn.randn([3, 4, 5], { seed: 3 });
      using ga = a.to(D);
      const fns: [string, (t: bn.Tensor, o: bn.ReduceOptions) => bn.Tensor][] = [
        ["sum", bn.sum], ["mean", bn.mean], ["prod", bn.prod], ["min", bn.min], ["max", bn.max],
        ["var", bn.var], ["std", (t, o) => bn.std(t, { ...o, ddof: 1 })], ["logsumexp", bn.logsumexp],
      ];
      const opts: bn.ReduceOptions[] = [{}, { axis: 1 }, { axis: [0, 2] }, { axis: -1, keepdims: true }];
      for (const [name, f] of fns) {
        for (const o of opts) {
          using c = f(a, o);
          using g = f(ga, o);
          expect(g.device).toBe(D);
          expect(g.shape).toEqual(c.shape);
          const gv = vals(g);
          vals(c).forEach((v, i) => {
            if (Math.abs(gv[i]! - v) > 2e-6 * (1 + Math.abs(v))) throw new Error(`${name} ${JSON.stringify(o)}: ${gv[i]} vs ${v}`);
          });
        }
      }
      for (const f of [bn.argmin, bn.argmax]) {
        using c = f(a, { axis: 1 });
        using g = f(ga, { axis: 1 });
        expect(g.toArray()).toEqual(c.toArray());
        using cf = f(a);
        using gf = f(ga);
        expect(gf.item()).toBe(cf.item());
      }
      using ints = bn.tensor([[3, -7, 9], [2, 2, -1]], { dtype: "i16" });
      using gints = ints.to(D);
      for (const f of [bn.sum, bn.max, bn.min, bn.argmax, bn.prod]) {
        using c = f(ints, { axis: 1 });
        using g = f(gints, { axis: 1 });
        expect(g.dtype).toBe(c.dtype);
        expect(g.toArray()).toEqual(c.toArray());
      }
      // Large integers that cancel: mean, var and std from exact integer sums (an element's
      // conversion to f32 alone would move the mean by ~100 here).
      using big32 = bn.tensor([[2147483000, -2147483000, 1999999999, -5, 123456789], [2100000000, -2100000001, 7, 1000000001, -999999999]], { dtype: "i32" });
      using gbig32 = big32.to(D);
      for (const [name, f] of [["mean", bn.mean], ["var", bn.var], ["std", (t: bn.Tensor, o: bn.ReduceOptions) => bn.std(t, { ...o, ddof: 1 })]] as const) {
        for (const o of [{}, { axis: 1 }] as bn.ReduceOptions[]) {
          using c = f(big32, o);
          using g = f(gbig32, o);
          close(D, g, c, 2.4e-7, `${name} of large integers ${JSON.stringify(o)}`);
        }
      }
      using wrap = bn.tensor([2147483647, 1, 5], { dtype: "i32" }).to(D);
      using ws = wrap.sum();
      expect(ws.item()).toBe(-2147483643);
      using withNaN = bn.tensor([1, Number.NaN, 3, Number.NaN]).to(D);
      using mx = withNaN.max();
      using am = withNaN.argmax();
      expect(Number.isNaN(mx.item() as number)).toBe(true);
      expect(am.item()).toBe(1);
      using big = bn.ones([1 << 20], { device: D });
      using bs = big.sum();
      expect(bs.item()).toBe(1 << 20);
      // A product far past f32's range on the way that ends inside it.
      using pr = bn.tensor([1e30, 1e30, 1e-30, 1e-30, 3]).to(D);
      using pp = pr.prod();
      expect(Math.abs((pp.item() as number) - 3) / 3).toBeLessThan(1e-6);
      // Large sums stay accurate (compensated on Metal, f64 on CUDA).
      using lin = bn.arange(0, 1 << 20, 1, { dtype: "f32" });
      using glin = lin.to(D);
      using lsum = glin.sum();
      expect(lsum.item()).toBe(((1 << 20) * ((1 << 20) - 1)) / 2);
    });

    test.if(present)("softmax, logSoftmax, layerNorm and rmsNorm run on the GPU and match the CPU", () => {
      using a = bn.randn([4, 6, 300], { seed: 4, std: 3 });
      using ga = a.to(D);
      using w = bn.randn([300], { seed: 5 });
      using b = bn.randn([300], { seed: 6 });
      using gw = w.to(D);
      using gb = b.to(D);
      const cases: [string, bn.Tensor, bn.Tensor][] = [];
      for (const axis of [-1, 1, 0]) {
        cases.push([`softmax ${axis}`, bn.softmax(a, { axis }), bn.softmax(ga, { axis })]);
        cases.push([`logSoftmax ${axis}`, bn.logSoftmax(a, { axis }), bn.logSoftmax(ga, { axis })]);
      }
      cases.push(["layerNorm", bn.layerNorm(a, { weight: w, bias: b }), bn.layerNorm(ga, { weight: gw, bias: gb })]);
      cases.push(["rmsNorm", bn.rmsNorm(a, { weight: w }), bn.rmsNorm(ga, { weight: gw })]);
      using at = a.transpose(1, 2);
      using gt = ga.transpose(1, 2);
      cases.push(["rmsNorm strided", bn.rmsNorm(at), bn.rmsNorm(gt)]);
      cases.push(["layerNorm f16", bn.layerNorm(a.astype("f16")), bn.layerNorm(ga.astype("f16"))]);
      for (const [name, c, g] of cases) {
        expect(g.device).toBe(D);
        const gv = vals(g);
        const tolerance = name.endsWith("f16") ? 1e-3 : 5e-6;
        vals(c).forEach((v, i) => {
          if (Math.abs(gv[i]! - v) > tolerance * (1 + Math.abs(v))) throw new Error(`${name} [${i}]: ${gv[i]} vs ${v}`);
        });
        c.dispose();
        g.dispose();
      }
      using inf = bn.tensor([[1, Number.POSITIVE_INFINITY], [1, 2], [Number.NaN, 0], [Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY]]).to(D);
      using sm = bn.softmax(inf);
      const r = sm.toArray() as number[][];
      expect(r[0]!.every(Number.isNaN)).toBe(true); // +inf
      expect(r[1]![0]! + r[1]![1]!).toBeCloseTo(1, 6);
      expect(r[2]!.every(Number.isNaN)).toBe(true); // NaN
      expect(r[3]!.every(Number.isNaN)).toBe(true); // all -inf
      // Rows longer than the kernel keeps in registers take the streaming path.
      using long = bn.randn([3, 10000], { seed: 9, std: 4 });
      using gl = long.to(D);
      for (const [want, got] of [[bn.softmax(long), bn.softmax(gl)], [bn.logSoftmax(long), bn.logSoftmax(gl)]] as const) {
        const gv = vals(got);
        vals(want).forEach((v, i) => {
          if (Math.abs(gv[i]! - v) > 5e-6 * (1 + Math.abs(v))) throw new Error(`long row [${i}]: ${gv[i]} vs ${v}`);
        });
        want.dispose();
        got.dispose();
      }
    });

    test.if(present)("matmul matches the CPU: f32, views, batches, 1-D, dot, empty", () => {
      const cases: [number[], number[], (t: bn.Tensor) => bn.Tensor, (t: bn.Tensor) => bn.Tensor][] = [
        [[64, 48], [48, 80], (t) => t, (t) => t],
        [[33, 17], [29, 17], (t) => t, (t) => t.T], // w.T read in place
        [[17, 33], [17, 29], (t) => t.T, (t) => t], // a transposed first operand
        [[3, 1, 5, 6], [4, 6, 7], (t) => t, (t) => t], // broadcast batch
        [[2, 3, 4, 8], [2, 3, 8, 5], (t) => t, (t) => t], // merged batch axes
        [[40, 30], [30, 20], (t) => t.slice([[null, null, 2]]), (t) => t.slice([null, [null, null, 2]])], // strided: copied
        [[6, 9], [9, 4], (t) => t.slice([[null, null, -1]]), (t) => t], // reversed rows: copied
        [[9], [9, 4], (t) => t, (t) => t], // 1-D first operand
        [[5, 9], [9], (t) => t, (t) => t], // 1-D second operand
        [[9], [9], (t) => t, (t) => t], // dot product
        [[4, 0], [0, 3], (t) => t, (t) => t], // K = 0: zeros
        [[0, 5], [5, 3], (t) => t, (t) => t], // M = 0
      ];
      let seed = 10;
      for (const [as, bs, fa, fb] of cases) {
        using a = bn.randn(as, { seed: seed++ });
        using b = bn.randn(bs, { seed: seed++ });
        using ga = a.to(D);
        using gb = b.to(D);
        using va = fa(a);
        using vb = fb(b);
        using gva = fa(ga);
        using gvb = fb(gb);
        using want = bn.matmul(va, vb);
        using got = bn.matmul(gva, gvb);
        expect(got.device).toBe(D);
        expect(got.shape).toEqual(want.shape);
        expect(got.dtype).toBe("f32");
        expect(relErr(vals(got), vals(want))).toBeLessThan(1e-5);
      }
      using x = bn.randn([2, 3, 5], { seed: 1 });
      using y = bn.randn([4, 5, 6], { seed: 2 });
      using gx = x.to(D);
      using gy = y.to(D);
      using dw = bn.dot(x, y);
      using dg = bn.dot(gx, gy);
      expect(dg.shape).toEqual([2, 3, 4, 6]);
      expect(relErr(vals(dg), vals(dw))).toBeLessThan(1e-5);
      // f16 operands give an f16 result (bf16 too on CUDA; Metal's MPS takes f32 and f16).
      for (const [dtype, t] of [["f16", 2e-3], ["bf16", 1.6e-2]] as const) {
        using ha = bn.randn([96, 128], { seed: 3 }).astype(dtype);
        using hb = bn.randn([128, 72], { seed: 4 }).astype(dtype);
        using gha = ha.to(D);
        using ghb = hb.to(D);
        if (D === "metal" && dtype === "bf16") {
          expect(() => bn.matmul(gha, ghb)).toThrow(bn.DTypeError);
          continue;
        }
        using got = bn.matmul(gha, ghb.T.contiguous().T); // column-major second operand
        expect(got.dtype).toBe(dtype);
        using want = bn.matmul(ha.astype("f32"), hb.astype("f32"));
        expect(relErr(vals(got), vals(want))).toBeLessThan(t);
      }
    });

    test.if(present)("ternaryMatmul on the GPU equals the CPU's (formats, scales, dtypes, token counts)", () => {
      ternaryCases(D, tol());
    }, 120_000);

    test.if(present)("ternaryMatmul: a wide layer, strided x, and the refusals", () => {
      const t = tol();
      using w = bn.randn([t.big ? 1024 : 96, 4096], { seed: 7 });
      using q = bn.quant.ternary(w, { granularity: "channel" });
      using gq = q.to(D);
      using x = bn.randn([16, 8192], { seed: 8 });
      using xs = x.slice([null, [null, null, 2]]); // every other column: copied contiguous first
      using gx = x.to(D);
      using gxs = gx.slice([null, [null, null, 2]]);
      using want = bn.quant.ternaryMatmul(xs, q);
      using got = bn.quant.ternaryMatmul(gxs, gq);
      close(D, got, want, t.arith, "wide");
      // Quantizing GPU weights packs on the host and returns GPU weights.
      using gw = w.to(D);
      using gq2 = bn.quant.ternary(gw, { granularity: "channel" });
      expect(gq2.device).toBe(D);
      using got2 = bn.quant.ternaryMatmul(gxs, gq2);
      close(D, got2, want, t.arith, "wide, quantized on the GPU");
      using w1 = bn.randn([8, 256], { seed: 9 });
      using t1 = bn.quant.ternary(w1, { format: "tq1_0" });
      using g1 = t1.to(D);
      using gx1 = bn.ones([2, 256], { device: D });
      expect(() => bn.quant.ternaryMatmul(gx1, g1)).toThrow(/tq1_0 weights run on the CPU only/);
      expect(() => bn.quant.ternaryMatmul(xs, gq)).toThrow(bn.DeviceError);
      expect(() => g1.dequantize()).toThrow(bn.DeviceError);
    });

    test.if(present)(`modules move with to("${D}"): Linear, BitLinear (packed kernel), Sequential`, () => {
      const make = () =>
        new bn.nn.Sequential(
          new bn.nn.BitLinear(256, 128, { norm: "none", seed: 1 }),
          new bn.nn.Linear(128, 64, { seed: 2 }),
          new bn.nn.BitLinear(64, 32, { seed: 3 }), // RMS norm inside
        ).eval();
      using cpu = make();
      using gpu = make();
      const params = gpu.parameters();
      expect(gpu.to(D)).toBe(gpu);
      expect(gpu.parameters().every((p, i) => p === params[i])).toBe(true);
      for (const p of gpu.parameters()) expect(p.device).toBe(D);
      using x = bn.randn([5, 256], { seed: 4 });
      using gx = x.to(D);
      using want = cpu.forward(x);
      using got = gpu.forward(gx);
      expect(got.device).toBe(D);
      // The norm's statistics round differently on the GPU: the int8 codes may differ by one step.
      expect(relErr(vals(got), vals(want))).toBeLessThan(2e-2);
      // Without a norm, the BitLinear kernel agrees exactly.
      const l0 = gpu.children()[0]![1] as InstanceType<typeof bn.nn.BitLinear>;
      const c0 = cpu.children()[0]![1] as InstanceType<typeof bn.nn.BitLinear>;
      using y0 = l0.forward(gx);
      using w0 = c0.forward(x);
      close(D, y0, w0, tol().arith, "BitLinear");
      gpu.to("cpu");
      using back = gpu.forward(x);
      expect(relErr(vals(back), vals(want))).toBe(0);
    });

    test.if(present)("BitLinear.fromTernary moves its exact packed weights", () => {
      using w = bn.randn([64, 512], { seed: 11 });
      using q = bn.quant.ternary(w, { format: "tq2_0" });
      using layer = bn.nn.BitLinear.fromTernary(q, null, { norm: "none" }).eval();
      using x = bn.randn([4, 512], { seed: 12 });
      using want = layer.forward(x);
      layer.to(D);
      expect(layer.quantized.device).toBe(D);
      using gx = x.to(D);
      using got = layer.forward(gx);
      expect(relErr(vals(got), vals(want))).toBeLessThan(1e-5);
    });

    test.if(present)("refusals: integer products, ops without GPU kernels, mixing devices", () => {
      using gi = bn.ones([3, 3], { dtype: "i32", device: D });
      expect(() => bn.matmul(gi, gi)).toThrow(bn.DeviceError);
      expect(() => bn.matmul(gi, gi)).toThrow(new RegExp(`integer and bool products do not run on ${D}`));
      using c = bn.ones([4]);
      using g = bn.ones([4], { device: D });
      using g2 = bn.eye(3, undefined, { device: D });
      expect(() => bn.linalg.inv(g2)).toThrow(bn.DeviceError);
      expect(() => bn.linalg.inv(g2)).toThrow(/runs on the CPU only/);
      expect(() => bn.cumsum(g, 0)).toThrow(bn.DeviceError);
      expect(() => bn.add(c, g)).toThrow(bn.DeviceError);
      expect(() => bn.add(c, g)).toThrow(new RegExp(`different devices \\(cpu, ${D}\\)`));
      expect(() => g.data).toThrow(/not addressable from JS/);
      // The operands are unchanged by the refused calls.
      expect(vals(g)).toEqual([1, 1, 1, 1]);
      bn.synchronize(D);
    });

    test.if(present)("gradients flow back through to()", () => {
      using x = bn.tensor([1, 2, 3], { requiresGrad: true });
      using y = x.to(D);
      using z = y.toCpu();
      using s = bn.mul(z, z).sum();
      s.backward();
      expect(x.grad!.toArray()).toEqual([2, 4, 6]);
    });
  });
}
