/**
 * Every failure of bitnet-bun is a {@link BitNetError}. The subclass says what kind of failure it
 * is; the message names the operation and the shapes or dtypes involved.
 * @module
 */

/** Base class of every error thrown by bitnet-bun. */
export class BitNetError extends Error {
  /** The operation that failed, e.g. `"reshape"`. */
  readonly op: string;
  constructor(op: string, message: string) {
    super(`${op}: ${message}`);
    this.op = op;
    this.name = new.target.name;
  }
}

/** Shapes that do not fit: wrong size, axis out of range, bad dimensions, non-broadcastable. */
export class ShapeError extends BitNetError {}
/** A dtype an operation does not accept, or an unknown dtype name. */
export class DTypeError extends BitNetError {}
/** A device that is absent, unsupported, or mixed with another without `to()`. */
export class DeviceError extends BitNetError {}
/** The memory limit (`memory.setLimit`) or the system refused an allocation. */
export class OutOfMemoryError extends BitNetError {}
/** A tensor was used after `dispose()`. */
export class DisposedTensorError extends BitNetError {}
/** Singular, not positive definite, or no convergence. */
export class LinAlgError extends BitNetError {}
/** A malformed file or buffer (GGUF, .npy, packed formats). */
export class FormatError extends BitNetError {}
/** An argument value that is not a shape, dtype or device problem: a zero step, a bad seed. */
export class ValueError extends BitNetError {}
/** The native engine failed or could not be loaded. */
export class NativeError extends BitNetError {}
/**
 * Autograd misuse: `backward()` on a tensor that does not require grad, on a non-scalar without a
 * gradient, a second time through a graph whose saved tensors were released, or through a tensor
 * that was changed in place after it was saved; an in-place op on a tensor that requires grad.
 */
export class AutogradError extends BitNetError {}

/** Formats a shape like NumPy: `[2, 3]`. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/**
 * Any argument as it can appear in an error message: strings quoted, BigInts with their `n`,
 * symbols by their description, arrays and plain objects as JSON (BigInts inside shown too), and
 * never a throw (JSON.stringify fails on BigInts and cycles; template strings on symbols).
 */
export function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "bigint") return `${v}n`;
  if (typeof v === "symbol" || typeof v === "function" || v === undefined) return String(v);
  if (v === null || typeof v !== "object") return String(v);
  try {
    return JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? `${x}n` : typeof x === "symbol" ? String(x) : x)) ?? Object.prototype.toString.call(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}
