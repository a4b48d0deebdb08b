"""Checkpoint -> Hugging Face `GPT2LMHeadModel` directory (config.json + model.safetensors [+ tokenizer]).

Our parameter names are nanoGPT's, which are HF's GPT-2 names; HF keeps the four matmul weights as `Conv1D`
(in, out) where we use nn.Linear (out, in), so those are transposed (the reverse of nanoGPT's
`GPT.from_pretrained`). The padded vocabulary rows (50257..50303) are dropped; they are never predicted.
Needs the optional `hf` extra (transformers).
"""

import json
import os
import shutil

from corpus.train import checkpoint
from corpus.train.gpt import GPTConfig

TRANSPOSED = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def hf_config(cfg: GPTConfig):
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=cfg.vocab_size,
        n_positions=cfg.block_size,
        n_embd=cfg.n_embd,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        activation_function="gelu_new",
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        layer_norm_epsilon=1e-5,
        tie_word_embeddings=True,
        bos_token_id=50256,
        eos_token_id=50256,
    )


def hf_state_dict(state: dict, cfg: GPTConfig) -> dict:
    out = {}
    for name, t in state.items():
        if name == "lm_head.weight":
            continue  # tied to transformer.wte.weight
        if name.endswith(TRANSPOSED):
            t = t.t()
        if name == "transformer.wte.weight":
            t = t[: cfg.vocab_size]
        out[name] = t.detach().float().contiguous().clone()
    return out


def to_hf(state: dict, cfg: GPTConfig):
    """A GPT2LMHeadModel (eval mode, fp32) holding our weights."""
    from transformers import GPT2LMHeadModel

    model = GPT2LMHeadModel(hf_config(cfg))
    missing, unexpected = model.load_state_dict(hf_state_dict(state, cfg), strict=False)
    missing = [k for k in missing if not k.endswith((".attn.bias", ".attn.masked_bias", "lm_head.weight"))]
    if missing or unexpected:
        raise RuntimeError(
            f"weights do not map onto GPT2LMHeadModel: missing {missing}, unexpected {unexpected}"
        )
    model.tie_weights()
    return model.eval()


def export(checkpoint_path: str, out_dir: str) -> str:
    """Write the HF model directory (atomically: a temp sibling renamed at the end); return out_dir."""
    ck = checkpoint.load(checkpoint_path)
    model = to_hf(ck["model"], GPTConfig(**ck["model_config"]))
    tmp = out_dir.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    _copy_tokenizer(tmp, model.config.n_positions)
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return out_dir


def _copy_tokenizer(out_dir: str, max_len: int) -> None:
    """GPT-2's BPE files under HF's names (encoder.json = vocab.json, vocab.bpe = merges.txt), so
    AutoTokenizer.from_pretrained(out_dir) works offline too."""
    from corpus.tokenizer import gpt2_files

    files = gpt2_files()
    shutil.copyfile(files["encoder.json"], os.path.join(out_dir, "vocab.json"))
    shutil.copyfile(files["vocab.bpe"], os.path.join(out_dir, "merges.txt"))
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        f.write(json.dumps({"tokenizer_class": "GPT2Tokenizer", "model_max_length": max_len}) + "\n")
