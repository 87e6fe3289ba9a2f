// The door cannot drift: src/abi.gen.ts is regenerated from the Zig sources and compared, and
// the built library's exported bn_ symbols must be exactly the declared ones.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { ABI_VERSION, symbols } from "../src/abi.gen.ts";
import * as bn from "../src/index.ts";
import { generate, parseExports } from "../scripts/gen-abi.ts";

const root = join(import.meta.dir, "..");

describe("ABI", () => {
  test("src/abi.gen.ts is current with zig/root.zig, zig/status.zig and the enums", async () => {
    expect(await Bun.file(join(root, "src/abi.gen.ts")).text()).toBe(generate());
  });

  test("the generator refuses types that would need BigInt at the door", () => {
    expect(() => parseExports("export fn bn_x(n: usize) i32 {")).toThrow(/may not cross the door/);
    expect(parseExports("export fn bn_y(p: ?*anyopaque, n: f64) i32 {")).toEqual([{ name: "bn_y", args: ["ptr", "f64"], returns: "i32" }]);
  });

  test("the loaded library exports exactly the declared bn_ symbols, at the expected ABI", () => {
    const lib = bn.deviceCapabilities().library;
    expect(lib.abi).toBe(ABI_VERSION);
    const nm = Bun.spawnSync(["nm", "-D", "--defined-only", lib.path]);
    expect(nm.exitCode).toBe(0);
    const exported = new Set(
      nm.stdout
        .toString()
        .split("\n")
        .map((l) => l.trim().split(/\s+/).pop() ?? "")
        .filter((s) => s.startsWith("bn_") && !s.startsWith("bn_kernels_")),
    );
    expect([...exported].sort()).toEqual(Object.keys(symbols).sort());
  });
});
