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
 * tensors become `{ kind: "tq1_0" | "tq2_0", shape, blocks }` with `blocks` a u8 Tensor `[...,
 * shape[-1] / 256 · blockBytes]` (src/quant/blocks.ts): the **interim** form that `TernaryTensor`
 * will replace. Any other ggml type is a FormatError naming it. A 0-d tensor is written as `[1]`.
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
 * @module
 */
import { type DType, dtypeInfo } from "../dtype.ts";
import { DTypeError, FormatError, ShapeError, ValueError, fmtShape } from "../errors.ts";
import { BLOCK_BYTES, BLOCK_WEIGHTS, type BlockFormat } from "../quant/blocks.ts";
import { Tensor } from "../tensor.ts";
import { inputBytes, tensorBytes, tensorFromBytes } from "./bytes.ts";
import { closeSync, openSync, writeSync } from "node:fs";

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

/** A TQ1_0 / TQ2_0 tensor as packed ggml blocks: the interim form until `TernaryTensor`. */
export interface GGUFBlockTensor {
  kind: BlockFormat;
  /** Our row-major shape (the last axis a multiple of 256). */
  shape: number[];
  /** u8 `[...shape[:-1], shape[-1] / 256 · blockBytes]`: the file's bytes. Dispose it. */
  blocks: Tensor;
}

/** What `read` returns and `write` takes. */
export interface GGUFContents {
  metadata: Record<string, GGUFValue>;
  /** The GGUF type of each metadata key (optional for `write`: inferred when absent). */
  types?: Record<string, GGUFType>;
  tensors: Record<string, Tensor | GGUFBlockTensor> | Map<string, Tensor | GGUFBlockTensor>;
}

/** The result of `read`. */
export interface GGUFFile extends GGUFContents {
  types: Record<string, GGUFType>;
  tensors: Record<string, Tensor | GGUFBlockTensor>;
  /** The file's GGUF version (2 or 3). */
  version: number;
  /** The data alignment in bytes. */
  alignment: number;
}

// GGUF value type codes.
const SCALAR_CODES: Record<GGUFScalarType, number> = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, u64: 10, i64: 11, f64: 12 };
const ARRAY_CODE = 9;
const CODE_NAMES: string[] = [];
for (const [k, v] of Object.entries(SCALAR_CODES)) CODE_NAMES[v] = k;
CODE_NAMES[ARRAY_CODE] = "array";
const SCALAR_SIZE: Record<GGUFScalarType, number> = { u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, bool: 1, string: 8, u64: 8, i64: 8, f64: 8 };
type NumericArray = Exclude<GGUFValue, number | bigint | boolean | string | GGUFValue[]>;
const TYPED: Partial<Record<GGUFScalarType, { new (n: number): NumericArray; new (b: ArrayBuffer, o: number, n: number): NumericArray }>> = {
  u8: Uint8Array,
  i8: Int8Array,
  u16: Uint16Array,
  i16: Int16Array,
  u32: Uint32Array,
  i32: Int32Array,
  f32: Float32Array,
  f64: Float64Array,
  u64: BigUint64Array,
  i64: BigInt64Array,
} as never;

// ggml tensor types (ggml.h), by code.
const GGML_NAMES: Record<number, string> = {
  0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1", 10: "Q2_K", 11: "Q3_K",
  12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S",
  20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64",
  29: "IQ1_M", 30: "BF16", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4",
};
const GGML_DTYPE: Record<number, DType> = { 0: "f32", 1: "f16", 30: "bf16", 24: "i8", 25: "i16", 26: "i32" };
const GGML_BLOCKS: Record<number, BlockFormat> = { 34: "tq1_0", 35: "tq2_0" };
const DTYPE_GGML: Partial<Record<DType, number>> = { f32: 0, f16: 1, bf16: 30, i8: 24, i16: 25, i32: 26 };
const BLOCKS_GGML: Record<BlockFormat, number> = { tq1_0: 34, tq2_0: 35 };
const GGML_MAX_DIMS = 4;
const MAX_NESTING = 16;
const DEFAULT_ALIGNMENT = 32;

const utf8 = new TextDecoder("utf-8", { fatal: true });
const utf8enc = new TextEncoder();

// ---- reading --------------------------------------------------------------------------------

class Reader {
  readonly view: DataView;
  pos = 0;
  constructor(
    readonly bytes: Uint8Array,
    readonly op: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  get left(): number {
    return this.bytes.length - this.pos;
  }
  fail(what: string, at = this.pos): never {
    throw new FormatError(this.op, `${what} (at byte ${at} of ${this.bytes.length})`);
  }
  need(n: number, what: string): void {
    if (n > this.left) this.fail(`truncated: ${what} needs ${n} bytes but ${this.left} remain`);
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  u64(what: string): bigint {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }
  /** A u64 count of items of at least `minSize` bytes each, checked against what remains. */
  count(what: string, minSize: number): number {
    const at = this.pos;
    const v = this.u64(what);
    if (v * BigInt(minSize) > BigInt(this.left)) this.fail(`${what} is ${v}, but ${this.left} bytes remain (at least ${minSize} each)`, at);
    return Number(v);
  }
  string(what: string): string {
    const at = this.pos;
    const n = this.count(`length of ${what}`, 1);
    const b = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    try {
      return utf8.decode(b);
    } catch {
      return this.fail(`${what} is not valid UTF-8`, at);
    }
  }
}

function readValue(r: Reader, code: number, what: string, depth: number): { value: GGUFValue; type: GGUFType } {
  const name = CODE_NAMES[code] as GGUFScalarType | "array" | undefined;
  if (name === undefined) r.fail(`${what}: unknown value type ${code}`, r.pos - 4);
  if (name === "array") {
    if (depth >= MAX_NESTING) r.fail(`${what}: arrays nested deeper than ${MAX_NESTING}`);
    const at = r.pos;
    const ecode = r.u32(`${what}: array element type`);
    const ename = CODE_NAMES[ecode] as GGUFScalarType | "array" | undefined;
    if (ename === undefined) r.fail(`${what}: unknown array element type ${ecode}`, at);
    const n = r.count(`${what}: array length`, ename === "array" ? 12 : SCALAR_SIZE[ename]);
    if (ename === "array") {
      const out: GGUFValue[] = [];
      let inner: GGUFType = "array<i32>";
      // Each element is (element type, count, values), with no type code of its own (gguf-py).
      for (let i = 0; i < n; i++) {
        const v = readValue(r, ARRAY_CODE, `${what}[${i}]`, depth + 1);
        out.push(v.value);
        inner = v.type;
      }
      return { value: out, type: `array<${inner}>` };
    }
    const T = TYPED[ename];
    if (T) {
      const size = SCALAR_SIZE[ename];
      const copy = r.bytes.slice(r.pos, r.pos + n * size); // aligned copy
      r.pos += n * size;
      return { value: new T(copy.buffer, 0, n), type: `array<${ename}>` };
    }
    const out: GGUFValue[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = readValue(r, ecode, `${what}[${i}]`, depth + 1).value;
    return { value: out, type: `array<${ename}>` };
  }
  const v = r.view;
  r.need(name === "string" ? 8 : SCALAR_SIZE[name], what);
  const p = r.pos;
  let value: GGUFValue;
  switch (name) {
    case "u8": value = v.getUint8(p); break;
    case "i8": value = v.getInt8(p); break;
    case "u16": value = v.getUint16(p, true); break;
    case "i16": value = v.getInt16(p, true); break;
    case "u32": value = v.getUint32(p, true); break;
    case "i32": value = v.getInt32(p, true); break;
    case "f32": value = v.getFloat32(p, true); break;
    case "f64": value = v.getFloat64(p, true); break;
    case "bool": {
      const b = v.getUint8(p);
      if (b > 1) r.fail(`${what}: bool byte is ${b}, not 0 or 1`);
      value = b === 1;
      break;
    }
    case "u64": {
      const x = v.getBigUint64(p, true);
      value = x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x;
      break;
    }
    case "i64": {
      const x = v.getBigInt64(p, true);
      value = x <= BigInt(Number.MAX_SAFE_INTEGER) && x >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(x) : x;
      break;
    }
    case "string":
      return { value: r.string(what), type: "string" };
  }
  r.pos += SCALAR_SIZE[name];
  return { value, type: name };
}

interface Info {
  name: string;
  shape: number[];
  type: number;
  offset: number;
  nbytes: number;
  at: number;
}

/**
 * Reads a GGUF file (a path, or its bytes). Returns `{ metadata, types, tensors, version,
 * alignment }`; dispose the tensors (and the `blocks` of TQ1_0/TQ2_0 entries) when done.
 * @throws FormatError for anything malformed or unsupported, naming the field and its byte offset.
 */
export function read(pathOrBytes: string | Uint8Array | ArrayBuffer): GGUFFile {
  const op = "gguf.read";
  const bytes = inputBytes(pathOrBytes, op);
  const r = new Reader(bytes, op);
  r.need(4, "magic");
  if (!(bytes[0] === 0x47 && bytes[1] === 0x47 && bytes[2] === 0x55 && bytes[3] === 0x46)) {
    r.fail(`bad magic ${JSON.stringify(String.fromCharCode(...bytes.subarray(0, 4)))}: not a GGUF file (expected "GGUF")`, 0);
  }
  r.pos = 4;
  const version = r.u32("version");
  if (version === 0x03000000 || version === 0x02000000) r.fail("a big-endian GGUF file: only little-endian files are supported", 4);
  if (version !== 2 && version !== 3) r.fail(`unsupported GGUF version ${version} (supported: 2 and 3)`, 4);
  // A tensor info takes at least 8 (name) + 4 (n_dims) + 4 (type) + 8 (offset) bytes; a
  // key/value pair at least 8 (key) + 4 (type) + 1.
  const ntensors = r.count("tensor count", 24);
  const nkv = r.count("metadata count", 13);
  const metadata: Record<string, GGUFValue> = Object.create(null);
  const types: Record<string, GGUFType> = Object.create(null);
  for (let i = 0; i < nkv; i++) {
    const at = r.pos;
    const key = r.string(`key of metadata entry ${i}`);
    if (Object.hasOwn(types, key)) r.fail(`duplicate metadata key ${JSON.stringify(key)}`, at);
    const code = r.u32(`value type of ${JSON.stringify(key)}`);
    const { value, type } = readValue(r, code, `metadata ${JSON.stringify(key)}`, 0);
    metadata[key] = value;
    types[key] = type;
  }
  let alignment = DEFAULT_ALIGNMENT;
  if (Object.hasOwn(types, "general.alignment")) {
    const a = metadata["general.alignment"];
    if (types["general.alignment"] !== "u32" || typeof a !== "number" || a === 0 || (a & (a - 1)) !== 0) {
      r.fail(`general.alignment must be a u32 power of two, got ${types["general.alignment"]} ${String(a)}`, 0);
    }
    alignment = a as number;
  }
  const infos: Info[] = [];
  const names = new Set<string>();
  for (let i = 0; i < ntensors; i++) {
    const at = r.pos;
    const name = r.string(`name of tensor ${i}`);
    if (names.has(name)) r.fail(`duplicate tensor name ${JSON.stringify(name)}`, at);
    names.add(name);
    const ndAt = r.pos;
    const nd = r.u32(`dimension count of tensor ${JSON.stringify(name)}`);
    if (nd > GGML_MAX_DIMS) r.fail(`tensor ${JSON.stringify(name)} has ${nd} dimensions (ggml allows at most ${GGML_MAX_DIMS})`, ndAt);
    const ne: number[] = [];
    let size = 1;
    for (let j = 0; j < nd; j++) {
      const dAt = r.pos;
      const d = r.u64(`dimension ${j} of tensor ${JSON.stringify(name)}`);
      if (d > BigInt(Number.MAX_SAFE_INTEGER) || Number(d) * size > Number.MAX_SAFE_INTEGER) r.fail(`tensor ${JSON.stringify(name)}: dimension ${j} = ${d} is too large`, dAt);
      ne.push(Number(d));
      size *= Number(d);
    }
    const tAt = r.pos;
    const type = r.u32(`type of tensor ${JSON.stringify(name)}`);
    const oAt = r.pos;
    const off = r.u64(`offset of tensor ${JSON.stringify(name)}`);
    if (off > BigInt(bytes.length)) r.fail(`tensor ${JSON.stringify(name)}: data offset ${off} lies past the end of the file`, oAt);
    const offset = Number(off);
    if (offset % alignment !== 0) r.fail(`tensor ${JSON.stringify(name)}: data offset ${offset} is not a multiple of the alignment ${alignment}`, oAt);
    const shape = ne.slice().reverse();
    let nbytes = 0;
    const dtype = GGML_DTYPE[type];
    const fmt = GGML_BLOCKS[type];
    if (dtype !== undefined) nbytes = size * dtypeInfo(dtype).size;
    else if (fmt !== undefined) {
      if (nd === 0 || ne[0]! % BLOCK_WEIGHTS !== 0) {
        r.fail(`tensor ${JSON.stringify(name)}: ${GGML_NAMES[type]} rows (ne[0] = ${ne[0] ?? 1}) must be a multiple of ${BLOCK_WEIGHTS}`, tAt);
      }
      nbytes = (size / BLOCK_WEIGHTS) * BLOCK_BYTES[fmt];
    } else if (GGML_NAMES[type] !== undefined) {
      throw new FormatError(op, `tensor ${JSON.stringify(name)} has ggml type ${GGML_NAMES[type]} (${type}), which bitnet-bun does not read (supported: F32, F16, BF16, I8, I16, I32, TQ1_0, TQ2_0) (at byte ${tAt})`);
    } else {
      r.fail(`tensor ${JSON.stringify(name)}: unknown ggml type ${type}`, tAt);
    }
    infos.push({ name, shape, type, offset, nbytes, at });
  }
  const dataStart = Math.ceil(r.pos / alignment) * alignment;
  if (ntensors > 0 && dataStart > bytes.length) r.fail(`truncated: the data section would start at byte ${dataStart}`);
  for (const t of infos) {
    const end = dataStart + t.offset + t.nbytes;
    if (end > bytes.length) {
      r.fail(`truncated: tensor ${JSON.stringify(t.name)} ${fmtShape(t.shape)} ${GGML_NAMES[t.type]} needs bytes ${dataStart + t.offset}..${end} of the data`, t.at);
    }
  }
  const tensors: Record<string, Tensor | GGUFBlockTensor> = Object.create(null);
  const made: Tensor[] = [];
  try {
    for (const t of infos) {
      const src = bytes.subarray(dataStart + t.offset, dataStart + t.offset + t.nbytes);
      const dtype = GGML_DTYPE[t.type];
      if (dtype !== undefined) {
        const x = tensorFromBytes(src, t.shape, dtypeInfo(dtype), 0, op);
        made.push(x);
        tensors[t.name] = x;
      } else {
        const fmt = GGML_BLOCKS[t.type]!;
        const last = t.shape[t.shape.length - 1]!;
        const bshape = [...t.shape.slice(0, -1), (last / BLOCK_WEIGHTS) * BLOCK_BYTES[fmt]];
        const blocks = tensorFromBytes(src, bshape, dtypeInfo("u8"), 0, op);
        made.push(blocks);
        tensors[t.name] = { kind: fmt, shape: t.shape, blocks };
      }
    }
  } catch (e) {
    for (const x of made) x.dispose();
    throw e;
  }
  return { metadata, types, tensors, version, alignment };
}

// ---- writing --------------------------------------------------------------------------------

class Writer {
  parts: Uint8Array[] = [];
  length = 0;
  push(b: Uint8Array): void {
    this.parts.push(b);
    this.length += b.length;
  }
  scalar(type: GGUFScalarType, v: unknown, what: string): void {
    if (type === "string") {
      if (typeof v !== "string") throw new ValueError("gguf.write", `${what}: a string value needs a string, got ${typeof v}`);
      const b = utf8enc.encode(v);
      this.u64(BigInt(b.length));
      this.push(b);
      return;
    }
    const b = new Uint8Array(SCALAR_SIZE[type]);
    const dv = new DataView(b.buffer);
    const bad = (why: string) => new ValueError("gguf.write", `${what}: ${String(v)} is not a valid ${type} (${why})`);
    if (type === "bool") {
      if (typeof v !== "boolean") throw bad("needs a boolean");
      dv.setUint8(0, v ? 1 : 0);
    } else if (type === "f32" || type === "f64") {
      if (typeof v !== "number") throw bad("needs a number");
      if (type === "f32") dv.setFloat32(0, v, true);
      else dv.setFloat64(0, v, true);
    } else if (type === "u64" || type === "i64") {
      let x: bigint;
      if (typeof v === "bigint") x = v;
      else if (typeof v === "number" && Number.isSafeInteger(v)) x = BigInt(v);
      else throw bad("needs an integer number or a bigint");
      const lo = type === "u64" ? 0n : -(1n << 63n);
      const hi = type === "u64" ? (1n << 64n) - 1n : (1n << 63n) - 1n;
      if (x < lo || x > hi) throw bad("out of range");
      if (type === "u64") dv.setBigUint64(0, x, true);
      else dv.setBigInt64(0, x, true);
    } else {
      const bits = SCALAR_SIZE[type] * 8;
      const signed = type[0] === "i";
      const lo = signed ? -(2 ** (bits - 1)) : 0;
      const hi = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
      if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi) throw bad(`needs an integer in [${lo}, ${hi}]`);
      if (bits === 8) signed ? dv.setInt8(0, v) : dv.setUint8(0, v);
      else if (bits === 16) signed ? dv.setInt16(0, v, true) : dv.setUint16(0, v, true);
      else signed ? dv.setInt32(0, v, true) : dv.setUint32(0, v, true);
    }
    this.push(b);
  }
  u32(v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v, true);
    this.push(b);
  }
  u64(v: bigint): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, v, true);
    this.push(b);
  }
  value(type: GGUFType, v: unknown, what: string): void {
    const m = /^array<(.+)>$/.exec(type);
    if (!m) return this.scalar(type as GGUFScalarType, v, what);
    const inner = m[1] as GGUFType;
    const items: ArrayLike<unknown> | undefined = Array.isArray(v) || ArrayBuffer.isView(v) ? (v as unknown as ArrayLike<unknown>) : undefined;
    if (items === undefined) throw new ValueError("gguf.write", `${what}: type ${type} needs an array, got ${typeof v}`);
    this.u32(typeCode(inner, what));
    this.u64(BigInt(items.length));
    // Elements of a nested array are (element type, count, values), with no type code of their own.
    for (let i = 0; i < items.length; i++) this.value(inner, items[i], `${what}[${i}]`);
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.length);
    let p = 0;
    for (const b of this.parts) {
      out.set(b, p);
      p += b.length;
    }
    return out;
  }
}

function typeCode(t: GGUFType, what: string): number {
  if (/^array<.+>$/.test(t)) return ARRAY_CODE;
  const c = SCALAR_CODES[t as GGUFScalarType];
  if (c === undefined || !Object.hasOwn(SCALAR_CODES, t)) throw new ValueError("gguf.write", `${what}: unknown GGUF type ${JSON.stringify(t)}`);
  return c;
}

function inferType(v: unknown, what: string): GGUFType {
  if (typeof v === "boolean") return "bool";
  if (typeof v === "string") return "string";
  if (typeof v === "bigint") return v > (1n << 63n) - 1n ? "u64" : "i64";
  if (typeof v === "number") {
    if (Number.isInteger(v)) {
      if (v >= -(2 ** 31) && v < 2 ** 31) return "i32";
      if (v >= 0 && v < 2 ** 32) return "u32";
      if (Number.isSafeInteger(v)) return "i64";
    }
    return "f32";
  }
  if (v instanceof Uint8Array) return "array<u8>";
  if (v instanceof Int8Array) return "array<i8>";
  if (v instanceof Uint16Array) return "array<u16>";
  if (v instanceof Int16Array) return "array<i16>";
  if (v instanceof Uint32Array) return "array<u32>";
  if (v instanceof Int32Array) return "array<i32>";
  if (v instanceof Float32Array) return "array<f32>";
  if (v instanceof Float64Array) return "array<f64>";
  if (v instanceof BigUint64Array) return "array<u64>";
  if (v instanceof BigInt64Array) return "array<i64>";
  if (Array.isArray(v)) {
    if (v.length === 0) return "array<i32>";
    const ts = v.map((x, i) => inferType(x, `${what}[${i}]`));
    if (ts.every((t) => t === ts[0])) return `array<${ts[0]}>`;
    // integers that need different widths, or integers mixed with fractions
    if (ts.every((t) => t === "i32" || t === "u32" || t === "i64" || t === "f32")) {
      if (ts.includes("f32")) return "array<f32>";
      if (ts.includes("i64") || (ts.includes("u32") && v.some((x) => (x as number) < 0))) return "array<i64>";
      return ts.includes("u32") ? "array<u32>" : "array<i32>";
    }
    throw new ValueError("gguf.write", `${what}: array elements of different types (${[...new Set(ts)].join(", ")}); GGUF arrays hold one type`);
  }
  throw new ValueError("gguf.write", `${what}: cannot store ${v === null ? "null" : typeof v} in GGUF metadata`);
}

function isBlockTensor(x: unknown): x is GGUFBlockTensor {
  return typeof x === "object" && x !== null && !(x instanceof Tensor) && "kind" in x && "blocks" in x;
}

/**
 * Writes a GGUF v3 file: `metadata` (types from `types` or inferred, see the module notes) and
 * `tensors` (f32 / f16 / bf16 / i8 / i16 / i32 Tensors of up to 4 dimensions, or TQ1_0 / TQ2_0
 * block tensors `{ kind, shape, blocks }`), in the order given, each aligned to
 * `general.alignment` (default 32). Everything is validated before the file is opened.
 * @throws DTypeError (a tensor dtype GGUF cannot hold here), ShapeError (more than 4 dimensions,
 *   a zero dimension, block bytes that do not match the shape), ValueError (a metadata value that
 *   does not fit its type).
 */
export function write(path: string, contents: GGUFContents): void {
  const op = "gguf.write";
  if (typeof path !== "string") throw new ValueError(op, `path must be a string, got ${typeof path}`);
  if (typeof contents !== "object" || contents === null) throw new ValueError(op, "expects { metadata, tensors }");
  const metadata = contents.metadata ?? {};
  const types = contents.types ?? {};
  const entries: [string, Tensor | GGUFBlockTensor][] =
    contents.tensors instanceof Map ? [...contents.tensors.entries()] : Object.entries(contents.tensors ?? {});
  const keys = Object.keys(metadata);
  let alignment = DEFAULT_ALIGNMENT;
  const h = new Writer();
  h.u32(0x46554747); // "GGUF"
  h.u32(3);
  h.u64(BigInt(entries.length));
  h.u64(BigInt(keys.length));
  for (const k of keys) {
    const v = metadata[k];
    let type: GGUFType = Object.hasOwn(types, k) ? types[k]! : inferType(v, `metadata ${JSON.stringify(k)}`);
    if (k === "general.alignment") {
      type = "u32";
      if (typeof v !== "number" || !Number.isInteger(v) || v <= 0 || (v & (v - 1)) !== 0 || v > 2 ** 31) {
        throw new ValueError(op, `general.alignment must be a power of two, got ${String(v)}`);
      }
      alignment = v;
    }
    h.scalar("string", k, "key");
    h.u32(typeCode(type, `metadata ${JSON.stringify(k)}`));
    h.value(type, v, `metadata ${JSON.stringify(k)}`);
  }
  // tensor infos
  const datas: { t: Tensor; nbytes: number }[] = [];
  let offset = 0;
  for (const [name, x] of entries) {
    let shape: number[];
    let ggml: number;
    let t: Tensor;
    let nbytes = 0;
    if (x instanceof Tensor) {
      x._live(op);
      const code = DTYPE_GGML[x._dt.name];
      if (code === undefined) throw new DTypeError(op, `tensor ${JSON.stringify(name)} is ${x._dt.name}; GGUF tensors here are f32, f16, bf16, i8, i16 or i32`);
      shape = x._shape.length === 0 ? [1] : x._shape.slice();
      ggml = code;
      t = x;
      nbytes = x._size * x._dt.size;
    } else if (isBlockTensor(x)) {
      const fmt = x.kind;
      if (fmt !== "tq1_0" && fmt !== "tq2_0") throw new ValueError(op, `tensor ${JSON.stringify(name)}: unknown block kind ${JSON.stringify(fmt)}`);
      if (!(x.blocks instanceof Tensor) || x.blocks._dt.name !== "u8") throw new DTypeError(op, `tensor ${JSON.stringify(name)}: blocks must be a u8 Tensor`);
      x.blocks._live(op);
      shape = Array.from(x.shape ?? []);
      const last = shape[shape.length - 1];
      if (shape.length === 0 || !shape.every((d) => Number.isInteger(d) && d >= 0) || last! % BLOCK_WEIGHTS !== 0) {
        throw new ShapeError(op, `tensor ${JSON.stringify(name)}: a ${fmt} shape needs a last axis that is a multiple of ${BLOCK_WEIGHTS}, got ${fmtShape(shape)}`);
      }
      nbytes = (shape.reduce((a, b) => a * b, 1) / BLOCK_WEIGHTS) * BLOCK_BYTES[fmt];
      if (x.blocks._size !== nbytes) {
        throw new ShapeError(op, `tensor ${JSON.stringify(name)}: ${fmt} ${fmtShape(shape)} needs ${nbytes} block bytes, blocks has ${x.blocks._size}`);
      }
      ggml = BLOCKS_GGML[fmt];
      t = x.blocks;
    } else {
      throw new ValueError(op, `tensor ${JSON.stringify(name)} must be a Tensor or { kind, shape, blocks }, got ${x === null ? "null" : typeof x}`);
    }
    if (shape.length > GGML_MAX_DIMS) throw new ShapeError(op, `tensor ${JSON.stringify(name)} ${fmtShape(shape)} has more than ${GGML_MAX_DIMS} dimensions (ggml's limit)`);
    if (shape.includes(0)) throw new ShapeError(op, `tensor ${JSON.stringify(name)} ${fmtShape(shape)} is empty; ggml cannot load zero-sized dimensions`);
    h.scalar("string", name, "tensor name");
    h.u32(shape.length);
    for (let i = shape.length - 1; i >= 0; i--) h.u64(BigInt(shape[i]!));
    h.u32(ggml);
    h.u64(BigInt(offset));
    datas.push({ t, nbytes });
    offset += Math.ceil(nbytes / alignment) * alignment;
  }
  const header = h.bytes();
  const fd = openSync(path, "w");
  try {
    writeSync(fd, header);
    const pad = Math.ceil(header.length / alignment) * alignment - header.length;
    if (pad > 0) writeSync(fd, new Uint8Array(pad));
    for (const { t, nbytes } of datas) {
      writeSync(fd, tensorBytes(t, op));
      const p = Math.ceil(nbytes / alignment) * alignment - nbytes;
      if (p > 0) writeSync(fd, new Uint8Array(p));
    }
  } finally {
    closeSync(fd);
  }
}

/** GGUF files: `bn.gguf.read(pathOrBytes)` and `bn.gguf.write(path, { metadata, tensors })`. */
export const gguf = { read, write };
