/**
 * The GGUF reader behind `bn.gguf.read` (src/io/gguf.ts, whose header describes the format and
 * the rules), and the GGUF value-type and ggml tensor-type tables that the writer
 * (src/io/gguf_write.ts) shares.
 * @module
 */
import { type DType, dtypeInfo } from "../dtype.ts";
import { FormatError, fmtShape, show } from "../errors.ts";
import { BLOCK_BYTES, BLOCK_WEIGHTS, type BlockFormat } from "../quant/blocks.ts";
import { TernaryTensor } from "../quant/ternary.ts";
import { Tensor } from "../tensor.ts";
import { inputBytes, tensorFromBytes } from "./bytes.ts";
import type { GGUFFile, GGUFScalarType, GGUFType, GGUFValue } from "./gguf.ts";

// GGUF value type codes.
export const SCALAR_CODES: Record<GGUFScalarType, number> = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, u64: 10, i64: 11, f64: 12 };
export const ARRAY_CODE = 9;
export const CODE_NAMES: string[] = [];
for (const [k, v] of Object.entries(SCALAR_CODES)) CODE_NAMES[v] = k;
CODE_NAMES[ARRAY_CODE] = "array";
export const SCALAR_SIZE: Record<GGUFScalarType, number> = { u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, bool: 1, string: 8, u64: 8, i64: 8, f64: 8 };
export type NumericArray = Exclude<GGUFValue, number | bigint | boolean | string | GGUFValue[]>;
export const TYPED: Partial<Record<GGUFScalarType, { new (n: number): NumericArray; new (b: ArrayBuffer, o: number, n: number): NumericArray }>> = {
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
export const GGML_NAMES: Record<number, string> = {
  0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1", 10: "Q2_K", 11: "Q3_K",
  12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S",
  20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64",
  29: "IQ1_M", 30: "BF16", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4",
};
export const GGML_DTYPE: Record<number, DType> = { 0: "f32", 1: "f16", 30: "bf16", 24: "i8", 25: "i16", 26: "i32" };
export const GGML_BLOCKS: Record<number, BlockFormat> = { 34: "tq1_0", 35: "tq2_0" };
export const DTYPE_GGML: Partial<Record<DType, number>> = { f32: 0, f16: 1, bf16: 30, i8: 24, i16: 25, i32: 26 };
export const BLOCKS_GGML: Record<BlockFormat, number> = { tq1_0: 34, tq2_0: 35 };
export const GGML_MAX_DIMS = 4;
export const MAX_NESTING = 16;
export const DEFAULT_ALIGNMENT = 32;

const utf8 = new TextDecoder("utf-8", { fatal: true });

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
 * alignment }`; TQ1_0 / TQ2_0 tensors are `TernaryTensor`s (formats "tq1_0" / "tq2_0"), the others
 * `Tensor`s. Each owns a copy of its bytes: dispose them all when done.
 * @throws FormatError for anything malformed or unsupported, naming the field and its byte offset.
 */
export function read(pathOrBytes: string | Uint8Array | ArrayBuffer): GGUFFile {
  const op = "gguf.read";
  const bytes = inputBytes(pathOrBytes, op);
  const r = new Reader(bytes, op);
  r.need(4, "magic");
  if (!(bytes[0] === 0x47 && bytes[1] === 0x47 && bytes[2] === 0x55 && bytes[3] === 0x46)) {
    r.fail(`bad magic ${show(String.fromCharCode(...bytes.subarray(0, 4)))}: not a GGUF file (expected "GGUF")`, 0);
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
    if (Object.hasOwn(types, key)) r.fail(`duplicate metadata key ${show(key)}`, at);
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
    if (names.has(name)) r.fail(`duplicate tensor name ${show(name)}`, at);
    names.add(name);
    const ndAt = r.pos;
    const nd = r.u32(`dimension count of tensor ${JSON.stringify(name)}`);
    if (nd > GGML_MAX_DIMS) r.fail(`tensor ${show(name)} has ${nd} dimensions (ggml allows at most ${GGML_MAX_DIMS})`, ndAt);
    const ne: number[] = [];
    let size = 1;
    for (let j = 0; j < nd; j++) {
      const dAt = r.pos;
      const d = r.u64(`dimension ${j} of tensor ${JSON.stringify(name)}`);
      if (d > BigInt(Number.MAX_SAFE_INTEGER) || Number(d) * size > Number.MAX_SAFE_INTEGER) r.fail(`tensor ${show(name)}: dimension ${j} = ${d} is too large`, dAt);
      ne.push(Number(d));
      size *= Number(d);
    }
    const tAt = r.pos;
    const type = r.u32(`type of tensor ${JSON.stringify(name)}`);
    const oAt = r.pos;
    const off = r.u64(`offset of tensor ${JSON.stringify(name)}`);
    if (off > BigInt(bytes.length)) r.fail(`tensor ${show(name)}: data offset ${off} lies past the end of the file`, oAt);
    const offset = Number(off);
    if (offset % alignment !== 0) r.fail(`tensor ${show(name)}: data offset ${offset} is not a multiple of the alignment ${alignment}`, oAt);
    const shape = ne.slice().reverse();
    let nbytes = 0;
    const dtype = GGML_DTYPE[type];
    const fmt = GGML_BLOCKS[type];
    if (dtype !== undefined) nbytes = size * dtypeInfo(dtype).size;
    else if (fmt !== undefined) {
      if (nd === 0 || ne[0]! % BLOCK_WEIGHTS !== 0) {
        r.fail(`tensor ${show(name)}: ${GGML_NAMES[type]} rows (ne[0] = ${ne[0] ?? 1}) must be a multiple of ${BLOCK_WEIGHTS}`, tAt);
      }
      nbytes = (size / BLOCK_WEIGHTS) * BLOCK_BYTES[fmt];
    } else if (GGML_NAMES[type] !== undefined) {
      throw new FormatError(op, `tensor ${show(name)} has ggml type ${GGML_NAMES[type]} (${type}), which bitnet-bun does not read (supported: F32, F16, BF16, I8, I16, I32, TQ1_0, TQ2_0) (at byte ${tAt})`);
    } else {
      r.fail(`tensor ${show(name)}: unknown ggml type ${type}`, tAt);
    }
    infos.push({ name, shape, type, offset, nbytes, at });
  }
  const dataStart = Math.ceil(r.pos / alignment) * alignment;
  if (ntensors > 0 && dataStart > bytes.length) r.fail(`truncated: the data section would start at byte ${dataStart}`);
  for (const t of infos) {
    const end = dataStart + t.offset + t.nbytes;
    if (end > bytes.length) {
      r.fail(`truncated: tensor ${show(t.name)} ${fmtShape(t.shape)} ${GGML_NAMES[t.type]} needs bytes ${dataStart + t.offset}..${end} of the data`, t.at);
    }
  }
  const tensors: Record<string, Tensor | TernaryTensor> = Object.create(null);
  const made: (Tensor | TernaryTensor)[] = [];
  try {
    for (const t of infos) {
      const src = bytes.subarray(dataStart + t.offset, dataStart + t.offset + t.nbytes);
      const dtype = GGML_DTYPE[t.type];
      if (dtype !== undefined) {
        const x = tensorFromBytes(src, t.shape, dtypeInfo(dtype), 0, op);
        made.push(x);
        tensors[t.name] = x;
      } else {
        // The file's blocks, rows back to back, are exactly TernaryTensor's packed [rows, bytesPerRow].
        const fmt = GGML_BLOCKS[t.type]!;
        const last = t.shape[t.shape.length - 1]!;
        const rows = t.shape.slice(0, -1).reduce((a, b) => a * b, 1);
        const packed = tensorFromBytes(src, [rows, (last / BLOCK_WEIGHTS) * BLOCK_BYTES[fmt]], dtypeInfo("u8"), 0, op);
        let w: TernaryTensor;
        try {
          w = new TernaryTensor(fmt, t.shape, packed); // takes ownership of packed
        } catch (e) {
          packed.dispose();
          throw e;
        }
        made.push(w);
        tensors[t.name] = w;
      }
    }
  } catch (e) {
    for (const x of made) x.dispose();
    throw e;
  }
  return { metadata, types, tensors, version, alignment };
}
