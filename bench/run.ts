// `bun run bench`: every bench file in its own process (so one's warm-up cannot skew another).
// `bun run bench creation` runs just that one.
import { readdirSync } from "node:fs";
import { join } from "node:path";

const dir = import.meta.dir;
const only = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".ts") && !["run.ts", "util.ts"].includes(f))
  .filter((f) => only.length === 0 || only.some((o) => f.startsWith(o)))
  .sort();
let failed = 0;
for (const f of files) {
  console.log(`\n=== bench/${f} ===`);
  const p = Bun.spawnSync([process.execPath, join(dir, f)], { stdout: "inherit", stderr: "inherit", env: process.env });
  if (p.exitCode !== 0) failed++;
}
process.exit(failed ? 1 : 0);
