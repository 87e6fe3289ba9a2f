// bn.quant.ternary (the absmean rule), TernaryTensor, and bn.quant.ternaryMatmul against float64
// references written here from the definitions (Math.fround where the library rounds to f32).
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import * as bn from "../src/index.ts";
import { runnableLevels } from "./helpers.ts";

const f32 = Math.fround;
const LEVELS = runnableLevels();

function atEveryLevel(body: (level: string) => void): void {
  const caps = bn.deviceCapabilities();
  try {
    for (const l of LEVELS) {
      bn.setSimdLevel(l);
      body(l);
    }
  } finally {
    bn.setSimdLevel(caps.simdDetected);
  }
}

function rint(v: number): number {
  const r = Math.round(v);
  return Math.abs(v - Math.trunc(v)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const toF16 = (x: number) => {
  const a = new Float16Array(1);
  a[0] = x;
  return a[0]!;
};

/** Weights with a spread of magnitudes, seeded. */
function weights(shape: number[], seed: number): bn.Tensor {
  return bn.randn(shape, { seed });
}

/** float64 absmean scale of each group of `g` consecutive values of flat `w` (rows of k). */
function refScales(w: Float32Array, k: number, gran: "tensor" | "channel" | { group: number }): number[] {
  const g = gran === "tensor" ? w.length : gran === "channel" ? k : gran.group;
  const out: number[] = [];
  for (let i = 0; i < w.length; i += g) {
    let s = 0;
    for (let j = i; j < i + g; j++) s += Math.abs(w[j]!);
    out.push(s / g);
  }
  return out;
}

describe("quant.ternary", () => {
  const grans: ("tensor" | "channel" | { group: number })[] = ["tensor", "channel", { group: 256 }, { group: 512 }];
  for (const format of ["i2", "tq2_0", "tq1_0"] as const) {
    for (const gran of grans) {
      test(`absmean rule: ${format}, ${JSON.stringify(gran)}`, () => {
        const shape = [5, 1024];
        const w = weights(shape, 11);
        const wd = w.data as Float32Array;
        const before = Float32Array.from(wd);
        using t = bn.quant.ternary(w, { format, granularity: gran });
        expect(t.format).toBe(format);
        expect(t.shape).toEqual(shape);
        const ref = refScales(wd, 1024, gran);
        // The library's scales (f32 means; tq: one f16 a block).
        const sc = Array.from(t.scale.data as Float32Array);
        const perBlock = format !== "i2";
        const groupLen = gran === "tensor" ? 5 * 1024 : gran === "channel" ? 1024 : gran.group;
        for (let i = 0; i < sc.length; i++) {
          const r = ref[perBlock ? Math.floor((i * 256) / groupLen) : i]!;
          const want = perBlock ? toF16(r) : r;
          expect(Math.abs(sc[i]! - want)).toBeLessThanOrEqual(perBlock ? Math.abs(want) * 2 ** -10 : Math.abs(want) * 1e-6);
        }
        // Values: clamp(round(w / (scale + eps))) with the f32 scale of the group.
        const q = t.unpack();
        expect(q.dtype).toBe("i8");
        expect(q.shape).toEqual(shape);
        const qd = q.data as Int8Array;
        let checked = 0;
        for (let i = 0; i < wd.length; i++) {
          const v = wd[i]! / (ref[Math.floor(i / groupLen)]! + 1e-5);
          if (Math.abs(Math.abs(v) - 0.5) < 1e-4) continue; // too close to the rounding edge to call
          expect(qd[i]).toBe(Math.max(-1, Math.min(1, rint(v))) + 0);
          checked++;
        }
        expect(checked).toBeGreaterThan(wd.length * 0.99);
        // Dequantized = value · scale (per block for tq).
        const dq = t.dequantize().data as Float32Array;
        for (let i = 0; i < wd.length; i++) {
          const s = perBlock ? sc[Math.floor(i / 256)]! : sc[Math.floor(i / groupLen)]!;
          expect(dq[i]).toBe(f32(qd[i]! * s));
        }
        expect(Array.from(wd)).toEqual(Array.from(before));
        q.dispose();
      });
    }
  }

  test("i2 pads rows that are not whole blocks, and takes any leading shape", () => {
    for (const shape of [[300], [3, 100], [2, 3, 513]]) {
      const w = weights(shape, shape.length);
      using t = bn.quant.ternary(w, { granularity: "channel" });
      expect(t.shape).toEqual(shape);
      expect(t.scale.shape).toEqual(shape.slice(0, -1));
      const k = shape[shape.length - 1]!;
      expect(t.packed.shape).toEqual([shape.slice(0, -1).reduce((a, b) => a * b, 1), Math.ceil(k / 256) * 64]);
      const q = t.unpack();
      const back = t.dequantize();
      expect(q.shape).toEqual(shape);
      const qd = q.data as Int8Array;
      const sd = t.scale.data as Float32Array;
      const bd = back.data as Float32Array;
      for (let i = 0; i < qd.length; i++) expect(bd[i]).toBe(f32(qd[i]! * sd[Math.floor(i / k)]!));
      q.dispose();
      back.dispose();
    }
  });

  test("storage: i2 and tq2_0 ≤ 2.06 bits a weight, tq1_0 ≤ 1.69", () => {
    const w = weights([64, 4096], 3);
    for (const [format, limit] of [["i2", 2.06], ["tq2_0", 2.0625], ["tq1_0", 1.6875]] as const) {
      using t = bn.quant.ternary(w, { format, granularity: "channel" });
      expect(t.bitsPerWeight).toBeLessThanOrEqual(limit);
      expect(t.bytes).toBe(format === "i2" ? 64 * 1024 + 64 * 4 : (64 * 4096 * (format === "tq2_0" ? 66 : 54)) / 256);
    }
  });

  test("all-zero weights: scale 0, values 0, no NaN", () => {
    for (const format of ["i2", "tq2_0", "tq1_0"] as const) {
      using t = bn.quant.ternary(bn.zeros([2, 256]), { format, granularity: "channel" });
      expect(Array.from(t.scale.data as Float32Array).every((s) => s === 0)).toBe(true);
      expect(Array.from(t.unpack().data as Int8Array).every((v) => v === 0)).toBe(true);
      expect(Array.from(t.dequantize().data as Float32Array).every((v) => v === 0)).toBe(true);
      using y = bn.quant.ternaryMatmul(bn.ones([3, 256]), t);
      expect(Array.from(y.data as Float32Array).every((v) => v === 0)).toBe(true);
    }
  });

  test("NaN and Inf weights: the group's scale is NaN/Inf, its values 0, other groups untouched", () => {
    const w = weights([2, 256], 5);
    const d = w.data as Float32Array;
    d[3] = NaN;
    d[256 + 7] = Infinity;
    using t = bn.quant.ternary(w, { granularity: "channel" });
    const s = t.scale.data as Float32Array;
    expect(Number.isNaN(s[0])).toBe(true);
    expect(s[1]).toBe(Infinity);
    const q = t.unpack().data as Int8Array;
    expect(Array.from(q).every((v) => v === 0)).toBe(true);
    using y = bn.quant.ternaryMatmul(bn.ones([1, 256]), t);
    expect(Number.isNaN((y.data as Float32Array)[0])).toBe(true);
    const w2 = weights([2, 256], 6);
    (w2.data as Float32Array)[5] = NaN;
    using t2 = bn.quant.ternary(w2, { granularity: "channel" });
    expect(Number.isFinite((t2.scale.data as Float32Array)[1])).toBe(true);
    expect(Array.from((t2.unpack().data as Int8Array).subarray(256)).some((v) => v !== 0)).toBe(true);
  });

  test("f16 and bf16 weights quantize as their exact f32 values", () => {
    const w = weights([3, 512], 8);
    for (const dt of ["f16", "bf16"] as const) {
      const wh = w.astype(dt);
      using a = bn.quant.ternary(wh, { granularity: "channel" });
      using b = bn.quant.ternary(wh.astype("f32"), { granularity: "channel" });
      expect(Array.from(a.unpack().data as Int8Array)).toEqual(Array.from(b.unpack().data as Int8Array));
      expect(Array.from(a.scale.data as Float32Array)).toEqual(Array.from(b.scale.data as Float32Array));
      wh.dispose();
    }
  });

  test("toFormat keeps the values; tq stores scales in f16", () => {
    const w = weights([4, 768], 9);
    using i2 = bn.quant.ternary(w, { granularity: { group: 256 } });
    using tq = i2.toFormat("tq2_0");
    using tq1 = tq.toFormat("tq1_0");
    using back = tq1.toFormat("i2");
    const v = Array.from(i2.unpack().data as Int8Array);
    expect(Array.from(tq.unpack().data as Int8Array)).toEqual(v);
    expect(Array.from(tq1.unpack().data as Int8Array)).toEqual(v);
    expect(Array.from(back.unpack().data as Int8Array)).toEqual(v);
    expect(back.granularity).toBe("group");
    expect(Array.from(tq.scale.data as Float32Array)).toEqual(Array.from(i2.scale.data as Float32Array).map(toF16));
    // tq bytes are exactly packBlocks' (ggml's layout, tested against ggml elsewhere)
    using direct = bn.quant.ternary(w, { granularity: { group: 256 }, format: "tq2_0" });
    expect(Array.from(direct.packed.data as Uint8Array)).toEqual(Array.from(tq.packed.data as Uint8Array));
  });

  test("bad input: typed errors naming the op", () => {
    const w = weights([4, 300], 1);
    expect(() => bn.quant.ternary(w, { format: "tq2_0" })).toThrow(bn.ShapeError);
    expect(() => bn.quant.ternary(w, { format: "tq2_0" })).toThrow(/\[4, 300\]/);
    expect(() => bn.quant.ternary(weights([4, 512], 1), { granularity: { group: 100 } })).toThrow(bn.ShapeError);
    expect(() => bn.quant.ternary(weights([4, 512], 1), { granularity: { group: 1024 } })).toThrow(bn.ShapeError);
    expect(() => bn.quant.ternary(weights([4, 512], 1), { granularity: { group: -256 } })).toThrow(bn.ValueError);
    expect(() => bn.quant.ternary(w, { format: "q4_0" as never })).toThrow(bn.ValueError);
    expect(() => bn.quant.ternary(w, { granularity: "row" as never })).toThrow(bn.ValueError);
    expect(() => bn.quant.ternary(w, { scale: 1 } as never)).toThrow(bn.ValueError);
    expect(() => bn.quant.ternary(bn.ones([4, 4], { dtype: "i32" }))).toThrow(bn.DTypeError);
    expect(() => bn.quant.ternary(bn.tensor(1))).toThrow(bn.ShapeError);
    expect(() => bn.quant.ternary([1, 2] as never)).toThrow(bn.DTypeError);
    const t = bn.quant.ternary(w);
    t.dispose();
    t.dispose();
    expect(() => t.unpack()).toThrow(bn.DisposedTensorError);
    expect(() => t.scale).toThrow(bn.DisposedTensorError);
    expect(String(t)).toContain("disposed");
  });
});

/** The definition of ternaryMatmul, in float64 with f32 rounding where the library rounds. */
function refTernaryMatmul(x: bn.Tensor, w: bn.TernaryTensor): Float32Array {
  const [n, k] = w.shape as [number, number];
  const xf = x.astype("f32");
  const xd = xf.contiguous().data as Float32Array;
  xf.dispose();
  const m = xd.length / k;
  const q = w.unpack();
  const t = Float64Array.from(q.data as Int8Array);
  q.dispose();
  const sc = w.scale.data as Float32Array;
  const seg = w.granularity === "tensor" || w.granularity === "channel" ? Math.ceil(k / 256) * 256 : w.group!;
  const out = new Float32Array(m * n);
  const qx = new Float64Array(k);
  for (let ti = 0; ti < m; ti++) {
    let mx = 0;
    let nan = false;
    for (let i = 0; i < k; i++) {
      const v = xd[ti * k + i]!;
      if (Number.isNaN(v)) nan = true;
      else mx = Math.max(mx, Math.abs(v));
    }
    const s = nan ? NaN : f32(127 / mx);
    for (let i = 0; i < k; i++) {
      const v = f32(xd[ti * k + i]! * s);
      qx[i] = nan || mx === 0 || Number.isNaN(v) ? 0 : rint(Math.max(-127, Math.min(127, v)));
    }
    for (let r = 0; r < n; r++) {
      let acc = 0;
      for (let s0 = 0, si = 0; s0 < k; s0 += seg, si++) {
        let isum = 0;
        for (let i = s0; i < Math.min(s0 + seg, k); i++) isum += qx[i]! * t[r * k + i]!;
        const scale = w.granularity === "tensor" ? sc[0]! : w.granularity === "channel" ? sc[r]! : sc[r * Math.ceil(k / seg) + si]!;
        acc = f32(acc + f32(f32(isum) * scale));
      }
      out[ti * n + r] = f32(acc / s);
    }
  }
  return out;
}

function sameBits(got: Float32Array, want: Float32Array, what: string): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < got.length; i++) {
    if (!(Object.is(got[i], want[i]) || (Number.isNaN(got[i]) && Number.isNaN(want[i])) || got[i] === want[i])) {
      throw new Error(`${what}: element ${i}: got ${got[i]}, want ${want[i]}`);
    }
  }
}

describe("quant.ternaryMatmul", () => {
  test("bit-exact against the definition: formats, granularities, token counts, levels, both multiply-add paths", () => {
    const specs: [("i2" | "tq2_0" | "tq1_0"), ("tensor" | "channel" | { group: number }), number, number][] = [
      ["i2", "tensor", 7, 300],
      ["i2", "channel", 13, 512],
      ["i2", { group: 256 }, 9, 768],
      ["tq2_0", "channel", 6, 512],
      ["tq1_0", "tensor", 5, 256],
    ];
    for (const [format, gran, n, k] of specs) {
      using w = bn.quant.ternary(weights([n, k], n + k), { format, granularity: gran });
      for (const m of [1, 2, 5, 9]) {
        const x = bn.randn([m, k], { seed: m * 31 + k });
        const want = refTernaryMatmul(x, w);
        atEveryLevel((level) => {
          for (const fusedDot of [true, false]) {
            using y = bn.quant.ternaryMatmul(x, w, { fusedDot });
            expect(y.shape).toEqual([m, n]);
            expect(y.dtype).toBe("f32");
            sameBits(y.data as Float32Array, want, `${format} ${JSON.stringify(gran)} m=${m} ${level} fused=${fusedDot}`);
          }
        });
        x.dispose();
      }
    }
  });

  test("property: random shapes and values agree with the definition", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 600 }), fc.integer({ min: 0, max: 1e6 }), (m, n, k, seed) => {
        using w = bn.quant.ternary(bn.randn([n, k], { seed }), { granularity: seed % 2 ? "channel" : "tensor" });
        using x = bn.randn([m, k], { seed: seed + 1 });
        using y = bn.quant.ternaryMatmul(x, w);
        sameBits(y.data as Float32Array, refTernaryMatmul(x, w), `m=${m} n=${n} k=${k}`);
      }),
      { numRuns: 40 },
    );
  });

  test("any leading shape, strided and f16/bf16 activations", () => {
    using w = bn.quant.ternary(weights([6, 256], 2), { granularity: "channel" });
    using x3 = bn.randn([2, 3, 256], { seed: 4 });
    using y3 = bn.quant.ternaryMatmul(x3, w);
    expect(y3.shape).toEqual([2, 3, 6]);
    sameBits(y3.data as Float32Array, refTernaryMatmul(x3, w), "3-D");
    using x1 = bn.randn([256], { seed: 5 });
    using y1 = bn.quant.ternaryMatmul(x1, w);
    expect(y1.shape).toEqual([6]);
    sameBits(y1.data as Float32Array, refTernaryMatmul(x1, w), "1-D");
    using xt = bn.randn([256, 4], { seed: 6 });
    const view = xt.T; // rows not contiguous along K
    using yt = bn.quant.ternaryMatmul(view, w);
    sameBits(yt.data as Float32Array, refTernaryMatmul(view, w), "transposed view");
    using wide = bn.randn([3, 512], { seed: 7 });
    const half = wide.slice([null, [0, 256]]); // contiguous rows, row stride 512
    using yh = bn.quant.ternaryMatmul(half, w);
    sameBits(yh.data as Float32Array, refTernaryMatmul(half, w), "row-strided view");
    for (const dt of ["f16", "bf16"] as const) {
      using xh = x3.astype(dt);
      using yh2 = bn.quant.ternaryMatmul(xh, w);
      sameBits(yh2.data as Float32Array, refTernaryMatmul(xh, w), dt);
    }
    view.dispose();
    half.dispose();
  });

  test("NaN, Inf and all-zero tokens", () => {
    using w = bn.quant.ternary(weights([4, 256], 3), { granularity: "channel" });
    using x = bn.randn([3, 256], { seed: 9 });
    const d = x.data as Float32Array;
    d[5] = NaN;
    d.fill(0, 256, 512);
    d[600] = -Infinity;
    using y = bn.quant.ternaryMatmul(x, w);
    const yd = y.data as Float32Array;
    expect(Array.from(yd.subarray(0, 4)).every(Number.isNaN)).toBe(true);
    expect(Array.from(yd.subarray(4, 8))).toEqual([0, 0, 0, 0]);
    expect(Array.from(yd.subarray(8, 12)).every(Number.isNaN)).toBe(true);
  });

  test("approximates the float product (quantization error only)", () => {
    using wf = weights([64, 1024], 12);
    using w = bn.quant.ternary(wf, { granularity: "channel" });
    using x = bn.randn([4, 1024], { seed: 13 });
    using deq = w.dequantize();
    using ref = bn.matmul(x, deq.T);
    using y = bn.quant.ternaryMatmul(x, w);
    const r = ref.data as Float32Array;
    const g = y.data as Float32Array;
    let err = 0;
    let norm = 0;
    for (let i = 0; i < r.length; i++) {
      err += (r[i]! - g[i]!) ** 2;
      norm += r[i]! ** 2;
    }
    expect(Math.sqrt(err / norm)).toBeLessThan(0.02); // int8 activations: ~0.4% per element
  });

  test("bad input: typed errors naming shapes and dtypes; no leaks", () => {
    const live0 = bn.memory.stats().liveTensors;
    {
      using wsrc = weights([4, 256], 1);
      using w = bn.quant.ternary(wsrc);
      using x = bn.randn([2, 128]);
      expect(() => bn.quant.ternaryMatmul(x, w)).toThrow(bn.ShapeError);
      expect(() => bn.quant.ternaryMatmul(x, w)).toThrow(/\[2, 128\].*\[4, 256\]/);
      using xi = bn.ones([2, 256], { dtype: "i32" });
      expect(() => bn.quant.ternaryMatmul(xi, w)).toThrow(bn.DTypeError);
      using wf = bn.randn([4, 256]);
      expect(() => bn.quant.ternaryMatmul(x, wf as never)).toThrow(bn.DTypeError);
      using w3src = weights([2, 2, 256], 1);
      using w3 = bn.quant.ternary(w3src);
      using x2 = bn.randn([1, 256]);
      expect(() => bn.quant.ternaryMatmul(x2, w3)).toThrow(bn.ShapeError);
      using z = bn.zeros([0, 256]);
      using e = bn.quant.ternaryMatmul(z, w);
      expect(e.shape).toEqual([0, 4]);
    }
    expect(bn.memory.stats().liveTensors).toBe(live0);
  });
});

test("no leaks across quantize, unpack, dequantize, toFormat and matmul", () => {
  const before = bn.memory.stats();
  for (const format of ["i2", "tq2_0", "tq1_0"] as const) {
    for (const granularity of ["tensor", "channel", { group: 256 }] as const) {
      const w = weights([3, 512], 1);
      const t = bn.quant.ternary(w, { format, granularity });
      t.unpack().dispose();
      t.dequantize("bf16").dispose();
      void t.scale;
      t.toFormat(format === "i2" ? "tq1_0" : "i2").dispose();
      const x = bn.randn([2, 512]);
      bn.quant.ternaryMatmul(x, t).dispose();
      x.dispose();
      t.dispose();
      w.dispose();
    }
  }
  const after = bn.memory.stats();
  expect(after.liveTensors).toBe(before.liveTensors);
  expect(after.bytesInUse).toBe(before.bytesInUse);
});

describe("fakeTernary (the values quantization-aware training multiplies)", () => {
  test("equals ternary(w).dequantize() in every format and granularity (zeros may be -0)", async () => {
    const { fakeTernary } = await import("../src/quant/ternary.ts");
    using w = bn.randn([6, 512], { seed: 21 });
    using wh = bn.randn([3, 256], { seed: 22, dtype: "bf16" });
    const cases: [bn.Tensor, bn.TernaryOptions][] = [
      [w, {}],
      [w, { granularity: "channel" }],
      [w, { granularity: { group: 256 } }],
      [w, { format: "tq2_0" }],
      [w, { format: "tq1_0", granularity: "channel" }],
      [w, { format: "tq2_0", granularity: { group: 512 } }],
      [wh, { granularity: "channel" }],
    ];
    for (const [x, o] of cases) {
      using q = bn.quant.ternary(x, o);
      using a = q.dequantize();
      using b = fakeTernary(x, o);
      expect(b.dtype).toBe("f32");
      expect(Array.from(b._toFloat64("t"), (v) => v + 0)).toEqual(Array.from(a._toFloat64("t")));
    }
  });
});
