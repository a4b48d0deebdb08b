"""Stage 6 (MinHash dedup): ours against datatrove's four MinHash stages on the same documents, in one command.

    python -m benchmarks.bench_dedup [--docs 3000] [--words 300] [--tasks 2] [--hash sha1]

Input: a synthetic corpus with planted near-duplicate clusters, exact copies and distinct template-sharing pairs
(corpus/dedup_synthetic.py), written as JSONL files (one per task). Both sides use FineWeb's configuration
(5-grams, 14 × 8, sha1 64-bit, spaCy English words) and the same chain: signatures (T tasks) → buckets
(datatrove: 14 tasks; ours: 15, one per band + the exact band) → clusters (1 task) → filter (T tasks, reads the
documents again and writes the survivors as JSONL). Each side runs in a fresh child process, every executor with
workers=1, so CPU seconds measure the work. Printed: wall, CPU, docs/s per core of the signature stage, peak RSS,
seconds per stage, planted clusters left with exactly one copy, and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_corpus(folder: str, docs: int, words: int, tasks: int, seed: int = 0) -> dict:
    from corpus.dedup_synthetic import synthetic_corpus

    per_cluster = 3.5
    corpus = synthetic_corpus(n_singletons=int(docs * 0.6), n_clusters=int(docs * 0.3 / per_cluster),
                              n_pairs=int(docs * 0.05), words=(words // 2, words * 3 // 2), seed=seed)
    os.makedirs(os.path.join(folder, "input"))
    for t in range(tasks):
        with open(os.path.join(folder, "input", f"{t:03d}.jsonl"), "w", encoding="utf-8") as f:
            f.writelines(json.dumps({"text": d.text, "id": d.id}) + "\n" for d in corpus[t::tasks])
    clusters: dict[str, list[str]] = {}
    for d in corpus:
        if d.cluster:
            clusters.setdefault(d.cluster, []).append(d.id)
    return {"docs": len(corpus), "clusters": clusters}


def side_stages(side: str, work: str, tasks: int, hash_fc: str) -> list[tuple[str, list, int]]:
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    def reader():
        return JsonlReader(os.path.join(work, "input"))

    out = JsonlWriter(os.path.join(work, "out"))
    if side == "ours":
        from corpus.dedup_minhash import (
            MinhashConfig,
            MinhashDedupFilter,
            MinhashSignatures,
            cluster_folder,
            minhash_dedup_stages,
        )

        cfg = MinhashConfig(hash_fc=hash_fc)
        sig = os.path.join(work, "sig")
        return [("signatures", [reader(), MinhashSignatures(sig, cfg)], tasks),
                *minhash_dedup_stages(cfg, sig, work),
                ("filter", [reader(), MinhashDedupFilter(cluster_folder(work)), out], tasks)]
    from datatrove.pipeline.dedup import (
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.utils.hashing import HashConfig

    cfg = MinhashConfig(hash_config=HashConfig(hash_fc=hash_fc, precision=64), num_buckets=14,
                        hashes_per_bucket=8, n_grams=5)  # datatrove examples/fineweb.py
    sig, buckets, remove = (os.path.join(work, x) for x in ("sig", "buckets", "remove_ids"))
    return [("signatures", [reader(), MinhashDedupSignature(sig, cfg)], tasks),
            ("buckets", [MinhashDedupBuckets(sig, buckets, config=cfg)], cfg.num_buckets),
            ("clusters", [MinhashDedupCluster(buckets, remove, config=cfg)], 1),
            ("filter", [reader(), MinhashDedupFilter(remove), out], tasks)]


def run_side(side: str, work: str, tasks: int, hash_fc: str) -> None:
    """Child process: run the four stages one after the other; write per-stage wall and CPU seconds."""
    from datatrove.executor import LocalPipelineExecutor

    timings = {}
    for name, steps, n in side_stages(side, work, tasks, hash_fc):
        wall, cpu = time.perf_counter(), time.process_time()
        LocalPipelineExecutor(steps, tasks=n, workers=1, logging_dir=os.path.join(work, "logs", name)).run()
        timings[name] = (round(time.perf_counter() - wall, 2), round(time.process_time() - cpu, 2))
    with open(os.path.join(work, "timings.json"), "w", encoding="utf-8") as f:
        json.dump(timings, f)


def measure(side: str, work: str, tasks: int, hash_fc: str, truth: dict) -> dict:
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_dedup", "--child", side, "--workdir", work,
                              "--tasks", str(tasks), "--hash", hash_fc], cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)  # this child's own CPU time and peak RSS
    wall = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(f"{side} side failed:\n{child.stderr.read().decode()[-3000:]}")
    with open(os.path.join(work, "timings.json"), encoding="utf-8") as f:
        stages = json.load(f)
    kept = _kept_ids(os.path.join(work, "out"))
    one = sum(sum(i in kept for i in ids) == 1 for ids in truth["clusters"].values())
    return {"side": side, "wall_s": round(wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "sig_docs_per_cpu_s": round(truth["docs"] / max(stages["signatures"][1], 1e-9), 1),
            "peak_rss_mb": round(usage.ru_maxrss / 1024), "stages": stages, "kept": kept,
            "clusters_one": one}


def _kept_ids(folder: str) -> set[str]:
    from datatrove.pipeline.readers import JsonlReader

    return {d.id for d in JsonlReader(folder).run()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=int, default=3000, help="documents in the synthetic corpus (about)")
    p.add_argument("--words", type=int, default=300, help="mean words per document")
    p.add_argument("--tasks", type=int, default=2, help="tasks of the signature and filter stages")
    p.add_argument("--hash", default="sha1", choices=("sha1", "xxhash"), help="shingle hash (FineWeb: sha1)")
    p.add_argument("--child", choices=("ours", "datatrove"), help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        run_side(args.child, args.workdir, args.tasks, args.hash)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        truth = write_corpus(tmp, args.docs, args.words, args.tasks)
        results = []
        for side in ("datatrove", "ours"):
            work = os.path.join(tmp, side)
            os.makedirs(work)
            os.symlink(os.path.join(tmp, "input"), os.path.join(work, "input"))
            results.append(measure(side, work, args.tasks, args.hash, truth))
    theirs, ours = results
    print(f"MinHash dedup, {truth['docs']} docs (~{args.words} words), {len(truth['clusters'])} planted clusters, "
          f"{args.tasks} tasks, hash {args.hash}, one core per side (workers=1)")
    for r in results:
        per_stage = "  ".join(f"{k} {w:.1f}/{c:.1f}" for k, (w, c) in r["stages"].items())
        print(f"{r['side']:>10}: wall {r['wall_s']:7.2f} s  CPU {r['cpu_s']:7.2f} s  signatures "
              f"{r['sig_docs_per_cpu_s']:8.1f} docs/s/core  peak RSS {r['peak_rss_mb']:5d} MB  kept {len(r['kept'])}"
              f"  clusters with one copy {r['clusters_one']}/{len(truth['clusters'])}")
        print(f"{'':>12}stage wall/CPU s: {per_stage}")
    in_clusters = {i for ids in truth["clusters"].values() for i in ids}
    differ = len((theirs["kept"] ^ ours["kept"]) - in_clusters)  # inside a cluster the keeper may differ
    print(f"ratio: wall {theirs['wall_s'] / ours['wall_s']:.2f}x faster, CPU {theirs['cpu_s'] / ours['cpu_s']:.2f}x "
          f"less, signatures {ours['sig_docs_per_cpu_s'] / theirs['sig_docs_per_cpu_s']:.2f}x docs/s per core, "
          f"peak RSS {ours['peak_rss_mb'] / theirs['peak_rss_mb']:.2f}x; docs outside planted clusters decided "
          f"differently: {differ}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
