/**
 * Moving tensor bytes between JS buffers and engine memory for the file formats (internal).
 * One `bn_copy` each way; OS calls (reading and writing files) stay in TypeScript.
 * @module
 */
import { DTypeCode } from "../abi.gen.ts";
import { type DTypeInfo } from "../dtype.ts";
import { FormatError } from "../errors.ts";
import { check, putLayout, sym } from "../native.ts";
import { contiguousStrides, sizeOf } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import { readFileSync } from "node:fs";

/** The bytes of a path (read whole) or of a buffer given directly (not copied). */
export function inputBytes(pathOrBytes: unknown, op: string): Uint8Array {
  if (typeof pathOrBytes === "string") {
    let b: Buffer;
    try {
      b = readFileSync(pathOrBytes);
    } catch (e) {
      throw new FormatError(op, `cannot read ${pathOrBytes}: ${(e as Error).message}`);
    }
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  }
  if (pathOrBytes instanceof Uint8Array) return pathOrBytes;
  if (pathOrBytes instanceof ArrayBuffer) return new Uint8Array(pathOrBytes);
  if (ArrayBuffer.isView(pathOrBytes)) return new Uint8Array(pathOrBytes.buffer, pathOrBytes.byteOffset, pathOrBytes.byteLength);
  throw new FormatError(op, `expects a file path, a Uint8Array or an ArrayBuffer, got ${pathOrBytes === null ? "null" : typeof pathOrBytes}`);
}

/**
 * A new tensor of `shape` and `dt` holding `bytes` (row-major), or, with `srcStrides` (elements),
 * the elements read from `bytes` at those strides (e.g. Fortran order). The caller has checked
 * that `bytes` holds every element.
 */
export function tensorFromBytes(bytes: Uint8Array, shape: number[], dt: DTypeInfo, device: number, op: string, srcStrides?: number[]): Tensor {
  const t = Tensor._alloc(shape, dt, device, op);
  const n = sizeOf(shape);
  if (n === 0) return t;
  try {
    if (srcStrides === undefined) {
      putLayout([n * dt.size], [1], [1]);
      check(sym.bn_copy(t._ptr(op), DTypeCode.u8, bytes, DTypeCode.u8, 1), op);
    } else {
      // Typed strided reads need the element alignment: copy the bytes first if they lack it.
      const src = bytes.byteOffset % dt.size === 0 ? bytes : bytes.slice();
      putLayout(shape, contiguousStrides(shape), srcStrides);
      check(sym.bn_copy(t._ptr(op), dt.code, src, dt.code, shape.length), op);
    }
  } catch (e) {
    t.dispose();
    throw e;
  }
  return t;
}

/** The elements of `t` in row-major order, as bytes (any strides). */
export function tensorBytes(t: Tensor, op: string): Uint8Array {
  const out = new Uint8Array(t._size * t._dt.size);
  if (t._size === 0) return out;
  putLayout(t._shape, contiguousStrides(t._shape), t._st());
  check(sym.bn_copy(out, t._dt.code, t._ptr(op), t._dt.code, t._shape.length), op);
  return out;
}
