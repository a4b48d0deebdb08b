"""Validation rules of stage 7: given a span presidio proposed, is it really PII? Pure functions of the text.

presidio's recognizers already apply the checksums (Luhn for cards, ISO 7064 mod-97 + country format for
IBANs, `ipaddress` parsing for IPs, SSA exclusions for SSNs). These rules add what keeps look-alikes verbatim:
- IP: only global unicast addresses (`ipaddress.is_global`, not multicast: private, loopback, link-local, shared,
  multicast, documentation ranges 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 and 2001:db8::/32 stay: none
  of them names one machine of one person); an IPv4 must not be part of a
  longer dotted sequence (FineWeb's regex turns build 4.18.0.553 into a placeholder + "3") nor follow
  "version"/"build".
- SSN: AAA-GG-SSSS with one separator kind, area 001-899 but not 666 (SSA: 9xx are ITINs); nine bare digits
  only next to an SSN keyword (presidio's ddddd-dddd pattern is a ZIP+4 code: never taken).
- Phone: a phone shape (+country code, NANP with area code, 0-trunk national; 7-digit local or unseparated
  digits only next to a phone word; an extension such as "x204" is replaced with the number, judged without it),
  or >= 9 digits valid for libphonenumber in one of PHONE_REGIONS —
  fiction ranges (555-01xx, Ofcom drama numbers) are not "valid" but are phone numbers; never a date, year
  range, ISBN, version or a piece of a longer code.
- Card: an issuer prefix, card grouping, not a piece of a code or a row of a number table.
"""

from __future__ import annotations

import ipaddress
import re

_VERSION_WORD = re.compile(r"(?:\bv|\bversion|\bbuild|\brelease|\bfirmware|\bkernel|\bver\.?|\brev\.?)\s*$",
                           re.IGNORECASE)
_ISBN_OR_PRICE_BEFORE = re.compile(r"\bISBN[-:\s]*$|[$€£¥]\s?$", re.IGNORECASE)
_SSN_WORD = re.compile(r"\b(?:ssn|ssns|social security|ss#|ssa)\b", re.IGNORECASE)
_PHONE_WORD = re.compile(r"\b(?:call|phone|tel|telephone|fax|dial|ring|mobile|cell|helpline|hotline|"
                         r"reached|contact|text|whatsapp|sms)\b", re.IGNORECASE)

_INTL = re.compile(r"\+\d{1,3}[ .\-]?(?:\(\d{1,4}\)[ .\-]?)?\d{1,5}(?:[ .\-]?\d{1,5}){0,4}")
_NANP = re.compile(r"(?:\+?1[ .\-]?)?(?:\(\d{3}\) ?|\d{3}[ .\-])\d{3}[ .\-]\d{4}")
_TRUNK = re.compile(r"\(?0\d{1,4}\)?(?:[ \-]\d{2,6}){1,4}")
_LOCAL7 = re.compile(r"\d{3}[-.]\d{4}")
_ZIP4 = re.compile(r"\d{5}-\d{4}")  # US ZIP+4; phone numbers are almost never grouped 5-4
# a year, then a slash or dash and one long serial: "WO 2019/123456", "2024-000123" (case, patent, file numbers)
_YEAR_SERIAL = re.compile(r"(?:19|20)\d\d[/\-]\d{4,8}")
# an identifier's label just before the digits: "Invoice 2024-000123", "part no. 555-0199-001", "ZIP code …"
_ID_WORD = re.compile(r"\b(?:invoice|order|ref|reference|serial|sku|part|item|ticket|case|zip|postcode|postal code|"
                      r"patent|model|product|account|acct|tracking|batch|lot)\.?(?:\s*(?:no|nr|num|number|id|code)\.?)?"
                      r"\s*[:#]?\s*$", re.IGNORECASE)
_EXTENSION = re.compile(r"[ ,]*(?:x|ext\.?|extn\.?|extension)\s*\d{1,6}$", re.IGNORECASE)  # "… x204", "… ext. 12"
_DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")
_YEAR_RANGE = re.compile(r"(?:1[5-9]|20)\d\d ?[-\u2013/] ?(?:(?:1[5-9]|20)\d\d|\d\d)")
_ISBN = re.compile(r"97[89][- ]?\d{1,5}[- ]\d{1,7}[- ]\d{1,7}[- ]\d")
_SSN_SHAPE = re.compile(r"\d{3}([-. ])\d{2}\1\d{4}")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_QUAD = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
# issuer prefixes (ISO/IEC 7812 ranges in use): Visa 4, Mastercard 51-55 and 2221-2720, Amex 34/37, Diners
# 300-305/36/38/39, JCB 35, Discover/UnionPay/Maestro 6; presidio's pattern also takes 1xxx (UATP, rare).
_CARD_IIN = re.compile(r"4|5[0-5]|2[2-7]|3[4-9]|30[0-5]|6")
_GROUP_BEFORE, _GROUP_AFTER = re.compile(r"[0-9][ -]$"), re.compile(r"[ -][0-9]")  # another digit group
_IPV4_IN = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
_SSN_IN = re.compile(r"(?<!\d)\d{3}([-. ]?)\d{2}\1\d{4}(?!\d)")
_DOTTED_ANY = re.compile(r"\d+(?:\.\d+)+")
_DOTTED = re.compile(r"\d+(?:\.\d+){3,}")  # 4.18.0.553: versions and build numbers, never phones


def number_groups(value: str, before: str = "") -> tuple[str, ...]:
    """Which recognizers a digit-run candidate (`before`: the character before it) needs, in priority order:
    cheap shape checks spare presidio most numbers."""
    digits = sum(map(str.isdigit, value))
    if _DOTTED_ANY.fullmatch(value):  # 8.8.8.8 IP, (+1.)212.555.0148 phone, 147.08.9188 SSN, 12.21.18 version
        if value.count(".") == 3 and _is_global(value):
            return ("ipv4",)  # 10.0.0.1, 5.11.9.699: presidio need not look
        return ("phone_us",) if _NANP.fullmatch(value) else ("ssn",) if _SSN_SHAPE.fullmatch(value) else ()
    if any(p.fullmatch(value) for p in (_DATE, _YEAR_RANGE, _ISBN)):
        return ()
    groups = ("ipv4",) if _IPV4_IN.search(value) else ()  # 8.8.8.0/24, two addresses in a row
    if digits >= 13:
        groups += ("credit_card",)
    if _SSN_IN.search(value):
        groups += ("ssn",)
    if digits >= 7 and not _SSN_SHAPE.fullmatch(value):
        groups += ("phone_gb",) if before == "+" or value[0] == "0" else ("phone_us",)
    return groups


def _is_global(value: str) -> bool:
    if not _QUAD.fullmatch(value):
        return False  # 5.11.9.699: cheaper than ipaddress's ValueError
    try:
        return _personal(ipaddress.ip_address(value))
    except ValueError:
        return False


def _personal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A public unicast address: one that can point at one person's machine (multicast groups cannot)."""
    return ip.is_global and not ip.is_multicast


def may_be_global_ipv6(token: str) -> bool:
    """False when the ':'-token can hold no global IPv6 address: a time (12:30:45: an address has '::' or 7
    colons), or an address that parses as non-global (::1, fe80::1, 2001:db8::1). presidio decides the rest.
    """
    if "::" not in token and token.count(":") < 6:  # 6: IPv4-embedded x:x:x:x:x:x:d.d.d.d
        return False
    try:
        return _personal(ipaddress.IPv6Address(token.rstrip(".:")))
    except ValueError:
        return True  # "fe80::1%eth0", "2001:db8::/32", a trailing word: let presidio's regex find the address


def _digits(value: str) -> str:
    return "".join(filter(str.isdigit, value))


def ip_kind(text: str, start: int, end: int) -> str | None:
    """'ipv4' / 'ipv6' for a global address at text[start:end] (an optional /prefix allowed), else None."""
    value = text[start:end].split("/")[0].split("%")[0]
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None
    if not _personal(ip):
        return None
    if ip.version == 6:
        return "ipv6"
    before, after = text[max(0, start - 2):start], text[end:end + 2]
    if re.search(r"[\d.]$", before) or re.match(r"\.\d|\d", after):
        return None  # part of a longer dotted sequence: 1.2.3.4.5, 4.18.0.55|3
    if _VERSION_WORD.search(text[max(0, start - 12):start]):
        return None  # "build 6.10.3.42", "v1.2.3.4"
    return "ipv4"


def card_ok(text: str, start: int, end: int) -> bool:
    """presidio checked Luhn (which 1 in 10 random numbers pass); also 13-19 digits with an issuer prefix,
    grouped as cards are (4-4-4-4[-3], Amex 4-6-5) with one separator kind, not a piece of a longer code
    (order 715-4273852-6547604) and not one row of a number table (1998 2001 2004 2007 2010)."""
    value = text[start:end]
    groups = [len(g) for g in re.split(r"[ -]", value)]
    grouped = len(groups) == 1 or groups == [4, 6, 5] or all(g == 4 for g in groups[:-1]) and groups[-1] <= 4
    in_table = _GROUP_BEFORE.search(text, max(0, start - 2), start) or _GROUP_AFTER.match(text, end)
    return (13 <= len(_digits(value)) <= 19 and grouped and not (" " in value and "-" in value)
            and bool(_CARD_IIN.match(value)) and not in_table and not _piece_of_code(text, start, end))


def ssn_ok(text: str, start: int, end: int) -> bool:
    value = text[start:end]
    digits = _digits(value)
    if len(digits) != 9 or digits[:3] == "666" or digits[0] == "9":
        return False
    if re.fullmatch(r"\d{3}([- .])\d{2}\1\d{4}", value):
        return not _piece_of_code(text, start, end)
    # nine bare digits (or other groupings): only with an SSN keyword just before
    return value.isdigit() and bool(_SSN_WORD.search(text[max(0, start - 40):start]))


def _piece_of_code(text: str, start: int, end: int) -> bool:
    """INV-2024-32427, 12-555-0123-77, abc555-0123, #3747372: the span continues a longer token, or an id."""
    before, after = text[max(0, start - 2):start], text[end:end + 2]
    return bool(re.search(r"\w[-./]?$|[-/#]$", before) or re.match(r"[-/.]?\w|[-/]", after)
                and not re.match(r"\.(\s|$)", after))


def _looks_like_other(value: str, text: str, start: int) -> bool:
    """Dates, year ranges, ISBNs, SSN-shaped numbers, dotted versions, prices."""
    if any(p.fullmatch(value) for p in (_DATE, _YEAR_RANGE, _ISBN, _SSN_SHAPE, _DOTTED)):
        return True
    before = text[max(0, start - 12):start]
    return bool(_ISBN_OR_PRICE_BEFORE.search(before) or _VERSION_WORD.search(before))


def phone_ok(text: str, start: int, end: int, regions) -> bool:
    """Valid in one of `regions` (libphonenumber) or shaped like a phone number; not a look-alike."""
    import phonenumbers

    value = text[start:end].strip()
    if ext := _EXTENSION.search(value):  # libphonenumber's match may carry the extension: judge the number
        value = value[:ext.start()]
        end = text.index(value, start) + len(value)
    n = len(_digits(value))
    if n < 7 or n > 15 or _piece_of_code(text, start, end) or _looks_like_other(value, text, start):
        return False
    phone_word = bool(_PHONE_WORD.search(text[max(0, start - 40):start]))
    if _ID_WORD.search(text[max(0, start - 24):start]) and not phone_word:
        return False  # labelled as an order, invoice, part or ZIP number, and no phone word says otherwise
    if _NANP.fullmatch(value) or n >= 8 and _INTL.fullmatch(value):
        return True
    if 9 <= n <= 11 and _TRUNK.fullmatch(value) and not _ZIP4.fullmatch(value):
        return True
    if _LOCAL7.fullmatch(value) or _ZIP4.fullmatch(value) or _YEAR_SERIAL.fullmatch(value) or value.isdigit():
        # 555-0123, 2125550148, 02134-1234, 2019/123456:
        return phone_word  # ids, timestamps and ZIP codes look the same
    if n < 9:
        return False  # shorter "valid" numbers without a phone shape are mostly ids (IE: PO 0252-9417)
    for region in regions:
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(value, region)):
                return True
        except phonenumbers.NumberParseException:
            continue
    return False
