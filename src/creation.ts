/**
 * Creating tensors: from JS data, filled, ranges, identity, and seeded random numbers.
 * Default dtype is f32 everywhere (API.md); each function makes one allocation and one native call.
 * @module
 */
import { DTypeCode } from "./abi.gen.ts";
import { type DType, type DTypeInfo, dtypeInfo } from "./dtype.ts";
import { DTypeError, ShapeError, ValueError, fmtShape, show } from "./errors.ts";
import { deviceIndex } from "./memory.ts";
import { STAGE_LEN, check, putLayout, stage, stagePtr, sym } from "./native.ts";
import { checkShape, sizeOf } from "./shape.ts";
import { Tensor } from "./tensor.ts";
import { copyBytes } from "./tensor_device.ts";

/** Options of the creation functions. */
export interface CreateOptions {
  /** Element type (default "f32"; `tensor()` infers from a TypedArray or booleans). */
  dtype?: DType;
  /** Device string (default "cpu"). */
  device?: string;
  /** Make the new tensor a leaf that requires grad (float dtypes only; see `Tensor.requiresGrad`). */
  requiresGrad?: boolean;
}

/** Options of `bn.tensor`. */
export interface TensorOptions extends CreateOptions {
  /** Shape to give the data (its size must match the data's element count). */
  shape?: readonly number[];
}

/** Nested arrays of numbers or booleans. */
export type NestedInput = number | boolean | readonly NestedInput[];

type AnyTyped =
  | Float32Array
  | Float64Array
  | Float16Array
  | Int8Array
  | Int16Array
  | Int32Array
  | Uint8Array
  | Uint8ClampedArray
  | Uint16Array
  | Uint32Array;

function resolve(op: string, opts: CreateOptions | undefined, fallback: DType = "f32"): { dt: DTypeInfo; dev: number } {
  return { dt: dtypeInfo(opts?.dtype ?? fallback, op), dev: deviceIndex(opts?.device, op) };
}

function alloc(op: string, shapeIn: unknown, opts: CreateOptions | undefined, zero = false): Tensor {
  const shape = checkShape(shapeIn, op);
  const { dt, dev } = resolve(op, opts);
  if (opts?.requiresGrad && !dt.isFloat) throw new DTypeError(op, `requiresGrad needs a float dtype, got ${dt.name}`);
  const t = Tensor._alloc(shape, dt, dev, op, zero);
  t._rg = opts?.requiresGrad === true;
  return t;
}

/**
 * Runs `fill` on a fresh tensor, disposing it if the fill throws. A tensor on a GPU is filled on
 * the host and copied over.
 */
function filled(t: Tensor, op: string, fill: (ptr: number) => number): Tensor {
  if (t._size === 0) return t;
  try {
    if (t._live(op).device !== 0) {
      const host = Tensor._alloc(t._shape.slice(), t._dt, 0, op);
      try {
        check(fill(host._ptr(op)), op);
        copyBytes(t, host, op);
      } finally {
        host.dispose();
      }
    } else check(fill(t._ptr(op)), op);
  } catch (e) {
    t.dispose();
    throw e;
  }
  return t;
}

/** Uninitialised memory of the given shape (fastest; contents are whatever the pool had). */
export function empty(shape: readonly number[] | number, opts?: CreateOptions): Tensor {
  return alloc("empty", shape, opts);
}

/** A tensor of zeros. */
export function zeros(shape: readonly number[] | number, opts?: CreateOptions): Tensor {
  return alloc("zeros", shape, opts, true);
}

/** A tensor of ones. */
export function ones(shape: readonly number[] | number, opts?: CreateOptions): Tensor {
  return full(shape, 1, opts, "ones");
}

/** A tensor filled with `value` (converted to the dtype; booleans count as 0/1). */
export function full(shape: readonly number[] | number, value: number | boolean, opts?: CreateOptions, op = "full"): Tensor {
  const v = typeof value === "boolean" ? Number(value) : value;
  if (typeof v !== "number") throw new DTypeError(op, `fill value must be a number or boolean, got ${typeof value}`);
  const t = alloc(op, shape, opts);
  return filled(t, op, (p) => sym.bn_fill(p, t._dt.code, t._size, v));
}

const TYPED_DTYPE: [abstract new (...a: never[]) => unknown, DType | "f64"][] = [
  [Float32Array, "f32"],
  [Float64Array, "f64"],
  [Float16Array, "f16"],
  [Int8Array, "i8"],
  [Int16Array, "i16"],
  [Int32Array, "i32"],
  [Uint8Array, "u8"],
  [Uint8ClampedArray, "u8"],
  [Uint16Array, "u16"],
  [Uint32Array, "u32"],
];

function typedDType(x: unknown): DType | "f64" | undefined {
  for (const [C, d] of TYPED_DTYPE) if (x instanceof C) return d;
  return undefined;
}

/**
 * Shape and values of nested arrays (ShapeError for ragged input, DTypeError for non-numbers).
 * Values go to the mailbox's staging area when they fit (no temporary array), else to a new
 * Float64Array.
 */
function readNested(data: readonly NestedInput[], op: string): { shape: number[]; flat: Float64Array; allBool: boolean } {
  // Fast path: a flat array of numbers.
  const n = data.length;
  if (n <= STAGE_LEN) {
    let i = 0;
    for (; i < n; i++) {
      const v = data[i];
      if (typeof v !== "number") break;
      stage[i] = v;
    }
    if (i === n) return { shape: [n], flat: stage, allBool: false };
  }
  const shape: number[] = [];
  let probe: NestedInput = data;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    if (probe.length === 0) break;
    probe = probe[0]!;
  }
  const size = sizeOf(shape);
  const flat = size <= STAGE_LEN ? stage : new Float64Array(size);
  let pos = 0;
  let allBool = true;
  const walk = (x: NestedInput, axis: number, path: string): void => {
    if (axis === shape.length) {
      if (typeof x === "number") allBool = false;
      else if (typeof x !== "boolean") {
        throw Array.isArray(x)
          ? new ShapeError(op, `ragged nested arrays: element ${path} is an array, expected a scalar at depth ${axis} (shape so far ${fmtShape(shape)})`)
          : new DTypeError(op, `element ${path} is ${x === null ? "null" : typeof x}; expected a number or boolean`);
      }
      flat[pos++] = Number(x);
      return;
    }
    if (!Array.isArray(x) || x.length !== shape[axis]) {
      throw new ShapeError(op, `ragged nested arrays: element ${path || "[]"} has ${Array.isArray(x) ? `length ${x.length}` : "no length"}, expected ${shape[axis]} (shape ${fmtShape(shape)})`);
    }
    for (let i = 0; i < x.length; i++) walk(x[i]!, axis + 1, `${path}[${i}]`);
  };
  walk(data, 0, "");
  return { shape, flat, allBool: allBool && size > 0 };
}

/**
 * A tensor from a number, a boolean, nested arrays or a TypedArray (always copied).
 * dtype: `opts.dtype`, else the TypedArray's own type (Float64Array gives f32), else bool for
 * all-boolean data, else f32. `opts.shape` reshapes the data (sizes must match).
 */
export function tensor(data: NestedInput | AnyTyped, opts?: TensorOptions): Tensor {
  const op = "tensor";
  let src: AnyTyped | number; // a JS array, or the staging area's address
  let srcType: DType | "f64";
  let n: number;
  let shape: number[];
  let inferred: DType = "f32";
  if (Array.isArray(data)) {
    const r = readNested(data, op);
    n = sizeOf(r.shape);
    src = r.flat === stage ? stagePtr : r.flat;
    srcType = "f64";
    shape = r.shape;
    if (r.allBool) inferred = "bool";
  } else if (typeof data === "number" || typeof data === "boolean") {
    stage[0] = Number(data);
    src = stagePtr;
    srcType = "f64";
    n = 1;
    shape = [];
    if (typeof data === "boolean") inferred = "bool";
  } else {
    const td = typedDType(data);
    if (td === undefined) {
      if (typeof data === "bigint" || data instanceof BigInt64Array || data instanceof BigUint64Array) {
        throw new DTypeError(op, "BigInt data is not supported (no 64-bit integer dtypes); convert to numbers or Int32Array");
      }
      throw new DTypeError(op, `cannot make a tensor from ${data === null ? "null" : typeof data}`);
    }
    src = data as AnyTyped;
    srcType = td;
    n = src.length;
    shape = [n];
    if (td !== "f64") inferred = td;
  }
  if (opts?.shape !== undefined) {
    const want = checkShape(opts.shape, op);
    if (sizeOf(want) !== n) throw new ShapeError(op, `data has ${n} elements but shape ${fmtShape(want)} needs ${sizeOf(want)}`);
    shape = want;
  }
  const { dt, dev } = resolve(op, opts, inferred);
  if (opts?.requiresGrad && !dt.isFloat) throw new DTypeError(op, `requiresGrad needs a float dtype, got ${dt.name}`);
  const t = Tensor._alloc(shape, dt, dev, op);
  t._rg = opts?.requiresGrad === true;
  return filled(t, op, (p) => {
    putLayout([n], [1], [1]);
    return sym.bn_copy(p, dt.code, src, DTypeCode[srcType], 1);
  });
}

/** `[start, stop)` in steps of `step` (NumPy's arange); `arange(n)` is 0..n-1. */
export function arange(start: number, stop?: number, step?: number, opts?: CreateOptions): Tensor {
  const op = "arange";
  let a = start;
  let b = stop;
  if (b === undefined) {
    b = a;
    a = 0;
  }
  const s = step ?? 1;
  for (const [name, v] of [["start", a], ["stop", b], ["step", s]] as const) {
    if (typeof v !== "number" || !Number.isFinite(v)) throw new ValueError(op, `${name} must be a finite number, got ${String(v)}`);
  }
  if (s === 0) throw new ValueError(op, "step must not be zero");
  const n = Math.max(0, Math.ceil((b - a) / s));
  const t = alloc(op, [n], opts);
  return filled(t, op, (p) => sym.bn_range(p, t._dt.code, n, a, s, 0, 0));
}

/** `num` evenly spaced values from start to stop (stop included unless `endpoint: false`). */
export function linspace(start: number, stop: number, num: number, opts?: CreateOptions & { endpoint?: boolean }): Tensor {
  const op = "linspace";
  if (!Number.isInteger(num) || num < 0) throw new ShapeError(op, `num must be a non-negative integer, got ${String(num)}`);
  if (!Number.isFinite(start) || !Number.isFinite(stop)) throw new ValueError(op, `start and stop must be finite, got ${start}, ${stop}`);
  const endpoint = opts?.endpoint ?? true;
  const div = endpoint ? num - 1 : num;
  const step = div > 0 ? (stop - start) / div : 0;
  const t = alloc(op, [num], opts);
  return filled(t, op, (p) => sym.bn_range(p, t._dt.code, num, start, step, endpoint && num > 1 ? 1 : 0, stop));
}

/** Identity-like matrix: `n` x `m` (default n) with ones on diagonal `k` (default 0). */
export function eye(n: number, m?: number, opts?: CreateOptions & { k?: number }): Tensor {
  const op = "eye";
  const cols = m ?? n;
  const k = opts?.k ?? 0;
  if (!Number.isInteger(k)) throw new ValueError(op, `k must be an integer, got ${String(k)}`);
  const t = alloc(op, [n, cols], opts);
  return filled(t, op, (p) => sym.bn_eye(p, t._dt.code, n, cols, k));
}

// ------------------------------------------------------------------------------------------------
// Random numbers: Philox4x32-10, counter-based (zig/cpu/random.zig documents the exact mapping).
// With a seed, a draw is elements 0..n-1 of that seed's stream. Without one, draws continue a
// global stream (seeded by `manualSeed`, or randomly at load).
// ------------------------------------------------------------------------------------------------

let globalSeed = Math.floor(Math.random() * 2 ** 52);
let globalOffset = 0;

/** Seeds the global stream used by `rand`/`randn` calls without a seed. */
export function manualSeed(seed: number): void {
  checkSeed(seed, "manualSeed");
  globalSeed = seed;
  globalOffset = 0;
}

function checkSeed(seed: unknown, op: string): number {
  if (typeof seed !== "number" || !Number.isSafeInteger(seed) || seed < 0) {
    throw new ValueError(op, `seed must be an integer in [0, 2^53), got ${String(seed)}`);
  }
  return seed;
}

/** Options of `rand`. */
export interface RandOptions extends CreateOptions {
  seed?: number;
  /** Lower bound (default 0). */
  low?: number;
  /** Upper bound, excluded (default 1). */
  high?: number;
}

/** Options of `randn`. */
export interface RandnOptions extends CreateOptions {
  seed?: number;
  mean?: number;
  std?: number;
}

function random(op: string, shape: readonly number[] | number, opts: CreateOptions & { seed?: number } | undefined, dist: number, a: number, b: number): Tensor {
  const dt = dtypeInfo(opts?.dtype ?? "f32", op);
  if (!dt.isFloat) throw new DTypeError(op, `needs a float dtype (f32, f16, bf16), got ${dt.name}`);
  if (typeof a !== "number" || typeof b !== "number" || !Number.isFinite(a) || !Number.isFinite(b)) throw new ValueError(op, `parameters must be finite numbers, got ${show(a)}, ${show(b)}`);
  let seed: number;
  let offset = 0;
  if (opts?.seed !== undefined) seed = checkSeed(opts.seed, op);
  else {
    seed = globalSeed;
    offset = globalOffset;
  }
  const t = alloc(op, shape, opts);
  if (opts?.seed === undefined) globalOffset += t._size;
  const lo = seed % 2 ** 32;
  const hi = Math.floor(seed / 2 ** 32);
  return filled(t, op, (p) => sym.bn_random(p, dt.code, t._size, dist, lo, hi, offset, a, b));
}

/** Uniform numbers in [low, high) (default [0, 1)); reproducible for a given seed on every platform. */
export function rand(shape: readonly number[] | number, opts?: RandOptions): Tensor {
  return random("rand", shape, opts, 0, opts?.low ?? 0, opts?.high ?? 1);
}

/** Normal numbers (default mean 0, std 1); reproducible for a given seed on every platform. */
export function randn(shape: readonly number[] | number, opts?: RandnOptions): Tensor {
  return random("randn", shape, opts, 1, opts?.mean ?? 0, opts?.std ?? 1);
}
