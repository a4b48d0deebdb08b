"""Stage 6 (MinHash dedup): shingling edge cases, signatures identical to datatrove's, Jaccard estimates, banding,
clustering and the survivor rule, exact duplicates, and the distributed path through datatrove's
LocalPipelineExecutor (signatures → buckets → clusters → filter) giving the same survivors for 1, 2 and 4 tasks
as the in-process `NearDuplicateIndex`, on synthetic docs with planted clusters and distinct pairs;
`python -m pipelines.dedup` over Parquet; datasketch's MinHashLSH over our signatures finding the same pairs."""

from __future__ import annotations

import collections
import json
import random

import numpy as np
import pytest
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter

from corpus.dedup_cluster import EXACT, NEAR, ClusterBuilder, NearDuplicateIndex, band_pairs, components
from corpus.dedup_minhash import MinhashDedupFilter, MinhashSignatures, cluster_folder, minhash_dedup_stages
from corpus.dedup_signatures import (
    MinhashConfig,
    WordSplitter,
    band_keys,
    id_key,
    minhash_signatures,
    normalize_text,
    shingle_hashes,
    text_key,
)
from corpus.dedup_synthetic import synthetic_corpus

FAST = MinhashConfig(word_splitter="whitespace", hash_fc="xxhash")  # same algorithm, no spaCy start-up
DOCS = synthetic_corpus(n_singletons=60, n_clusters=12, n_pairs=6, seed=3)


def _shingles(text: str, config: MinhashConfig = FAST) -> np.ndarray:
    return shingle_hashes(WordSplitter(config.word_splitter)(normalize_text(text)), config)


def test_shingling_edge_cases():
    assert len(_shingles("")) == 0
    assert normalize_text("?!... -- «»") == "" and text_key(normalize_text("?!... --")) == 0
    assert len(_shingles("only four words here")) == 0  # < n words: no near-dup signature, as datatrove
    assert text_key(normalize_text("only four words here")) != 0  # but exact duplicates are still caught
    assert len(_shingles("one two three four five six")) == 2
    assert normalize_text("Ça  coûte 12,50 €!\nOK") == "ca coute 0 € ok"
    sigs = minhash_signatures([_shingles(""), _shingles("a b c d e f")], FAST)
    assert (band_keys(sigs, FAST)[0] == 0).all() and (band_keys(sigs, FAST)[1] != 0).all()


@pytest.mark.slow  # imports spacy.blank with its plugins (presidio, transformers): ~5 s of CPU
def test_signatures_identical_to_datatrove():
    pytest.importorskip("tokenizers")  # datatrove.pipeline.dedup imports it
    pytest.importorskip("spacy")
    from datatrove.pipeline.dedup.minhash import MinhashConfig as DatatroveConfig
    from datatrove.pipeline.dedup.minhash import MinhashDedupSignature
    from datatrove.utils.hashing import HashConfig

    ours = MinhashConfig()  # FineWeb: sha1, spaCy words
    sha1_64 = HashConfig(precision=64, hash_fc="sha1")
    theirs = MinhashDedupSignature("/nonexistent", DatatroveConfig(hash_config=sha1_64))
    texts = [d.text for d in DOCS[:20]] + ["I'm gonna pay £12m, can't you? Café déjà-vu 10km.  " * 3]
    sigs = minhash_signatures([_shingles(t, ours) for t in texts], ours)
    for text, sig in zip(texts, sigs):
        assert np.array_equal(np.array(theirs.get_signature(theirs.get_shingles(text))).ravel(), sig)


def test_jaccard_estimate_close_to_true_jaccard():
    base = DOCS[0].text.split()
    for cut in (0, len(base) // 10, len(base) // 4, len(base) // 2):
        a, b = " ".join(base), " ".join(base[cut:] + base[:cut][::-1])
        sa, sb = set(_shingles(a).tolist()), set(_shingles(b).tolist())
        true = len(sa & sb) / len(sa | sb)
        sig = minhash_signatures([_shingles(a), _shingles(b)], FAST)
        estimate = float((sig[0] == sig[1]).mean())
        assert abs(estimate - true) < 0.15, (cut, true, estimate)  # 3σ of a 112-hash estimate is ≤ 0.14


def test_banding_pairs_equal_keys_only():
    keys = np.array([5, 7, 5, 0, 0, 5, 9], dtype=np.uint64)
    ids = np.array([30, 1, 10, 2, 3, 20, 4], dtype=np.uint64)
    pairs = band_pairs(keys, ids)
    assert sorted(zip(pairs["u"].tolist(), pairs["v"].tolist())) == [(10, 20), (10, 30)]  # 0 = no key


def test_clustering_and_survivor_rule():
    nodes, roots = components(np.array([9, 7, 3], dtype=np.uint64), np.array([7, 5, 4], dtype=np.uint64))
    assert dict(zip(nodes.tolist(), roots.tolist())) == {3: 3, 4: 3, 5: 5, 7: 5, 9: 5}  # smallest id survives
    one, split = ClusterBuilder(), ClusterBuilder()
    edges = band_pairs(np.array([1, 1, 2, 2, 3, 3], dtype=np.uint64), np.array([8, 6, 6, 2, 11, 12], dtype=np.uint64))
    one.add(edges)
    for i in range(len(edges)):  # batch by batch: the forest carries earlier unions
        split.add(edges[i : i + 1])
    for a, b in zip(vars(one.result()).values(), vars(split.result()).values()):
        assert np.array_equal(a, b)
    assert one.result().removed_ids.tolist() == [6, 8, 12] and one.result().survivor_sizes.tolist() == [3, 2]


def test_exact_duplicates_named():
    index = NearDuplicateIndex(FAST)
    index.add_many([("a", "Hello, World! tiny"), ("b", "hello world TINY"), ("c", "something else entirely")])
    dups = index.duplicates()
    assert list(dups.values()) == [EXACT] and set(dups) < {"a", "b"}
    assert min(("a", "b"), key=id_key) not in dups  # survivor = smallest id key


def test_in_process_index_on_planted_clusters():
    index = NearDuplicateIndex(FAST)
    index.add_many((d.id, d.text) for d in DOCS)
    dups, sizes = index.duplicates(), index.cluster_sizes()
    survivors = collections.Counter(d.cluster for d in DOCS if d.cluster and d.id not in dups)
    members = collections.Counter(d.cluster for d in DOCS if d.cluster)
    assert survivors == collections.Counter(dict.fromkeys(members, 1))
    assert not [d for d in DOCS if (d.pair or not d.cluster) and d.id in dups]  # pairs and singletons kept
    assert {sizes[d.id] for d in DOCS if d.id in sizes} <= set(members.values())
    assert NEAR in dups.values() and EXACT in dups.values()


def _run_distributed(tmp_path, tasks: int, workers: int = 1, shuffle: int | None = None) -> dict[str, int]:
    """Stage A (reader → writer → signatures), B (buckets → clusters), C (reader → filter → writer). `shuffle`:
    the documents in another order, over 3 files instead of 4."""
    src, root = tmp_path / f"src{shuffle}", tmp_path / f"t{tasks}w{workers}s{shuffle}"
    if not src.exists():
        src.mkdir()
        docs, files = (DOCS, 4) if shuffle is None else (random.Random(shuffle).sample(DOCS, len(DOCS)), 3)
        for f in range(files):
            with open(src / f"{f}.jsonl", "w") as out:
                out.writelines(json.dumps({"text": d.text, "id": d.id}) + "\n" for d in docs[f::files])

    def run(pipeline, n, name):
        LocalPipelineExecutor(pipeline, tasks=n, workers=workers, logging_dir=str(root / "logs" / name)).run()

    run([JsonlReader(str(src)), JsonlWriter(str(root / "mid")), MinhashSignatures(root / "sig", FAST)], tasks, "a")
    for name, pipeline, n in minhash_dedup_stages(FAST, root / "sig", root / "work"):
        run(pipeline, n, name)
    out = root / "out"
    run([JsonlReader(str(root / "mid")), MinhashDedupFilter(cluster_folder(root / "work")), JsonlWriter(str(out))],
        tasks, "c")
    reader = JsonlReader(str(out))
    return {d.id: d.metadata["minhash_cluster_size"] for d in reader.run()}


def test_distributed_survivors_identical_for_any_task_count(tmp_path):
    """1, 2 and 4 tasks, 2 worker processes, and the documents in another order over other files: the same
    survivors with the same cluster sizes, equal to the in-process index's."""
    runs = {tasks: _run_distributed(tmp_path, tasks) for tasks in (1, 2, 4)}
    runs["2 workers"] = _run_distributed(tmp_path, 2, workers=2)
    runs["shuffled, 3 tasks"] = _run_distributed(tmp_path, 3, shuffle=7)
    index = NearDuplicateIndex(FAST)
    index.add_many((d.id, d.text) for d in DOCS)
    expected = {d.id for d in DOCS} - set(index.duplicates())
    for tasks, kept in runs.items():
        assert set(kept) == expected, tasks
        assert kept == runs[1]
    sizes = index.cluster_sizes()
    assert all(kept[i] == sizes.get(i, 1) for i in kept)
    members = collections.Counter(d.cluster for d in DOCS if d.cluster)
    assert sorted(v for v in runs[1].values() if v > 1) == sorted(members.values())


def test_standalone_parquet_pipeline(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.dedup import main

    (tmp_path / "in").mkdir()
    for f in range(2):
        part = DOCS[f::2]
        pq.write_table(pa.table({"text": [d.text for d in part], "id": [d.id for d in part]}),
                       tmp_path / "in" / f"{f}.parquet")
    main(["--parquet", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--tasks", "2", "--workers", "1",
          "--hash", "xxhash", "--word-splitter", "whitespace"])
    kept = pq.read_table(tmp_path / "out" / "data").to_pylist()
    index = NearDuplicateIndex(FAST)
    index.add_many((d.id, d.text) for d in DOCS)
    assert {r["id"] for r in kept} == {d.id for d in DOCS} - set(index.duplicates())
    assert {r["minhash_cluster_size"] for r in kept} >= {1, 2}
    assert sorted(p.name for p in (tmp_path / "out" / "data").iterdir()) == ["000_00000.parquet", "000_00001.parquet"]


def test_datasketch_lsh_finds_the_pipelines_candidate_pairs():
    """datasketch's MinHashLSH over our signatures pairs exactly the documents that share a band key, and its
    Jaccard estimate is ours; documents without shingles stay out of the index."""
    import itertools

    from corpus.dedup_datasketch import datasketch_lsh, text_signatures

    docs = [(d.id, d.text) for d in DOCS] + [("short", "too few words")]
    lsh, minhashes = datasketch_lsh(docs, FAST)
    assert "short" not in minhashes
    theirs = {frozenset((a, b)) for a, m in minhashes.items() for b in lsh.query(m) if a != b}

    sigs = text_signatures((t for _, t in docs[:-1]), FAST)
    keys = band_keys(sigs, FAST)
    ours = set()
    for band in range(FAST.bands):
        groups = collections.defaultdict(list)
        for (doc_id, _), key in zip(docs, keys[:, band]):
            groups[int(key)].append(doc_id)
        ours |= {frozenset(p) for ids in groups.values() for p in itertools.combinations(ids, 2)}
    assert theirs == ours and len(ours) >= 12  # the planted clusters pair up, and nothing else does

    a, b = DOCS[0].id, DOCS[1].id
    expected = float(np.mean(sigs[0] == sigs[1]))
    assert minhashes[a].jaccard(minhashes[b]) == pytest.approx(expected)
