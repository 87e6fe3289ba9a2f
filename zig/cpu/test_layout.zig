//! Layout helpers shared by the kernel tests: strides of permuted layouts and walking indices.

/// Row-major strides of a shape; `perm` says which memory axis each layout axis is.
pub fn permStrides(shape: []const usize, perm: []const usize, out: []isize) void {
    // memory shape: mshape[perm[i]] = shape[i]
    var mshape: [8]usize = undefined;
    for (perm, 0..) |p, i| mshape[p] = shape[i];
    var mst: [8]isize = undefined;
    var acc: isize = 1;
    var ax = shape.len;
    while (ax > 0) {
        ax -= 1;
        mst[ax] = acc;
        acc *= @intCast(mshape[ax]);
    }
    for (perm, 0..) |p, i| out[i] = mst[p];
}

/// Offset of layout index `idx` with `strides`.
pub fn offsetOf(idx: []const usize, strides: []const isize) usize {
    var o: isize = 0;
    for (idx, strides) |i, s| o += @as(isize, @intCast(i)) * s;
    return @intCast(o);
}

pub fn nextIdx(idx: []usize, shape: []const usize) bool {
    var ax = shape.len;
    while (ax > 0) {
        ax -= 1;
        idx[ax] += 1;
        if (idx[ax] < shape[ax]) return true;
        idx[ax] = 0;
    }
    return false;
}
