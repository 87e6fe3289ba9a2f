/**
 * The long fuzz run (issue 8): `bun run fuzz [--steps N] [--seed S] [--progress N] [--strict] [--trace]`.
 * Prints the seed first (replay a failure with `--seed S`), then a summary: steps, calls that
 * threw (by error class), reference comparisons, the largest error, and what is left live.
 * Exits 1 when any check failed. The model and the checks live in test/fuzz/ (fuzzer.ts runs them).
 */
import { formatSummary, runFuzz } from "../test/fuzz/fuzzer.ts";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0) return process.argv[i + 1];
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`));
  return eq?.slice(name.length + 3);
}

function intArg(name: string, dflt: number): number {
  const v = arg(name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) {
    console.error(`--${name} must be a non-negative integer, got ${v}`);
    process.exit(2);
  }
  return n;
}

const steps = intArg("steps", 100_000);
const seed = intArg("seed", Math.floor(Math.random() * 2 ** 32));
const progress = intArg("progress", steps >= 20_000 ? 10_000 : 0);
const strict = process.argv.includes("--strict"); // known library bugs count as failures
const trace = process.argv.includes("--trace"); // print every call before it runs (to stderr)
console.log(`fuzz: seed ${seed}, ${steps} steps (replay with: bun run fuzz --seed ${seed} --steps ${steps})`);
const s = runFuzz({
  seed,
  steps,
  progress,
  strict,
  log: (line) => console.log(line),
  trace: trace ? (i, call) => process.stderr.write(`${i} ${call}\n`) : undefined,
});
console.log(formatSummary(s));
console.log(
  `summary: seed ${s.seed}, ${s.steps} steps, ${s.threw} threw (${Object.entries(s.errors)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ")}), ${s.comparisons} reference comparisons (${s.elements} elements), max error ${s.maxErrRatio.toFixed(3)}x tolerance, ${s.leakedAllocations} live allocations left, ${s.failureCount} failures, ${Object.values(s.known).reduce((a, b) => a + b, 0)} hits of known library bugs`,
);
process.exit(s.failureCount === 0 ? 0 : 1);
