"""Stage 10 model and optimizer pieces: GPT-2 124M shape and FLOP count (llm.c convention), the padded
vocabulary is never predicted, ignore_index masks targets, weight-decay groups, learning-rate schedules, and
the GPU numerics run on a CPU: bf16 autocast (the loss stays fp32) and the fused AdamW kernel."""

import itertools
import math

import pytest
import torch
from torch.nn import functional as F

from corpus.train import device
from corpus.train.gpt import GPT, PRESETS, GPTConfig
from corpus.train.optim import lr_at, make_optimizer


def test_gpt2_124m_size_and_flops():
    with torch.device("meta"):  # shapes only, no 500 MB allocation
        model = GPT(GPTConfig(**PRESETS["gpt2"]))
    assert model.config.padded_vocab_size == 50304
    assert model.num_params() == 124_475_904  # llm.c's N for d12 with Vp = 50304
    assert model.flops_per_token(1024) / 1e9 == pytest.approx(0.8035, abs=1e-4)  # docs/stage_10_pretrain.md


def test_padded_vocab_never_predicted_and_ignore_index():
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=16))
    with torch.no_grad():  # make a padded row the most likely output if it were visible
        model.lm_head.weight[50300] = 10 * model.transformer.ln_f.weight.abs().max()
    x = torch.randint(0, 50257, (2, 16))
    y = torch.randint(0, 50257, (2, 16))
    logits, loss = model(x, y)
    assert logits.shape == (2, 16, 50257)
    assert loss.item() == pytest.approx(F.cross_entropy(logits.reshape(-1, 50257), y.reshape(-1)).item())
    y_masked = y.clone()
    y_masked[:, 8:] = -1
    _, loss_masked = model(x, y_masked)
    ref = F.cross_entropy(logits[:, :8].reshape(-1, 50257), y[:, :8].reshape(-1))
    assert loss_masked.item() == pytest.approx(ref.item(), rel=1e-6)
    out = model.generate(x[:1, :4], 20, temperature=1.0, generator=torch.Generator().manual_seed(0))
    assert int(out.max()) < 50257


def test_weight_decay_groups():
    model = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16))
    decay, no_decay = make_optimizer(model, 1e-3, 0.1).param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() == 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_schedules():
    kw = {"max_lr": 1.0, "total_steps": 100, "warmup_steps": 10, "min_lr_frac": 0.1}
    assert lr_at(0, **kw) == pytest.approx(0.1) and lr_at(9, **kw) == pytest.approx(1.0)
    assert lr_at(99, **kw) == pytest.approx(0.1)
    assert lr_at(10 + 89 // 2, **kw) == pytest.approx(0.55, abs=0.02)  # cosine midpoint
    cos = [lr_at(s, **kw) for s in range(10, 100)]
    assert all(a >= b for a, b in itertools.pairwise(cos))
    wsd = [lr_at(s, schedule="wsd", decay_frac=0.2, **kw) for s in range(100)]
    assert wsd[10:80] == [1.0] * 70 and wsd[99] == pytest.approx(0.1) and wsd[80] < 1.0
    with pytest.raises(ValueError, match="schedule"):
        lr_at(50, schedule="linear", **kw)
    assert math.isclose(lr_at(5, **kw), 0.6)


def test_bf16_autocast_on_cpu_matches_fp32():
    """--dtype bfloat16 takes effect on a CPU too (it used to fall back to fp32 silently), and the loss is
    computed in fp32 from bf16 logits, close to the fp32 loss (bf16 keeps 8 bits of mantissa)."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=64, block_size=32, vocab_size=500))
    x, y = torch.randint(0, 500, (4, 32)), torch.randint(0, 500, (4, 32))
    cpu = torch.device("cpu")
    with device.autocast(cpu, "auto"):  # auto on CPU: fp32
        logits32, loss32 = model(x, y)
    with device.autocast(cpu, "bfloat16"):
        logits16, loss16 = model(x, y)
    assert logits32.dtype == torch.float32 and logits16.dtype == torch.bfloat16
    assert loss16.dtype == torch.float32  # autocast runs cross_entropy in fp32
    assert loss16.item() == pytest.approx(loss32.item(), abs=0.02)
    loss16.backward()
    assert all(p.grad.dtype == torch.float32 for p in model.parameters())  # fp32 master weights and grads
    with pytest.raises(ValueError, match="dtype"):
        device.autocast(cpu, "fp16")


def test_fused_adamw_equals_foreach():
    """The fused AdamW kernel the trainer picks on CUDA takes our two weight-decay groups and gives the same
    update as the default implementation (torch >= 2.4 has the fused kernel on CPU as well)."""
    results = []
    for fused in (False, True):
        torch.manual_seed(0)
        model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=16, vocab_size=300))
        opt = make_optimizer(model, 1e-2, 0.1, fused=fused)
        assert opt.defaults["fused"] is fused
        x = torch.randint(0, 300, (2, 16))
        for _ in range(3):
            model(x, x)[1].backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        results.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    # Adam divides by sqrt(v): where a gradient is ~0 the two kernels' rounding differs by up to ~1e-4 of 3e-2 moved
    torch.testing.assert_close(results[1], results[0], rtol=1e-3, atol=2e-4)
