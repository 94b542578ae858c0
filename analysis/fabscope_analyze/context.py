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
    # (index of the run in run_file.runs, what, key) -> value
    _memo: dict[tuple[int, str, Hashable], Any] = field(default_factory=dict, repr=False)

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
        """compute() once per run of the file, `what` and `key` (the arguments that change the
        result)."""
        index = next((i for i, r in enumerate(self.run_file.runs) if r is run), None)
        if index is None:
            raise ValueError(f"run {run.info.name} is not a run of {self.run_file.path}")
        k = (index, what, key)
        if k not in self._memo:
            self._memo[k] = compute()
        return self._memo[k]
