"""Stage 6: MinHash near-duplicate removal as datatrove steps (FineWeb's settings, deterministic at any scale).

Three places in the recipe (see docs/stage_6_dedup.md):
  A. `MinhashSignatures` at the end of stage A's steps: passes documents through, writes per rank and band a
     file of (band key, id key) sorted by key: `SIG/band_BB/RRRRR.npy`.
  B. `minhash_dedup_stages(...)`: `MinhashBuckets` (one task per band and key range: equal keys → pairs)
     then `MinhashClusters` (one task: pairs → forest → ids to drop, cluster sizes).
  C. `MinhashDedupFilter` in stage C: drops by id key (so C may be sharded unlike A), sets
     `metadata["minhash_cluster_size"]` on survivors (1 for singletons; FineWeb-2 re-weights with it).
"""

from __future__ import annotations

import json
import resource
from pathlib import Path

import numpy as np
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from corpus.dedup_cluster import PAIR_DTYPE, ClusterBuilder, Clusters, _save_npy, band_pairs
from corpus.dedup_signatures import MinhashConfig, WordSplitter, id_key, record_dtype, signature_records
from corpus.stage import Filter

BAND_DTYPE = np.dtype([("key", "<u8"), ("id", "<u8")])


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class MinhashSignatures(PipelineStep):
    """Stage A's last step: yields every document unchanged and writes its band keys (16 bytes per band)."""

    type = "🫂 - DEDUP"
    name = "6a MinHash signatures"

    def __init__(self, output_folder: str | Path, config: MinhashConfig | None = None, batch_size: int = 512):
        super().__init__()
        self.output_folder = Path(output_folder)
        self.config = config or MinhashConfig()
        self.batch_size = batch_size

    def _sign(self, batch: list[Document], splitter: WordSplitter) -> np.ndarray:
        for doc in batch:
            if not doc.id:
                raise ValueError("MinhashSignatures needs Document.id (the WARC-Record-ID); set id_key in the reader")
        with self.track_time(unit="batch"):
            return signature_records([(d.id, d.text) for d in batch], self.config, splitter)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        splitter = WordSplitter(self.config.word_splitter)
        records, batch = [], []
        for doc in data:
            self.stat_update("documents")
            batch.append(doc)
            if len(batch) == self.batch_size:
                records.append(self._sign(batch, splitter))
                yield from batch
                batch = []
        if batch:
            records.append(self._sign(batch, splitter))
            yield from batch
        self._write(np.concatenate(records) if records else np.empty(0, record_dtype(self.config)), rank)

    def _write(self, records: np.ndarray, rank: int) -> None:
        self.stat_update("no_shingles", value=int((records["keys"][:, 0] == 0).sum()) if len(records) else 0)
        for band in range(self.config.num_keys):
            out = np.empty(len(records), dtype=BAND_DTYPE)
            out["key"], out["id"] = records["keys"][:, band], records["id"]
            out = out[out["key"] != 0]
            out = out[np.lexsort((out["id"], out["key"]))]
            _save_npy(self.output_folder / f"band_{band:02d}" / f"{rank:05d}.npy", out)


class MinhashBuckets(PipelineStep):
    """Stage B1: for each (band, key range) this task owns, equal band keys across all ranks → pairs.
    Any task count works; `ranges_per_band` splits a band's key space so no task holds a whole band."""

    type = "🫂 - DEDUP"
    name = "6b MinHash buckets"

    def __init__(self, sig_folder, pairs_folder, config: MinhashConfig | None = None, ranges_per_band: int = 1):
        super().__init__()
        self.sig_folder, self.pairs_folder = Path(sig_folder), Path(pairs_folder)
        self.config = config or MinhashConfig()
        self.ranges = ranges_per_band

    def _slice(self, path: Path, lo: int, hi: int) -> np.ndarray:
        table = np.load(path, mmap_mode="r")
        if table.dtype != BAND_DTYPE:
            raise ValueError(f"{path} is not a signature band file; delete {self.sig_folder} and rerun stage A")
        keys = table["key"]
        start = int(np.searchsorted(keys, np.uint64(lo)))
        stop = len(keys) if hi >= 1 << 64 else int(np.searchsorted(keys, np.uint64(hi)))
        return np.array(table[start:stop])

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        found = sorted(p.name for p in self.sig_folder.glob("band_*"))
        if len(found) != self.config.num_keys:
            raise ValueError(f"{self.sig_folder} has {len(found)} band folders, config expects "
                             f"{self.config.num_keys}: rerun stage A with the same MinhashConfig")
        for unit in range(rank, self.config.num_keys * self.ranges, world_size):
            band, part = unit % self.config.num_keys, unit // self.config.num_keys
            lo, hi = (part << 64) // self.ranges, ((part + 1) << 64) // self.ranges
            files = sorted((self.sig_folder / f"band_{band:02d}").glob("*.npy"))
            with self.track_time():
                table = np.concatenate([self._slice(f, lo, hi) for f in files] or [np.empty(0, BAND_DTYPE)])
                pairs = band_pairs(table["key"], table["id"])
            self.stat_update("band_entries", value=len(table))
            self.stat_update("pairs", value=len(pairs))
            _save_npy(self.pairs_folder / f"{band:02d}_{part:04d}.npy", pairs)
        return
        yield


class MinhashClusters(PipelineStep):
    """Stage B2 (one task): all pairs → clusters → `removed_ids`, `survivor_sizes` (+ stats.json with memory).
    Pairs are read `max_pairs_in_memory` at a time; the forest holds only documents that have duplicates."""

    type = "🫂 - DEDUP"
    name = "6c MinHash clusters"

    def __init__(self, pairs_folder, cluster_folder, config: MinhashConfig | None = None,
                 max_pairs_in_memory: int = 50_000_000):
        super().__init__()
        self.pairs_folder, self.cluster_folder = Path(pairs_folder), Path(cluster_folder)
        self.config = config or MinhashConfig()
        self.max_pairs = max_pairs_in_memory

    def _batches(self, files: list[Path]):
        pending, size = [], 0
        for f in files:
            pairs = np.load(f)
            if pairs.dtype != PAIR_DTYPE:
                raise ValueError(f"{f} is not a pairs file; delete {self.pairs_folder} and rerun the buckets stage")
            pending.append(pairs)
            size += len(pairs)
            if size >= self.max_pairs:
                yield np.concatenate(pending)
                pending, size = [], 0
        if pending:
            yield np.concatenate(pending)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if world_size != 1:
            raise ValueError(f"MinhashClusters runs as one task, got {world_size}: give its executor tasks=1")
        builder = ClusterBuilder()
        exact_prefix = f"{self.config.bands:02d}_" if self.config.exact else None
        files = sorted(self.pairs_folder.glob("*.npy"))
        with self.track_time():
            for exact in (False, True):
                chosen = [f for f in files if (exact_prefix is not None and f.name.startswith(exact_prefix)) == exact]
                for batch in self._batches(chosen):
                    builder.add(batch, exact=exact)
            clusters = builder.result()
        stats = {
            "pair_files": len(files), "pairs": builder.pairs_seen, "docs_in_clusters": len(builder.nodes),
            "clusters": len(clusters.survivor_ids), "removed": len(clusters.removed_ids),
            "removed_exact": int(clusters.removed_exact.sum()), "peak_rss_mb": round(_peak_rss_mb(), 1),
            "config": str(self.config),
        }
        for key in ("pairs", "clusters", "removed", "removed_exact"):
            self.stat_update(key, value=stats[key])
        clusters.save(self.cluster_folder, stats)
        return
        yield


class MinhashDedupFilter(Filter):
    """Stage C: drops cluster non-survivors by id (`dedup_exact_duplicate` when its normalized text equals
    another document's, else `dedup_near_duplicate`); survivors get `metadata["minhash_cluster_size"]`."""

    name = "6d MinHash dedup filter"

    def __init__(self, cluster_folder, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.cluster_folder = Path(cluster_folder)
        self._clusters: Clusters | None = None  # loaded (memory-mapped) in the worker, not pickled

    def reject_reason(self, doc: Document) -> str | None:
        if self._clusters is None:
            self._clusters = Clusters.load(self.cluster_folder)
        if not doc.id:
            raise ValueError("MinhashDedupFilter needs Document.id (the WARC-Record-ID); set id_key in the reader")
        reason, size = self._clusters.lookup(id_key(doc.id))
        if reason is None:
            doc.metadata["minhash_cluster_size"] = size
        return reason

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_clusters"] = None
        return state


def minhash_dedup_stages(config: MinhashConfig, sig_folder, work_folder,
                         ranges_per_band: int = 1) -> list[tuple[str, list[PipelineStep], int]]:
    """Stage B as (name, pipeline, tasks) for executors chained with `depends=`; stage C then reads
    `cluster_folder(work_folder)`. Use ranges_per_band > 1 when one band of the whole input (16 bytes per
    document) does not fit in a task's memory."""
    work = Path(work_folder)
    return [
        ("minhash_buckets", [MinhashBuckets(sig_folder, work / "pairs", config, ranges_per_band)],
         config.num_keys * ranges_per_band),
        ("minhash_clusters", [MinhashClusters(work / "pairs", cluster_folder(work), config)], 1),
    ]


def cluster_folder(work_folder) -> Path:
    return Path(work_folder) / "clusters"


def read_cluster_stats(work_folder) -> dict:
    return json.loads((cluster_folder(work_folder) / "stats.json").read_text())
