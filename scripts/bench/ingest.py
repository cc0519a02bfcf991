"""Runs `encore data ingest --preset paper` and the polars implementation of the same
preprocessing on one log, in one run; prints wall time, peak RSS and per-step counts of both and
checks that the counts agree. Writes the results to OUT_DIR/ingest-bench.json.

usage: ingest.py ENCORE_BIN POLARS_PYTHON LOG.tsv OUT_DIR
"""

import json
import os
import subprocess
import sys
import time


def run(cmd):
    """Wall seconds and peak RSS (MiB) of one child process."""
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.execvp(cmd[0], cmd)
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed ({os.waitstatus_to_exitcode(status)}): {' '.join(cmd)}")
    return wall, ru.ru_maxrss / 1024


def main(encore, python, log, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    size = os.path.getsize(log)
    with open(log, "rb") as f:  # the same warm page cache for every run
        while f.read(1 << 24):
            pass
    cache = os.path.join(out_dir, "cache")
    enc_dir = os.path.join(out_dir, "encore-paper")
    pol_json = os.path.join(out_dir, "polars-paper.json")
    rows = []
    wall, rss = run([encore, "data", "ingest", "-f", "lastfm1k", "--preset", "paper", "--no-cache", log, "-o", enc_dir])
    rows.append(("encore (parse + preprocess)", wall, rss))
    enc = json.load(open(os.path.join(enc_dir, "stats.json")))
    wall, rss = run([python, os.path.join(os.path.dirname(__file__), "paper_polars.py"), log, pol_json])
    rows.append(("polars (read_csv + preprocess)", wall, rss))
    pol = json.load(open(pol_json))
    subprocess.run([encore, "data", "ingest", "-f", "lastfm1k", "--preset", "paper", "--cache-dir", cache, log, "-o", enc_dir], check=True, stdout=subprocess.DEVNULL)
    wall, rss = run([encore, "data", "ingest", "-f", "lastfm1k", "--preset", "paper", "--cache-dir", cache, log, "-o", enc_dir])
    rows.append(("encore, parsed log cached", wall, rss))

    lines = enc["inputs"][0]["lines"]
    print(f"log: {log} ({lines:,} lines, {size / 2**20:,.0f} MiB); {os.cpu_count()} cores; polars {pol['polars']}")
    print(f"{'run':<30} {'wall s':>8} {'peak RSS MiB':>13} {'vs polars':>10}")
    base = rows[1][1]
    for name, wall, rss in rows:
        print(f"{name:<30} {wall:>8.2f} {rss:>13,.0f} {base / wall:>9.2f}x")
    print(f"\n{'step':<20} {'users':>7} {'tracks':>9} {'sessions':>9} {'plays':>10}  polars agrees")
    agree = len(enc["steps"]) == len(pol["steps"])
    for a, b in zip(enc["steps"], pol["steps"]):
        same = a == b
        agree &= same
        s = "-" if a["sessions"] is None else a["sessions"]
        print(f"{a['step']:<20} {a['users']:>7} {a['tracks']:>9} {s:>9} {a['plays']:>10}  {'yes' if same else 'NO: ' + json.dumps(b)}")
    result = {
        "log": log,
        "lines": lines,
        "bytes": size,
        "cores": os.cpu_count(),
        "polars_version": pol["polars"],
        "runs": [{"name": n, "wall_s": w, "peak_rss_mib": r} for n, w, r in rows],
        "speedup_vs_polars": base / rows[0][1],
        "counts_agree": agree,
        "steps": enc["steps"],
    }
    with open(os.path.join(out_dir, "ingest-bench.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(f"\nencore is {base / rows[0][1]:.2f}x faster than polars with {rows[0][2] / rows[1][2]:.2f}x its peak memory; counts agree: {agree}")
    if not agree:
        sys.exit(1)


if __name__ == "__main__":
    main(*sys.argv[1:])
