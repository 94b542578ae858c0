"""ReportContext: what one `report` or `accept` call shares among its parts.

One is made per write_report / evaluate call, from the result file: the layout (built once), the
criteria (limits drawn on figures; the link rate of effective throughput), and summaries computed
for one run and read by several parts (a figure, the headline, a table). The summaries live and
die with the context, so nothing outlives the call and nothing goes stale between files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence, TypeVar

from fabscope_analyze.criteria import Criteria
from fabscope_analyze.layout import Layout, build_layout
from fabscope_analyze.reader import Host, Run, RunFile

T = TypeVar("T")


@dataclass
class ReportContext:
    run_file: RunFile
    layout: Layout
    criteria: Criteria | None = None
    # (id(run), what, key) -> (run, value): the run is held so that its id stays its own while
    # the context lives
    _memo: dict[tuple[int, str, Hashable], tuple[Any, Any]] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, run_file: RunFile, criteria: Criteria | None = None, layout: Layout | None = None) -> ReportContext:
        return cls(run_file=run_file, layout=layout or build_layout(run_file), criteria=criteria)

    @property
    def hosts(self) -> Sequence[Host]:
        return self.run_file.hosts

    @property
    def link_rate_gbps(self) -> float | None:
        """The criteria's link rate, which overrides the file's (None: the file's)."""
        return self.criteria.link_rate_gbps if self.criteria is not None else None

    def memo(self, run: Run, what: str, compute: Callable[[], T], key: Hashable = None) -> T:
        """compute() once per run, `what` and `key` (the arguments that change the result)."""
        k = (id(run), what, key)
        got = self._memo.get(k)
        if got is None:
            got = (run, compute())
            self._memo[k] = got
        return got[1]
