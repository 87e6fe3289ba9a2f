// The README's TypeScript blocks run as written (against this checkout instead of the package).
import { expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDirs } from "./helpers.ts";

const root = join(import.meta.dir, "..");
const dir = tempDirs()("bitnet-readme-");

const blocks = [...readFileSync(join(root, "README.md"), "utf8").matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);

test("README has TypeScript examples", () => {
  expect(blocks.length).toBeGreaterThanOrEqual(2);
});

blocks.forEach((code, i) => {
  test(`README example ${i + 1} runs`, () => {
    const file = join(dir, `example${i}.ts`);
    writeFileSync(file, code.replaceAll('"bitnet-bun"', JSON.stringify(join(root, "src", "index.ts"))));
    const r = Bun.spawnSync([process.execPath, file], { env: { ...process.env } });
    const out = r.stdout.toString() + r.stderr.toString();
    expect(out).not.toContain("error");
    expect(r.exitCode).toBe(0);
  });
});
