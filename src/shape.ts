/**
 * Shape and stride arithmetic (no data is touched here). Strides are in elements.
 * @module
 */
import { ShapeError, fmtShape, show } from "./errors.ts";

/** Most dimensions a tensor may have (the engine's descriptor size). */
export const MAX_NDIM = 32;

/** Validates a user shape and returns a private copy. */
export function checkShape(shape: unknown, op: string): number[] {
  if (typeof shape === "number") shape = [shape];
  if (!Array.isArray(shape)) throw new ShapeError(op, `shape must be an array of non-negative integers, got ${String(shape)}`);
  const n = shape.length;
  if (n > MAX_NDIM) throw new ShapeError(op, `${n} dimensions requested; at most ${MAX_NDIM} are supported`);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const d = shape[i];
    if (typeof d !== "number" || !Number.isInteger(d) || d < 0 || d > Number.MAX_SAFE_INTEGER) {
      throw new ShapeError(op, `invalid dimension ${String(d)} at axis ${i} of shape [${shape.map(String).join(", ")}] (dimensions are non-negative integers)`);
    }
    out[i] = d;
  }
  return out;
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (let i = 0; i < shape.length; i++) n *= shape[i]!;
  return n;
}

/** Row-major (C order) strides of a shape. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const n = shape.length;
  const st = new Array<number>(n);
  let acc = 1;
  for (let i = n - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= Math.max(shape[i]!, 1);
  }
  return st;
}

/** Whether (shape, strides) walks memory in row-major order without gaps (size-1 axes ignored). */
export function isContiguousLayout(shape: readonly number[], strides: readonly number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const d = shape[i]!;
    if (d === 0) return true;
    if (d !== 1) {
      if (strides[i] !== expected) return false;
      expected *= d;
    }
  }
  return true;
}

/** Normalises a possibly negative axis for `ndim` axes (plus `extra` for insertion points). */
export function normAxis(axis: unknown, ndim: number, op: string, extra = 0): number {
  const n = ndim + extra;
  if (typeof axis !== "number" || !Number.isInteger(axis) || axis < -n || axis >= n) {
    throw new ShapeError(op, `axis ${String(axis)} is out of range for a tensor of ${ndim} dimension${ndim === 1 ? "" : "s"}${extra ? " (insertion)" : ""}`);
  }
  return axis < 0 ? axis + n : axis;
}

/** Resolves one `-1` in a reshape target against `size` elements. */
export function inferShape(target: readonly unknown[], size: number, from: readonly number[], op: string): number[] {
  if (!Array.isArray(target)) throw new ShapeError(op, `the target shape must be an array of integers, got ${show(target)}`);
  let infer = -1;
  let known = 1;
  const out = new Array<number>(target.length);
  if (target.length > MAX_NDIM) throw new ShapeError(op, `${target.length} dimensions requested; at most ${MAX_NDIM} are supported`);
  for (let i = 0; i < target.length; i++) {
    const d = target[i];
    if (d === -1 && infer < 0) {
      infer = i;
      out[i] = -1;
      continue;
    }
    if (typeof d !== "number" || !Number.isInteger(d) || d < 0) {
      throw new ShapeError(op, `invalid dimension ${show(d)} in target shape [${target.map(show).join(", ")}]`);
    }
    out[i] = d;
    known *= d;
  }
  if (infer >= 0) {
    if (known === 0 || size % known !== 0) {
      throw new ShapeError(op, `cannot reshape ${fmtShape(from)} (${size} elements) to [${target.map(show).join(", ")}]`);
    }
    out[infer] = size / known;
  } else if (known !== size) {
    throw new ShapeError(op, `cannot reshape ${fmtShape(from)} (${size} elements) to ${fmtShape(out)} (${known} elements)`);
  }
  return out;
}

/**
 * Strides that let a tensor of (shape, strides) be seen with `newShape` without copying, or
 * null when a copy is needed (NumPy's no-copy reshape: match runs of axes with equal products).
 */
export function reshapeStrides(shape: readonly number[], strides: readonly number[], newShape: readonly number[]): number[] | null {
  const size = sizeOf(shape);
  if (size === 0 || isContiguousLayout(shape, strides)) {
    // Keep the old strides' scale: a contiguous view may start anywhere.
    return contiguousStrides(newShape);
  }
  // Drop size-1 axes of the source.
  const os: number[] = [];
  const ost: number[] = [];
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] !== 1) {
      os.push(shape[i]!);
      ost.push(strides[i]!);
    }
  }
  const nst = new Array<number>(newShape.length).fill(0);
  let oi = 0;
  let ni = 0;
  const on = os.length;
  const nn = newShape.length;
  while (ni < nn && oi < on) {
    let np = newShape[ni]!;
    let op = os[oi]!;
    let nj = ni + 1;
    let oj = oi + 1;
    while (np !== op) {
      if (np < op) np *= newShape[nj++]!;
      else op *= os[oj++]!;
    }
    // The old axes oi..oj must be contiguous among themselves.
    for (let k = oi; k < oj - 1; k++) if (ost[k] !== os[k + 1]! * ost[k + 1]!) return null;
    // New strides for ni..nj, from the innermost.
    nst[nj - 1] = ost[oj - 1]!;
    for (let k = nj - 1; k > ni; k--) nst[k - 1] = nst[k]! * newShape[k]!;
    ni = nj;
    oi = oj;
  }
  // Trailing size-1 axes of the new shape.
  for (let k = ni; k < nn; k++) nst[k] = 1;
  return nst;
}

/** NumPy broadcasting of two shapes; throws ShapeError naming both. */
export function broadcastShapes(a: readonly number[], b: readonly number[], op: string): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(op, `shapes ${fmtShape(a)} and ${fmtShape(b)} do not broadcast (axis ${i - n}: ${da} vs ${db})`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides of a (shape, strides) tensor broadcast to `target` (0 on broadcast axes). */
export function broadcastStrides(shape: readonly number[], strides: readonly number[], target: readonly number[], op: string): number[] {
  const n = target.length;
  const off = n - shape.length;
  if (off < 0) throw new ShapeError(op, `cannot broadcast ${fmtShape(shape)} to ${fmtShape(target)} (fewer dimensions)`);
  const out = new Array<number>(n).fill(0);
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i]!;
    const t = target[off + i]!;
    if (d === t) out[off + i] = d === 1 ? 0 : strides[i]!;
    else if (d === 1) out[off + i] = 0;
    else throw new ShapeError(op, `cannot broadcast ${fmtShape(shape)} to ${fmtShape(target)} (axis ${i}: ${d} vs ${t})`);
  }
  return out;
}
