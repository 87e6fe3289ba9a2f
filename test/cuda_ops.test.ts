// CUDA specifics: the kernel sources compiled by NVRTC, the on-disk kernel cache, `autoSelectDevice`,
// and the ternary matmul's other kernel paths (zig/gpu/ternary.cu) against the CPU's (the products
// themselves are in the conformance suite, test/gpu_suite.ts). The GPU part runs where a CUDA
// device is present (the H100 through the device tool) and says it was skipped elsewhere.
// The kernel sources are compiled with NVRTC wherever NVRTC is found (scripts/fetch-nvrtc.sh puts
// one in .cache/nvrtc for the test run), with or without a GPU.
import { describe, expect, test } from "bun:test";
import * as bn from "../src/index.ts";
import { MB, check, lastMessage, mb, sym } from "../src/native.ts";
import { tempDirs } from "./helpers.ts";
import { toleranceFor, ternaryCases } from "./gpu_suite.ts";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const tempDir = tempDirs();

const present = bn.devices().includes("cuda");
if (!present) console.log("cuda_ops tests: the GPU part is skipped here (no CUDA device)");

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

  // The other kernel paths on this device (zig/gpu/door.zig tq_path; the automatic choice runs in
  // the conformance suite): no tensor cores (the kernels of devices before sm_80); no one-launch
  // GEMV.
  const TQ_PATHS = [
    [1, "no tensor cores"],
    [2, "no one-launch GEMV"],
  ] as const;
  for (const [path, name] of TQ_PATHS) {
    test.if(present)(`ternaryMatmul on the GPU equals the CPU's (formats, scales, dtypes, token counts): ${name}`, () => {
      check(sym.bn_cuda_debug_tq_path(path), "test");
      try {
        ternaryCases("cuda", toleranceFor("cuda"));
      } finally {
        check(sym.bn_cuda_debug_tq_path(0), "test");
      }
    });
  }
});
