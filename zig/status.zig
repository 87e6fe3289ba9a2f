//! Status codes: the one list both sides use. Every export of zig/root.zig returns one of these;
//! scripts/gen-abi.ts copies this enum into src/abi.gen.ts, where src/native.ts maps each code to
//! a BitNetError subclass. Append only: codes never change meaning.
pub const Status = enum(i32) {
    ok = 0,
    invalid_argument = 1,
    shape = 2,
    dtype = 3,
    device = 4,
    out_of_memory = 5,
    limit_exceeded = 6,
    linalg = 7,
    format = 8,
    unsupported = 9,
    internal = 10,
};
