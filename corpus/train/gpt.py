"""GPT-2 as in nanoGPT (Karpathy, model.py) and OpenAI's GPT-2: pre-LayerNorm blocks, learned positions,
GELU(tanh) MLP, biases, tied input/output embeddings. Same parameter names as nanoGPT so that the HF export
(corpus/train/export_hf.py) is a transpose-and-rename.

Vocabulary: the GPT-2 tokenizer has 50,257 ids; the embedding is padded to 50,304 (a multiple of 64) for
faster matmuls (build-nanogpt: 96 -> 93 ms/step). The padded rows are never predicted: the loss and sampling
use only the first `vocab_size` logits, as llm.c's fused classifier does with V vs Vp.
"""

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

IGNORE_INDEX = -1  # targets equal to this do not count in the loss (masked positions)


@dataclass(frozen=True)
class GPTConfig:
    block_size: int = 1024  # maximum sequence length (learned position embeddings)
    vocab_size: int = 50257  # GPT-2 BPE ids 0..50256 (50256 = <|endoftext|>)
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    pad_vocab_to: int = 64  # pad the embedding to a multiple of this (50257 -> 50304)

    @property
    def padded_vocab_size(self) -> int:
        return math.ceil(self.vocab_size / self.pad_vocab_to) * self.pad_vocab_to


# OpenAI GPT-2 sizes (Radford et al. 2019, table 2; HF model cards). `tiny` is ours: CPU tests, the demo.
PRESETS = {
    "tiny": {"n_layer": 4, "n_head": 4, "n_embd": 64, "block_size": 64},
    "gpt2": {"n_layer": 12, "n_head": 12, "n_embd": 768, "block_size": 1024},  # 124M
    "gpt2-medium": {"n_layer": 24, "n_head": 16, "n_embd": 1024, "block_size": 1024},  # 350M
    "gpt2-large": {"n_layer": 36, "n_head": 20, "n_embd": 1280, "block_size": 1024},  # 774M
    "gpt2-xl": {"n_layer": 48, "n_head": 25, "n_embd": 1600, "block_size": 1024},  # 1558M
}


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        if config.n_embd % config.n_head:
            raise ValueError(
                f"n_embd={config.n_embd} is not divisible by n_head={config.n_head}; pick sizes that are"
            )
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.c_proj.RESIDUAL_SCALE_INIT = True

    def forward(self, x, cache: list | None = None):
        """cache: this layer's [keys, values] of the tokens before x (None, None when empty), extended in place.
        With a cache, x is either the whole prompt (empty cache) or one new token."""
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        causal = True
        if cache is not None:
            if cache[0] is not None:
                if T != 1:
                    raise ValueError("with a filled KV cache, feed one token at a time")
                k, v = torch.cat((cache[0], k), dim=2), torch.cat((cache[1], v), dim=2)
                causal = False  # the one new query may see every cached key
            cache[0], cache[1] = k, v
        # SDPA picks FlashAttention on CUDA (bf16/fp16) and a fused math/flash kernel on CPU
        y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)
        self.c_proj.RESIDUAL_SCALE_INIT = True

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))  # GPT-2's "gelu_new"


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x, cache: list | None = None):
        x = x + self.attn(self.ln_1(x), cache)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        V = config.padded_vocab_size
        self.transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(V, config.n_embd),
                "wpe": nn.Embedding(config.block_size, config.n_embd),
                "h": nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
                "ln_f": nn.LayerNorm(config.n_embd),
            }
        )
        self.lm_head = nn.Linear(config.n_embd, V, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying (GPT-2; Press & Wolf 2017)
        self.apply(self._init_weights)

    def _init_weights(self, module):
        # GPT-2 init: N(0, 0.02); residual projections scaled by 1/sqrt(2*n_layer) (GPT-2 paper, section 2.3)
        std = 0.02
        if isinstance(module, nn.Linear):
            if getattr(module, "RESIDUAL_SCALE_INIT", False):
                std /= math.sqrt(2 * self.config.n_layer)
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())  # tied weights counted once

    def forward(self, idx, targets=None, kv_cache: list | None = None):
        """kv_cache (sampling): one [keys, values] per layer, from new_kv_cache(); idx then holds the tokens
        after the cached ones: the whole prompt first, then one token per call."""
        _B, T = idx.size()
        start = 0 if kv_cache is None or kv_cache[0][0] is None else kv_cache[0][0].size(2)
        if start + T > self.config.block_size:
            raise ValueError(f"sequence of {start + T} tokens is longer than block_size={self.config.block_size}")
        pos = torch.arange(start, start + T, dtype=torch.long, device=idx.device)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        for i, block in enumerate(self.transformer.h):
            x = block(x, None if kv_cache is None else kv_cache[i])
        # drop the padded vocabulary columns: they are never a target and never sampled
        logits = self.lm_head(self.transformer.ln_f(x))[..., : self.config.vocab_size]
        if targets is None:
            return logits
        # under bf16 autocast cross_entropy runs in fp32 (autocast's fp32 op list); with --compile the
        # slice above fuses into the loss kernel instead of copying the (B, T, V) logits
        loss = F.cross_entropy(
            logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE_INDEX
        )
        return logits, loss

    def flops_per_token(self, seq_len: int) -> int:
        """Training FLOPs per token, llm.c convention (gpt2_estimate_mfu, Kaplan et al. 2020 section 2.1):
        6*N + 6*L*C*T, N = all parameters incl. the padded embedding. 124M at T=1024: 0.8035 GFLOP."""
        c = self.config
        return 6 * self.num_params() + 6 * c.n_layer * c.n_embd * seq_len

    def new_kv_cache(self) -> list:
        return [[None, None] for _ in self.transformer.h]

    @torch.no_grad()
    def generate(
        self,
        idx,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
    ):
        """Append max_new_tokens sampled tokens to idx (B, T). temperature 0 = greedy.

        With use_cache, the keys and values of past tokens are kept (KV cache): one token's forward per new
        token instead of the whole sequence's. Past block_size tokens, learned positions shift with every new
        token, so from there on the model is re-run on the last block_size tokens, as without a cache."""
        cache = self.new_kv_cache() if use_cache and idx.size(1) < self.config.block_size else None
        for _ in range(max_new_tokens):
            if cache is not None and idx.size(1) <= self.config.block_size:
                filled = cache[0][0] is not None
                logits = self(idx[:, -1:] if filled else idx, kv_cache=cache)[:, -1, :].float()
            else:
                logits = self(idx[:, -self.config.block_size :])[:, -1, :].float()
            if temperature == 0:
                nxt = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k is not None:
                    kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]
                    logits[logits < kth] = -float("inf")
                nxt = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)
            idx = torch.cat((idx, nxt), dim=1)
        return idx
