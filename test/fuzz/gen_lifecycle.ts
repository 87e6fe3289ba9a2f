// The API fuzzer's lifecycle commands (see fuzzer.ts): reads (toArray, item, String), dispose
// (live, already disposed, TernaryTensor) and garbage collection.
import * as bn from "../../src/index.ts";
import type { Tensor } from "../../src/index.ts";
import { err, fmtVal, type Command } from "./common.ts";
import type { Fuzzer } from "./fuzzer.ts";

export function genRead(fz: Fuzzer): Command {
  const r = fz.r;
  const x = fz.dead.length > 0 && r.chance(0.08) ? r.pick(fz.dead) : fz.pick();
  const kind = r.pick(["toArray", "item", "String"]);
  const X = x as Tensor;
  return {
    op: kind,
    args: [x],
    delta: 0,
    run: kind === "toArray" ? () => X.toArray() : kind === "item" ? () => X.item() : () => String(X),
    desc: () => `(${fmtVal(x)}).${kind}`,
    model: (s) => {
      const sx = s[0]!;
      if (kind === "String") return { throws: false, read: (v) => (typeof v === "string" ? null : "String() did not give a string") };
      if (sx.kind !== "tensor") return { throws: "maybe" };
      if (sx.disposed) return err("DisposedTensorError");
      const bool = sx.dtype === "bool";
      const want = Array.from(sx.vals!, (v) => (bool ? v !== 0 : v));
      if (kind === "item") {
        if (want.length !== 1) return err("ShapeError");
        return { throws: false, read: (v) => (Object.is(v, want[0]) || (Number.isNaN(v) && Number.isNaN(want[0])) ? null : `item() gave ${String(v)}, expected ${String(want[0])}`) };
      }
      return {
        throws: false,
        read: (v) => {
          const flat = sx.shape.length === 0 ? [v] : (v as unknown[]).flat(8);
          if (flat.length !== want.length) return `toArray() has ${flat.length} elements, expected ${want.length}`;
          for (let i = 0; i < flat.length; i++) if (!Object.is(flat[i], want[i]) && !(Number.isNaN(flat[i]) && Number.isNaN(want[i]))) return `toArray()[${i}] = ${String(flat[i])}, expected ${String(want[i])}`;
          return null;
        },
      };
    },
  };
}

export function genDispose(fz: Fuzzer): Command {
  const r = fz.r;
  if (fz.tpool.length > 0 && r.chance(fz.tpool.length > 6 ? 0.5 : 0.1)) {
    const i = r.int(0, fz.tpool.length - 1);
    const w = fz.tpool[i]!;
    fz.tpool.splice(i, 1);
    fz.tdead.push(w);
    if (fz.tdead.length > 8) fz.tdead.shift();
    const sc = w.scale; // make the lazily built tq scale exist, so that dispose frees a known count
    void sc;
    return { op: "dispose", args: [w], delta: -2, run: () => w.dispose(), desc: () => `(${fmtVal(w)}).dispose()`, model: () => ({ throws: false }) };
  }
  if ((fz.pool.length === 0 || r.chance(0.05)) && fz.dead.length > 0) {
    const t = r.pick(fz.dead);
    return { op: "dispose", args: [t], delta: 0, run: () => t.dispose(), desc: () => `(${fmtVal(t)}).dispose() again`, model: () => ({ throws: false }) };
  }
  const t = fz.pick();
  fz.pool.splice(fz.pool.indexOf(t), 1);
  fz.dead.push(t);
  if (fz.dead.length > 16) fz.dead.shift();
  const s = t._s!;
  const last = s.refs === 1 && !s.exported;
  return {
    op: "dispose",
    args: [t],
    delta: last ? -1 : 0,
    run: () => (r.chance(0.5) ? t.dispose() : t[Symbol.dispose]()),
    desc: () => `(${fmtVal(t)}).dispose()`,
    model: () => ({ throws: false }),
  };
}

export function genGc(fz: Fuzzer): Command {
  if (fz.r.chance(0.5)) return { op: "gc", args: [], delta: 0, run: () => Bun.gc(true), desc: () => "Bun.gc(true)", model: () => ({ throws: false }) };
  return { op: "gc", args: [], delta: 0, collect: true, run: () => bn.memory.collect(), desc: () => "bn.memory.collect()", model: () => ({ throws: false }) };
}
