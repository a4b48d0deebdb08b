"""presidio-analyzer wired to run offline and cheaply: the detection back end of stage 7 (scrub_pii).

Out of the box presidio is unusable on an offline node: `AnalyzerEngine()` downloads en_core_web_lg, and its
e-mail recognizer calls `tldextract.extract`, whose default extractor fetches the public suffix list over the
network. Here:
- the pattern recognizers are built directly: they need no NLP engine, so the fast path loads no spaCy at all;
- e-mail domains are validated against the public suffix list snapshot bundled in the tldextract wheel
  (`TLDExtract(cache_dir=None, suffix_list_urls=())`: no fetch, no cache write);
- an `AnalyzerEngine` is built only on demand: on a blank spaCy pipeline (`spacy.blank("en")` in memory, no
  model, no disk) for the plain-presidio baseline, or on a spaCy model the user installed, for NER.
"""

from __future__ import annotations

import sys
from pathlib import Path

# presidio entity names for our short names (the benchmark's PII types)
PRESIDIO_ENTITY = {
    "email": "EMAIL_ADDRESS", "ipv4": "IP_ADDRESS", "ipv6": "IP_ADDRESS", "phone": "PHONE_NUMBER",
    "credit_card": "CREDIT_CARD", "iban": "IBAN_CODE", "ssn": "US_SSN",
    "person": "PERSON", "location": "LOCATION",
}
NER_ENTITIES = ("person", "location")

# Regions in which a number "valid" for libphonenumber counts as a phone number (national formats that no
# shape rule in pii_rules covers). presidio's default is US GB DE FR IL IN CA BR (PhoneRecognizer.
# DEFAULT_SUPPORTED_REGIONS); English-web regions instead. DE, ZA, IL and BR are left out: their open
# numbering plans make most 7-10 digit runs "valid" (order #3747372, PO 0842-3759). CA is covered by US.
SSN_ZIP = ("SSN1", "SSN2")
PHONE_REGIONS = ("US", "GB", "AU", "IE", "NZ", "IN", "FR")


def import_presidio() -> None:
    """Import presidio_analyzer without transformers. presidio imports it at package import only for its
    optional Hugging Face NER engine: seconds per worker and hundreds of MB that this stage never uses. The
    block lasts for this import only; presidio keeps its "transformers not installed" fallback."""
    if "presidio_analyzer" in sys.modules or "transformers" in sys.modules:
        return
    sys.modules["transformers"] = None  # makes `import transformers` raise ImportError
    try:
        import presidio_analyzer  # noqa: F401
    finally:
        del sys.modules["transformers"]


def offline_tldextract():
    """tldextract on its bundled suffix-list snapshot: never touches the network or the disk."""
    import tldextract

    return tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)


def _email_recognizer():
    import_presidio()
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    class OfflineEmailRecognizer(EmailRecognizer):
        """presidio's e-mail recognizer: the domain ends in a public suffix (as upstream), checked offline."""

        _tld = offline_tldextract()

        def validate_result(self, pattern_text: str) -> bool:
            return self._tld(pattern_text.rpartition("@")[2]).fqdn != ""

    return OfflineEmailRecognizer()


def pattern_recognizers() -> dict:
    """presidio's pattern recognizers by the candidate group that calls them (pii_rules.number_groups)."""
    import_presidio()
    from presidio_analyzer import Pattern
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UsSsnRecognizer,
    )

    ipv4 = [p for p in IpRecognizer.PATTERNS if p.name == "IPv4"]
    return {
        "email": _email_recognizer(),
        # presidio's IP patterns split in two, so that a dotted quad is not run through the four IPv6 regexes
        "ipv4": IpRecognizer(patterns=ipv4),
        "ipv6": IpRecognizer(patterns=[p for p in IpRecognizer.PATTERNS if p not in ipv4]),
        # leniency 0 (POSSIBLE) finds the spans; our validator decides (valid in a region, or a phone shape),
        # because numbers in fiction ranges such as (555) 010-1234 are not "valid" for libphonenumber.
        # One region per candidate (see pii_rules.number_groups): GB's POSSIBLE matcher finds international
        # and 0-trunk national forms, US's the NANP forms (1-800-555-0199, which GB's does not find).
        "phone_gb": PhoneRecognizer(supported_regions=("GB",), leniency=0),
        "phone_us": PhoneRecognizer(supported_regions=("US",), leniency=0),
        # presidio's card pattern plus Mastercard's 2221-2720 series (since 2017), which it does not cover
        "credit_card": CreditCardRecognizer(patterns=CreditCardRecognizer.PATTERNS + [Pattern(
            "Mastercard 2-series", r"\b2(?:2[2-9]\d|[3-6]\d\d|7[01]\d|720)(?:[- ]?\d{4}){3}\b", 0.3)]),
        "iban": IbanRecognizer(),
        # presidio's SSN patterns without ddddd-dddd and ddd-dddddd (SSN1/SSN2): ZIP+4 codes and the like,
        # which pii_rules.ssn_ok would reject anyway
        "ssn": UsSsnRecognizer(patterns=[p for p in UsSsnRecognizer.PATTERNS if p.name[:4] not in SSN_ZIP]),
    }


def blank_nlp_engine():
    """presidio's spaCy engine on `spacy.blank("en")`: a tokenizer only, nothing to download or read."""
    import_presidio()
    import spacy
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": "blank:en"}])
    engine.nlp = {"en": spacy.blank("en")}  # is_loaded() is now True, so load() (and its download) never runs
    return engine


def require_model(model: str) -> None:
    """Raise, saying how to install it, unless the spaCy model (package name or saved pipeline) is here."""
    import spacy

    if not (spacy.util.is_package(model) or Path(model).exists()):
        raise RuntimeError(
            f"spaCy model {model!r} is not installed, and PII NER needs it. Install it with "
            f"`python -m spacy download {model}`; on an offline node, `pip install` the model wheel "
            f"(https://github.com/explosion/spacy-models/releases) or pass the path of a saved pipeline. "
            f"Or drop the NER flag: the pattern entities need no model.")


def model_nlp_engine(model: str):
    """presidio's spaCy engine on an installed model (package name or path); raise if it is not installed."""
    require_model(model)
    import_presidio()
    import spacy
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": model}])
    engine.nlp = {"en": spacy.load(model)}
    return engine


def analyzer_engine(nlp_engine, recognizers):
    """An AnalyzerEngine over exactly these recognizers (no predefined registry, no default NLP engine)."""
    import_presidio()
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.recognizer_registry import RecognizerRegistry

    return AnalyzerEngine(registry=RecognizerRegistry(recognizers=list(recognizers)), nlp_engine=nlp_engine)


def ner_analyzer(model: str):
    """AnalyzerEngine with spaCy's NER (PERSON, LOCATION) from an installed model."""
    import_presidio()
    from presidio_analyzer.predefined_recognizers import SpacyRecognizer

    engine = model_nlp_engine(model)
    return analyzer_engine(engine, [SpacyRecognizer(supported_entities=["PERSON", "LOCATION"])])
