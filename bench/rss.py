#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/rss.py <pids dir> <out.json>: the memory of every process of the suite.

Reads every <binary>.pid in the pids dir (ADI_PIDS_DIR of tests/harness/suite.sh) and writes
{binary: {"pid": n, "rss_kb": VmRSS, "hwm_kb": VmHWM}} from /proc/<pid>/status to out.json
(a process that is gone is left out). bench/run.sh takes it before and after the load."""
import json
import os
import sys


def status(pid):
    """VmRSS and VmHWM of pid in kB, or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
    except OSError:
        return None
    def kb(name):
        v = fields.get(name, "0 kB").split()
        return int(v[0]) if v else 0
    return {"pid": pid, "rss_kb": kb("VmRSS"), "hwm_kb": kb("VmHWM")}


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: rss.py <pids dir> <out.json>")
    pids_dir, out = sys.argv[1:]
    doc = {}
    for name in sorted(os.listdir(pids_dir)):
        if not name.endswith(".pid"):
            continue
        try:
            pid = int(open(os.path.join(pids_dir, name)).read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        s = status(pid)
        if s is not None:
            doc[name[:-4]] = s
    with open(out, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
