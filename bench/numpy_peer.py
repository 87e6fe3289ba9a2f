"""Times NumPy on the same operations as a bench file, in the same run, for the peer column.

Usage: python3 bench/numpy_peer.py '<json list of {"name", "setup", "stmt"}>'
Prints one JSON object {name: median seconds per call}. The setup runs once per case with
`np` imported; each statement is timed with timeit (auto-ranged, 7 repeats, median).
"""
import json
import sys
import timeit

try:
    import numpy as np
except ImportError as e:  # the bench says so and goes on without the peer
    print(json.dumps({"error": f"numpy is not installed ({e})"}))
    sys.exit(0)

cases = json.loads(sys.argv[1])
out = {"numpy": np.__version__}
for case in cases:
    env = {"np": np}
    exec(case["setup"], env)
    t = timeit.Timer(case["stmt"], globals=env)
    number, _ = t.autorange()
    number = max(1, number // 2)
    runs = sorted(x / number for x in t.repeat(repeat=7, number=number))
    out[case["name"]] = runs[len(runs) // 2]
print(json.dumps(out))
