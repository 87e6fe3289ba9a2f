//! Argument blocks of the kernel families, shared by zig/root.zig (which fills them from an
//! export's arguments and the mailbox) and the kernel objects (which read them). Extern layout:
//! both sides compile this file separately. Strides are in elements; pointers are element 0.
const dt = @import("dtype.zig");
const strided = @import("strided.zig");
const DType = dt.DType;

pub const BinOp = enum(u32) { add = 0, sub = 1, mul = 2, div = 3, pow = 4, maximum = 5, minimum = 6, eq = 7, ne = 8, lt = 9, le = 10, gt = 11, ge = 12 };

pub const UnOp = enum(u32) {
    neg = 0,
    abs = 1,
    exp = 2,
    log = 3,
    sqrt = 4,
    rsqrt = 5,
    sin = 6,
    cos = 7,
    tanh = 8,
    erf = 9,
    floor = 10,
    ceil = 11,
    round = 12,
    sign = 13,
    relu = 14,
    gelu = 15,
    gelu_tanh = 16,
    silu = 17,
    sigmoid = 18,
    clip = 19, // p0 = min, p1 = max (NaN bound = none)
    // Derivatives d/dx, evaluated at x (for autograd).
    relu_grad = 20,
    gelu_grad = 21,
    gelu_tanh_grad = 22,
    silu_grad = 23,
    sigmoid_grad = 24,
    tanh_grad = 25,
};

/// out = a op b. `dtype` is the dtype of a, b and the computation; `out_dtype` equals it, or is
/// bool for comparisons. A scalar operand (a_scalar/b_scalar != 0) is the value in a_value/b_value,
/// converted to `dtype`; its strides are ignored. layout: operand 0 = out, 1 = a, 2 = b.
pub const BinaryArgs = extern struct {
    op: BinOp,
    dtype: DType,
    out_dtype: DType,
    a_scalar: u32,
    b_scalar: u32,
    a_value: f64,
    b_value: f64,
    out: [*]u8,
    a: [*]const u8,
    b: [*]const u8,
    layout: strided.Layout(3),
};

/// out = op(x) (p0, p1: clip bounds). `dtype` of x and out. layout: 0 = out, 1 = x.
pub const UnaryArgs = extern struct {
    op: UnOp,
    dtype: DType,
    p0: f64,
    p1: f64,
    out: [*]u8,
    x: [*]const u8,
    layout: strided.Layout(2),
};

pub const ReduceOp = enum(u32) { sum = 0, mean = 1, prod = 2, min = 3, max = 4, argmin = 5, argmax = 6, variance = 7, std = 8, logsumexp = 9 };

/// Reduction over the trailing axes. layout.shape = [kept axes..., reduced axes...] (kept =
/// number of kept axes); strides[0] = out strides (only the first `kept` are used), strides[1]
/// = input strides. Each output element reduces the `reduced` sub-box of the input.
/// ddof: for variance/std. out_dtype: see src/ops/reduce.ts (argmin/argmax give i32).
pub const ReduceArgs = extern struct {
    op: ReduceOp,
    in_dtype: DType,
    out_dtype: DType,
    kept: u32,
    ddof: f64,
    out: [*]u8,
    in: [*]const u8,
    layout: strided.Layout(2),
};

/// Inclusive prefix sum along the LAST axis of the layout (0 = out, 1 = in).
pub const ScanArgs = extern struct {
    in_dtype: DType,
    out_dtype: DType,
    out: [*]u8,
    in: [*]const u8,
    layout: strided.Layout(2),
};

/// softmax / logSoftmax along the LAST axis of the layout (0 = out, 1 = in); dtype of both.
pub const SoftmaxArgs = extern struct {
    dtype: DType,
    log: u32,
    out: [*]u8,
    in: [*]const u8,
    layout: strided.Layout(2),
};

pub const NormKind = enum(u32) { layer = 0, rms = 1 };

/// layerNorm / rmsNorm over the LAST axis (0 = out, 1 = in). weight and bias (either may be
/// null) are contiguous vectors of the last axis' length in `wb_dtype`.
pub const NormArgs = extern struct {
    kind: NormKind,
    dtype: DType,
    wb_dtype: DType,
    _pad: u32 = 0,
    eps: f64,
    out: [*]u8,
    in: [*]const u8,
    weight: ?[*]const u8,
    bias: ?[*]const u8,
    layout: strided.Layout(2),
};

/// out = cond ? a : b. cond is bool (u8); a, b and out are `dtype`; a scalar operand (flag set)
/// is its value converted to `dtype`. layout: 0 = out, 1 = cond, 2 = a, 3 = b.
pub const WhereArgs = extern struct {
    dtype: DType,
    a_scalar: u32,
    b_scalar: u32,
    _pad: u32 = 0,
    a_value: f64,
    b_value: f64,
    out: [*]u8,
    cond: [*]const u8,
    a: [*]const u8,
    b: [*]const u8,
    layout: strided.Layout(4),
};

/// out = alpha * (a @ b) + beta * out, for every matrix of a batch. layout.shape = [batch...,
/// M, N, K]; strides[0] = out ([batch..., row, col, 0]), strides[1] = a ([batch..., row, 0, k]),
/// strides[2] = b ([batch..., 0, col, k]); a stride-0 batch axis broadcasts. Any strides: the
/// kernel packs panels, so transposed views cost nothing extra. in_dtype is that of a and b;
/// out_dtype is the accumulation type: f32 for f32/f16/bf16 inputs, i32 for integer inputs
/// (wrapping), f64 for f64 (used inside linalg). beta = 0 never reads out (NaN there is ignored).
pub const GemmArgs = extern struct {
    in_dtype: DType,
    out_dtype: DType,
    alpha: f64,
    beta: f64,
    out: [*]u8,
    a: [*]const u8,
    b: [*]const u8,
    layout: strided.Layout(3),
};

pub const LinalgOp = enum(u32) { inv = 0, solve = 1, det = 2, cholesky = 3, qr = 4, svd = 5, eigh = 6, norm_vector = 7, norm_matrix = 8 };

/// Matrix norm orders (numpy.linalg.norm's ord for a matrix).
pub const MatrixNorm = enum(u32) { fro = 0, nuc = 1, one = 2, neg_one = 3, two = 4, neg_two = 5, inf = 6, neg_inf = 7 };

/// One linalg call over a batch (zig/cpu/linalg.zig). layout.shape = [batch..., m, n], the shape
/// of a; strides[0] = a's strides, strides[1] = b's ([batch..., n, k]: its last two are b's row
/// and column strides; a stride-0 batch axis broadcasts). Outputs are contiguous in out_dtype,
/// one block per batch item in row-major batch order:
///   inv [n, n] · solve [n, k] · det [] · cholesky [n, n] · qr Q [m, mc], R [mc, n] (mc = m when
///   flags bit 0 "complete", else min(m, n)) · svd U [m, uc], S [min], Vt [vc, n] (flags bit 0:
///   full matrices, bit 1: compute U and Vt; without it S is out[0]) · eigh w [n], V [n, n] ·
///   norm_vector (order p over all m x n elements) [] · norm_matrix (flags = MatrixNorm) [].
/// The kernel returns linalg.Fail; on failure fail_item is the first failing batch item and
/// fail_at the pivot / row involved.
pub const LinalgArgs = extern struct {
    op: LinalgOp,
    in_dtype: DType,
    out_dtype: DType,
    flags: u32,
    k: usize,
    p: f64,
    a: [*]const u8,
    b: ?[*]const u8,
    out: [3]?[*]u8,
    fail_item: usize,
    fail_at: usize,
    layout: strided.Layout(2),
};

pub const TernaryOp = enum(u32) { pack = 0, unpack = 1, dequantize = 2 };

/// Packed ternary formats (zig/cpu/ternary_pack.zig), 256 weights a block: ggml's TQ2_0 and TQ1_0
/// (with an f16 scale a block) and "i2", TQ2_0's 64 bytes of codes without the scale (its scales
/// live beside it, per tensor, channel or group).
pub const TernaryFormat = enum(u32) { tq2_0 = 0, tq1_0 = 1, i2 = 2 };

/// One call over `nblocks` contiguous blocks (zig/cpu/ternary_pack.zig). pack: values (i8, 256
/// a block) and scales (f32, one a block) -> blocks; unpack: blocks -> values (i8) and, when not
/// null, scales (f32); dequantize: blocks -> out (`dtype`: f32, f16 or bf16, 256 a block). The
/// kernel returns 0, or 1 when a packed value is not -1, 0 or 1 (fail_at = its element index).
pub const TernaryPackArgs = extern struct {
    op: TernaryOp,
    format: TernaryFormat,
    dtype: DType,
    _pad: u32 = 0,
    nblocks: usize,
    values: ?[*]u8,
    scales: ?[*]u8,
    blocks: [*]u8,
    out: ?[*]u8,
    fail_at: usize,
};

/// out[m, n] (f32, contiguous) = x[m, k] @ wᵀ for ternary w[n, k] packed in `format`, rows of
/// `ceil(k / 256)` blocks back to back (zig/cpu/ternary_matmul.zig). x: f32/f16/bf16, token t at
/// x + t·x_stride elements, contiguous along k. i2 scales (f32): scale_mode 0 = one, 1 = one a
/// row, 2 = `group_blocks`-block groups, [n, k / (256·group_blocks)]. dot_ext: use the level's
/// fused dot-product instructions (the engine checked the CPU has them). The kernel returns 0, or
/// 1 when scratch memory was refused.
pub const TernaryMatmulArgs = extern struct {
    format: TernaryFormat,
    x_dtype: DType,
    scale_mode: u32,
    dot_ext: u32,
    m: usize,
    n: usize,
    k: usize,
    x_stride: usize,
    group_blocks: usize,
    x: [*]const u8,
    w: [*]const u8,
    scales: ?[*]const f32,
    out: [*]f32,
};

// ---- gradients, gather / scatter, optimizers (zig/cpu/grad.zig, gather.zig, optim.zig) ----------

/// Softmax backward along the LAST axis of the layout (0 = dx, 1 = y, 2 = g); dtype of all three.
/// log = 0: y = softmax(x), dx = y * (g - sum(g * y)); log = 1: y = logSoftmax(x), dx = g -
/// exp(y) * sum(g).
pub const SoftmaxBackwardArgs = extern struct {
    dtype: DType,
    log: u32,
    dx: [*]u8,
    y: [*]const u8,
    g: [*]const u8,
    layout: strided.Layout(3),
};

/// layerNorm / rmsNorm backward over the LAST axis (0 = dx, 1 = x, 2 = g; dtype of all three).
/// weight (may be null) is a contiguous vector of the last axis' length in `w_dtype`. dweight
/// (sum over rows of g * xhat) and dbias (sum over rows of g) are contiguous f32 vectors of that
/// length, each written when not null. The kernel returns 0, or 1 when scratch memory was refused.
pub const NormBackwardArgs = extern struct {
    kind: NormKind,
    dtype: DType,
    w_dtype: DType,
    _pad: u32 = 0,
    eps: f64,
    dx: [*]u8,
    x: [*]const u8,
    g: [*]const u8,
    weight: ?[*]const u8,
    dweight: ?[*]f32,
    dbias: ?[*]f32,
    layout: strided.Layout(3),
};

/// take / indexAdd along one axis of a contiguous tensor seen as [outer, axis_len, inner], with
/// `nidx` contiguous indices of `idx_dtype` (any integer dtype; negative counts from the end).
/// take: out [outer, nidx, inner] = x[:, idx, :], elements of `dtype` (any; moved as bytes).
/// index_add: out is the target [outer, axis_len, inner] (float `dtype`), x the source [outer,
/// nidx, inner] (float `src_dtype`): out[:, idx[j], :] += x[:, j, :], j in increasing order.
/// The kernel checks every index before it writes: it returns 0, or 1 when an index is out of
/// range (fail_at = its position in idx, fail_value = its value).
pub const GatherArgs = extern struct {
    dtype: DType,
    idx_dtype: DType,
    src_dtype: DType,
    _pad: u32 = 0,
    outer: usize,
    axis_len: usize,
    inner: usize,
    nidx: usize,
    out: [*]u8,
    x: [*]const u8,
    idx: [*]const u8,
    fail_at: usize,
    fail_value: i64,
};

pub const OptimKind = enum(u32) { sgd = 0, adamw = 1 };

/// OptimArgs.flags bits.
pub const optim_maximize: u32 = 1;
pub const optim_nesterov: u32 = 2;
pub const optim_first: u32 = 4; // SGD: the momentum buffer starts as the first step's d
pub const optim_amsgrad: u32 = 8; // AdamW: s2 is the running maximum of v

/// One in-place optimizer step over `n` contiguous parameters p (`dtype`: f32, f16 or bf16) with
/// gradients g (same dtype) and f32 state: SGD s0 = momentum buffer (null when momentum = 0);
/// AdamW s0 = m, s1 = v, s2 = max v (amsgrad). step: AdamW's t >= 1 (bias corrections).
pub const OptimArgs = extern struct {
    kind: OptimKind,
    dtype: DType,
    flags: u32,
    _pad: u32 = 0,
    n: usize,
    lr: f64,
    momentum: f64,
    dampening: f64,
    weight_decay: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    step: f64,
    p: [*]u8,
    g: [*]const u8,
    s0: ?[*]f32,
    s1: ?[*]f32,
    s2: ?[*]f32,
};
