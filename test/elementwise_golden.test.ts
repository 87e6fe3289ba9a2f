// Golden values from NumPy (test/fixtures/gen_elementwise.py writes the fixture): every binary
// op with broadcasting and every unary op, on every float and integer dtype, at every SIMD level
// this CPU runs, and on "cuda" when a CUDA device is present (skipped, and said so, elsewhere).
// Correctly rounded ops must match NumPy's answer rounded to the dtype bit for bit; the
// transcendental ones must stay within the ulp bounds zig/cpu/vmath.zig states (on the GPU: those
// or the CUDA math library's documented bounds, at most 4 ulp, whichever is larger).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as bn from "../src/index.ts";
import { toBF16, toF16, toF32, runnableLevels } from "./helpers.ts";

type Num = number | "nan" | "inf" | "-inf";
interface BinaryCase {
  dtype: bn.DType;
  a_shape: number[];
  b_shape: number[];
  a: Num[];
  b: Num[];
  pow_a: Num[];
  pow_b: Num[];
  out: Record<string, Num[]>;
}
interface Golden {
  generator: string;
  numpy: string;
  binary: BinaryCase[];
  promotion: { op: string; a_dtype: bn.DType; b_dtype: bn.DType; a: number[]; b: number[]; dtype: bn.DType; out: number[] }[];
  unary: { op: string; dtype: bn.DType; x: Num[]; ref: Num[] }[];
  int_unary: { dtype: bn.DType; x: number[]; clip: [number, number]; ref: Record<string, number[]> }[];
}

const G: Golden = JSON.parse(readFileSync(join(import.meta.dir, "fixtures", "elementwise_golden.json"), "utf8"));
const num = (v: Num): number => (v === "nan" ? NaN : v === "inf" ? Infinity : v === "-inf" ? -Infinity : v);
const nums = (vs: Num[]) => vs.map(num);
const vals = (t: bn.Tensor) => Array.from(t._toFloat64("test"));

const FLOATS = new Set<bn.DType>(["f32", "f16", "bf16"]);
/** Explicit mantissa bits and minimum exponent of each float dtype. */
const FMT: Record<string, [number, number]> = { f32: [23, -126], f16: [10, -14], bf16: [7, -126] };
const roundTo: Record<string, (x: number) => number> = { f32: toF32, f16: toF16, bf16: toBF16 };

/** The spacing of `d` values at the magnitude of r (subnormal spacing below the normal range). */
function ulp(r: number, d: bn.DType): number {
  const [mant, emin] = FMT[d]!;
  const a = Math.abs(r);
  if (a === 0 || !Number.isFinite(a)) return 2 ** (emin - mant);
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  return 2 ** (Math.max(e, emin) - mant);
}

/**
 * Error bound of an f32 kernel at input x with float64 reference r, as zig/cpu/vmath.zig states it
 * (ulps of f32, plus the absolute / relative bounds it gives for tails).
 */
function f32Bound(op: string, x: number, r: number): number {
  const u = ulp(r, "f32");
  switch (op) {
    case "exp":
      return 0.99 * u;
    case "log":
      return 0.84 * u;
    case "rsqrt":
      return 1.49 * u;
    case "sin":
      return 1.3 * u;
    case "cos":
      return 1.28 * u;
    case "tanh":
      return 1.33 * u;
    case "erf":
      return 1.44 * u;
    case "sigmoid":
      return (x >= 0 ? 1.5 : 2.4) * u;
    case "silu":
      return x >= -87.3 ? 3.2 * u : 1.4e-43;
    case "gelu":
      return x >= 0 ? 2.5 * u : x >= -5.65 ? Math.max(4.7 * u, 6e-8) : Math.max(4.5e-5 * Math.abs(r), 3e-13);
    case "gelu_tanh":
      return x >= 0 ? 2.5 * u : x >= -1 ? 3.1 * u : Math.max(38 * u, 5e-8);
    case "pow":
      return 0.501 * u; // elementwise.zig: computed in f64, rounded once (0.5 ulp + a few f64 ulps)
    default:
      return 0; // correctly rounded
  }
}

/** Ops whose CUDA f32 functions are not correctly rounded (CUDA Math API: at most 4 ulp here). */
const CUDA_APPROX = new Set(["exp", "log", "rsqrt", "sin", "cos", "tanh", "erf", "sigmoid", "silu", "gelu", "gelu_tanh", "pow"]);

/** Checks y (the library, in dtype d) against the float64 reference r of an op at input x. */
function close(op: string, d: bn.DType, x: number, y: number, r: number, gpu = false): boolean {
  if (Number.isNaN(r)) return Number.isNaN(y);
  const rd = roundTo[d]!(r);
  if (!Number.isFinite(rd)) return y === rd;
  if (y === rd) return true;
  const extra = d === "f32" ? 0 : 0.5 * ulp(r, d); // f16/bf16: computed in f32, rounded once on store
  const bound = gpu && CUDA_APPROX.has(op) ? Math.max(f32Bound(op, x, r), 4 * ulp(r, "f32")) : f32Bound(op, x, r);
  return Math.abs(y - r) <= bound + extra;
}

// ---- SIMD levels ------------------------------------------------------------------------------

const caps = bn.deviceCapabilities();
const LEVELS = runnableLevels();

test("the golden file is NumPy's and this CPU runs several SIMD levels", () => {
  expect(G.generator).toBe("test/fixtures/gen_elementwise.py");
  expect(G.binary.length).toBe(9 * 3);
  expect(LEVELS).toContain(caps.simdDetected);
  expect(LEVELS.length).toBeGreaterThanOrEqual(caps.arch === "x64" ? 3 : 2);
});

const BIN = ["add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge"] as const;
const CMP = new Set(["eq", "ne", "lt", "le", "gt", "ge"]);

/** The value of the broadcast operand behind output element k (row-major), for error messages. */
function broadcastAt(vals: number[], shape: number[], out: number[], k: number): number {
  const idx: number[] = [];
  for (let ax = out.length - 1; ax >= 0; ax--) {
    idx[ax] = k % out[ax]!;
    k = Math.floor(k / out[ax]!);
  }
  const off = out.length - shape.length;
  let p = 0;
  for (let i = 0; i < shape.length; i++) p = p * shape[i]! + (shape[i] === 1 ? 0 : idx[off + i]!);
  return vals[p]!;
}

// Targets: every SIMD level of this CPU, then the first CUDA device when there is one.
const CUDA = bn.devices().includes("cuda");
if (!CUDA) console.log("elementwise_golden: no CUDA device here, the cuda target is skipped");
const TARGETS: { name: string; device: "cpu" | "cuda"; level?: string }[] = [
  ...LEVELS.map((level) => ({ name: `SIMD ${level}`, device: "cpu" as const, level })),
  { name: "cuda", device: "cuda" as const },
];

for (const target of TARGETS) {
  const { level, device } = target;
  const gpu = device === "cuda";
  const it = gpu && !CUDA ? test.skip : test;
  describe(target.name, () => {
    beforeAll(() => level && bn.setSimdLevel(level));
    afterAll(() => level && bn.setSimdLevel(caps.simdDetected));

    it("binary ops with broadcasting, float dtypes", () => {
      for (const c of G.binary.filter((c) => FLOATS.has(c.dtype))) {
        const a = bn.tensor(nums(c.a), { dtype: c.dtype, shape: c.a_shape, device });
        const b = bn.tensor(nums(c.b), { dtype: c.dtype, shape: c.b_shape, device });
        const pa = bn.tensor(nums(c.pow_a), { dtype: c.dtype, shape: c.a_shape, device });
        const pb = bn.tensor(nums(c.pow_b), { dtype: c.dtype, shape: c.b_shape, device });
        expect(vals(a)).toEqual(nums(c.a)); // the inputs are exact values of the dtype
        expect(vals(pa)).toEqual(nums(c.pow_a));
        for (const op of BIN) {
          const [x, y] = op === "pow" ? [pa, pb] : [a, b];
          using o = bn[op](x, y);
          const want = nums(c.out[op]!);
          expect(o.dtype).toBe(CMP.has(op) ? "bool" : c.dtype);
          const got = vals(o);
          expect(got.length).toBe(want.length);
          const bad: string[] = [];
          got.forEach((v, k) => {
            const ok = CMP.has(op) ? v === want[k] : close(op, c.dtype, broadcastAt(vals(x), x.shape, o.shape, k), v, want[k]!, gpu);
            if (!ok) bad.push(`${op} ${c.dtype} [${k}] (${broadcastAt(vals(x), x.shape, o.shape, k)}, ${broadcastAt(vals(y), y.shape, o.shape, k)}): got ${v}, numpy ${want[k]}`);
          });
          expect(bad).toEqual([]);
        }
        for (const t of [a, b, pa, pb]) t.dispose();
      }
    });

    it("binary ops with broadcasting, integer dtypes (wrapping; div is f32 true division)", () => {
      for (const c of G.binary.filter((c) => !FLOATS.has(c.dtype))) {
        using a = bn.tensor(nums(c.a), { dtype: c.dtype, shape: c.a_shape, device });
        using b = bn.tensor(nums(c.b), { dtype: c.dtype, shape: c.b_shape, device });
        using pa = bn.tensor(nums(c.pow_a), { dtype: c.dtype, shape: c.a_shape, device });
        using pb = bn.tensor(nums(c.pow_b), { dtype: c.dtype, shape: c.b_shape, device });
        expect(vals(a)).toEqual(nums(c.a));
        for (const op of BIN) {
          const [x, y] = op === "pow" ? [pa, pb] : [a, b];
          using o = bn[op](x, y);
          expect(o.dtype).toBe(CMP.has(op) ? "bool" : op === "div" ? "f32" : c.dtype);
          const want = nums(c.out[op]!);
          const got = vals(o);
          const bad: string[] = [];
          got.forEach((v, k) => {
            const xa = broadcastAt(vals(x), x.shape, o.shape, k);
            const yb = broadcastAt(vals(y), y.shape, o.shape, k);
            let ok: boolean;
            if (op === "div") {
              // Operands convert to f32 first: exact below 2^24, else each carries 2^-24 relative.
              const r = want[k]!;
              const exact = Math.abs(xa) <= 2 ** 24 && Math.abs(yb) <= 2 ** 24;
              ok = Number.isNaN(r) ? Number.isNaN(v) : !Number.isFinite(r) || exact ? v === toF32(r) : Math.abs(v - r) <= 2.5 * ulp(r, "f32");
            } else ok = v === want[k];
            if (!ok) bad.push(`${op} ${c.dtype} [${k}] (${xa}, ${yb}): got ${v}, numpy ${want[k]}`);
          });
          expect(bad).toEqual([]);
        }
      }
    });

    it("mixed integer dtypes promote as NumPy does", () => {
      for (const c of G.promotion) {
        using a = bn.tensor(c.a, { dtype: c.a_dtype, device });
        using b = bn.tensor(c.b, { dtype: c.b_dtype, device });
        using o = bn[c.op as "add"](a, b);
        expect(`${c.a_dtype} ${c.op} ${c.b_dtype} -> ${o.dtype}`).toBe(`${c.a_dtype} ${c.op} ${c.b_dtype} -> ${c.dtype}`);
        expect(vals(o)).toEqual(c.out);
      }
    });

    it("unary ops on float dtypes within the documented ulp bounds", () => {
      const bad: string[] = [];
      for (const c of G.unary) {
        const xs = nums(c.x);
        using x = bn.tensor(xs, { dtype: c.dtype, device });
        expect(vals(x)).toEqual(xs);
        using o =
          c.op === "clip" ? bn.clip(x, -2.5, 3.25) : c.op === "gelu_tanh" ? bn.gelu(x, { approximate: "tanh" }) : bn[c.op as "exp"](x);
        expect(o.dtype).toBe(c.dtype);
        const want = nums(c.ref);
        vals(o).forEach((v, k) => {
          if (!close(c.op, c.dtype, xs[k]!, v, want[k]!, gpu)) {
            const err = Math.abs(v - want[k]!) / ulp(want[k]!, c.dtype);
            bad.push(`${c.op} ${c.dtype} x=${xs[k]}: got ${v}, numpy ${want[k]} (${err.toFixed(2)} ulp)`);
          }
        });
      }
      expect(bad).toEqual([]);
    });

    it("unary ops on integer dtypes keep the dtype and match NumPy (neg and abs wrap)", () => {
      for (const c of G.int_unary) {
        using x = bn.tensor(c.x, { dtype: c.dtype, device });
        for (const op of ["neg", "abs", "sign", "clip"] as const) {
          using o = op === "clip" ? bn.clip(x, c.clip[0], c.clip[1]) : bn[op](x);
          expect(`${op} ${o.dtype}`).toBe(`${op} ${c.dtype}`);
          expect(vals(o)).toEqual(c.ref[op]!);
        }
      }
    });
  });
}
