"""The host-level stall test (criteria pairs.bandwidth.stalls, StallRule): per host, the bandwidth
windows of its pairs and how many stalled (below window_fraction x the best window of the same
flow in the same repeat); a host whose count is improbable at the rest of the fabric's rate
(one-sided binomial, Benjamini-Hochberg over the hosts) fails, and its flows with stalled windows
join the failing flows (R_BW_STALL). stall_counts is shared with compare."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from fabscope_analyze import stats
from fabscope_analyze.accept.pairs.flows import R_BW_STALL, Flows
from fabscope_analyze.accept.pairs.job import PairsJob
from fabscope_analyze.reader import PairsRun
from fabscope_analyze.verdict import FAIL, PASS, SKIPPED, Check, fmt


@dataclass
class StallCounts:
    """Stalled bandwidth windows of a pairs run (criteria.StallRule): per rank, the windows of the
    pairs it is in (both directions, every repeat; rows with at least two windows per direction)
    and how many stalled; per directed flow with stalls, how many (src, dst, count)."""

    windows: np.ndarray  # int64 [N]
    stalled: np.ndarray  # int64 [N]
    src: np.ndarray
    dst: np.ndarray
    count: np.ndarray

    @property
    def total(self) -> tuple[int, int]:
        """(stalled, windows) over the run, each window counted once."""
        return int(self.stalled.sum()) // 2, int(self.windows.sum()) // 2

    def rest_rate(self) -> np.ndarray:
        """Per rank, the stall rate of the rest of the fabric (the windows of the pairs without the
        rank), Laplace-smoothed so that it is never 0: (stalled + 1) / (windows + 2)."""
        total_s, total_w = self.total
        return (total_s - self.stalled + 1) / (total_w - self.windows + 2)


def stall_counts(run: PairsRun, window_fraction: float) -> StallCounts:
    """A window stalled when it ran below window_fraction x the best window of the same flow
    (direction) in the same pair_samples row (repeat); read in row blocks."""
    n = run.n_ranks
    windows = np.zeros(n, dtype=np.int64)
    stalled = np.zeros(n, dtype=np.int64)
    f_src, f_dst, f_count = [np.empty(0, np.int32)], [np.empty(0, np.int32)], [np.empty(0, np.int64)]

    def add(s: np.ndarray, d: np.ndarray, w: np.ndarray, k: np.ndarray) -> None:
        """One direction of a block: w windows and k stalled per row, flow s -> d."""
        for ranks in (s, d):
            windows[:] += np.bincount(ranks, weights=w, minlength=n).astype(np.int64)
            stalled[:] += np.bincount(ranks, weights=k, minlength=n).astype(np.int64)
        some = k > 0
        f_src.append(s[some])
        f_dst.append(d[some])
        f_count.append(k[some].astype(np.int64))

    coded = run.window_code_blocks() if run.n_pair_samples else None
    if coded is not None:
        # The row table's codes (window / best x 255, best first) as they are: a window stalled
        # when code < window_fraction x the row's highest code (the decoded comparison, exactly).
        for pair, fq, rq, fbest, rbest in coded:
            for q, best, s, d in ((fq, fbest, pair[:, 0], pair[:, 1]), (rq, rbest, pair[:, 1], pair[:, 0])):
                have = (q > 0) & np.isfinite(best)[:, None]
                count = have.sum(axis=1)
                usable = count >= 2
                limit = np.ceil(window_fraction * q.max(axis=1)).astype(np.int16)
                add(s, d, np.where(usable, count, 0), np.where(usable, (have & (q < limit[:, None])).sum(axis=1), 0))
    elif run.n_pair_samples:
        for pair, fwd, rev in run.window_blocks():
            for x, s, d in ((fwd, pair[:, 0], pair[:, 1]), (rev, pair[:, 1], pair[:, 0])):
                finite = np.isfinite(x)
                usable = finite.sum(axis=1) >= 2  # a window needs a sibling to stall against
                best = np.fmax.reduce(np.where(finite, x, -np.inf), axis=1)
                with np.errstate(invalid="ignore"):
                    k = (finite & (x < window_fraction * best[:, None])).sum(axis=1)
                add(s, d, np.where(usable, finite.sum(axis=1), 0), np.where(usable, k, 0))
    return StallCounts(windows, stalled, *(np.concatenate(x) for x in (f_src, f_dst, f_count)))


@dataclass(frozen=True)
class StallTest:
    """The outcome per host: flagged (the test singled it out) and the counts behind it."""

    flagged: np.ndarray  # bool [N]
    windows: np.ndarray | None = None  # int64 [N] windows in its pairs
    stalled: np.ndarray | None = None  # int64 [N] of those, stalled
    rest_windows: np.ndarray | None = None  # the rest of the fabric's
    rest_stalled: np.ndarray | None = None
    q: np.ndarray | None = None  # BH-adjusted p-value

    @classmethod
    def none(cls, n: int) -> StallTest:
        """No host flagged (the test did not run)."""
        return cls(flagged=np.zeros(n, dtype=bool))

    def text(self, h: int) -> str:
        assert self.windows is not None and self.stalled is not None and self.q is not None
        assert self.rest_windows is not None and self.rest_stalled is not None
        return (f"{int(self.stalled[h])} of the {int(self.windows[h])} bandwidth windows in its pairs stalled, the "
                f"rest of the fabric {int(self.rest_stalled[h])} of {int(self.rest_windows[h])} "
                f"(q = {fmt(float(self.q[h]), 2)})")


def judge_stalls(job: PairsJob, flows: Flows) -> tuple[Check, Flows, StallTest]:
    """The check, the flows with the flagged hosts' stalled flows added, and the outcome per host."""
    rule, n, lay = job.crit.stalls, job.n, job.layout
    assert rule is not None
    pct = fmt(rule.window_fraction * 100)
    check = Check(run=job.name, rule="pairs.bandwidth.stalls",
                  title=f"no host's bandwidth windows stall (below {pct}% of the flow's best window in the same "
                        f"repeat) more often than the rest of the fabric's (false-discovery rate "
                        f"{fmt(rule.significance)}, at least {rule.min_windows} windows)",
                  status=PASS, unit="hosts")
    if job.run.n_pair_samples == 0 or job.run.bw_windows < 2:
        check.status = SKIPPED
        check.detail = ("no window samples (pair_samples) in the file" if job.run.n_pair_samples == 0 else
                        "one bandwidth window per direction: nothing to compare a window with (--bw-iters 2+)")
        return check, flows, StallTest.none(n)
    counts = stall_counts(job.run, rule.window_fraction)
    windows, stalled = counts.windows, counts.stalled
    total_s, total_w = counts.total
    has = windows > 0
    p = np.full(n, np.nan)
    p[has] = sps.binom.sf(stalled[has] - 1, windows[has], counts.rest_rate()[has])
    q = stats.bh_adjust(p)
    with np.errstate(invalid="ignore"):
        flagged = has & (stalled >= rule.min_windows) & (q < rule.significance)
    test = StallTest(flagged=flagged, windows=windows, stalled=stalled, rest_windows=total_w - windows,
                     rest_stalled=total_s - stalled, q=q)
    check.judged, check.failing = int(has.sum()), int(flagged.sum())
    check.status = FAIL if flagged.any() else PASS if has.any() else SKIPPED
    check.detail = f"{total_s} of {total_w} windows stalled fabric-wide ({fmt(100 * total_s / max(1, total_w), 2)}%)"
    worst = np.flatnonzero(flagged)
    worst = worst[np.argsort(q[worst], kind="stable")]
    check.examples = [f"{lay.rank_name(int(h))}: {test.text(int(h))}" for h in worst[:10]]
    if flagged.any():
        flows = with_stall_flows(job.run, flows, flagged, counts)
    return check, flows, test


def with_stall_flows(run: PairsRun, flows: Flows, flagged: np.ndarray, counts: StallCounts) -> Flows:
    """flows plus the flagged hosts' flows with stalled windows (bit R_BW_STALL, count in `stalled`)."""
    n = run.n_ranks
    src, dst, count = counts.src, counts.dst, counts.count
    mine = flagged[src] | flagged[dst]
    uniq, inv = np.unique(src[mine].astype(np.int64) * n + dst[mine], return_inverse=True)
    per_flow = np.bincount(inv, weights=count[mine]).astype(np.int32)
    have = flows.src.astype(np.int64) * n + flows.dst
    where = np.searchsorted(uniq, have)
    hit = np.flatnonzero((where < uniq.size) & (uniq[np.minimum(where, uniq.size - 1)] == have))
    reasons, stalled = flows.reasons.copy(), flows.stalled.copy()
    reasons[hit] |= np.uint16(R_BW_STALL)
    stalled[hit] = per_flow[where[hit]]
    new = np.ones(uniq.size, dtype=bool)
    new[where[hit]] = False
    a, b = (uniq[new] // n).astype(np.int32), (uniq[new] % n).astype(np.int32)
    nan = np.full(a.size, np.nan, dtype=np.float32)
    return Flows(
        src=np.concatenate([flows.src, a]), dst=np.concatenate([flows.dst, b]),
        reasons=np.concatenate([reasons, np.full(a.size, R_BW_STALL, dtype=np.uint16)]),
        bw=np.concatenate([flows.bw, run.bw_gbps[a, b].astype(np.float32)]),
        bw_limit=np.concatenate([flows.bw_limit, nan]),
        lat=np.concatenate([flows.lat, run.latency_ns_p50[a, b].astype(np.float32)]),
        lat_limit=np.concatenate([flows.lat_limit, nan]),
        inconclusive=np.concatenate([flows.inconclusive, np.zeros(a.size, dtype=bool)]),
        stalled=np.concatenate([stalled, per_flow[new]]))
