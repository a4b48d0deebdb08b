"""Stage 6 on its own: MinHash near-duplicate removal over a FineWeb-style Parquet corpus you already have.

    python -m pipelines.dedup --parquet DIR --output OUT [--tasks N] [--minhash-bands 14 --minhash-rows 8 ...]

Reads every `*.parquet` under DIR (columns `text`, `id`, any others kept as they are), writes the survivors to
OUT/data/ as Parquet with one more column, `minhash_cluster_size`, and the dropped documents to
OUT/rejected/06_dedup/ (reason in metadata). Stages: A signatures (N tasks) → B1 buckets → B2 clusters → C filter
(N tasks); the same executor flags as pipelines.fineweb (local, Slurm, Ray).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field

from pipelines import executors


@dataclass(frozen=True)
class DedupRunConfig:
    parquet: str
    output: str
    text_column: str = "text"
    id_column: str = "id"
    tasks: int = 1
    minhash_bands: int = 14
    minhash_rows: int = 8
    minhash_ngram: int = 5
    hash_fc: str = "sha1"
    word_splitter: str = "spacy"
    ranges_per_band: int = 1
    executor: executors.ExecutorOptions = field(default_factory=executors.ExecutorOptions)

    def path(self, *parts: str) -> str:
        return os.path.join(self.output, *parts)


def stages(cfg: DedupRunConfig) -> list[tuple[str, list, int]]:
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.writers import JsonlWriter

    from corpus.dedup_minhash import (
        MinhashConfig,
        MinhashDedupFilter,
        MinhashSignatures,
        cluster_folder,
        minhash_dedup_stages,
    )
    from corpus.write_parquet import AtomicParquetWriter

    mh = MinhashConfig(n_grams=cfg.minhash_ngram, bands=cfg.minhash_bands, rows=cfg.minhash_rows,
                       hash_fc=cfg.hash_fc, word_splitter=cfg.word_splitter)
    sig, work = cfg.path("work", "signatures"), cfg.path("work")

    def reader():
        return ParquetReader(cfg.parquet, glob_pattern="**/*.parquet", text_key=cfg.text_column,
                             id_key=cfg.id_column)

    rejected = JsonlWriter(cfg.path("rejected", "06_dedup"))
    return [
        ("A_signatures", [reader(), MinhashSignatures(sig, mh)], cfg.tasks),
        *[(f"B{i}_{name}", steps, n) for i, (name, steps, n) in
          enumerate(minhash_dedup_stages(mh, sig, work, cfg.ranges_per_band), 1)],
        ("C_filter", [reader(), MinhashDedupFilter(cluster_folder(work), exclusion_writer=rejected),
                      AtomicParquetWriter(cfg.path("data"), expand_metadata=True)], cfg.tasks),
    ]


def parse_args(argv=None) -> DedupRunConfig:
    p = argparse.ArgumentParser(prog="python -m pipelines.dedup", description=__doc__.split("\n\n")[0])
    p.add_argument("--parquet", required=True, help="folder of input *.parquet files (searched recursively)")
    p.add_argument("--output", required=True, help="output folder: data/, rejected/, work/, logs/")
    p.add_argument("--text-column", default="text", help="column holding the document text")
    p.add_argument("--id-column", default="id", help="column holding the unique document id (WARC-Record-ID)")
    p.add_argument("--minhash-bands", type=int, default=14, help="LSH bands (FineWeb 14)")
    p.add_argument("--minhash-rows", type=int, default=8, help="hashes per band (FineWeb 8)")
    p.add_argument("--minhash-ngram", type=int, default=5, help="word n-gram shingles (FineWeb 5)")
    p.add_argument("--hash", dest="hash_fc", choices=("sha1", "xxhash"), default="sha1",
                   help="64-bit shingle hash (FineWeb sha1; xxhash is faster, gives other signatures)")
    p.add_argument("--word-splitter", choices=("spacy", "whitespace"), default="spacy",
                   help="spacy = datatrove's English words (FineWeb); whitespace = str.split, no spaCy")
    p.add_argument("--ranges-per-band", type=int, default=1,
                   help="split each band's key space over this many bucket tasks (memory: 16 B/doc/range)")
    executors.add_executor_args(p, tasks_default="1")
    args = p.parse_args(argv)
    opts = executors.executor_options_from_args(args)
    return DedupRunConfig(
        parquet=args.parquet, output=args.output, text_column=args.text_column, id_column=args.id_column,
        tasks=args.tasks or 1, minhash_bands=args.minhash_bands, minhash_rows=args.minhash_rows,
        minhash_ngram=args.minhash_ngram, hash_fc=args.hash_fc, word_splitter=args.word_splitter,
        ranges_per_band=args.ranges_per_band, executor=opts,
    )


def main(argv=None) -> int:
    cfg = parse_args(argv)
    if not os.path.isdir(cfg.parquet):
        raise SystemExit(f"--parquet {cfg.parquet}: not a folder; pass the folder that holds the *.parquet files")
    executors.run_recipe(cfg.executor, stages(cfg), cfg.path("logs"))
    stats_file = os.path.join(cfg.path("work", "clusters"), "stats.json")
    if os.path.exists(stats_file):
        with open(stats_file, encoding="utf-8") as f:
            print(json.dumps(json.load(f), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
