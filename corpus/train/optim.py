"""AdamW with GPT-2/3 weight-decay groups, and the learning-rate schedules (warmup + cosine, or WSD)."""

import inspect
import math

import torch


def make_optimizer(
    model: torch.nn.Module,
    lr: float,
    weight_decay: float,
    betas=(0.9, 0.95),
    eps=1e-8,
    fused: bool | None = None,
    zero: bool = False,
) -> torch.optim.Optimizer:
    """Decay 2-D tensors (matmul weights, embeddings); not biases or LayerNorm gains (nanoGPT, GPT-3 paper
    appendix B: betas 0.9/0.95, eps 1e-8, wd 0.1). fused=None -> fused kernel on CUDA when available.

    zero: shard the AdamW moments over the processes of the started process group (ZeRO stage 1, Rajbhandari
    et al. 2020; llm.c `-z 1`, through torch's ZeroRedundancyOptimizer): each rank keeps and updates 1/world of
    the 8 bytes per parameter, then the updated weights are broadcast. Gradients and the step are unchanged."""
    params = [p for p in model.parameters() if p.requires_grad]  # parameters() yields the tied weight once
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    if fused is None:
        on_cuda = all(p.is_cuda for p in params)
        fused = on_cuda and "fused" in inspect.signature(torch.optim.AdamW).parameters
    if zero:
        from torch.distributed.optim import ZeroRedundancyOptimizer

        return ZeroRedundancyOptimizer(
            groups, optimizer_class=torch.optim.AdamW, lr=lr, betas=betas, eps=eps, fused=fused
        )
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, fused=fused)


def lr_at(
    step: int,
    max_lr: float,
    total_steps: int,
    warmup_steps: int,
    min_lr_frac: float = 0.1,
    schedule: str = "cosine",
    decay_frac: float = 0.2,
) -> float:
    """Learning rate for optimizer step `step` (0-based).

    cosine: linear warmup to max_lr, then cosine to min_lr_frac*max_lr at the last step (GPT-3; nanoGPT,
    build-nanogpt use min 0.1x). wsd: warmup, constant, then linear decay to min over the last
    decay_frac of the steps (warmup-stable-decay; Hu et al. 2024 MiniCPM, llm.c `-k wsd`).
    """
    min_lr = max_lr * min_lr_frac
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if schedule == "cosine":
        span = max(1, total_steps - 1 - warmup_steps)
        ratio = min(1.0, (step - warmup_steps) / span)
        return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (max_lr - min_lr)
    if schedule == "wsd":
        decay_start = total_steps - int(decay_frac * total_steps)
        if step < decay_start:
            return max_lr
        ratio = (step - decay_start + 1) / max(1, total_steps - decay_start)
        return max_lr - ratio * (max_lr - min_lr)
    raise ValueError(f"unknown schedule {schedule!r}; use 'cosine' or 'wsd'")
