/**
 * Reductions: sum mean prod min max argmin argmax std var logsumexp, and cumsum. NumPy semantics
 * (PyTorch names where NumPy has none); each is a function (`bn.sum(t, opts)`) and a method
 * (`t.sum(opts)`).
 *
 * Output dtypes:
 *
 * | op                               | bool, i8, i16, i32 | u8, u16, u32 | f16  | bf16 | f32 |
 * | -------------------------------- | ------------------ | ------------ | ---- | ---- | --- |
 * | sum, prod, cumsum                | i32                | u32          | f16  | bf16 | f32 |
 * | mean, var, std, logsumexp        | f32                | f32          | f16  | bf16 | f32 |
 * | min, max                         | input dtype        | input dtype  | f16  | bf16 | f32 |
 * | argmin, argmax                   | i32                | i32          | i32  | i32  | i32 |
 *
 * NumPy gives 64-bit integers for integer sums and products; this library has none, so they
 * wrap in 32 bits (two's complement), like `astype("i32")` of NumPy's answer.
 *
 * Accumulation: f16 and bf16 are widened to f32 on load; float sums add blocks of 16 elements per
 * lane in f32 and the blocks in f64 (at least as accurate as NumPy's pairwise sum), means divide
 * that f64 sum, `prod` multiplies in f64, `var`/`std` are two-pass in f64, `logsumexp` is
 * max-shifted with the sum of exponentials in f64, `cumsum` of floats runs in f64. Each result is
 * rounded once to the output dtype. Results never depend on the thread count or the SIMD level.
 *
 * Empty reductions give the identity: sum 0, prod 1, mean/var/std NaN, logsumexp -Infinity;
 * min/max/argmin/argmax of nothing throw a {@link ShapeError}. `var`/`std` with `ddof >= n` give
 * NaN (NumPy gives inf or NaN with a warning). NaN propagates through sum, mean, prod, min, max,
 * var, std and logsumexp; argmin/argmax count NaN as the extreme (the first NaN wins, as NumPy).
 * @module
 */
import { type DTypeInfo, dtypeInfo } from "../dtype.ts";
import { ShapeError, ValueError, fmtShape, show } from "../errors.ts";
import { check, putLayout, sym } from "../native.ts";
import { contiguousStrides } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import { record } from "../autograd/graph.ts";

/** Options of the reductions. */
export interface ReduceOptions {
  /**
   * Axis or axes to reduce (negative counts from the end). Omitted or `null`: every axis. `[]`
   * reduces nothing (each output is its single input element, converted to the output dtype).
   */
  axis?: number | readonly number[] | null;
  /** Keep the reduced axes as size 1, so the result broadcasts against the input. Default false. */
  keepdims?: boolean;
}

/** Options of {@link var_} and {@link std}. */
export interface VarOptions extends ReduceOptions {
  /** Delta degrees of freedom: the divisor is `n - ddof`. Default 0 (NumPy); 1 gives the sample variance. */
  ddof?: number;
}

/** Options of {@link argmin} and {@link argmax}: one axis, or none for the flattened tensor. */
export interface ArgOptions {
  /** The axis to search (negative counts from the end). Omitted or `null`: the flattened tensor. */
  axis?: number | null;
  /** Keep the reduced axes as size 1. Default false. */
  keepdims?: boolean;
}

/** Codes of args.ReduceOp (zig/cpu/args.zig). */
const OP = { sum: 0, mean: 1, prod: 2, min: 3, max: 4, argmin: 5, argmax: 6, var: 7, std: 8, logsumexp: 9 } as const;
type OpName = keyof typeof OP;

const F32 = dtypeInfo("f32");
const I32 = dtypeInfo("i32");
const U32 = dtypeInfo("u32");

/** Output dtype of a reduction (the table at the top of this file). */
function outDType(op: OpName | "cumsum", d: DTypeInfo): DTypeInfo {
  switch (op) {
    case "sum":
    case "prod":
    case "cumsum":
      return d.isFloat ? d : d.name.startsWith("u") ? U32 : I32;
    case "mean":
    case "var":
    case "std":
    case "logsumexp":
      return d.isFloat ? d : F32;
    case "min":
    case "max":
      return d;
    case "argmin":
    case "argmax":
      return I32;
  }
}

const describe = (t: Tensor) => `${t._dt.name} ${fmtShape(t._shape)}`;

function checkTensor(t: unknown, op: string): asserts t is Tensor {
  if (!(t instanceof Tensor)) throw new ValueError(op, `expects a Tensor, got ${t === null ? "null" : typeof t}`);
  t._live(op);
}

/** One axis, normalised; 0-d tensors accept 0 and -1 (as NumPy and PyTorch do). */
function oneAxis(a: unknown, t: Tensor, op: string): number {
  const nd = t._shape.length;
  const n = Math.max(nd, 1);
  if (typeof a !== "number" || !Number.isInteger(a)) {
    throw new ShapeError(op, `axis must be an integer, got ${typeof a === "number" ? a : show(a)} (${describe(t)})`);
  }
  if (a < -n || a >= n) throw new ShapeError(op, `axis ${a} is out of range for a tensor of ${nd} dimension${nd === 1 ? "" : "s"} (${describe(t)})`);
  return a < 0 ? a + n : a;
}

/** The reduced axes, ascending and unique (the logical order argmin/argmax count in). */
function resolveAxes(axis: unknown, t: Tensor, op: string, single: boolean): number[] {
  const nd = t._shape.length;
  if (axis === undefined || axis === null) return [...Array(nd).keys()];
  if (single && typeof axis !== "number") throw new ShapeError(op, `axis must be a single integer or null, got ${Array.isArray(axis) ? `[${axis.join(", ")}]` : typeof axis} (${describe(t)})`);
  const list: unknown[] = typeof axis === "number" ? [axis] : Array.isArray(axis) ? axis : [axis];
  if (typeof axis !== "number" && !Array.isArray(axis)) oneAxis(axis, t, op); // throws with the type
  const seen = new Set<number>();
  for (const a of list) {
    const x = oneAxis(a, t, op);
    if (seen.has(x)) throw new ShapeError(op, `axis ${x} repeated in [${list.join(", ")}] (${describe(t)})`);
    seen.add(x);
  }
  if (nd === 0) return [];
  return [...seen].sort((p, q) => p - q);
}

interface Opts {
  axis: unknown;
  keepdims: boolean;
  ddof: number;
}

function readOpts(opts: unknown, op: string, allowDdof: boolean): Opts {
  if (opts === undefined || opts === null) return { axis: undefined, keepdims: false, ddof: 0 };
  if (typeof opts !== "object" || Array.isArray(opts)) {
    throw new ValueError(op, `options must be an object like { axis, keepdims }, got ${Array.isArray(opts) ? "an array" : typeof opts}`);
  }
  const o = opts as { axis?: unknown; keepdims?: unknown; ddof?: unknown };
  const keepdims = o.keepdims ?? false;
  if (typeof keepdims !== "boolean") throw new ValueError(op, `keepdims must be a boolean, got ${typeof keepdims}`);
  let ddof = 0;
  if (o.ddof !== undefined) {
    if (!allowDdof) throw new ValueError(op, `ddof applies to var and std only`);
    if (typeof o.ddof !== "number" || !Number.isFinite(o.ddof)) throw new ValueError(op, `ddof must be a finite number, got ${String(o.ddof)}`);
    ddof = o.ddof;
  }
  return { axis: o.axis, keepdims, ddof };
}

function reduce(op: OpName, t: Tensor, opts: unknown): Tensor {
  checkTensor(t, op);
  const single = op === "argmin" || op === "argmax";
  const o = readOpts(opts, op, op === "var" || op === "std");
  const nd = t._shape.length;
  const red = resolveAxes(o.axis, t, op, single);
  const isRed = new Array<boolean>(nd).fill(false);
  for (const a of red) isRed[a] = true;
  const kept: number[] = [];
  for (let i = 0; i < nd; i++) if (!isRed[i]) kept.push(i);
  let nRed = 1;
  for (const a of red) nRed *= t._shape[a]!;
  if (nRed === 0 && (op === "min" || op === "max" || single)) {
    throw new ShapeError(op, `zero-size array to reduction operation ${op} which has no identity (${describe(t)}, axis ${o.axis ?? "all"})`);
  }
  const outShape = o.keepdims ? t._shape.map((d, i) => (isRed[i] ? 1 : d)) : kept.map((a) => t._shape[a]!);
  const odt = outDType(op, t._dt);
  const out = Tensor._alloc(outShape, odt, t._s!.device, op);
  try {
    if (out._size > 0) {
      const ost = contiguousStrides(outShape);
      const st = t._st();
      const order = [...kept, ...red];
      const s0 = order.map((a, i) => (i < kept.length ? (o.keepdims ? ost[a]! : ost[i]!) : 0));
      putLayout(
        order.map((a) => t._shape[a]!),
        s0,
        order.map((a) => st[a]!),
      );
      const dev = out._s!.device;
      if (dev !== 0) {
        // The same descriptor, reduced by the GPU kernel (zig/gpu/elementwise.cu; metal/kernels.metal).
        const inAddr = t._size > 0 ? t._addr(op) : out._addr(op);
        check(sym.bn_gpu_reduce(dev, OP[op], out._addr(op), odt.code, inAddr, t._dt.code, kept.length, nd, o.ddof), op, `${describe(t)} on ${out.device}`);
      } else {
        const outPtr = out._ptr(op);
        // An empty input is never read: any valid address will do.
        const inPtr = t._size > 0 ? t._ptr(op) : outPtr;
        check(sym.bn_reduce(OP[op], outPtr, odt.code, inPtr, t._dt.code, kept.length, nd, o.ddof), op, describe(t));
      }
    }
  } catch (e) {
    out.dispose();
    throw e;
  }
  return single ? out : record(op, [t], out, { red, keepdims: o.keepdims, ddof: o.ddof, n: nRed });
}

/**
 * Sum of elements over `axis` (all axes by default). Bool and signed integers give i32, unsigned
 * integers u32 (both wrap in 32 bits; NumPy would give 64-bit integers); floats keep their dtype,
 * accumulated in f32/f64 (pairwise-or-better accuracy). The sum of nothing is 0.
 */
export function sum(t: Tensor, opts?: ReduceOptions): Tensor {
  return reduce("sum", t, opts);
}

/** Arithmetic mean over `axis`. Integers and bool give f32; floats keep their dtype (computed in f64). Empty: NaN. */
export function mean(t: Tensor, opts?: ReduceOptions): Tensor {
  return reduce("mean", t, opts);
}

/**
 * Product of elements over `axis`. Output dtypes as {@link sum} (integers wrap in 32 bits);
 * floats multiply in f64 and round once. The product of nothing is 1.
 */
export function prod(t: Tensor, opts?: ReduceOptions): Tensor {
  return reduce("prod", t, opts);
}

/** Minimum over `axis`, in the input dtype. NaN propagates. Throws ShapeError for an empty reduction. */
export function min(t: Tensor, opts?: ReduceOptions): Tensor {
  return reduce("min", t, opts);
}

/** Maximum over `axis`, in the input dtype. NaN propagates. Throws ShapeError for an empty reduction. */
export function max(t: Tensor, opts?: ReduceOptions): Tensor {
  return reduce("max", t, opts);
}

/**
 * Index (i32) of the minimum along one axis, or into the flattened tensor (row-major) when no
 * axis is given. The first occurrence wins; NaN counts as the minimum (the first NaN wins), as in
 * NumPy. Throws ShapeError for an empty reduction.
 */
export function argmin(t: Tensor, opts?: ArgOptions): Tensor {
  return reduce("argmin", t, opts);
}

/** Index (i32) of the maximum; the rules of {@link argmin}. */
export function argmax(t: Tensor, opts?: ArgOptions): Tensor {
  return reduce("argmax", t, opts);
}

/**
 * Variance over `axis`: mean((x - mean(x))²) × n / (n - ddof), two-pass in f64. Integers and
 * bool give f32; floats keep their dtype. `ddof >= n` (and an empty reduction) gives NaN.
 * Exported as `var` too (`bn.var(t)`, `t.var()`).
 */
export function var_(t: Tensor, opts?: VarOptions): Tensor {
  return reduce("var", t, opts);
}
export { var_ as var };

/** Standard deviation: the square root of {@link var_} (same options and dtypes). */
export function std(t: Tensor, opts?: VarOptions): Tensor {
  return reduce("std", t, opts);
}

/**
 * log(sum(exp(x))) over `axis`, computed stably (shifted by the maximum). Integers and bool give
 * f32; floats keep their dtype. Empty or all -Infinity: -Infinity; any +Infinity: +Infinity.
 */
export function logsumexp(t: Tensor, opts?: ReduceOptions): Tensor {
  return reduce("logsumexp", t, opts);
}

/**
 * Inclusive cumulative sum along `axis`; without an axis, of the flattened tensor (row-major,
 * giving a 1-d result), as NumPy. Output dtypes as {@link sum} (integers wrap in 32 bits); floats
 * accumulate in f64 and each element is rounded once.
 */
export function cumsum(t: Tensor, axis?: number | null): Tensor {
  const op = "cumsum";
  checkTensor(t, op);
  let src = t;
  let tmp: Tensor | null = null;
  let ax = 0;
  if (axis === undefined || axis === null) {
    if (t._shape.length !== 1) src = tmp = t.reshape([-1]);
  } else {
    ax = oneAxis(axis, t, op);
    if (t._shape.length === 0) src = tmp = t.reshape([1]);
  }
  try {
    const nd = src._shape.length;
    const odt = outDType(op, src._dt);
    const out = Tensor._alloc(src._shape.slice(), odt, src._s!.device, op);
    try {
      if (out._size > 0) {
        const order = [...Array(nd).keys()].filter((a) => a !== ax);
        order.push(ax);
        const ost = contiguousStrides(src._shape);
        const st = src._st();
        putLayout(
          order.map((a) => src._shape[a]!),
          order.map((a) => ost[a]!),
          order.map((a) => st[a]!),
        );
        check(sym.bn_cumsum(out._ptr(op), odt.code, src._ptr(op), src._dt.code, nd), op, describe(t));
      }
    } catch (e) {
      out.dispose();
      throw e;
    }
    return record(op, [t], out, { axis: src === t ? ax : null });
  } finally {
    tmp?.dispose();
  }
}

// ---- methods ------------------------------------------------------------------------------------

declare module "../tensor.ts" {
  interface Tensor {
    /** {@link sum}: sum over `axis` (all by default). */
    sum(opts?: ReduceOptions): Tensor;
    /** {@link mean}: arithmetic mean over `axis`. */
    mean(opts?: ReduceOptions): Tensor;
    /** {@link prod}: product over `axis`. */
    prod(opts?: ReduceOptions): Tensor;
    /** {@link min}: minimum over `axis`. */
    min(opts?: ReduceOptions): Tensor;
    /** {@link max}: maximum over `axis`. */
    max(opts?: ReduceOptions): Tensor;
    /** {@link argmin}: index of the minimum along one axis, or of the flattened tensor. */
    argmin(opts?: ArgOptions): Tensor;
    /** {@link argmax}: index of the maximum along one axis, or of the flattened tensor. */
    argmax(opts?: ArgOptions): Tensor;
    /** {@link var_}: variance over `axis` (`ddof` default 0). */
    var(opts?: VarOptions): Tensor;
    /** {@link std}: standard deviation over `axis` (`ddof` default 0). */
    std(opts?: VarOptions): Tensor;
    /** {@link logsumexp}: log(sum(exp(x))) over `axis`, computed stably. */
    logsumexp(opts?: ReduceOptions): Tensor;
    /** {@link cumsum}: inclusive cumulative sum along `axis` (flattened when omitted). */
    cumsum(axis?: number | null): Tensor;
  }
}

const P = Tensor.prototype;
P.sum = function (this: Tensor, opts?: ReduceOptions) {
  return sum(this, opts);
};
P.mean = function (this: Tensor, opts?: ReduceOptions) {
  return mean(this, opts);
};
P.prod = function (this: Tensor, opts?: ReduceOptions) {
  return prod(this, opts);
};
P.min = function (this: Tensor, opts?: ReduceOptions) {
  return min(this, opts);
};
P.max = function (this: Tensor, opts?: ReduceOptions) {
  return max(this, opts);
};
P.argmin = function (this: Tensor, opts?: ArgOptions) {
  return argmin(this, opts);
};
P.argmax = function (this: Tensor, opts?: ArgOptions) {
  return argmax(this, opts);
};
P.var = function (this: Tensor, opts?: VarOptions) {
  return var_(this, opts);
};
P.std = function (this: Tensor, opts?: VarOptions) {
  return std(this, opts);
};
P.logsumexp = function (this: Tensor, opts?: ReduceOptions) {
  return logsumexp(this, opts);
};
P.cumsum = function (this: Tensor, axis?: number | null) {
  return cumsum(this, axis);
};
