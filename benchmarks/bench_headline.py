"""The headline table: our pipeline and datatrove's FineWeb recipe on the same labeled WARCs, scored by the same
scorer, side by side.

    python -m benchmarks.bench_headline [--bench ../shared/bench] [--keep DIR]

Runs `python -m pipelines.fineweb` and datatrove's recipe (examples/fineweb.py: stages 1-5, MinHash ×4 with
FineWeb's config, PIIFormatter, then ParquetWriter with FineWeb's columns; made offline as described in
benchmarks/datatrove_recipe.py), one task per WARC file, then `score.py` on both outputs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ROWS = [  # (label, path in score.py's JSON report)
    ("extraction F1, real pages", ("extraction", "real_scrapinghub", "bag_of_words", "f1")),
    ("extraction F1, synthetic pages", ("extraction", "synthetic_all", "bag_of_words", "f1")),
    ("English recall", ("language", "english_recall")),
    ("non-English leakage", ("language", "non_english_leakage")),
    ("blocklist recall", ("blocklist", "recall")),
    ("blocklist false-block rate", ("blocklist", "false_block_rate")),
    ("junk dropped", ("quality", "junk_drop_rate")),
    ("good articles kept", ("quality", "good_article_keep_rate")),
    ("real articles kept", ("quality", "real_article_keep_rate")),
    ("PII leak rate", ("pii", "leak_rate_overall")),
    ("PII look-alike survival", ("pii", "lookalike_survival_overall")),
    ("dedup: clusters with one survivor", ("dedup", "exactly_one_survivor")),
    ("robustness cases ok", ("robustness", "cases_ok")),
    ("encodings ok", ("robustness", "encodings_ok")),
]


def run_datatrove(warc_dir: str, out: str) -> None:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.formatters import PIIFormatter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter, ParquetWriter
    from datatrove.utils.hashing import HashConfig

    from benchmarks.datatrove_recipe import datatrove_fineweb_steps

    tasks = len([n for n in os.listdir(warc_dir) if n.endswith(".warc.gz")])
    config = MinhashConfig(hash_config=HashConfig(hash_fc="sha1", precision=64), num_buckets=14,
                           hashes_per_bucket=8, n_grams=5)
    work = os.path.join(out, "work")
    stages = [
        (datatrove_fineweb_steps(warc_dir) + [JsonlWriter(f"{work}/base")], tasks),
        ([JsonlReader(f"{work}/base"), MinhashDedupSignature(f"{work}/sigs", config=config)], tasks),
        ([MinhashDedupBuckets(f"{work}/sigs", f"{work}/buckets", config=config)], config.num_buckets),
        ([MinhashDedupCluster(f"{work}/buckets", f"{work}/remove", config=config)], 1),
        ([JsonlReader(f"{work}/base"), MinhashDedupFilter(f"{work}/remove"), PIIFormatter(),
          ParquetWriter(f"{out}/data", expand_metadata=True)], tasks),
    ]
    for i, (steps, n) in enumerate(stages):
        try:  # the task of a cut WARC file raises in datatrove's reader: the others go on, as in a real run
            LocalPipelineExecutor(steps, tasks=n, workers=1, logging_dir=f"{out}/logs/{i}").run()
        except Exception as err:  # noqa: BLE001 - reported, not fatal to the comparison
            print(f"datatrove stage {i}: {type(err).__name__}: {str(err)[:200]}", file=sys.stderr)


def score(bench: str, out: str) -> dict:
    report = os.path.join(out, "score.json")
    subprocess.run([sys.executable, os.path.join(bench, "score.py"), out, "--truth",
                    os.path.join(bench, "truth.jsonl"), "--json", report], check=True, stdout=subprocess.DEVNULL)
    with open(report, encoding="utf-8") as f:
        return json.load(f)


def lookup(report: dict, path: tuple) -> object:
    for key in path:
        report = report.get(key, {}) if isinstance(report, dict) else {}
    return report if report != {} else None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bench", default=os.path.join(ROOT, "..", "shared", "bench"),
                   help="folder with warc/, truth.jsonl and score.py")
    p.add_argument("--keep", help="keep both outputs under this folder (default: a temporary folder)")
    p.add_argument("--datatrove-child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    warc_dir = os.path.join(args.bench, "warc")
    if args.datatrove_child:
        run_datatrove(warc_dir, args.datatrove_child)
        return 0
    if not os.path.isfile(os.path.join(args.bench, "score.py")):
        raise SystemExit(f"no labeled benchmark at {args.bench} (needs warc/, truth.jsonl, score.py)")
    root = args.keep or tempfile.mkdtemp(prefix="headline-")
    ours, theirs = os.path.join(root, "ours"), os.path.join(root, "datatrove")
    subprocess.run([sys.executable, "-m", "pipelines.fineweb", "--warcs", os.path.join(warc_dir, "*.warc.gz"),
                    "--output", ours], cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-m", "benchmarks.bench_headline", "--bench", args.bench, "--datatrove-child",
                    theirs], cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    reports = score(args.bench, ours), score(args.bench, theirs)
    print(f"{'metric':<36}{'ours':>12}{'datatrove':>12}")
    for label, path in ROWS:
        a, b = (lookup(r, path) for r in reports)
        print(f"{label:<36}{str(a):>12}{str(b):>12}")
    print(f"\noutputs and score.json files: {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
