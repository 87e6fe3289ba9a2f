// The API fuzzer's elementwise commands (see fuzzer.ts): binary ops and comparisons, in-place
// add_ / sub_ / mul_ / div_, unary ops and clip; their dtype rules and models.
import * as bn from "../../src/index.ts";
import type { DType, Tensor } from "../../src/index.ts";
import { err, fmtArgs, fmtVal, maybe, operandFault, T, type Command, type Expect, type Snap } from "./common.ts";
import type { Fuzzer } from "./fuzzer.ts";
import { APPROX, binRef, broadcastShape, broadcastVals, cast, COMPARE, INT_RANGE, isFloat, prod, promote, store, unaryRef } from "./reference.ts";

/** Non-numbers where a number is expected. */
const JUNK_NUMBERS: unknown[] = ["3", "ab", Symbol.iterator, {}, [1], 1n, true];

/** Two operands that broadcast (mostly): pool tensors, fresh tensors, scalars or bad values. */
function binaryOperands(fz: Fuzzer): [unknown, unknown] {
  const r = fz.r;
  const a = fz.operand(0.05);
  const as = a instanceof bn.Tensor ? a.shape : [];
  const ad = a instanceof bn.Tensor ? a.dtype : "f32";
  let b: unknown;
  const u = r.next();
  if (u < 0.3) b = fz.scalar(ad);
  else if (u < 0.5) {
    const want = fz.compatible(as, 0.02);
    const c = fz.pool.filter((t) => t !== a && t.shape.length <= as.length + 1 && prod(broadcastShape(t.shape, as) ?? [Infinity]) <= 4096);
    b = c.length > 0 ? r.pick(c) : fz.fresh(want, fz.dtype());
  } else if (u < 0.93) b = fz.fresh(fz.compatible(as), r.chance(0.5) ? ad : fz.dtype());
  else if (u < 0.96) b = fz.operand(1);
  else b = fz.pick();
  return r.chance(0.2) && !(b instanceof bn.Tensor && !(a instanceof bn.Tensor)) ? [b, a] : [a, b];
}

export function genBinary(fz: Fuzzer): Command {
  const r = fz.r;
  const op = r.pick(["add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge", "add", "mul", "sub"]);
  let [a, b] = binaryOperands(fz);
  if (r.chance(0.01)) [a, b] = [fz.scalar(), fz.scalar()];
  const method = a instanceof bn.Tensor && r.chance(0.4);
  const fn = (bn as unknown as Record<string, (x: unknown, y: unknown) => Tensor>)[op]!;
  return {
    op,
    args: [a, b],
    run: method ? () => (a as unknown as Record<string, (y: unknown) => Tensor>)[op]!(b) : () => fn(a, b),
    desc: () => (method ? `(${fmtVal(a)}).${op}(${fmtVal(b)})` : `bn.${op}(${fmtArgs(a, b)})`),
    model: (s) => binaryModel(op, s[0]!, s[1]!),
  };
}

/** src/ops/elementwise.ts's rules for the dtypes of a op b (ValueError / DTypeError included). */
function binaryDtypes(op: string, sa: Snap, sb: Snap): { rd: DType; cd: DType; outD: DType } | Expect {
  const scalarDt = (d: DType, v: number | boolean): DType | Expect => {
    if (typeof v === "boolean") return d;
    if (isFloat(d)) return d;
    if (!Number.isInteger(v)) return "f32";
    if (d === "bool") return "i32";
    const [lo, hi] = INT_RANGE[d]!;
    if (v < lo || v > hi) return err("ValueError");
    return d;
  };
  let rd: DType | Expect;
  if (sa.kind === "tensor" && sb.kind === "tensor") rd = promote(sa.dtype, sb.dtype);
  else if (sa.kind === "tensor") rd = scalarDt(sa.dtype, (sb as { v: number }).v);
  else if (sb.kind === "tensor") rd = scalarDt(sb.dtype, (sa as { v: number }).v);
  else rd = typeof (sa as { v: unknown }).v === "boolean" && typeof (sb as { v: unknown }).v === "boolean" ? "bool" : "f32";
  if (typeof rd !== "string") return rd;
  if (rd === "bool" && op === "sub") return err("DTypeError");
  let cd = rd;
  if (op === "div" && !isFloat(rd)) cd = rd = "f32";
  if (op === "pow" && rd === "bool") cd = rd = "i8";
  return { rd, cd, outD: COMPARE.has(op) ? "bool" : cd };
}

function binaryModel(op: string, sa: Snap, sb: Snap): Expect {
  const f = operandFault([sa, sb], "DTypeError", true);
  if (f) return f;
  const dts = binaryDtypes(op, sa, sb);
  if ("throws" in dts) return dts;
  const { cd, outD } = dts;
  const shA = sa.kind === "tensor" ? sa.shape : [];
  const shB = sb.kind === "tensor" ? sb.shape : [];
  const shape = broadcastShape(shA, shB);
  if (shape === null) return err("ShapeError");
  const va = operandVals(sa, cd, shape);
  const vb = operandVals(sb, cd, shape);
  const n = prod(shape);
  const vals = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = binRef(op, cd, va[i]!, vb[i]!);
    vals[i] = COMPARE.has(op) ? v : store(cd, v);
  }
  return { throws: false, out: { shape, dtype: outD, vals } };
}

/** An operand's values converted into the compute dtype and broadcast to `shape`. */
function operandVals(s: Snap, cd: DType, shape: number[]): Float64Array {
  if (s.kind === "tensor") {
    const v = Float64Array.from(s.vals!, (x) => cast(x, s.dtype, cd));
    return broadcastVals(v, s.shape, shape);
  }
  const v = cast(Number((s as { v: number }).v), "f64", cd);
  return new Float64Array(prod(shape)).fill(v);
}

export function genInplace(fz: Fuzzer): Command {
  const r = fz.r;
  const op = r.pick(["add", "sub", "mul", "div"]);
  const target = fz.operand(0.04);
  const ts = target instanceof bn.Tensor && !target.disposed ? target.shape : [];
  const td = target instanceof bn.Tensor ? target.dtype : "f32";
  let other: unknown;
  const u = r.next();
  if (u < 0.35) other = fz.scalar(td);
  else if (u < 0.45 && target instanceof bn.Tensor) other = r.chance(0.5) ? target : fz.pick((t) => t._s === target._s || broadcastShape(t.shape, ts)?.join() === ts.join());
  else if (u < 0.97) {
    const s = fz.compatible(ts, 0.05).slice(r.chance(0.8) ? 0 : 0);
    const fits = s.length <= ts.length ? s : s.slice(s.length - ts.length);
    other = fz.fresh(r.chance(0.9) ? fits : s, r.chance(0.6) ? td : fz.dtype());
  } else other = fz.operand(1);
  const method = target instanceof bn.Tensor && r.chance(0.6);
  const name = `${op}_`;
  const fn = (bn as unknown as Record<string, (x: unknown, y: unknown) => Tensor>)[name]!;
  return {
    op: name,
    args: [target, other],
    inplace: target instanceof bn.Tensor ? target : undefined,
    delta: 0,
    run: method ? () => (target as unknown as Record<string, (y: unknown) => Tensor>)[name]!(other) : () => fn(target, other),
    desc: () => (method ? `(${fmtVal(target)}).${name}(${fmtVal(other)})` : `bn.${name}(${fmtArgs(target, other)})`),
    model: (s) => inplaceModel(fz, op, s[0]!, s[1]!),
  };
}

function inplaceModel(fz: Fuzzer, op: string, st: Snap, so: Snap): Expect {
  if (st.kind !== "tensor") return err("DTypeError");
  const f = operandFault([so, st], "DTypeError", true); // the other operand is checked first
  if (f) return f;
  const td = st.dtype;
  const dts = binaryDtypes(op, st, so);
  if ("throws" in dts) {
    // bool - x: DTypeError whatever the promotion
    return dts;
  }
  let rd = dts.rd;
  if (op === "div" && !isFloat(rd)) rd = "f32";
  if (td === "bool" && op === "sub") return err("DTypeError");
  const kind = (d: DType) => (d === "bool" ? 0 : isFloat(d) ? 2 : 1);
  if (kind(rd) > kind(td)) return err("DTypeError");
  const shape = st.shape;
  if (so.kind === "tensor") {
    const bs = broadcastShape(shape, so.shape);
    if (bs === null || bs.join() !== shape.join()) return err("ShapeError");
  }
  const res: Expect = { throws: false };
  // A target whose elements overlap (an expanded view) is refused, as NumPy and PyTorch do.
  const overlap = st.strides.some((v, i) => v === 0 && shape[i]! > 1);
  if (overlap) {
    fz.s.inplaceOnOverlap++;
    return err("ValueError");
  }
  const vt = st.vals!.slice();
  const vo = operandVals(so, td, shape);
  const n = vt.length;
  const vals = new Float64Array(n);
  for (let i = 0; i < n; i++) vals[i] = store(td, binRef(op, td, vt[i]!, vo[i]!));
  const target = st.t;
  res.out = { shape, dtype: td, vals, extra: (r) => (r === target ? null : "an in-place op did not return its target") };
  return res;
}

export function genUnary(fz: Fuzzer): Command {
  const r = fz.r;
  const op = r.pick(["neg", "abs", "exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh", "erf", "floor", "ceil", "round", "sign", "relu", "silu", "sigmoid", "gelu", "gelu_tanh", "clip", "clip"]);
  const x = fz.operand(0.05);
  const method = x instanceof bn.Tensor && r.chance(0.5);
  let lo: unknown = r.chance(0.2) ? null : r.chance(0.5) ? r.int(-5, 3) : Math.round(fz.floatValue() * 10) / 10;
  let hi: unknown = r.chance(0.2) ? undefined : r.chance(0.5) ? r.int(-3, 5) : Math.round(fz.floatValue() * 10) / 10;
  if (r.chance(0.05)) [lo, hi] = [r.pick([NaN, Infinity, 1e10, -1e10]), r.pick([-Infinity, 300, -300])];
  if (op === "clip" && r.chance(0.03)) [lo, hi] = r.chance(0.5) ? [r.pick(JUNK_NUMBERS), hi] : [lo, r.pick(JUNK_NUMBERS)];
  const gopts: unknown = r.chance(0.05) ? { approximate: r.pick(["fast", null, 1]) } : op === "gelu_tanh" ? { approximate: "tanh" } : r.chance(0.5) ? { approximate: "none" } : undefined;
  const name = op === "gelu_tanh" ? "gelu" : op;
  const X = x as Tensor;
  let run: () => unknown;
  if (op === "clip") run = method ? () => X.clip(lo as number, hi as number) : () => bn.clip(X, lo as number, hi as number);
  else if (name === "gelu") run = method ? () => X.gelu(gopts as { approximate: "none" }) : () => bn.gelu(X, gopts as { approximate: "none" });
  else {
    const fn = (bn as unknown as Record<string, (x: unknown) => Tensor>)[op]!;
    run = method ? () => (X as unknown as Record<string, () => Tensor>)[op]!() : () => fn(x);
  }
  return {
    op,
    args: [x],
    run,
    desc: () => `${method ? `(${fmtVal(x)}).` : "bn."}${name}(${method ? "" : fmtVal(x)}${op === "clip" ? `${method ? "" : ", "}${fmtArgs(lo, hi)}` : name === "gelu" ? `${method ? "" : ", "}${fmtVal(gopts)}` : ""})`,
    model: (s) => {
      let uop = op;
      if (name === "gelu") {
        const a = (gopts as { approximate?: unknown } | undefined)?.approximate ?? "none";
        if (a !== "none" && a !== "tanh") return err("ValueError");
        uop = a === "tanh" ? "gelu_tanh" : "gelu";
      }
      const f = operandFault(s, "DTypeError");
      if (f) return f;
      const t = T(s[0]!);
      if (t.dtype === "bool" && uop === "neg") return err("DTypeError");
      const isBound = (v: unknown) => v === null || v === undefined || typeof v === "number";
      if (uop === "clip" && (!isBound(lo) || !isBound(hi))) return maybe(); // a bound that is not a number: refused or ignored
      const intOk = ["neg", "abs", "sign", "relu", "clip", "floor", "ceil", "round"].includes(uop);
      const cd: DType = intOk || isFloat(t.dtype) ? t.dtype : "f32";
      const xs = Float64Array.from(t.vals!, (v) => cast(v, t.dtype, cd));
      const vals = new Float64Array(xs.length);
      if (isFloat(cd)) {
        // bounds are converted to f32 (the compute type), NaN = none
        const l = lo === null || lo === undefined ? NaN : Math.fround(lo as number);
        const h = hi === null || hi === undefined ? NaN : Math.fround(hi as number);
        for (let i = 0; i < xs.length; i++) vals[i] = unaryRef(uop, xs[i]!, l, h);
      } else {
        const bd = cd === "bool" ? "u8" : cd;
        const l = lo === null || lo === undefined || Number.isNaN(lo) ? NaN : cast(lo as number, "f64", bd);
        const h = hi === null || hi === undefined || Number.isNaN(hi) ? NaN : cast(hi as number, "f64", bd);
        const signed = cd.startsWith("i");
        for (let i = 0; i < xs.length; i++) {
          const v = xs[i]!;
          let o: number;
          switch (uop) {
            case "neg":
              o = -v;
              break;
            case "abs":
              o = signed && v < 0 ? -v : v;
              break;
            case "sign":
              o = v > 0 ? 1 : v < 0 ? -1 : 0;
              break;
            case "relu":
              o = Math.max(v, 0);
              break;
            case "clip":
              o = unaryRef("clip", v, l, h);
              break;
            default:
              o = v;
          }
          vals[i] = store(cd, o);
        }
      }
      return { throws: false, out: { shape: t.shape, dtype: cd, vals, atol: APPROX.has(uop) ? 2e-7 : 0 } };
    },
  };
}
