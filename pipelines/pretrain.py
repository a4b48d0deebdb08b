"""Stage 10: pre-train a GPT-2 on llm.c token shards.

    python -m pipelines.pretrain --data out/tokens --preset tiny --steps 200           # one process
    torchrun --standalone --nproc_per_node=8 -m pipelines.pretrain --data fineweb10B --preset gpt2 --compile

See docs/stage_10_pretrain.md for the flags, the log format and throughput figures.
"""

import argparse
from dataclasses import fields

from corpus.train.gpt import PRESETS, GPTConfig
from corpus.train.trainer import TrainConfig, train

# Per-preset training defaults. gpt2*: GPT-3 paper table 2.1 learning rates for the matching sizes, the
# 2**19 = 524,288-token batch and 700-step warmup of llm.c's 124M run, 19,073 steps = 10B tokens (one epoch
# of FineWeb-10B). tiny: a CPU-sized run that finishes in seconds.
FIELDS = ("lr", "batch_size", "total_batch_tokens", "warmup_steps", "steps", "eval_every", "val_tokens")
# fmt: off
TRAIN_DEFAULTS = {name: dict(zip(FIELDS, row, strict=True)) for name, row in {
    #               lr      B   tokens/step  warmup  steps   eval  val tokens (None: 8 micro-batches)
    "tiny":        (3e-3,   8,  None,        10,     100,    50,   None),
    "gpt2":        (6e-4,   32, 2**19,       700,    19_073, 250,  10_485_760),
    "gpt2-medium": (3e-4,   16, 2**19,       700,    19_073, 250,  10_485_760),
    "gpt2-large":  (2.5e-4, 8,  2**19,       700,    19_073, 250,  10_485_760),
    "gpt2-xl":     (2e-4,   4,  2**20,       700,    32_000, 250,  10_485_760),
}.items()}
# fmt: on


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--data", required=True, help="directory of llm.c shards ({name}_train_*.bin, {name}_val_*.bin)")
    a("--name", default=None, help="shard name prefix, e.g. fineweb (default: the only one in --data)")
    a("--out", default="out/train", help="directory for checkpoints (ckpt_<step>.pt) and metrics.jsonl")
    a("--log-dir", default=None, help="directory for log.txt (default: --out)")
    a("--preset", default="tiny", choices=sorted(PRESETS), help="model size and training defaults")
    a("--n-layer", type=int, default=None, help="override the preset's number of layers")
    a("--n-head", type=int, default=None, help="override the preset's number of attention heads")
    a("--n-embd", type=int, default=None, help="override the preset's embedding width")
    a("--seq-len", type=int, default=None, help="override the preset's sequence length T (= block size)")
    a(
        "--vocab-size",
        type=int,
        default=50257,
        help="tokenizer vocabulary (GPT-2: 50257; padded to a multiple of 64); shard ids must be below it",
    )
    a("--batch-size", type=int, default=None, help="micro-batch B (sequences) per process")
    a(
        "--total-batch-tokens",
        type=int,
        default=None,
        help="tokens per optimizer step; grad accumulation = this / (B*T*processes) (default: none)",
    )
    a("--steps", type=int, default=None, help="optimizer steps in the whole run")
    a("--lr", type=float, default=None, help="peak learning rate")
    a("--min-lr-frac", type=float, default=0.1, help="final learning rate as a fraction of the peak")
    a("--warmup-steps", type=int, default=None, help="linear warmup steps")
    a(
        "--schedule",
        default="cosine",
        choices=["cosine", "wsd"],
        help="decay after warmup: cosine, or "
        "warmup-stable-decay (constant, then linear decay over the last --decay-frac of the steps)",
    )
    a("--decay-frac", type=float, default=0.2, help="wsd: fraction of the steps spent decaying")
    a("--weight-decay", type=float, default=0.1, help="AdamW weight decay on 2-D parameters")
    a("--grad-clip", type=float, default=1.0, help="clip the global gradient norm to this (0 = off)")
    a("--eval-every", type=int, default=None, help="validation loss every this many steps (and at the end)")
    a("--val-tokens", type=int, default=None, help="tokens of the val shards evaluated (from their start)")
    a("--ckpt-every", type=int, default=None, help="checkpoint every this many steps (always at the end)")
    a("--keep-last", type=int, default=2, help="keep only the newest this many checkpoints")
    a("--resume", default=None, help="checkpoint path to continue from, or 'auto' for the newest in --out")
    a("--seed", type=int, default=1337, help="seed of the weight init (the data order is fixed)")
    a("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto = cuda if available")
    a(
        "--dtype",
        default="auto",
        choices=["auto", "bfloat16", "float32"],
        help="auto = bf16 autocast on CUDA, fp32 on CPU; bfloat16 = bf16 autocast on any device (CPU too)",
    )
    a(
        "--zero",
        action="store_true",
        help="shard the AdamW state over the processes (ZeRO-1): 8 bytes per parameter / processes; "
        "checkpoints stay whole, and resume with or without it",
    )
    a("--compile", action="store_true", help="torch.compile the model (GPU runs; first steps are slow)")
    a("--log-every", type=int, default=1, help="print a training line every this many steps")
    return p.parse_args(argv)


def build_config(args: argparse.Namespace) -> TrainConfig:
    shape = dict(PRESETS[args.preset])
    for key, flag in [
        ("vocab_size", args.vocab_size),
        ("n_layer", args.n_layer),
        ("n_head", args.n_head),
        ("n_embd", args.n_embd),
        ("block_size", args.seq_len),
    ]:
        if flag is not None:
            shape[key] = flag
    defaults = TRAIN_DEFAULTS[args.preset]
    pick = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in defaults.items()}
    if pick["val_tokens"] is None:
        pick["val_tokens"] = pick["batch_size"] * shape["block_size"] * 8  # 8 eval batches of one process
    direct = {
        f.name: getattr(args, f.name) for f in fields(TrainConfig) if f.name not in pick and f.name != "model"
    }
    direct["grad_clip"] = args.grad_clip or None  # 0 on the command line = off
    cfg = TrainConfig(model=GPTConfig(**shape), **direct, **pick)
    if cfg.keep_last < 1:
        raise ValueError("--keep-last must be >= 1 (the newest checkpoint is always kept)")
    return cfg


def main(argv=None) -> list[dict]:
    return train(build_config(parse_args(argv)))


if __name__ == "__main__":
    main()
