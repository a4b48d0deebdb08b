"""Stage 7 (corpus/scrub_pii.py): presidio-backed PII scrubbing, offline.

Checks: each entity type in several real-world formats is replaced by its documented placeholder; each
look-alike kind (versions, build numbers, private/documentation IPs, dates, ISBNs, prices, order numbers,
populations, year ranges, ZIP+4, Luhn/mod-97-invalid numbers, number tables) survives verbatim; empty text and
text without candidates; placeholders are deterministic whatever the document order, and scrubbing is
idempotent; PII in brackets or before a colon; nothing touches the network; entity selection, the NER flag
(with and without a model) and the datatrove step with its stats.
"""

import pickle
import re
import socket

import pytest
from datatrove.data import Document

from corpus.scrub_pii import EMAIL_PLACEHOLDERS, IPV4_PLACEHOLDERS, PiiScrubber, ScrubPii, placeholder


@pytest.fixture(scope="module")
def scrubber():
    return PiiScrubber()


def leaked(value: str, text: str) -> bool:
    """The benchmark's leak check: the value's characters with any separators in between."""
    core = [c for c in value if c.isalnum()]
    return re.search(r"[\s.\-/()]{0,3}".join(map(re.escape, core)), text, re.IGNORECASE) is not None


def scrubbed(scrubber, template: str, value: str, kind: str) -> str:
    out, counts = scrubber.scrub(template.format(value))
    assert not leaked(value, out), out
    assert counts.get(kind) == 1, (out, counts)
    return out


PHONES = ["Phone no. 555-010-1234", "(555) 010-1234", "555-0123", "+1 555 010 1234", "+44 20 7946 0958",
          "020 7946 0018", "0491 570 156", "+49 30 901820", "(212) 555-0148", "305-555-0152", "212.555.0148",
          "+1-212-555-0148", "1-800-555-0199", "07700 900412", "+61 491 570 144", "+44 (0)20 7946 0321",
          "+33 1 23 45 67 89", "415.555.0132 x204", "(415) 555-0132 ext. 12", "+1 415 555 0132 extension 7"]


@pytest.mark.parametrize("value", PHONES)
def test_phone_formats(scrubber, value):
    out = scrubbed(scrubber, "Anyone with information should call {} today.", value, "phone")
    assert "<PHONE_NUMBER>" in out


@pytest.mark.parametrize("value", ["4111 1111 1111 1111", "4111-1111-1111-1111", "5520499967233630",
                                   "3748 279644 47589", "378644506228179", "6011 8241 2789 8606",
                                   "2223 0000 4841 0010"])
def test_credit_cards(scrubber, value):
    out = scrubbed(scrubber, "It showed the full card number {} and its expiry date.", value, "credit_card")
    assert "<CREDIT_CARD>" in out


@pytest.mark.parametrize("value", ["DE89 3704 0044 0532 0130 00", "DE89370400440532013000",
                                   "NL41NDRL8159581620", "GB75 TKGS 1397 6223 3476 33",
                                   "FR11 7214 7505 9024 8623 4569 935", "de89 3704 0044 0532 0130 00",
                                   "gb75tkgs13976223347633"])  # lower case too
def test_ibans(scrubber, value):
    assert "<IBAN>" in scrubbed(scrubber, "Payment to IBAN {} within 14 days.", value, "iban")


@pytest.mark.parametrize("value", ["david+news@wire-river.org", "priya.walker@frontierrecord.com",
                                   "a_b-c@x.io", "j.doe@mail.cs.example-uni.ac.uk",
                                   "OBRIEN.ELENA@DAILYCLARION.NET"])
def test_emails(scrubber, value):
    out = scrubbed(scrubber, "Send tips to {}. Thanks.", value, "email")
    assert any(p in out for p in EMAIL_PLACEHOLDERS) and out.endswith(". Thanks.")


@pytest.mark.parametrize("value,kind", [
    ("8.8.4.4", "ipv4"), ("96.255.68.157", "ipv4"), ("2a00:1450:4001:82a::200e", "ipv6"),
    ("2001:4860:4860::8888", "ipv6"), ("2571:852e:7c58:6be5:627:c293:2595:78df", "ipv6"),
    ("2A00:1450::1", "ipv6")])
def test_public_ips(scrubber, value, kind):
    out = scrubbed(scrubber, "Requests came from {} over the weekend.", value, kind)
    assert (out.split()[3] in IPV4_PLACEHOLDERS) if kind == "ipv4" else "<IPV6_ADDRESS>" in out


@pytest.mark.parametrize("value", ["241-31-0303", "800 20 2713", "147.08.9188"])
def test_ssns(scrubber, value):
    assert "<US_SSN>" in scrubbed(scrubber, "The form listed his Social Security number as {}.", value, "ssn")


def test_bare_ssn_needs_keyword(scrubber):
    assert scrubber.scrub("Her SSN is 241310303.")[0] == "Her SSN is <US_SSN>."
    assert scrubber.scrub("Reference 241310303.")[1] == {}


LOOKALIKES = [
    "4.18.0.553", "build 5.11.9.699", "build 6.10.3.42", "v2.21.8", "version 12.21.18", "1.2.3.4.5",
    "10.118.19.8", "192.168.1.1", "127.0.0.1", "172.16.5.4", "169.254.0.9", "100.64.1.2",  # private IPs
    "192.0.2.5", "198.51.100.7", "203.0.113.9", "2001:db8::2551", "::1", "fe80::1",  # documentation, local
    "2024-04-27", "06/10/2024", "13.02.2024", "978-5-637-61525-4", "ISBN 0-306-40615-2",  # dates, ISBNs
    "$2,959.99", "€78,395", "£616.00", "3,885,861", "1957-1965", "1998–2017", "2022/23",  # prices, years
    "INV-2024-32427", "order #3747372", "PO 0252-9417", "order 715-4273852-6547604", "ZIP 20500-0003",  # ids
    "4111 1111 1111 1112", "DE89 3704 0044 0532 0130 01", "912-34-5678",  # checksum or rule fails
    "12:30:45", "std::vector", "image@2x.png", "user@localhost", "email@example.com", "22.214.171.124",
    "Invoice 2024-000123", "part no. 555-0199-001", "Order number 555-010-1234", "Boston, MA 02134-1234",  # labelled
    "224.0.0.1", "ff02::1",  # multicast groups
    "WO 2019/123456", "case 2021-004512"]  # a year and a serial


@pytest.mark.parametrize("text,expected", [
    ("Reach the desk (+44 7700 900807) today.", "Reach the desk (<PHONE_NUMBER>) today."),
    ("Reach the desk [+61 491 570 156] today.", "Reach the desk [<PHONE_NUMBER>] today."),
    ("Call the desk ((212) 555-0148) today.", "Call the desk (<PHONE_NUMBER>) today."),
    ("It came from 2e41:3563:a436:1409:d02d:2579:c2ad:4b6e: a home router.",
     "It came from <IPV6_ADDRESS>: a home router.")])
def test_brackets_and_punctuation_around_pii(scrubber, text, expected):
    """libphonenumber's match starts at an opening bracket it does not close, and presidio's IPv6 pattern
    refuses an address followed by ':'. Both used to leak; the brackets stay balanced."""
    assert scrubber.scrub(text)[0] == expected


@pytest.mark.parametrize("value", LOOKALIKES)
def test_lookalikes_survive_verbatim(scrubber, value):
    text = f"The notes mention {value} in passing."
    assert scrubber.scrub(text) == (text, {})


def test_number_tables_survive(scrubber):
    """One in ten digit groups passes Luhn: a row of a table is not a card (nor a phone number)."""
    table = "\n".join(" ".join(str(1000 + i * j) for j in range(12)) for i in range(60))
    assert scrubber.scrub(table) == (table, {})


def test_empty_and_candidate_free_text(scrubber):
    assert scrubber.scrub("") == ("", {})
    text = "No numbers here, only words: the council met on Tuesday and approved the budget."
    assert scrubber.scrub(text) == (text, {})


def test_placeholders_deterministic_and_idempotent(scrubber):
    docs = [f"Mail {e} or see {ip}." for e in ("a@wire-river.org", "b@wire-river.org", "c@frontier.com")
            for ip in ("8.8.4.4", "96.255.68.157", "31.106.194.23")]
    forward = [scrubber.scrub(d)[0] for d in docs]
    backward = [scrubber.scrub(d)[0] for d in reversed(docs)][::-1]
    assert forward == backward == [scrubber.scrub(d)[0] for d in docs]
    assert placeholder("ipv4", "8.8.4.4") in forward[0]
    assert placeholder("email", "a@wire-river.org") in forward[0]
    assert all(scrubber.scrub(out) == (out, {}) for out in forward)


def test_no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    _, counts = PiiScrubber().scrub("Write to jane.doe@newsroom.co.uk or call +44 20 7946 0958.")
    assert counts == {"email": 1, "phone": 1}


def test_entity_selection_and_errors(scrubber):
    text = "Mail a@wire-river.org or call (212) 555-0148."
    out, counts = PiiScrubber(entities=("email",)).scrub(text)
    assert counts == {"email": 1} and "(212) 555-0148" in out
    with pytest.raises(ValueError, match="choose from"):
        PiiScrubber(entities=("emails",))
    with pytest.raises(ValueError, match="ner_model"):
        PiiScrubber(entities=("person",))
    with pytest.raises(RuntimeError, match="spacy download en_core_web_zz.*pip install"):
        ScrubPii(ner_model="en_core_web_zz")


def test_ner_with_a_saved_pipeline(tmp_path):
    spacy = pytest.importorskip("spacy")
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns([{"label": "PERSON", "pattern": "Alice Smith"},
                                               {"label": "GPE", "pattern": "Cardiff"}])
    nlp.to_disk(tmp_path / "ner")
    scrubber = PiiScrubber(ner_model=str(tmp_path / "ner"))
    out, counts = scrubber.scrub("Alice Smith moved to Cardiff; call 020 7946 0018.")
    assert out == "<PERSON> moved to <LOCATION>; call <PHONE_NUMBER>."
    assert counts == {"location": 1, "person": 1, "phone": 1}


def test_datatrove_step_counts_stats():
    step = pickle.loads(pickle.dumps(ScrubPii()))  # executors ship steps to workers
    docs = [Document(text="Mail a@wire-river.org, b@wire-river.org; SSN 241-31-0303.", id="1"),
            Document(text="Nothing to see.", id="2")]
    out = list(step.run(iter(docs)))
    assert out[0].text.count("@example.") == 2 and "<US_SSN>" in out[0].text
    assert out[1].text == "Nothing to see."
    assert [step.stats[k].total for k in ("pii_email", "pii_ssn", "pii_docs_changed")] == [2, 1, 1]
