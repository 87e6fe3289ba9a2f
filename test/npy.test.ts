// .npy files (src/io/npy.ts): fixtures written by NumPy (test/fixtures/gen_io.py), round trips,
// byte equality with np.save, malformed files, and NumPy reading ours when python3 is present.
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as bn from "../src/index.ts";
import { tempDirs } from "./helpers.ts";

const dir = join(import.meta.dir, "fixtures", "io");
const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as {
  npy: { file: string; dtype: bn.DType | null; shape: number[]; values: number[]; fortran: boolean }[];
};
const fixture = (f: string) => new Uint8Array(readFileSync(join(dir, f)));
const tmp = tempDirs()("npy-");

const flat = (t: bn.Tensor): number[] => Array.from(t.contiguous().data as ArrayLike<number>, Number);

describe("reading NumPy's files", () => {
  for (const c of manifest.npy.filter((c) => c.dtype !== null)) {
    test(`${c.file}: ${c.dtype} ${JSON.stringify(c.shape)}${c.fortran ? " (Fortran order)" : ""}`, () => {
      using t = bn.load(join(dir, c.file));
      expect(t.dtype).toBe(c.dtype!);
      expect(t.shape).toEqual(c.shape);
      expect(flat(t)).toEqual(c.values);
    });
  }

  test("the fixtures cover Fortran order, 0-d, empty and versions 2.0 / 3.0", () => {
    const files = manifest.npy.map((c) => c.file);
    expect(manifest.npy.find((c) => c.file === "fortran.npy")!.fortran).toBe(true);
    expect(fixture("v2.npy")[6]).toBe(2);
    expect(fixture("v3.npy")[6]).toBe(3);
    expect(files).toContain("scalar.npy");
    expect(files).toContain("empty.npy");
  });

  test("bytes work as well as paths", () => {
    using t = bn.load(fixture("i16.npy"));
    expect(flat(t)).toEqual([-32768, -2, 7, 32767]);
    // at an odd offset inside a larger buffer (Fortran: typed strided reads)
    const raw = fixture("fortran_i16.npy");
    const big = new Uint8Array(raw.length + 1);
    big.set(raw, 1);
    using f = bn.load(big.subarray(1));
    expect(f.toArray()).toEqual([[0, 1, 2], [3, 4, 5]]);
  });

  test("dtypes without an equivalent and big-endian data are FormatErrors naming the descr", () => {
    expect(() => bn.load(join(dir, "f64.npy"))).toThrow(bn.FormatError);
    expect(() => bn.load(join(dir, "f64.npy"))).toThrow(/'<f8' \(float64\)/);
    expect(() => bn.load(join(dir, "i64.npy"))).toThrow(/'<i8' \(int64\)/);
    expect(() => bn.load(join(dir, "big_endian.npy"))).toThrow(/big-endian.*'>f4'/);
  });
});

describe("writing", () => {
  const cases: [bn.DType, string][] = [
    ["f32", "f32"], ["f16", "f16"], ["i8", "i8"], ["i16", "i16"], ["i32", "i32"], ["u8", "u8"], ["u16", "u16"], ["u32", "u32"], ["bool", "bool"],
    ["f32", "scalar"], ["f32", "empty"],
  ];
  for (const [d, name] of cases) {
    test(`save(load(${name}.npy)) gives np.save's bytes exactly`, () => {
      using t = bn.load(join(dir, `${name}.npy`));
      expect(t.dtype).toBe(d);
      const p = join(tmp, `${name}.npy`);
      bn.save(p, t);
      expect(Array.from(fixture(`${name}.npy`))).toEqual(Array.from(new Uint8Array(readFileSync(p))));
    });
  }

  test("a Fortran-order file saves as NumPy's C-order file of the same array", () => {
    using t = bn.load(join(dir, "fortran.npy"));
    const p = join(tmp, "f.npy");
    bn.save(p, t);
    using back = bn.load(p);
    expect(back.toArray()).toEqual(t.toArray());
    expect(back.shape).toEqual([2, 3, 4]);
    // C order: the header says so and the data is row-major
    expect(new TextDecoder().decode(readFileSync(p).subarray(10, 80))).toContain("'fortran_order': False, 'shape': (2, 3, 4)");
  });

  test("round trip of every dtype, including views and large headers", () => {
    for (const d of ["f32", "f16", "i8", "i16", "i32", "u8", "u16", "u32", "bool"] as bn.DType[]) {
      using a = bn.arange(24, undefined, undefined, { dtype: d === "bool" ? "i8" : d }).reshape(2, 3, 4);
      using x = d === "bool" ? a.astype("bool") : a.clone();
      using v = x.permute([2, 0, 1]); // a strided view
      const p = join(tmp, `rt_${d}.npy`);
      bn.save(p, v);
      using back = bn.load(p);
      expect(back.dtype).toBe(d);
      expect(back.shape).toEqual([4, 2, 3]);
      expect(back.toArray()).toEqual(v.toArray());
    }
    // a header with many dimensions still loads (version 1.0, 64-byte aligned data)
    using m = bn.ones([1, 1, 1, 1, 1, 1, 1, 1, 2, 3], { dtype: "u8" });
    const p = join(tmp, "many.npy");
    bn.save(p, m);
    const b = readFileSync(p);
    expect(b[6]).toBe(1);
    expect((10 + b.readUInt16LE(8)) % 64).toBe(0);
    using back = bn.load(p);
    expect(back.shape).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 2, 3]);
  });

  test("bf16 is refused with a DTypeError (no NumPy dtype); disposed tensors too", () => {
    using b = bn.ones([2], { dtype: "bf16" });
    expect(() => bn.save(join(tmp, "b.npy"), b)).toThrow(bn.DTypeError);
    expect(() => bn.save(join(tmp, "b.npy"), b)).toThrow(/astype\("f32"\)/);
    const d = bn.ones([2]);
    d.dispose();
    expect(() => bn.save(join(tmp, "d.npy"), d)).toThrow(bn.DisposedTensorError);
  });

  const py = spawnSync("python3", ["-c", "import numpy"], { encoding: "utf8" });
  const havePy = py.status === 0;
  if (!havePy) console.warn("npy.test.ts: python3 with numpy not found; skipping 'NumPy reads what we write' (fixtures cover the rest)");
  test.skipIf(!havePy)("NumPy reads what we write (python3 + numpy)", () => {
    const files: string[] = [];
    for (const d of ["f32", "f16", "i8", "i16", "i32", "u8", "u16", "u32", "bool"] as bn.DType[]) {
      using t = bn.arange(-3, 3, undefined, { dtype: d === "bool" ? "i8" : d.startsWith("u") ? "i32" : d });
      using x = t.astype(d).reshape(2, 3);
      const p = join(tmp, `np_${d}.npy`);
      bn.save(p, x);
      files.push(p);
    }
    const script = `import numpy as np, sys, json\nprint(json.dumps([[str(a.dtype), list(a.shape), a.astype(float).ravel().tolist()] for a in (np.load(f) for f in sys.argv[1:])]))`;
    const r = spawnSync("python3", ["-c", script, ...files], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    const got = JSON.parse(r.stdout) as [string, number[], number[]][];
    expect(got.map((g) => g[0])).toEqual(["float32", "float16", "int8", "int16", "int32", "uint8", "uint16", "uint32", "bool"]);
    expect(got[0]![2]).toEqual([-3, -2, -1, 0, 1, 2]);
    expect(got[5]![2]).toEqual([253, 254, 255, 0, 1, 2]); // -3..2 wrapped to u8
    expect(got[8]![2]).toEqual([1, 1, 1, 0, 1, 1]);
    for (const g of got) expect(g[1]).toEqual([2, 3]);
  });
});

describe("malformed files", () => {
  const good = fixture("f32.npy");

  test("every truncation is a FormatError and allocates nothing", () => {
    const before = bn.memory.stats().bytesInUse;
    for (let cut = 0; cut < good.length; cut++) {
      expect(() => bn.load(good.subarray(0, cut))).toThrow(bn.FormatError);
    }
    expect(bn.memory.stats().bytesInUse).toBe(before);
  });

  const patch = (f: (b: Uint8Array) => void) => {
    const b = good.slice();
    f(b);
    return b;
  };
  const hdrEdit = (from: string, to: string) =>
    patch((b) => {
      const s = new TextDecoder("latin1").decode(b.subarray(10, 10 + b[8]!));
      expect(s).toContain(from);
      const t = s.replace(from, to.padEnd(from.length, " "));
      for (let k = 0; k < t.length; k++) b[10 + k] = t.charCodeAt(k);
    });

  const bad: [string, Uint8Array, RegExp][] = [
    ["magic", patch((b) => (b[1] = 0x4f)), /bad magic at byte 1/],
    ["version", patch((b) => (b[6] = 4)), /version 4\.0/],
    ["minor version", patch((b) => (b[7] = 1)), /version 1\.1/],
    ["header length past the end", patch((b) => (b[8] = 0xff) && (b[9] = 0xff)), /header is 65535 bytes/],
    ["shape larger than the data", hdrEdit("(3, 4)", "(3, 5)"), /needs 60 data bytes but 48/],
    ["huge shape", hdrEdit("(3, 4)", "(9999999999, 99999)"), /too large|needs/],
    ["negative dimension", hdrEdit("(3, 4)", "(-3, 4)"), /non-negative integers/],
    ["descr not a string", hdrEdit("'<f4'", "3    "), /structured dtype/],
    ["unknown descr", hdrEdit("'<f4'", "'<x4'"), /dtype '<x4'/],
    ["fortran_order not a bool", hdrEdit("False", "1"), /fortran_order/],
    ["missing key", hdrEdit("'shape'", "'shapf'"), /keys descr, fortran_order and shape/],
    ["garbage", hdrEdit("{'descr'", "{'descr'!"), /malformed header/],
  ];
  for (const [what, bytes, msg] of bad) {
    test(`${what}`, () => {
      expect(() => bn.load(bytes)).toThrow(bn.FormatError);
      expect(() => bn.load(bytes)).toThrow(msg);
    });
  }

  test("a missing file is a FormatError naming the path", () => {
    expect(() => bn.load(join(tmp, "nope.npy"))).toThrow(/nope\.npy/);
  });

  test("writing then corrupting: trailing bytes are ignored, as NumPy", () => {
    const p = join(tmp, "trail.npy");
    writeFileSync(p, new Uint8Array([...good, 1, 2, 3]));
    using t = bn.load(p);
    expect(t.shape).toEqual([3, 4]);
  });
});
