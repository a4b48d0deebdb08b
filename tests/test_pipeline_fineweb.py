"""End to end: `python -m pipelines.fineweb` on the sample WARCs in tests/data/ (made by tests/make_sample_warcs.py).

Checks, against tests/data/expected_fates.json (every record's designed fate): exactly the `keep` records come out,
in FineWeb's Parquet columns, with every funnel count and drop reason as designed; the funnel is printed and saved;
a run killed midway and rerun gives exactly the output of an uninterrupted run; 1 task and 3 tasks give the same
documents; --keep-rejected writes dropped documents under rejected/NN_stage/.
"""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FATES = json.load(open(os.path.join(ROOT, "tests", "data", "expected_fates.json"), encoding="utf-8"))
EXPECTED_KEPT = sorted(i for i, f in FATES.items() if f["fate"] == "keep")


def fineweb(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.fineweb", *args], cwd=ROOT, capture_output=True,
                          text=True, **kwargs)


def read_output(out: str) -> list[dict]:
    rows = []
    for name in sorted(os.listdir(os.path.join(out, "data"))):
        rows += pq.read_table(os.path.join(out, "data", name)).to_pylist()
    return sorted(rows, key=lambda r: r["id"])


def reasons(funnel: dict) -> collections.Counter:
    counts = collections.Counter()
    for steps in funnel.values():
        for step in steps:
            counts.update(step["reasons"])
    return counts


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("fineweb") / "out")
    result = fineweb("--output", out, "--workers", "2", "--keep-rejected")
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


def test_exactly_the_designed_documents_survive(sample_run):
    out, _ = sample_run
    rows = read_output(out)
    assert [r["id"] for r in rows] == EXPECTED_KEPT
    assert list(rows[0]) [:9] == ["text", "id", "dump", "url", "date", "file_path", "language", "language_score",
                                  "token_count"]
    for r in rows:
        assert r["dump"] == "CC-MAIN-2024-10" and r["language"] == "en" and r["language_score"] >= 0.65
        assert r["url"] == FATES[r["id"]]["url"] and r["token_count"] > 0 and r["file_path"].endswith(".warc.gz")


def test_funnel_counts_and_reasons(sample_run):
    out, result = sample_run
    funnel = json.load(open(os.path.join(out, "stats.json"), encoding="utf-8"))
    fates = collections.Counter(f["fate"] for f in FATES.values())
    got = reasons(funnel)
    assert got["skipped_record_type"] == fates["record_type"]
    assert got["skipped_non_html"] == fates["non_html"]
    assert got["skipped_status"] == fates["status"]
    assert got["file_empty"] == 1 and got["file_truncated"] == 1
    assert sum(v for k, v in got.items() if k.startswith("dropped_url_")) == fates["url"]
    assert sum(v for k, v in got.items() if k.startswith("dropped_extract_")) == fates["extract"]
    assert sum(v for k, v in got.items() if k.startswith("dropped_lang_")) == fates["lang"]
    quality = ("dropped_gopher", "dropped_c4", "dropped_fineweb")
    assert sum(v for k, v in got.items() if k.startswith(quality)) == fates["quality"]
    assert sum(v for k, v in got.items() if k.startswith("dropped_dedup_")) == fates["dedup"]
    assert got["pii_email"] >= 1 and got["pii_phone"] >= 1
    # the table is printed too, and says where the outputs are
    assert "URL blocklist" in result.stdout and "stats.json" in result.stdout


def test_rejected_documents_are_kept_per_stage(sample_run):
    """Every record designed to be dropped by a stage is in that stage's rejected/NN_stage/ folder, with a reason
    of that stage, and nothing else is there."""
    import gzip

    out, _ = sample_run
    where = {}
    for root, _, files in os.walk(os.path.join(out, "rejected")):
        for name in files:
            with gzip.open(os.path.join(root, name), "rt", encoding="utf-8") as f:
                for line in f:
                    doc = json.loads(line)
                    folder = os.path.relpath(root, os.path.join(out, "rejected")).split(os.sep)[0]
                    where[doc["id"]] = (folder, doc["metadata"].get("filter_reason", ""))
    stage = {"url": ("02_url", "url_"), "extract": ("03_extract", "extract_"), "lang": ("04_language", "lang_"),
             "quality": ("05_quality", ("gopher", "c4_", "fineweb_")), "dedup": ("06_dedup", "dedup_")}
    designed = {rid: stage[f["fate"]] for rid, f in FATES.items() if f["fate"] in stage}
    assert set(where) == set(designed)
    for rid, (folder, prefix) in designed.items():
        assert where[rid][0] == folder and where[rid][1].startswith(prefix), (rid, FATES[rid]["why"], where[rid])


def test_rerun_skips_finished_work(sample_run):
    out, _ = sample_run
    before = read_output(out)
    result = fineweb("--output", out, "--workers", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "already been completed" in result.stderr
    assert read_output(out) == before


def test_killed_run_resumes_to_the_same_output(sample_run, tmp_path):
    reference = read_output(sample_run[0])
    out = str(tmp_path / "killed")
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.fineweb", "--output", out, "--workers", "1"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    marker = os.path.join(out, "logs", "A_filter", "completions", "00000")
    deadline = time.monotonic() + 300
    while not os.path.exists(marker) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # midway: stage A has finished one of its four tasks
    proc.wait()
    assert not os.path.isdir(os.path.join(out, "data")) or not any(
        n.endswith(".parquet") for n in os.listdir(os.path.join(out, "data")))
    result = fineweb("--output", out, "--workers", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    assert read_output(out) == reference
    # the funnel counts the task finished before the kill too (datatrove's stats.json has only the rerun's)
    assert funnel_counts(out) == funnel_counts(sample_run[0])


def funnel_counts(out: str) -> dict:
    """Per stage and step: documents in, out and every reason, from OUTPUT/stats.json (times left out)."""
    with open(os.path.join(out, "stats.json"), encoding="utf-8") as f:
        funnel = json.load(f)
    return {stage: [(s["step"], s["in"], s["out"], s["reasons"]) for s in steps] for stage, steps in funnel.items()}


def test_task_count_does_not_change_the_output(sample_run, tmp_path):
    reference = read_output(sample_run[0])
    for tasks in ("1", "3"):
        out = str(tmp_path / f"tasks{tasks}")
        result = fineweb("--output", out, "--tasks", tasks, "--workers", "2")
        assert result.returncode == 0, result.stderr[-2000:]
        assert read_output(out) == reference


@pytest.mark.parametrize("flags, message", [
    (["--pii-entities", "email,foo"], "unknown PII entities ['foo']"),
    (["--pii-entities", "email,person"], "--pii-ner-model"),
    (["--pii-ner-model", "no_such_model"], "is not installed"),
    (["--tokenizer", "nope"], "unknown tiktoken encoding"),
    (["--lang-threshold", "1.5"], "between 0 and 1"),
])
def test_bad_settings_fail_before_any_task(flags, message, tmp_path):
    """A setting a stage would refuse only when it starts (after hours of stage A on Slurm) fails at parse time."""
    from pipelines.fineweb import parse_args

    with pytest.raises(SystemExit, match=re.escape(message)):
        parse_args([*flags, "--output", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_rerun_with_other_settings_is_refused(tmp_path):
    """A rerun resumes unfinished tasks: settings that change what tasks produce must not be mixed into one output;
    how tasks run (--workers, --keep-rejected, executor flags) may change."""
    from dataclasses import asdict

    from pipelines.fineweb import check_rerun, parse_args

    out = str(tmp_path / "out")
    first = parse_args(["--output", out])
    os.makedirs(out)
    with open(os.path.join(out, "config.json"), "w", encoding="utf-8") as f:
        json.dump(asdict(first), f, default=str)
    check_rerun(parse_args(["--output", out, "--workers", "1", "--keep-rejected"]))
    for flags, changed in ((["--lang", "fr"], "languages"), (["--tasks", "2"], "tasks"), (["--no-pii"], "pii"),
                           (["--minhash-bands", "2"], "minhash_bands")):
        with pytest.raises(SystemExit, match=f"other settings \\({changed}\\)"):
            check_rerun(parse_args(["--output", out, *flags]))
    os.makedirs(os.path.join(out, "logs", "C_finish", "completions"))
    open(os.path.join(out, "logs", "C_finish", "completions", "00000"), "w").close()
    with pytest.raises(SystemExit, match="python -m pipelines.tokenize --parquet"):
        check_rerun(parse_args(["--output", out, "--tokens", str(tmp_path / "tokens")]))
