"""The run's funnel: per step, documents in and out and why the others went, from datatrove's merged stats.

    python -m pipelines.funnel out/        # print it again (e.g. after Slurm jobs finished) and rewrite stats.json

Every task of an executor stage writes `OUTPUT/logs/<stage>/stats/<rank>.json` when it completes. This module
merges the completed tasks' files, stage by stage, and keeps, per step, `in` (datatrove's `total`), `out`
(`forwarded`) and every counter whose name is a reason: `dropped_*`, `skipped_*`, `file_*`, `pii_*`, `dedup_*`.
datatrove's own merged `logs/<stage>/stats.json` covers only the tasks run by the last invocation: after a resumed
run it would miss the tasks finished before, and a hand-written Slurm array (`--stage filter`) writes none.
"""

from __future__ import annotations

import json
import os
import sys

from corpus import atomic

REASON_PREFIXES = ("dropped_", "skipped_", "file_", "pii_", "dedup_")


def _count(value) -> int | float:
    return value.get("total", 0) if isinstance(value, dict) else value


def step_summary(step: dict) -> dict:
    stats = {k: _count(v) for k, v in step.get("stats", {}).items()}
    seconds = _count(step.get("time_stats") or 0.0)  # a dict, or a bare number for steps that saw no document
    summary = {"step": step["name"].split(": ", 1)[-1], "in": stats.get("total"), "out": stats.get("forwarded"),
               "seconds": round(seconds, 3)}
    summary["reasons"] = {k: v for k, v in sorted(stats.items()) if k.startswith(REASON_PREFIXES)}
    summary["counters"] = {k: v for k, v in sorted(stats.items())
                           if k not in summary["reasons"] and k not in ("total", "forwarded", "dropped")}
    return summary


def stage_stats(stage_dir: str) -> list[dict] | None:
    """datatrove's per-step stats of one executor stage, summed over its completed tasks (None: none yet)."""
    from datatrove.utils.stats import PipelineStats

    done = set(list_folder(os.path.join(stage_dir, "completions")))
    ranks = sorted(f for f in list_folder(os.path.join(stage_dir, "stats")) if f.removesuffix(".json") in done)
    if not ranks:
        return None
    merged = PipelineStats()
    for name in ranks:
        with open(os.path.join(stage_dir, "stats", name), encoding="utf-8") as f:
            merged += PipelineStats.from_json(json.load(f))
    return json.loads(merged.to_json())


def list_folder(path: str) -> list[str]:
    """Names in a folder; none when it does not exist (yet)."""
    return os.listdir(path) if os.path.isdir(path) else []


def read_funnel(output: str) -> dict:
    """{stage name: [step summaries]} for every stage with at least one completed task."""
    logs = os.path.join(output, "logs")
    funnel = {}
    for stage in sorted(list_folder(logs)):
        steps = stage_stats(os.path.join(logs, stage))
        if steps is not None:
            funnel[stage] = [step_summary(s) for s in steps]
    return funnel


def write_funnel(output: str) -> dict:
    funnel = read_funnel(output)
    atomic.write_text(os.path.join(output, "stats.json"), json.dumps(funnel, indent=2, ensure_ascii=False))
    return funnel


def _fmt(n) -> str:
    return "" if n is None else f"{n:,}" if isinstance(n, int) else f"{n:,.0f}"


def print_funnel(funnel: dict, file=sys.stdout) -> None:
    print(f"{'stage / step':<44}{'in':>10}{'out':>10}{'cpu s':>9}", file=file)
    for stage, steps in funnel.items():
        print(f"[{stage}]", file=file)
        for s in steps:
            print(f"  {s['step'][:42]:<42}{_fmt(s['in']):>10}{_fmt(s['out']):>10}{s['seconds']:>9.1f}", file=file)
            for reason, n in s["reasons"].items():
                print(f"      {reason:<38}{_fmt(n):>10}", file=file)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m pipelines.funnel OUTPUT_DIR")
    print_funnel(write_funnel(sys.argv[1]))
