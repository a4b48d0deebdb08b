"""Stages 1–5 (read → URL blocklist → extract → language → quality → write): ours against datatrove's FineWeb
recipe, on the same WARC files, in one command.

    python -m benchmarks.bench_pipeline [--warcs 'DIR/*.warc.gz'] [--repeat 1]

Each side runs in a fresh child process (so one's memory and caches do not help the other), as one datatrove task
with LocalPipelineExecutor(workers=1). Printed: documents read, documents kept, CPU seconds, docs/s per core
(documents read / CPU seconds of the child), peak RSS, CPU seconds per step, and the ratios ours / datatrove.
Default input: the labeled benchmark WARCs when ../shared/bench exists, else the sample WARCs in tests/data/.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_WARCS = os.path.join(ROOT, "..", "shared", "bench", "warc", "*.warc.gz")
SAMPLE_WARCS = os.path.join(ROOT, "tests", "data", "sample-*.warc.gz")


def run_side(side: str, warcs: list[str], workdir: str) -> None:
    """Child process: run one side's steps as one datatrove task."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.writers import JsonlWriter

    if side == "ours":
        from pipelines.fineweb import FinewebConfig, recipe

        cfg = FinewebConfig(warcs=tuple(warcs), output=workdir, dedup=False, pii=False, dump="CC-MAIN-2024-10")
        steps = recipe(cfg)[0][1]
    else:
        from benchmarks.datatrove_recipe import datatrove_fineweb_steps

        staging = os.path.join(workdir, "input")  # datatrove's reader takes a folder: link the same files in
        os.makedirs(staging)
        for i, path in enumerate(warcs):
            os.symlink(os.path.abspath(path), os.path.join(staging, f"{i:05d}_{os.path.basename(path)}"))
        steps = datatrove_fineweb_steps(staging) + [JsonlWriter(os.path.join(workdir, "kept"))]
    LocalPipelineExecutor(steps, tasks=1, workers=1, logging_dir=os.path.join(workdir, "logs")).run()
    # this process's own peak (RUSAGE_CHILDREN in the parent would give the larger of the two sides)
    with open(os.path.join(workdir, "peak_rss_kb"), "w") as f:
        f.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def measure(side: str, warcs: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as workdir:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "benchmarks.bench_pipeline", "--child", side, "--workdir", workdir,
                        "--warcs", *warcs], cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        with open(os.path.join(workdir, "logs", "stats.json"), encoding="utf-8") as f:
            steps = json.load(f)
        with open(os.path.join(workdir, "peak_rss_kb")) as f:
            peak_rss_kb = int(f.read())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    counts = [s["stats"] for s in steps]
    docs_in = next(c.get("documents", c.get("total")) for c in counts if "documents" in c or "total" in c)
    docs_out = next((c["forwarded"] for c in reversed(counts) if "forwarded" in c), None)
    per_step = {s["name"].split(": ", 1)[-1]: round(s["time_stats"]["total"], 2) for s in steps}
    return {"side": side, "docs_in": _total(docs_in), "docs_kept": _total(docs_out), "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2), "docs_per_cpu_s": round(_total(docs_in) / cpu, 1),
            "peak_rss_mb": round(peak_rss_kb / 1024), "step_cpu_s": per_step}


def _total(value):
    return value["total"] if isinstance(value, dict) else value


def intact(path: str) -> bool:
    """Whole gzip stream, not empty: datatrove's WarcReader raises on a cut gzip member and ends its task, so the
    speed comparison uses intact files only (robustness is scored separately, with score.py)."""
    import gzip

    try:
        with gzip.open(path, "rb") as f:
            return bool(f.read())
    except (EOFError, OSError):
        return False


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--warcs", nargs="+", help="WARC files (default: the labeled bench, else tests/data samples)")
    p.add_argument("--child", choices=("ours", "datatrove"), help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    default = BENCH_WARCS if glob.glob(BENCH_WARCS) else SAMPLE_WARCS
    warcs = args.warcs or sorted(glob.glob(default))
    if args.child:
        run_side(args.child, warcs, args.workdir)
        return 0
    skipped = [w for w in warcs if not intact(w)]
    warcs = [w for w in warcs if w not in skipped]
    if skipped:
        names = [os.path.basename(w) for w in skipped]
        print(f"left out (cut or empty, datatrove's reader would stop on them): {names}")
    print(f"stages 1-5 on {len(warcs)} WARC files ({sum(os.path.getsize(w) for w in warcs) / 1e6:.1f} MB)")
    # datatrove first: its one-off URL-list extraction is cached on disk afterwards, as in a real run
    theirs, ours = measure("datatrove", warcs), measure("ours", warcs)
    for r in (theirs, ours):
        print(f"\n{r['side']:>10}: {r['docs_in']} docs read, {r['docs_kept']} kept, wall {r['wall_s']} s, "
              f"CPU {r['cpu_s']} s, {r['docs_per_cpu_s']} docs/s per core, peak RSS {r['peak_rss_mb']} MB")
        for name, sec in r["step_cpu_s"].items():
            print(f"{'':>14}{name[:40]:<40}{sec:>8.2f} s")
    speed = ours["docs_per_cpu_s"] / theirs["docs_per_cpu_s"]
    print(f"\nratio ours/datatrove: docs/s per core {speed:.2f}x, wall {theirs['wall_s'] / ours['wall_s']:.2f}x "
          f"faster, peak RSS {ours['peak_rss_mb'] / theirs['peak_rss_mb']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
