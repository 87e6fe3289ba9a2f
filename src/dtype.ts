/**
 * Element types: names, sizes, the TypedArray that `t.data` returns for each, and promotion.
 * @module
 */
import { DTypeCode } from "./abi.gen.ts";
import { DTypeError, show } from "./errors.ts";

/** The tensor element types. */
export type DType = "f32" | "f16" | "bf16" | "i8" | "i16" | "i32" | "u8" | "u16" | "u32" | "bool";

/** Every dtype, in code order. */
export const DTYPES: readonly DType[] = ["f32", "f16", "bf16", "i8", "i16", "i32", "u8", "u16", "u32", "bool"];

/** The TypedArray `t.data` returns: f16 as Float16Array, bf16 as raw Uint16Array bits, bool as Uint8Array of 0/1. */
export type DataArray =
  | Float32Array
  | Float16Array
  | Uint16Array
  | Int8Array
  | Int16Array
  | Int32Array
  | Uint8Array
  | Uint32Array;

type TypedCtor = { new (buffer: ArrayBufferLike, byteOffset?: number, length?: number): DataArray; BYTES_PER_ELEMENT: number };

/** Per-dtype facts, indexed by dtype code. */
export interface DTypeInfo {
  readonly name: DType;
  readonly code: number;
  readonly size: number;
  readonly isFloat: boolean;
  readonly isSigned: boolean;
  readonly array: TypedCtor;
}

const ctor = (c: unknown) => c as TypedCtor;

const INFO: Record<DType, DTypeInfo> = {
  f32: { name: "f32", code: DTypeCode.f32, size: 4, isFloat: true, isSigned: true, array: ctor(Float32Array) },
  f16: { name: "f16", code: DTypeCode.f16, size: 2, isFloat: true, isSigned: true, array: ctor(Float16Array) },
  bf16: { name: "bf16", code: DTypeCode.bf16, size: 2, isFloat: true, isSigned: true, array: ctor(Uint16Array) },
  i8: { name: "i8", code: DTypeCode.i8, size: 1, isFloat: false, isSigned: true, array: ctor(Int8Array) },
  i16: { name: "i16", code: DTypeCode.i16, size: 2, isFloat: false, isSigned: true, array: ctor(Int16Array) },
  i32: { name: "i32", code: DTypeCode.i32, size: 4, isFloat: false, isSigned: true, array: ctor(Int32Array) },
  u8: { name: "u8", code: DTypeCode.u8, size: 1, isFloat: false, isSigned: false, array: ctor(Uint8Array) },
  u16: { name: "u16", code: DTypeCode.u16, size: 2, isFloat: false, isSigned: false, array: ctor(Uint16Array) },
  u32: { name: "u32", code: DTypeCode.u32, size: 4, isFloat: false, isSigned: false, array: ctor(Uint32Array) },
  bool: { name: "bool", code: DTypeCode.bool, size: 1, isFloat: false, isSigned: false, array: ctor(Uint8Array) },
};

/** Facts about a dtype; throws DTypeError (naming `op`) for anything else. */
export function dtypeInfo(d: unknown, op = "dtype"): DTypeInfo {
  const info = typeof d === "string" ? INFO[d as DType] : undefined;
  if (info === undefined || !Object.hasOwn(INFO, d as string)) {
    throw new DTypeError(op, `unknown dtype ${show(d)} (expected one of ${DTYPES.join(", ")})`);
  }
  return info;
}

/** Whether a string names a dtype. */
export function isDType(d: unknown): d is DType {
  return typeof d === "string" && Object.hasOwn(INFO, d);
}

// Type promotion (tensor with tensor): NumPy's table, restricted to the dtypes we have.

const INT_RANK: Partial<Record<DType, { bits: number; signed: boolean }>> = {
  bool: { bits: 1, signed: false },
  i8: { bits: 8, signed: true },
  i16: { bits: 16, signed: true },
  i32: { bits: 32, signed: true },
  u8: { bits: 8, signed: false },
  u16: { bits: 16, signed: false },
  u32: { bits: 32, signed: false },
};

function intOf(bits: number, signed: boolean): DType {
  if (signed) return bits <= 8 ? "i8" : bits <= 16 ? "i16" : "i32";
  return bits <= 1 ? "bool" : bits <= 8 ? "u8" : bits <= 16 ? "u16" : "u32";
}

/**
 * The dtype of `a op b` for two tensors: NumPy's promotion table restricted to our dtypes.
 * - bool with anything gives the other type.
 * - two integers of the same signedness: the wider. Signed with unsigned: the smallest signed
 *   type wider than the unsigned one (u8+i8 -> i16, u16+i16 -> i32); u32 with a signed type
 *   gives i32 (NumPy would give i64, which this library does not have: documented).
 * - a float with an integer or bool: the float. f16 with bf16: f32. Otherwise the wider float.
 */
export function promoteTypes(a: DType, b: DType): DType {
  if (a === b) return a;
  const fa = INFO[a].isFloat;
  const fb = INFO[b].isFloat;
  if (fa && fb) {
    if (a === "f32" || b === "f32") return "f32";
    return "f32"; // f16 with bf16
  }
  if (fa) return a;
  if (fb) return b;
  const ra = INT_RANK[a]!;
  const rb = INT_RANK[b]!;
  if (a === "bool") return b;
  if (b === "bool") return a;
  if (ra.signed === rb.signed) return intOf(Math.max(ra.bits, rb.bits), ra.signed);
  const s = ra.signed ? ra : rb;
  const u = ra.signed ? rb : ra;
  if (s.bits > u.bits) return intOf(s.bits, true);
  return intOf(Math.min(u.bits * 2, 32), true);
}
