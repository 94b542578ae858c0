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
from fabscope_analyze.reader import PairSamples, PairsRun, map_row_ranges
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
    swept = sweep_rows(run, window_fraction, None)
    if swept is not None:
        assert swept[0] is not None
        return swept[0]
    n = run.n_ranks
    acc = _Counts(n)
    if run.n_pair_samples:
        for pair, fwd, rev in run.window_blocks():
            for x, s, d in ((fwd, pair[:, 0], pair[:, 1]), (rev, pair[:, 1], pair[:, 0])):
                finite = np.isfinite(x)
                usable = finite.sum(axis=1) >= 2  # a window needs a sibling to stall against
                best = np.fmax.reduce(np.where(finite, x, -np.inf), axis=1)
                with np.errstate(invalid="ignore"):
                    k = (finite & (x < window_fraction * best[:, None])).sum(axis=1)
                acc.add(s, d, np.where(usable, finite.sum(axis=1), 0), np.where(usable, k, 0))
    return acc.result()


class _Counts:
    """Accumulates StallCounts over row blocks."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.windows = np.zeros(n, dtype=np.int64)
        self.stalled = np.zeros(n, dtype=np.int64)
        self.src: list[np.ndarray] = [np.empty(0, np.int32)]
        self.dst: list[np.ndarray] = [np.empty(0, np.int32)]
        self.count: list[np.ndarray] = [np.empty(0, np.int64)]

    def add(self, s: np.ndarray, d: np.ndarray, w: np.ndarray, k: np.ndarray) -> None:
        """One direction of a block: w windows and k stalled per row, flow s -> d."""
        self.tally(s, d, w, k)
        self.flows(s, d, k)

    def tally(self, a: np.ndarray, c: np.ndarray, w: np.ndarray, k: np.ndarray) -> None:
        """w windows and k stalled per row, counted for both ranks of the row's pair (a, c)."""
        # Most rows have the same windows and no stall: counted without weights (a third of the time)
        even = w.size > 0 and bool((w == w[0]).all())
        some = np.flatnonzero(k)
        for ranks in (a, c):
            if even:
                self.windows += int(w[0]) * np.bincount(ranks, minlength=self.n)
            else:
                self.windows += np.bincount(ranks, weights=w, minlength=self.n).astype(np.int64)
            if some.size:
                self.stalled += np.bincount(ranks[some], weights=k[some], minlength=self.n).astype(np.int64)

    def flows(self, s: np.ndarray, d: np.ndarray, k: np.ndarray) -> None:
        some = k > 0
        self.src.append(s[some].astype(np.int32))
        self.dst.append(d[some].astype(np.int32))
        self.count.append(k[some].astype(np.int64))

    def merge(self, other: "_Counts") -> None:
        self.windows += other.windows
        self.stalled += other.stalled
        self.src += other.src
        self.dst += other.dst
        self.count += other.count

    def result(self) -> StallCounts:
        return StallCounts(self.windows, self.stalled, np.concatenate(self.src), np.concatenate(self.dst),
                           np.concatenate(self.count))


@dataclass
class RowsOfPairs:
    """Every row of some pairs (the noise test's candidates), read during sweep_rows."""

    rows: np.ndarray  # int64, ascending
    keys: np.ndarray  # int64 min(a, b) * N + max(a, b) of each row's pair
    samples: PairSamples  # their compact distributions as pseudo-samples


_SWEEP_COLUMNS = ("pair", "bw_fwd_q", "bw_rev_q", "bw_gbps_fwd_best", "bw_gbps_rev_best")
_HIT_COLUMNS = ("round", "latency_ns_p50", "latency_q")
_BITMAP_MAX_RANKS = 40_000  # a bit per (min, max) pair key: 200 MB at 40,000 ranks


def sweep_rows(run: PairsRun, window_fraction: float | None,
               wanted: np.ndarray | None) -> tuple[StallCounts | None, RowsOfPairs | None] | None:
    """One pass over a version-2 row table (window codes per window, read from the file) that
    serves both the stall counts (window_fraction; None: not counted) and the noise test (every row
    of the pairs whose keys are in `wanted`, sorted; None: none), in several processes for a large
    table (reader.map_row_ranges). None when the run is not such a table: use the other paths.

    A window stalled when its code is below window_fraction x the row's first (best) code, rounded
    up: the decoded comparison (window < window_fraction x best), exactly."""
    src = run.row_source()
    if src is None or not src.codes_per_window():
        return None
    n = run.n_ranks
    keys = np.unique(np.asarray(wanted, dtype=np.int64)) if wanted is not None else np.empty(0, np.int64)
    bitmap = None
    if keys.size and n <= _BITMAP_MAX_RANKS:
        bitmap = np.zeros((n * n + 7) // 8, dtype=np.uint8)
        np.bitwise_or.at(bitmap, keys >> 3, (1 << (keys & 7)).astype(np.uint8))
    parts = map_row_ranges(src, _sweep_part, n, window_fraction, keys, bitmap)
    counts = None
    if window_fraction is not None:
        acc = _Counts(n)
        for part in parts:
            acc.merge(part[0])
        counts = acc.result()
    found = None
    if wanted is not None:
        hits = [part[1] for part in parts if part[1] is not None]
        if hits:
            cols = {k: np.concatenate([h[k] for h in hits]) for k in hits[0]}
        else:
            cols = {"row": np.empty(0, np.int64), "key": np.empty(0, np.int64),
                    **src.read_rows(src.COMPACT_COLUMNS, np.empty(0, np.int64))}
        rows, found_keys = np.asarray(cols.pop("row"), np.int64), np.asarray(cols.pop("key"), np.int64)
        found = RowsOfPairs(rows=rows, keys=found_keys, samples=src.compact_samples(cols))
    return counts, found


def _stall_side(q: np.ndarray, best: np.ndarray, limits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(usable windows, stalled windows) per row of one direction's codes [B, W] (best first);
    limits[code] = ceil(window_fraction x code): a window stalled when its code is below the
    limit of the row's first code."""
    have = q > 0
    finite = np.isfinite(best)
    if not finite.all():
        have &= finite[:, None]
    count = count_rows(have)
    k = count_rows(have & (q < limits[q[:, 0]][:, None]))
    usable = count >= 2  # a window needs a sibling to stall against
    return np.where(usable, count, 0), np.where(usable, k, 0)


def count_rows(mask: np.ndarray) -> np.ndarray:
    """Per row, how many cells of a bool [B, K] (K < 256) are True, as int16. numpy's reduction
    along a short row costs a loop per row (0.1 s per million rows of 12); here the row's bytes
    are added 4 at a time as uint32 words (no byte can carry: each sums at most K / 4 ones), and
    a word's 4 bytes are summed by one multiplication."""
    b, k = mask.shape
    m = mask.view(np.uint8)
    if k % 4:
        m = np.concatenate([m, np.zeros((b, 4 - k % 4), dtype=np.uint8)], axis=1)
    words = np.ascontiguousarray(m).view(np.uint32)
    total = words[:, 0].copy()
    for j in range(1, words.shape[1]):
        total += words[:, j]
    return ((total * np.uint32(0x01010101)) >> np.uint32(24)).astype(np.int16)


def _sweep_part(src, rows: tuple[int, int], n: int, fraction: float | None, keys: np.ndarray,
                bitmap: np.ndarray | None) -> tuple[_Counts | None, dict[str, np.ndarray] | None]:
    """sweep_rows over the rows [r0, r1): the stall counts and the wanted rows' columns."""
    acc = _Counts(n) if fraction is not None else None
    limits = np.minimum(np.ceil((fraction or 0.0) * np.arange(256)), 255).astype(np.uint8)
    hits: list[dict[str, np.ndarray]] = []
    r0 = rows[0]
    names = _SWEEP_COLUMNS if fraction is not None else ("pair",)
    for b in src.blocks(names, rows=rows):
        pair = np.asarray(b["pair"], dtype=np.int32).reshape(-1, 2)
        a, c = pair[:, 0], pair[:, 1]
        valid = (a >= 0) & (a < n) & (c >= 0) & (c < n)
        if acc is not None:
            wf, kf = _stall_side(b["bw_fwd_q"], b["bw_gbps_fwd_best"], limits)
            wr, kr = _stall_side(b["bw_rev_q"], b["bw_gbps_rev_best"], limits)
            av, cv = a[valid], c[valid]
            acc.tally(av, cv, (wf + wr)[valid], (kf + kr)[valid])  # both directions' windows at once
            acc.flows(av, cv, kf[valid])
            acc.flows(cv, av, kr[valid])
        if keys.size:
            key = np.minimum(a, c).astype(np.int64) * n + np.maximum(a, c)
            key = np.where(valid, key, -1)
            if bitmap is not None:
                safe = np.maximum(key, 0)
                hit = np.flatnonzero(valid & ((bitmap[safe >> 3] >> (safe & 7).astype(np.uint8)) & 1).astype(bool))
            else:
                pos = np.minimum(np.searchsorted(keys, key), keys.size - 1)
                hit = np.flatnonzero(keys[pos] == key)
            if hit.size:
                row = r0 + hit
                cols = {"row": row, "key": key[hit], "pair": pair[hit]}
                if fraction is not None:
                    cols.update({k: b[k][hit] for k in _SWEEP_COLUMNS if k != "pair"})
                    more = _HIT_COLUMNS
                else:
                    more = tuple(k for k in src.COMPACT_COLUMNS if k != "pair")
                lo, hi = int(row[0]), int(row[-1]) + 1  # one read of the block's span of hits
                span = next(src.blocks(more, rows_per_block=hi - lo, rows=(lo, hi)))
                cols.update({k: v[row - lo] for k, v in span.items()})
                hits.append(cols)
        r0 += pair.shape[0]
    found = {k: np.concatenate([h[k] for h in hits]) for k in hits[0]} if hits else None
    return acc, found


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


def stalls_judged(run: PairsRun) -> bool:
    """Whether the run has what the stall test needs (else judge_stalls says why it skipped)."""
    return run.n_pair_samples > 0 and run.bw_windows >= 2


def judge_stalls(job: PairsJob, flows: Flows, counts: StallCounts | None = None) -> tuple[Check, Flows, StallTest]:
    """The check, the flows with the flagged hosts' stalled flows added, and the outcome per host
    (counts: the run's stall counts when already taken, e.g. by sweep_rows)."""
    rule, n, lay = job.crit.stalls, job.n, job.layout
    assert rule is not None
    pct = fmt(rule.window_fraction * 100)
    check = Check(run=job.name, rule="pairs.bandwidth.stalls",
                  title=f"no host's bandwidth windows stall (below {pct}% of the flow's best window in the same "
                        f"repeat) more often than the rest of the fabric's (false-discovery rate "
                        f"{fmt(rule.significance)}, at least {rule.min_windows} windows)",
                  status=PASS, unit="hosts")
    if not stalls_judged(job.run):
        check.status = SKIPPED
        check.detail = ("no window samples (pair_samples) in the file" if job.run.n_pair_samples == 0 else
                        "one bandwidth window per direction: nothing to compare a window with (--bw-iters 2+)")
        return check, flows, StallTest.none(n)
    if counts is None:
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
