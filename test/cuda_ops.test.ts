// CUDA products: matmul through cuBLAS (f32, f16, bf16; transposed, strided, batched and 1-D
// operands), the ternary matmul kernels (zig/gpu/ternary.cu) against the CPU's, modules moved with
// `to("cuda")` (Linear, BitLinear, Sequential), and `autoSelectDevice`. The GPU part runs where a
// CUDA device is present (the H100 through the device tool) and says it was skipped elsewhere.
// The kernel sources are compiled with NVRTC wherever NVRTC is found (scripts/fetch-nvrtc.sh puts
// one in .cache/nvrtc for the test run), with or without a GPU.
import { describe, expect, test } from "bun:test";
import * as bn from "../src/index.ts";
import { MB, check, lastMessage, mb, sym } from "../src/native.ts";
import { tempDirs } from "./helpers.ts";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const tempDir = tempDirs();

const present = bn.devices().includes("cuda");
if (!present) console.log("cuda_ops tests: the GPU part is skipped here (no CUDA device)");

const vals = (t: bn.Tensor) => Array.from(t._toFloat64("test"));

/** max |a - b| over max(1, max |b|). */
function relErr(a: number[], b: number[]): number {
  let d = 0;
  let m = 1;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return d / m;
}

describe("CUDA kernel sources", () => {
  // sm_90 (Hopper) is compiled once here; the test adds sm_80 (Ampere).
  const st = sym.bn_cuda_compile_check(90);
  const size90 = mb[MB.out]!;
  const why = st === 0 ? "" : lastMessage();
  const nvrtc = st === 0 || !/was not found/.test(why);
  if (!nvrtc) console.log("cuda_ops tests: NVRTC not found, the kernel sources were not compiled here");
  test.if(nvrtc)(
    "compile with NVRTC for sm_90 and sm_80 (no device needed)",
    () => {
      if (st !== 0) throw new Error(`sm_90: ${why}`);
      expect(size90).toBeGreaterThan(10_000); // CUBIN bytes
      const s = sym.bn_cuda_compile_check(80);
      if (s !== 0) throw new Error(`sm_80: ${lastMessage()}`);
      expect(mb[MB.out]!).toBeGreaterThan(10_000);
    },
    60_000,
  );
});

describe("CUDA kernel cache", () => {
  test.if(present)("kernels are compiled once, then later processes load the CUBIN from the disk cache", () => {
    const dir = tempDir("bitnet-kcache-");
    const script = join(dir, "k.ts");
    writeFileSync(
      script,
      `import * as bn from ${JSON.stringify(join(import.meta.dir, "..", "src", "index.ts"))};
const t0 = performance.now();
using x = bn.ones([4], { device: "cuda" });
using y = bn.add(x, x);
const v = y.toArray();
console.log(JSON.stringify({ kernels: bn.deviceCapabilities("cuda").kernels, ms: performance.now() - t0, v }));`,
    );
    const run = () => {
      const r = Bun.spawnSync(["bun", script], { env: { ...process.env, BITNET_CACHE_DIR: dir } });
      if (r.exitCode !== 0) throw new Error(r.stderr.toString());
      return JSON.parse(r.stdout.toString().trim().split("\n").pop()!) as { kernels: string; ms: number; v: number[] };
    };
    const first = run();
    expect(first.kernels).toBe("compiled");
    expect(first.v).toEqual([2, 2, 2, 2]);
    const files = readdirSync(dir).filter((f) => /^kernels-[0-9a-f]{16}-sm\d+\.cubin$/.test(f));
    expect(files.length).toBe(1);
    const second = run();
    expect(second.kernels).toBe("cache");
    expect(second.v).toEqual([2, 2, 2, 2]);
    console.log(`kernel cache: first op ${first.ms.toFixed(0)} ms (NVRTC), ${second.ms.toFixed(0)} ms from the cache`);
    // A damaged file is compiled again and rewritten.
    writeFileSync(join(dir, files[0]!), "not a cubin");
    const third = run();
    expect(third.kernels).toBe("compiled");
    expect(third.v).toEqual([2, 2, 2, 2]);
    expect(run().kernels).toBe("cache");
    // BITNET_NO_KERNEL_CACHE turns it off.
    const off = Bun.spawnSync(["bun", script], { env: { ...process.env, BITNET_CACHE_DIR: dir, BITNET_NO_KERNEL_CACHE: "1" } });
    expect(JSON.parse(off.stdout.toString().trim().split("\n").pop()!).kernels).toBe("compiled");
    expect(existsSync(join(dir, files[0]!))).toBe(true);
  }, 120_000);
});

describe("CUDA products", () => {
  test.if(present)("autoSelectDevice prefers the GPU", () => {
    expect(bn.autoSelectDevice()).toBe("cuda");
  });

  test.if(present)("matmul (cuBLAS) matches the CPU: f32, views, batches, 1-D, dot, empty", () => {
    const cases: [number[], number[], (t: bn.Tensor) => bn.Tensor, (t: bn.Tensor) => bn.Tensor][] = [
      [[64, 48], [48, 80], (t) => t, (t) => t],
      [[33, 17], [29, 17], (t) => t, (t) => t.T], // w.T read in place (op T)
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
      using ga = a.to("cuda");
      using gb = b.to("cuda");
      using va = fa(a);
      using vb = fb(b);
      using gva = fa(ga);
      using gvb = fb(gb);
      using want = bn.matmul(va, vb);
      using got = bn.matmul(gva, gvb);
      expect(got.device).toBe("cuda");
      expect(got.shape).toEqual(want.shape);
      expect(got.dtype).toBe("f32");
      expect(relErr(vals(got), vals(want))).toBeLessThan(1e-5);
    }
    // N-D dot (independent batch axes).
    using x = bn.randn([2, 3, 5], { seed: 1 });
    using y = bn.randn([4, 5, 6], { seed: 2 });
    using gx = x.to("cuda");
    using gy = y.to("cuda");
    using dw = bn.dot(x, y);
    using dg = bn.dot(gx, gy);
    expect(dg.shape).toEqual([2, 3, 4, 6]);
    expect(relErr(vals(dg), vals(dw))).toBeLessThan(1e-5);
  });

  test.if(present)("f16 and bf16 products run on the tensor cores and are written in their dtype", () => {
    for (const [dtype, tol] of [["f16", 2e-3], ["bf16", 1.6e-2]] as const) {
      using a = bn.randn([96, 128], { seed: 3 }).astype(dtype);
      using b = bn.randn([128, 72], { seed: 4 }).astype(dtype);
      using ga = a.to("cuda");
      using gb = b.to("cuda");
      using got = bn.matmul(ga, gb.T.contiguous().T); // column-major second operand
      expect(got.dtype).toBe(dtype);
      using want = bn.matmul(a.astype("f32"), b.astype("f32")); // exact products of the rounded inputs
      expect(relErr(vals(got), vals(want))).toBeLessThan(tol);
    }
  });

  test.if(present)("integer products and mixed devices are refused on the GPU", () => {
    using gi = bn.ones([3, 3], { dtype: "i32", device: "cuda" });
    expect(() => bn.matmul(gi, gi)).toThrow(bn.DeviceError);
    expect(() => bn.matmul(gi, gi)).toThrow(/integer and bool products do not run on cuda/);
    using c = bn.ones([3, 3]);
    using g = bn.ones([3, 3], { device: "cuda" });
    expect(() => bn.matmul(c, g)).toThrow(/operands are on cpu and cuda/);
  });

  // Every kernel path on this device (zig/gpu/door.zig tq_path): automatic; no tensor cores (the
  // kernels of devices before sm_80); no one-launch GEMV.
  const TQ_PATHS = [
    [0, "automatic"],
    [1, "no tensor cores"],
    [2, "no one-launch GEMV"],
  ] as const;
  for (const [path, name] of TQ_PATHS) {
    test.if(present)(`ternaryMatmul on the GPU equals the CPU's (formats, scales, dtypes, token counts): ${name}`, () => {
      check(sym.bn_cuda_debug_tq_path(path), "test");
      try {
        ternaryCases();
      } finally {
        check(sym.bn_cuda_debug_tq_path(0), "test");
      }
    });
  }

  function ternaryCases() {
    const configs: { fmt: bn.TernaryFormat; g?: bn.TernaryGranularity; k: number; n: number; exact: boolean }[] = [
      { fmt: "i2", g: "tensor", k: 768, n: 70, exact: true },
      { fmt: "i2", g: "channel", k: 1000, n: 70, exact: true }, // rows padded to whole blocks
      { fmt: "i2", g: { group: 512 }, k: 1024, n: 70, exact: false },
      { fmt: "tq2_0", k: 768, n: 70, exact: false },
      // more rows than the SMs have tile slots (several tiles a block), k past 8192
      { fmt: "i2", g: "channel", k: 9000, n: 2100, exact: true },
    ];
    let seed = 40;
    for (const c of configs) {
      using w = bn.randn([c.n, c.k], { seed: seed++ });
      using q = bn.quant.ternary(w, { format: c.fmt, ...(c.g ? { granularity: c.g } : {}) });
      using gq = q.to("cuda");
      expect(gq.device).toBe("cuda");
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
          using gx = x.to("cuda");
          using got = bn.quant.ternaryMatmul(gx, gq);
          expect(got.device).toBe("cuda");
          const a = vals(got);
          const b = vals(want);
          if (c.exact) expect(a).toEqual(b);
          else {
            for (let i = 0; i < b.length; i++) {
              if (Number.isNaN(b[i]!)) expect(a[i]).toBeNaN();
              else expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(2e-6 * Math.max(1, Math.abs(b[i]!)) * 4);
            }
          }
        }
      }
    }
  }

  test.if(present)("ternaryMatmul: a wide layer, strided x, and the refusals", () => {
    using w = bn.randn([1024, 4096], { seed: 7 });
    using q = bn.quant.ternary(w, { granularity: "channel" });
    using gq = q.to("cuda");
    using x = bn.randn([16, 8192], { seed: 8 });
    using xs = x.slice([null, [null, null, 2]]); // every other column: copied contiguous first
    using gx = x.to("cuda");
    using gxs = gx.slice([null, [null, null, 2]]);
    using want = bn.quant.ternaryMatmul(xs, q);
    using got = bn.quant.ternaryMatmul(gxs, gq);
    expect(vals(got)).toEqual(vals(want));
    // Quantizing GPU weights packs on the host and returns GPU weights.
    using gw = w.to("cuda");
    using gq2 = bn.quant.ternary(gw, { granularity: "channel" });
    expect(gq2.device).toBe("cuda");
    using got2 = bn.quant.ternaryMatmul(gxs, gq2);
    expect(vals(got2)).toEqual(vals(want));
    using w1 = bn.randn([8, 256], { seed: 9 });
    using t1 = bn.quant.ternary(w1, { format: "tq1_0" });
    using g1 = t1.to("cuda");
    using gx1 = bn.ones([2, 256], { device: "cuda" });
    expect(() => bn.quant.ternaryMatmul(gx1, g1)).toThrow(/tq1_0 weights run on the CPU only/);
    expect(() => bn.quant.ternaryMatmul(xs, gq)).toThrow(bn.DeviceError);
    expect(() => g1.dequantize()).toThrow(bn.DeviceError);
  });

  test.if(present)("modules move with to('cuda'): Linear, BitLinear (packed kernel), Sequential", () => {
    const make = () =>
      new bn.nn.Sequential(
        new bn.nn.BitLinear(256, 128, { norm: "none", seed: 1 }),
        new bn.nn.Linear(128, 64, { seed: 2 }),
        new bn.nn.BitLinear(64, 32, { seed: 3 }), // RMS norm inside
      ).eval();
    using cpu = make();
    using gpu = make();
    const params = gpu.parameters();
    expect(gpu.to("cuda")).toBe(gpu);
    // The same parameter objects, now on the GPU.
    expect(gpu.parameters().every((p, i) => p === params[i])).toBe(true);
    for (const p of gpu.parameters()) expect(p.device).toBe("cuda");
    using x = bn.randn([5, 256], { seed: 4 });
    using gx = x.to("cuda");
    using want = cpu.forward(x);
    using got = gpu.forward(gx);
    expect(got.device).toBe("cuda");
    // rmsNorm's statistics are f64 on the GPU, f32 on the CPU: the int8 codes may differ by one step.
    expect(relErr(vals(got), vals(want))).toBeLessThan(2e-2);
    // Without a norm, the BitLinear kernel agrees exactly.
    const l0 = gpu.children()[0]![1] as InstanceType<typeof bn.nn.BitLinear>;
    const c0 = cpu.children()[0]![1] as InstanceType<typeof bn.nn.BitLinear>;
    using y0 = l0.forward(gx);
    using w0 = c0.forward(x);
    expect(vals(y0)).toEqual(vals(w0));
    // Back to the CPU: equal to the never-moved model.
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
    layer.to("cuda");
    expect(layer.quantized.device).toBe("cuda");
    using gx = x.to("cuda");
    using got = layer.forward(gx);
    expect(relErr(vals(got), vals(want))).toBeLessThan(1e-5);
  });
});
