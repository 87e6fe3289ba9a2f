//! cuBLAS, found at run time like the driver: `libcublas.so` (.13, .12, .11, or `BITNET_CUBLAS`,
//! a path) is opened with dlopen on the first GPU matmul and never linked. One handle per device,
//! made with that device's primary context current (cuBLAS's runtime shares the driver's
//! primary context), working on the default stream like every other kernel of the engine.
//!
//! Products are row-major `C[M, N] = A[M, K] · B[K, N]` over the engine's matmul descriptor; cuBLAS
//! is column-major, so each call computes `Cᵀ = Bᵀ · Aᵀ`, choosing for each operand the
//! transpose flag that lets it be read in place (`operandView`). f32 runs in full f32 (no TF32,
//! as PyTorch's default) through cublasGemm(StridedBatched)Ex; f16 and bf16 operands run on the
//! tensor cores with f32 accumulation (large products through cublasLt, whose heuristic picks
//! faster Hopper kernels there; the others, or without cublasLt, through cublasGemmEx) and are
//! written in their own dtype.
const std = @import("std");
const os = @import("../os.zig");
const cuda = @import("cuda.zig");

const Status = c_int;
const Handle = ?*anyopaque;

/// The entry points used, resolved by name (cublasSetWorkspace_v2: CUDA 11.0 and later).
const Api = struct {
    cublasCreate_v2: *const fn (*Handle) callconv(.c) Status,
    cublasSetWorkspace_v2: *const fn (Handle, ?*anyopaque, usize) callconv(.c) Status,
    cublasGetStatusName: *const fn (Status) callconv(.c) ?[*:0]const u8,
    cublasGemmEx: *const fn (Handle, c_int, c_int, c_int, c_int, c_int, *const anyopaque, ?*const anyopaque, c_int, c_int, ?*const anyopaque, c_int, c_int, *const anyopaque, ?*anyopaque, c_int, c_int, c_int, c_int) callconv(.c) Status,
    cublasGemmStridedBatchedEx: *const fn (Handle, c_int, c_int, c_int, c_int, c_int, *const anyopaque, ?*const anyopaque, c_int, c_int, i64, ?*const anyopaque, c_int, c_int, i64, *const anyopaque, ?*anyopaque, c_int, c_int, i64, c_int, c_int, c_int) callconv(.c) Status,
};

/// cublasLt's entry points (opened beside cuBLAS; optional).
const LtApi = struct {
    cublasLtCreate: *const fn (*Handle) callconv(.c) Status,
    cublasLtMatmulDescCreate: *const fn (*?*anyopaque, c_int, c_int) callconv(.c) Status,
    cublasLtMatmulDescDestroy: *const fn (?*anyopaque) callconv(.c) Status,
    cublasLtMatmulDescSetAttribute: *const fn (?*anyopaque, c_int, *const anyopaque, usize) callconv(.c) Status,
    cublasLtMatrixLayoutCreate: *const fn (*?*anyopaque, c_int, u64, u64, i64) callconv(.c) Status,
    cublasLtMatrixLayoutDestroy: *const fn (?*anyopaque) callconv(.c) Status,
    cublasLtMatrixLayoutSetAttribute: *const fn (?*anyopaque, c_int, *const anyopaque, usize) callconv(.c) Status,
    cublasLtMatmulPreferenceCreate: *const fn (*?*anyopaque) callconv(.c) Status,
    cublasLtMatmulPreferenceDestroy: *const fn (?*anyopaque) callconv(.c) Status,
    cublasLtMatmulPreferenceSetAttribute: *const fn (?*anyopaque, c_int, *const anyopaque, usize) callconv(.c) Status,
    cublasLtMatmulAlgoGetHeuristic: *const fn (Handle, ?*anyopaque, ?*anyopaque, ?*anyopaque, ?*anyopaque, ?*anyopaque, ?*anyopaque, c_int, *HeuristicResult, *c_int) callconv(.c) Status,
    cublasLtMatmul: *const fn (Handle, ?*anyopaque, *const anyopaque, ?*const anyopaque, ?*anyopaque, ?*const anyopaque, ?*anyopaque, *const anyopaque, ?*const anyopaque, ?*anyopaque, ?*anyopaque, ?*anyopaque, *const [8]u64, ?*anyopaque, usize, ?*anyopaque) callconv(.c) Status,
};

/// cublasLtMatmulHeuristicResult_t.
const HeuristicResult = extern struct { algo: [8]u64, workspace_size: usize, state: Status, waves: f32, reserved: [4]c_int };

// cublasLt attribute codes (cublasLt.h).
const lt_desc_transa: c_int = 3;
const lt_desc_transb: c_int = 4;
const lt_layout_batch_count: c_int = 5;
const lt_layout_batch_offset: c_int = 6;
const lt_pref_max_workspace: c_int = 1;

// cublas_api.h / library_types.h values.
pub const op_n: c_int = 0;
pub const op_t: c_int = 1;
const compute_32f: c_int = 68; // CUBLAS_COMPUTE_32F
const gemm_default: c_int = -1; // CUBLAS_GEMM_DEFAULT

/// cudaDataType of an engine dtype code (zig/cpu/dtype.zig: f32 = 0, f16 = 1, bf16 = 2), or null.
pub fn dataType(code: u32) ?c_int {
    return switch (code) {
        0 => 0, // CUDA_R_32F
        1 => 2, // CUDA_R_16F
        2 => 14, // CUDA_R_16BF
        else => null,
    };
}

var api: Api = undefined;
var state: enum { unknown, ready, absent } = .unknown;
var lock: os.Lock = .{};
var handles: [cuda.max_devices]Handle = @splat(null);
var lt_api: LtApi = undefined;
var lt_ready = false;
var lt_handles: [cuda.max_devices]Handle = @splat(null);
var workspaces: [cuda.max_devices]u64 = @splat(0);
const workspace_bytes: usize = 32 * 1024 * 1024;
var why_buf: [256]u8 = undefined;
var why_len: usize = 0;

const candidates = [_][*:0]const u8{ "libcublas.so", "libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "/usr/local/cuda/lib64/libcublas.so" };
const lt_candidates = [_][*:0]const u8{ "libcublasLt.so", "libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so.11", "/usr/local/cuda/lib64/libcublasLt.so" };

fn setWhy(comptime fmt: []const u8, args: anytype) void {
    const s = std.fmt.bufPrint(&why_buf, fmt, args) catch why_buf[0..0];
    why_len = s.len;
}

/// Why cuBLAS cannot be used (after `handle` returned null).
pub fn why() []const u8 {
    return why_buf[0..why_len];
}

fn load() void {
    var h: ?*anyopaque = null;
    if (os.getenv("BITNET_CUBLAS")) |p| {
        var buf: [512]u8 = undefined;
        if (p.len < buf.len) {
            @memcpy(buf[0..p.len], p);
            buf[p.len] = 0;
            h = os.dlopen(@ptrCast(&buf));
        }
    }
    if (h == null) for (candidates) |name| {
        h = os.dlopen(name);
        if (h != null) break;
    };
    const lib = h orelse return setWhy("cuBLAS (libcublas.so) was not found: install the CUDA toolkit's cuBLAS or set BITNET_CUBLAS to its path", .{});
    inline for (@typeInfo(Api).@"struct".field_names) |name| {
        const p = os.dlsym(lib, name) orelse return setWhy("the cuBLAS library lacks {s} (older than CUDA 11.4?)", .{name});
        @field(api, name) = @ptrCast(@alignCast(p));
    }
    state = .ready;
    // cublasLt (cuBLAS itself depends on it, so it is normally there).
    for (lt_candidates) |name| if (os.dlopen(name)) |lh| {
        lt_ready = true;
        inline for (@typeInfo(LtApi).@"struct".field_names) |f| {
            if (os.dlsym(lh, f)) |p| @field(lt_api, f) = @ptrCast(@alignCast(p)) else lt_ready = false;
        }
        break;
    };
}

/// The cuBLAS handle of device i, made on first use; null when cuBLAS is missing or the handle
/// could not be made (`why` says which).
pub fn handle(i: usize) Handle {
    lock.lock();
    defer lock.unlock();
    if (state == .unknown) {
        state = .absent;
        load();
    }
    if (state != .ready) return null;
    if (handles[i] == null) {
        if (cuda.makeCurrent(i)) |f| {
            setWhy("cuCtxSetCurrent(cuda:{d}) failed: {s}", .{ i, cuda.errorName(f.code) });
            return null;
        }
        var hd: Handle = null;
        const r = api.cublasCreate_v2(&hd);
        if (r != 0) {
            setWhy("cublasCreate failed: {s}", .{statusName(r)});
            return null;
        }
        // A workspace of its own (outside the pool: it lives as long as the handle) lets cuBLAS
        // pick its faster Hopper kernels; without one it still works.
        if (cuda.rawAlloc(i, workspace_bytes)) |ws| {
            _ = api.cublasSetWorkspace_v2(hd, @ptrFromInt(ws), workspace_bytes);
            workspaces[i] = ws;
        }
        var lh: Handle = null;
        if (lt_ready and lt_api.cublasLtCreate(&lh) == 0) lt_handles[i] = lh;
        handles[i] = hd;
    }
    return handles[i];
}

pub fn statusName(r: Status) []const u8 {
    const s = api.cublasGetStatusName(r) orelse return "CUBLAS_STATUS_UNKNOWN";
    return std.mem.span(s);
}

/// How cuBLAS reads one operand in place: as op(X) with X column-major, leading dimension `ld`.
pub const View = struct { op: c_int, ld: i64 };

/// The in-place view of a logical `r × c` matrix whose element (i, j) is at `i·sr + j·sc`
/// (elements), or null when neither flag fits (the caller copies it contiguous first).
pub fn operandView(r: usize, c: usize, sr: i64, sc: i64) ?View {
    const ri: i64 = @intCast(r);
    const ci: i64 = @intCast(c);
    // op N: X is r × c column-major, element (i, j) at i + j·ld.
    if ((sr == 1 or r == 1) and (c == 1 or sc >= @max(1, ri))) return .{ .op = op_n, .ld = if (c == 1) @max(1, ri) else sc };
    // op T: X is c × r column-major and op(X) = Xᵀ, element (i, j) at j + i·ld.
    if ((sc == 1 or c == 1) and (r == 1 or sr >= @max(1, ci))) return .{ .op = op_t, .ld = if (r == 1) @max(1, ci) else sr };
    return null;
}

pub const Gemm = struct {
    /// Column-major problem (Cᵀ = op(Bᵀ)·op(Aᵀ)): m = N, n = M, k = K of the row-major product.
    m: c_int,
    n: c_int,
    k: c_int,
    a: View,
    b: View,
    ldc: i64,
    /// Elements between consecutive matrices of the batch (0 = broadcast).
    stride_a: i64,
    stride_b: i64,
    stride_c: i64,
    batch: c_int,
    in_type: c_int,
    out_type: c_int,
};

/// One strided-batched product on device i (f32 alpha = 1, beta = 0). Pointers are device
/// addresses of element 0 of the first matrix of each operand. f16/bf16 go through cublasLt when
/// it is there.
pub fn gemm(i: usize, hd: Handle, g: Gemm, a_ptr: u64, b_ptr: u64, c_ptr: u64) ?Status {
    // Measured on the H100 (bench/results/2026-11-26-h100-cuda.md): cublasLt's first heuristic
    // choice matches PyTorch at 8192³ bf16 where cublasGemmEx reaches 0.89 of it, and the reverse
    // at 4096³ (0.88 vs 0.97-0.99). Large products go to cublasLt, the others to cublasGemmEx.
    const work = @as(f64, @floatFromInt(g.m)) * @as(f64, @floatFromInt(g.n)) * @as(f64, @floatFromInt(g.k)) * @as(f64, @floatFromInt(g.batch));
    if (g.in_type != 0 and lt_handles[i] != null and work > lt_min_work) {
        if (ltGemm(i, g, a_ptr, b_ptr, c_ptr)) |r| return if (r == lt_no_algo) gemmEx(hd, g, a_ptr, b_ptr, c_ptr) else r;
        return null;
    }
    return gemmEx(hd, g, a_ptr, b_ptr, c_ptr);
}

/// Multiply-adds from which f16/bf16 products use cublasLt (above 4096³).
const lt_min_work: f64 = 4096.0 * 4096.0 * 4096.0 * 1.5;

/// Returned by ltGemm when the heuristic offers no algorithm (the caller falls back).
const lt_no_algo: Status = -1;

fn ltGemm(i: usize, g: Gemm, a_ptr: u64, b_ptr: u64, c_ptr: u64) ?Status {
    const L = lt_api;
    var desc: ?*anyopaque = null;
    if (L.cublasLtMatmulDescCreate(&desc, compute_32f, 0) != 0) return lt_no_algo;
    defer _ = L.cublasLtMatmulDescDestroy(desc);
    _ = L.cublasLtMatmulDescSetAttribute(desc, lt_desc_transa, &g.a.op, @sizeOf(c_int));
    _ = L.cublasLtMatmulDescSetAttribute(desc, lt_desc_transb, &g.b.op, @sizeOf(c_int));
    // Stored shapes (column-major, before the op): A is m×k (op N) or k×m (op T); B k×n or n×k.
    const m: u64 = @intCast(g.m);
    const n: u64 = @intCast(g.n);
    const k: u64 = @intCast(g.k);
    var layouts: [3]?*anyopaque = .{ null, null, null };
    defer for (layouts) |l| if (l != null) {
        _ = L.cublasLtMatrixLayoutDestroy(l);
    };
    const dims = [3][2]u64{ if (g.a.op == op_n) .{ m, k } else .{ k, m }, if (g.b.op == op_n) .{ k, n } else .{ n, k }, .{ m, n } };
    const lds = [3]i64{ g.a.ld, g.b.ld, g.ldc };
    const strides = [3]i64{ g.stride_a, g.stride_b, g.stride_c };
    const types = [3]c_int{ g.in_type, g.in_type, g.out_type };
    for (0..3) |j| {
        if (L.cublasLtMatrixLayoutCreate(&layouts[j], types[j], dims[j][0], dims[j][1], lds[j]) != 0) return lt_no_algo;
        if (g.batch > 1) {
            const bc: i32 = g.batch;
            _ = L.cublasLtMatrixLayoutSetAttribute(layouts[j], lt_layout_batch_count, &bc, @sizeOf(i32));
            _ = L.cublasLtMatrixLayoutSetAttribute(layouts[j], lt_layout_batch_offset, &strides[j], @sizeOf(i64));
        }
    }
    var pref: ?*anyopaque = null;
    if (L.cublasLtMatmulPreferenceCreate(&pref) != 0) return lt_no_algo;
    defer _ = L.cublasLtMatmulPreferenceDestroy(pref);
    const ws_bytes: u64 = if (workspaces[i] != 0) workspace_bytes else 0;
    _ = L.cublasLtMatmulPreferenceSetAttribute(pref, lt_pref_max_workspace, &ws_bytes, @sizeOf(u64));
    var heur: HeuristicResult = undefined;
    var found: c_int = 0;
    if (L.cublasLtMatmulAlgoGetHeuristic(lt_handles[i], desc, layouts[0], layouts[1], layouts[2], layouts[2], pref, 1, &heur, &found) != 0 or found == 0) return lt_no_algo;
    const alpha: f32 = 1;
    const beta: f32 = 0;
    const r = L.cublasLtMatmul(lt_handles[i], desc, &alpha, @ptrFromInt(a_ptr), layouts[0], @ptrFromInt(b_ptr), layouts[1], &beta, @ptrFromInt(c_ptr), layouts[2], @ptrFromInt(c_ptr), layouts[2], &heur.algo, if (ws_bytes > 0) @ptrFromInt(workspaces[i]) else null, ws_bytes, null);
    return if (r != 0) r else null;
}

fn gemmEx(hd: Handle, g: Gemm, a_ptr: u64, b_ptr: u64, c_ptr: u64) ?Status {
    const alpha: f32 = 1;
    const beta: f32 = 0;
    // A single product goes through cublasGemmEx: its heuristics pick faster Hopper kernels for
    // large matrices than the batched entry point's.
    const r = if (g.batch == 1)
        api.cublasGemmEx(hd, g.a.op, g.b.op, g.m, g.n, g.k, &alpha, @ptrFromInt(a_ptr), g.in_type, @intCast(g.a.ld), @ptrFromInt(b_ptr), g.in_type, @intCast(g.b.ld), &beta, @ptrFromInt(c_ptr), g.out_type, @intCast(g.ldc), compute_32f, gemm_default)
    else api.cublasGemmStridedBatchedEx(hd, g.a.op, g.b.op, g.m, g.n, g.k, &alpha, @ptrFromInt(a_ptr), g.in_type, @intCast(g.a.ld), g.stride_a, @ptrFromInt(b_ptr), g.in_type, @intCast(g.b.ld), g.stride_b, &beta, @ptrFromInt(c_ptr), g.out_type, @intCast(g.ldc), g.stride_c, g.batch, compute_32f, gemm_default);
    return if (r != 0) r else null;
}

test "operandView picks the flag that reads a matrix in place" {
    // Row-major [r, c] (strides c, 1): op T with ld = c.
    try std.testing.expectEqual(View{ .op = op_t, .ld = 5 }, operandView(3, 5, 5, 1).?);
    // Column-major [r, c] (a transposed view, strides 1, r): op N with ld = r.
    try std.testing.expectEqual(View{ .op = op_n, .ld = 3 }, operandView(3, 5, 1, 3).?);
    // Padded rows (a slice of wider rows): ld is the row stride.
    try std.testing.expectEqual(View{ .op = op_t, .ld = 8 }, operandView(3, 5, 8, 1).?);
    // A column vector [r, 1]: op N, ld = r whatever the column stride.
    try std.testing.expectEqual(View{ .op = op_n, .ld = 4 }, operandView(4, 1, 1, 0).?);
    // Neither axis unit-strided, or rows overlapping (a broadcast axis): no in-place view.
    try std.testing.expect(operandView(3, 5, 10, 2) == null);
    try std.testing.expect(operandView(3, 5, 0, 1) == null);
}
