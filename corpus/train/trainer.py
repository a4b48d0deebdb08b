"""The training loop of stage 10: DDP + gradient accumulation, eval on the val shards, atomic checkpoints
and exact resume, a log with config, git commit, loss, lr, tokens/s and MFU (CLI: pipelines/pretrain.py)."""

import contextlib
import json
import os
import subprocess
import time
from dataclasses import asdict, dataclass

import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from corpus.train import checkpoint, device
from corpus.train.gpt import GPT, GPTConfig
from corpus.train.loader import ShardError, ShardLoader, find_shards, read_header
from corpus.train.optim import lr_at, make_optimizer


@dataclass(frozen=True)
class TrainConfig:
    data: str  # directory of llm.c shards: {name}_train_*.bin, {name}_val_*.bin
    model: GPTConfig
    out: str = "out/train"  # checkpoints + metrics.jsonl
    log_dir: str | None = None  # log.txt goes here (None = out)
    name: str | None = None  # shard name prefix (None = the only one present)
    batch_size: int = 8  # micro-batch B per process
    total_batch_tokens: int | None = None  # tokens per optimizer step (None = B*T*world, no accumulation)
    steps: int = 100
    lr: float = 6e-4
    min_lr_frac: float = 0.1
    warmup_steps: int = 10
    schedule: str = "cosine"
    decay_frac: float = 0.2
    weight_decay: float = 0.1
    grad_clip: float | None = 1.0
    eval_every: int = 50
    val_tokens: int = 10_485_760  # llm.c/modded: the first 10*2**20 tokens of the val shard
    ckpt_every: int | None = None  # None = only at the end
    keep_last: int = 2
    resume: str | None = None  # checkpoint path or "auto" (latest in out)
    seed: int = 1337
    device: str = "auto"
    dtype: str = "auto"  # auto = bf16 autocast on CUDA, fp32 on CPU
    compile: bool = False
    zero: bool = False  # shard the AdamW state over the processes (ZeRO-1); no effect with one process
    log_every: int = 1


class Logger:
    """Rank 0 prints, appends to log.txt and writes metrics.jsonl (one JSON object per step / eval)."""

    def __init__(self, cfg: TrainConfig, d: device.Dist):
        self.on = d.master
        if self.on:
            os.makedirs(cfg.out, exist_ok=True)
            os.makedirs(cfg.log_dir or cfg.out, exist_ok=True)
            # kept open for the whole run (appending: a resumed run continues the same files)
            self.log = open(os.path.join(cfg.log_dir or cfg.out, "log.txt"), "a")  # noqa: SIM115
            self.metrics = open(os.path.join(cfg.out, "metrics.jsonl"), "a")  # noqa: SIM115

    def __call__(self, msg: str, record: dict | None = None) -> None:
        if self.on:
            print(msg, flush=True)
            self.log.write(msg + "\n")
            self.log.flush()
            if record is not None:
                self.metrics.write(json.dumps(record) + "\n")
                self.metrics.flush()


def git_commit() -> str:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=False
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return (
            sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
            if sha.returncode == 0
            else "unknown"
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def grad_accum_steps(cfg: TrainConfig, world: int) -> int:
    per_micro = cfg.batch_size * cfg.model.block_size * world
    total = cfg.total_batch_tokens or per_micro
    if total % per_micro:
        raise ValueError(
            f"--total-batch-tokens {total} is not a multiple of batch_size*seq_len*world = "
            f"{per_micro}.\n---> HINT: pick a multiple, e.g. {max(1, total // per_micro) * per_micro}."
        )
    return total // per_micro


@torch.no_grad()
def evaluate(model, cfg: TrainConfig, d: device.Dist, val_paths: list[str]) -> tuple[float, int]:
    """Mean loss over the first min(val_tokens, what the val shards hold) tokens; same tokens every call."""
    loader = ShardLoader(val_paths, cfg.batch_size, cfg.model.block_size, d.rank, d.world)
    available = sum((read_header(p) - 1) // loader.tokens_per_step for p in loader.paths)
    n = max(1, min(cfg.val_tokens // loader.tokens_per_step, available))
    model.eval()
    total = torch.zeros((), device=d.device)
    for _ in range(n):
        x, y = (t.to(d.device) for t in loader.next_batch())
        with device.autocast(d.device, cfg.dtype):
            total += model(x, y)[1].float()
    model.train()
    return device.all_reduce_mean(total / n).item(), n * loader.tokens_per_step


def train_step(model, opt, loader, accum: int, step: int, cfg: TrainConfig, d: device.Dist):
    """One optimizer step over `accum` micro-batches; grads all-reduced only on the last one."""
    opt.zero_grad(set_to_none=True)
    loss_sum = torch.zeros((), device=d.device)
    for micro in range(accum):
        x, y = loader.next_batch()
        if d.device.type == "cuda":
            x, y = (
                x.pin_memory().to(d.device, non_blocking=True),
                y.pin_memory().to(d.device, non_blocking=True),
            )
        sync = micro == accum - 1
        with model.no_sync() if isinstance(model, DDP) and not sync else contextlib.nullcontext():
            with device.autocast(d.device, cfg.dtype):
                _, loss = model(x, y)
            (loss / accum).backward()
        loss_sum += loss.detach()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip) if cfg.grad_clip else None
    lr = lr_at(step, cfg.lr, cfg.steps, cfg.warmup_steps, cfg.min_lr_frac, cfg.schedule, cfg.decay_frac)
    for group in opt.param_groups:
        group["lr"] = lr
    opt.step()
    loss = device.all_reduce_mean(loss_sum / accum).item()  # .item() also waits for the GPU
    return loss, lr, (norm.item() if norm is not None else None)


def _restore(cfg, raw, opt, loader, log) -> int:
    path = checkpoint.latest(cfg.out) if cfg.resume == "auto" else cfg.resume
    if path is None:
        log(f"resume=auto: no checkpoint in {cfg.out}, starting from step 0")
        return 0
    ck = checkpoint.load(path)
    if ck["model_config"] != asdict(cfg.model):
        raise ValueError(
            f"{path} holds a model {ck['model_config']}, not {asdict(cfg.model)}.\n"
            "---> HINT: resume with the same --preset / --n-layer / --n-head / --n-embd / --seq-len."
        )
    raw.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    loader.load_state_dict(ck["loader"])
    if ck["loader"].get("tokens_per_step", loader.tokens_per_step) != loader.tokens_per_step:
        log(
            f"warning: tokens/step was {ck['loader']['tokens_per_step']:,}, now {loader.tokens_per_step:,}: "
            "training continues from the same position, but not as the stopped run would have"
        )
    checkpoint.set_rng_state(ck["rng"])
    log(f"resumed from {path} at step {ck['step']} (data position {ck['loader']})")
    return ck["step"]


def _save(cfg, raw, opt, loader, step: int, d: device.Dist) -> None:
    if hasattr(opt, "consolidate_state_dict"):  # ZeRO-1: every rank sends its shard of the AdamW state to rank 0
        opt.consolidate_state_dict(to=0)
    if d.master:
        state = {
            "model": raw.state_dict(),
            "optimizer": opt.state_dict(),
            "step": step,
            "loader": loader.state_dict(),
            "rng": checkpoint.rng_state(),
            "world": d.world,
            "model_config": asdict(cfg.model),
            "train_config": asdict(cfg),
        }
        checkpoint.save(os.path.join(cfg.out, checkpoint.PATTERN.format(step=step)), state)
        checkpoint.prune(cfg.out, cfg.keep_last)
    if d.world > 1:
        torch.distributed.barrier()


def _header(cfg, raw, accum, d, log, peak) -> None:
    log(
        f"=== stage 10 pretrain | git {git_commit()} | torch {torch.__version__} | "
        f"{d.world} x {device.device_name(d.device)} | {time.strftime('%Y-%m-%d %H:%M:%S %Z')}"
    )
    log("config " + json.dumps(asdict(cfg), sort_keys=True))
    log(
        f"params {raw.num_params():,} | grad accum {accum} | tokens/step "
        f"{accum * cfg.batch_size * cfg.model.block_size * d.world:,} | flops/token "
        f"{raw.flops_per_token(cfg.model.block_size) / 1e9:.4f} G (llm.c 6N+6LCT) | peak "
        f"{f'{peak / 1e12:.0f} TFLOP/s bf16 dense per device' if peak else 'n/a (no MFU claim)'}"
    )


def train(cfg: TrainConfig) -> list[dict]:
    """Run (or resume) training; returns the per-step records on rank 0 ([] elsewhere)."""
    d = device.setup(cfg.device)
    try:
        return _train(cfg, d)
    finally:
        device.teardown()


def _data(cfg: TrainConfig, d: device.Dist, accum: int, log: Logger) -> tuple[ShardLoader, list[str]]:
    train_paths = find_shards(cfg.data, "train", cfg.name)
    if not train_paths:
        raise ShardError(
            f"no {cfg.name or '*'}_train_*.bin shards in {cfg.data}.\n---> HINT: run stage 9 "
            "(python -m pipelines.tokenize --parquet out/data --out out/tokens) and pass its --out."
        )
    loader = ShardLoader(train_paths, cfg.batch_size, cfg.model.block_size, d.rank, d.world, accum)
    for p in loader.skipped:
        log(f"skipping {p}: fewer than accum*world*B*T+1 = {loader.tokens_per_step + 1} tokens")
    # eval reads world*B*T (+1) tokens per batch; a val shard smaller than that cannot be used
    val_need = d.world * cfg.batch_size * cfg.model.block_size + 1
    val_paths = [p for p in find_shards(cfg.data, "val", cfg.name) if read_header(p) >= val_need]
    if not val_paths:
        log(f"no *_val_*.bin of >= {val_need} tokens in {cfg.data}: validation loss is not computed")
    return loader, val_paths


def _log_step(log: Logger, cfg: TrainConfig, rec: dict, mfu: str) -> None:
    step, norm = rec["step"], rec["norm"]
    if step % cfg.log_every == 0 or step == cfg.steps - 1:
        log(
            f"step {step + 1:6d}/{cfg.steps} | loss {rec['loss']:.6f} | lr {rec['lr']:.3e} | norm "
            f"{norm if norm is None else round(norm, 4)} | {rec['dt_ms']:.1f} ms | {rec['tok_s']:,.0f} tok/s"
            f" | mfu {mfu}",
            rec,
        )


def _train(cfg: TrainConfig, d: device.Dist) -> list[dict]:
    log = Logger(cfg, d)
    torch.manual_seed(cfg.seed)  # same init on every rank (DDP also broadcasts rank 0's weights)
    accum, peak = grad_accum_steps(cfg, d.world), device.peak_flops(d.device)
    raw = GPT(cfg.model).to(d.device)
    opt = make_optimizer(raw, cfg.lr, cfg.weight_decay, zero=cfg.zero and d.world > 1)
    fwd = torch.compile(raw) if cfg.compile else raw
    model = DDP(fwd, device_ids=[d.local_rank] if d.device.type == "cuda" else None) if d.world > 1 else fwd
    _header(cfg, raw, accum, d, log, peak)
    loader, val_paths = _data(cfg, d, accum, log)
    start = _restore(cfg, raw, opt, loader, log) if cfg.resume else 0
    fpt, history = raw.flops_per_token(cfg.model.block_size), []
    for step in range(start, cfg.steps):
        t0 = time.perf_counter()
        loss, lr, norm = train_step(model, opt, loader, accum, step, cfg, d)
        dt = time.perf_counter() - t0
        tps = loader.tokens_per_step / dt
        rec = {"step": step, "loss": loss, "lr": lr, "norm": norm, "dt_ms": 1e3 * dt, "tok_s": tps}
        history.append(rec)
        _log_step(log, cfg, rec, f"{100 * tps * fpt / (peak * d.world):.1f}%" if peak else "n/a")
        done = step + 1
        if val_paths and (done % cfg.eval_every == 0 or done == cfg.steps):
            vloss, vtok = evaluate(fwd, cfg, d, val_paths)
            log(
                f"step {done:6d} | val loss {vloss:.4f} over {vtok:,} tokens",
                {"step": step, "val_loss": vloss},
            )
        if (cfg.ckpt_every and done % cfg.ckpt_every == 0) or done == cfg.steps:
            _save(cfg, raw, opt, loader, done, d)
    if len(history) > 1:
        mean = sum(r["tok_s"] for r in history[1:]) / (len(history) - 1)
        log(f"mean {mean:,.0f} tok/s over steps 2..{len(history)} (first step excluded: warm-up/compile)")
    return history if d.master else []
