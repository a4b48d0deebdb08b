"""Stage 7: replace personal data (PII) in the text, after dedup (FineWeb: `PIIFormatter` in its mh4 step).

FineWeb replaced e-mail and public IPv4 addresses with one regex each (datatrove `PIIFormatter`); phone
numbers, cards, IBANs, SSNs and IPv6 addresses stay, and its IPv4 regex has no boundaries, so build 4.18.0.553
becomes "<placeholder>3". Here presidio-analyzer's recognizers detect, but only where it matters:
1. a cheap scan finds candidates (digit runs with separators, '@', ':'-hex groups) — most text has none, and a
   candidate is a span, not a document;
2. only the recognizers for that candidate's kind run, on a small window around it (corpus.pii_presidio);
3. validation decides (corpus.pii_rules: checksums, `ipaddress.is_global`, SSN/phone rules, look-alikes);
4. overlaps resolve by priority (email > iban > card > ssn > ip > phone > NER), spans are replaced.

Replacements (stable: the same value gets the same placeholder in every document, whatever the order of the
documents or the number of tasks — datatrove's round-robin depends on how many documents a process saw):
- email  -> FineWeb's "email@example.com" or "firstname.lastname@example.org", chosen by crc32 of the value
  lower-cased;
- public IPv4 -> one of FineWeb's six placeholders, chosen by crc32 of the value (a "/prefix" is kept);
- public IPv6 -> "<IPV6_ADDRESS>" (FineWeb has no IPv6 rule; an address-shaped placeholder is either someone's
  real address or a documentation address, which this stage leaves alone as a look-alike);
- phone, card, IBAN, SSN, person, location -> "<PHONE_NUMBER>", "<CREDIT_CARD>", "<IBAN>", "<US_SSN>",
  "<PERSON>", "<LOCATION>".
Placeholders are never matched again: scrubbing is idempotent.
"""

from __future__ import annotations

import bisect
import re
import zlib
from typing import NamedTuple

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.typeshelper import StatHints

from corpus import pii_presidio, pii_rules

DEFAULT_ENTITIES = ("email", "ipv4", "ipv6", "phone", "credit_card", "iban", "ssn")
ALL_ENTITIES = DEFAULT_ENTITIES + pii_presidio.NER_ENTITIES
# datatrove PIIFormatter defaults (pipeline/formatters/pii.py), i.e. FineWeb's
EMAIL_PLACEHOLDERS = ("email@example.com", "firstname.lastname@example.org")
IPV4_PLACEHOLDERS = ("22.214.171.124", "126.96.36.199", "188.8.131.52", "184.108.40.206", "220.127.116.11",
                     "18.104.22.168")
TYPED_PLACEHOLDERS = {"ipv6": "<IPV6_ADDRESS>", "phone": "<PHONE_NUMBER>", "credit_card": "<CREDIT_CARD>",
                      "iban": "<IBAN>", "ssn": "<US_SSN>", "person": "<PERSON>", "location": "<LOCATION>"}
_PRIORITY = {kind: i for i, kind in enumerate(("email", "iban", "credit_card", "ssn", "ipv6", "ipv4", "phone",
                                                "person", "location"))}
_TYPE = {"EMAIL_ADDRESS": "email", "PHONE_NUMBER": "phone", "CREDIT_CARD": "credit_card", "IBAN_CODE": "iban",
         "US_SSN": "ssn", "PERSON": "person", "LOCATION": "location"}
# Candidate scan: ASCII digit runs with separators (phones, cards, SSNs, IPv4, the digits of an IBAN), '@',
# and two colons around <= 4 hex digits (IPv6). Three passes whose patterns begin with a fixed character set:
# CPython's re skips to those characters in C, which makes them together ~2x faster than one alternation
# (measured in docs/stage_7_scrub_pii.md).
_NUMBER = re.compile(r"[0-9][0-9 \-.()/]{5,}[0-9]")  # [0-9], not \d: a range test is cheaper than Unicode
_COLON = re.compile(r":[0-9A-Fa-f]{0,4}:")
_HEX_TOKEN = re.compile(r"[0-9A-Fa-f:.%]*")
_NO_SPACE_TAIL, _SPACE = re.compile(r"\S*$"), re.compile(r"\s")
# what precedes the digits of an IBAN: "DE" (DE38752...) or "GB75 TKGS " (GB75 TKGS 1397...), in any case:
# "de89 3704 …" is written too (presidio's IBAN pattern wants capitals: it is shown the window upper-cased)
_IBAN_HEAD = re.compile(r"(?<![A-Z0-9])[A-Z]{2}(?:\d\d[ \-A-Z0-9]{0,20})?$", re.IGNORECASE)


class PiiSpan(NamedTuple):
    start: int
    end: int
    kind: str  # one of ALL_ENTITIES
    value: str


def check_entities(entities=None, ner_model: str | None = None) -> tuple[str, ...]:
    """Validated entity names (order kept). None: the defaults, plus person/location if ner_model is given."""
    if entities is None:
        entities = DEFAULT_ENTITIES + (pii_presidio.NER_ENTITIES if ner_model else ())
    entities = tuple(entities)
    unknown = [e for e in entities if e not in ALL_ENTITIES]
    if unknown:
        raise ValueError(f"unknown PII entities {unknown}; choose from {', '.join(ALL_ENTITIES)}")
    ner = [e for e in entities if e in pii_presidio.NER_ENTITIES]
    if ner and not ner_model:
        raise ValueError(f"PII entities {ner} need a spaCy NER model: pass ner_model= (--pii-ner-model on the "
                         "command line), e.g. en_core_web_lg")
    if ner:
        pii_presidio.require_model(ner_model)  # fail at configuration time, not in a worker
    return entities


def placeholder(kind: str, value: str) -> str:
    if kind == "email":
        return EMAIL_PLACEHOLDERS[zlib.crc32(value.lower().encode()) % len(EMAIL_PLACEHOLDERS)]
    if kind == "ipv4":
        return IPV4_PLACEHOLDERS[zlib.crc32(value.encode()) % len(IPV4_PLACEHOLDERS)]
    return TYPED_PLACEHOLDERS[kind]


class PiiScrubber:
    """`PiiScrubber().scrub(text) -> (scrubbed_text, {kind: n_replaced})`; `find(text)` gives the spans."""

    def __init__(self, entities=None, ner_model: str | None = None,
                 phone_regions: tuple[str, ...] = pii_presidio.PHONE_REGIONS):
        self.entities = frozenset(check_entities(entities, ner_model))
        self.phone_regions = phone_regions
        self.recognizers = pii_presidio.pattern_recognizers()
        ner = self.entities & set(pii_presidio.NER_ENTITIES)
        self.ner = pii_presidio.ner_analyzer(ner_model) if ner else None

    def scrub(self, text: str) -> tuple[str, dict[str, int]]:
        pieces, last, counts = [], 0, {}
        for span in self.find(text):
            pieces += [text[last:span.start], placeholder(span.kind, span.value)]
            last = span.end
            counts[span.kind] = counts.get(span.kind, 0) + 1
        return "".join(pieces) + text[last:], dict(sorted(counts.items()))

    def find(self, text: str) -> list[PiiSpan]:
        """Non-overlapping PII spans in text order."""
        found, covered = set(), -1
        for start, end, kind in candidates(text):
            if end <= covered:
                continue  # inside what an earlier candidate found: a number in an e-mail address
            spans = [s for s in self._candidate_spans(text, start, end, kind) if s.kind in self.entities]
            found.update(spans)
            covered = max([covered] + [s.end for s in spans])
        if self.ner is not None:
            found.update(s for s in self._ner_spans(text) if s.kind in self.entities)
        kept: list[PiiSpan] = []  # sorted, non-overlapping: only the neighbours can overlap a new span
        for span in sorted(found, key=lambda s: (_PRIORITY[s.kind], s.start - s.end, s.start)):
            i = bisect.bisect(kept, span)
            if (i == 0 or kept[i - 1].end <= span.start) and (i == len(kept) or kept[i].start >= span.end) \
                    and not _is_placeholder(span):
                kept.insert(i, span)
        return kept

    def _candidate_spans(self, text: str, start: int, end: int, kind: str):
        """Run the recognizers a candidate calls for on a window around it; return the validated spans."""
        lo, hi = max(0, start - 4), min(len(text), end + 4)  # room for \b, "+44", "(212)"
        if kind == "email":
            lo, hi = _token_bounds(text, start)
            if lo == start or "." not in text[start:hi]:
                return []  # "@handle", "user@localhost": no local part or no domain with a suffix
            groups = ("email",)
        elif kind == "ipv6":
            if not pii_rules.may_be_global_ipv6(text[start:end]):
                return []  # 12:30:45, ::1, fe80::1, 2001:db8::1
            groups = ("ipv6",)
        else:
            groups = pii_rules.number_groups(text[start:end], text[start - 1:start])
            head = _IBAN_HEAD.search(text, max(0, start - 24), start)
            if head:
                lo, groups = head.start(), ("iban",) + groups
        window, spans = text[lo:hi], []
        if kind == "ipv6" and text[end - 1] == ":" and text[end - 2] != ":":
            # "at 2001:…:4b6e: the": presidio's pattern refuses an address followed by a ':'; same length, so
            # the offsets hold
            window = window[: end - 1 - lo] + " " + window[end - lo :]
        upper = window.upper() if "iban" in groups else window
        for group in groups:
            seen = upper if group == "iban" and len(upper) == len(window) else window  # "ß".upper() is "SS"
            for r in self.recognizers[group].analyze(seen, entities=[], nlp_artifacts=None):
                s, e = lo + r.start, lo + r.end
                if e <= start or s >= end:
                    continue  # another candidate's business
                span = self._validated(text, s, e, r)
                if span is not None:
                    spans.append(span)
            if any(s.start <= start and s.end >= end for s in spans):
                break  # groups go by priority: a card or IBAN covering the candidate is no phone number
        return spans

    def _validated(self, text: str, s: int, e: int, r) -> PiiSpan | None:
        if r.entity_type == "IP_ADDRESS":
            kind = pii_rules.ip_kind(text, s, e)
            e = s + len(text[s:e].split("/")[0])  # keep a CIDR prefix length
            return PiiSpan(s, e, kind, text[s:e]) if kind else None
        kind = _TYPE[r.entity_type]
        s, e = _balanced(text, s, e)
        ok = {"phone": lambda: pii_rules.phone_ok(text, s, e, self.phone_regions),
              "credit_card": lambda: pii_rules.card_ok(text, s, e),
              "ssn": lambda: pii_rules.ssn_ok(text, s, e)}.get(kind, lambda: True)()
        return PiiSpan(s, e, kind, text[s:e]) if ok else None

    def _ner_spans(self, text: str):
        for r in self.ner.analyze(text, entities=["PERSON", "LOCATION"], language="en"):
            yield PiiSpan(r.start, r.end, _TYPE[r.entity_type], text[r.start:r.end])


def candidates(text: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of the places presidio must look at, in text order; kind: num, email or ipv6."""
    found = [(m.start(), m.end(), "num") for m in _NUMBER.finditer(text)]
    at = text.find("@")
    while at != -1:
        found.append((at, at + 1, "email"))
        at = text.find("@", at + 1)
    end = -1
    for m in _COLON.finditer(text):
        if m.start() >= end:  # extend to the whole address: hex digits on the left, hex/':'/'.' on the right
            start = m.start()
            while start > 0 and m.start() - start < 4 and text[start - 1] in "0123456789abcdefABCDEF":
                start -= 1
            end = _HEX_TOKEN.match(text, m.start()).end()
            found.append((start, end, "ipv6"))
    return sorted(found)


def _token_bounds(text: str, at: int) -> tuple[int, int]:
    """The whitespace-delimited token around text[at] (an e-mail has no spaces), capped at RFC 5321 sizes."""
    lo, hi = max(0, at - 65), min(len(text), at + 256)
    left = _NO_SPACE_TAIL.search(text, lo, at).start()
    right = _SPACE.search(text, at, hi)
    return left, right.start() if right else hi


def _balanced(text: str, s: int, e: int) -> tuple[int, int]:
    """Drop a bracket the span does not close or open: libphonenumber's match of "(+44 7700 900807)" or
    "[+44 …]" starts at the bracket and ends before its pair, which fails the phone shapes and would leave
    "<PHONE_NUMBER>)" behind."""
    value = text[s:e]
    for opening, closing in ("()", "[]"):
        if value.startswith(opening) and closing not in value:
            s += 1
        if value.endswith(closing) and opening not in value:
            e -= 1
    return s, e


def _is_placeholder(span: PiiSpan) -> bool:
    return span.value.lower() in EMAIL_PLACEHOLDERS or span.value in IPV4_PLACEHOLDERS


class ScrubPii(PipelineStep):
    """datatrove step around PiiScrubber; counts replacements per kind as stats `pii_<kind>`."""

    name = "7 PII (presidio)"
    type = "✂️ - FORMAT"

    def __init__(self, entities=None, ner_model: str | None = None):
        super().__init__()
        self.entities = check_entities(entities, ner_model)
        self.ner_model = ner_model

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        scrubber = PiiScrubber(self.entities, self.ner_model)  # per task: presidio objects are never pickled
        for doc in data:
            self.stat_update(StatHints.total)
            with self.track_time():
                doc.text, counts = scrubber.scrub(doc.text)
            for kind, n in counts.items():
                self.stat_update(f"pii_{kind}", value=n)
            if counts:
                self.stat_update("pii_docs_changed")
            yield doc
