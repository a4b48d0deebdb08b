"""Stage 6, part 2: band keys → duplicate pairs → clusters → which ids to drop (shared by both paths).

Survivor rule: in each cluster the document whose id key (xxh64 of its WARC-Record-ID) is smallest survives.
It depends only on the ids in the cluster, never on task count, file order or arrival order. We did not pick
"earliest date": inside one crawl `date` is the fetch time (a two-week window), not publication, so it says
nothing about which copy is the original, and it ties often. A hash of a random UUID is an unbiased,
reproducible pick, like FineWeb's (whose keeper is the first doc in (file, index) order, i.e. task-dependent).

Memory: clustering holds only documents that have a duplicate, as a forest (node → root, 16 bytes each), plus
one batch of pairs; never the signatures of all documents.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components as _scipy_components

from corpus import atomic
from corpus.dedup_signatures import MinhashConfig, WordSplitter, id_key, signature_records

NEAR, EXACT = "dedup_near_duplicate", "dedup_exact_duplicate"
PAIR_DTYPE = np.dtype([("u", "<u8"), ("v", "<u8")])


def band_pairs(keys: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Pairs (smallest id of a group of equal keys, other id) for one band; key 0 means "no key"."""
    keep = keys != 0
    keys, ids = keys[keep], ids[keep]
    if len(keys) == 0:
        return np.empty(0, dtype=PAIR_DTYPE)
    order = np.lexsort((ids, keys))
    keys, ids = keys[order], ids[order]
    starts = np.r_[True, keys[1:] != keys[:-1]]
    first = ids[np.flatnonzero(starts)[np.cumsum(starts) - 1]]
    pairs = np.empty(int((~starts).sum()), dtype=PAIR_DTYPE)
    pairs["u"], pairs["v"] = first[~starts], ids[~starts]
    return pairs[pairs["u"] != pairs["v"]]  # the same id twice (a re-run doc) is not a pair


def components(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of the graph with edges (u, v): (sorted node ids, the smallest id of each node's
    component). scipy's C union-find does the work on compact indices."""
    if len(u) == 0:
        return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.uint64)
    nodes, inverse = np.unique(np.concatenate([u, v]), return_inverse=True)
    n, m = len(nodes), len(u)
    graph = coo_matrix((np.ones(m, dtype=np.int8), (inverse[:m], inverse[m:])), shape=(n, n))
    _, labels = _scipy_components(graph, directed=False)
    _, first = np.unique(labels, return_index=True)  # nodes are sorted: first index of a label = smallest id
    return nodes, nodes[first[labels]]


@dataclass
class Clusters:
    """The decision: ids to drop (sorted, with an exact/near flag) and the cluster size of each survivor of a
    cluster of two or more (sorted). Every other document is a singleton: kept, size 1."""

    removed_ids: np.ndarray
    removed_exact: np.ndarray
    survivor_ids: np.ndarray
    survivor_sizes: np.ndarray

    FILES = ("removed_ids", "removed_exact", "survivor_ids", "survivor_sizes")

    def lookup(self, key: int) -> tuple[str | None, int]:
        """(drop reason or None, cluster size) for one id key."""
        key = np.uint64(key)
        i = int(np.searchsorted(self.removed_ids, key))
        if i < len(self.removed_ids) and self.removed_ids[i] == key:
            return (EXACT if self.removed_exact[i] else NEAR), 0
        j = int(np.searchsorted(self.survivor_ids, key))
        found = j < len(self.survivor_ids) and self.survivor_ids[j] == key
        return None, int(self.survivor_sizes[j]) if found else 1

    def save(self, folder: str | Path, stats: dict) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name in self.FILES:
            _save_npy(folder / f"{name}.npy", getattr(self, name))
        atomic.write_text(folder / "stats.json", json.dumps(stats, indent=1))  # written last: "done"

    @classmethod
    def load(cls, folder: str | Path) -> Clusters:
        folder = Path(folder)
        if not (folder / "stats.json").exists():
            raise FileNotFoundError(f"{folder}/stats.json missing: run the MinHash cluster stage first")
        return cls(*(np.load(folder / f"{name}.npy", mmap_mode="r") for name in cls.FILES))


class ClusterBuilder:
    """Union of pair batches into a forest (node → root), one batch at a time: memory is the forest plus one
    batch. `exact` marks pairs from the normalized-text band, which name the removal reason."""

    def __init__(self):
        self.nodes = np.empty(0, dtype=np.uint64)
        self.roots = np.empty(0, dtype=np.uint64)
        self.exact_ids = np.empty(0, dtype=np.uint64)
        self.pairs_seen = 0

    def _lookup(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found in the forest, root: the id itself when not found)."""
        pos = np.minimum(np.searchsorted(self.nodes, ids), max(len(self.nodes) - 1, 0))
        found = self.nodes[pos] == ids if len(self.nodes) else np.zeros(len(ids), dtype=bool)
        return found, np.where(found, self.roots[pos] if len(self.nodes) else ids, ids)

    def add(self, pairs: np.ndarray, exact: bool = False) -> None:
        """Union a batch: pairs already joined cost one lookup; only root-to-root edges of new unions are
        clustered, then old roots are relabelled and new nodes inserted (linear passes, no sort of the forest)."""
        self.pairs_seen += len(pairs)
        if exact:
            self.exact_ids = _sorted_unique(np.concatenate([self.exact_ids, pairs["u"], pairs["v"]]))
        ends = _sorted_unique(np.concatenate([pairs["u"], pairs["v"]]))
        found, _ = self._lookup(ends)
        _, ru = self._lookup(pairs["u"])
        _, rv = self._lookup(pairs["v"])
        joined = ru != rv
        cnodes, croots = components(ru[joined], rv[joined])
        if len(cnodes):
            pos = np.minimum(np.searchsorted(cnodes, self.roots), len(cnodes) - 1)
            self.roots = np.where(cnodes[pos] == self.roots, croots[pos], self.roots)
        new = ends[~found]  # every new id is in a joining edge, so in cnodes
        new_roots = croots[np.searchsorted(cnodes, new)] if len(new) else new
        at = np.searchsorted(self.nodes, new)
        self.nodes, self.roots = np.insert(self.nodes, at, new), np.insert(self.roots, at, new_roots)

    def result(self) -> Clusters:
        is_root = self.nodes == self.roots
        removed = self.nodes[~is_root]  # sorted, since nodes are
        roots = np.sort(self.roots)
        starts = np.flatnonzero(np.r_[True, roots[1:] != roots[:-1]]) if len(roots) else np.empty(0, dtype=np.int64)
        roots, sizes = roots[starts], np.diff(np.r_[starts, len(self.roots)])
        return Clusters(removed, np.isin(removed, self.exact_ids), roots, sizes.astype(np.uint32))


class NearDuplicateIndex:
    """The in-process library call: feed (id, text) pairs, get which are duplicates. Same signatures, same
    pairing and same survivor rule as the pipeline steps.

    >>> index = NearDuplicateIndex()
    >>> index.add_many([("a", text1), ("b", text2)])
    >>> index.duplicates()   # {"b": "dedup_near_duplicate"} when b is a near copy of a and xxh64("a") < xxh64("b")
    """

    def __init__(self, config: MinhashConfig | None = None, batch_size: int = 512):
        self.config = config or MinhashConfig()
        self.batch_size = batch_size
        self._splitter = WordSplitter(self.config.word_splitter)
        self._records: list[np.ndarray] = []
        self._ids: dict[int, str] = {}

    def add_many(self, docs: Iterable[tuple[str, str]]) -> None:
        batch = []
        for doc_id, text in docs:
            self._ids[id_key(doc_id)] = doc_id
            batch.append((doc_id, text))
            if len(batch) == self.batch_size:
                self._records.append(signature_records(batch, self.config, self._splitter))
                batch = []
        if batch:
            self._records.append(signature_records(batch, self.config, self._splitter))

    def clusters(self) -> Clusters:
        if not self._records:
            return ClusterBuilder().result()
        records = np.concatenate(self._records)
        builder = ClusterBuilder()
        for band in range(self.config.num_keys):
            exact = self.config.exact and band == self.config.bands
            builder.add(band_pairs(records["keys"][:, band], records["id"]), exact=exact)
        return builder.result()

    def duplicates(self) -> dict[str, str]:
        """{dropped id: reason}."""
        c = self.clusters()
        return {self._ids[int(k)]: (EXACT if e else NEAR) for k, e in zip(c.removed_ids, c.removed_exact)}

    def cluster_sizes(self) -> dict[str, int]:
        """{surviving id: size} for clusters of two or more."""
        c = self.clusters()
        return {self._ids[int(k)]: int(s) for k, s in zip(c.survivor_ids, c.survivor_sizes)}


def _sorted_unique(x: np.ndarray) -> np.ndarray:
    """np.unique by sorting (numpy 2's hash-based unique is ~10× slower on random uint64)."""
    x = np.sort(x)
    return x[np.r_[True, x[1:] != x[:-1]]] if len(x) else x


def _save_npy(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic.atomic_open(path) as f:
        np.save(f, np.ascontiguousarray(array))
