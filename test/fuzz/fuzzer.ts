/**
 * A seeded fuzzer of random bitnet-bun API call sequences (issue 8, "Reliability"): the runner
 * shared by test/fuzz.test.ts (short runs) and scripts/fuzz.ts (long runs).
 *
 * Each step makes one API call (creation, a view, an elementwise / in-place op, a reduction,
 * matmul, ternary quantization and ternaryMatmul, a read, dispose, a garbage collection), some
 * with bad arguments on purpose, and checks:
 *  1. the process survives (a crash ends the run);
 *  2. every thrown error is a `bn.BitNetError` (anything else is a failure), of the class the
 *     model predicts when it predicts one;
 *  3. results equal a float64 reference computed here from the operands' values (read before
 *     the call), within a dtype tolerance (integers and copies exactly); the model also says
 *     whether a call must throw, and a call it considers valid must not;
 *  4. operands are unchanged (values, shape, strides, dtype, liveness), including the target of
 *     an in-place op that threw;
 *  5. storage accounting: a call that throws leaves `memory.stats().liveTensors` unchanged, a
 *     call that succeeds adds exactly the storages its result owns, `memory.collect()` frees
 *     nothing (the fuzzer keeps every tensor reachable, so a freed block was leaked by the
 *     library), and at the end, once the fuzzer disposed everything it made, no allocation
 *     tagged by this run is left in `memory.liveAllocations()` and `liveTensors` is back where it
 *     started.
 * The run is synchronous, so FinalizationRegistry callbacks never free anything mid-run.
 *
 * The files: common.ts (the PRNG, command and summary types), reference.ts (the float64 reference
 * model), gen_*.ts (the command generators and their models, by family: create, view,
 * elementwise, reduce, matmul and ternary, lifecycle), checks.ts (results and operands against
 * the model), known_bugs.ts (KNOWN_BUGS), and this file (the fuzzer's state and the run).
 * @module
 */
import * as bn from "../../src/index.ts";
import type { DType, Tensor, TernaryTensor } from "../../src/index.ts";
import { checkTensor, checkTernary, checkUnchanged, ternaryScalePerWeight } from "./checks.ts";
import { fmtVal, Rng, type Command, type Failure, type FuzzOptions, type FuzzSummary, type Snap } from "./common.ts";
import { genCreate } from "./gen_create.ts";
import { genBinary, genInplace, genUnary } from "./gen_elementwise.ts";
import { genDispose, genGc, genRead } from "./gen_lifecycle.ts";
import { genMatmul, genTernary, genTernaryMatmul } from "./gen_matmul.ts";
import { genReduce } from "./gen_reduce.ts";
import { genView } from "./gen_view.ts";
import { KNOWN_BUGS } from "./known_bugs.ts";
import { DTYPES, INT_RANGE, isFloat, prod, validDim } from "./reference.ts";

export type { FuzzOptions, FuzzSummary } from "./common.ts";

const MAX_POOL = 40;
/** Non-tensors where a tensor is expected. */
const JUNK: unknown[] = [null, undefined, "x", {}, [1, 2], () => 1, Symbol.iterator];

export class Fuzzer {
  readonly r: Rng;
  readonly pool: Tensor[] = [];
  readonly dead: Tensor[] = [];
  readonly tpool: TernaryTensor[] = [];
  readonly tdead: TernaryTensor[] = [];
  readonly s: FuzzSummary;
  step = 0;
  #failKeys = new Set<string>();

  constructor(readonly opts: FuzzOptions) {
    this.r = new Rng(opts.seed);
    this.s = {
      seed: opts.seed,
      steps: 0,
      ok: 0,
      threw: 0,
      errors: {},
      foreign: 0,
      foreignKnown: 0,
      comparisons: 0,
      elements: 0,
      maxErrRatio: 0,
      maxErrAt: "",
      maxRelErr: { f32: 0, f16: 0, bf16: 0 },
      byOp: {},
      leakedAllocations: 0,
      liveTensorsDelta: 0,
      failures: [],
      failureCount: 0,
      failuresByKind: {},
      known: {},
      knownExamples: {},
      unmodeled: 0,
      inplaceOnOverlap: 0,
      ms: 0,
    };
  }

  fail(kind: string, op: string, call: string, detail: string): void {
    const f: Failure = { step: this.step, kind, op, call, detail };
    const known = this.opts.strict ? undefined : KNOWN_BUGS.find((b) => b.match(f));
    if (known) {
      this.s.known[known.id] = (this.s.known[known.id] ?? 0) + 1;
      if (!this.s.knownExamples[known.id]) this.s.knownExamples[known.id] = `step ${this.step}: ${call} -> ${detail}`;
      return;
    }
    this.s.failureCount++;
    this.s.failuresByKind[kind] = (this.s.failuresByKind[kind] ?? 0) + 1;
    const key = `${kind}|${op}|${detail.slice(0, 60)}`;
    if (this.s.failures.length < 25 && !this.#failKeys.has(key)) {
      this.#failKeys.add(key);
      this.s.failures.push(f);
    }
  }

  // ---- values and shapes ----------------------------------------------------------------------

  floatValue(): number {
    const r = this.r;
    if (r.chance(0.03)) return r.pick([NaN, Infinity, -Infinity, -0, 0, 1e30, -7e4, 1e-40, 65504, 3e38, 0.5, -1.5, 2.5]);
    if (r.chance(0.1)) return r.int(-8, 8) / 2; // exact halves: round-half-even, boundaries
    const scale = r.pick([1, 1, 1, 1, 10, 100, 0.01, 1000]);
    return r.normal() * scale;
  }
  intValue(d: DType): number {
    const r = this.r;
    const [lo, hi] = INT_RANGE[d]!;
    if (d === "bool") return r.int(0, 1);
    const u = r.next();
    if (u < 0.7) return Math.min(Math.max(r.int(-10, 10), lo), hi);
    if (u < 0.9) return r.int(lo, hi);
    if (u < 0.97) return r.pick([lo, hi, lo + 1, hi - 1, 0]);
    return r.pick([hi + 1, lo - 1, 1e10, -1e10, 0.5, NaN, Infinity]); // converted from f64: saturates
  }
  values(n: number, d: DType): Float64Array {
    const out = new Float64Array(n);
    const fl = isFloat(d);
    for (let i = 0; i < n; i++) out[i] = fl ? this.floatValue() : this.intValue(d);
    return out;
  }
  dim(): number {
    const r = this.r;
    const u = r.next();
    if (u < 0.04) return 0;
    if (u < 0.2) return 1;
    if (u < 0.9) return r.int(2, 6);
    if (u < 0.97) return r.int(7, 16);
    return r.int(17, 64);
  }
  shape(maxNd = 4, limit = 4096): number[] {
    const nd = this.r.int(0, maxNd);
    const s: number[] = [];
    for (let i = 0; i < nd; i++) s.push(this.dim());
    while (prod(s) > limit) {
      const i = s.indexOf(Math.max(...s));
      s[i] = Math.floor(s[i]! / 2);
    }
    return s;
  }
  dtype(): DType {
    return this.r.chance(0.45) ? this.r.pick(["f32", "f16", "bf16"] as DType[]) : this.r.pick(DTYPES);
  }
  floatDtype(): DType {
    return this.r.pick(["f32", "f32", "f16", "bf16"] as DType[]);
  }
  badDtype(): unknown {
    return this.r.pick(["f64", "int32", "float", "", "F32", 5, null, "bool ", "i64", "toString", "__proto__", 32n]);
  }
  badShape(): unknown {
    return this.r.pick<unknown>([
      [-1],
      [2, -3],
      [2.5],
      [NaN],
      [Infinity],
      ["3"],
      "abc",
      null,
      { length: 2 },
      [1e20],
      [2 ** 48], // 1 PiB and more: the system refuses
      [2 ** 26, 2 ** 26],
      [Number.MAX_SAFE_INTEGER],
      new Array(33).fill(1),
      [2, null],
      -4,
      3.5,
    ]);
  }

  /** A fresh tensor of shape and dtype with random values, sometimes a strided view; joins the pool. */
  fresh(shape: number[], d: DType): Tensor {
    const r = this.r;
    const n = prod(shape);
    let t: Tensor;
    const mode = r.int(0, 9);
    try {
      if (mode < 6 || shape.length === 0 || n === 0) {
        t = bn.tensor(this.values(n, d), { dtype: d, shape });
      } else if (mode < 8 && shape.length >= 2) {
        const base = bn.tensor(this.values(n, d), { dtype: d, shape: shape.slice().reverse() });
        t = base.T;
        base.dispose();
      } else {
        // every other element of the last axis, forward or backward
        const last = shape[shape.length - 1]!;
        const bs = [...shape.slice(0, -1), 2 * last];
        const base = bn.tensor(this.values(2 * n, d), { dtype: d, shape: bs });
        const spec = r.chance(0.5) ? [0, 2 * last, 2] : [2 * last - 1, null, -2];
        t = base.slice([...shape.slice(0, -1).map(() => null), spec as [number, number | null, number]]);
        base.dispose();
      }
    } catch (e) {
      this.fail("helper-threw", "fresh", `fresh(${d}[${shape}])`, String(e));
      t = bn.zeros(shape, { dtype: d });
    }
    this.pool.push(t);
    return t;
  }
  /** A live pool tensor (a fresh one if the pool is empty). */
  pick(pred?: (t: Tensor) => boolean): Tensor {
    const c = pred ? this.pool.filter(pred) : this.pool;
    if (c.length === 0) {
      const t = this.fresh(this.shape(3, 256), this.dtype());
      if (!pred || pred(t)) return t;
      return this.fresh([2, 3], "f32");
    }
    return this.r.pick(c);
  }
  /** A tensor operand, or with probability p a bad one (disposed, or not a tensor). */
  operand(p = 0.06, pred?: (t: Tensor) => boolean): unknown {
    if (this.r.chance(p)) {
      if (this.dead.length > 0 && this.r.chance(0.5)) return this.r.pick(this.dead);
      return this.r.pick(JUNK);
    }
    return this.pick(pred);
  }
  /** A JS scalar operand for tensor `t` (sometimes out of range or special). */
  scalar(d?: DType): number | boolean {
    const r = this.r;
    const u = r.next();
    if (u < 0.1) return r.chance(0.5);
    if (d !== undefined && !isFloat(d) && d !== "bool" && u < 0.75) {
      const v = this.intValue(d); // sometimes out of the dtype's range: a ValueError
      return Number.isFinite(v) ? Math.trunc(v) : r.int(-3, 3);
    }
    if (u < 0.5) return r.int(-5, 5);
    if (u < 0.9) return Math.round(this.floatValue() * 100) / 100;
    return r.pick([NaN, Infinity, -Infinity, 1e10, -300, 70000, 2 ** 31, 0.5]);
  }
  /** A shape that broadcasts with `s` (drop leading axes, set some to 1), or with p an incompatible one. */
  compatible(s: readonly number[], p = 0.08): number[] {
    const r = this.r;
    let out = s.slice(r.int(0, s.length));
    out = out.map((d) => (r.chance(0.3) ? 1 : d));
    if (r.chance(0.15) && s.length < 4) out = [r.int(1, 3), ...s]; // b has more axes
    if (r.chance(p) && out.length > 0) {
      const i = r.int(0, out.length - 1);
      out[i] = out[i]! + r.int(2, 4);
    }
    return out;
  }

  // ---- snapshots -----------------------------------------------------------------------------

  snap(x: unknown): Snap {
    if (x instanceof bn.Tensor) {
      const disposed = x.disposed;
      return {
        kind: "tensor",
        t: x,
        disposed,
        shape: x.shape,
        strides: x.strides,
        dtype: x.dtype,
        vals: disposed ? null : x._toFloat64("fuzz"),
        contiguous: disposed ? false : x.isContiguous(),
      };
    }
    if (x instanceof bn.TernaryTensor) {
      if (x.disposed) return { kind: "ternary", w: x, disposed: true, shape: [], format: x.format, q: null, sc: null, packed: null };
      const u = x.unpack();
      const q = u._toFloat64("fuzz");
      u.dispose();
      return { kind: "ternary", w: x, disposed: false, shape: x.shape, format: x.format, q, sc: ternaryScalePerWeight(x), packed: x.packed._toFloat64("fuzz") };
    }
    return { kind: "other", v: x };
  }

  // ---- one step ------------------------------------------------------------------------------

  /** Keeps the pool small: disposes random tensors (checking the accounting) outside the step count. */
  housekeeping(): void {
    while (this.pool.length > MAX_POOL || (this.pool.length > 0 && this.pool[this.pool.length - 1]!.size > 4096)) {
      // (a result larger than 4096 elements, from broadcasting, goes at once)
      const i = this.pool.length > MAX_POOL ? this.r.int(0, this.pool.length - 1) : this.pool.length - 1;
      const t = this.pool[i]!;
      this.pool.splice(i, 1);
      const last = t._s!.refs === 1 && !t._s!.exported;
      const before = bn.memory.stats().liveTensors;
      t.dispose();
      const d = bn.memory.stats().liveTensors - before;
      if (d !== (last ? -1 : 0)) this.fail("leak-accounting", "dispose", `(${fmtVal(t)}).dispose()`, `liveTensors changed by ${d}, expected ${last ? -1 : 0}`);
      this.dead.push(t);
      if (this.dead.length > 16) this.dead.shift();
    }
    while (this.tpool.length > 6) this.tpool.shift()!.dispose();
  }

  gen(): Command {
    const r = this.r;
    this.housekeeping();
    const u = r.next() * 100;
    if (u < 13) return genCreate(this);
    if (u < 30) return genView(this);
    if (u < 46) return genBinary(this);
    if (u < 55) return genUnary(this);
    if (u < 63) return genInplace(this);
    if (u < 74) return genReduce(this);
    if (u < 80) return genMatmul(this);
    if (u < 83) return genTernary(this);
    if (u < 86) return genTernaryMatmul(this);
    if (u < 89) return genRead(this);
    if (u < 99.5) return genDispose(this);
    return genGc(this);
  }

  runStep(): void {
    const cmd = this.gen();
    this.s.byOp[cmd.op] = (this.s.byOp[cmd.op] ?? 0) + 1;
    const snaps = cmd.args.map((a) => this.snap(a));
    const exp = cmd.model(snaps);
    this.opts.trace?.(this.step, cmd.desc());
    const before = bn.memory.stats().liveTensors;
    let res: unknown;
    let thrown: unknown;
    let threw = false;
    try {
      res = cmd.run();
    } catch (e) {
      threw = true;
      thrown = e;
    }
    const after = bn.memory.stats().liveTensors;
    const call = () => `${cmd.desc()}`;
    if (threw) {
      this.s.threw++;
      const name = thrown instanceof Error ? thrown.constructor.name : typeof thrown;
      this.s.errors[name] = (this.s.errors[name] ?? 0) + 1;
      const msg = thrown instanceof Error ? thrown.message : String(thrown);
      if (!(thrown instanceof bn.BitNetError)) {
        this.s.foreign++;
        const before = this.s.failureCount;
        this.fail("not-BitNetError", cmd.op, call(), `${name}: ${msg}`);
        if (this.s.failureCount === before) this.s.foreignKnown++;
      }
      else if (exp.throws === false) this.fail("rejected-valid", cmd.op, call(), `${name}: ${msg}`);
      else if (exp.cls !== undefined && exp.cls !== name) this.fail("wrong-class", cmd.op, call(), `expected ${exp.cls}, got ${name}: ${msg}`);
      if (exp.throws === "maybe") this.s.unmodeled++;
      if (after !== before) this.fail("leak-on-throw", cmd.op, call(), `liveTensors ${before} -> ${after} (${name}: ${msg})`);
      checkUnchanged(this, cmd, snaps, true, call);
      return;
    }
    this.s.ok++;
    if (exp.throws === true) this.fail("accepted-invalid", cmd.op, call(), `expected ${exp.cls ?? "an error"}, got ${fmtVal(res)}`);
    if (exp.throws === "maybe") this.s.unmodeled++;
    // Storage accounting.
    let want = cmd.delta ?? 0;
    if (res instanceof bn.Tensor && cmd.delta === undefined) {
      const shares = snaps.some((s) => s.kind === "tensor" && !s.disposed && s.t === res) || cmd.args.some((a) => a instanceof bn.Tensor && !a.disposed && a._s === res._s);
      if (!shares) want = 1;
    }
    if (res instanceof bn.TernaryTensor && cmd.delta === undefined) want = res.format === "i2" ? 2 : 1;
    if (cmd.collect && res !== 0) this.fail("leak-collected", cmd.op, call(), `memory.collect() freed ${String(res)} unreachable block(s): the library dropped tensors without disposing them`);
    if (after - before !== want) this.fail("leak-accounting", cmd.op, call(), `liveTensors changed by ${after - before}, expected ${want}`);
    // Keep results reachable (and disposable) from the pool; a result with a broken shape is disposed.
    if (res instanceof bn.Tensor && !res.disposed && !res.shape.every(validDim)) {
      this.fail("broken-result", cmd.op, call(), `result has shape ${JSON.stringify(res.shape)}`);
      res.dispose();
      return;
    }
    if (res instanceof bn.Tensor && !this.pool.includes(res)) this.pool.push(res);
    if (res instanceof bn.TernaryTensor) this.tpool.push(res);
    if (exp.read) {
      const p = exp.read(res);
      if (p !== null) this.fail("mismatch", cmd.op, call(), p);
    }
    if (exp.out && res instanceof bn.Tensor) checkTensor(this, cmd, exp.out, res, call);
    else if (exp.out && exp.throws !== true) this.fail("mismatch", cmd.op, call(), `expected a Tensor, got ${fmtVal(res)}`);
    if (exp.ternary) {
      if (res instanceof bn.TernaryTensor) checkTernary(this, cmd, exp.ternary, res, call);
      else this.fail("mismatch", cmd.op, call(), `expected a TernaryTensor, got ${fmtVal(res)}`);
    }
    checkUnchanged(this, cmd, snaps, false, call);
    if (cmd.transient && res instanceof bn.Tensor) {
      this.pool.splice(this.pool.indexOf(res), 1);
      res.dispose();
    }
  }

  // ---- the run -------------------------------------------------------------------------------

  run(): FuzzSummary {
    const t0 = performance.now();
    const tag = `fuzz:${this.opts.seed}`;
    bn.memory.collect(); // garbage from before the run is not ours
    const live0 = bn.memory.stats().liveTensors;
    bn.memory.withTag(tag, () => {
      for (this.step = 0; this.step < this.opts.steps; this.step++) {
        this.runStep();
        this.s.steps++;
        if (this.opts.progress && (this.step + 1) % this.opts.progress === 0) {
          this.opts.log?.(`  step ${this.step + 1}: ${this.s.ok} ok, ${this.s.threw} threw, ${this.s.failureCount} failures, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        }
      }
      for (const t of this.pool) t.dispose();
      for (const w of this.tpool) w.dispose();
      this.pool.length = 0;
      this.tpool.length = 0;
    });
    const left = bn.memory.liveAllocations().filter((a) => a.tag === tag);
    this.s.leakedAllocations = left.length;
    this.s.liveTensorsDelta = bn.memory.stats().liveTensors - live0;
    if (left.length > 0) this.fail("leak-end", "end", "liveAllocations()", `${left.length} allocation(s) of this run still live, e.g. ${JSON.stringify(left.slice(0, 3))}`);
    if (this.s.liveTensorsDelta !== 0) this.fail("leak-end", "end", "memory.stats()", `liveTensors ${live0} -> ${live0 + this.s.liveTensorsDelta} after disposing everything`);
    this.s.ms = performance.now() - t0;
    return this.s;
  }
}

/** Runs `steps` random calls from `seed`. */
export function runFuzz(opts: FuzzOptions): FuzzSummary {
  return new Fuzzer(opts).run();
}

/** A multi-line report of a run. */
export function formatSummary(s: FuzzSummary): string {
  const errs = Object.entries(s.errors)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  const lines = [
    `seed ${s.seed}: ${s.steps} steps in ${(s.ms / 1000).toFixed(1)} s`,
    `  calls: ${s.ok} succeeded, ${s.threw} threw (${errs || "none"})`,
    `  reference comparisons: ${s.comparisons} calls, ${s.elements} elements; max error ${s.maxErrRatio.toFixed(3)} x tolerance (${s.maxErrAt}); max relative error f32 ${s.maxRelErr.f32!.toExponential(2)}, f16 ${s.maxRelErr.f16!.toExponential(2)}, bf16 ${s.maxRelErr.bf16!.toExponential(2)}`,
    `  not modeled: ${s.unmodeled} calls; in-place ops on overlapping (expanded) targets: ${s.inplaceOnOverlap}`,
    `  live allocations left by the run: ${s.leakedAllocations}; liveTensors change: ${s.liveTensorsDelta}`,
    `  failures: ${s.failureCount}${s.failureCount ? ` (${Object.entries(s.failuresByKind).map(([k, v]) => `${k} ${v}`).join(", ")})` : ""}`,
  ];
  for (const [id, n] of Object.entries(s.known)) lines.push(`  known library bug "${id}": ${n} hit(s), e.g. ${s.knownExamples[id]}`);
  for (const f of s.failures) lines.push(`    step ${f.step} [${f.kind}] ${f.call}\n      ${f.detail}`);
  return lines.join("\n");
}
