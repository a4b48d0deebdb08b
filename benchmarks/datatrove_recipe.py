"""datatrove's own FineWeb recipe (stages 1–5, `examples/fineweb.py`), made to run offline: the baseline that our
benchmarks and headline table compare against.

What is changed, and only so that it runs here without a network (none of it changes a decision):
- LanguageFilter: `languages=["en"]` (FineWeb's intent; the example passes none and keeps every language since
  datatrove 0.3) and the same `lid.176.ftz` our stage 4 uses, loaded through the one `fasttext` module we install
  (fasttext-predict, which returns floats: wrapped to give numpy scalars as datatrove expects);
- URLFilter: `tldextract.TLDExtract(suffix_list_urls=())`, i.e. its bundled public-suffix snapshot;
- Trafilatura: FineWeb's settings exactly (`favour_precision=True`, deduplicate=True, 1 s sandboxed timeout).
"""

from __future__ import annotations

import numpy as np
from datatrove.pipeline.extractors import Trafilatura
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
    LanguageFilter,
    URLFilter,
)
from datatrove.pipeline.readers import WarcReader


class _NumpyScores:
    """fasttext-predict returns Python floats; datatrove calls `.item()` on each score. Loads the model on first
    use, so the step can be copied to worker processes (a fastText model cannot be pickled)."""

    def __init__(self, model_path: str):
        self.model_path, self.model = model_path, None

    def __getstate__(self):
        return {"model_path": self.model_path, "model": None}

    def predict(self, text, k=1):
        if self.model is None:
            import fasttext

            self.model = fasttext.load_model(self.model_path)
        labels, scores = self.model.predict(text, k=k)
        return labels, np.asarray(scores, dtype=np.float64)


class OfflineLanguageFilter(LanguageFilter):
    def __new__(cls, *args, **kwargs):  # skip the check for the `fasttext-numpy2-wheel` distribution
        return object.__new__(cls)

    def __init__(self, model_path: str, **kwargs):
        super().__init__(languages=["en"], **kwargs)
        self.model._model = _NumpyScores(model_path)


def offline_url_filter(**kwargs) -> URLFilter:
    import tldextract

    url_filter = URLFilter(**kwargs)
    url_filter.tldextractor = tldextract.TLDExtract(suffix_list_urls=())
    return url_filter


def datatrove_fineweb_steps(warc_dir: str, glob_pattern: str = "*.warc.gz", dump: str = "CC-MAIN-2024-10",
                            lid_model: str | None = None) -> list:
    """FineWeb's stage-A steps 1–5 as datatrove's example configures them (see module docstring)."""
    from corpus.filter_language import default_lid_model_path

    return [
        WarcReader(warc_dir, glob_pattern=glob_pattern, default_metadata={"dump": dump}),
        offline_url_filter(),
        Trafilatura(favour_precision=True),
        OfflineLanguageFilter(lid_model or default_lid_model_path()),
        GopherRepetitionFilter(),
        GopherQualityFilter(),
        C4QualityFilter(filter_no_terminal_punct=False),
        FineWebQualityFilter(),
    ]
