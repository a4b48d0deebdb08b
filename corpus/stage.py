"""The one base class our filters share.

datatrove's `BaseFilter.filter(doc)` returns `True` or `(False, reason)`: a union type that every caller has to
unpack. Our filters implement one method with one return type, `reject_reason(doc) -> str | None` (None keeps
the document), and inherit datatrove's `filter()` and `run()` (stats per reason, exclusion writer) from it.
"""

from __future__ import annotations

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter


class Filter(BaseFilter):
    """A keep/drop decision with a named reason. Subclasses implement `reject_reason`."""

    type = "🔻 - FILTER"

    def reject_reason(self, doc: Document) -> str | None:
        raise NotImplementedError

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        reason = self.reject_reason(doc)
        return True if reason is None else (False, reason)
