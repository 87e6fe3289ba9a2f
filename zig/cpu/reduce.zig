//! Reductions (sum, mean, prod, min, max, argmin, argmax, variance, std, logsumexp): the entry
//! point, the plans and the driver (paths, geometry, thread jobs). The accumulator states live in
//! reduce_acc.zig, cumsum in scan.zig (re-exported here), the tests in reduce_test.zig.
//!
//! Contract: args.ReduceArgs / args.ScanArgs; output dtypes are chosen by src/ops/reduce.ts (this
//! file converts each result to whatever `out_dtype` says, with dtype.zig's rules).
//!
//! Accuracy. Float sums widen every element to f64 and add it into one of 32 fixed "virtual
//! lanes" (element i of a run goes to lane i mod 32); the lanes are combined at the end by a fixed
//! halving tree. The error is about (n / 32) f64 roundings, far below one f32 (or f16, bf16)
//! rounding of the result for any practical n (NumPy's f32 pairwise sum: log2(n) f32 roundings).
//! Integer sums are exact in 64 bits (sum wraps to 32 bits on store, mean divides the exact sum);
//! integer products wrap in 32 bits (an associative operation, so any order gives the same
//! bits). prod of floats multiplies in f64 with the binary exponent kept apart (no partial
//! product overflows or underflows on the way). variance and std are two-pass in f64: the mean,
//! then Σd² − (Σd)²/n with d = x − mean (the correction term removes the rounding of the mean).
//! logsumexp is max-shifted, Σexp(x − max) in f64. Each result is rounded once to its dtype.
//!
//! Determinism. The order of every operation is fixed by the layout alone: never by the thread
//! count, and never by the SIMD level (the virtual lane counts are constants, which LLVM maps onto
//! whatever registers the level has). Work is split over
//! threads by output elements; when there are few outputs and many inputs, the reduced range is
//! cut into fixed chunks whose partial states are merged in chunk order afterwards.
//!
//! Paths (chosen from the coalesced layout, never from the thread count):
//! - rows: each output reduces its own sub-box, innermost reduced axis contiguous (vector loads)
//!   or strided (gathers);
//! - columns: the innermost KEPT axis is contiguous in the input (e.g. sum over axis 0 of a
//!   row-major matrix): a tile of up to 1024 neighbouring outputs is accumulated with vectors while the
//!   reduced positions are walked in the outer loop;
//! - chunks: fewer than 64 outputs and at least 2 × 32768 inputs each: (output, chunk) work items.
//! For order-free ops (all but argmin/argmax) the reduced axes are first reordered by stride and
//! reversed axes flipped, so a transposed or reversed view is still read as contiguous rows.
//! argmin/argmax walk the reduced elements in logical (row-major) order and keep the first
//! occurrence; a NaN counts as the extreme and the first NaN wins (NumPy).
const std = @import("std");
const dt = @import("dtype.zig");
const args = @import("args.zig");
const strided = @import("strided.zig");
const Parallel = @import("parallel.zig").Parallel;
const ptrAt = @import("copy.zig").ptrAt;
const elementwise = @import("elementwise.zig");
const DType = dt.DType;
const ReduceOp = args.ReduceOp;
const acc_mod = @import("reduce_acc.zig");

/// cumsum lives in scan.zig; kernels.zig reaches it through this module.
pub const cumsum = @import("scan.zig").cumsum;

/// Reduced elements per work item of the chunked path.
const chunk_elems = 32 * 1024;
/// Partial states the chunked path may hold (outputs × chunks).
const max_partials = 1024;
/// Below this many outputs, a large reduction is chunked.
const few_outputs = 64;
/// Input elements a thread task should at least cover.
pub const task_elems = 32 * 1024;
/// Outputs per tile of the columns path (a multiple of every Acc's lane count): up to 4 KiB of
/// f32 input per reduced position, accumulators in L1.
pub const tile = 1024;
/// The columns path needs at least this many contiguous outputs.
pub const min_cols = 8;

// The loads and accumulators of reduce_acc.zig used by the plans and the driver.
const Val = acc_mod.Val;
const isFloatT = acc_mod.isFloatT;
const loadV = acc_mod.loadV;
const load1 = acc_mod.load1;
const gatherV = acc_mod.gatherV;
const loadPartial = acc_mod.loadPartial;
const toF64 = acc_mod.toF64;
const Kind = acc_mod.Kind;
const flip1 = acc_mod.flip1;
const Acc = acc_mod.Acc;
const no_index = acc_mod.no_index;
const idx32 = acc_mod.idx32;
const tree = acc_mod.tree;

// ---- plans: which accumulators an op uses ------------------------------------------------------

/// Ops that share a kernel (they differ only in how the result is finished, or in `flip`).
const PlanKind = enum { sum, prod, minmax, arg, variance, lse };

fn planOf(op: ReduceOp) PlanKind {
    return switch (op) {
        .sum, .mean => .sum,
        .prod => .prod,
        .min, .max => .minmax,
        .argmin, .argmax => .arg,
        .variance, .std => .variance,
        .logsumexp => .lse,
    };
}

/// The second-pass state of one-pass plans.
const NoState = struct {
    pub fn init(_: f64, _: bool) NoState {
        return .{};
    }
    pub fn merge(_: *NoState, _: NoState) void {}
};

fn Plan(comptime plan: PlanKind, comptime X: type) type {
    const float = comptime isFloatT(X);
    const sum_kind: Kind = if (float) .sum_f64 else .sum_i64;
    return struct {
        /// First (or only) pass.
        pub const A = Acc(X, switch (plan) {
            .sum, .variance => sum_kind,
            .prod => if (float) .prod_f64 else .prod_wrap,
            .minmax, .lse => .min,
            .arg => .argmin,
        });
        /// Second pass (its `shift` comes from the first), or NoState.
        pub const two_pass = plan == .variance or plan == .lse;
        pub const B = switch (plan) {
            .variance => Acc(X, .sqdev),
            .lse => Acc(X, .expshift),
            else => void,
        };
        pub const BState = if (two_pass) B.State else NoState;

        /// The max of logsumexp's first pass (min of flipped values, flipped back), as f64.
        fn lseMax(a: A.State) f64 {
            return toF64(flip1(X, a.m, a.mask));
        }

        /// The constant of the second pass: the mean, or a finite max.
        pub fn shift(a: A.State, n: usize) f64 {
            return switch (plan) {
                .variance => toF64(a.s) / @as(f64, @floatFromInt(n)),
                .lse => blk: {
                    const m = lseMax(a);
                    break :blk if (std.math.isFinite(m)) m else 0;
                },
                else => 0,
            };
        }

        /// Finishes one output and stores it.
        pub fn emit(op: ReduceOp, od: DType, out: [*]u8, off: isize, a: A.State, b: BState, n: usize, ddof: f64) void {
            const nf: f64 = @floatFromInt(n);
            switch (plan) {
                .sum => {
                    if (op == .mean) return storeF(od, out, off, toF64(a.s) / nf);
                    if (float) storeF(od, out, off, a.s) else storeI(od, out, off, a.s);
                },
                .prod => if (float) storeF(od, out, off, a.value()) else storeI(od, out, off, a.s),
                .minmax => {
                    const v = flip1(X, a.m, a.mask);
                    if (float) storeF(od, out, off, v) else storeI(od, out, off, v);
                },
                .arg => storeI(od, out, off, if (a.i == no_index) 0 else a.i),
                .variance => {
                    const dof = nf - ddof;
                    var v: f64 = std.math.nan(f64);
                    if (n > 0 and dof > 0 and !std.math.isNan(b.s1) and !std.math.isNan(b.s2)) {
                        v = @max(0, b.s2 - b.s1 * b.s1 / nf) / dof;
                    }
                    storeF(od, out, off, if (op == .std) @sqrt(v) else v);
                },
                .lse => {
                    const m = lseMax(a);
                    // NaN, +inf, or -inf (nothing, or all -inf) decide alone.
                    storeF(od, out, off, if (std.math.isFinite(m)) m + @log(b.s) else m);
                },
            }
        }
    };
}

fn storeF(od: DType, out: [*]u8, off: isize, v: f64) void {
    switch (od) {
        inline else => |o| {
            const T = dt.Storage(o);
            ptrAt(T, @ptrCast(@alignCast(out)), off).* = dt.fromFloat(o, v);
        },
    }
}

fn storeI(od: DType, out: [*]u8, off: isize, v: i64) void {
    switch (od) {
        inline else => |o| {
            const T = dt.Storage(o);
            ptrAt(T, @ptrCast(@alignCast(out)), off).* = dt.fromInt(o, v);
        },
    }
}

// ---- walkers -------------------------------------------------------------------------------------

/// Units of forRows: rows for ndim >= 2, elements otherwise.
pub fn units(comptime k: usize, l: *const strided.Layout(k)) usize {
    return if (l.ndim <= 1) l.size() else l.rows();
}

/// Reduces units [ub, ue) of R (element offsets relative to `base`) with accumulator K: the rows
/// path of one output, or one chunk of it.
fn runR(comptime d: DType, comptime K: type, base: [*]const dt.Storage(d), R: *const strided.Layout(1), ub: usize, ue: usize, shift: f64, flip: bool) K.State {
    const S = dt.Storage(d);
    const n = K.n;
    const Walk = struct {
        lanes: K.Lanes,
        tail: K.State,
        fed: bool = false,
        idx: i64,
        base: [*]const S,

        pub fn row(self: *@This(), offs: [1]isize, len: usize, st: [1]isize) void {
            const p: [*]const S = @ptrCast(ptrAt(S, self.base, offs[0]));
            const s = st[0];
            var i: usize = 0;
            if (len >= n) {
                // Locals, so the accumulators live in registers.
                var lanes = self.lanes;
                const iota = std.simd.iota(u32, n);
                if (!self.fed) lanes.start(@as(@Vector(n, u32), @splat(idx32(self.idx))) +% iota);
                self.fed = true;
                while (i + n <= len) : (i += n) {
                    const x = if (s == 1) loadV(d, n, p + i) else gatherV(d, n, @ptrCast(ptrAt(S, p, @as(isize, @intCast(i)) * s)), s);
                    lanes.feed(x, @as(@Vector(n, u32), @splat(idx32(self.idx + @as(i64, @intCast(i))))) +% iota);
                }
                self.lanes = lanes;
            }
            var tail = self.tail;
            while (i < len) : (i += 1) tail.feed1(load1(d, p, @as(isize, @intCast(i)) * s), self.idx + @as(i64, @intCast(i)));
            self.tail = tail;
            self.idx += @intCast(len);
        }
    };
    const first: usize = if (R.ndim <= 1) ub else ub * R.rowLen();
    var w: Walk = .{ .lanes = K.Lanes.init(@splat(shift), flip), .tail = K.State.init(shift, flip), .idx = @intCast(first), .base = base };
    R.forRows(ub, ue, &w);
    var st = if (w.fed) tree(K, &w.lanes) else K.State.init(shift, flip);
    st.merge(w.tail);
    return st;
}

/// The columns path: accumulates `cnt` (<= tile) neighbouring outputs whose inputs are contiguous
/// from `base`, walking every reduced position (R) in the outer loop. Each position reads one
/// contiguous run of up to `tile` elements, so memory is streamed, not strided.
fn columnPass(comptime d: DType, comptime K: type, R: *const strided.Layout(1), base: [*]const dt.Storage(d), cnt: usize, shifts: *const [tile]f64, flip: bool, states: *[tile]K.State) void {
    const S = dt.Storage(d);
    const n = K.n;
    const nv = tile / n;
    const full = cnt / n;
    const rem = cnt % n;
    var lanes: [nv]K.Lanes = undefined;
    for (0..(cnt + n - 1) / n) |v| lanes[v] = K.Lanes.init(shifts[v * n ..][0..n].*, flip);
    const Walk = struct {
        lanes: *[nv]K.Lanes,
        base: [*]const S,
        full: usize,
        rem: usize,
        pos: i64 = 0,
        pub fn row(w: *@This(), offs: [1]isize, len: usize, st: [1]isize) void {
            var off = offs[0];
            for (0..len) |_| {
                const p: [*]const S = @ptrCast(ptrAt(S, w.base, off));
                const idx: @Vector(n, u32) = @splat(idx32(w.pos));
                for (w.lanes[0..w.full], 0..) |*l, v| l.feed(loadV(d, n, p + v * n), idx);
                if (w.rem != 0) w.lanes[w.full].feed(@call(.never_inline, loadPartial, .{ d, n, p + w.full * n, w.rem }), idx);
                w.pos += 1;
                off += st[0];
            }
        }
    };
    var w: Walk = .{ .lanes = &lanes, .base = base, .full = full, .rem = rem };
    R.forEachRow(&w);
    for (0..(cnt + n - 1) / n) |v| {
        const st = lanes[v].states();
        for (0..@min(n, cnt - v * n)) |i| states[v * n + i] = st[i];
    }
}

// ---- reduce -----------------------------------------------------------------------------------

pub fn reduce(comptime vbits: u32, par: *const Parallel, a: *const args.ReduceArgs) void {
    _ = vbits; // lane counts are fixed so every level gives the same bits (see the top)
    var g: Geometry = undefined;
    if (!g.init(a)) return;
    switch (a.in_dtype) {
        inline .f32, .f16, .bf16, .i8, .i16, .i32, .u8, .u16, .u32, .bool => |d| switch (planOf(a.op)) {
            inline else => |plan| reduceTyped(plan, d, par, a, &g),
        },
        .f64 => unreachable, // not a tensor dtype
    }
}

const Path = enum { empty, columns, chunks, rows };

/// The normalised layout and the path (dtype-independent, so not instantiated per kernel).
const Geometry = struct {
    /// Kept axes: strides[0] = out, strides[1] = in.
    K: strided.Layout(2),
    /// Reduced axes: strides[0] = in.
    R: strided.Layout(1),
    /// Offsets (elements) of the first output / input element after flipping reversed axes.
    out_off: isize,
    in_off: isize,
    /// Elements reduced per output, and the number of outputs.
    n: usize,
    n_out: usize,
    path: Path,
    /// chunks path: units of R per chunk, and chunks per output.
    per: usize,
    nc: usize,

    fn init(g: *Geometry, a: *const args.ReduceArgs) bool {
        const kept = a.kept;
        const nd = a.layout.ndim;
        g.out_off = 0;
        g.in_off = 0;
        g.n = 1;
        g.per = 0;
        g.nc = 0;
        // Kept axes: any order, reversed axes flipped (outputs keep their elements).
        g.K.ndim = kept;
        for (0..kept) |i| {
            const sz = a.layout.shape[i];
            var so = a.layout.strides[0][i];
            var si = a.layout.strides[1][i];
            if (sz == 0) return false;
            if (si < 0) {
                const last: isize = @intCast(sz - 1);
                g.in_off += si * last;
                g.out_off += so * last;
                si = -si;
                so = -so;
            }
            g.K.shape[i] = sz;
            g.K.strides[0][i] = so;
            g.K.strides[1][i] = si;
        }
        sortAxes(2, &g.K, 1);
        g.K.coalesce();
        // Reduced axes: reordered and flipped only where the order cannot show.
        const order_free = a.op != .argmin and a.op != .argmax;
        g.R.ndim = nd - kept;
        for (kept..nd) |i| {
            const sz = a.layout.shape[i];
            var si = a.layout.strides[1][i];
            g.n *= sz;
            if (order_free and si < 0 and sz > 0) {
                g.in_off += si * @as(isize, @intCast(sz - 1));
                si = -si;
            }
            g.R.shape[i - kept] = sz;
            g.R.strides[0][i - kept] = si;
        }
        if (order_free) sortAxes(1, &g.R, 0);
        g.R.coalesce();
        g.n_out = g.K.size();
        g.path = g.choose();
        return true;
    }

    fn choose(g: *Geometry) Path {
        if (g.n == 0) return .empty;
        const kn = g.K.ndim;
        // Innermost kept axis contiguous in the input, reduced axes not.
        if (kn >= 1 and g.K.strides[1][kn - 1] == 1 and g.K.shape[kn - 1] >= min_cols and (g.R.ndim == 0 or g.R.strides[0][g.R.ndim - 1] != 1)) return .columns;
        const ru = units(1, &g.R);
        if (g.n_out < few_outputs and g.n >= 2 * chunk_elems and ru >= 2) {
            var per: usize = if (g.R.ndim <= 1) chunk_elems else @max(1, chunk_elems / g.R.rowLen());
            var nc = (ru + per - 1) / per;
            const max_nc = max_partials / g.n_out;
            if (nc > max_nc) {
                per = (ru + max_nc - 1) / max_nc;
                nc = (ru + per - 1) / per;
            }
            if (nc >= 2) {
                g.per = per;
                g.nc = nc;
                return .chunks;
            }
        }
        return .rows;
    }

    /// Offsets (out, in) of output number o (row-major over K).
    fn keptOffsets(g: *const Geometry, o: usize) [2]isize {
        var offs: [2]isize = .{ 0, 0 };
        var rem = o;
        var ax = g.K.ndim;
        while (ax > 0) {
            ax -= 1;
            const i: isize = @intCast(rem % g.K.shape[ax]);
            rem /= g.K.shape[ax];
            offs[0] += i * g.K.strides[0][ax];
            offs[1] += i * g.K.strides[1][ax];
        }
        return offs;
    }
};

/// Sorts the axes of a layout by |strides[sel]|, largest first (insertion sort: stable).
fn sortAxes(comptime m: usize, l: *strided.Layout(m), sel: usize) void {
    var i: usize = 1;
    while (i < l.ndim) : (i += 1) {
        var j = i;
        while (j > 0 and @abs(l.strides[sel][j - 1]) < @abs(l.strides[sel][j])) : (j -= 1) {
            std.mem.swap(usize, &l.shape[j - 1], &l.shape[j]);
            inline for (0..m) |k| std.mem.swap(isize, &l.strides[k][j - 1], &l.strides[k][j]);
        }
    }
}

fn Job(comptime plan: PlanKind, comptime d: DType) type {
    return struct {
        const P = Plan(plan, Val(d));
        const S = dt.Storage(d);
        const Self = @This();

        g: *const Geometry,
        op: ReduceOp,
        flip: bool,
        ddof: f64,
        od: DType,
        out: [*]u8,
        in: [*]const S,
        /// columns path: outputs per work item (each output's result does not depend on it).
        tile_w: usize = tile,
        partA: [*]P.A.State = undefined,
        partB: [*]P.BState = undefined,
        shifts: [*]const f64 = undefined,

        fn emit(self: *const Self, off: isize, a: P.A.State, b: P.BState) void {
            P.emit(self.op, self.od, self.out, off, a, b, self.g.n, self.ddof);
        }

        // rows path: each output on its own; work items are units of K.
        pub fn row(self: *const Self, offs: [2]isize, len: usize, st: [2]isize) void {
            var oo = offs[0];
            var io = offs[1];
            const ru = units(1, &self.g.R);
            for (0..len) |_| {
                const base: [*]const S = @ptrCast(ptrAt(S, self.in, io));
                const sa = runR(d, P.A, base, &self.g.R, 0, ru, 0, self.flip);
                var sb: P.BState = .init(0, false);
                if (P.two_pass) sb = runR(d, P.B, base, &self.g.R, 0, ru, P.shift(sa, self.g.n), false);
                self.emit(oo, sa, sb);
                oo += st[0];
                io += st[1];
            }
        }

        fn rowsTask(self: *const Self, b: usize, e: usize) void {
            self.g.K.forRows(b, e, self);
        }

        fn columnsTask(self: *const Self, b: usize, e: usize) void {
            const K = &self.g.K;
            const kin = K.shape[K.ndim - 1];
            const tw = self.tile_w;
            const ntiles = (kin + tw - 1) / tw;
            const os_in = K.strides[0][K.ndim - 1];
            for (b..e) |item| {
                // The outer kept index is output number (item / ntiles) * kin.
                const offs = self.g.keptOffsets((item / ntiles) * kin);
                const j0 = (item % ntiles) * tw;
                const cnt = @min(tw, kin - j0);
                const base: [*]const S = @ptrCast(ptrAt(S, self.in, offs[1] + @as(isize, @intCast(j0))));
                var sa: [tile]P.A.State = undefined;
                var sh: [tile]f64 = @splat(0);
                columnPass(d, P.A, &self.g.R, base, cnt, &sh, self.flip, &sa);
                var sb: [tile]P.BState = undefined;
                if (P.two_pass) {
                    for (0..cnt) |c| sh[c] = P.shift(sa[c], self.g.n);
                    columnPass(d, P.B, &self.g.R, base, cnt, &sh, false, &sb);
                }
                for (0..cnt) |c| self.emit(offs[0] + @as(isize, @intCast(j0 + c)) * os_in, sa[c], sb[c]);
            }
        }

        fn chunkRange(self: *const Self, c: usize) [2]usize {
            return .{ c * self.g.per, @min(units(1, &self.g.R), (c + 1) * self.g.per) };
        }

        fn chunkTaskA(self: *const Self, b: usize, e: usize) void {
            for (b..e) |item| {
                const o = item / self.g.nc;
                const r = self.chunkRange(item % self.g.nc);
                const base: [*]const S = @ptrCast(ptrAt(S, self.in, self.g.keptOffsets(o)[1]));
                self.partA[item] = runR(d, P.A, base, &self.g.R, r[0], r[1], 0, self.flip);
            }
        }

        fn chunkTaskB(self: *const Self, b: usize, e: usize) void {
            if (P.two_pass) {
                for (b..e) |item| {
                    const o = item / self.g.nc;
                    const r = self.chunkRange(item % self.g.nc);
                    const base: [*]const S = @ptrCast(ptrAt(S, self.in, self.g.keptOffsets(o)[1]));
                    self.partB[item] = runR(d, P.B, base, &self.g.R, r[0], r[1], self.shifts[o], false);
                }
            }
        }

        // empty reductions: the identity (0, 1, NaN, -inf) for every output.
        pub const Empty = struct {
            job: *const Self,
            pub fn row(e: *const @This(), offs: [2]isize, len: usize, st: [2]isize) void {
                var oo = offs[0];
                for (0..len) |_| {
                    e.job.emit(oo, P.A.State.init(0, e.job.flip), P.BState.init(0, false));
                    oo += st[0];
                }
            }
        };
    };
}

fn reduceTyped(comptime plan: PlanKind, comptime d: DType, par: *const Parallel, a: *const args.ReduceArgs, g: *const Geometry) void {
    const J = Job(plan, d);
    const P = J.P;
    const S = dt.Storage(d);
    var j: J = .{
        .g = g,
        .op = a.op,
        .flip = a.op == .max or a.op == .argmax or a.op == .logsumexp,
        .ddof = a.ddof,
        .od = a.out_dtype,
        .out = @ptrCast(ptrAt(u8, a.out, g.out_off * @as(isize, @intCast(a.out_dtype.size())))),
        .in = @ptrCast(ptrAt(S, @ptrCast(@alignCast(a.in)), g.in_off)),
    };
    const jc: *const J = &j;
    const K = &g.K;
    switch (g.path) {
        .empty => {
            const e: J.Empty = .{ .job = jc };
            K.forEachRow(&e);
        },
        .columns => {
            const kin = K.shape[K.ndim - 1];
            // Full-width tiles even when that leaves threads idle: splitting one stream of
            // rows into interleaved part-rows measured slower (sum over axis 0 of [1024, 1024]
            // on the 2-core machine: 150 us as one tile, 230 us as two half tiles on two
            // threads). tile_w only groups outputs: every output is one lane fed in the same
            // order, so the bits never depend on it.
            const outer = g.n_out / kin;
            const tw: usize = tile;
            j.tile_w = tw;
            const items = outer * ((kin + tw - 1) / tw);
            par.run(items, @max(1, task_elems / (@min(kin, tw) * g.n)), jc, J.columnsTask);
        },
        .chunks => {
            const nc = g.nc;
            var pa: [max_partials]P.A.State = undefined;
            var pb: [max_partials]P.BState = undefined;
            var shifts: [few_outputs]f64 = undefined;
            var sa: [few_outputs]P.A.State = undefined;
            j.partA = &pa;
            j.partB = &pb;
            j.shifts = &shifts;
            par.run(g.n_out * nc, 1, jc, J.chunkTaskA);
            for (0..g.n_out) |o| {
                sa[o] = pa[o * nc];
                for (1..nc) |c| sa[o].merge(pa[o * nc + c]);
                shifts[o] = P.shift(sa[o], g.n);
            }
            if (P.two_pass) par.run(g.n_out * nc, 1, jc, J.chunkTaskB);
            for (0..g.n_out) |o| {
                var sb: P.BState = .init(0, false);
                if (P.two_pass) {
                    sb = pb[o * nc];
                    for (1..nc) |c| sb.merge(pb[o * nc + c]);
                }
                j.emit(g.keptOffsets(o)[0], sa[o], sb);
            }
        },
        .rows => {
            const per_unit = @max(1, (if (K.ndim <= 1) 1 else K.rowLen()) * g.n);
            par.run(units(2, K), @max(1, task_elems / per_unit), jc, J.rowsTask);
        },
    }
}

// ---- cumsum -----------------------------------------------------------------------------------

test {
    _ = acc_mod;
    _ = @import("scan.zig");
    _ = @import("reduce_test.zig");
}
