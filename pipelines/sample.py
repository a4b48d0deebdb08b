"""Sample text from a stage-10 checkpoint, one token at a time.

    python -m pipelines.sample --checkpoint out/train/ckpt_0000200.pt --prompt "The history of" \
        --max-new-tokens 64 --temperature 0.8 --top-k 40 --seed 42

The prompt is encoded with the GPT-2 tokenizer (corpus.tokenizer.gpt2_encoding, offline) and preceded by
<|endoftext|> (50256), because every training document starts after one (EOT is prepended, llm.c style).
"""

import argparse
import os
from dataclasses import dataclass

import torch

from corpus.train import checkpoint
from corpus.train.gpt import GPT, GPTConfig

EOT = 50256


@dataclass(frozen=True)
class SampleConfig:
    checkpoint: str
    prompt: str = ""
    max_new_tokens: int = 64
    temperature: float = 1.0
    top_k: int | None = 40  # llm.c samples with top-k 40
    seed: int | None = None
    num_samples: int = 1
    device: str = "cpu"


def load_model(path: str, device: str = "cpu") -> GPT:
    """A checkpoint file, or a directory: its newest ckpt_<step>.pt."""
    if os.path.isdir(path):
        path = checkpoint.latest(path) or os.path.join(path, "ckpt_*.pt")
    ck = checkpoint.load(path)
    model = GPT(GPTConfig(**ck["model_config"]))
    model.load_state_dict(ck["model"])
    return model.to(device).eval()


def sample_tokens(model: GPT, prompt_ids: list[int], cfg: SampleConfig) -> list[list[int]]:
    """num_samples continuations (new tokens only); the same seed gives the same tokens."""
    gen = torch.Generator(device=cfg.device)
    gen.manual_seed(cfg.seed) if cfg.seed is not None else gen.seed()
    idx = torch.tensor([[EOT, *prompt_ids]] * cfg.num_samples, dtype=torch.long, device=cfg.device)
    out = model.generate(idx, cfg.max_new_tokens, cfg.temperature, cfg.top_k, generator=gen)
    return out[:, idx.size(1) :].tolist()


def sample(cfg: SampleConfig) -> list[str]:
    from corpus.tokenizer import gpt2_encoding  # tiktoken's GPT-2 BPE from packaged files (no network)

    enc = gpt2_encoding()
    model = load_model(cfg.checkpoint, cfg.device)
    outs = sample_tokens(model, enc.encode_ordinary(cfg.prompt), cfg)
    return [cfg.prompt + enc.decode(ids) for ids in outs]


def main(argv=None) -> list[str]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--checkpoint",
        required=True,
        help="a ckpt_<step>.pt from pipelines.pretrain, or its --out directory (newest)",
    )
    p.add_argument("--prompt", default="", help="text to continue (empty: start a new document)")
    p.add_argument("--max-new-tokens", type=int, default=64, help="tokens to generate per sample")
    p.add_argument("--temperature", type=float, default=1.0, help="softmax temperature; 0 = greedy")
    p.add_argument("--top-k", type=int, default=40, help="sample among the k most likely tokens (0 = all)")
    p.add_argument("--seed", type=int, default=None, help="seed for reproducible samples (default: random)")
    p.add_argument("--num-samples", type=int, default=1, help="independent samples to print")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    a = p.parse_args(argv)
    cfg = SampleConfig(
        a.checkpoint,
        a.prompt,
        a.max_new_tokens,
        a.temperature,
        a.top_k or None,
        a.seed,
        a.num_samples,
        a.device,
    )
    texts = sample(cfg)
    for i, text in enumerate(texts):
        print(f"--- sample {i} ---\n{text}")
    return texts


if __name__ == "__main__":
    main()
