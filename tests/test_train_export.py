"""Stage 10 export (corpus/train/export_hf.py): the Hugging Face GPT2LMHeadModel written from our checkpoint
gives the same logits as our GPT (fp32, CPU) and reloads with from_pretrained. Skipped without transformers.
"""

from dataclasses import asdict

import pytest
import torch

from corpus.train import checkpoint
from corpus.train.export_hf import export
from corpus.train.gpt import GPT, GPTConfig

transformers = pytest.importorskip("transformers")


def test_exported_logits_match(tmp_path):
    cfg = GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16)
    torch.manual_seed(0)
    ours = GPT(cfg).eval()
    with torch.no_grad():  # non-zero biases and LayerNorm params, so a missed transpose or name would show
        for p in ours.parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
    path = str(tmp_path / "ckpt_0000001.pt")
    checkpoint.save(path, {"model": ours.state_dict(), "model_config": asdict(cfg), "step": 1})
    out = export(path, str(tmp_path / "hf"))
    hf = transformers.GPT2LMHeadModel.from_pretrained(out).eval()
    x = torch.randint(0, 50257, (2, 16))
    with torch.no_grad():
        theirs = hf(x).logits
        mine = ours(x)
    assert theirs.shape == mine.shape == (2, 16, 50257)
    torch.testing.assert_close(theirs, mine, rtol=1e-4, atol=1e-4)
    tok = transformers.AutoTokenizer.from_pretrained(out)
    assert tok.encode("Hello world") == [15496, 995]
