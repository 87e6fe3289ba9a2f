// The API fuzzer's checks (see fuzzer.ts): a call's operands against their snapshots, and a
// tensor or TernaryTensor result against the reference model.
import type { Tensor, TernaryTensor } from "../../src/index.ts";
import type { Command, RefOut, Snap, TernaryModel } from "./common.ts";
import type { Fuzzer } from "./fuzzer.ts";
import { FMAX, isFloat, prod, roundF, RTOL } from "./reference.ts";

/** Operands (other than an in-place target and its aliases) must be exactly as before. */
export function checkUnchanged(fz: Fuzzer, cmd: Command, snaps: Snap[], threw: boolean, call: () => string): void {
  const tgt = cmd.inplace;
  for (const s of snaps) {
    if (s.kind === "tensor") {
      if (s.disposed) continue;
      const t = s.t;
      if (cmd.op === "dispose" || cmd.op === "gc") continue;
      if (t.disposed) {
        fz.fail("operand-changed", cmd.op, call(), `operand ${s.dtype}[${s.shape}] was disposed by the call`);
        continue;
      }
      if (tgt !== undefined && !threw && (t === tgt || t._s === tgt._s)) continue; // written in place
      const same = t.dtype === s.dtype && t.shape.join() === s.shape.join() && t.strides.join() === s.strides.join();
      const now = t._toFloat64("fuzz");
      let diff = -1;
      for (let i = 0; i < now.length && diff < 0; i++) if (!Object.is(now[i], s.vals![i]) && !(Number.isNaN(now[i]) && Number.isNaN(s.vals![i]))) diff = i;
      if (!same || diff >= 0) {
        fz.fail("operand-changed", cmd.op, call(), same ? `element ${diff} ${s.vals![diff]} -> ${now[diff]} (${threw ? "after a throw" : "after success"})` : `metadata ${s.dtype}[${s.shape}]{${s.strides}} -> ${t.dtype}[${t.shape}]{${t.strides}}`);
      }
    } else if (s.kind === "ternary" && !s.disposed && cmd.op !== "dispose") {
      if (s.w.disposed) {
        fz.fail("operand-changed", cmd.op, call(), "a TernaryTensor operand was disposed by the call");
        continue;
      }
      const now = s.w.packed._toFloat64("fuzz");
      if (now.length !== s.packed!.length || now.some((v, i) => v !== s.packed![i])) fz.fail("operand-changed", cmd.op, call(), "packed ternary codes changed");
    }
  }
}

/** Compares a result with the reference. */
export function checkTensor(fz: Fuzzer, cmd: Command, ref: RefOut, res: Tensor, call: () => string): void {
  if (res.disposed) {
    fz.fail("mismatch", cmd.op, call(), "the result is disposed");
    return;
  }
  if (res.dtype !== ref.dtype || res.shape.join() !== ref.shape.join()) {
    fz.fail("mismatch", cmd.op, call(), `got ${res.dtype}[${res.shape}], expected ${ref.dtype}[${ref.shape}]`);
    return;
  }
  if (ref.viewOf !== undefined && res._s !== ref.viewOf._s) fz.fail("not-a-view", cmd.op, call(), "documented as a view, but the result has its own storage");
  if (ref.extra) {
    const p = ref.extra(res);
    if (p !== null) fz.fail("mismatch", cmd.op, call(), p);
  }
  if (ref.vals === undefined && ref.range === undefined) {
    fz.s.unmodeled++;
    return;
  }
  const got = res._toFloat64("fuzz");
  const d = ref.dtype;
  fz.s.comparisons++;
  if (ref.range) {
    const [lo, hi] = ref.range;
    for (let i = 0; i < got.length; i++) {
      fz.s.elements++;
      if (!(got[i]! >= lo && got[i]! <= hi)) {
        fz.fail("mismatch", cmd.op, call(), `element ${i} = ${got[i]} outside [${lo}, ${hi}]`);
        return;
      }
    }
    return;
  }
  const vals = ref.vals!;
  if (vals.length !== got.length) {
    fz.fail("mismatch", cmd.op, call(), `got ${got.length} elements, reference has ${vals.length}`);
    return;
  }
  const fl = isFloat(d);
  const rtol = fl ? RTOL[d]! : 0;
  const atol = (ref.atol ?? 0) + (d === "f16" ? 6e-8 : d === "bf16" ? 1e-40 : fl ? 1e-45 : 0);
  for (let i = 0; i < got.length; i++) {
    if (ref.skip?.[i]) continue;
    const g = got[i]!;
    const e = vals[i]!;
    fz.s.elements++;
    if (ref.exact || !fl) {
      const want = fl ? roundF(d, e) : e;
      if (Object.is(g, want) || (Number.isNaN(g) && Number.isNaN(want)) || (!ref.exact && g === want)) continue;
      fz.fail("mismatch", cmd.op, call(), `element ${i}: got ${g}, expected ${want}${ref.exact ? " (exact)" : ""}`);
      return;
    }
    const mag = ref.mag?.[i] ?? 0;
    if (Number.isNaN(e)) {
      if (Number.isNaN(g)) continue;
      fz.fail("mismatch", cmd.op, call(), `element ${i}: got ${g}, expected NaN`);
      return;
    }
    // Terms near the top of f32 may overflow in f32 products and partial sums (and an
    // overflowed +inf meet a true -inf): not modeled.
    if (mag > 1e37 || Math.abs(e) > 1e37) continue;
    if (Number.isNaN(g)) {
      fz.fail("mismatch", cmd.op, call(), `element ${i}: got NaN, expected ${e}`);
      return;
    }
    const rounded = roundF(d, e);
    if (!Number.isFinite(rounded) || !Number.isFinite(g)) {
      // Overflow to infinity: must agree unless the reference sits at the rounding edge.
      if (g === rounded) continue;
      if (Math.abs(e) > FMAX[d]! * 0.99 || (Number.isFinite(e) && Math.abs(e) + 1e-5 * mag > FMAX[d]! * 0.99)) continue;
      fz.fail("mismatch", cmd.op, call(), `element ${i}: got ${g}, expected ${e} (${rounded} in ${d})`);
      return;
    }
    const tol = rtol * Math.abs(e) + 1e-5 * mag + atol;
    const diff = Math.abs(g - e);
    const ratio = tol > 0 ? diff / tol : diff === 0 ? 0 : Infinity;
    // (statistics over normal numbers: a subnormal result's half-ulp is the absolute floor itself)
    if (ratio > fz.s.maxErrRatio && !ref.bound && Math.abs(e) >= (d === "f16" ? 6.2e-5 : 1.2e-38)) {
      fz.s.maxErrRatio = ratio;
      fz.s.maxErrAt = `${cmd.op} ${d}: got ${g}, reference ${e}`;
    }
    if (mag === 0 && Math.abs(e) >= (d === "f16" ? 6.2e-5 : 1.2e-38)) {
      const rel = diff / Math.abs(e);
      if (rel > fz.s.maxRelErr[d]!) fz.s.maxRelErr[d] = rel;
    }
    if (diff > tol) {
      fz.fail("mismatch", cmd.op, call(), `element ${i}: got ${g}, expected ${e} (|diff| ${diff.toExponential(3)} > tol ${tol.toExponential(3)})`);
      return;
    }
  }
}

export function checkTernary(fz: Fuzzer, cmd: Command, m: TernaryModel, w: TernaryTensor, call: () => string): void {
  const fail = (d: string) => fz.fail("mismatch", cmd.op, call(), d);
  if (w.format !== m.format || w.shape.join() !== m.shape.join()) return fail(`got ${w.format} [${w.shape}], expected ${m.format} [${m.shape}]`);
  if (w.granularity !== m.granularity) return fail(`granularity ${w.granularity}, expected ${m.granularity}`);
  fz.s.comparisons++;
  const u = w.unpack();
  const t = u._toFloat64("fuzz");
  const ud = u.dtype;
  u.dispose();
  if (ud !== "i8") return fail(`unpack() gave ${ud}`);
  for (let i = 0; i < t.length; i++) {
    fz.s.elements++;
    if (Number.isNaN(m.q[i]!)) {
      if (t[i] !== 0 && Math.abs(t[i]!) !== 1) return fail(`weight ${i} unpacked to ${t[i]}`);
      continue;
    }
    if (t[i] !== m.q[i]) return fail(`weight ${i}: ternary value ${t[i]}, expected ${m.q[i]}`);
  }
  // Scales: f32 (i2) per granularity, or each 256-weight block's f16 scale (tq formats).
  const sc = w.scale;
  const got = sc._toFloat64("fuzz");
  const k = m.shape[m.shape.length - 1]!;
  const want: number[] = [];
  const skip: number[] = [];
  if (m.format === "i2") {
    want.push(...m.scale);
    skip.push(...m.scaleSkip);
  } else {
    const rows = prod(m.shape.slice(0, -1));
    for (let rI = 0; rI < rows; rI++) {
      for (let b = 0; b < k / 256; b++) {
        const gi = groupOfWeight(m, rI * k + b * 256, k);
        want.push(roundF("f16", m.scale[gi]!));
        skip.push(m.scaleSkip[gi]!);
      }
    }
  }
  if (got.length !== want.length) return fail(`scale has ${got.length} values, expected ${want.length}`);
  const rtol = m.format === "i2" ? 4e-6 : 1e-3;
  for (let i = 0; i < got.length; i++) {
    fz.s.elements++;
    const e = want[i]!;
    const g = got[i]!;
    if (Number.isNaN(e) && Number.isNaN(g)) continue;
    if (e === g) continue;
    if (skip[i]) continue; // a group too large to model
    if (!(Math.abs(g - e) <= rtol * Math.abs(e) + 1e-30)) return fail(`scale ${i}: got ${g}, expected ${e}`);
  }
  // dequantize() = t * scale
  const dq = w.dequantize();
  const dv = dq._toFloat64("fuzz");
  const dshape = dq.shape.join();
  dq.dispose();
  if (dshape !== m.shape.join()) return fail(`dequantize() shape [${dshape}]`);
  const per = ternaryScalePerWeight(w);
  for (let i = 0; i < dv.length; i++) {
    fz.s.elements++;
    const e = t[i]! * per[i]!;
    if (Object.is(dv[i], e) || dv[i] === e || (Number.isNaN(e) ? Number.isNaN(dv[i]!) : Math.abs(dv[i]! - e) <= 1e-6 * Math.abs(e))) continue;
    return fail(`dequantize() element ${i}: got ${dv[i]}, expected ${t[i]} * ${per[i]}`);
  }
}
/** The index of the scale (group) of weight i. */
function groupOfWeight(m: TernaryModel, i: number, k: number): number {
  if (m.scaleShape.length === 0) return 0;
  const row = Math.floor(i / k);
  if (m.scaleShape.length === m.shape.length - 1) return row; // channel
  const gpr = m.scaleShape[m.scaleShape.length - 1]!;
  return row * gpr + Math.floor((i % k) / (k / gpr));
}


/** Per-weight scale of a TernaryTensor (f32 values broadcast to its shape). */
export function ternaryScalePerWeight(w: TernaryTensor): Float64Array {
  const shape = w.shape;
  const k = shape[shape.length - 1]!;
  const n = prod(shape);
  const sc = w.scale._toFloat64("fuzz");
  const out = new Float64Array(n);
  const rows = k === 0 ? 0 : n / k;
  const per = w.granularity === "tensor" ? 0 : w.granularity === "channel" ? 1 : sc.length / Math.max(rows, 1);
  for (let i = 0; i < n; i++) {
    if (w.granularity === "tensor") out[i] = sc[0]!;
    else if (w.granularity === "channel") out[i] = sc[Math.floor(i / k)]!;
    else out[i] = sc[Math.floor(i / k) * per + Math.floor((i % k) / (k / per))]!;
  }
  return out;
}
