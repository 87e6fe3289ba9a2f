// The CUDA backend's foundation: found at run time, never required. Everywhere: the absence path
// (no throw at import, "cuda" not listed, typed errors that say why). Where a GPU is present (the
// H100 runs through the device tool): devices and their facts, the per-GPU pool and its counters,
// transfers of every dtype and of strided views, creation on the GPU, gradients through to(),
// running out of device memory, the elementwise and reduction kernels (NVRTC) against the CPU's
// results, and ops without GPU kernels yet refusing GPU tensors.
import { describe, expect, test } from "bun:test";
import * as bn from "../src/index.ts";

const present = bn.devices().includes("cuda");
if (!present) console.log(`cuda tests: the GPU part is skipped here (no CUDA device); the absence path runs`);

const vals = (t: bn.Tensor) => Array.from(t._toFloat64("test"));

describe("CUDA absent", () => {
  test.skipIf(present)("nothing throws at import; to('cuda') and friends are DeviceErrors that say why", () => {
    expect(bn.devices()).toEqual(["cpu"]);
    expect(bn.autoSelectDevice()).toBe("cpu");
    using t = bn.ones([3]);
    expect(() => t.to("cuda")).toThrow(bn.DeviceError);
    expect(() => t.to("cuda")).toThrow(/"cuda" is not available: .+/);
    expect(() => t.toGpu()).toThrow(bn.DeviceError);
    expect(() => bn.zeros([2], { device: "cuda" })).toThrow(bn.DeviceError);
    expect(() => bn.memory.stats("cuda:1")).toThrow(bn.DeviceError);
    expect(() => bn.deviceCapabilities("cuda")).toThrow(bn.DeviceError);
    expect(() => t.to("tpu")).toThrow(/unknown device "tpu"/);
    expect(t.device).toBe("cpu");
    expect(vals(t)).toEqual([1, 1, 1]);
  });
});

describe("CUDA present", () => {
  test.if(present)("devices and their facts", () => {
    const caps = bn.deviceCapabilities("cuda") as bn.CudaCapabilities;
    console.log(`cuda: ${caps.name}, compute ${caps.computeCapability}, ${caps.multiprocessors} SMs, ${(caps.memory.total / 2 ** 30).toFixed(1)} GiB, driver ${caps.driverVersion}`);
    expect(caps.kind).toBe("cuda");
    expect(caps.multiprocessors).toBeGreaterThan(0);
    expect(caps.memory.free).toBeLessThanOrEqual(caps.memory.total);
    expect(bn.devices()[1]).toBe("cuda");
  });

  test.if(present)("round trips of every dtype, strided views and reversed slices", () => {
    for (const dtype of bn.DTYPES) {
      using x = bn.arange(0, 24, 1, { dtype: dtype === "bool" ? "i32" : dtype }).reshape([2, 3, 4]);
      using h = dtype === "bool" ? x.astype("bool") : x.clone();
      using g = h.to("cuda");
      expect(g.device).toBe("cuda");
      expect(g.dtype).toBe(dtype);
      using back = g.toCpu();
      expect(back.device).toBe("cpu");
      expect(vals(back)).toEqual(vals(h));
      expect(vals(g)).toEqual(vals(h)); // reading values copies to the host
    }
    using a = bn.randn([5, 7], { seed: 1 });
    using ga = a.to("cuda");
    using gt = ga.T; // a strided view on the GPU
    using tb = gt.toCpu();
    expect(tb.toArray()).toEqual(a.T.toArray());
    using rs = ga.slice([[null, null, -2], [6, 0, -3]]);
    using rb = rs.toCpu();
    using want = a.slice([[null, null, -2], [6, 0, -3]]);
    expect(rb.toArray()).toEqual(want.toArray());
    using gs = a.T.to("cuda"); // a strided CPU view goes over contiguous
    expect(gs.isContiguous()).toBe(true);
    expect(gs.toArray()).toEqual(a.T.toArray());
    expect(String(ga)).toContain("device=cuda");
  });

  test.if(present)("large transfers (pinned staging, chunks of 8 MiB): every byte arrives, back to back", () => {
    // 22 MB, not a multiple of the chunk; several in flight before any is read back.
    const n = 5_500_001;
    const hosts = [0, 1, 2].map((k) => bn.arange(k, n + k, 1, { dtype: "f32" }));
    const gpus = hosts.map((h) => h.to("cuda")); // host→device copies return once queued
    for (const h of hosts) (h.data as Float32Array).fill(-1); // the sources may change at once
    gpus.forEach((g, k) => {
      using back = g.toCpu();
      const v = back.data as Float32Array;
      expect(v.length).toBe(n);
      let bad = 0;
      for (let i = 0; i < n; i++) if (v[i] !== i + k) bad++;
      expect(bad).toBe(0);
    });
    // A large strided view (packed on the host first) and a large i8 tensor.
    using big = bn.arange(0, 4 * 1_200_000, 1, { dtype: "f32" }).reshape([1_200_000, 4]);
    using col = big.slice([null, 2]);
    using gcol = col.to("cuda");
    using bcol = gcol.toCpu();
    const cv = bcol.data as Float32Array;
    expect(cv[0]).toBe(2);
    expect(cv[1_199_999]).toBe(4 * 1_199_999 + 2);
    using bytes = bn.full([9_000_000], -7, { dtype: "i8" });
    using gb = bytes.to("cuda");
    using s = bn.sum(gb.astype("i32"));
    expect(s.item()).toBe(-63_000_000);
    for (const t of [...hosts, ...gpus]) t.dispose();
  });

  test.if(present)("creation on the GPU, the pool's counters, trim and the limit", () => {
    const s0 = bn.memory.stats("cuda");
    {
      using z = bn.zeros([1000], { device: "cuda" });
      using o = bn.ones([3], { device: "cuda", dtype: "bf16" });
      using r = bn.randn([64], { seed: 5, device: "cuda" });
      using rc = bn.randn([64], { seed: 5 });
      expect(vals(z).every((v) => v === 0)).toBe(true);
      expect(vals(o)).toEqual([1, 1, 1]);
      expect(vals(r)).toEqual(vals(rc));
      const s1 = bn.memory.stats("cuda");
      expect(s1.bytesInUse).toBeGreaterThanOrEqual(s0.bytesInUse + 4000 + 6 + 256);
      expect(s1.liveTensors).toBe(s0.liveTensors + 3);
      expect(bn.memory.liveAllocations("cuda").length).toBeGreaterThanOrEqual(3);
    }
    expect(bn.memory.stats("cuda").bytesInUse).toBe(s0.bytesInUse);
    bn.memory.trim("cuda");
    expect(bn.memory.stats("cuda").bytesReserved).toBeLessThanOrEqual(bn.memory.stats("cuda").bytesInUse + 64 * 2 ** 20);
    bn.memory.setLimit(2 ** 20, "cuda");
    try {
      expect(() => bn.empty([2 ** 20], { device: "cuda" })).toThrow(bn.OutOfMemoryError);
      using small = bn.ones([16], { device: "cuda" });
      expect(vals(small)[0]).toBe(1);
    } finally {
      bn.memory.setLimit(0, "cuda");
    }
  });

  test.if(present)("running out of device memory is an OutOfMemoryError; the pool stays usable", () => {
    const total = (bn.deviceCapabilities("cuda") as bn.CudaCapabilities).memory.total;
    expect(() => bn.empty([Math.ceil((2 * total) / 4)], { device: "cuda" })).toThrow(bn.OutOfMemoryError);
    using t = bn.ones([8], { device: "cuda" });
    expect(vals(t)).toEqual(new Array(8).fill(1));
  });

  test.if(present)("elementwise ops, where, astype and contiguous run on the GPU and match the CPU", () => {
    using a = bn.randn([3, 4, 5], { seed: 1 });
    using b = bn.randn([4, 1], { seed: 2 });
    using ga = a.to("cuda");
    using gb = b.to("cuda");
    const close = (g: bn.Tensor, c: bn.Tensor, tol: number) => {
      expect(g.device).toBe("cuda");
      expect(g.dtype).toBe(c.dtype);
      expect(g.shape).toEqual(c.shape);
      const x = vals(g);
      vals(c).forEach((v, i) => {
        if (Number.isNaN(v)) expect(Number.isNaN(x[i]!)).toBe(true);
        else expect(Math.abs(x[i]! - v)).toBeLessThanOrEqual(tol * (1 + Math.abs(v)));
      });
    };
    // IEEE-exact arithmetic and comparisons: the same bits as the CPU.
    for (const f of [bn.add, bn.sub, bn.mul, bn.div, bn.maximum, bn.minimum, bn.lt, bn.eq, bn.ge]) {
      using c = f(a, b);
      using g = f(ga, gb);
      close(g, c, 0);
    }
    using pc = bn.pow(bn.abs(a), b);
    using gab = bn.abs(ga);
    using pg = bn.pow(gab, gb);
    close(pg, pc, 2e-6);
    const un: ((t: bn.Tensor) => bn.Tensor)[] = [bn.exp, bn.tanh, bn.sigmoid, bn.silu, bn.erf, bn.sin, bn.cos, (t) => bn.gelu(t), (t) => bn.gelu(t, { approximate: "tanh" }), bn.relu, bn.floor, bn.round, bn.sign, bn.neg, (t) => t.clip(-0.5, 0.25), (t) => bn.activationGrad("gelu", t)];
    for (const f of un) {
      using c = f(a);
      using g = f(ga);
      close(g, c, 4e-6);
    }
    using sc = ga.mul(2).add(1);
    using sref = a.mul(2).add(1);
    close(sc, sref, 0);
    // Integer wrap-around, f16/bf16 rounding and saturating casts as on the CPU.
    using big = bn.tensor([2147483647, -5, 7], { dtype: "i32" });
    using gbig = big.to("cuda");
    using w1 = bn.add(gbig, 1);
    expect(w1.toArray()).toEqual([-2147483648, -4, 8]);
    for (const d of ["f16", "bf16"] as const) {
      using h = a.astype(d);
      using gh = ga.astype(d);
      close(gh, h, 0);
      using s1 = bn.add(h, h.T.contiguous().T);
      using s2 = bn.add(gh, gh.T.contiguous().T);
      close(s2, s1, 0);
    }
    using big3 = bn.tensor([300.7, -1e9, Number.NaN, -2.9]);
    using gi = big3.to("cuda").astype("i8");
    expect(gi.toArray()).toEqual([127, -128, 0, -2]);
    using cond = bn.gt(a, 0);
    using gcond = cond.to("cuda");
    using wc = bn.where(cond, a, b);
    using wg = bn.where(gcond, ga, gb);
    close(wg, wc, 0);
    using tc = ga.transpose(0, 2).contiguous();
    expect(tc.isContiguous()).toBe(true);
    expect(tc.toArray()).toEqual(a.transpose(0, 2).toArray());
    using acc = bn.zeros([4, 5], { device: "cuda" });
    bn.add_(acc, gb);
    bn.mul_(acc, 2);
    using accRef = bn.mul(bn.add(bn.zeros([4, 5]), b), 2);
    close(acc, accRef, 0);
  });

  test.if(present)("reductions run on the GPU and match the CPU", () => {
    using a = bn.randn([3, 4, 5], { seed: 3 });
    using ga = a.to("cuda");
    const fns: [string, (t: bn.Tensor, o: bn.ReduceOptions) => bn.Tensor][] = [
      ["sum", bn.sum], ["mean", bn.mean], ["prod", bn.prod], ["min", bn.min], ["max", bn.max],
      ["var", bn.var], ["std", (t, o) => bn.std(t, { ...o, ddof: 1 })], ["logsumexp", bn.logsumexp],
    ];
    const opts: bn.ReduceOptions[] = [{}, { axis: 1 }, { axis: [0, 2] }, { axis: -1, keepdims: true }];
    for (const [name, f] of fns) {
      for (const o of opts) {
        using c = f(a, o);
        using g = f(ga, o);
        expect(g.device).toBe("cuda");
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
    using wrap = bn.tensor([2147483647, 1, 5], { dtype: "i32" }).to("cuda");
    using ws = wrap.sum();
    expect(ws.item()).toBe(-2147483643);
    using withNaN = bn.tensor([1, Number.NaN, 3, Number.NaN]).to("cuda");
    using mx = withNaN.max();
    using am = withNaN.argmax();
    expect(Number.isNaN(mx.item() as number)).toBe(true);
    expect(am.item()).toBe(1);
    using big = bn.ones([1 << 20], { device: "cuda" });
    using bs = big.sum();
    expect(bs.item()).toBe(1 << 20);
  });

  test.if(present)("softmax, logSoftmax, layerNorm and rmsNorm run on the GPU and match the CPU", () => {
    using a = bn.randn([4, 6, 300], { seed: 4, std: 3 });
    using ga = a.to("cuda");
    using w = bn.randn([300], { seed: 5 });
    using b = bn.randn([300], { seed: 6 });
    using gw = w.to("cuda");
    using gb = b.to("cuda");
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
    for (const [name, c, g] of cases) {
      expect(g.device).toBe("cuda");
      const gv = vals(g);
      vals(c).forEach((v, i) => {
        if (Math.abs(gv[i]! - v) > 5e-6 * (1 + Math.abs(v))) throw new Error(`${name} [${i}]: ${gv[i]} vs ${v}`);
      });
      c.dispose();
      g.dispose();
    }
    using inf = bn.tensor([[1, Number.POSITIVE_INFINITY], [1, 2], [Number.NaN, 0], [Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY]]).to("cuda");
    using sm = bn.softmax(inf);
    const r = sm.toArray() as number[][];
    expect(r[0]!.every(Number.isNaN)).toBe(true); // +inf
    expect(r[1]![0]! + r[1]![1]!).toBeCloseTo(1, 6);
    expect(r[2]!.every(Number.isNaN)).toBe(true); // NaN
    expect(r[3]!.every(Number.isNaN)).toBe(true); // all -inf
    // Rows longer than the kernel keeps in registers (8192) take the streaming path.
    using long = bn.randn([3, 10000], { seed: 9, std: 4 });
    using gl = long.to("cuda");
    for (const [want, got] of [[bn.softmax(long), bn.softmax(gl)], [bn.logSoftmax(long), bn.logSoftmax(gl)]] as const) {
      const gv = vals(got);
      vals(want).forEach((v, i) => {
        if (Math.abs(gv[i]! - v) > 5e-6 * (1 + Math.abs(v))) throw new Error(`long row [${i}]: ${gv[i]} vs ${v}`);
      });
      want.dispose();
      got.dispose();
    }
  });

  test.if(present)("ops without GPU kernels refuse GPU tensors; mixing devices is an error", () => {
    using c = bn.ones([4]);
    using g = bn.ones([4], { device: "cuda" });
    using g2 = bn.eye(3, undefined, { device: "cuda" });
    expect(() => bn.linalg.inv(g2)).toThrow(bn.DeviceError);
    expect(() => bn.linalg.inv(g2)).toThrow(/runs on the CPU only/);
    expect(() => bn.cumsum(g, 0)).toThrow(bn.DeviceError);
    expect(() => bn.add(c, g)).toThrow(bn.DeviceError);
    expect(() => g.data).toThrow(/not addressable from JS/);
  });

  test.if(present)("gradients flow back through to()", () => {
    using x = bn.tensor([1, 2, 3], { requiresGrad: true });
    using y = x.to("cuda");
    using z = y.toCpu();
    using s = bn.mul(z, z).sum();
    s.backward();
    expect(x.grad!.toArray()).toEqual([2, 4, 6]);
  });
});
