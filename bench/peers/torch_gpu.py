"""PyTorch peer for bench/gpu.ts: median seconds of host->device and device->host copies.

Usage: python3 bench/peers/torch_gpu.py '<json list of byte sizes>'
Prints {"torch": version, "device": name, "h2d_<n>": s, "d2h_<n>": s, "rt_<n>": s, and for
sizes of 64 MiB or more "add_<n>": s (f32 a + b), "copy_<n>": s (clone)} or {"error": ...}.
Copies are from/to pageable host memory (what x.to("cuda") / x.cpu() do), synchronised.
"""
import json
import sys
import time

try:
    import torch
except ImportError as e:
    print(json.dumps({"error": f"torch is not installed ({e})"}))
    sys.exit(0)
if not torch.cuda.is_available():
    print(json.dumps({"error": "torch sees no CUDA device"}))
    sys.exit(0)


def median(f, reps):
    for _ in range(3):
        f()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[len(ts) // 2]


out = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0)}
for n in json.loads(sys.argv[1]):
    reps = 50 if n <= (1 << 20) else 10
    x = torch.ones(n // 4, dtype=torch.float32)
    g = x.to("cuda")
    out[f"h2d_{n}"] = median(lambda: x.to("cuda"), reps)
    out[f"d2h_{n}"] = median(lambda: g.cpu(), reps)
    out[f"rt_{n}"] = median(lambda: x.to("cuda").cpu(), reps)
    if n >= (64 << 20):
        h = g.clone()
        out[f"add_{n}"] = median(lambda: g + h, reps)
        out[f"copy_{n}"] = median(lambda: g.clone(), reps)
sx = torch.randn(8192, 8192, device="cuda")
out["softmax_8192"] = median(lambda: torch.softmax(sx, dim=-1), 20)
print(json.dumps(out))
