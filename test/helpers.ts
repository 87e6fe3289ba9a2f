// Independent float64 references for the tests: a tiny row-major array model, shape
// arbitraries for fast-check, and exact f16/bf16 rounding written from the IEEE definitions.
import { afterAll } from "bun:test";
import fc from "fast-check";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as bn from "../src/index.ts";
import type { DType } from "../src/index.ts";

/** A row-major float64 array: the reference every view and copy is checked against. */
export class Ref {
  constructor(
    readonly shape: number[],
    readonly data: Float64Array,
  ) {}

  static iota(shape: number[]): Ref {
    const n = shape.reduce((a, b) => a * b, 1);
    return new Ref(shape, Float64Array.from({ length: n }, (_, i) => i));
  }

  get size(): number {
    return this.data.length;
  }

  strides(): number[] {
    const st = new Array<number>(this.shape.length);
    let acc = 1;
    for (let i = this.shape.length - 1; i >= 0; i--) {
      st[i] = acc;
      acc *= this.shape[i]!;
    }
    return st;
  }

  /** Builds a new Ref of `shape` whose element at index `idx` is `f(idx)`. */
  static build(shape: number[], f: (idx: number[]) => number): Ref {
    const n = shape.reduce((a, b) => a * b, 1);
    const out = new Float64Array(n);
    const idx = new Array<number>(shape.length).fill(0);
    for (let k = 0; k < n; k++) {
      out[k] = f(idx);
      for (let ax = shape.length - 1; ax >= 0; ax--) {
        if (++idx[ax]! < shape[ax]!) break;
        idx[ax] = 0;
      }
    }
    return new Ref(shape, out);
  }

  at(idx: number[]): number {
    const st = this.strides();
    let off = 0;
    for (let i = 0; i < idx.length; i++) off += idx[i]! * st[i]!;
    return this.data[off]!;
  }

  permute(axes: number[]): Ref {
    return Ref.build(
      axes.map((a) => this.shape[a]!),
      (idx) => {
        const src = new Array<number>(axes.length);
        axes.forEach((a, i) => (src[a] = idx[i]!));
        return this.at(src);
      },
    );
  }

  /** Python-style range slicing on each axis: [start, stop, step] (normalised by the caller). */
  sliceRanges(ranges: [number, number, number][]): Ref {
    const shape = ranges.map(([s, e, st]) => (st > 0 ? Math.max(0, Math.ceil((e - s) / st)) : Math.max(0, Math.ceil((s - e) / -st))));
    return Ref.build(shape, (idx) => this.at(idx.map((i, ax) => ranges[ax]![0] + i * ranges[ax]![2])));
  }

  broadcastTo(shape: number[]): Ref {
    const off = shape.length - this.shape.length;
    return Ref.build(shape, (idx) => this.at(this.shape.map((d, i) => (d === 1 ? 0 : idx[off + i]!))));
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  toNested(): any {
    if (this.shape.length === 0) return this.data[0];
    let pos = 0;
    const rec = (ax: number): unknown[] =>
      Array.from({ length: this.shape[ax]! }, () => (ax === this.shape.length - 1 ? this.data[pos++] : rec(ax + 1)));
    return rec(0);
  }
}

/** Python's slice.indices(): the normalised [start, stop, step] of a spec on an axis of `dim`. */
export function pyRange(spec: [number | null, number | null, number | null], dim: number): [number, number, number] {
  const step = spec[2] ?? 1;
  const clamp = (v: number | null, dflt: number, lo: number, hi: number) => {
    if (v === null) return dflt;
    const x = v < 0 ? v + dim : v;
    return Math.min(Math.max(x, lo), hi);
  };
  return step > 0
    ? [clamp(spec[0], 0, 0, dim), clamp(spec[1], dim, 0, dim), step]
    : [clamp(spec[0], dim - 1, -1, dim - 1), clamp(spec[1], -1, -1, dim - 1), step];
}

/** A shape with `minDims`..`maxDims` axes of 0/1..`maxDim` each. */
export function arbShape(minDims = 0, maxDims = 4, maxDim = 5, allowZero = true): fc.Arbitrary<number[]> {
  return fc.array(fc.integer({ min: allowZero ? 0 : 1, max: maxDim }), { minLength: minDims, maxLength: maxDims });
}

/** A permutation of 0..n-1. */
export function arbPerm(n: number): fc.Arbitrary<number[]> {
  return fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n });
}

// ---- exact conversions, written from the IEEE definitions (not via the engine) ----------------

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Round a float64 to the nearest value with `mant` explicit mantissa bits and exponent range
 * [emin, emax] (ties to even), returning a float64. Overflow gives ±Infinity. */
function roundToFormat(x: number, mant: number, emin: number, emax: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  const q = 2 ** (Math.max(e, emin) - mant); // spacing of representable values here
  let r = a / q;
  const fl = Math.floor(r);
  const frac = r - fl;
  r = frac > 0.5 || (frac === 0.5 && fl % 2 === 1) ? fl + 1 : fl;
  const v = r * q;
  if (v >= 2 ** (emax + 1)) return x > 0 ? Infinity : -Infinity;
  return x < 0 ? -v : v;
}

export const toF16 = (x: number) => roundToFormat(x, 10, -14, 15);
export const toBF16 = (x: number) => roundToFormat(x, 7, -126, 127);
export const toF32 = (x: number) => roundToFormat(x, 23, -126, 127);

/** The value range of each integer dtype (and bool as 0..1). */
export const INT_RANGE: Readonly<Record<string, readonly [number, number]>> = {
  i8: [-128, 127],
  i16: [-32768, 32767],
  i32: [-2147483648, 2147483647],
  u8: [0, 255],
  u16: [0, 65535],
  u32: [0, 4294967295],
  bool: [0, 1],
};

/** Row-major (C order) element strides of a shape. */
export function rowMajorStrides(shape: readonly number[]): number[] {
  const st = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= shape[i]!;
  }
  return st;
}

/** NumPy-style astype of one float64 value into `d` (this library's documented rules). */
export function castRef(x: number, d: DType): number {
  const intRange = INT_RANGE;
  if (d === "bool") return x !== 0 || Number.isNaN(x) ? 1 : 0;
  if (d === "f32") return toF32(x);
  if (d === "f16") return toF16(x);
  if (d === "bf16") return toBF16(x);
  const [lo, hi] = intRange[d]!;
  if (Number.isNaN(x)) return 0;
  return Math.min(Math.max(Math.trunc(x), lo), hi) + 0; // + 0: integers have no -0
}

/** Integer wrap (two's complement) of an integer value into an integer dtype. */
export function wrapInt(x: number, d: DType): number {
  const bits = d.endsWith("8") ? 8 : d.endsWith("16") ? 16 : 32;
  const m = 2 ** bits;
  let v = ((x % m) + m) % m;
  if (d.startsWith("i") && v >= m / 2) v -= m;
  return v;
}

export { f32, u32 };

/** Temporary directories for this test file, removed after its tests. */
export function tempDirs(): (prefix: string) => string {
  const made: string[] = [];
  afterAll(() => {
    for (const d of made) rmSync(d, { recursive: true, force: true });
  });
  return (prefix) => {
    const d = mkdtempSync(join(tmpdir(), prefix));
    made.push(d);
    return d;
  };
}

/**
 * The compiled SIMD levels this CPU runs (those `bn.setSimdLevel` accepts), found by trying each
 * and restoring the detected level. A refusal other than DeviceError is a bug and is rethrown.
 */
export function runnableLevels(): string[] {
  const caps = bn.deviceCapabilities();
  return caps.simdCompiled.filter((level) => {
    try {
      bn.setSimdLevel(level);
      return true;
    } catch (e) {
      if (!(e instanceof bn.DeviceError)) throw e;
      return false;
    } finally {
      bn.setSimdLevel(caps.simdDetected);
    }
  });
}
