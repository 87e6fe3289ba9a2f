/**
 * The GGUF writer behind `bn.gguf.write` (src/io/gguf.ts, whose header describes the format and
 * the rules); the type-code tables come from src/io/gguf_read.ts.
 * @module
 */
import { DTypeError, DisposedTensorError, ShapeError, ValueError, fmtShape, show } from "../errors.ts";
import { TernaryTensor } from "../quant/ternary.ts";
import { Tensor } from "../tensor.ts";
import { tensorBytes } from "./bytes.ts";
import { closeSync, openSync, writeSync } from "node:fs";
import type { GGUFContents, GGUFScalarType, GGUFType } from "./gguf.ts";
import { ARRAY_CODE, BLOCKS_GGML, DEFAULT_ALIGNMENT, DTYPE_GGML, GGML_MAX_DIMS, SCALAR_CODES, SCALAR_SIZE } from "./gguf_read.ts";

const utf8enc = new TextEncoder();

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
  if (c === undefined || !Object.hasOwn(SCALAR_CODES, t)) throw new ValueError("gguf.write", `${what}: unknown GGUF type ${show(t)}`);
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

/**
 * Writes a GGUF v3 file: `metadata` (types from `types` or inferred, see the module notes) and
 * `tensors` (f32 / f16 / bf16 / i8 / i16 / i32 Tensors of up to 4 dimensions, and `TernaryTensor`s
 * of format "tq1_0" / "tq2_0", written as TQ1_0 / TQ2_0 with their packed bytes unchanged), in the
 * order given, each aligned to `general.alignment` (default 32). Everything is validated before
 * the file is opened.
 * @throws DTypeError (a tensor dtype GGUF cannot hold here; an "i2" TernaryTensor, which has no
 *   ggml type: write `w.toFormat("tq2_0")`), ShapeError (more than 4 dimensions, a zero
 *   dimension), DisposedTensorError (a disposed tensor), ValueError (a metadata value that does
 *   not fit its type, a tensor that is neither a Tensor nor a TernaryTensor).
 */
export function write(path: string, contents: GGUFContents): void {
  const op = "gguf.write";
  if (typeof path !== "string") throw new ValueError(op, `path must be a string, got ${typeof path}`);
  if (typeof contents !== "object" || contents === null) throw new ValueError(op, "expects { metadata, tensors }");
  const metadata = contents.metadata ?? {};
  const types = contents.types ?? {};
  const entries: [string, Tensor | TernaryTensor][] =
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
      if (code === undefined) throw new DTypeError(op, `tensor ${show(name)} is ${x._dt.name}; GGUF tensors here are f32, f16, bf16, i8, i16 or i32`);
      shape = x._shape.length === 0 ? [1] : x._shape.slice();
      ggml = code;
      t = x;
      nbytes = x._size * x._dt.size;
    } else if (x instanceof TernaryTensor) {
      if (x.disposed) throw new DisposedTensorError(op, `tensor ${show(name)}: this TernaryTensor was disposed`);
      const fmt = x.format;
      if (fmt === "i2") {
        throw new DTypeError(op, `tensor ${show(name)} is an "i2" TernaryTensor ${fmtShape(x.shape)}, our own layout with no ggml type: call w.toFormat("tq2_0") (or "tq1_0") first and write that`);
      }
      shape = x.shape;
      ggml = BLOCKS_GGML[fmt];
      t = x.packed; // u8 [rows, bytesPerRow]: the ggml blocks, rows back to back
      nbytes = t._size;
    } else {
      throw new ValueError(op, `tensor ${show(name)} must be a Tensor or a TernaryTensor, got ${x === null ? "null" : typeof x}`);
    }
    if (shape.length > GGML_MAX_DIMS) throw new ShapeError(op, `tensor ${show(name)} ${fmtShape(shape)} has more than ${GGML_MAX_DIMS} dimensions (ggml's limit)`);
    if (shape.includes(0)) throw new ShapeError(op, `tensor ${show(name)} ${fmtShape(shape)} is empty; ggml cannot load zero-sized dimensions`);
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
