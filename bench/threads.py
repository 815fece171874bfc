#!/usr/bin/env python3
"""Samples what each thread of some processes did over a window, from /proc: CPU time and
context switches. Used by bench/unary_ab.sh to say where a node's CPU goes per operation.

    threads.py snapshot PID... > before.json
    threads.py snapshot PID... > after.json
    threads.py report before.json after.json OPERATIONS LEADER-PID PID...
"""
import json
import os
import sys

HZ = os.sysconf("SC_CLK_TCK")


def snapshot(pids):
    out = {}
    for pid in pids:
        threads = {}
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except FileNotFoundError:
            continue
        for tid in tids:
            try:
                name = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
                stat = open(f"/proc/{pid}/task/{tid}/stat").read().rsplit(")", 1)[1].split()
                switches = sum(int(line.split()[1]) for line in open(f"/proc/{pid}/task/{tid}/status") if "ctxt_switches" in line)
            except (FileNotFoundError, ProcessLookupError):
                continue
            threads[tid] = [name, int(stat[11]) + int(stat[12]), switches]
        out[pid] = threads
    return out


def report(before, after, operations, leader, pids):
    rows = []
    for pid in pids:
        by_name = {}
        for tid, (name, ticks, switches) in after.get(pid, {}).items():
            old = before.get(pid, {}).get(tid)
            if old is None:
                continue
            # Names that differ only by a number (NIO-ELT-1-#1, -#2) are one kind of thread.
            kind = name.rsplit("-#", 1)[0] if name.startswith("NIO-ELT") else name
            entry = by_name.setdefault(kind, [0, 0])
            entry[0] += ticks - old[1]
            entry[1] += switches - old[2]
        total = sum(v[0] for v in by_name.values())
        rows.append((pid, total, by_name))
    follower = max((r for r in rows if r[0] != leader), key=lambda r: r[1], default=None)
    for label, row in (("leader", next(r for r in rows if r[0] == leader)), ("busiest follower", follower)):
        if row is None:
            continue
        _, total, by_name = row
        parts = ", ".join(f"{name} {1e6 * ticks / HZ / operations:.0f} µs / {switches / operations:.1f} cs"
                          for name, (ticks, switches) in sorted(by_name.items(), key=lambda kv: -kv[1][0]) if ticks or switches > operations / 10)
        print(f"    {label}: {1e6 * total / HZ / operations:.0f} µs CPU per operation ({parts})")


if __name__ == "__main__":
    if sys.argv[1] == "snapshot":
        json.dump(snapshot(sys.argv[2:]), sys.stdout)
    else:
        report(json.load(open(sys.argv[2])), json.load(open(sys.argv[3])), max(int(sys.argv[4]), 1), sys.argv[5], sys.argv[6:])
