/**
 * Joining and splitting along an axis: concat, stack (copies, one native call per input) and
 * split (views, no copy).
 * @module
 */
import { type DTypeInfo, dtypeInfo, promoteTypes } from "../dtype.ts";
import { DeviceError, ShapeError, fmtShape } from "../errors.ts";
import { normAxis } from "../shape.ts";
import { Tensor, copyInto } from "../tensor.ts";
import { record } from "../autograd/graph.ts";

function checkList(ts: readonly Tensor[], op: string): void {
  if (!Array.isArray(ts) || ts.length === 0) throw new ShapeError(op, "needs a non-empty array of tensors");
  for (const t of ts) {
    if (!(t instanceof Tensor)) throw new ShapeError(op, `every element must be a Tensor, got ${typeof t}`);
    t._live(op);
  }
  const dev = ts[0]!._s!.device;
  for (const t of ts) if (t._s!.device !== dev) throw new DeviceError(op, `tensors are on different devices (${ts.map((x) => x.device).join(", ")})`);
}

/** Joins tensors along an existing axis; dtypes promote (NumPy rules); other dimensions must match. */
export function concat(ts: readonly Tensor[], axis = 0): Tensor {
  const op = "concat";
  checkList(ts, op);
  const first = ts[0]!;
  const nd = first._shape.length;
  if (nd === 0) throw new ShapeError(op, "zero-dimensional tensors cannot be concatenated (use stack)");
  const ax = normAxis(axis, nd, op);
  let dt: DTypeInfo = first._dt;
  let total = 0;
  for (const t of ts) {
    if (t._shape.length !== nd || t._shape.some((d, i) => i !== ax && d !== first._shape[i])) {
      throw new ShapeError(op, `shapes ${ts.map((x) => fmtShape(x._shape)).join(", ")} differ outside axis ${ax}`);
    }
    dt = dtypeInfo(promoteTypes(dt.name, t._dt.name), op);
    total += t._shape[ax]!;
  }
  const shape = first._shape.slice();
  shape[ax] = total;
  const out = Tensor._alloc(shape, dt, first._s!.device, op);
  let start = 0;
  try {
    for (const t of ts) {
      const len = t._shape[ax]!;
      if (len > 0) {
        const spec = shape.map((_, i) => (i === ax ? ([start, start + len] as const) : null));
        const part = out.slice(spec);
        try {
          copyInto(part, t, op);
        } finally {
          part.dispose();
        }
      }
      start += len;
    }
  } catch (e) {
    out.dispose();
    throw e;
  }
  return record(op, ts, out, ax);
}

/** Joins tensors of one shape along a new axis. */
export function stack(ts: readonly Tensor[], axis = 0): Tensor {
  const op = "stack";
  checkList(ts, op);
  const first = ts[0]!;
  for (const t of ts) {
    if (t._shape.length !== first._shape.length || t._shape.some((d, i) => d !== first._shape[i])) {
      throw new ShapeError(op, `all tensors must have one shape, got ${ts.map((x) => fmtShape(x._shape)).join(", ")}`);
    }
  }
  const ax = normAxis(axis, first._shape.length, op, 1);
  const parts = ts.map((t) => t.unsqueeze(ax));
  try {
    return concat(parts, ax);
  } finally {
    for (const p of parts) p.dispose();
  }
}

/**
 * Splits into views along `axis` (NumPy's split): a number gives that many equal sections (the
 * axis must divide evenly); an array gives the indices where each new section starts.
 */
export function split(t: Tensor, sections: number | readonly number[], axis = 0): Tensor[] {
  const op = "split";
  t._live(op);
  const nd = t._shape.length;
  if (nd === 0) throw new ShapeError(op, "cannot split a zero-dimensional tensor");
  const ax = normAxis(axis, nd, op);
  const dim = t._shape[ax]!;
  let bounds: number[];
  if (typeof sections === "number") {
    if (!Number.isInteger(sections) || sections <= 0) throw new ShapeError(op, `sections must be a positive integer, got ${sections}`);
    if (dim % sections !== 0) throw new ShapeError(op, `axis ${ax} of ${fmtShape(t._shape)} (size ${dim}) does not divide into ${sections} equal sections`);
    const step = dim / sections;
    bounds = Array.from({ length: sections - 1 }, (_, i) => (i + 1) * step);
  } else if (Array.isArray(sections)) {
    bounds = sections.map((v) => {
      if (!Number.isInteger(v)) throw new ShapeError(op, `split index ${String(v)} must be an integer`);
      return Math.min(Math.max(v < 0 ? v + dim : v, 0), dim);
    });
  } else {
    throw new ShapeError(op, `sections must be a number or an array of indices, got ${typeof sections}`);
  }
  const edges = [0, ...bounds, dim];
  const out: Tensor[] = [];
  for (let i = 0; i + 1 < edges.length; i++) {
    const a = edges[i]!;
    const b = Math.max(a, edges[i + 1]!);
    out.push(t.slice(t._shape.map((_, k) => (k === ax ? ([a, b] as const) : null))));
  }
  return out;
}
