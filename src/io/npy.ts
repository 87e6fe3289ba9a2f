/**
 * NumPy's `.npy` files: `bn.save(path, tensor)` and `bn.load(pathOrBytes)`.
 *
 * Format: the magic "\x93NUMPY", a major and minor version (1.0: a u16 header length; 2.0 and
 * 3.0: u32; 3.0 allows UTF-8 in the header), then a Python dict literal `{'descr': '<f4',
 * 'fortran_order': False, 'shape': (2, 3), }` padded with spaces to a multiple of 64 bytes
 * (16 in old files) and ended by "\n", then the elements.
 *
 * Reading accepts versions 1.0, 2.0 and 3.0, C and Fortran order (a Fortran file is read in
 * place through its strides into a row-major tensor), 0-d and empty arrays, and the
 * little-endian (or byte-order-free) dtypes we have: `<f4` f32, `<f2` f16, `|i1` i8, `<i2` i16,
 * `<i4` i32, `|u1` u8, `<u2` u16, `<u4` u32, `|b1` bool. Big-endian data and dtypes we lack
 * (float64, int64, complex, structured, object...) are a FormatError naming the descr; convert
 * in NumPy first (`a.astype(np.float32)`). Every length is checked against the bytes present.
 *
 * Writing produces exactly what `np.save` writes for the same array (version 1.0, or 2.0 when the
 * header would not fit in 65535 bytes; NumPy's header padding included), always in C order.
 * **bf16 has no NumPy dtype: `save` refuses it with a DTypeError** (convert with
 * `t.astype("f32")` first, which is exact), rather than writing raw bits that would load back as
 * u16 without anyone noticing.
 * @module
 */
import { type DType, dtypeInfo } from "../dtype.ts";
import { DTypeError, FormatError, ValueError, fmtShape, show } from "../errors.ts";
import { Tensor } from "../tensor.ts";
import { inputBytes, tensorBytes, tensorFromBytes } from "./bytes.ts";
import { writeFileSync } from "node:fs";

const DESCR: Partial<Record<DType, string>> = {
  f32: "<f4",
  f16: "<f2",
  i8: "|i1",
  i16: "<i2",
  i32: "<i4",
  u8: "|u1",
  u16: "<u2",
  u32: "<u4",
  bool: "|b1",
};
const FROM_DESCR: Record<string, DType> = {};
for (const [d, s] of Object.entries(DESCR)) {
  FROM_DESCR[s] = d as DType;
  FROM_DESCR[`=${s.slice(1)}`] = d as DType; // native order (little-endian hosts only)
  if (s[0] === "|") FROM_DESCR[`<${s.slice(1)}`] = d as DType;
}
const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const NAMES: Record<string, string> = { f8: "float64", i8: "int64", u8: "uint64", c8: "complex64", c16: "complex128", f16: "float128", O: "object" };

// ---- the header's Python literal --------------------------------------------------------------

type PyValue = string | boolean | number | PyValue[] | { [k: string]: PyValue } | null;

/** Parses the small subset of Python literals NumPy writes in headers. */
function parsePy(text: string, fail: (why: string) => never): PyValue {
  let i = 0;
  const ws = () => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  const value = (depth: number): PyValue => {
    if (depth > 8) fail("header nests too deeply");
    ws();
    const c = text[i];
    if (c === "{" || c === "(" || c === "[") {
      const close = c === "{" ? "}" : c === "(" ? ")" : "]";
      i++;
      const items: PyValue[] = [];
      const dict: { [k: string]: PyValue } = Object.create(null);
      for (;;) {
        ws();
        if (text[i] === close) {
          i++;
          break;
        }
        const v = value(depth + 1);
        if (c === "{") {
          ws();
          if (text[i] !== ":") fail(`expected ':' after a key at header character ${i}`);
          i++;
          if (typeof v !== "string") fail("a header key is not a string");
          dict[v] = value(depth + 1);
        } else items.push(v);
        ws();
        if (text[i] === ",") i++;
        else if (text[i] !== close) fail(`expected ',' or '${close}' at header character ${i}`);
      }
      return c === "{" ? dict : items;
    }
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, i + 1);
      if (end < 0) fail("unterminated string in the header");
      const s = text.slice(i + 1, end);
      if (s.includes("\\")) fail("escapes in header strings are not supported");
      i = end + 1;
      return s;
    }
    const m = /^(True|False|None|-?\d+)L?/.exec(text.slice(i, i + 32));
    if (!m) fail(`unexpected ${show(text.slice(i, i + 10))} at header character ${i}`);
    i += m[0].length;
    return m[1] === "True" ? true : m[1] === "False" ? false : m[1] === "None" ? null : Number(m[1]);
  };
  const v = value(0);
  ws();
  if (i !== text.length) fail(`unexpected ${show(text.slice(i, i + 10))} after the header dict`);
  return v;
}

// ---- load -------------------------------------------------------------------------------------

/**
 * Loads a `.npy` file (a path, or its bytes) into a new row-major tensor.
 * @throws FormatError for a malformed file, big-endian data or a dtype without an equivalent here.
 */
export function load(pathOrBytes: string | Uint8Array | ArrayBuffer): Tensor {
  const op = "load";
  const bytes = inputBytes(pathOrBytes, op);
  const where = typeof pathOrBytes === "string" ? ` in ${pathOrBytes}` : "";
  const fail = (why: string): never => {
    throw new FormatError(op, `${why}${where}`);
  };
  if (bytes.length < 10) fail(`truncated: ${bytes.length} bytes is shorter than the 10-byte .npy preamble`);
  for (let k = 0; k < 6; k++) if (bytes[k] !== MAGIC[k]) fail(`bad magic at byte ${k}: not a .npy file (expected "\\x93NUMPY")`);
  const major = bytes[6]!;
  const minor = bytes[7]!;
  if (!((major === 1 || major === 2 || major === 3) && minor === 0)) fail(`unsupported .npy version ${major}.${minor} (supported: 1.0, 2.0, 3.0)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let hlen: number;
  let start: number;
  if (major === 1) {
    hlen = dv.getUint16(8, true);
    start = 10;
  } else {
    if (bytes.length < 12) fail(`truncated: ${bytes.length} bytes is shorter than the 12-byte version ${major}.0 preamble`);
    hlen = dv.getUint32(8, true);
    start = 12;
  }
  if (start + hlen > bytes.length) fail(`truncated: the header is ${hlen} bytes but only ${bytes.length - start} follow the preamble`);
  let text: string;
  try {
    text = new TextDecoder(major === 3 ? "utf-8" : "latin1", { fatal: true }).decode(bytes.subarray(start, start + hlen));
  } catch {
    return fail("the header is not valid text");
  }
  const hdr = parsePy(text.trim(), (why) => fail(`malformed header (${why}): ${show(text.slice(0, 120))}`));
  if (typeof hdr !== "object" || hdr === null || Array.isArray(hdr)) return fail("the header is not a dict");
  const keys = Object.keys(hdr).sort().join(",");
  if (keys !== "descr,fortran_order,shape") fail(`the header must have the keys descr, fortran_order and shape, got ${keys || "none"}`);
  const { descr, fortran_order: fortran, shape: rawShape } = hdr as { descr: PyValue; fortran_order: PyValue; shape: PyValue };
  if (typeof descr !== "string") return fail(`descr ${show(descr)} is a structured dtype; only plain dtypes are supported`);
  if (typeof fortran !== "boolean") return fail(`fortran_order must be True or False, got ${show(fortran)}`);
  if (!Array.isArray(rawShape) || !rawShape.every((d) => typeof d === "number" && Number.isSafeInteger(d) && d >= 0)) {
    return fail(`shape must be a tuple of non-negative integers, got ${show(rawShape)}`);
  }
  const shape = rawShape as number[];
  const dtype = Object.hasOwn(FROM_DESCR, descr) ? FROM_DESCR[descr] : undefined;
  if (dtype === undefined) {
    if (descr[0] === ">") fail(`big-endian data (descr '${descr}') is not supported; save it little-endian (a.astype(a.dtype.newbyteorder('<')))`);
    const kind = descr.slice(1);
    fail(`dtype '${descr}'${NAMES[kind] ? ` (${NAMES[kind]})` : ""} has no equivalent here (f32 f16 i8 i16 i32 u8 u16 u32 bool); convert it in NumPy first, e.g. a.astype(np.float32)`);
  }
  const dt = dtypeInfo(dtype);
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (n > Number.MAX_SAFE_INTEGER) fail(`shape ${fmtShape(shape)} is too large`);
  }
  const dataStart = start + hlen;
  const need = n * dt.size;
  if (need > bytes.length - dataStart) fail(`truncated: ${descr} ${fmtShape(shape)} needs ${need} data bytes but ${bytes.length - dataStart} follow the header (at byte ${dataStart})`);
  const data = bytes.subarray(dataStart, dataStart + need);
  if (!fortran || shape.length < 2) return tensorFromBytes(data, shape.slice(), dt, 0, op);
  // Fortran order: element (i0, i1, ...) is at i0 + s0 * (i1 + s1 * ...).
  const strides: number[] = [];
  let acc = 1;
  for (const d of shape) {
    strides.push(acc);
    acc *= d;
  }
  return tensorFromBytes(data, shape.slice(), dt, 0, op, strides);
}

// ---- save -------------------------------------------------------------------------------------

/** The header np.save writes for a C-order array (numpy/lib/format.py, `_write_array_header`). */
function header(descr: string, shape: readonly number[]): Uint8Array {
  const shp = shape.length === 0 ? "()" : shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let h = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shp}, }`;
  // NumPy leaves room for the first axis to grow (GROWTH_AXIS_MAX_DIGITS = 21).
  if (shape.length > 0) h += " ".repeat(Math.max(0, 21 - String(shape[0]).length));
  const build = (major: number): Uint8Array | null => {
    const pre = major === 1 ? 10 : 12;
    const hlen = h.length + 1;
    const padlen = 64 - ((pre + hlen) % 64); // 1..64, as NumPy
    const total = hlen + padlen;
    if (major === 1 && total > 0xffff) return null;
    const out = new Uint8Array(pre + total);
    out.set(MAGIC, 0);
    out[6] = major;
    out[7] = 0;
    const dv = new DataView(out.buffer);
    if (major === 1) dv.setUint16(8, total, true);
    else dv.setUint32(8, total, true);
    for (let k = 0; k < h.length; k++) out[pre + k] = h.charCodeAt(k);
    out.fill(0x20, pre + h.length, pre + total - 1);
    out[pre + total - 1] = 0x0a;
    return out;
  };
  return build(1) ?? build(2)!;
}

/**
 * Saves a tensor as a `.npy` file NumPy reads (`np.load`): C order, little-endian, the tensor's
 * dtype. Any view is accepted (its elements are written in row-major order).
 * @throws DTypeError for bf16 (no NumPy dtype: convert with `t.astype("f32")`, which is exact).
 */
export function save(path: string, tensor: Tensor): void {
  const op = "save";
  if (typeof path !== "string") throw new ValueError(op, `path must be a string, got ${typeof path}`);
  if (!(tensor instanceof Tensor)) throw new DTypeError(op, `expects a Tensor, got ${tensor === null ? "null" : typeof tensor}`);
  tensor._live(op);
  const descr = DESCR[tensor._dt.name];
  if (descr === undefined) {
    throw new DTypeError(op, `${tensor._dt.name} ${fmtShape(tensor._shape)} has no NumPy dtype; save t.astype("f32") instead (exact for bf16)`);
  }
  const h = header(descr, tensor._shape);
  const body = tensorBytes(tensor, op);
  const out = new Uint8Array(h.length + body.length);
  out.set(h, 0);
  out.set(body, h.length);
  writeFileSync(path, out);
}
