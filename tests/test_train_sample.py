"""Stage 10 sampling (pipelines/sample.py): a seed makes samples reproducible, different seeds differ,
temperature 0 is greedy, the KV cache gives the logits and samples of a full re-run (also past block_size), and
the CLI loads a checkpoint and decodes with the offline GPT-2 tokenizer."""

import os
from dataclasses import asdict

import torch

from corpus.train import checkpoint
from corpus.train.gpt import GPT, GPTConfig
from pipelines import sample

CFG = GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=32)


def tiny_checkpoint(path):
    torch.manual_seed(0)
    model = GPT(CFG)
    checkpoint.save(path, {"model": model.state_dict(), "model_config": asdict(CFG), "step": 0})
    return model


def test_seeded_sampling_is_reproducible(tmp_path):
    model = tiny_checkpoint(str(tmp_path / "ckpt_0000000.pt")).eval()
    cfg = sample.SampleConfig("unused", max_new_tokens=8, temperature=1.0, top_k=50, seed=7, num_samples=2)
    a, b = sample.sample_tokens(model, [464, 3290], cfg), sample.sample_tokens(model, [464, 3290], cfg)
    assert a == b and len(a) == 2 and len(a[0]) == 8 and a[0] != a[1]
    other = sample.sample_tokens(model, [464, 3290], sample.SampleConfig("unused", max_new_tokens=8, seed=8))
    assert other[0] != a[0]
    greedy = sample.SampleConfig("unused", max_new_tokens=8, temperature=0.0)
    assert sample.sample_tokens(model, [464], greedy) == sample.sample_tokens(model, [464], greedy)


def test_kv_cache_equals_full_rerun():
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=32, vocab_size=300)).eval()
    idx = torch.randint(0, 300, (2, 5))
    cache = model.new_kv_cache()
    with torch.no_grad():
        step = model(idx, kv_cache=cache)  # the prompt fills the cache
        for _ in range(10):
            nxt = step[:, -1:].argmax(-1)
            idx = torch.cat((idx, nxt), dim=1)
            step = model(nxt, kv_cache=cache)
            torch.testing.assert_close(step[:, -1], model(idx)[:, -1], rtol=1e-4, atol=1e-5)
    prompt = torch.randint(0, 300, (2, 5))
    for temperature in (0.0, 1.0):  # 5 + 40 tokens: crosses block_size = 32, where the cache is left
        runs = [model.generate(prompt, 40, temperature, top_k=20, generator=torch.Generator().manual_seed(1),
                               use_cache=c) for c in (True, False)]
        assert torch.equal(runs[0], runs[1]) and runs[0].size(1) == 45


def test_cli_decodes_text(tmp_path, capsys):
    path = str(tmp_path / "ckpt_0000000.pt")
    tiny_checkpoint(path)
    argv = ["--checkpoint", path, "--prompt", "The cat", "--max-new-tokens", "8", "--seed", "3"]
    first = sample.main(argv)
    assert first == sample.main(argv) and first[0].startswith("The cat") and len(first[0]) > len("The cat")
    assert "--- sample 0 ---" in capsys.readouterr().out
    assert os.path.exists(path)
