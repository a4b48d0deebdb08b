"""Stage 2 benchmark: datatrove's URLFilter (FineWeb's) vs our UrlBlocklistFilter on the same ~50 k URLs.

Each (filter, cold|warm) run is a fresh child process, so one filter's memory never shows in the other's
peak RSS. Cold = empty cache (datatrove: a fresh HF_HOME, where it untars UT1; ours: a fresh cache dir, where
it builds the hash index); warm = the same cache again, as every later task on a machine sees it.
Printed per run: load seconds, URLs/s, peak RSS (ru_maxrss) and its growth over the bare interpreter with
imports; then the ratios and how many URLs the two filters decide differently (with examples).

Run: `.venv/bin/python -m benchmarks.bench_blocklist [--n 50000] [--truth ../shared/bench/truth.jsonl]`
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def rss_mb(field: str = "VmRSS") -> float:
    """VmRSS (now) or VmHWM (peak) of this process, from /proc (Linux); ru_maxrss as a fallback for the peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_filter(kind: str, cache_dir: str):
    if kind == "datatrove":
        from datatrove.pipeline.filters import URLFilter
        from tldextract import TLDExtract

        flt = URLFilter()
        flt.tldextractor = TLDExtract(suffix_list_urls=())  # offline: the PSL snapshot tldextract ships
        flt.download_data()
        return flt
    from corpus.filter_url import UrlBlocklistFilter

    flt = UrlBlocklistFilter(cache_dir=cache_dir)
    flt.load()
    return flt


def child(kind: str, urls_file: str, cache_dir: str, out: str) -> None:
    import datatrove.pipeline.filters  # noqa: F401
    from datatrove.data import Document

    import corpus.filter_url  # noqa: F401  (imports count as baseline for both)

    urls = json.loads(Path(urls_file).read_text())
    base = rss_mb()
    t0 = time.perf_counter()
    flt = make_filter(kind, cache_dir)
    load_s = time.perf_counter() - t0
    docs = [Document(text="", id=str(i), metadata={"url": u}) for i, u in enumerate(urls)]
    t0 = time.perf_counter()
    results = [flt.filter(d) for d in docs]
    run_s = time.perf_counter() - t0
    blocked = [i for i, r in enumerate(results) if r is not True]
    reasons = Counter(r[1] if isinstance(r, tuple) else "dropped" for r in results if r is not True)
    Path(out).write_text(json.dumps({"load_s": load_s, "urls_per_s": len(urls) / run_s, "base_mb": base,
                                     "rss_mb": rss_mb(), "peak_mb": rss_mb("VmHWM"), "blocked": blocked,
                                     "reasons": dict(reasons.most_common())}))


def synthetic_urls(n: int, seed: int = 0) -> list[str]:
    """Innocent article URLs, UT1 domains (bare, www., subdomains, no scheme), UT1 URLs with a scheme, and
    banned-word paths, in fixed proportions (seeded: the same list every run)."""
    from datatrove.utils._import_utils import ASSETS_PATH

    from corpus.blocklist_index import list_lines, read_ut1

    rng = random.Random(seed)
    banned = {w.lstrip("#") for f in ("banned_words.txt", "soft_banned_words.txt")
              for w in list_lines(Path(ASSETS_PATH) / f)}
    # innocent slice: dictionary words minus FineWeb's banned words (any block there is a false block)
    words = [w for w in list_lines(REPO / "blocklists" / "english_words.txt") if len(w) > 3 and w not in banned]
    domains, ut1_urls = read_ut1(Path(ASSETS_PATH) / "url_filterblacklistsv0_3_0.tar.gz")
    banned = sorted(list_lines(Path(ASSETS_PATH) / "banned_words.txt"))
    tlds = ["com", "org", "net", "co.uk", "de", "io", "news", "com.au"]
    out = []
    for i in range(n):
        kind = i % 10
        if kind < 5:  # 50 % innocent
            host = rng.choice(words) + rng.choice(words) + "." + rng.choice(tlds)
            out.append(f"https://www.{host}/{rng.choice(words)}/{rng.choice(words)}-{rng.choice(words)}-{i}")
        elif kind < 8:  # 30 % UT1 domains in several forms
            d = rng.choice(domains)
            out.append(rng.choice([f"https://{d}/p/{i}", f"http://www.{d}/", f"https://cdn.{d}/x.jpg", f"{d}/a"]))
        elif kind == 8:  # 10 % UT1 URLs, crawled with a scheme
            out.append(rng.choice(["http://", "https://www."]) + rng.choice(ut1_urls))
        else:  # 10 % banned words in an article path
            out.append(f"https://{rng.choice(words)}news.com/new-{rng.choice(banned).lstrip('#')}-clips-{i}")
    return out


def run_child(kind: str, urls_file: str, cache_dir: str, env: dict) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    cmd = [sys.executable, "-m", "benchmarks.bench_blocklist", "--child", kind, "--urls-file", urls_file,
           "--cache-dir", cache_dir, "--out", out]
    subprocess.run(cmd, cwd=REPO, env={**os.environ, **env}, check=True)
    result = json.loads(Path(out).read_text())
    os.unlink(out)
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000, help="number of synthetic URLs (plus the truth URLs)")
    parser.add_argument("--truth", default=str(REPO.parent / "shared" / "bench" / "truth.jsonl"),
                        help="benchmark truth.jsonl whose URLs are added (skipped if the file is absent)")
    parser.add_argument("--child", choices=["datatrove", "ours"], help="internal: run one filter and exit")
    parser.add_argument("--urls-file", help="internal: JSON list of URLs for --child")
    parser.add_argument("--cache-dir", help="internal: our cache dir for --child")
    parser.add_argument("--out", help="internal: where --child writes its JSON result")
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.urls_file, args.cache_dir, args.out)

    urls = synthetic_urls(args.n)
    innocent = {i for i in range(len(urls)) if i % 10 < 5}  # the synthetic slice of random-word URLs
    if Path(args.truth).exists():
        urls += [json.loads(line)["url"] for line in Path(args.truth).read_text().splitlines()]
    with tempfile.TemporaryDirectory() as tmp:
        urls_file = os.path.join(tmp, "urls.json")
        Path(urls_file).write_text(json.dumps(urls))
        runs = {}
        for kind in ("datatrove", "ours"):
            for state in ("cold", "warm"):  # same HF_HOME / cache dir twice: the second run finds it filled
                env = {"HF_HOME": os.path.join(tmp, "hf")}
                runs[kind, state] = run_child(kind, urls_file, os.path.join(tmp, "cache"), env)
    report(urls, runs, innocent)


def report(urls: list[str], runs: dict, innocent: set[int]) -> None:
    print(f"{len(urls)} URLs ({len(innocent)} random-word article URLs); each row is a fresh process. RSS in MB:")
    print("base = after imports, before loading; added = RSS at the end minus base; peak = VmHWM of the process")
    print(f"{'filter':10} {'cache':5} {'load s':>7} {'URLs/s':>8} {'base':>6} {'added':>6} {'peak':>6} "
          f"{'blocked':>8} {'random-word URLs blocked':>25}")
    for (kind, state), r in runs.items():
        print(f"{kind:10} {state:5} {r['load_s']:7.2f} {r['urls_per_s']:8.0f} {r['base_mb']:6.0f} "
              f"{r['rss_mb'] - r['base_mb']:6.0f} {r['peak_mb']:6.0f} {len(r['blocked']):8d} "
              f"{len(innocent.intersection(r['blocked'])):25d}")
    dt, ours = runs["datatrove", "warm"], runs["ours", "warm"]
    for state in ("cold", "warm"):
        print(f"load time ratio datatrove/ours ({state}): "
              f"{runs['datatrove', state]['load_s'] / runs['ours', state]['load_s']:.1f}x")
    print(f"added RSS ratio datatrove/ours (warm): "
          f"{(dt['rss_mb'] - dt['base_mb']) / max(ours['rss_mb'] - ours['base_mb'], 1):.1f}x")
    print(f"throughput ratio ours/datatrove (warm): {ours['urls_per_s'] / dt['urls_per_s']:.2f}x")
    print(f"reasons datatrove: {dt['reasons']}\nreasons ours: {ours['reasons']}")
    only_dt, only_ours = set(dt["blocked"]) - set(ours["blocked"]), set(ours["blocked"]) - set(dt["blocked"])
    print(f"blocked by datatrove only: {len(only_dt)}, e.g. {[urls[i] for i in sorted(only_dt)[:5]]}")
    print(f"blocked by ours only: {len(only_ours)}, e.g. {[urls[i] for i in sorted(only_ours)[:5]]}")
    for name, r in (("datatrove", dt), ("ours", ours)):
        blocked = sorted(innocent.intersection(r["blocked"]))[:8]
        print(f"random-word URLs blocked by {name}: {[urls[i] for i in blocked]}")


if __name__ == "__main__":
    main()
