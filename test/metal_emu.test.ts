// The self-test of the Metal shim's CPU emulator (metal/emu.cpp, metal/emu.h). test/metal.test.ts
// runs the engine's Metal path on the emulator, which reaches the emulator's own behaviours only
// where the engine happens to use them; this builds the emulator with the test kernels of
// test/metal_emu/kernels.metal (`zig build metal-emu -Dmetal-emu-source=...`) and runs
// test/metal_emu/driver.c on it through the C ABI: the queue, validation, memory, every simdgroup
// function, barriers, the order threads run in, misuse failing instead of hanging, simdgroup
// matrices, the product stand-in, threads. One test per group of the driver's checks ("ok
// group/name" or "FAIL group/name: ..." lines, then "N checks, M failed"). Also: a kernel file that
// must not compile (test/metal_emu/bad.metal) fails the build with emu.h's message. Linux with Zig
// only (the emulator is the Metal stand-in where there is no Metal).
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { tempDirs } from "./helpers.ts";

const root = join(import.meta.dir, "..");
const here = join(import.meta.dir, "metal_emu");
const tempDir = tempDirs();

const linux = process.platform === "linux";
const zig = linux && Bun.spawnSync(["python3", "-m", "ziglang", "version"], { stderr: "pipe" }).exitCode === 0;
if (!zig) console.log(`metal emulator self-test: skipped (${linux ? "no Zig here (python3 -m ziglang)" : "Linux only"})`);

// The groups of the driver's checks, each with the fewest checks it must report (so that a driver
// that stops early, or skips a part, fails here).
const groups: Record<string, number> = {
  abi: 2,
  library: 6,
  order: 3,
  memory: 7,
  queue: 7,
  validation: 15,
  reduce: 5,
  simd: 6,
  misuse: 6,
  language: 3,
  mma: 1,
  gemm: 16,
  threads: 4,
  cost: 3,
};

interface DriverRun {
  exitCode: number | null;
  signal: string | null;
  ok: string[];
  fail: string[];
  summary: { checks: number; failed: number } | null;
}
let driver: DriverRun | undefined;

function zigRun(args: string[]): { code: number | null; out: string } {
  const r = Bun.spawnSync(["python3", "-m", "ziglang", ...args], { cwd: root, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, out: r.stdout.toString() + r.stderr.toString() };
}

describe.if(zig)("Metal emulator self-test", () => {
  test("builds with the test kernels; the driver runs every check to the end", () => {
    const out = tempDir("bitnet-emu-test-");
    const build = zigRun(["build", "metal-emu", `-Dmetal-emu-source=${join(here, "kernels.metal")}`, "-p", out]);
    if (build.code !== 0) throw new Error(`zig build metal-emu failed:\n${build.out}`);
    const exe = join(out, "driver");
    const cc = zigRun(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-I", "metal", join(here, "driver.c"), "-o", exe, "-ldl", "-lm", "-lpthread"]);
    if (cc.code !== 0) throw new Error(`the driver did not compile:\n${cc.out}`);

    // A hang (misuse the emulator should have failed) is killed, and shows as a missing summary.
    const r = Bun.spawnSync([exe, join(out, "lib", "libbitnet_metal_emu.so")], { stdout: "pipe", stderr: "pipe", timeout: 120_000, killSignal: "SIGKILL" });
    const output = r.stdout.toString() + r.stderr.toString();
    const lines = r.stdout.toString().split("\n");
    const summary = lines.map((l) => /^(\d+) checks, (\d+) failed$/.exec(l)).find((m) => m);
    const d: DriverRun = {
      exitCode: r.exitCode,
      signal: r.signalCode ? String(r.signalCode) : null,
      ok: lines.filter((l) => l.startsWith("ok ")).map((l) => l.slice(3)),
      fail: lines.filter((l) => l.startsWith("FAIL ")).map((l) => l.slice(5)),
      summary: summary ? { checks: Number(summary[1]), failed: Number(summary[2]) } : null,
    };
    driver = d;
    for (const l of lines) if (l.startsWith("# t_bench")) console.log(`metal emulator: ${l.slice(2)}`);
    if (d.fail.length > 0 || r.exitCode !== 0) console.log(output);

    expect(d.signal).toBeNull();
    expect(d.fail).toEqual([]);
    expect(d.summary).toEqual({ checks: d.ok.length, failed: 0 });
    expect(d.exitCode).toBe(0);
  }, 600_000);

  for (const [group, fewest] of Object.entries(groups)) {
    test(`${group}: every check passes`, () => {
      if (!driver) throw new Error("the driver did not run (see the first test)");
      expect(driver.fail.filter((f) => f.startsWith(`${group}/`))).toEqual([]);
      expect(driver.ok.filter((o) => o.startsWith(`${group}/`)).length).toBeGreaterThanOrEqual(fewest);
    });
  }

  test("every check belongs to a group above", () => {
    if (!driver) throw new Error("the driver did not run (see the first test)");
    const names = [...driver.ok, ...driver.fail.map((f) => f.split(":")[0]!)];
    expect(names.filter((n) => !(n.split("/")[0]! in groups))).toEqual([]);
  });

  test("a kernel file that must not compile fails the build with emu.h's message", () => {
    const out = tempDir("bitnet-emu-bad-");
    const build = zigRun(["build", "metal-emu", `-Dmetal-emu-source=${join(here, "bad.metal")}`, "-p", out]);
    expect(build.code).not.toBe(0);
    expect(build.out).toContain("a vector constructor with the wrong number of components");
    expect(build.out).toMatch(/bad\.metal:\d+:\d+: note: in instantiation/); // the line of the mistake
  }, 600_000);
});
