"""What every step of judging a pairs run reads: the run, its layout, the criteria."""

from __future__ import annotations

from dataclasses import dataclass

from fabscope_analyze.criteria import Criteria, PairsCriteria
from fabscope_analyze.layout import Layout
from fabscope_analyze.reader import PairsRun


@dataclass(frozen=True)
class PairsJob:
    run: PairsRun
    layout: Layout
    crit: PairsCriteria  # criteria.pairs
    criteria: Criteria
    ok_code: int | None  # status code of a measured pair (None: the file has no "ok")
    error_codes: tuple[int, ...]  # status codes of pairs that failed or timed out

    @classmethod
    def of(cls, run: PairsRun, layout: Layout, crit: PairsCriteria, criteria: Criteria) -> PairsJob:
        return cls(run=run, layout=layout, crit=crit, criteria=criteria, ok_code=run.status_code("ok"),
                   error_codes=tuple(c for c, name in enumerate(run.status_names) if name not in ("not_run", "ok")))

    @property
    def n(self) -> int:
        return self.run.n_ranks

    @property
    def name(self) -> str:
        return self.run.info.name
