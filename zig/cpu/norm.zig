//! softmax / logSoftmax along the last axis, layerNorm / rmsNorm over the last axis.
//! (Being written: see args.SoftmaxArgs / args.NormArgs for the contract.)
const std = @import("std");
const args = @import("args.zig");
const Parallel = @import("parallel.zig").Parallel;

pub fn softmax(comptime vbits: u32, par: *const Parallel, a: *const args.SoftmaxArgs) void {
    _ = vbits;
    _ = par;
    _ = a;
    @panic("softmax: not implemented yet");
}

pub fn norm(comptime vbits: u32, par: *const Parallel, a: *const args.NormArgs) void {
    _ = vbits;
    _ = par;
    _ = a;
    @panic("norm: not implemented yet");
}
