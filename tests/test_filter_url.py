"""Stage 2 URL blocklist (corpus/filter_url.py, corpus/blocklist_index.py).

Checks each reason slug on a tiny custom list (fast, no UT1), the innocent near-misses (bird names, words and
place names that contain a banned substring, sibling subdomains, a listed domain in the query string), URL
forms (scheme or not, `www.`, port, user-info, case, trailing dot, IDN), invalid URLs, the on-disk cache
(build, reuse, a truncated file rebuilt, a concurrent builder) and, in one test, the full UT1 list.
Run: `.venv/bin/python -m pytest -q tests/test_filter_url.py`.
"""

from __future__ import annotations

import multiprocessing
import pickle
import time

import numpy as np
import pytest
from datatrove.data import Document

from corpus.blocklist_index import key_hash, load_or_build, normalize_host
from corpus.filter_url import UrlBlocklistFilter, parse_url, url_keys

DOMAINS = """# tiny test list
adult-example.com
x.blogspot.com
bücher-adult.example
xn--sex-bder-4za.example
sa.com
xxx
10.9.8.7
"""
URLS = """badsite.org/gallery/page
https://Upper.Example.net/Some/Path/
"""


@pytest.fixture
def lists(tmp_path):
    folder = tmp_path / "lists"
    folder.mkdir()
    (folder / "domains.txt").write_text(DOMAINS, encoding="utf-8")
    (folder / "urls.txt").write_text(URLS)
    return folder


@pytest.fixture
def tiny(lists, tmp_path):
    return UrlBlocklistFilter(use_ut1=False, extra_lists_dir=lists, cache_dir=tmp_path / "cache")


def reason(flt, url):
    return flt.reject_reason(Document(text="", id="x", metadata={"url": url}))


@pytest.mark.parametrize("url, expected", [
    ("https://adult-example.com/a", "url_domain"),
    ("adult-example.com", "url_domain"),
    ("http://user:pw@WWW.Adult-Example.COM.:8080/x?y=1", "url_domain"),
    ("https://cdn.adult-example.com/img/1.jpg", "url_subdomain"),
    ("https://a.b.adult-example.com/", "url_subdomain"),
    ("https://x.blogspot.de/2024/01/post.html", "url_domain"),  # blogspot country aliases are one blog
    ("https://xn--bcher-adult-thb.example/", "url_domain"),  # listed in Unicode, crawled in punycode
    ("https://sex-bäder.example/", "url_domain"),  # listed in punycode, crawled in Unicode
    ("https://sa.com/", "url_domain"),
    ("https://anything.xxx/", "url_subdomain"),  # listed TLD in parent_suffixes.txt
    ("http://10.9.8.7/x", "url_domain"),
    ("http://badsite.org/gallery/page", "url_listed"),
    ("https://www.badsite.org/gallery/page/", "url_listed"),
    ("badsite.org/gallery/page/2", "url_listed"),  # below a listed URL (squidGuard urllist semantics)
    ("https://upper.example.net/some/path", "url_listed"),
    ("https://news.example.org/top-beaner-gallery-6753", "url_banned_word"),
    ("https://news.example.org/new-tits-videos", "url_banned_word"),
    ("https://porn.example.org/", "url_banned_word"),
    ("https://news.example.org/gallery/sadism-incest-1473", "url_soft_banned_words"),
    ("https://www.bigbreastsworld.com/watch/1", "url_banned_subword"),
    ("https://www.gangbangzone.com/watch/1", "url_banned_subword"),
    ("https://news.example.org/big-breasts-here", "url_banned_subword"),
    ("https://xvideos.com/", "url_banned_subword"),
    ("https://freegangbang.example/", "url_banned_subword"),  # after a dictionary word
    ("https://gangbangvids4u.example/", "url_banned_subword"),  # whatever follows
])
def test_each_reason(tiny, url, expected):
    assert reason(tiny, url) == expected


@pytest.mark.parametrize("url", [
    "https://atlasmonitor.com/nature/species/coal-tit-and-marsh-tit-identification-26",
    "https://heritagetelegraph.news/garden/birds/blue-tits-feeding-habits-2",
    "https://www.brighttribune.com/wildlife/birds/great-tit-nesting-season-guide-80",
    "https://example.org/long-tailed-tit-flock",
    "https://example.org/tit-for-tat-tariffs",
    "https://www.titaniumtools.com/money/35869",
    "https://www.cumberlandgazette.co.uk/arts/85567",
    "https://www.shitakegrowers.com/sport/57219",
    "https://www.classicmotors.com/world/94877",
    "https://www.therapistdirectory.org/travel/37056",
    "https://www.scunthorpe-telegraph.co.uk/news/1",
    "https://www.middlesex.ac.uk/analysis/cocktail-essex-sussex",
    "https://sussexfreepress.co.uk/",  # 'sexfree' across a word: not at a word boundary
    "https://boxvideos.example/",  # 'xvideos' inside 'boxvideos'
    "https://essexdollhouse.example/",  # 'sexdoll' after 'es', no word
    "https://y.blogspot.com/",  # sibling of the listed x.blogspot.com
    "https://blogspot.com/",
    "https://adult-example.com.evil.org/",  # a listed name is not a parent here
    "https://www.example.org/report?ref=adult-example.com",
    "https://www.example.org/blocklist-report?ref=porn-tube.com",  # words in the query are not read
    "https://dynu.sa.com/",  # sa.com is a public suffix: it blocks only itself
    "https://badsite.org/gallery/pages",  # not a path-segment prefix
    "https://badsite.org/gallery",
])
def test_innocent_near_misses(tiny, url):
    assert reason(tiny, url) is None


@pytest.mark.parametrize("url", ["", None, "http://[::1", "http:///no-host", "https://exa mple.com/",
                                 "https://bad_idn_\udcff.com/"])
def test_invalid_url(tiny, lists, tmp_path, url):
    assert reason(tiny, url) == "url_invalid"
    keep = UrlBlocklistFilter(use_ut1=False, extra_lists_dir=lists, cache_dir=tmp_path / "c", keep_invalid=True)
    assert reason(keep, url) is None


def test_normalization():
    assert normalize_host("WWW.Example.COM.") == "example.com"
    assert normalize_host("www.com") == "www.com"
    assert normalize_host("a.blogspot.co.uk") == "a.blogspot.com"
    assert parse_url("HTTP://u@Host.Example:99/P?Q").host == "host.example"
    assert url_keys(parse_url("h.com/a/b/?q=1")) == ["h.com", "h.com/a", "h.com/a/b", "h.com/a/b?q=1"]
    assert key_hash("example.com") == 0x2883ba7dc9aa3289  # xxh64 seed 0: must never change across runs


def test_datatrove_run_counts_reasons(tiny):
    docs = [Document(text="t", id=str(i), metadata={"url": u}) for i, u in
            enumerate(["https://adult-example.com/", "https://ok.example.org/", "nonsense://"])]
    kept = list(tiny.run(docs))
    assert [d.id for d in kept] == ["1"]
    assert tiny.stats["dropped_url_domain"].total == 1 and tiny.stats["dropped_url_invalid"].total == 1
    assert len(pickle.dumps(tiny)) < 10_000  # loaded arrays are not shipped to workers


def test_cache_reuse_and_truncation(tiny, lists, tmp_path):
    assert reason(tiny, "https://adult-example.com/") == "url_domain"
    (folder,) = [p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]
    again = UrlBlocklistFilter(use_ut1=False, extra_lists_dir=lists, cache_dir=tmp_path / "cache")
    again._build = lambda ut1: pytest.fail("a valid cache must be reused, not rebuilt")
    assert reason(again, "https://adult-example.com/") == "url_domain"
    size = (folder / "keys.npy").stat().st_size
    with open(folder / "keys.npy", "r+b") as f:
        f.truncate(size - 8)  # drop the last hash
    fresh = UrlBlocklistFilter(use_ut1=False, extra_lists_dir=lists, cache_dir=tmp_path / "cache")
    assert reason(fresh, "https://adult-example.com/") == "url_domain"
    assert (folder / "keys.npy").stat().st_size == size
    (lists / "domains.txt").write_text("other.example\n")  # new lists -> a new cache key
    changed = UrlBlocklistFilter(use_ut1=False, extra_lists_dir=lists, cache_dir=tmp_path / "cache")
    assert reason(changed, "https://adult-example.com/") is None
    assert reason(changed, "https://other.example/") == "url_domain"


def _build_slowly(cache_dir, log):
    def build():
        with open(log, "a") as f:
            f.write("built\n")
        time.sleep(0.3)  # long enough for the other process to find the cache missing
        return np.array([1, 2, 3], dtype=np.uint64)

    return list(load_or_build(cache_dir, "ab" * 32, build).keys)


def test_concurrent_builders_build_once(tmp_path):
    log = tmp_path / "log"
    with multiprocessing.get_context("fork").Pool(2) as pool:
        results = pool.starmap(_build_slowly, [(tmp_path / "cache", log)] * 2)
    assert results == [[1, 2, 3], [1, 2, 3]]
    assert log.read_text() == "built\n"  # the second process waited on the lock, then mapped the result
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")] == ["ab" * 16]


@pytest.mark.slow
def test_full_ut1_list():
    """The shipped lists (UT1 from datatrove + blocklists/); builds the per-machine cache once (~10 s)."""
    flt = UrlBlocklistFilter()
    assert reason(flt, "https://www.momsover50.com/science/32375") == "url_domain"
    assert reason(flt, "https://cdn.officialsexy.com/money/96924") == "url_subdomain"
    assert reason(flt, "https://cumshotsandcreampies.blogspot.mx/2024/01/post-9890.html") == "url_domain"
    assert reason(flt, "http://xmetb.verandavenir.fr/bccb1cc435") == "url_listed"
    assert reason(flt, "https://capitalrecipes94.blogspot.sn/2024/02/post-2052.html") is None
    assert reason(flt, "https://www.keystonedigest.com/report-473?ref=femjoygirlz.com") is None
    assert reason(flt, "https://www.bbc.co.uk/news/science-environment-1") is None
