//! The engine's OS-facing core — memory pool, thread pool, OS layer — tested on its own, so
//! `zig build test` can run it in ReleaseSafe too without compiling every kernel again.
test {
    _ = @import("pool.zig");
    _ = @import("threads.zig");
    _ = @import("os.zig");
}
