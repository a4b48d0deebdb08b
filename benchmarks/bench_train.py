"""Stage 10 benchmark: training throughput (tokens/s) and MFU of our GPT step against a naive baseline step,
on the device at hand, plus scaling with the number of processes through the real trainer (torchrun).

    python -m benchmarks.bench_train                                   # GPU: 124M, T=1024; CPU: a small model
    python -m benchmarks.bench_train --scaling 1,2,4,8                  # + torchrun nproc 1..8 (GPUs)

Step = forward + backward + grad clip + AdamW on random tokens; warm-up steps (compile) are not timed.
ours: fused SDPA attention (flash on GPU), vocab padded to 50304, on CUDA bf16 autocast + fused AdamW +
torch.compile. baseline: the same model with explicit masked-softmax attention, vocab 50257, fp32 (TF32 off),
foreach AdamW, no compile (nanoGPT's slow path / build-nanogpt's starting point). MFU uses one FLOPs/token
for both (llm.c convention 6N+6LCT of our model) and the device's dense bf16 peak; "n/a" on CPU.
Scaling runs `pipelines.pretrain` on synthetic shards and reads tokens/s from its metrics.jsonl. Sampling
compares generate() with its KV cache against re-running the sequence for every token (nanoGPT's sample.py).
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import types

import numpy as np
import torch

from corpus.token_shards import write_shard
from corpus.train import device
from corpus.train.gpt import GPT, PRESETS, GPTConfig
from corpus.train.optim import make_optimizer

CPU_SHAPE = {
    "n_layer": 2,
    "n_head": 4,
    "n_embd": 128,
    "block_size": 128,
}  # a 124M step takes ~1 min on 2 cores


def sync(dev) -> None:
    """Wait for the device's queued work, so that a timer reads finished steps (a no-op on CPU)."""
    if dev.type == "cuda":
        torch.cuda.synchronize()


def manual_attention(self, x, cache=None):  # noqa: ARG001 - the KV cache is for sampling only
    """nanoGPT's pre-flash path: materialise the (T, T) scores, mask, softmax."""
    B, T, C = x.size()
    q, k, v = self.c_attn(x).split(C, dim=2)
    q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
    att = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))
    mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
    att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
    return self.c_proj((att @ v).transpose(1, 2).contiguous().view(B, T, C))


def build(shape: dict, dev, baseline: bool, compile_: bool):
    cfg = GPTConfig(**shape, pad_vocab_to=1 if baseline else 64)
    torch.manual_seed(0)
    model = GPT(cfg).to(dev)
    if baseline:
        for block in model.transformer.h:
            block.attn.forward = types.MethodType(manual_attention, block.attn)
    opt = make_optimizer(model, 6e-4, 0.1, fused=False if baseline else None)
    fwd = torch.compile(model) if compile_ and not baseline else model
    return model, fwd, opt


def time_steps(shape: dict, B: int, dev, baseline: bool, compile_: bool, steps: int, warmup: int) -> float:
    """Mean tokens/s over `steps` timed training steps after `warmup` untimed ones."""
    torch.set_float32_matmul_precision("highest" if baseline else "high")  # TF32 off for the baseline
    model, fwd, opt = build(shape, dev, baseline, compile_)
    T = shape["block_size"]
    x = torch.randint(0, 50257, (B, T), device=dev)
    y = torch.randint(0, 50257, (B, T), device=dev)
    for i in range(warmup + steps):
        if i == warmup:
            sync(dev)
            t0 = time.perf_counter()
        with device.autocast(dev, "float32" if baseline else "auto"):
            _, loss = fwd(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    loss.item()  # waits for the device
    return steps * B * T / (time.perf_counter() - t0)


def mfu(tps: float, fpt: float, peak: float | None, world: int = 1) -> str:
    return f"{100 * tps * fpt / (peak * world):5.1f}%" if peak else "  n/a"


def single(args, dev) -> dict:
    shape = dict(PRESETS["gpt2"]) if dev.type == "cuda" else dict(CPU_SHAPE)
    if args.seq_len:
        shape["block_size"] = args.seq_len
    B = args.batch_size or (16 if dev.type == "cuda" else 4)
    with torch.device("meta"):
        fpt = GPT(GPTConfig(**shape)).flops_per_token(shape["block_size"])
    peak = device.peak_flops(dev)
    print(
        f"device {device.device_name(dev)} | torch {torch.__version__} | model {shape} | B={B} | "
        f"{fpt / 1e9:.4f} GFLOP/token | peak {peak / 1e12 if peak else 'n/a'} TFLOP/s"
    )
    compile_ = dev.type == "cuda" and not args.no_compile
    base = time_steps(shape, B, dev, True, False, args.steps, args.warmup)
    ours = time_steps(shape, B, dev, False, compile_, args.steps, args.warmup + (5 if compile_ else 0))
    print(f"{'run':9s} {'tokens/s':>12s} {'MFU':>6s}")
    print(f"{'baseline':9s} {base:12,.0f} {mfu(base, fpt, peak)}")
    print(f"{'ours':9s} {ours:12,.0f} {mfu(ours, fpt, peak)}   compile={compile_}")
    print(f"ratio ours/baseline: {ours / base:.2f}x")
    return {
        "device": device.device_name(dev),
        "torch": torch.__version__,
        "model": shape,
        "batch_size": B,
        "compile": compile_,
        "baseline_tok_s": base,
        "ours_tok_s": ours,
        "ratio": ours / base,
        "mfu_ours": ours * fpt / peak if peak else None,
    }


def sampling(args, dev) -> dict:
    """Sampling tokens/s of generate() with the KV cache against re-running the whole sequence per token
    (nanoGPT's sample.py), same model and seed; the two must produce the same tokens."""
    shape = dict(PRESETS["gpt2"]) if dev.type == "cuda" else dict(CPU_SHAPE)
    torch.manual_seed(0)
    model = GPT(GPTConfig(**shape)).to(dev).eval()
    prompt = torch.randint(0, 50257, (1, 10), device=dev)
    new = min(args.sample_tokens, shape["block_size"] - prompt.size(1))
    rates, outs = {}, {}
    for name, cache in (("re-run", False), ("kv cache", True)):
        gen = torch.Generator(device=dev).manual_seed(0)
        with device.autocast(dev):
            model.generate(prompt, 2, 1.0, 40, gen, use_cache=cache)  # warm-up
            sync(dev)
            t0 = time.perf_counter()
            outs[name] = model.generate(prompt, new, 1.0, 40, gen.manual_seed(0), use_cache=cache)
            sync(dev)
        rates[name] = new / (time.perf_counter() - t0)
    same = torch.equal(outs["re-run"], outs["kv cache"])
    print(f"sampling {new} tokens: re-run {rates['re-run']:,.1f} tok/s, kv cache {rates['kv cache']:,.1f} tok/s "
          f"({rates['kv cache'] / rates['re-run']:.2f}x), same tokens: {same}")
    return {"new_tokens": new, "rerun_tok_s": rates["re-run"], "cache_tok_s": rates["kv cache"], "same": same}


def scaling(args, dev, nprocs: list[int]) -> list[dict]:
    """tokens/s of the real trainer (torchrun + DDP + loader) for each process count (on CUDA: one GPU each,
    so counts above the GPUs present are left out, with a line that says so)."""
    preset = "gpt2" if dev.type == "cuda" else "tiny"
    gpus = torch.cuda.device_count() if dev.type == "cuda" else None
    if gpus is not None and max(nprocs) > gpus:
        print(f"{gpus} GPU(s) here: leaving out nproc {[n for n in nprocs if n > gpus]}")
        nprocs = [n for n in nprocs if n <= gpus]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tokens = np.random.default_rng(0).integers(0, 50257, 40_000_000 if dev.type == "cuda" else 200_000)
        write_shard(os.path.join(tmp, "bench_train_000001.bin"), tokens.astype("<u2"))
        print(f"{'nproc':>5s} {'tokens/s':>12s} {'per proc':>10s} {'MFU':>6s} {'scaling eff.':>12s}")
        first = None
        for n in nprocs:
            out = os.path.join(tmp, f"run{n}")
            cmd = [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--standalone",
                f"--nproc_per_node={n}",
                "-m",
                "pipelines.pretrain",
                "--data",
                tmp,
                "--out",
                out,
                "--preset",
                preset,
                "--steps",
                str(args.scaling_steps),
                "--eval-every",
                "1000000",
                "--log-every",
                "1",
            ]
            cmd += ["--compile"] if dev.type == "cuda" and not args.no_compile else []
            cmd += ["--total-batch-tokens", str(2**19)] if dev.type == "cuda" else []
            run = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if run.returncode:
                raise RuntimeError(f"{' '.join(cmd)} failed:\n{run.stderr[-3000:]}")
            with open(os.path.join(out, "metrics.jsonl")) as f:
                rows = [r for r in map(json.loads, f) if "tok_s" in r][args.skip :]
            tps = sum(r["tok_s"] for r in rows) / len(rows)
            first = first or tps / n
            with torch.device("meta"):
                fpt = GPT(GPTConfig(**PRESETS[preset])).flops_per_token(PRESETS[preset]["block_size"])
            eff = tps / n / first
            print(
                f"{n:5d} {tps:12,.0f} {tps / n:10,.0f} {mfu(tps, fpt, device.peak_flops(dev), n)} {eff:11.0%}"
            )
            rows.append({"nproc": n, "tok_s": tps, "tok_s_per_proc": tps / n, "efficiency": eff})
    return rows


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=None, help="micro-batch (GPU default 16, CPU 4)")
    p.add_argument("--seq-len", type=int, default=None, help="sequence length (GPU default 1024, CPU 128)")
    p.add_argument("--steps", type=int, default=10, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (+5 with compile)")
    p.add_argument("--no-compile", action="store_true", help="do not torch.compile our model on GPU")
    p.add_argument("--sample-tokens", type=int, default=100, help="new tokens of the sampling comparison")
    p.add_argument("--scaling", default=None, help="comma list of process counts for torchrun, e.g. 1,2,4,8")
    p.add_argument("--scaling-steps", type=int, default=15, help="trainer steps per scaling run")
    p.add_argument("--skip", type=int, default=5, help="first trainer steps left out of the scaling mean")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    single(args, dev)
    sampling(args, dev)
    if args.scaling:
        scaling(args, dev, [int(n) for n in args.scaling.split(",")])


if __name__ == "__main__":
    main()
