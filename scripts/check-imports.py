#!/usr/bin/env python3
"""Checks that every target of Package.swift declares each module its sources import.

A module found only through another target's dependencies builds today and breaks the day
that target drops it; SwiftPM does not complain. Run from the package root (scripts/test.sh
does); prints each undeclared import and exits 1 if there is any.
"""
import json
import os
import re
import subprocess
import sys

# Modules of the toolchain and the system, never declared.
SYSTEM = {"Foundation", "FoundationEssentials", "FoundationNetworking", "Glibc", "Musl", "Darwin", "Dispatch",
          "Synchronization", "Testing", "XCTest", "_Concurrency", "os", "CoreFoundation"}

package = json.loads(subprocess.run(["swift", "package", "dump-package"], capture_output=True, text=True, check=True).stdout)
problems = []
for target in package["targets"]:
    if target["type"] == "system":
        continue
    declared = set()
    for dependency in target.get("dependencies", []):
        for kind in ("byName", "target", "product"):
            if kind in dependency:
                declared.add(dependency[kind][0])
    path = target.get("path") or os.path.join("Tests" if target["type"] == "test" else "Sources", target["name"])
    for root, _, files in os.walk(path):
        for name in files:
            if not name.endswith(".swift"):
                continue
            file = os.path.join(root, name)
            with open(file, encoding="utf-8") as handle:
                for number, line in enumerate(handle, 1):
                    match = re.match(r"^\s*(?:@testable\s+|@preconcurrency\s+|@_spi\(\w+\)\s+)*import\s+(?:(?:class|struct|enum|protocol|func|var|typealias)\s+)?([A-Za-z_][A-Za-z0-9_]*)", line)
                    if not match:
                        continue
                    module = match.group(1)
                    if module in SYSTEM or module in declared or module == target["name"]:
                        continue
                    problems.append(f"{file}:{number}: target {target['name']} imports {module} without declaring it")
for problem in problems:
    print(problem)
print(f"{len(problems)} undeclared import(s)" if problems else "every target declares what it imports")
sys.exit(1 if problems else 0)
