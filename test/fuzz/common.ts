/**
 * The API fuzzer's shared pieces (see fuzzer.ts): the seeded PRNG, the types of a command and of
 * what the model expects of it, the run's options and summary, and formatting of arguments.
 * @module
 */
import * as bn from "../../src/index.ts";
import type { DType, Tensor, TernaryTensor } from "../../src/index.ts";

// ================================================================================================
// PRNG (sfc32 seeded through splitmix32): reproducible for a seed in [0, 2^53).
// ================================================================================================

export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;
  constructor(seed: number) {
    let s = (seed % 4294967296) >>> 0;
    const hi = Math.floor(seed / 4294967296) >>> 0;
    const sm = () => {
      s = (s + 0x9e3779b9) | 0;
      let z = s ^ hi;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#a = sm();
    this.#b = sm();
    this.#c = sm();
    this.#d = sm();
    for (let i = 0; i < 12; i++) this.u32();
  }
  u32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    return this.u32() / 4294967296;
  }
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [xs[i], xs[j]] = [xs[j]!, xs[i]!];
    }
    return xs;
  }
}

// ================================================================================================
// Commands, snapshots, expectations
// ================================================================================================

/** An operand as it was before the call. */
export type Snap =
  | { kind: "tensor"; t: Tensor; disposed: boolean; shape: number[]; strides: number[]; dtype: DType; vals: Float64Array | null; contiguous: boolean }
  | { kind: "ternary"; w: TernaryTensor; disposed: boolean; shape: number[]; format: string; q: Float64Array | null; sc: Float64Array | null; packed: Float64Array | null }
  | { kind: "other"; v: unknown };

/** What the result of a successful call must look like. */
export interface RefOut {
  shape: number[];
  dtype: DType;
  /** Expected values, row-major (floats unrounded; the comparison rounds / tolerates). Omitted: not modeled. */
  vals?: Float64Array;
  /** 1 where an element is not modeled. */
  skip?: Uint8Array;
  /** Per-element magnitude of the accumulated terms (sum |terms|): adds 1e-5·mag to the tolerance. */
  mag?: Float64Array;
  /** Absolute tolerance floor (approximated functions). */
  atol?: number;
  /** Compare bit-for-bit (NaN equal to NaN): copies, views, integer results. */
  exact?: boolean;
  /** The result must be a view of this operand's storage. */
  viewOf?: Tensor;
  /** Values must lie in [lo, hi] (random numbers) rather than match. */
  range?: [number, number];
  /** Extra check of the result (returns a problem or null). */
  extra?: (r: unknown) => string | null;
  /** A worst-case bound rather than a rounding tolerance: left out of the max-error statistics. */
  bound?: boolean;
}
export interface Expect {
  throws: boolean | "maybe";
  cls?: string;
  out?: RefOut;
  /** A TernaryTensor result: checked by `checkTernary`. */
  ternary?: TernaryModel;
  /** For a read (toArray, item, String): the check of the returned value. */
  read?: (r: unknown) => string | null;
}
export interface TernaryModel {
  shape: number[];
  format: string;
  granularity: "tensor" | "channel" | "group" | "block";
  group: number;
  /** w in f32 (row-major) and the modeled scale per group, q per weight (NaN: near a rounding boundary). */
  q: Float64Array;
  scale: Float64Array;
  scaleShape: number[];
  /** 1 where a scale is not modeled (its group's f32 partial sums may overflow). */
  scaleSkip: Uint8Array;
}
export interface Command {
  op: string;
  args: unknown[];
  run: () => unknown;
  model: (s: Snap[]) => Expect;
  /** Build the description lazily (failures only). */
  desc: () => string;
  /** The in-place target (its new values are checked; it and its aliases may change). */
  inplace?: Tensor;
  /** Expected change of liveTensors on success, when the result's storages do not say it. */
  delta?: number;
  /** Dispose the result after the checks instead of keeping it (uninitialised memory from `empty`). */
  transient?: boolean;
  collect?: boolean;
}

export const err = (cls?: string): Expect => ({ throws: true, cls });
export const maybe = (cls?: string): Expect => ({ throws: "maybe", cls });

export function fmtVal(x: unknown): string {
  if (x instanceof bn.Tensor) return x.disposed ? `<disposed ${x.dtype}[${x.shape}]>` : `${x.dtype}[${x.shape}]${x.isContiguous() ? "" : `{st ${x.strides}}`}`;
  if (x instanceof bn.TernaryTensor) return x.disposed ? "<disposed TernaryTensor>" : `Ternary(${x.format},[${x.shape}],${x.granularity})`;
  if (typeof x === "number") return Object.is(x, -0) ? "-0" : String(x);
  if (typeof x === "function") return "<function>";
  if (x === undefined) return "undefined";
  if (typeof x === "bigint") return `${x}n`;
  if (typeof x === "symbol") return String(x);
  const replacer = (_k: string, v: unknown) =>
    typeof v === "number" && !Number.isFinite(v) ? String(v) : typeof v === "bigint" ? `${v}n` : typeof v === "symbol" ? String(v) : typeof v === "function" ? "<function>" : v === undefined ? "undefined" : v;
  try {
    return JSON.stringify(x, replacer) ?? String(x);
  } catch {
    return String(x);
  }
}
export const fmtArgs = (...xs: unknown[]) => xs.map(fmtVal).join(", ");

/** The first operand fault, in argument order: a disposed tensor, or a non-tensor where `junkCls` applies. */
export function operandFault(snaps: Snap[], junkCls: string, allowScalars = false): Expect | null {
  for (const s of snaps) {
    if (s.kind === "tensor" && s.disposed) return err("DisposedTensorError");
    if (s.kind === "ternary" && s.disposed) return err("DisposedTensorError");
    if (s.kind === "other" && !(allowScalars && (typeof s.v === "number" || typeof s.v === "boolean"))) return err(junkCls);
  }
  return null;
}
export type TSnap = Extract<Snap, { kind: "tensor" }>;
export const T = (s: Snap) => s as TSnap;

// ================================================================================================
// Options and summary of a run
// ================================================================================================

export interface FuzzOptions {
  seed: number;
  steps: number;
  /** Count the known library bugs (KNOWN_BUGS) as failures too. */
  strict?: boolean;
  /** Called with each step's call before it runs (replaying a failure, finding a hang). */
  trace?: (step: number, call: string) => void;
  /** Print progress every n steps (0: never). */
  progress?: number;
  log?: (line: string) => void;
}
export interface Failure {
  step: number;
  kind: string;
  op: string;
  call: string;
  detail: string;
}
export interface FuzzSummary {
  seed: number;
  steps: number;
  ok: number;
  threw: number;
  /** Thrown errors by class name (non-BitNetErrors are failures too). */
  errors: Record<string, number>;
  /** Errors that are not BitNetErrors, and how many of those are KNOWN_BUGS. */
  foreign: number;
  foreignKnown: number;
  /** Calls whose result was checked against the reference, and elements compared. */
  comparisons: number;
  elements: number;
  /** Largest |got - ref| / tolerance (<= 1 passes), and the largest relative error per float dtype. */
  maxErrRatio: number;
  /** Where the largest error was seen. */
  maxErrAt: string;
  maxRelErr: Record<string, number>;
  /** Calls by op. */
  byOp: Record<string, number>;
  /** Allocations tagged by this run still live at the end, and liveTensors end - start. */
  leakedAllocations: number;
  liveTensorsDelta: number;
  failures: Failure[];
  failureCount: number;
  failuresByKind: Record<string, number>;
  /** Hits of each KNOWN_BUGS entry (not failures unless strict), with the first call that hit it. */
  known: Record<string, number>;
  knownExamples: Record<string, string>;
  /** Calls the model could not decide (throw or not) or values it did not model. */
  unmodeled: number;
  /** In-place ops on a target with overlapping elements (expanded views): values not modeled. */
  inplaceOnOverlap: number;
  ms: number;
}
