#!/usr/bin/env python3
"""Draws the comparison's cells (`chorus-lab compare --points FILE`) as throughput against
latency: one panel per scenario, one line per system and client through its caller counts
(1, 16, 128 from left to right), p50 solid and p99 dashed.

    python3 bench/plot_compare.py docs/benchmarks/compare.json docs/benchmarks/compare.png
"""
import json
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

source, target = sys.argv[1], sys.argv[2]
points = json.load(open(source))
scenarios = [s for s in ("write", "read", "mixed") if any(p["scenario"] == s for p in points)]
colors = {"chorus": "tab:blue", "chorus-tls": "tab:green", "etcd": "tab:red"}
markers = {"swift": "o", "grpc-go, 1 conn": "s", "grpc-go, 4 conn": "^", "grpc-go streams, 1 conn": "D"}
titles = {"write": "writes (send / put)", "read": "reads (history page / linearizable get)", "mixed": "mixed 90% reads"}

figure, axes = plt.subplots(1, len(scenarios), figsize=(6 * len(scenarios), 6), squeeze=False)
for axis, scenario in zip(axes[0], scenarios):
    lines = defaultdict(list)
    for p in points:
        if p["scenario"] == scenario:
            lines[(p["system"], p["client"])].append(p)
    for (system, client), cells in sorted(lines.items()):
        cells.sort(key=lambda p: p["callers"])
        x = [p["opsPerSecond"] for p in cells]
        style = dict(color=colors.get(system, "gray"), marker=markers.get(client, "x"))
        axis.plot(x, [p["p50Ms"] for p in cells], linestyle="-", label=f"{system} ({client}) p50", **style)
        axis.plot(x, [p["p99Ms"] for p in cells], linestyle=":", alpha=0.6, **style)
    axis.set_title(titles[scenario])
    axis.set_xlabel("operations per second")
    axis.set_ylabel("latency, ms (solid p50, dotted p99)")
    axis.set_yscale("log")
    axis.grid(True, which="both", alpha=0.3)
handles, labels = axes[0][0].get_legend_handles_labels()
figure.legend(handles, labels, loc="lower center", ncol=5, fontsize=8)
figure.suptitle("Chorus and etcd, 5 nodes each on one 2-core machine: throughput against latency at 1, 16 and 128 callers")
figure.tight_layout(rect=(0, 0.1, 1, 1))
figure.savefig(target, dpi=110)
print(f"wrote {target}")
