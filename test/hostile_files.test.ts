// Hostile inputs for the file readers (bn.gguf.read, bn.load) and the packed ternary decoders.
// Valid files written by the library itself (and a few NumPy fixtures for Fortran order and the
// 2.0 / 3.0 headers) are truncated at every length, flipped, overwritten, have their header fields
// set to huge / negative / overflowing values, or are replaced by random bytes. Properties, for
// every input: no crash or hang; a failure is a bn.BitNetError (never a plain Error, RangeError,
// TypeError); a failed read allocates nothing; a successful read returns tensors whose native
// allocations hold exactly the bytes their shapes need, and disposing them frees everything.
// Ternary codes: any byte pattern gives a result or a BitNetError; unpack follows ggml's decoders
// (TQ2_0 / i2 code 3 reads as +2, a TQ1_0 byte above 242 decodes to some base-3 digits), and
// dequantize and ternaryMatmul agree with unpack. Everything is driven by a seeded PRNG.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as bn from "../src/index.ts";
import { tempDirs } from "./helpers.ts";

// ---- seeded PRNG (mulberry32) ----------------------------------------------------------------
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    bytes(n: number): Uint8Array {
      const b = new Uint8Array(n);
      for (let i = 0; i < n; i++) b[i] = Math.floor(next() * 256);
      return b;
    },
  };
}
type Rng = ReturnType<typeof prng>;

const ITEM: Record<string, number> = { f32: 4, f16: 2, bf16: 2, i8: 1, i16: 2, i32: 4, u8: 1, u16: 2, u32: 4, bool: 1 };
const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

// ---- the harness -------------------------------------------------------------------------------
interface Tally {
  inputs: number;
  ok: number;
  failed: Record<string, number>;
  /** Inputs that broke a property (a non-BitNetError, a leak, a wrong allocation). */
  bad: string[];
}
const newTally = (): Tally => ({ inputs: 0, ok: 0, failed: {}, bad: [] });
const totals: Record<string, Tally> = {};

let baseIds = new Set<number>();
let baseBytes = 0;
let baseLive = 0;
function rebase(): void {
  bn.memory.collect();
  baseIds = new Set(bn.memory.liveAllocations().map((a) => a.id));
  const s = bn.memory.stats();
  baseBytes = s.bytesInUse;
  baseLive = s.liveTensors;
}
/** Allocations made since rebase(). */
const fresh = () => bn.memory.liveAllocations().filter((a) => !baseIds.has(a.id));

function hex(b: Uint8Array): string {
  return Buffer.from(b.subarray(0, 96)).toString("hex") + (b.length > 96 ? `...(${b.length} bytes)` : "");
}

/** What a successful read must have allocated: one block per tensor, `bytes = size · itemsize`. */
type Expect = { dtype: string; shape: number[] }[];

function expectedOfTensor(t: bn.Tensor | bn.TernaryTensor): Expect[number] {
  if (t instanceof bn.TernaryTensor) {
    const p = t.packed; // u8 [rows, bytesPerRow]: must match the format and the logical shape
    const shape = t.shape;
    const k = shape[shape.length - 1]!;
    const bb = t.format === "tq2_0" ? 66 : t.format === "tq1_0" ? 54 : 64;
    const want = [prod(shape.slice(0, -1)), Math.ceil(k / 256) * bb];
    if (p.shape.join() !== want.join()) throw new Error(`packed shape ${p.shape} for ${t.format} ${shape}, expected ${want}`);
    return { dtype: "u8", shape: p.shape };
  }
  if (t.size !== prod(t.shape)) throw new Error(`size ${t.size} for shape ${t.shape}`);
  return { dtype: t.dtype, shape: t.shape };
}

/** Checks that the live allocations made by a read are exactly `want`, each `bytes = size · itemsize`. */
function checkAllocations(want: Expect): string | null {
  const got = fresh();
  if (got.length !== want.length) return `${got.length} allocations for ${want.length} tensors`;
  for (const a of got) {
    const item = ITEM[a.dtype];
    if (item === undefined) return `allocation of dtype ${a.dtype}`;
    if (a.bytes !== prod(a.shape) * item) return `allocation ${a.dtype} [${a.shape}] holds ${a.bytes} bytes`;
  }
  const key = (e: { dtype: string; shape: readonly number[] }) => `${e.dtype}[${e.shape.join(",")}]`;
  const g = got.map(key).sort().join(" ");
  const w = want.map(key).sort().join(" ");
  return g === w ? null : `allocations ${g} for tensors ${w}`;
}

/**
 * Feeds one input to a reader. `use` inspects a successful result and returns the tensors it
 * holds. Records any property violation in the tally (asserted once per test, with examples).
 */
function feed<R>(tally: Tally, what: string, input: Uint8Array, read: (b: Uint8Array) => R, tensorsOf: (r: R) => (bn.Tensor | bn.TernaryTensor)[]): void {
  tally.inputs++;
  let result: R;
  try {
    result = read(input);
  } catch (e) {
    if (!(e instanceof bn.BitNetError)) {
      tally.bad.push(`${what}: threw ${(e as Error)?.constructor?.name} ${String((e as Error)?.message ?? e).slice(0, 200)} for ${hex(input)}`);
    } else {
      const name = e.constructor.name;
      tally.failed[name] = (tally.failed[name] ?? 0) + 1;
    }
    const s = bn.memory.stats();
    if (s.bytesInUse !== baseBytes || s.liveTensors !== baseLive) {
      tally.bad.push(`${what}: a failed read left ${s.bytesInUse - baseBytes} bytes / ${s.liveTensors - baseLive} tensors allocated (${hex(input)})`);
      rebase();
    }
    return;
  }
  tally.ok++;
  let ts: (bn.Tensor | bn.TernaryTensor)[] = [];
  try {
    ts = tensorsOf(result);
    const err = checkAllocations(ts.map(expectedOfTensor));
    if (err) tally.bad.push(`${what}: ${err} (${hex(input)})`);
    for (const t of ts) {
      if (t instanceof bn.Tensor) {
        if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) tally.bad.push(`${what}: shape ${t.shape}`);
        if (t.size > 0 && t.size <= 4096) {
          // Read every byte back through the engine: a short buffer would show here (or crash).
          const arr = t.toArray();
          const flat = Array.isArray(arr) ? arr.flat(8) : [arr];
          if (flat.length !== t.size) tally.bad.push(`${what}: toArray gave ${flat.length} of ${t.size} elements`);
        }
      } else if (t.format !== "i2" && prod(t.shape) > 0 && prod(t.shape) <= 4096) {
        using u = t.unpack();
        if (u.size !== prod(t.shape)) tally.bad.push(`${what}: unpack gave ${u.size} values for ${t.shape}`);
      }
    }
  } catch (e) {
    tally.bad.push(`${what}: checking a successful read threw ${(e as Error)?.constructor?.name} ${(e as Error)?.message}`);
  } finally {
    for (const t of ts) t.dispose();
  }
  const s = bn.memory.stats();
  if (s.bytesInUse !== baseBytes || s.liveTensors !== baseLive) {
    tally.bad.push(`${what}: after disposing a read's tensors ${s.bytesInUse - baseBytes} bytes / ${s.liveTensors - baseLive} tensors remain (${hex(input)})`);
    rebase();
  }
}

function assertTally(name: string, t: Tally, minInputs: number): void {
  totals[name] = t;
  console.log(`${name}: ${t.inputs} inputs, ${t.ok} read, failures ${JSON.stringify(t.failed)}, violations ${t.bad.length}`);
  expect(t.bad.slice(0, 8)).toEqual([]);
  expect(t.inputs).toBeGreaterThanOrEqual(minInputs);
}

const readGguf = (b: Uint8Array) => bn.gguf.read(b);
const ggufTensors = (f: bn.GGUFFile) => Object.values(f.tensors);
const readNpy = (b: Uint8Array) => bn.load(b);
const npyTensors = (t: bn.Tensor) => [t];

// ---- generic mutations -------------------------------------------------------------------------
/** Every truncation (or, past `maxAll`, every one in the first `maxAll` bytes and a dense sample after). */
function* truncations(b: Uint8Array, maxAll = 4096): Generator<[string, Uint8Array]> {
  const step = b.length <= maxAll ? 1 : Math.ceil(b.length / maxAll);
  for (let n = 0; n < b.length; n += n < 1024 ? 1 : step) yield [`truncated to ${n}`, b.subarray(0, n)];
}

function* flips(b: Uint8Array, rng: Rng, count: number, headerBytes = b.length): Generator<[string, Uint8Array]> {
  for (let i = 0; i < count; i++) {
    const c = b.slice();
    const k = 1 + rng.int(3);
    for (let j = 0; j < k; j++) c[rng.int(Math.min(headerBytes, c.length))]! ^= 1 + rng.int(255);
    yield [`${k} byte flips #${i}`, c];
  }
}

function* overwrites(b: Uint8Array, rng: Rng, count: number, headerBytes = b.length): Generator<[string, Uint8Array]> {
  for (let i = 0; i < count; i++) {
    const c = b.slice();
    const at = rng.int(Math.min(headerBytes, c.length));
    const n = 2 + rng.int(15);
    const mode = rng.int(4);
    for (let j = at; j < Math.min(c.length, at + n); j++) c[j] = mode === 0 ? 0xff : mode === 1 ? 0 : mode === 2 ? 0x7f : rng.int(256);
    yield [`overwrite ${n} bytes at ${at} (mode ${mode}) #${i}`, c];
  }
}

/** Inserted or deleted bytes (every later field shifts). */
function* shifts(b: Uint8Array, rng: Rng, count: number, headerBytes = b.length): Generator<[string, Uint8Array]> {
  for (let i = 0; i < count; i++) {
    const at = rng.int(Math.min(headerBytes, b.length));
    const n = 1 + rng.int(8);
    if (rng.int(2) === 0) {
      const c = new Uint8Array(b.length + n);
      c.set(b.subarray(0, at));
      c.set(rng.bytes(n), at);
      c.set(b.subarray(at), at + n);
      yield [`insert ${n} at ${at}`, c];
    } else {
      const c = new Uint8Array(Math.max(0, b.length - n));
      c.set(b.subarray(0, Math.min(at, c.length)));
      if (at + n < b.length) c.set(b.subarray(at + n), at);
      yield [`delete ${n} at ${at}`, c];
    }
  }
}

/** The same bytes at an odd byte offset of a larger buffer (unaligned typed-array reads). */
function unaligned(b: Uint8Array): Uint8Array {
  const buf = new Uint8Array(b.length + 3);
  buf.set(b, 1);
  return buf.subarray(1, 1 + b.length);
}

// ---- GGUF: valid files written by the library, and where their fields lie ---------------------
const tmp = tempDirs()("hostile-");
interface Field {
  at: number;
  size: 4 | 8;
  what: string;
}

/** Walks a valid GGUF file (as written by bn.gguf.write) and lists every length / count / code field. */
function ggufFields(b: Uint8Array, alignment = 32): { fields: Field[]; headerEnd: number; dataEnd: number } {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const fields: Field[] = [
    { at: 4, size: 4, what: "version" },
    { at: 8, size: 8, what: "tensor count" },
    { at: 16, size: 8, what: "metadata count" },
  ];
  let p = 24;
  const str = (what: string) => {
    fields.push({ at: p, size: 8, what: `${what} length` });
    const n = Number(dv.getBigUint64(p, true));
    p += 8 + n;
  };
  const SIZES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const value = (code: number, what: string): void => {
    if (code === 8) return str(what);
    if (code === 9) {
      fields.push({ at: p, size: 4, what: `${what} element type` });
      const ec = dv.getUint32(p, true);
      fields.push({ at: p + 4, size: 8, what: `${what} array length` });
      const n = Number(dv.getBigUint64(p + 4, true));
      p += 12;
      for (let i = 0; i < n; i++) value(ec, `${what}[${i}]`);
      return;
    }
    if (SIZES[code] === 4 || SIZES[code] === 8) fields.push({ at: p, size: SIZES[code] as 4 | 8, what: `${what} value` });
    p += SIZES[code]!;
  };
  const nt = Number(dv.getBigUint64(8, true));
  const nkv = Number(dv.getBigUint64(16, true));
  for (let i = 0; i < nkv; i++) {
    str(`key ${i}`);
    fields.push({ at: p, size: 4, what: `key ${i} value type` });
    const code = dv.getUint32(p, true);
    p += 4;
    value(code, `key ${i}`);
  }
  const BYTES_PER_WEIGHT: Record<number, number> = { 0: 4, 1: 2, 30: 2, 24: 1, 25: 2, 26: 4, 34: 54 / 256, 35: 66 / 256 };
  let end = 0;
  for (let i = 0; i < nt; i++) {
    str(`tensor ${i} name`);
    fields.push({ at: p, size: 4, what: `tensor ${i} n_dims` });
    const nd = dv.getUint32(p, true);
    p += 4;
    let n = 1;
    for (let j = 0; j < nd; j++) {
      fields.push({ at: p, size: 8, what: `tensor ${i} ne[${j}]` });
      n *= Number(dv.getBigUint64(p, true));
      p += 8;
    }
    fields.push({ at: p, size: 4, what: `tensor ${i} type` });
    fields.push({ at: p + 4, size: 8, what: `tensor ${i} offset` });
    end = Math.max(end, Number(dv.getBigUint64(p + 4, true)) + n * BYTES_PER_WEIGHT[dv.getUint32(p, true)]!);
    p += 12;
  }
  // Where the last tensor's bytes end (the file may carry alignment padding after it).
  const dataEnd = nt === 0 ? p : Math.ceil(p / alignment) * alignment + end;
  return { fields, headerEnd: p, dataEnd };
}

const U32_VALUES = [0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 16, 24, 30, 34, 35, 36, 0x7f, 0xff, 0x100, 0xffff, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0x03000000];
const U64_VALUES = [
  0n, 1n, 2n, 255n, 256n, 257n, 4096n, 65536n, 0x7fffffffn, 0xffffffffn, 0x100000000n, 2n ** 31n * 3n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n,
  2n ** 62n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 256n, 2n ** 64n - 1n, // the last three are negative as i64
];

function ggufFieldMutations(b: Uint8Array): [string, Uint8Array][] {
  const { fields } = ggufFields(b);
  const out: [string, Uint8Array][] = [];
  for (const f of fields) {
    const dv0 = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const orig = f.size === 4 ? BigInt(dv0.getUint32(f.at, true)) : dv0.getBigUint64(f.at, true);
    const mask = f.size === 4 ? 0xffffffffn : 2n ** 64n - 1n;
    const vals = new Set<bigint>([...(f.size === 4 ? U32_VALUES.map(BigInt) : U64_VALUES), (orig + 1n) & mask, (orig - 1n) & mask, (orig * 2n) & mask, (orig + 32n) & mask, (orig << 32n) & mask]);
    for (const v of vals) {
      if (v === orig) continue;
      const c = b.slice();
      const dv = new DataView(c.buffer);
      if (f.size === 4) dv.setUint32(f.at, Number(v), true);
      else dv.setBigUint64(f.at, v, true);
      out.push([`${f.what} = ${v}`, c]);
    }
  }
  return out;
}

interface GgufBase {
  name: string;
  bytes: Uint8Array;
  alignment?: number;
}
let ggufBases: GgufBase[] = [];

function writeGguf(name: string, contents: bn.GGUFContents): Uint8Array {
  const path = join(tmp, `${name}.gguf`);
  bn.gguf.write(path, contents);
  for (const t of contents.tensors instanceof Map ? contents.tensors.values() : Object.values(contents.tensors)) t.dispose();
  return new Uint8Array(readFileSync(path));
}

function makeGgufBases(): GgufBase[] {
  const w = bn.randn([3, 512], { seed: 11 });
  const tq2 = bn.quant.ternary(w, { format: "tq2_0", granularity: "channel" });
  const tq1 = bn.quant.ternary(w, { format: "tq1_0", granularity: { group: 256 } });
  w.dispose();
  const floats = writeGguf("floats", {
    metadata: {
      "general.architecture": "bitnet",
      "t.u8": 200, "t.i8": -5, "t.u16": 60000, "t.i16": -30000, "t.u32": 4000000000, "t.i32": -7,
      "t.f32": 0.25, "t.f64": Math.PI, "t.bool": true, "t.str": "héllo", "t.u64": 2n ** 60n, "t.i64": -(2n ** 40n),
      "t.arr_u8": new Uint8Array([1, 2, 3]), "t.arr_f32": new Float32Array([0.5, -1]), "t.arr_str": ["a", "", "ü"],
      "t.arr_bool": [true, false], "t.nested": [new Int32Array([1, 2]), new Int32Array([3])], "t.arr_i64": new BigInt64Array([-1n, 5n]),
    },
    types: { "t.u8": "u8", "t.i8": "i8", "t.u16": "u16", "t.i16": "i16", "t.u32": "u32", "t.i32": "i32", "t.f64": "f64", "t.u64": "u64", "t.i64": "i64" },
    tensors: {
      a: bn.arange(15, undefined, undefined, { dtype: "f32" }).reshape([3, 5]),
      h: bn.linspace(-1, 1, 7, { dtype: "f16" }),
      b: bn.arange(12, undefined, undefined, { dtype: "bf16" }).reshape([2, 2, 3]),
      s: bn.tensor(2.5),
      q: bn.ones([1, 1, 2, 2], { dtype: "i16" }),
    },
  });
  const ternary = writeGguf("ternary", {
    metadata: { "general.alignment": 64, "general.name": "tq", "t.scale": 1.5 },
    tensors: { "w.tq2": tq2, "w.tq1": tq1, bias: bn.full([3], 0.5) },
  });
  const metaOnly = writeGguf("meta", { metadata: { k: "v", n: 3, deep: [[[1, 2]], [[3]]] }, tensors: {} });
  return [
    { name: "f32/f16/bf16 + metadata", bytes: floats },
    { name: "tq2_0/tq1_0 align 64", bytes: ternary, alignment: 64 },
    { name: "metadata only", bytes: metaOnly },
  ];
}

// ---- .npy: valid files written by bn.save, plus hand-built headers ------------------------------
let npyBases: GgufBase[] = [];

function npyHeader(dict: string, major = 1, hlenOverride?: number): Uint8Array {
  const pre = major === 1 ? 10 : 12;
  const body = new TextEncoder().encode(dict);
  const total = Math.ceil((pre + body.length + 1) / 64) * 64 - pre;
  const out = new Uint8Array(pre + total);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const dv = new DataView(out.buffer);
  if (major === 1) dv.setUint16(8, hlenOverride ?? total, true);
  else dv.setUint32(8, hlenOverride ?? total, true);
  out.set(body, pre);
  out.fill(0x20, pre + body.length, pre + total - 1);
  out[pre + total - 1] = 0x0a;
  return out;
}
const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

function makeNpyBases(): GgufBase[] {
  const save = (name: string, t: bn.Tensor) => {
    const path = join(tmp, `${name}.npy`);
    bn.save(path, t);
    t.dispose();
    return { name, bytes: new Uint8Array(readFileSync(path)) };
  };
  const fx = (f: string) => ({ name: `fixture ${f}`, bytes: new Uint8Array(readFileSync(join(import.meta.dir, "fixtures", "io", f))) });
  const bases = [
    save("f32 [3,4]", bn.arange(12).reshape([3, 4])),
    save("f16 [5]", bn.linspace(0, 1, 5, { dtype: "f16" })),
    save("i8 [2,3,2]", bn.arange(12, undefined, undefined, { dtype: "i8" }).reshape([2, 3, 2])),
    save("u16 0-d", bn.tensor(7, { dtype: "u16" })),
    save("bool [4]", bn.tensor([true, false, true, true], { dtype: "bool" })),
    save("i32 [0,3]", bn.zeros([0, 3], { dtype: "i32" })),
    save("u32 [2,2,1,2]", bn.ones([2, 2, 1, 2], { dtype: "u32" })),
    fx("fortran.npy"),
    fx("v2.npy"),
    fx("v3.npy"),
  ];
  // Fortran order of our own f32 file: the same header with True in place of False.
  const f = bases[0]!.bytes.slice();
  const text = new TextDecoder("latin1").decode(f.subarray(10, 80));
  const at = 10 + text.indexOf("False");
  f.set(new TextEncoder().encode("True "), at);
  bases.push({ name: "f32 [3,4] fortran (edited)", bytes: f });
  return bases;
}

/** Header dicts that must be refused (or read correctly), as a reader meets them in the wild. */
function hostileNpyHeaders(): [string, Uint8Array][] {
  const d = (descr: string, fortran: string, shape: string) => `{'descr': ${descr}, 'fortran_order': ${fortran}, 'shape': ${shape}, }`;
  const big = [
    "(9007199254740991,)", "(9007199254740992,)", "(99999999999999999999999,)", "(4294967296, 4294967296)", "(-1,)", "(-9007199254740991, -1)",
    "(3, -4)", "(0, 9007199254740991, 9007199254740991)", "(1e3,)", "(0x10,)", "(2**62,)", "(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33)",
    "()", "(,)", "((2,3),)", "[3]", "{'a': 1}", "(True,)", "(None,)", "('3',)", "(3L,)", "(-0,)", "(" + "(".repeat(40) + ")".repeat(41), "(65536, 65536, 65536)",
  ];
  const descrs = ["'<f4'", "'>f4'", "'<f8'", "'|O'", "'toString'", "'__proto__'", "'constructor'", "'hasOwnProperty'", "''", "'<'", "'=f4'", "'<u1'", "[('a', '<f4')]", "None", "4", "'<f4", "'\\x00'", "'<f4' '<f4'"];
  const forts = ["False", "True", "0", "1", "None", "'False'", "Falsey"];
  const dicts: string[] = [];
  for (const s of big) dicts.push(d("'<f4'", "False", s), d("'<f4'", "True", s));
  for (const s of descrs) dicts.push(d(s, "False", "(2,)"), d(s, "True", "(2, 2)"));
  for (const f of forts) dicts.push(d("'<i2'", f, "(2, 3)"));
  dicts.push(
    "{}", "{'descr': '<f4', 'shape': (2,)}", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}",
    "{'descr': '<f4', 'descr': '<f2', 'fortran_order': False, 'shape': (2,)}", "{'descr' '<f4'}", "{'descr': '<f4',", "[1, 2, 3]", "'<f4'", "", " ",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } trailing", "{1: 2}", "{'__proto__': 1, 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\u00ff\u00fe", "{'dèscr': '<f4'}", "{" + "[".repeat(200) + "]".repeat(200) + "}",
  );
  const out: [string, Uint8Array][] = [];
  const data = new Uint8Array(64).fill(0x3f);
  for (const dict of dicts) {
    for (const major of [1, 2, 3]) out.push([`v${major} header ${dict.slice(0, 80)}`, cat(npyHeader(dict, major), data)]);
  }
  // Header lengths, versions and magic.
  const good = "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }";
  for (const hlen of [0, 1, 2, 63, 65, 0x7fff, 0xffff]) out.push([`v1 hlen ${hlen}`, cat(npyHeader(good, 1, hlen), data)]);
  for (const hlen of [0, 1, 0xffff, 0x10000, 0x7fffffff, 0xffffffff]) out.push([`v2 hlen ${hlen}`, cat(npyHeader(good, 2, hlen), data)]);
  for (const [maj, min] of [[0, 0], [1, 1], [2, 1], [4, 0], [255, 255], [1, 255]] as const) {
    const h = cat(npyHeader(good, 1), data);
    h[6] = maj;
    h[7] = min;
    out.push([`version ${maj}.${min}`, h]);
  }
  for (const magic of [[0x93, 0x4e, 0x55, 0x4d, 0x50, 0x58], [0x92, 0x4e, 0x55, 0x4d, 0x50, 0x59], [0x47, 0x47, 0x55, 0x46, 3, 0], [0, 0, 0, 0, 0, 0]]) {
    const h = cat(npyHeader(good, 1), data);
    h.set(magic);
    out.push([`magic ${magic}`, h]);
  }
  return out;
}

beforeAll(() => {
  ggufBases = makeGgufBases();
  npyBases = makeNpyBases();
});

afterAll(() => {
  const all = Object.values(totals).reduce((a, t) => a + t.inputs, 0);
  console.log(`hostile_files: ${all} inputs tried in total`);
});

// ---- tests ---------------------------------------------------------------------------------------
describe("GGUF reader (bn.gguf.read from bytes)", () => {
  test("the library's own files read back intact (the bases are valid)", () => {
    rebase();
    for (const { name, bytes } of ggufBases) {
      const f = bn.gguf.read(bytes);
      try {
        expect(checkAllocations(Object.values(f.tensors).map(expectedOfTensor))).toBeNull();
        if (name.startsWith("f32")) {
          expect((f.tensors.a as bn.Tensor).toArray()).toEqual([[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11, 12, 13, 14]]);
          expect((f.tensors.b as bn.Tensor).dtype).toBe("bf16");
          expect(f.types["t.u64"]).toBe("u64");
          expect(f.metadata["t.i64"]).toBe(-(2 ** 40));
          expect(f.metadata["t.str"]).toBe("héllo");
        }
        if (name.startsWith("tq")) {
          expect(f.alignment).toBe(64);
          expect((f.tensors["w.tq2"] as bn.TernaryTensor).format).toBe("tq2_0");
          expect((f.tensors["w.tq1"] as bn.TernaryTensor).format).toBe("tq1_0");
        }
        // The fields the mutation tests aim at are where the walker says (header end = data start).
        const { fields, headerEnd } = ggufFields(bytes);
        expect(fields.length).toBeGreaterThan(5);
        expect(headerEnd).toBeLessThanOrEqual(bytes.length);
      } finally {
        for (const t of Object.values(f.tensors)) t.dispose();
      }
    }
    expect(bn.memory.stats().bytesInUse).toBe(baseBytes);
  });

  test("every truncation length", () => {
    rebase();
    const t = newTally();
    for (const { name, bytes, alignment } of ggufBases) {
      // A prefix reads iff it still holds the last tensor's bytes (only trailing padding is cut).
      const { dataEnd } = ggufFields(bytes, alignment);
      expect(dataEnd).toBeLessThanOrEqual(bytes.length);
      for (const [w, b] of truncations(bytes)) {
        const ok = t.ok;
        feed(t, `${name} ${w}`, b, readGguf, ggufTensors);
        if (t.ok - ok !== (b.length >= dataEnd ? 1 : 0)) t.bad.push(`${name} ${w}: ${t.ok > ok ? "read" : "refused"} (data ends at ${dataEnd})`);
      }
    }
    assertTally("gguf truncations", t, 1000);
  });

  test("header fields set to huge, negative (as i64), off-by-one and shifted values", () => {
    rebase();
    const t = newTally();
    for (const { name, bytes } of ggufBases) for (const [w, b] of ggufFieldMutations(bytes)) feed(t, `${name} ${w}`, b, readGguf, ggufTensors);
    // Magic and version.
    for (const { name, bytes } of ggufBases) {
      for (const magic of ["GGUG", "gguf", "FUGG", "\0\0\0\0", "GGML", "GGJT"]) {
        const c = bytes.slice();
        c.set(new TextEncoder().encode(magic));
        feed(t, `${name} magic ${magic}`, c, readGguf, ggufTensors);
      }
    }
    assertTally("gguf header fields", t, 1500);
  });

  test("random combinations of 2-4 hostile header fields (e.g. a zero dim beside a huge one)", () => {
    rebase();
    const rng = prng(1234);
    const t = newTally();
    for (const { name, bytes, alignment } of ggufBases) {
      const { fields } = ggufFields(bytes, alignment);
      for (let i = 0; i < 1500; i++) {
        const c = bytes.slice();
        const dv = new DataView(c.buffer);
        const k = 2 + rng.int(3);
        const what: string[] = [];
        for (let j = 0; j < k; j++) {
          const f = fields[rng.int(fields.length)]!;
          if (f.size === 4) {
            const v = U32_VALUES[rng.int(U32_VALUES.length)]!;
            dv.setUint32(f.at, v, true);
            what.push(`${f.what} = ${v}`);
          } else {
            const v = U64_VALUES[rng.int(U64_VALUES.length)]!;
            dv.setBigUint64(f.at, v, true);
            what.push(`${f.what} = ${v}`);
          }
        }
        feed(t, `${name} ${what.join(", ")}`, c, readGguf, ggufTensors);
      }
    }
    assertTally("gguf field combinations", t, 4500);
  });

  test("mutated files read through a path (temp files)", () => {
    rebase();
    const rng = prng(77);
    const t = newTally();
    const d = tmp;
    let n = 0;
    for (const { name, bytes } of ggufBases) {
      for (const [w, b] of [...overwrites(bytes, rng, 60), ...flips(bytes, rng, 60)]) {
        const path = join(d, `m${n++}.gguf`);
        writeFileSync(path, b);
        feed(t, `${name} ${w} (file)`, b, () => bn.gguf.read(path), ggufTensors);
      }
    }
    for (const { name, bytes } of npyBases) {
      for (const [w, b] of [...overwrites(bytes, rng, 30, 80), ...truncations(bytes.subarray(0, 140))]) {
        const path = join(d, `m${n++}.npy`);
        writeFileSync(path, b);
        feed(t, `${name} ${w} (file)`, b, () => bn.load(path), npyTensors);
      }
    }
    assertTally("files by path", t, 1000);
  });

  test("random byte flips, multi-byte overwrites, insertions and deletions", () => {
    rebase();
    const rng = prng(0xc0ffee);
    const t = newTally();
    for (const { name, bytes } of ggufBases) {
        const { headerEnd } = ggufFields(bytes);
      for (const [w, b] of flips(bytes, rng, 2000)) feed(t, `${name} ${w}`, b, readGguf, ggufTensors);
      for (const [w, b] of flips(bytes, rng, 2000, headerEnd)) feed(t, `${name} header ${w}`, b, readGguf, ggufTensors);
      for (const [w, b] of overwrites(bytes, rng, 2000, headerEnd)) feed(t, `${name} ${w}`, b, readGguf, ggufTensors);
      for (const [w, b] of shifts(bytes, rng, 1000, headerEnd)) feed(t, `${name} ${w}`, b, readGguf, ggufTensors);
      for (const [w, b] of flips(bytes, rng, 100, headerEnd)) feed(t, `${name} unaligned ${w}`, unaligned(b), readGguf, ggufTensors);
    }
    assertTally("gguf flips/overwrites", t, 10000);
  });

  test("fully random buffers, with and without a valid GGUF preamble", () => {
    rebase();
    const rng = prng(42);
    const t = newTally();
    for (let i = 0; i < 2000; i++) feed(t, `random #${i}`, rng.bytes(rng.int(400)), readGguf, ggufTensors);
    for (let i = 0; i < 3000; i++) {
      const b = rng.bytes(24 + rng.int(400));
      b.set([0x47, 0x47, 0x55, 0x46, 2 + rng.int(2), 0, 0, 0]);
      // Small counts make the reader go further than the preamble.
      if (rng.int(2) === 0) new DataView(b.buffer).setBigUint64(8, BigInt(rng.int(3)), true);
      if (rng.int(2) === 0) new DataView(b.buffer).setBigUint64(16, BigInt(rng.int(3)), true);
      feed(t, `GGUF + random #${i}`, b, readGguf, ggufTensors);
    }
    assertTally("gguf random", t, 5000);
  });

  test("a path that is not a file, and inputs that are not bytes, are BitNetErrors", () => {
    for (const bad of [join(tmp, "missing.gguf"), tmp, "", 42, null, undefined, {}, [1, 2]]) {
      let err: unknown;
      try {
        bn.gguf.read(bad as string);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(bn.BitNetError);
    }
  });
});

describe(".npy reader (bn.load from bytes)", () => {
  test("the bases read back intact", () => {
    rebase();
    for (const { name, bytes } of npyBases) {
      const t = bn.load(bytes);
      try {
        expect(checkAllocations([expectedOfTensor(t)])).toBeNull();
        if (name === "f32 [3,4]") expect(t.toArray()).toEqual([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]);
        if (name === "f32 [3,4] fortran (edited)") {
          // The same 12 values read column-major into a [3, 4] tensor.
          expect(t.toArray()).toEqual([[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8, 11]]);
        }
      } finally {
        t.dispose();
      }
    }
    expect(bn.memory.stats().bytesInUse).toBe(baseBytes);
  });

  test("every truncation length", () => {
    rebase();
    const t = newTally();
    for (const { name, bytes } of npyBases) for (const [w, b] of truncations(bytes)) feed(t, `${name} ${w}`, b, readNpy, npyTensors);
    assertTally("npy truncations", t, 1000);
    // A prefix may only succeed if it is the empty array's whole file (nothing after the header).
    expect(t.ok).toBe(0);
  });

  test("hostile header dicts, lengths, versions and magic", () => {
    rebase();
    const t = newTally();
    for (const [w, b] of hostileNpyHeaders()) {
      feed(t, w, b, readNpy, npyTensors);
      feed(t, `unaligned ${w}`, unaligned(b), readNpy, npyTensors);
    }
    assertTally("npy headers", t, 500);
  });

  test("random byte flips, overwrites, insertions and deletions (mostly in the header)", () => {
    rebase();
    const rng = prng(7);
    const t = newTally();
    for (const { name, bytes } of npyBases) {
      const hdr = 12 + new DataView(bytes.buffer, bytes.byteOffset).getUint16(8, true);
      for (const [w, b] of flips(bytes, rng, 300)) feed(t, `${name} ${w}`, b, readNpy, npyTensors);
      for (const [w, b] of flips(bytes, rng, 600, hdr)) feed(t, `${name} header ${w}`, b, readNpy, npyTensors);
      for (const [w, b] of overwrites(bytes, rng, 600, hdr)) feed(t, `${name} ${w}`, b, readNpy, npyTensors);
      for (const [w, b] of shifts(bytes, rng, 300, hdr)) feed(t, `${name} ${w}`, b, readNpy, npyTensors);
      for (const [w, b] of flips(bytes, rng, 100, hdr)) feed(t, `${name} unaligned ${w}`, unaligned(b), readNpy, npyTensors);
    }
    assertTally("npy flips/overwrites", t, 10000);
  });

  test("fully random buffers, with and without the .npy magic", () => {
    rebase();
    const rng = prng(99);
    const t = newTally();
    for (let i = 0; i < 2000; i++) feed(t, `random #${i}`, rng.bytes(rng.int(300)), readNpy, npyTensors);
    for (let i = 0; i < 2000; i++) {
      const b = rng.bytes(10 + rng.int(300));
      b.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1 + rng.int(3), 0]);
      if (rng.int(2) === 0) new DataView(b.buffer).setUint16(8, rng.int(b.length), true);
      feed(t, `NUMPY + random #${i}`, b, readNpy, npyTensors);
    }
    assertTally("npy random", t, 4000);
  });
});

// ---- packed ternary decoders -------------------------------------------------------------------
/** ggml's decoders, written from ggml-quants.c (dequantize_row_tq2_0 / tq1_0): codes → t ∈ {-1, 0, 1, 2}. */
function refDecodeRow(format: "tq2_0" | "tq1_0" | "i2", row: Uint8Array, k: number): Int8Array {
  const out = new Int8Array(Math.ceil(k / 256) * 256);
  let y = 0;
  const bb = format === "tq2_0" ? 66 : format === "tq1_0" ? 54 : 64;
  for (let blk = 0; blk * bb < row.length; blk++) {
    const x = row.subarray(blk * bb, (blk + 1) * bb);
    if (format !== "tq1_0") {
      for (let j = 0; j < 64; j += 32) for (let l = 0; l < 4; l++) for (let m = 0; m < 32; m++) out[y++] = ((x[j + m]! >> (l * 2)) & 3) - 1;
    } else {
      const pow3 = [1, 3, 9, 27, 81, 243];
      const digit = (byte: number, n: number) => ((((byte * pow3[n]!) & 0xff) * 3) >> 8) - 1;
      for (let n = 0; n < 5; n++) for (let m = 0; m < 32; m++) out[y++] = digit(x[m]!, n);
      for (let n = 0; n < 5; n++) for (let m = 0; m < 16; m++) out[y++] = digit(x[32 + m]!, n);
      for (let n = 0; n < 4; n++) for (let j = 0; j < 4; j++) out[y++] = digit(x[48 + j]!, n);
    }
  }
  return out.subarray(0, k);
}

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

describe("packed ternary decoders on arbitrary codes", () => {
  test("any byte pattern gives ggml's values (code 3 → +2, TQ1_0 bytes > 242 → ggml's digits) or a BitNetError; dequantize and ternaryMatmul agree with unpack", () => {
    rebase();
    const rng = prng(2024);
    let tried = 0;
    let sawCode3 = 0;
    let sawHighTq1 = 0;
    let matmulChecked = 0;
    const convErrors: Record<string, number> = {};
    const bad: string[] = [];
    const formats = ["tq2_0", "tq1_0", "i2"] as const;
    for (let trial = 0; trial < 180; trial++) {
      const format = formats[trial % 3]!;
      const rows = 1 + rng.int(4);
      const k = format === "i2" ? 1 + rng.int(700) : 256 * (1 + rng.int(3));
      const nb = Math.ceil(k / 256);
      const bb = format === "tq2_0" ? 66 : format === "tq1_0" ? 54 : 64;
      const codes = rng.bytes(rows * nb * bb);
      const saneScales = trial % 4 !== 3; // else the f16 scale bytes stay random (NaN, Inf, subnormal)
      if (format !== "i2" && saneScales) {
        for (let b = 0; b < rows * nb; b++) {
          const h = 0x3400 + rng.int(0x0c00); // f16 in [0.25, 2)
          codes[b * bb + bb - 2] = h & 0xff;
          codes[b * bb + bb - 1] = h >> 8;
        }
      }
      if (format === "tq1_0" && trial % 2 === 0) for (let i = 0; i < codes.length; i += 7) codes[i] = 243 + rng.int(13); // invalid base-3 bytes
      if (format !== "tq1_0" && trial % 2 === 0) for (let i = 0; i < codes.length; i += 5) codes[i] = 0xff; // four code-3 weights
      tried++;
      const packed = bn.tensor(codes, { dtype: "u8", shape: [rows, nb * bb] });
      let scale: bn.Tensor | undefined;
      const gran = rng.int(k % 256 === 0 && k > 256 ? 3 : 2);
      let w: bn.TernaryTensor;
      try {
        if (format === "i2") {
          const sv = Float32Array.from({ length: gran === 0 ? 1 : gran === 1 ? rows : rows * (k / 256) }, () => 0.25 + rng.next() * 2);
          scale = gran === 0 ? bn.tensor(sv[0]!) : bn.tensor(sv, { shape: gran === 1 ? [rows] : [rows, k / 256] });
          w = new bn.TernaryTensor("i2", [rows, k], packed, scale, gran === 2 ? { group: 256 } : undefined);
        } else {
          w = new bn.TernaryTensor(format, [rows, k], packed);
        }
      } catch (e) {
        packed.dispose();
        scale?.dispose();
        bad.push(`${format} [${rows}, ${k}]: constructor threw ${(e as Error).constructor.name} ${(e as Error).message}`);
        continue;
      }
      try {
        // unpack: exactly ggml's decode of the same bytes (no validation, no crash).
        using u = w.unpack();
        expect(u.shape).toEqual([rows, k]);
        expect(u.dtype).toBe("i8");
        const got = u.toArray() as number[][];
        const ref: number[][] = [];
        for (let r = 0; r < rows; r++) {
          const want = refDecodeRow(format, codes.subarray(r * nb * bb, (r + 1) * nb * bb), k);
          ref.push(Array.from(want));
          for (let i = 0; i < k; i++) {
            if (want[i] === 2) sawCode3++;
            if (got[r]![i] !== want[i]) {
              bad.push(`${format} [${rows}, ${k}] row ${r} weight ${i}: unpack ${got[r]![i]}, ggml ${want[i]}`);
              break;
            }
          }
        }
        if (format === "tq1_0") for (let i = 0; i < codes.length; i++) if (i % 54 < 52 && codes[i]! > 242) sawHighTq1++;
        // dequantize = unpack · scale (f32 product), NaN where the scale is NaN.
        using d = w.dequantize();
        const sAll = w.scale.toArray() as number | number[] | number[][]; // owned by w: not disposed here
        const dq = d.toArray() as number[][];
        const scaleOf = (r: number, i: number): number =>
          typeof sAll === "number" ? sAll : Array.isArray(sAll[0]) ? (sAll as number[][])[r]![Math.floor(i / 256)]! : (sAll as number[])[r]!;
        const sTable: number[][] = [];
        for (let r = 0; r < rows; r++) sTable.push(Array.from({ length: nb }, (_, b) => scaleOf(r, b * 256)));
        if (format !== "i2") {
          for (let r = 0; r < rows; r++) {
            for (let b = 0; b < nb; b++) {
              const off = (r * nb + b) * bb + bb - 2;
              const want = f16ToF32(codes[off]! | (codes[off + 1]! << 8));
              if (!Object.is(sTable[r]![b], want) && !(Number.isNaN(want) && Number.isNaN(sTable[r]![b]))) bad.push(`${format}: block scale ${sTable[r]![b]} != f16 ${want}`);
            }
          }
        }
        for (let r = 0; r < rows && bad.length < 20; r++) {
          for (let i = 0; i < k; i++) {
            const want = Math.fround(ref[r]![i]! * sTable[r]![Math.floor(i / 256)]!);
            const g = dq[r]![i]!;
            if (!(g === want || (Number.isNaN(g) && Number.isNaN(want)))) {
              bad.push(`${format} [${rows}, ${k}] dequantize [${r}, ${i}] = ${g}, want ${want}`);
              break;
            }
          }
        }
        // ternaryMatmul: x (int8 per token inside) @ wᵀ, compared with the same arithmetic on unpack's values.
        const m = 1 + rng.int(3);
        const xv = Float32Array.from({ length: m * k }, () => rng.next() * 2 - 1);
        using x = bn.tensor(xv, { shape: [m, k] });
        using y = bn.quant.ternaryMatmul(x, w);
        expect(y.shape).toEqual([m, rows]);
        const out = y.toArray() as number[][];
        const finiteScales = sTable.every((row) => row.every(Number.isFinite));
        if (finiteScales) {
          matmulChecked++;
          for (let i = 0; i < m; i++) {
            let amax = 0;
            for (let j = 0; j < k; j++) amax = Math.max(amax, Math.abs(xv[i * k + j]!));
            const s = 127 / amax;
            for (let n = 0; n < rows; n++) {
              let acc = 0;
              let mag = 0;
              for (let b = 0; b < nb; b++) {
                let isum = 0;
                for (let j = b * 256; j < Math.min(k, (b + 1) * 256); j++) isum += Math.round(xv[i * k + j]! * s) * ref[n]![j]!;
                acc += isum * sTable[n]![b]!;
                mag += 2 * 127 * 256 * Math.abs(sTable[n]![b]!);
              }
              const want = acc / s;
              const tol = (4 * Math.max(...sTable[n]!.map(Math.abs)) + 1e-6 * mag) / s + 1e-6;
              if (!(Math.abs(out[i]![n]! - want) <= tol)) {
                bad.push(`${format} [${rows}, ${k}] ternaryMatmul [${i}, ${n}] = ${out[i]![n]}, unpack-based reference ${want} (tol ${tol})`);
              }
            }
          }
        }
        // toFormat: the same values in another format, or (for a code 3, which is not ternary) a BitNetError.
        const hasTwo = ref.some((row) => row.includes(2));
        for (const to of formats) {
          if (to !== "i2" && k % 256 !== 0) continue;
          let conv: bn.TernaryTensor | undefined;
          try {
            conv = w.toFormat(to);
            if (hasTwo) bad.push(`${format} -> ${to}: weights of +2 (code 3) converted without an error`);
            using cu = conv.unpack();
            if (JSON.stringify(cu.toArray()) !== JSON.stringify(got)) bad.push(`${format} -> ${to}: values changed`);
          } catch (e) {
            if (!(e instanceof bn.BitNetError)) bad.push(`${format} -> ${to}: threw ${(e as Error).constructor.name} ${(e as Error).message}`);
            else {
              convErrors[e.constructor.name] = (convErrors[e.constructor.name] ?? 0) + 1;
              if (!hasTwo) bad.push(`${format} -> ${to}: refused valid ternary values: ${e.message}`);
            }
          } finally {
            conv?.dispose();
          }
        }
      } catch (e) {
        if (!(e instanceof bn.BitNetError)) bad.push(`${format} [${rows}, ${k}]: threw ${(e as Error).constructor.name} ${(e as Error).message}`);
        else bad.push(`${format} [${rows}, ${k}]: ${e.constructor.name} ${e.message}`);
      } finally {
        w.dispose();
      }
    }
    // Wrongly sized code buffers are refused with a ShapeError (a BitNetError), never read past.
    for (let trial = 0; trial < 60; trial++) {
      const format = formats[trial % 3]!;
      const n = rng.int(300);
      tried++;
      const packed = bn.tensor(rng.bytes(n), { dtype: "u8", shape: [n] });
      const one = format === "i2" ? bn.tensor(1) : undefined;
      try {
        const w = format === "i2" ? new bn.TernaryTensor("i2", [2, 256], packed, one) : new bn.TernaryTensor(format, [2, 256], packed);
        w.dispose();
        if (n !== 2 * (format === "tq2_0" ? 66 : format === "tq1_0" ? 54 : 64)) bad.push(`${format}: ${n} bytes accepted for [2, 256]`);
      } catch (e) {
        packed.dispose();
        one?.dispose();
        if (!(e instanceof bn.BitNetError)) bad.push(`${format}: wrong size threw ${(e as Error).constructor.name}`);
      }
    }
    console.log(
      `ternary decoders: ${tried} code buffers, ${sawCode3} code-3 weights, ${sawHighTq1} TQ1_0 bytes > 242, ${matmulChecked} matmuls checked against unpack, toFormat refusals ${JSON.stringify(convErrors)}`,
    );
    totals["ternary"] = { inputs: tried, ok: 0, failed: {}, bad };
    expect(bad.slice(0, 8)).toEqual([]);
    expect(sawCode3).toBeGreaterThan(1000);
    expect(sawHighTq1).toBeGreaterThan(100);
    expect(matmulChecked).toBeGreaterThan(50);
    expect(Object.values(convErrors).reduce((a, b) => a + b, 0)).toBeGreaterThan(50);
    // Nothing leaked.
    expect(bn.memory.stats().bytesInUse).toBe(baseBytes);
  });

  test("invalid codes, concretely: TQ2_0 / i2 code 3 reads as +2 everywhere; TQ1_0 bytes 243..255 give ggml's digits (always -1, 0 or +1)", () => {
    rebase();
    checkInvalidCodes();
    expect(bn.memory.stats().bytesInUse).toBe(baseBytes);
  });
});

/** Invalid codes with known decodes, in each format (asserts inside). */
function checkInvalidCodes(): void {
  using x = bn.ones([1, 256]);
  // i2: every code 3, scale 1.5.
  {
    using w = new bn.TernaryTensor("i2", [1, 256], bn.tensor(new Uint8Array(64).fill(0xff), { dtype: "u8", shape: [1, 64] }), bn.tensor(1.5));
    using u = w.unpack();
    using d = w.dequantize();
    using y = bn.quant.ternaryMatmul(x, w);
    expect(new Set((u.toArray() as number[][])[0])).toEqual(new Set([2]));
    expect(new Set((d.toArray() as number[][])[0])).toEqual(new Set([3]));
    expect(y.toArray()).toEqual([[2 * 256 * 1.5]]);
    expect(() => w.toFormat("tq2_0")).toThrow(bn.BitNetError);
  }
  // tq2_0: codes 0..3 in each byte (weights -1, 0, +1, +2), d = 1.0.
  {
    const b = new Uint8Array(66).fill(0b11100100);
    b[64] = 0x00;
    b[65] = 0x3c;
    using w = new bn.TernaryTensor("tq2_0", [1, 256], bn.tensor(b, { dtype: "u8", shape: [1, 66] }));
    using u = w.unpack();
    const vals = (u.toArray() as number[][])[0]!;
    // Byte m of a half holds weights m, m + 32, m + 64, m + 96 of it in bits 0-1, 2-3, 4-5, 6-7.
    expect([vals[0], vals[32], vals[64], vals[96], vals[128], vals[224]]).toEqual([-1, 0, 1, 2, -1, 2]);
    using y = bn.quant.ternaryMatmul(x, w);
    expect(y.toArray()).toEqual([[64 * (-1 + 0 + 1 + 2)]]);
    // +2 weights cannot be stored as ternary: the same ValueError whatever the target format.
    expect(() => w.toFormat("i2")).toThrow(bn.ValueError);
    expect(() => w.toFormat("tq1_0")).toThrow(bn.ValueError);
  }
  // tq1_0: each invalid byte value 243..255 in every position.
  for (let v = 243; v <= 255; v++) {
    const b = new Uint8Array(54).fill(v);
    b[52] = 0x00;
    b[53] = 0x3c;
    using w = new bn.TernaryTensor("tq1_0", [1, 256], bn.tensor(b, { dtype: "u8", shape: [1, 54] }));
    using u = w.unpack();
    const vals = (u.toArray() as number[][])[0]!;
    expect(vals).toEqual(Array.from(refDecodeRow("tq1_0", b, 256)));
    expect(vals.every((t) => t === -1 || t === 0 || t === 1)).toBe(true);
    using y = bn.quant.ternaryMatmul(x, w);
    expect(y.toArray()).toEqual([[vals.reduce((a, c) => a + c, 0)]]);
    // Valid ternary values: they convert, and back.
    using w2 = w.toFormat("tq2_0");
    using u2 = w2.unpack();
    expect(u2.toArray()).toEqual(u.toArray());
  }
  expect(refDecodeRow("tq1_0", new Uint8Array([243, 243, ...new Array(52).fill(0)]), 256)[0]).toBe(1);
}

describe("what the fuzzing found (fixed)", () => {
  test(".npy descrs named like Object.prototype members are FormatErrors, not dtype lookups", () => {
    for (const descr of ["toString", "constructor", "hasOwnProperty", "__proto__", "valueOf"]) {
      const bytes = cat(npyHeader(`{'descr': '${descr}', 'fortran_order': False, 'shape': (2,), }`, 1), new Uint8Array(8));
      expect(() => bn.load(bytes)).toThrow(bn.FormatError);
    }
  });

  test("empty tensors with a huge axis print, and toArray refuses them with a ValueError", () => {
    using z = bn.zeros([2 ** 40, 0]);
    expect(String(z)).toBe("tensor([], dtype=f32, shape=[1099511627776, 0])");
    expect(() => z.toArray()).toThrow(bn.ValueError);
    using small = bn.zeros([2, 0]);
    expect(small.toArray()).toEqual([[], []]);
  });
});
