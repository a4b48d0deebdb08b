"""`make demo`: the whole path on the sample WARCs bundled in tests/data/, in about two minutes on a laptop CPU.

    python -m pipelines.demo [--output out] [--train-steps 100]

1. `pipelines.fineweb` on tests/data/sample-*.warc.gz → out/data/*.parquet, out/stats.json (the funnel is printed),
   GPT-2 token shards in llm.c's format → out/tokens/
2. `pipelines.tokenize --check out/tokens` validates the shards
3. `pipelines.pretrain --preset tiny` trains a 4-layer GPT on them on the CPU → out/train/
4. `pipelines.sample` prints what the model predicts, one token at a time, after a prompt.
The sample corpus is a few thousand tokens, so the model learns the corpus, not English: the point is the path.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--output", default="out", help="where everything is written (default out/)")
    p.add_argument("--train-steps", type=int, default=100, help="optimizer steps of the tiny CPU training run")
    p.add_argument("--workers", type=int, default=2, help="pipeline worker processes")
    args = p.parse_args(argv)
    out, tokens, train = args.output, os.path.join(args.output, "tokens"), os.path.join(args.output, "train")

    from pipelines import fineweb, pretrain, sample, tokenize

    start = time.perf_counter()
    print("== 1. FineWeb pipeline on the sample WARCs\n", flush=True)
    fineweb.main(["--output", out, "--tokens", tokens, "--workers", str(args.workers)])
    print("\n== 2. token shards check\n", flush=True)
    if tokenize.main(["--check", tokens]) != 0:
        raise SystemExit(f"the token shards in {tokens} failed their check (see above)")
    print("\n== 3. tiny GPT, CPU\n", flush=True)
    pretrain.main(["--data", tokens, "--preset", "tiny", "--steps", str(args.train_steps), "--out", train,
                   "--eval-every", str(max(1, args.train_steps // 3)), "--log-every", "25", "--device", "cpu"])
    print("\n== 4. sample (one token at a time, top-k 40, seed 1)\n", flush=True)
    sample.main(["--checkpoint", train, "--prompt", "The council", "--max-new-tokens", "40", "--seed", "1"])
    print(f"\ndone in {time.perf_counter() - start:.0f} s: Parquet {out}/data/, funnel {out}/stats.json, "
          f"shards {tokens}/, checkpoints {train}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
