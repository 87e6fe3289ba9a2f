// Preloaded before every test file (bunfig.toml [test] preload). Bun 1.4 ignores a `timeout` key
// in bunfig.toml, so the default per-test timeout is set here: 60 s, because a GPU test may be the
// first to use the device's kernels in its process and so wait for their compilation (NVRTC took
// 12-14 s on a freshly started H100 machine, past Bun's default of 5 s).
import { setDefaultTimeout } from "bun:test";

setDefaultTimeout(60_000);
