// The API fuzzer's creation commands (see fuzzer.ts): zeros / ones / empty / full, arange,
// linspace, eye, rand / randn, and bn.tensor from nested arrays, flat data or TypedArrays.
import * as bn from "../../src/index.ts";
import type { DType, Tensor } from "../../src/index.ts";
import { err, fmtArgs, fmtVal, type Command, type RefOut } from "./common.ts";
import type { Fuzzer } from "./fuzzer.ts";
import { cast, checkShape, DTYPES, isFloat, prod } from "./reference.ts";

export function genCreate(fz: Fuzzer): Command {
  const r = fz.r;
  const kind = r.pick(["tensor", "tensor", "tensor", "zeros", "ones", "full", "arange", "linspace", "eye", "rand", "randn", "empty"]);
  const badShape = r.chance(0.06);
  const badDtype = !badShape && r.chance(0.05);
  const shape: unknown = badShape ? fz.badShape() : fz.shape();
  const dtype: unknown = badDtype ? fz.badDtype() : r.chance(0.1) ? undefined : fz.dtype();
  const opts: Record<string, unknown> | undefined = dtype === undefined && r.chance(0.5) ? undefined : { dtype };
  const dt = (dtype ?? "f32") as DType; // null means the default, as undefined does
  const okDtype = typeof dtype === "string" && (DTYPES as readonly string[]).includes(dtype);
  const dtypeErr = dtype !== undefined && dtype !== null && !okDtype;
  const desc = (name: string, ...a: unknown[]) => () => `bn.${name}(${fmtArgs(...a)})`;
  const fillCheck = (s: number[], f: (i: number) => number, exact = true): RefOut => ({ shape: s, dtype: dt, vals: Float64Array.from({ length: prod(s) }, (_, i) => cast(f(i), "f64", dt)), exact });
  switch (kind) {
    case "zeros":
    case "ones":
    case "empty": {
      const fn = kind === "zeros" ? bn.zeros : kind === "ones" ? bn.ones : bn.empty;
      return {
        op: kind,
        args: [],
        transient: kind === "empty",
        run: () => fn(shape as number[], opts as bn.CreateOptions),
        desc: desc(kind, shape, opts),
        model: () => {
          const s = checkShape(shape);
          if (s === null) return err("ShapeError");
          if (dtypeErr) return err("DTypeError");
          if (prod(s) > 1e9) return err(); // OutOfMemoryError, or NativeError past the byte counts the engine takes
          if (kind === "empty") return { throws: false, out: { shape: s, dtype: dt } };
          return { throws: false, out: fillCheck(s, () => (kind === "zeros" ? 0 : 1)) };
        },
      };
    }
    case "full": {
      const value: unknown = r.chance(0.05) ? r.pick(["1", null, {}, 1n]) : r.chance(0.2) ? r.chance(0.5) : isFloat(dt) ? fz.floatValue() : fz.intValue(okDtype ? dt : "i32");
      return {
        op: "full",
        args: [],
        run: () => bn.full(shape as number[], value as number, opts as bn.CreateOptions),
        desc: desc("full", shape, value, opts),
        model: () => {
          if (typeof value !== "number" && typeof value !== "boolean") return err("DTypeError");
          const s = checkShape(shape);
          if (s === null) return err("ShapeError");
          if (dtypeErr) return err("DTypeError");
          if (prod(s) > 1e9) return err(); // OutOfMemoryError, or NativeError past the byte counts the engine takes
          return { throws: false, out: fillCheck(s, () => Number(value)) };
        },
      };
    }
    case "arange": {
      const intish = !isFloat(dt);
      const start = r.chance(0.05) ? r.pick([NaN, Infinity, "0"]) : intish ? r.int(-20, 20) : Math.round(fz.floatValue() * 4) / 4;
      const step = r.chance(0.05) ? r.pick([0, -0, NaN]) : intish ? r.pick([1, 2, -1, -3, 5]) : r.pick([1, 0.5, -0.25, 3, 0.1, -1]);
      const count = r.chance(0.03) ? 2 ** 48 : r.int(-3, 64);
      const stop = typeof start === "number" && typeof step === "number" ? start + count * step : 10;
      const form = r.int(0, 2);
      const run = form === 0 && typeof start === "number" && start >= 0 ? () => bn.arange(start) : () => bn.arange(start as number, stop, step as number, opts as bn.CreateOptions);
      return {
        op: "arange",
        args: [],
        run,
        desc: form === 0 && typeof start === "number" && start >= 0 ? desc("arange", start) : desc("arange", start, stop, step, opts),
        model: () => {
          const one = form === 0 && typeof start === "number" && start >= 0;
          const [a, b, st] = one ? [0, start as number, 1] : [start, stop, step];
          for (const v of [a, b, st]) if (typeof v !== "number" || !Number.isFinite(v)) return err("ValueError");
          if (st === 0) return err("ValueError");
          const n = Math.max(0, Math.ceil(((b as number) - (a as number)) / (st as number)));
          const d2: DType = one ? "f32" : dt;
          if (n > Number.MAX_SAFE_INTEGER) return err("ShapeError");
          if (!one && dtypeErr) return err("DTypeError");
          if (n > 1e9) return err(); // OutOfMemoryError, or NativeError past the byte counts the engine takes
          return { throws: false, out: { shape: [n], dtype: d2, exact: true, vals: Float64Array.from({ length: n }, (_, i) => cast((a as number) + i * (st as number), "f64", d2)) } };
        },
      };
    }
    case "linspace": {
      const start = r.chance(0.05) ? NaN : Math.round(fz.floatValue() * 8) / 8;
      const stop = Math.round(fz.floatValue() * 8) / 8;
      const num: unknown = r.chance(0.06) ? r.pick([-1, 2.5, NaN, "3"]) : r.int(0, 40);
      const endpoint = r.chance(0.8);
      const o = { ...(opts ?? {}), endpoint };
      return {
        op: "linspace",
        args: [],
        run: () => bn.linspace(start, stop, num as number, o as bn.CreateOptions),
        desc: desc("linspace", start, stop, num, o),
        model: () => {
          if (typeof num !== "number" || !Number.isInteger(num) || num < 0) return err("ShapeError");
          if (!Number.isFinite(start) || !Number.isFinite(stop)) return err("ValueError");
          if (dtypeErr) return err("DTypeError");
          const div = endpoint ? num - 1 : num;
          const st = div > 0 ? (stop - start) / div : 0;
          const vals = Float64Array.from({ length: num }, (_, i) => cast(endpoint && num > 1 && i === num - 1 ? stop : start + i * st, "f64", dt));
          return { throws: false, out: { shape: [num], dtype: dt, vals, exact: true } };
        },
      };
    }
    case "eye": {
      const n: unknown = r.chance(0.05) ? r.pick([-1, 2.5, NaN]) : r.int(0, 12);
      const m: number | undefined = r.chance(0.5) ? undefined : r.int(0, 12);
      const k: unknown = r.chance(0.05) ? 0.5 : r.int(-3, 3);
      const o = { ...(opts ?? {}), k };
      return {
        op: "eye",
        args: [],
        run: () => bn.eye(n as number, m, o as bn.CreateOptions),
        desc: desc("eye", n, m, o),
        model: () => {
          if (typeof k !== "number" || !Number.isInteger(k)) return err("ValueError");
          const cols = m ?? n;
          const s = checkShape([n, cols]);
          if (s === null) return err("ShapeError");
          if (dtypeErr) return err("DTypeError");
          return { throws: false, out: fillCheck(s, (i) => (i % s[1]! === Math.floor(i / s[1]!) + k ? 1 : 0)) };
        },
      };
    }
    case "rand":
    case "randn": {
      const seed: unknown = r.chance(0.05) ? r.pick([-1, 1.5, NaN, 2 ** 53, "1"]) : r.chance(0.1) ? undefined : r.int(0, 2 ** 40);
      const fdt: unknown = dtype === undefined || r.chance(0.7) ? (badDtype ? dtype : r.pick(["f32", "f16", "bf16", ...(r.chance(0.1) ? ["i32", "bool"] : [])])) : dtype;
      const lo0 = r.chance(0.03) ? Infinity : r.int(-3, 2);
      const hi = lo0 + r.pick([1, 2, 0.5, 10]);
      const lo: unknown = r.chance(0.02) ? r.pick([Symbol.iterator, "1", NaN]) : lo0; // a parameter that is not a finite number
      const o: Record<string, unknown> = kind === "rand" ? { dtype: fdt, seed, low: lo, high: hi } : { dtype: fdt, seed, mean: lo, std: r.pick([1, 0.5, 2]) };
      const fn = kind === "rand" ? bn.rand : bn.randn;
      return {
        op: kind,
        args: [],
        run: () => fn(shape as number[], o as bn.RandOptions),
        desc: desc(kind, shape, o),
        model: () => {
          const fd = fdt ?? "f32";
          if (!(typeof fd === "string" && (DTYPES as readonly string[]).includes(fd))) return err("DTypeError");
          if (!isFloat(fd)) return err("DTypeError");
          if (!Number.isFinite(lo) || !Number.isFinite(hi)) return err("ValueError");
          if (typeof lo !== "number") return err("ValueError");
          if (seed !== undefined && !(typeof seed === "number" && Number.isSafeInteger(seed) && seed >= 0)) return err("ValueError");
          const s = checkShape(shape);
          if (s === null) return err("ShapeError");
          if (prod(s) > 1e9) return err(); // OutOfMemoryError, or NativeError past the byte counts the engine takes
          const out: RefOut = { shape: s, dtype: fd as DType };
          if (kind === "rand") out.range = [lo, hi];
          else out.extra = (t) => ((t as Tensor)._toFloat64("fuzz").every(Number.isFinite) ? null : "randn gave a non-finite value");
          if (seed !== undefined) {
            // Same seed, same numbers.
            const prev = out.extra;
            out.extra = (t) => {
              const p = prev?.(t) ?? null;
              if (p !== null) return p;
              const again = fn(s, o as bn.RandOptions);
              const a = again._toFloat64("fuzz");
              again.dispose();
              const b = (t as Tensor)._toFloat64("fuzz");
              return a.every((v, i) => Object.is(v, b[i])) ? null : "the same seed gave different numbers";
            };
          }
          return { throws: false, out };
        },
      };
    }
    default:
      return genTensorFromData(fz, shape, badShape, dtype, okDtype, dtypeErr);
  }
}

function genTensorFromData(fz: Fuzzer, shapeIn: unknown, badShape: boolean, dtype: unknown, okDtype: boolean, dtypeErr: boolean): Command {
  const r = fz.r;
  const shape = badShape ? fz.shape() : (shapeIn as number[]);
  const n = prod(shape);
  const src = okDtype ? (dtype as DType) : "f32";
  const vals = fz.values(n, src);
  const form = r.pick(["nested", "nested", "flat+shape", "typed", "scalar", "bool", "junk"]);
  let data: unknown;
  let srcType = "f64";
  let inferred: DType = "f32";
  let dataShape = shape;
  let fault: string | null = null;
  let optShape: unknown;
  const nest = (flat: ArrayLike<unknown>, s: number[]): unknown => {
    let pos = 0;
    const rec = (ax: number): unknown[] => Array.from({ length: s[ax]! }, () => (ax === s.length - 1 ? flat[pos++] : rec(ax + 1)));
    return s.length === 0 ? flat[0] : rec(0);
  };
  switch (form) {
    case "nested":
    case "bool": {
      const flat: unknown[] = form === "bool" ? Array.from(vals, (v) => v !== 0 && !Number.isNaN(v)) : Array.from(vals);
      if (form === "bool" && n > 0) inferred = "bool";
      if (shape.length === 0) {
        data = flat[0];
        if (form === "bool") inferred = "bool";
      } else {
        data = nest(flat, shape);
        if (r.chance(0.08) && n > 0) {
          // one injected fault: a ragged row or a non-number element
          const arr = data as unknown[];
          if (r.chance(0.5) && shape.length >= 2 && shape[0]! >= 2 && shape[1]! >= 1) {
            (arr[arr.length - 1] as unknown[]).push(1);
            fault = "ShapeError";
          } else {
            let a: unknown[] = arr;
            while (Array.isArray(a[0])) a = a[0] as unknown[];
            a[0] = r.pick(["1", null, undefined, {}, 1n]);
            fault = "DTypeError";
          }
        }
      }
      if (r.chance(0.2) && fault === null) {
        optShape = r.chance(0.8) ? fz.r.shuffle(shape.slice()) : [n + 1];
        if (shape.length === 0) data = [data];
        dataShape = shape.length === 0 ? [1] : shape;
      }
      break;
    }
    case "flat+shape":
      data = Array.from(vals);
      dataShape = [n];
      optShape = r.chance(0.9) ? shape : r.chance(0.5) ? [n + 1] : fz.badShape();
      break;
    case "typed": {
      const Ctor = r.pick([Float32Array, Float64Array, Int8Array, Int16Array, Int32Array, Uint8Array, Uint16Array, Uint32Array, Float16Array, Uint8ClampedArray]);
      const ta = new Ctor(n);
      for (let i = 0; i < n; i++) ta[i] = vals[i]!;
      data = ta;
      const names = new Map<unknown, string>([
        [Float32Array, "f32"],
        [Float64Array, "f64"],
        [Int8Array, "i8"],
        [Int16Array, "i16"],
        [Int32Array, "i32"],
        [Uint8Array, "u8"],
        [Uint16Array, "u16"],
        [Uint32Array, "u32"],
        [Float16Array, "f16"],
        [Uint8ClampedArray, "u8"],
      ]);
      srcType = names.get(Ctor)!;
      inferred = srcType === "f64" ? "f32" : (srcType as DType);
      dataShape = [n];
      optShape = r.chance(0.7) ? shape : undefined;
      break;
    }
    case "scalar":
      data = vals.length > 0 ? vals[0] : 3;
      dataShape = [];
      break;
    default:
      data = r.pick([null, "abc", {}, new BigInt64Array(2), undefined, 5n]);
      fault = "DTypeError";
  }
  const o: Record<string, unknown> | undefined = dtype === undefined && optShape === undefined ? undefined : { dtype, shape: optShape };
  if (o && dtype === undefined) delete o.dtype;
  if (o && optShape === undefined) delete o.shape;
  return {
    op: "tensor",
    args: [],
    run: () => bn.tensor(data as number[], o as bn.TensorOptions),
    desc: () => `bn.tensor(${form === "typed" ? `${srcType}Array(${n})` : fmtVal(data).slice(0, 200)}, ${fmtVal(o)})`,
    model: () => {
      if (fault) return err(fault);
      // Read the data back the way the library does: its own values, converted from the source type.
      let flat: number[];
      if (form === "typed") flat = Array.from(data as ArrayLike<number>);
      else if (Array.isArray(data)) flat = (data as unknown[]).flat(8).map(Number);
      else flat = [Number(data)];
      if (form === "nested" && Array.isArray(data) && (data as unknown[]).flat(8).length > 0 && (data as unknown[]).flat(8).every((x) => typeof x === "boolean")) inferred = "bool";
      let s = dataShape;
      if (Array.isArray(data) && form !== "flat+shape") {
        // the library reads the shape from the first elements (an empty axis ends it)
        s = [];
        let probe: unknown = data;
        while (Array.isArray(probe)) {
          s.push(probe.length);
          if (probe.length === 0) break;
          probe = probe[0];
        }
      }
      if (optShape !== undefined) {
        const os = checkShape(optShape);
        if (os === null) return err("ShapeError");
        if (prod(os) !== flat.length) return err("ShapeError");
        s = os;
      }
      if (dtypeErr) return err("DTypeError");
      const d: DType = okDtype ? (dtype as DType) : inferred;
      return { throws: false, out: { shape: s, dtype: d, exact: true, vals: Float64Array.from(flat, (v) => cast(v, srcType, d)) } };
    },
  };
}
