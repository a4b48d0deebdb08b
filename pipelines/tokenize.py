"""Stage 9 on its own: FineWeb-style Parquet (a `text` column) → GPT-2 token shards in llm.c's `.bin` format.

    python -m pipelines.tokenize --parquet out/data --out out/tokens               # our pipeline's Parquet
    python -m pipelines.tokenize --parquet fineweb/sample/10BT --out fineweb10B --tasks 16 --workers 16
    python -m pipelines.tokenize --check out/tokens                                # validate shards + manifest

Two datatrove stages: every task tokenizes its share of the Parquet files (TokenizeDocuments), then one task
merges them into `{name}_val_000000.bin`, `{name}_train_000001.bin`, ... in document-id order, so the bytes do
not depend on --tasks/--workers (docs/formats.md, "Token shards"). A rerun resumes: finished tasks are skipped
(datatrove's completions/ markers) and an up-to-date merge returns at once.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass, field

from pipelines import executors


@dataclass(frozen=True)
class TokenizeConfig:
    parquet: str
    out: str
    name: str = "fineweb"
    glob: str = "**/*.parquet"
    text_column: str = "text"
    id_column: str = "id"
    tokenizer: str = "gpt2"
    shard_tokens: int = 100_000_000  # llm.c dev/data/fineweb.py --shard_size
    val_tokens: int | None = 10_485_761  # modded-nanogpt's val loop reads 10,485,760 tokens + 1 target
    min_shard_tokens: int = 8 * 64 * 1024 + 1  # llm.c loaders: every shard >= world*B*T + 1
    executor: executors.ExecutorOptions = field(default_factory=executors.ExecutorOptions)

    @property
    def tasks(self) -> int:
        return self.executor.tasks or os.cpu_count() or 1

    def merge_kwargs(self) -> dict:
        return {"name": self.name, "shard_tokens": self.shard_tokens, "val_tokens": self.val_tokens,
                "min_shard_tokens": self.min_shard_tokens, "tokenizer": self.tokenizer}  # fmt: skip

    def work(self, kind: str) -> str:
        """Per-setting folders: a rerun with other --tasks or --tokenizer must not mix with the old task files,
        and a merge with other shard settings must not be skipped as "completed" by datatrove."""
        if kind == "merge":
            digest = hashlib.sha1(json.dumps(self.merge_kwargs(), sort_keys=True).encode()).hexdigest()[:10]
            return os.path.join(self.out, "logs", f"merge_{digest}")
        run = f"{self.tokenizer}_{self.tasks}tasks"
        return os.path.join(self.out, "work" if kind == "tokens" else "logs", f"tokenize_{run}")


def parquet_reader(folder: str, glob: str = "**/*.parquet", text: str = "text", doc_id: str = "id"):
    """datatrove's ParquetReader reading only the text and id columns, without resolving the file path of every
    document into its metadata (that costs ~10% of the stage, and the shards do not need it)."""
    from datatrove.pipeline.readers import ParquetReader

    reader = ParquetReader(folder, glob_pattern=glob, text_key=text, id_key=doc_id, read_metadata=False)
    reader.add_file_path = False  # a BaseDiskReader option that ParquetReader.__init__ does not expose
    return reader


def build(cfg: TokenizeConfig):
    """The two datatrove stages, the merge depending on the tokenization."""
    from corpus.write_token_shards import MergeTokenShards
    from corpus.write_tokens import TokenizeDocuments

    read = parquet_reader(cfg.parquet, cfg.glob, cfg.text_column, cfg.id_column)
    tokenize = executors.make_executor(
        cfg.executor, [read, TokenizeDocuments(cfg.work("tokens"), tokenizer=cfg.tokenizer)],
        name="tokenize", tasks=cfg.tasks, logging_dir=cfg.work("logs"),
    )  # fmt: skip
    merge = MergeTokenShards(cfg.work("tokens"), cfg.out, **cfg.merge_kwargs())
    return executors.make_executor(
        cfg.executor, [merge], name="merge_tokens", tasks=1, logging_dir=cfg.work("merge"), depends=tokenize
    )


def check_columns(cfg: TokenizeConfig) -> None:
    """Fail before any task starts when --parquet holds no file or the first one lacks the text or id column."""
    import pyarrow.parquet as pq
    from datatrove.io import get_datafolder

    folder = get_datafolder(cfg.parquet)
    files = folder.list_files(glob_pattern=cfg.glob)
    if not files:
        raise SystemExit(f"error: no file matches {cfg.glob!r} under {cfg.parquet}; check --parquet / --glob")
    with folder.open(files[0], "rb") as f:
        columns = pq.ParquetFile(f).schema_arrow.names
    for flag, column in (("--text-column", cfg.text_column), ("--id-column", cfg.id_column)):
        if column not in columns:
            raise SystemExit(f"error: {files[0]} has no column {column!r} (it has {columns}); set {flag}")


def check(folder: str) -> int:
    """Print what is wrong with the shards in `folder`, in words; 1 if anything is."""
    from corpus.token_shards import check_dir

    problems, warnings = check_dir(folder)
    for w in warnings:
        print(f"warning: {w}")
    for p in problems:
        print(f"PROBLEM: {p}")
    print(
        f"{folder}: {'NOT usable' if problems else 'OK'} ({len(problems)} problem(s), {len(warnings)} warning(s))"
    )
    return 1 if problems else 0


def parse_args(argv=None) -> TokenizeConfig | str:
    p = argparse.ArgumentParser(prog="python -m pipelines.tokenize", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--check",
        metavar="DIR",
        help="only validate the shards and manifest.json in DIR (exit 1 on problems)",
    )
    p.add_argument("--parquet", help="folder of Parquet files with a text column (local path or fsspec URL)")
    p.add_argument("--out", help="output folder for the .bin shards and manifest.json")
    p.add_argument(
        "--name", default="fineweb", help="shard name prefix: NAME_val_000000.bin, NAME_train_000001.bin"
    )
    p.add_argument("--glob", default="**/*.parquet", help="which files under --parquet to read")
    p.add_argument("--text-column", default="text", help="the Parquet column holding the document text")
    p.add_argument(
        "--id-column", default="id", help="the Parquet column holding the document id (the sort key)"
    )
    p.add_argument("--tokenizer", default="gpt2",
                   help="tiktoken encoding; gpt2 is built offline, others must be in tiktoken's cache; "
                        "> 65,536 tokens is refused (uint16 shards)")  # fmt: skip
    p.add_argument("--shard-tokens", type=int, default=100_000_000, help="tokens per shard (llm.c: 1e8)")
    p.add_argument("--val-tokens", type=int, default=10_485_761,
                   help="validation budget: whole documents from the start of the order until this many "
                        "tokens (at most 10%% of the corpus); 0 = no val shard")  # fmt: skip
    p.add_argument("--min-shard-tokens", type=int, default=8 * 64 * 1024 + 1,
                   help="a last shard smaller than this is folded into the one before it "
                        "(llm.c asserts world*B*T+1 tokens per shard; default 8 GPUs x 64 x 1024 + 1)")  # fmt: skip
    executors.add_executor_args(p, tasks_default="the CPU count")
    args = p.parse_args(argv)
    if args.check:
        return args.check
    if not args.parquet or not args.out:
        p.error("give --parquet DIR and --out DIR (or --check DIR)")
    if args.shard_tokens < 1 or args.val_tokens < 0 or args.min_shard_tokens < 1:
        p.error("--shard-tokens and --min-shard-tokens must be >= 1, --val-tokens >= 0")
    return TokenizeConfig(
        parquet=args.parquet, out=args.out, name=args.name, glob=args.glob, text_column=args.text_column,
        id_column=args.id_column, tokenizer=args.tokenizer, shard_tokens=args.shard_tokens,
        val_tokens=args.val_tokens or None, min_shard_tokens=args.min_shard_tokens,
        executor=executors.executor_options_from_args(args),
    )  # fmt: skip


def main(argv=None) -> int:
    cfg = parse_args(argv)
    if isinstance(cfg, str):
        return check(cfg)
    from corpus.tokenizer import OfflineTokenizerError, check_uint16, get_encoding

    try:
        check_uint16(get_encoding(cfg.tokenizer))  # fail before any task starts
    except (OfflineTokenizerError, ValueError) as e:
        raise SystemExit(f"error: --tokenizer {cfg.tokenizer}: {e}") from None
    check_columns(cfg)
    os.makedirs(cfg.out, exist_ok=True)
    print(json.dumps(asdict(cfg), default=str), file=sys.stderr)
    executors.run_and_wait(cfg.executor, build(cfg))
    if executors.blocks(cfg.executor):
        return check(cfg.out)
    print(
        f"submitted; when the jobs finish, `python -m pipelines.tokenize --check {cfg.out}` validates the shards"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
