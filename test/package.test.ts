// Users install the packed tarball with `bun add` (no Zig, no path back into this repo), and a
// `bun build --compile` executable carries the native library inside it.
import { describe, expect, test } from "bun:test";
import { tempDirs } from "./helpers.ts";
import { cpSync, existsSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dir, "..");
const platform = `${process.platform}-${process.arch}`;

const tempDir = tempDirs();

function run(cmd: string[], cwd: string, env: Record<string, string | undefined> = {}) {
  const r = Bun.spawnSync(cmd, { cwd, env: { ...process.env, BITNET_BUN_LIB: undefined, ...env } });
  return { code: r.exitCode, out: r.stdout.toString() + r.stderr.toString() };
}

const APP = `
import * as bn from "bitnet-bun";
using x = bn.arange(6).reshape([2, 3]);
using y = x.T.contiguous();
const caps = bn.deviceCapabilities();
console.log(JSON.stringify({ values: y.toArray(), source: caps.library.source, path: caps.library.path, simd: caps.simd }));
`;

describe("shipping", () => {
  let tarball = "";
  let project = "";

  test("npm pack -> bun add <tarball> in a fresh project -> import and compute", () => {
    const out = tempDir("bitnet-pack-");
    // prepack cross-compiles the four prebuilt libraries into prebuilds/.
    const pack = run(["bun", "pm", "pack", "--destination", out, "--quiet"], root);
    expect(pack.code).toBe(0);
    tarball = join(out, readdirSync(out).find((f) => f.endsWith(".tgz"))!);
    const list = run(["tar", "tzf", tarball], out).out;
    // (the macOS engines with the Metal shim beside them, metal/README.md)
    for (const p of ["linux-x64/libbitnet.so", "linux-arm64/libbitnet.so", "darwin-x64/libbitnet.dylib", "darwin-arm64/libbitnet.dylib", "darwin-x64/libbitnet_metal.dylib", "darwin-arm64/libbitnet_metal.dylib"]) {
      expect(list).toContain(`package/prebuilds/${p}`);
    }
    expect(list).not.toContain("package/zig/");
    expect(list).not.toContain("package/test/");

    project = tempDir("bitnet-user-");
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "user-app", private: true, type: "module" }));
    writeFileSync(join(project, "app.ts"), APP);
    const add = run(["bun", "add", tarball], project);
    expect(add.code).toBe(0);
    const r = run(["bun", "app.ts"], project);
    expect(r.code).toBe(0);
    const res = JSON.parse(r.out.trim().split("\n").pop()!);
    expect(res.values).toEqual([[0, 3], [1, 4], [2, 5]]);
    expect(res.source).toBe("prebuilt");
    expect(res.path).toContain(join(project, "node_modules", "bitnet-bun", "prebuilds", platform));
    expect(res.path.startsWith(root)).toBe(false);
  }, 2_400_000); // cross-compiling four platforms takes minutes on a 2-core machine

  test("bun build --compile: the executable runs from another directory with the library inside", () => {
    expect(project).not.toBe("");
    const exe = join(project, "app-bin");
    const build = run(["bun", "build", "--compile", "app.ts", "--outfile", exe], project);
    expect(build.code).toBe(0);
    const elsewhere = tempDir("bitnet-exe-");
    cpSync(exe, join(elsewhere, "app-bin"));
    rmSync(project, { recursive: true, force: true }); // nothing left to load from
    expect(existsSync(project)).toBe(false);
    const r = run([join(elsewhere, "app-bin")], elsewhere);
    expect(r.code).toBe(0);
    const res = JSON.parse(r.out.trim().split("\n").pop()!);
    expect(res.values).toEqual([[0, 3], [1, 4], [2, 5]]);
    expect(res.source).toBe("prebuilt");
    expect(res.path.startsWith("/$bunfs/")).toBe(true);
  }, 300_000);
});
