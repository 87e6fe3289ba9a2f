// Shared bench plumbing: run mitata, then print a compact median table (what the targets in the
// docs are stated in) with each row's ratio to its peer from the same run.
import { run } from "mitata";

export interface Row {
  name: string;
  p50: number;
  avg: number;
}

/** Runs the registered mitata benchmarks and returns median/mean per benchmark (ns). */
export async function runAll(): Promise<Row[]> {
  const res = await run({ format: process.env.BENCH_FORMAT === "json" ? "json" : "mitata" });
  const rows: Row[] = [];
  for (const b of res.benchmarks) {
    for (const r of b.runs) {
      if (r.stats) rows.push({ name: r.name, p50: r.stats.p50, avg: r.stats.avg });
    }
  }
  return rows;
}

/** Prints rows as a markdown table; `peer` maps a row name to the name of its peer row. */
export function printTable(title: string, rows: Row[], peer: Record<string, string> = {}): void {
  const by = new Map(rows.map((r) => [r.name, r]));
  const fmt = (ns: number) => (ns < 1e3 ? `${ns.toFixed(1)} ns` : ns < 1e6 ? `${(ns / 1e3).toFixed(2)} µs` : `${(ns / 1e6).toFixed(2)} ms`);
  console.log(`\n### ${title}\n`);
  console.log("| benchmark | median | mean | vs peer |");
  console.log("| --- | ---: | ---: | --- |");
  for (const r of rows) {
    const p = peer[r.name] ? by.get(peer[r.name]!) : undefined;
    const ratio = p ? `${(r.p50 / p.p50).toFixed(2)}x of "${p.name}"` : "";
    console.log(`| ${r.name} | ${fmt(r.p50)} | ${fmt(r.avg)} | ${ratio} |`);
  }
}

/** One line describing the machine and build, printed at the top of every bench. */
export function header(caps: { simd: string; cores: number }): string {
  const cpu = (() => {
    try {
      return /model name\s*:\s*(.*)/.exec(require("node:fs").readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? process.arch;
    } catch {
      return process.arch;
    }
  })();
  return `${new Date().toISOString().slice(0, 10)} · ${cpu} · ${caps.cores} cores · SIMD ${caps.simd} · Bun ${Bun.version}`;
}

/** A NumPy case: setup code (np imported) and the statement to time. */
export interface NumpyCase {
  name: string;
  setup: string;
  stmt: string;
}

/**
 * Runs NumPy on the same cases in a python3 subprocess (bench/numpy_peer.py) and returns median
 * seconds per call by name, or an explanation when numpy or python3 is absent. `env` is added to
 * the subprocess' environment (e.g. OPENBLAS_NUM_THREADS, to give BLAS our thread count).
 */
export function numpyPeer(cases: NumpyCase[], env: Record<string, string> = {}): { times: Record<string, number>; version?: string; error?: string } {
  const p = Bun.spawnSync(["python3", `${import.meta.dir}/numpy_peer.py`, JSON.stringify(cases)], { env: { ...process.env, ...env } });
  if (p.exitCode !== 0) return { times: {}, error: `python3 failed: ${p.stderr.toString().trim().split("\n").pop()}` };
  const res = JSON.parse(p.stdout.toString());
  if (res.error) return { times: {}, error: res.error };
  const { numpy, ...times } = res;
  return { times, version: numpy };
}

/** GB/s for `bytes` moved in `ns`. */
export const gbps = (bytes: number, ns: number) => bytes / ns;

/**
 * Per-call time (ns, median over `reps`) of `f` called `calls` times back to back, then one
 * `sync()` (a device synchronisation): for GPU calls too short to time one by one. With
 * `hostOnly`, the clock stops before the synchronisation (the CPU side of the calls).
 */
export function perCallNs(f: () => void, sync: () => void, opts: { calls?: number; reps?: number; hostOnly?: boolean } = {}): number {
  const calls = opts.calls ?? 100;
  const reps = opts.reps ?? 20;
  for (let i = 0; i < calls; i++) f();
  sync();
  const ts: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = Bun.nanoseconds();
    for (let i = 0; i < calls; i++) f();
    const t1 = Bun.nanoseconds();
    sync();
    ts.push(((opts.hostOnly ? t1 : Bun.nanoseconds()) - t0) / calls);
  }
  ts.sort((a, b) => a - b);
  return ts[ts.length >> 1]!;
}
