"""Stage 9 (Parquet documents → llm.c token shards): ours against llm.c's dev/data/fineweb.py, in one command.

    python -m benchmarks.bench_tokens [--mb 30] [--workers 1 2] [--repeat 3]

Both sides read the same Parquet files (8 files of English web-article text, ~30 MB, made from the bench's
reference texts) and write shards. Each measurement runs in a fresh child process; the tokenizer is built
before the clock starts on both sides (llm.c builds it at import time).

- llm.c: its method reimplemented faithfully: the parent iterates the rows, `mp.Pool(N).imap(tokenize, docs,
  chunksize=16)` where `tokenize` is `[eot] + enc.encode_ordinary(text)` → `np.array` → range assert →
  `astype(uint16)`, copied into a preallocated shard buffer and written by `write_datafile` (np.array + tobytes).
- ours: N forked tasks, each running exactly the pipeline's steps for its rank (datatrove ParquetReader →
  TokenizeDocuments), then MergeTokenShards in the parent. datatrove's executor start-up (a forkserver and
  imports per worker, ~1-2 s a stage, independent of the data size) is left out; `pipelines.tokenize` pays it.

Printed: tokens/s (wall), CPU seconds of all processes, tokens per CPU second ("per core") and tokens/s per
worker; ratios ours / llm.c. The output token histograms of both sides are compared (same tokens, other order).
"""

from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing as mp
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_TRUTH = os.path.join(ROOT, "..", "shared", "bench", "truth.jsonl")


def paragraphs() -> list[str]:
    """English paragraphs: the bench's reference article texts, else this repository's Markdown files."""
    if os.path.exists(BENCH_TRUTH):
        with open(BENCH_TRUTH, encoding="utf-8") as f:
            rows = [json.loads(line) for line in f]
        texts = [
            r["reference_text"] for r in rows if r.get("reference_text") and r["expected_language"] == "en"
        ]
    else:
        docs = [os.path.join(ROOT, "docs", f) for f in sorted(os.listdir(os.path.join(ROOT, "docs")))]
        texts = [
            Path(p).read_text(encoding="utf-8")
            for p in [os.path.join(ROOT, "README.md"), *docs]
            if p.endswith(".md")
        ]
    return [p for t in texts for p in t.split("\n") if p.strip()]


def make_corpus(folder: str, mb: float, files: int = 8) -> None:
    """Documents of 1-12 random paragraphs (mean ~2.6 KB, close to FineWeb's), uuid-like ids, seeded."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.makedirs(folder, exist_ok=True)
    paras, rng = paragraphs(), random.Random(0)
    docs, size = [], 0
    while size < mb * 1e6:
        docs.append("\n".join(rng.choice(paras) for _ in range(rng.randint(1, 12))))
        size += len(docs[-1])
    ids = [f"<urn:uuid:{rng.getrandbits(128):032x}>" for _ in docs]
    for k in range(files):
        pq.write_table(
            pa.table({"text": docs[k::files], "id": ids[k::files]}), f"{folder}/part-{k:02d}.parquet"
        )


def cpu_seconds() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


# --- llm.c dev/data/fineweb.py + data_common.py:write_datafile, as written there (module-level enc, fork) ---
ENC = None


def llmc_tokenize(doc):
    eot = ENC._special_tokens["<|endoftext|>"]
    tokens = [eot]  # the special <|endoftext|> token delimits all documents
    tokens.extend(ENC.encode_ordinary(doc["text"]))
    tokens_np = np.array(tokens)
    assert (0 <= tokens_np).all() and (tokens_np < 2**16).all(), "token dictionary too large for uint16"
    return tokens_np.astype(np.uint16)


def llmc_write_datafile(filename, toks):
    header = np.zeros(256, dtype=np.int32)
    header[0], header[1], header[2] = 20240520, 1, len(toks)
    toks_np = np.array(toks, dtype=np.uint16)
    with open(filename, "wb") as f:
        f.write(header.tobytes())
        f.write(toks_np.tobytes())


def run_llmc(corpus: str, out: str, workers: int, shard_size: int = 10**8) -> None:
    import pyarrow.parquet as pq

    def rows():  # what iterating a HF dataset yields: one dict per row, in file order
        for name in sorted(os.listdir(corpus)):
            for batch in pq.ParquetFile(os.path.join(corpus, name)).iter_batches(columns=["text", "id"]):
                yield from batch.to_pylist()

    with mp.get_context("fork").Pool(workers) as pool:
        shard_index, token_count = 0, 0
        all_tokens_np = np.empty((shard_size,), dtype=np.uint16)
        for tokens in pool.imap(llmc_tokenize, rows(), chunksize=16):
            if token_count + len(tokens) < shard_size:
                all_tokens_np[token_count : token_count + len(tokens)] = tokens
                token_count += len(tokens)
            else:
                split = "val" if shard_index == 0 else "train"
                remainder = shard_size - token_count
                all_tokens_np[token_count : token_count + remainder] = tokens[:remainder]
                llmc_write_datafile(f"{out}/fineweb_{split}_{shard_index:06d}.bin", all_tokens_np)
                shard_index += 1
                all_tokens_np[0 : len(tokens) - remainder] = tokens[remainder:]
                token_count = len(tokens) - remainder
        if token_count != 0:
            split = "val" if shard_index == 0 else "train"
            llmc_write_datafile(f"{out}/fineweb_{split}_{shard_index:06d}.bin", all_tokens_np[:token_count])


# --- ours: the pipeline's steps per rank (as a datatrove task runs them), then the merge ---
def _our_rank(corpus: str, work: str, rank: int, world: int) -> None:
    from corpus.write_tokens import TokenizeDocuments
    from pipelines.tokenize import parquet_reader

    docs = parquet_reader(corpus)(None, rank, world)
    for _ in TokenizeDocuments(work)(docs, rank, world):
        pass


def run_ours(corpus: str, out: str, workers: int) -> None:
    from corpus.write_token_shards import merge_token_shards

    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_our_rank, args=(corpus, f"{out}/work", r, workers)) for r in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode:
            raise RuntimeError(f"task exited with {p.exitcode}")
    merge_token_shards(f"{out}/work", out, val_tokens=None, min_shard_tokens=1)


def encode_only(corpus: str) -> dict:
    """The ceiling of any tiktoken-based writer: encode_ordinary over texts already in memory, nothing else."""
    import pyarrow.parquet as pq

    texts = [
        t
        for f in sorted(os.listdir(corpus))
        for t in pq.read_table(f"{corpus}/{f}").column("text").to_pylist()
    ]
    t0, c0 = time.perf_counter(), cpu_seconds()
    n = sum(len(ENC.encode_ordinary(t)) + 1 for t in texts)
    return {
        "side": "encode",
        "workers": 1,
        "tokens": n,
        "wall_s": time.perf_counter() - t0,
        "cpu_s": cpu_seconds() - c0,
    }


def child(side: str, corpus: str, workers: int) -> dict:
    global ENC
    from corpus.tokenizer import gpt2_encoding

    ENC = gpt2_encoding()  # llm.c: tiktoken.get_encoding("gpt2") at import; ours: the same cached object
    # imported before the clock on both sides, as llm.c's script imports everything at start-up
    for module in (
        "pyarrow.parquet",
        "datatrove.pipeline.readers",
        "corpus.write_tokens",
        "pipelines.tokenize",
    ):
        importlib.import_module(module)
    if side == "encode":
        return encode_only(corpus)
    out = tempfile.mkdtemp(prefix=f"bench_tokens_{side}_")
    t0, c0 = time.perf_counter(), cpu_seconds()
    (run_llmc if side == "llmc" else run_ours)(corpus, out, workers)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    tokens = np.concatenate([np.fromfile(f"{out}/{f}", dtype="<u2", offset=1024)
                             for f in sorted(os.listdir(out)) if f.endswith(".bin")])  # fmt: skip
    hist = np.bincount(tokens, minlength=2**16)
    subprocess.run(["rm", "-rf", out], check=True)
    return {"side": side, "workers": workers, "tokens": len(tokens), "wall_s": wall, "cpu_s": cpu,
            "hist_sha": __import__("hashlib").sha1(hist.tobytes()).hexdigest()}  # fmt: skip


def measure(side: str, corpus: str, workers: int) -> dict:
    """One run in a fresh process, so that neither side profits from the other's warm caches or memory."""
    cmd = [sys.executable, "-m", "benchmarks.bench_tokens", "--child", side, corpus, str(workers)]
    return json.loads(subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout)


def best(runs: list[dict]) -> dict:
    """The least disturbed run: shortest wall time and, separately, fewest CPU seconds (other load on the machine
    only ever adds to both)."""
    return min(runs, key=lambda r: r["wall_s"]) | {"cpu_s": min(r["cpu_s"] for r in runs)}


def report(r: dict) -> str:
    return (f"{r['side']:>6} x{r['workers']}: {r['tokens'] / r['wall_s'] / 1e6:6.2f} M tok/s wall, "
            f"cpu {r['cpu_s']:5.2f} s, "
            f"{r['tokens'] / r['cpu_s'] / 1e6:5.2f} M tok per cpu-s, "
            f"{r['tokens'] / r['wall_s'] / r['workers'] / 1e6:5.2f} M tok/s per worker")  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_tokens", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--mb", type=float, default=30, help="MB of document text to generate")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to measure")
    p.add_argument("--repeat", type=int, default=3, help="runs per measurement (the fastest is kept)")
    p.add_argument("--child", nargs=3, metavar=("SIDE", "CORPUS", "WORKERS"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], int(args.child[2]))))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench_tokens_") as corpus:
        make_corpus(corpus, args.mb)
        print(
            f"stage 9 on {args.mb:.0f} MB of text in 8 Parquet files; {os.cpu_count()} CPUs, load average "
            f"{os.getloadavg()[0]:.1f} (other work on the machine slows both sides); best of {args.repeat}"
        )
        runs = {(side, w): [] for w in args.workers for side in ("llmc", "ours")} | {("encode", 1): []}
        for _ in range(args.repeat):  # interleaved, so that a burst of other load hits both sides alike
            for (side, w), side_runs in runs.items():
                side_runs.append(measure(side, corpus, w))
        results = {key: best(r) for key, r in runs.items()}
        ceiling = results.pop(("encode", 1))
        for r in results.values():
            print(report(r))
    print(
        f"tiktoken encode_ordinary alone, texts in memory, 1 process: "
        f"{ceiling['tokens'] / ceiling['cpu_s'] / 1e6:.2f} M tok per cpu-s (the ceiling for any tiktoken writer)"
    )
    base = results["llmc", args.workers[0]]
    if any(r["hist_sha"] != base["hist_sha"] or r["tokens"] != base["tokens"] for r in results.values()):
        print("ERROR: the two sides wrote different tokens")
        return 1
    print(f"same {base['tokens']:,} tokens on both sides (token histograms equal; order differs by design)")
    for w in args.workers:
        ours, llmc = results["ours", w], results["llmc", w]
        print(
            f"ratio ours/llm.c at {w} worker(s): per core (tokens per cpu-s) "
            f"{llmc['cpu_s'] / ours['cpu_s']:.2f}x, per worker (wall) {llmc['wall_s'] / ours['wall_s']:.2f}x"
        )
    for side in ("llmc", "ours"):
        if len(args.workers) > 1:
            lo, hi = results[side, args.workers[0]], results[side, args.workers[-1]]
            print(
                f"{side} scaling {args.workers[0]} -> {args.workers[-1]} workers: {lo['wall_s'] / hi['wall_s']:.2f}x"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
