/**
 * GGUF files (llama.cpp / ggml's model format, versions 2 and 3, little-endian): `bn.gguf.read`
 * and `bn.gguf.write`.
 *
 * Layout: "GGUF", version (u32), tensor count and metadata count (u64), the metadata key/value
 * pairs, one info record per tensor (name, dims innermost-first, ggml type, offset), padding to
 * the alignment (`general.alignment`, a u32 power of two, default 32), then the data section;
 * each tensor's offset is relative to the data section and a multiple of the alignment.
 *
 * Tensors. GGUF stores dims innermost first (ne[0] is the row length); we reverse them, so a
 * `[out, in]` weight of ours is `ne = [in, out]` in the file, exactly as gguf-py and llama.cpp.
 * F32, F16, BF16 (and I8, I16, I32) tensors become `Tensor`s of that dtype. TQ1_0 and TQ2_0
 * tensors become `TernaryTensor`s of format "tq1_0" / "tq2_0" (src/quant/ternary.ts) whose
 * `packed` codes (u8 `[rows, shape[-1] / 256 · blockBytes]`) are the file's bytes, unchanged; `write`
 * writes a tq TernaryTensor's bytes back unchanged and refuses an "i2" one (our own layout, with no
 * ggml type: convert it with `w.toFormat("tq2_0")` first). Any other ggml type is a FormatError
 * naming it. A 0-d tensor is written as `[1]`.
 *
 * Metadata. `read` returns `metadata` (key → value) and `types` (key → GGUF type), so
 * `write(path, read(file))` writes the same types back. Values: integers of 8 to 32 bits, f32 and
 * f64 as numbers; u64 / i64 as numbers when they are safe integers, else bigint; bool, string;
 * arrays of numeric types as typed arrays (Uint8Array ... Float64Array, BigUint64Array /
 * BigInt64Array for 64-bit), arrays of bool / string / arrays as JS arrays. Types are written
 * as "u8" "i8" "u16" "i16" "u32" "i32" "f32" "bool" "string" "u64" "i64" "f64" and
 * "array<T>" (nested: "array<array<i32>>"). `write` takes a value's type from `types` when given,
 * else infers it: boolean → bool, string → string, bigint → i64 (u64 above 2^63 - 1), an integer
 * number → i32 (u32 / i64 when outside i32), any other number → f32 (as gguf-py: llama.cpp reads
 * most float keys as f32), a typed array → the array of its element type, a JS array → the
 * array of the inferred type of its elements. `general.alignment` is always written as u32.
 *
 * Robustness. `read` checks every length, count and offset against the bytes that remain before
 * reading or allocating anything (a count that cannot fit is refused without allocating), and
 * validates every tensor before creating any; malformed input is a FormatError that names the
 * field and its byte offset. Nothing is allocated after a failing read.
 *
 * Memory. Every tensor `read` returns owns a copy of its bytes (nothing refers to the input
 * buffer); dispose each (`Tensor.dispose()` / `TernaryTensor.dispose()`) to release everything.
 *
 * Files: this module holds the public types and the `gguf` namespace; the reader is
 * src/io/gguf_read.ts (with the type-code tables both sides share), the writer src/io/gguf_write.ts.
 * @module
 */
import type { TernaryTensor } from "../quant/ternary.ts";
import type { Tensor } from "../tensor.ts";
import { read } from "./gguf_read.ts";
import { write } from "./gguf_write.ts";

export { read, write };

/** A GGUF scalar value type. */
export type GGUFScalarType = "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "bool" | "string" | "u64" | "i64" | "f64";
/** A GGUF value type: a scalar type or `array<T>`. */
export type GGUFType = GGUFScalarType | `array<${string}>`;
/** A metadata value as `read` returns it and `write` accepts it. */
export type GGUFValue =
  | number
  | bigint
  | boolean
  | string
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigUint64Array
  | BigInt64Array
  | GGUFValue[];

/** What `read` returns and `write` takes. */
export interface GGUFContents {
  metadata: Record<string, GGUFValue>;
  /** The GGUF type of each metadata key (optional for `write`: inferred when absent). */
  types?: Record<string, GGUFType>;
  /** `Tensor`s, and `TernaryTensor`s of format "tq1_0" / "tq2_0" (TQ1_0 / TQ2_0 in the file). */
  tensors: Record<string, Tensor | TernaryTensor> | Map<string, Tensor | TernaryTensor>;
}

/** The result of `read`. */
export interface GGUFFile extends GGUFContents {
  types: Record<string, GGUFType>;
  /** Each owns its memory: dispose them all when done. */
  tensors: Record<string, Tensor | TernaryTensor>;
  /** The file's GGUF version (2 or 3). */
  version: number;
  /** The data alignment in bytes. */
  alignment: number;
}

/** GGUF files: `bn.gguf.read(pathOrBytes)` and `bn.gguf.write(path, { metadata, tensors })`. */
export const gguf = { read, write };
