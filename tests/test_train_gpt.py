"""Stage 10 model and optimizer pieces: GPT-2 124M shape and FLOP count (llm.c convention), the padded
vocabulary is never predicted, ignore_index masks targets, weight-decay groups, learning-rate schedules."""

import itertools
import math

import pytest
import torch
from torch.nn import functional as F

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
