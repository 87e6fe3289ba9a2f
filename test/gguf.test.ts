// GGUF files (src/io/gguf.ts): files written by the gguf package (test/fixtures/gen_io.py), round
// trips (TQ1_0 / TQ2_0 tensors as TernaryTensors), ownership and leaks, and malformed files
// (truncated everywhere, corrupted fields, huge counts, misalignment).
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as bn from "../src/index.ts";
import { tempDirs } from "./helpers.ts";

const dir = join(import.meta.dir, "fixtures", "io");
type Manifest = {
  gguf: Record<
    string,
    {
      file: string;
      alignment: number;
      metadata: Record<string, { value: number | boolean | string; type: string }>;
      tensors: Record<string, { shape: number[]; dtype?: string; values?: number[]; bits?: number[]; format?: string; bytes?: number[]; dequantized?: number[] }>;
    }
  >;
};
const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as Manifest;
const fixture = (f: string) => new Uint8Array(readFileSync(join(dir, f)));
const tmp = tempDirs()("gguf-");

const TYPE_NAMES: Record<string, string> = {
  UINT8: "u8", INT8: "i8", UINT16: "u16", INT16: "i16", UINT32: "u32", INT32: "i32", FLOAT32: "f32", BOOL: "bool", STRING: "string", UINT64: "u64", INT64: "i64", FLOAT64: "f64",
};

function disposeAll(f: bn.GGUFFile): void {
  for (const t of Object.values(f.tensors)) t.dispose();
}

const vals = (t: bn.Tensor) => {
  using c = t.contiguous();
  return Array.from(c.data as ArrayLike<number>, Number);
};
// Bytes in use once the blocks held only by unreachable `.data` arrays are freed.
const inUse = () => {
  bn.memory.collect();
  return bn.memory.stats().bytesInUse;
};

function checkAgainstManifest(f: bn.GGUFFile, m: Manifest["gguf"][string]): void {
  expect(f.version).toBe(3);
  expect(f.alignment).toBe(m.alignment);
  expect(f.metadata["general.architecture"]).toBe("bitnet");
  for (const [k, { value, type }] of Object.entries(m.metadata)) {
    expect(f.types[k] as string).toBe(TYPE_NAMES[type]!);
    const got = f.metadata[k];
    if (type === "FLOAT32") expect(got).toBe(Math.fround(value as number));
    else if (type === "UINT64" && (value as number) > Number.MAX_SAFE_INTEGER) expect(got).toBe(BigInt(2 ** 53) + 1n);
    else expect(got).toBe(value);
  }
  expect(f.metadata["t.u64"]).toBe(2n ** 53n + 1n); // not a safe integer: a bigint
  expect(f.types["t.arr_u8"]).toBe("array<u8>");
  expect(Array.from(f.metadata["t.arr_u8"] as Uint8Array)).toEqual([1, 2, 255]);
  expect(f.metadata["t.arr_i32"]).toBeInstanceOf(Int32Array);
  expect(Array.from(f.metadata["t.arr_i32"] as Int32Array)).toEqual([-1, 0, 7]);
  expect(Array.from(f.metadata["t.arr_f32"] as Float32Array)).toEqual([0.5, -2.25]);
  expect(f.metadata["t.arr_str"]).toEqual(["a", "", "ü"]);
  expect(f.metadata["t.arr_bool"]).toEqual([true, false]);
  expect(Array.from(f.metadata["t.arr_u64"] as BigUint64Array)).toEqual([2n ** 60n, 3n]);
  expect(f.types["t.arr_nested"]).toBe("array<array<i32>>");
  expect((f.metadata["t.arr_nested"] as Int32Array[]).map((a) => Array.from(a))).toEqual([[1, 2], [3]]);
  expect(Object.keys(f.tensors)).toEqual(Object.keys(m.tensors));
  for (const [name, want] of Object.entries(m.tensors)) {
    const t = f.tensors[name]!;
    if (want.format) {
      expect(t).toBeInstanceOf(bn.TernaryTensor);
      const w = t as bn.TernaryTensor;
      expect(w.format).toBe(want.format as bn.TernaryFormat);
      expect(w.shape).toEqual(want.shape);
      expect(w.granularity).toBe("block");
      expect(w.packed.dtype).toBe("u8");
      expect(w.packed.shape).toEqual([want.shape[0]!, want.bytes!.length / want.shape[0]!]);
      expect(Array.from(w.packed.data as Uint8Array)).toEqual(want.bytes!);
      using d = w.dequantize();
      expect(d.shape).toEqual(want.shape);
      expect(Array.from(d.data as Float32Array)).toEqual(want.dequantized!);
    } else {
      const x = t as bn.Tensor;
      expect(x.dtype).toBe(want.dtype as bn.DType);
      expect(x.shape).toEqual(want.shape);
      if (want.bits) expect(Array.from(x.data as Uint16Array)).toEqual(want.bits);
      else expect(vals(x)).toEqual(want.values!);
    }
  }
}

describe("reading files written by the gguf package", () => {
  for (const [name, m] of Object.entries(manifest.gguf)) {
    test(`${m.file}: metadata of every type, f32/f16/bf16/TQ1_0/TQ2_0 tensors (alignment ${m.alignment})`, () => {
      const f = bn.gguf.read(join(dir, m.file));
      try {
        checkAgainstManifest(f, m);
      } finally {
        disposeAll(f);
      }
      // and from bytes
      const g = bn.gguf.read(fixture(m.file));
      disposeAll(g);
      expect(name).toBeTruthy();
    });
  }

  test("other ggml types are a FormatError naming the type", () => {
    expect(() => bn.gguf.read(join(dir, "q8_0.gguf"))).toThrow(bn.FormatError);
    expect(() => bn.gguf.read(join(dir, "q8_0.gguf"))).toThrow(/ggml type Q8_0 \(8\)/);
  });
});

describe("writing", () => {
  for (const m of Object.values(manifest.gguf)) {
    test(`write(read(${m.file})) reads back the same, and gives the gguf package's bytes`, () => {
      const f = bn.gguf.read(join(dir, m.file));
      try {
        const p = join(tmp, m.file);
        bn.gguf.write(p, f);
        // The gguf package writes the same layout (header, padded tensors): byte-identical.
        expect(Buffer.compare(readFileSync(p), readFileSync(join(dir, m.file)))).toBe(0);
        const g = bn.gguf.read(p);
        try {
          checkAgainstManifest(g, m);
        } finally {
          disposeAll(g);
        }
      } finally {
        disposeAll(f);
      }
    });
  }

  test("round trip with inferred types, a Map of tensors, views, 0-d and TernaryTensors", () => {
    using a = bn.arange(12, undefined, undefined, { dtype: "f32" }).reshape(3, 4);
    using at = a.T; // strided view: written row-major
    using s = bn.tensor(2.5, { dtype: "bf16" });
    using i = bn.tensor([1, -2, 3], { dtype: "i16" });
    using wf = bn.randn([2, 256], { seed: 5 });
    using tq1 = bn.quant.ternary(wf, { format: "tq1_0", granularity: "channel" });
    using w3f = bn.randn([2, 3, 512], { seed: 6 });
    using tq2 = bn.quant.ternary(w3f, { format: "tq2_0" }); // 3-D: ne = [512, 3, 2] in the file
    const p = join(tmp, "rt.gguf");
    bn.gguf.write(p, {
      metadata: { "general.alignment": 64, name: "x", n: 7, big: 2 ** 40, neg: -5, frac: 0.1, flag: false, ids: [1, 2, 3], mix: [1, 2.5], words: ["a", "b"], f: new Float32Array([1, 2]), b: 5n, forced: 3 },
      types: { forced: "u8" },
      tensors: new Map<string, bn.Tensor | bn.TernaryTensor>([
        ["at", at],
        ["s", s],
        ["i", i],
        ["w", tq1],
        ["w3", tq2],
      ]),
    });
    const f = bn.gguf.read(p);
    try {
      expect(f.alignment).toBe(64);
      expect(f.types).toEqual({
        "general.alignment": "u32", name: "string", n: "i32", big: "i64", neg: "i32", frac: "f32", flag: "bool", ids: "array<i32>", mix: "array<f32>", words: "array<string>", f: "array<f32>", b: "i64", forced: "u8",
      } as Record<string, bn.GGUFType>);
      expect(f.metadata.frac).toBe(Math.fround(0.1));
      expect(f.metadata.big).toBe(2 ** 40);
      expect(f.metadata.b).toBe(5);
      const x = f.tensors.at as bn.Tensor;
      expect(x.shape).toEqual([4, 3]);
      expect(x.toArray()).toEqual(at.toArray());
      expect((f.tensors.s as bn.Tensor).shape).toEqual([1]); // 0-d is written as [1]
      expect((f.tensors.s as bn.Tensor).toArray()).toEqual([2.5]);
      expect((f.tensors.i as bn.Tensor).toArray()).toEqual([1, -2, 3]);
      for (const [name, src] of [["w", tq1], ["w3", tq2]] as const) {
        const w = f.tensors[name] as bn.TernaryTensor;
        expect(w).toBeInstanceOf(bn.TernaryTensor);
        expect(w.format).toBe(src.format);
        expect(w.shape).toEqual(src.shape);
        expect(Array.from(w.packed.data as Uint8Array)).toEqual(Array.from(src.packed.data as Uint8Array));
        using a1 = w.unpack();
        using a2 = src.unpack();
        expect(a1.toArray()).toEqual(a2.toArray());
        using d1 = w.dequantize();
        using d2 = src.dequantize();
        expect(d1.toArray()).toEqual(d2.toArray());
      }
      // data offsets are multiples of 64 in the file
      const raw = new Uint8Array(readFileSync(p));
      expect(raw.length % 64).toBe(0);
    } finally {
      disposeAll(f);
    }
  });

  test("bad tensors and values are refused before the file is written", () => {
    const p = join(tmp, "bad.gguf");
    using u = bn.ones([2], { dtype: "u32" });
    expect(() => bn.gguf.write(p, { metadata: {}, tensors: { u } })).toThrow(bn.DTypeError);
    using big = bn.ones([1, 1, 1, 1, 2]);
    expect(() => bn.gguf.write(p, { metadata: {}, tensors: { big } })).toThrow(bn.ShapeError);
    using e = bn.ones([0, 2]);
    expect(() => bn.gguf.write(p, { metadata: {}, tensors: { e } })).toThrow(/zero-sized/);
    // "i2" is our own layout with no ggml type: refused, pointing at toFormat.
    using wf = bn.randn([2, 256], { seed: 1 });
    using i2 = bn.quant.ternary(wf);
    expect(() => bn.gguf.write(p, { metadata: {}, tensors: { i2 } })).toThrow(bn.DTypeError);
    expect(() => bn.gguf.write(p, { metadata: {}, tensors: { i2 } })).toThrow(/"i2" TernaryTensor \[2, 256\].*w\.toFormat\("tq2_0"\)/);
    using tq = i2.toFormat("tq2_0");
    const gone = tq.toFormat("tq1_0");
    gone.dispose();
    expect(() => bn.gguf.write(p, { metadata: {}, tensors: { tq, gone } })).toThrow(bn.DisposedTensorError);
    using b = bn.zeros([54], { dtype: "u8" });
    // the interim { kind, shape, blocks } form is gone
    expect(() => bn.gguf.write(p, { metadata: {}, tensors: { w: { kind: "tq1_0", shape: [2, 256], blocks: b } as never } })).toThrow(/must be a Tensor or a TernaryTensor/);
    expect(existsSync(p)).toBe(false);
    expect(() => bn.gguf.write(p, { metadata: { x: 300 }, types: { x: "u8" }, tensors: {} })).toThrow(bn.ValueError);
    expect(() => bn.gguf.write(p, { metadata: { x: [1, "a"] }, tensors: {} })).toThrow(/different types/);
    expect(() => bn.gguf.write(p, { metadata: { x: null as never }, tensors: {} })).toThrow(bn.ValueError);
    expect(() => bn.gguf.write(p, { metadata: { "general.alignment": 24 }, tensors: {} })).toThrow(/power of two/);
    expect(() => bn.gguf.write(p, { metadata: { x: 1 }, types: { x: "u128" as bn.GGUFType }, tensors: {} })).toThrow(/unknown GGUF type/);
  });
});

describe("memory", () => {
  // (No `.data` here: a typed array keeps its block until collected, which the stack may delay.)
  test("read tensors own their bytes, and disposing the result releases everything", () => {
    const before = inUse();
    const bytes = fixture("model.gguf");
    const m = manifest.gguf.model!;
    const f = bn.gguf.read(bytes);
    expect(bn.memory.stats().bytesInUse).toBeGreaterThan(before);
    bytes.fill(0); // nothing refers to the input buffer
    for (const [name, want] of Object.entries(m.tensors)) {
      const t = f.tensors[name]!;
      if (t instanceof bn.TernaryTensor) {
        expect((t.packed.toArray() as number[][]).flat()).toEqual(want.bytes!);
        // derived state (the tq scales, made lazily) is owned by the TernaryTensor too
        expect(t.scale.shape).toEqual([want.shape[0]!, want.shape[1]! / 256]);
        t.unpack().dispose();
        t.dequantize().dispose();
      } else if (want.values) {
        expect((t.toArray() as number[]).flat(2)).toEqual(want.values);
      }
    }
    disposeAll(f);
    expect(inUse()).toBe(before);
    for (const t of Object.values(f.tensors)) expect(t.disposed).toBe(true);
  });

  test("write then read of TernaryTensors leaks nothing", () => {
    const before = inUse();
    const p = join(tmp, "leak.gguf");
    {
      using wf = bn.randn([4, 768], { seed: 2 });
      using a = bn.quant.ternary(wf, { format: "tq2_0", granularity: "channel" });
      using b = bn.quant.ternary(wf, { format: "tq1_0" });
      bn.gguf.write(p, { metadata: {}, tensors: { a, b } });
    }
    disposeAll(bn.gguf.read(p));
    expect(inUse()).toBe(before);
  });
});

describe("malformed files", () => {
  const good = fixture("model.gguf");
  const le = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
  // Offsets in model.gguf: magic 0, version 4, tensor count 8, kv count 16, first key at 24.
  const patch = (f: (b: Uint8Array, v: DataView) => void) => {
    const b = good.slice();
    f(b, le(b));
    return b;
  };

  test("every truncation is a FormatError and leaves no memory allocated", () => {
    const before = bn.memory.stats().bytesInUse;
    const cuts = new Set<number>();
    for (let c = 0; c < 1100; c++) cuts.add(c); // every cut through the header and tensor infos
    for (let c = 1100; c < good.length; c += 7) cuts.add(c); // and through the data
    // The last tensor (e.tq2, 2 × 2 × 66 = 264 bytes) is followed by 24 bytes of padding to 32:
    // cutting only padding leaves every tensor whole, which reads fine.
    const dataEnd = good.length - 24;
    cuts.add(dataEnd - 1);
    for (const c of cuts) {
      if (c >= dataEnd) continue;
      let err: unknown;
      try {
        disposeAll(bn.gguf.read(good.subarray(0, c)));
      } catch (e) {
        err = e;
      }
      if (!(err instanceof bn.FormatError)) throw new Error(`cut at ${c}: expected a FormatError, got ${String(err)}`);
    }
    expect(bn.memory.stats().bytesInUse).toBe(before);
    for (let c = dataEnd; c <= good.length; c++) disposeAll(bn.gguf.read(good.subarray(0, c)));
  });

  // Find a field by its key bytes.
  const find = (s: string) => {
    const k = new TextEncoder().encode(s);
    outer: for (let i = 0; i < good.length; i++) {
      for (let j = 0; j < k.length; j++) if (good[i + j] !== k[j]) continue outer;
      return i;
    }
    throw new Error(`${s} not found`);
  };
  const afterKey = (s: string) => find(s) + s.length; // value type u32 of that key
  const tensorInfo = (s: string) => find(s) + s.length; // n_dims u32 of that tensor

  const bad: [string, Uint8Array, RegExp][] = [
    ["magic", patch((b) => (b[0] = 0x48)), /bad magic "HGUF"/],
    ["version 1", patch((_, v) => v.setUint32(4, 1, true)), /version 1 /],
    ["version 4", patch((_, v) => v.setUint32(4, 4, true)), /version 4 /],
    ["big-endian", patch((_, v) => v.setUint32(4, 3, false)), /big-endian/],
    ["huge tensor count", patch((_, v) => v.setBigUint64(8, 1n << 62n, true)), /tensor count is 4611686018427387904/],
    ["huge metadata count", patch((_, v) => v.setBigUint64(16, 0xffffffffffffffffn, true)), /metadata count is 18446744073709551615/],
    ["huge key length", patch((_, v) => v.setBigUint64(24, 1n << 40n, true)), /length of key of metadata entry 0 is 1099511627776/],
    ["unknown value type", patch((_, v) => v.setUint32(afterKey("t.u8"), 13, true)), /unknown value type 13/],
    ["bool byte 2", patch((b) => (b[afterKey("t.bool") + 4] = 2)), /bool byte is 2/],
    ["huge array length", patch((_, v) => v.setBigUint64(afterKey("t.arr_f32") + 8, 1n << 61n, true)), /array length is 2305843009213693952/],
    ["unknown array element type", patch((_, v) => v.setUint32(afterKey("t.arr_f32") + 4, 99, true)), /unknown array element type 99/],
    ["invalid UTF-8", patch((b) => (b[afterKey("t.string") + 12] = 0xff)), /not valid UTF-8/],
    ["duplicate key", patch((b) => (b[find("t.i8") + 2] = "u".charCodeAt(0))), /duplicate metadata key "t.u8"/],
    ["5 dimensions", patch((_, v) => v.setUint32(tensorInfo("a.f32"), 5, true)), /5 dimensions/],
    ["huge dimension", patch((_, v) => v.setBigUint64(tensorInfo("a.f32") + 4, 1n << 60n, true)), /too large/],
    ["unknown tensor type", patch((_, v) => v.setUint32(tensorInfo("a.f32") + 4 + 16, 77, true)), /unknown ggml type 77/],
    ["offset past the end", patch((_, v) => v.setBigUint64(tensorInfo("a.f32") + 4 + 16 + 4, 1n << 50n, true)), /past the end/],
    ["misaligned offset", patch((_, v) => v.setBigUint64(tensorInfo("b.f16") + 4 + 24 + 4, 64n + 4n, true)), /not a multiple of the alignment 32/],
    ["data past the end", patch((_, v) => {
      const at = tensorInfo("e.tq2") + 4 + 16 + 4;
      v.setBigUint64(at, v.getBigUint64(at, true) + 64n, true); // the last tensor, moved 64 bytes on
    }), /truncated: tensor "e.tq2"/],
    ["tq rows not a multiple of 256", patch((_, v) => v.setBigUint64(tensorInfo("e.tq2") + 4, 500n, true)), /TQ2_0 rows \(ne\[0\] = 500\)/],
    ["duplicate tensor name", patch((b) => b.set(new TextEncoder().encode("a.f32"), find("b.f16"))), /duplicate tensor name "a.f32"/],
  ];
  for (const [what, bytes, msg] of bad) {
    test(`${what}: FormatError`, () => {
      const before = bn.memory.stats().bytesInUse;
      expect(() => disposeAll(bn.gguf.read(bytes))).toThrow(bn.FormatError);
      expect(() => disposeAll(bn.gguf.read(bytes))).toThrow(msg);
      expect(bn.memory.stats().bytesInUse).toBe(before);
    });
  }

  test("errors name the byte offset", () => {
    expect(() => bn.gguf.read(good.subarray(0, 30))).toThrow(/at byte \d+ of 30/);
  });

  test("a non-power-of-two general.alignment is a FormatError", () => {
    const p = join(tmp, "al.gguf");
    bn.gguf.write(p, { metadata: { "general.alignment": 32 }, tensors: {} });
    const b = new Uint8Array(readFileSync(p));
    // the u32 value follows the key and its type code
    const k = new TextEncoder().encode("general.alignment");
    let at = -1;
    for (let i = 0; i < b.length && at < 0; i++) if (k.every((c, j) => b[i + j] === c)) at = i + k.length + 4;
    expect(le(b).getUint32(at, true)).toBe(32);
    le(b).setUint32(at, 24, true);
    expect(() => bn.gguf.read(b)).toThrow(/general.alignment must be a u32 power of two/);
    le(b).setUint32(at - 4, 5, true); // an i32 instead of a u32
    le(b).setUint32(at, 32, true);
    expect(() => bn.gguf.read(b)).toThrow(/general.alignment must be a u32 power of two, got i32 32/);
  });

  test("non-buffers are refused", () => {
    expect(() => bn.gguf.read(42 as never)).toThrow(bn.FormatError);
    expect(() => bn.gguf.read(join(tmp, "missing.gguf"))).toThrow(/missing\.gguf/);
  });
});
