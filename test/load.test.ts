// A missing or wrong native library is a clear NativeError naming the platform, never a crash.
// Each case runs in a fresh Bun process, since the library is opened once at import.
import { describe, expect, test } from "bun:test";
import { tempDirs } from "./helpers.ts";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { symbols } from "../src/abi.gen.ts";

const entry = join(import.meta.dir, "..", "src", "index.ts");
const tempDir = tempDirs();

function importWith(env: Record<string, string>): { code: number; out: string } {
  const script = `try { await import(${JSON.stringify(entry)}); console.log("LOADED"); } catch (e) { console.log(e.name + ": " + e.message); process.exit(3); }`;
  const r = Bun.spawnSync([process.execPath, "-e", script], { env: { ...process.env, ...env } });
  return { code: r.exitCode, out: r.stdout.toString() + r.stderr.toString() };
}

describe("loading the native library", () => {
  const platform = `${process.platform}-${process.arch}`;

  test("BITNET_BUN_LIB pointing nowhere", () => {
    const r = importWith({ BITNET_BUN_LIB: "/nonexistent/libbitnet.so" });
    expect(r.code).toBe(3);
    expect(r.out).toContain("NativeError: load: BITNET_BUN_LIB=/nonexistent/libbitnet.so does not exist");
    expect(r.out).toContain(platform);
  });

  test("BITNET_BUN_LIB pointing at something that is not a library", () => {
    const dir = tempDir("bitnet-load-");
    const bogus = join(dir, "libbitnet.so");
    writeFileSync(bogus, "not an ELF file\n");
    const r = importWith({ BITNET_BUN_LIB: bogus });
    expect(r.code).toBe(3);
    expect(r.out).toMatch(/NativeError: load: cannot open BITNET_BUN_LIB library .*libbitnet\.so for (linux|darwin)-/);
  });

  test("a library with the right symbols but another ABI version", () => {
    const dir = tempDir("bitnet-abi-");
    const c = Object.keys(symbols)
      .map((s) => (s === "bn_abi_version" ? "unsigned bn_abi_version(void) { return 999; }" : `int ${s}(void) { return 0; }`))
      .join("\n");
    writeFileSync(join(dir, "stub.c"), c);
    const lib = join(dir, "libstub.so");
    const cc = Bun.spawnSync(["cc", "-shared", "-fPIC", "-o", lib, join(dir, "stub.c")]);
    expect(cc.exitCode).toBe(0);
    const r = importWith({ BITNET_BUN_LIB: lib });
    expect(r.code).toBe(3);
    expect(r.out).toContain("speaks ABI 999 but this bitnet-bun expects ABI");
  });

  test("no library anywhere: the error names the platform and what was looked for", () => {
    // A copy of src/ with no prebuilds/ and no zig-out/ beside it.
    const dir = tempDir("bitnet-nolib-");
    Bun.spawnSync(["cp", "-r", join(import.meta.dir, "..", "src"), join(dir, "src")]);
    const script = `try { await import(${JSON.stringify(join(dir, "src", "index.ts"))}); } catch (e) { console.log(e.name + ": " + e.message); process.exit(3); }`;
    const r = Bun.spawnSync([process.execPath, "-e", script], { env: { ...process.env, BITNET_BUN_LIB: "" } });
    const out = r.stdout.toString();
    expect(r.exitCode).toBe(3);
    expect(out).toContain(`NativeError: load: no bitnet-bun native library for platform ${platform}`);
    expect(out).toContain(join(dir, "zig-out", "lib"));
  });

  test("the normal lookup loads", () => {
    const r = importWith({ BITNET_BUN_LIB: "" });
    expect(r.out).toContain("LOADED");
    expect(r.code).toBe(0);
  });
});
