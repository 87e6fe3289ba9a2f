// The Metal backend (metal/shim.m through zig/gpu/metal.zig): found at run time, never required.
// Everywhere: the shim cross-compiles for both macOS architectures with the C ABI the engine opens,
// and the absence path (not listed, typed errors that say why, nothing at import). Where a Metal
// device is present: the device and its facts, large transfers, queued work finishing before host
// reads, MPS products, and the GPU conformance suite (test/gpu_suite.ts) on "metal". That is a Mac
// with the shim (the macOS CI workflow, .github/workflows/macos.yml), or, on Linux, the shim's CPU
// emulator (metal/emu.cpp: `bun run test` runs this file a second time with BITNET_METAL_SHIM
// naming it), which runs the engine's whole Metal path and the kernels of metal/kernels.metal.
import { describe, expect, test } from "bun:test";
import * as bn from "../src/index.ts";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { tempDirs } from "./helpers.ts";
import { gpuConformance, relErr } from "./gpu_suite.ts";

const present = bn.devices().includes("metal");
if (!present) console.log(`metal tests: the GPU part is skipped here (no Metal device: ${process.platform === "darwin" ? "the shim did not load" : "not macOS"}); the shim build and the absence path run`);

const root = join(import.meta.dir, "..");
const tempDir = tempDirs();
const vals = (t: bn.Tensor) => Array.from(t._toFloat64("test"));

// The shim build needs Zig (scripts/setup.sh installs it); a machine that only runs the tests
// (the GPU machine, with Bun and the built library carried over) says so and skips that test.
const zig = Bun.spawnSync(["python3", "-m", "ziglang", "version"], { stderr: "pipe" }).exitCode === 0;
if (!zig) console.log("metal tests: no Zig here (python3 -m ziglang): the shim's cross-compilation is skipped");

describe("Metal shim", () => {
  test.if(zig)("cross-compiles for arm64 and x86_64 macOS with the C ABI of metal/bn_metal.h", () => {
    const out = tempDir("bitnet-shim-");
    const r = Bun.spawnSync(["python3", "-m", "ziglang", "build", "metal-shim", "-p", out], { cwd: root, stderr: "pipe" });
    expect(r.stderr.toString()).toBe("");
    expect(r.exitCode).toBe(0);
    const header = readFileSync(join(root, "metal/bn_metal.h"), "utf8");
    const abi = [...header.matchAll(/\b(bn_mtl_\w+)\(/g)].map((m) => m[1]!);
    expect(abi.length).toBeGreaterThanOrEqual(7);
    for (const [dir, cpu] of [["darwin-arm64", 0x0100000c], ["darwin-x64", 0x01000007]] as const) {
      const file = join(out, "metal", dir, "libbitnet_metal.dylib");
      expect(existsSync(file)).toBe(true);
      const bytes = readFileSync(file);
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      expect(dv.getUint32(0, true)).toBe(0xfeedfacf); // MH_MAGIC_64
      expect(dv.getUint32(4, true)).toBe(cpu);
      expect(dv.getUint32(12, true)).toBe(6); // MH_DYLIB
      const text = bytes.toString("latin1");
      for (const name of abi) expect(text).toContain(`_${name}\0`); // exported (Mach-O names carry a leading _)
      // The frameworks are opened at run time, not linked: the engine must load where Metal is absent.
      expect(text).not.toContain("/System/Library/Frameworks/Metal.framework/Versions");
    }
  }, 120_000);

  test("the engine and the shim agree on the ABI version and the info record", () => {
    const header = readFileSync(join(root, "metal/bn_metal.h"), "utf8");
    const zig = readFileSync(join(root, "zig/gpu/metal.zig"), "utf8");
    expect(Number(/#define BN_MTL_ABI (\d+)/.exec(header)![1])).toBe(Number(/pub const abi_version: i32 = (\d+);/.exec(zig)![1]));
    // bn_mtl_info's fields, in order, as C declares them and Zig mirrors them.
    const cFields = [.../typedef struct bn_mtl_info \{([^}]*)\}/.exec(header)![1]!.matchAll(/(\w+)(?:\[\d+\])?;/g)].map((m) => m[1]);
    const zFields = [.../pub const Info = extern struct \{([^}]*)\}/.exec(zig)![1]!.matchAll(/(\w+):/g)].map((m) => m[1]);
    expect(zFields).toEqual(cFields);
  });
});

describe("Metal absent", () => {
  test.skipIf(present)("not listed; to('metal') and friends are DeviceErrors that say why", () => {
    expect(bn.devices()).not.toContain("metal");
    using t = bn.ones([3]);
    expect(() => t.to("metal")).toThrow(bn.DeviceError);
    const why = process.platform === "darwin" ? /"metal" is not available: .+/ : /"metal" is not available: Metal runs on macOS only/;
    expect(() => t.to("metal")).toThrow(why);
    expect(() => bn.zeros([2], { device: "metal" })).toThrow(bn.DeviceError);
    expect(() => bn.memory.stats("metal")).toThrow(bn.DeviceError);
    expect(() => bn.deviceCapabilities("metal")).toThrow(bn.DeviceError);
    expect(() => bn.synchronize("metal")).toThrow(bn.DeviceError);
    expect(vals(t)).toEqual([1, 1, 1]);
  });
});

describe("Metal present", () => {
  test.if(present)("the device, its facts and its pool", () => {
    const caps = bn.deviceCapabilities("metal");
    console.log(`metal: ${caps.name}, working set ${(caps.memory.recommendedWorkingSet / 2 ** 30).toFixed(1)} GiB, unified ${caps.unifiedMemory}`);
    expect(caps.kind).toBe("metal");
    expect(caps.name.length).toBeGreaterThan(0);
    expect(caps.memory.maxBuffer).toBeGreaterThan(0);
    expect(bn.devices()).toContain("metal");
    if (!bn.devices().includes("cuda")) expect(bn.autoSelectDevice()).toBe("metal");
    const before = bn.memory.stats("metal").bytesInUse;
    const t = bn.zeros([1000], { device: "metal" });
    expect(t.device).toBe("metal");
    expect(bn.memory.stats("metal").bytesInUse).toBeGreaterThanOrEqual(before + 4000);
    expect(vals(t.toCpu())).toEqual(new Array(1000).fill(0));
    t.dispose();
    expect(bn.memory.stats("metal").bytesInUse).toBe(before);
  });

  test.if(present)("large transfers and views round trip; queued kernels finish before the host reads", () => {
    using big = bn.randn([3, 1 << 20], { seed: 1 });
    using gb = big.to("metal");
    using view = big.slice([null, [null, null, 7]]);
    using gv = view.to("metal");
    expect(vals(gb.toCpu())).toEqual(vals(big));
    expect(vals(gv.toCpu())).toEqual(vals(view));
    // A chain of queued kernels, each reading the last one's output, then one read.
    let x = bn.ones([4096], { device: "metal" });
    for (let i = 0; i < 20; i++) {
      const y = bn.add(x, x);
      x.dispose();
      x = y;
    }
    expect(vals(x).every((v) => v === 2 ** 20)).toBe(true);
    x.dispose();
  });

  test.if(present)("MPS products: batched and broadcast operands, K = 0", () => {
    const cases: [number[], number[], boolean][] = [
      [[3, 17, 33], [3, 33, 9], false],
      [[4, 2, 20, 30], [30, 25], false],
      [[40, 30], [50, 30], true], // b.T read in place (transposed operand)
    ];
    let seed = 10;
    for (const [sa, sb, tb] of cases) {
      using a = bn.randn(sa, { seed: seed++ });
      using b = bn.randn(sb, { seed: seed++ });
      using bt = tb ? b.T : b.view(sb);
      using want = bn.matmul(a, bt);
      using ga = a.to("metal");
      using gb = b.to("metal");
      using gbt = tb ? gb.T : gb.view(sb);
      using got = bn.matmul(ga, gbt);
      expect(got.shape).toEqual(want.shape);
      expect(relErr(vals(got), vals(want))).toBeLessThan(1e-5);
    }
    using e = bn.zeros([3, 0], { device: "metal" });
    using e2 = bn.zeros([0, 4], { device: "metal" });
    using ee = bn.matmul(e, e2);
    expect(vals(ee)).toEqual(new Array(12).fill(0));
  });
});

gpuConformance("metal", present);
