"""Attribution of a pairs run's failing flows to suspects: hosts (a rank, its NIC or cable),
leaf-spine cables (routes known), a leaf's uplinks (routes unknown), degraded hosts and leaves
(warnings), and what is left as single pairs; and the pairs that re-test each suspect.

Counting tests (every suspect kind): per rank, per leaf (its cross-leaf pairs) and per leaf-spine
cable, how many of its pairs failed or timed out, missed a bandwidth limit (stalled windows
included) or missed a latency limit, against the rest of the fabric's rate of the same
(one-sided binomial, Laplace-smoothed rate; the smallest of the three p-values x 3; Benjamini-
Hochberg over the candidates of a kind; attribution.significance). A candidate qualifies when
its test is significant, or (small fabrics, where a test has little power) when at least
host_fail_fraction / link_fail_fraction of its flows fail; and at least min_pairs fail.
A leaf or cable must stand out without its worst rank (one bad host is not its leaf's uplinks).

Upstream causes: a rank whose leaf's cross-leaf pairs stand out without it (its leaf's uplinks, a
cable) is charged only when its same-leaf pairs show the fault too.

Greedy explain-away: the qualifying candidate that explains most failing flows is named, its
flows are set aside, the tests are redone on what is left. Then degraded.py names degraded
ranks and leaves (warnings). What is left are pairs: pairs sharing a named rank fold into it,
pairs sharing an endpoint with each other are listed together.

Ranking: failing suspects by the failing flows they explain, then warnings, then pairs, so that
neither pairs nor one cause crowd the others out of the max_suspects listed. Evidence-based
suspects from other sources (configuration) join through `extend_suspects`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from fabscope_analyze import stats
from fabscope_analyze.accept.pairs import degraded as deg
from fabscope_analyze.accept.pairs.flows import BW_BITS, LAT50_BITS, LAT99_BITS, R_BW_STALL, R_ERROR, Flows
from fabscope_analyze.accept.pairs.job import PairsJob
from fabscope_analyze.accept.pairs.scan import Scan
from fabscope_analyze.accept.pairs.stalls import StallTest
from fabscope_analyze.verdict import Suspect, fmt, round_sig

Explain = Callable[[np.ndarray], dict[str, Any]]
Describe = Callable[[dict[str, Any]], str]

CAT_ERR, CAT_BW, CAT_LAT = 1, 2, 4
CATEGORIES = (CAT_ERR, CAT_BW, CAT_LAT)
CAT_WORDS = {CAT_ERR: "failed or timed out", CAT_BW: "missed a bandwidth limit", CAT_LAT: "missed a latency limit"}
ENTITY_KINDS = ("host", "host_link", "leaf_spine_link", "leaf_uplinks")  # kinds that name a part of the fabric
MAX_PAIR_ENTRIES = 10
CLEAR_MARGIN = 0.05  # a bandwidth / latency p50 miss counts in the tests when beyond its limit by this share
Z_OUTLIER = 4.0  # robust deviations a candidate's failing share must lie above its kind's median  # pair entries listed at most (folded ones count once)


def categories(reasons: np.ndarray, bw_ratio: np.ndarray, lat_ratio: np.ndarray) -> np.ndarray:
    """CAT_* bits of each failing flow, as the counting tests count them: a bandwidth or latency
    p50 miss within CLEAR_MARGIN of its limit does not count (a healthy host a little slower than
    the rest gathers such misses near the limit: noise, not a fault); stalls, p99 misses and
    errors always count. bw_ratio / lat_ratio: measured / limit (NaN: not that miss)."""
    c = np.where((reasons & R_ERROR) != 0, CAT_ERR, 0)
    with np.errstate(invalid="ignore"):
        clear_bw = ((reasons & R_BW_STALL) != 0) | (((reasons & BW_BITS) != 0) & ~(bw_ratio >= 1 - CLEAR_MARGIN))
        clear_lat = ((reasons & LAT99_BITS) != 0) | (((reasons & LAT50_BITS) != 0) & ~(lat_ratio <= 1 + CLEAR_MARGIN))
    c |= np.where(clear_bw, CAT_BW, 0)
    c |= np.where(clear_lat, CAT_LAT, 0)
    return c.astype(np.uint8)


@dataclass
class Test:
    """A kind's counting test: per candidate and category the failing count, the count judged, the
    rest of the fabric's rate; the p-value (min over categories x 3) and its BH q-value."""

    k: np.ndarray  # [3, E]
    n: np.ndarray  # [E]
    rate: np.ndarray  # [3, E]
    p: np.ndarray  # [E]
    q: np.ndarray  # [E]
    cat: np.ndarray  # [E] index of the category with the smallest p

    def text(self, e: int, unit: str = "pairs") -> str:
        c = int(self.cat[e])
        k, n, r = int(self.k[c, e]), int(self.n[e]), float(self.rate[c, e])
        return (f"{k} of its {n} {unit} {CAT_WORDS[CATEGORIES[c]]} where the rest of the fabric's rate predicts "
                f"{fmt(r * n, 2)} (q = {fmt(float(self.q[e]), 2)})")


def counting_test(k: np.ndarray, n: np.ndarray, k_total: np.ndarray, n_total: float,
                  k_out: np.ndarray | None = None, n_out: np.ndarray | None = None) -> Test:
    """k [3, E] failing per category out of n [E]; k_total [3] over the population of n_total.
    k_out / n_out: the counts tested (default k / n; a leave-one-out count), the rate is always
    the rest's (k_total - k) / (n_total - n).

    Real fabrics are overdispersed (healthy hosts differ a little, so their failure counts vary
    more than one binomial rate predicts): a category counts only where the candidate's share is
    also an outlier among the candidates' shares (more than Z_OUTLIER robust deviations above
    their median, the deviation at least the binomial one)."""
    k_out = k if k_out is None else k_out
    n_out = np.broadcast_to(n if n_out is None else n_out, k_out.shape)
    rate = stats.rest_rate(k_total[:, None], n_total, k, n[None, :])
    p_cat = stats.binom_excess_p(k_out, n_out, rate)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(n_out > 0, k_out / n_out, np.nan)
    med = np.nanmedian(np.where(np.isfinite(share), share, np.nan), axis=1, keepdims=True) if share.size else share
    mad = 1.4826 * np.nanmedian(np.abs(share - med), axis=1, keepdims=True) if share.size else share
    with np.errstate(divide="ignore", invalid="ignore"):
        sd = np.sqrt(rate * (1 - rate) / np.maximum(n_out, 1))
        z = (share - med) / np.maximum(mad, sd)
    p_cat = np.where(z > Z_OUTLIER, p_cat, 1.0)
    cat = np.argmin(p_cat, axis=0) if p_cat.size else np.zeros(0, dtype=np.int64)
    p = np.minimum(1.0, 3 * p_cat.min(axis=0)) if p_cat.size else np.zeros(0)
    return Test(k=k, n=np.asarray(n), rate=rate, p=p, q=stats.bh_adjust(p), cat=cat)


def attribute(job: PairsJob, flows: Flows, scan: Scan, stalls: StallTest, notes: list[str]) -> list[Suspect]:
    """The suspects, ranked, each with its re-test pairs; notes get the background failure rate when high."""
    lay, att = job.layout, job.criteria.attribution
    n = job.n
    decisive = ~flows.inconclusive
    src, dst = flows.src[decisive].astype(np.int64), flows.dst[decisive].astype(np.int64)
    reasons, severity = flows.reasons[decisive], flows.severity[decisive]
    stalled = flows.stalled[decisive]
    bw_ratio = np.where((reasons & BW_BITS) != 0, flows.bw[decisive] / flows.bw_limit[decisive], np.nan)
    lat_ratio = np.where((reasons & LAT50_BITS) != 0, flows.lat[decisive] / flows.lat_limit[decisive], np.nan)
    cat = categories(reasons, bw_ratio, lat_ratio)
    alive = np.ones(src.size, dtype=bool)
    up, down = lay.flow_cables(src, dst)
    leaf = lay.leaf
    same_leaf = ((leaf[src] == leaf[dst]) & (leaf[src] >= 0)) | (lay.host_id[src] == lay.host_id[dst])
    # unordered pairs of the failing flows
    pkey, pinv = np.unique(np.minimum(src, dst) * n + np.maximum(src, dst), return_inverse=True)
    pa, pb = pkey // n, pkey % n
    p_same = ((leaf[pa] == leaf[pb]) & (leaf[pa] >= 0)) | (lay.host_id[pa] == lay.host_id[pb])
    p_cross = (leaf[pa] >= 0) & (leaf[pb] >= 0) & (leaf[pa] != leaf[pb])
    judged_peers = scan.judged_out.astype(np.float64)
    judged_pairs = float(judged_peers.sum()) / 2
    sl_peers = scan.same_leaf_judged.astype(np.float64) / 2
    cross_peers = np.where(leaf >= 0, judged_peers - sl_peers, 0.0)
    n_leaves = len(lay.leaf_names)
    leaf_judged = np.bincount(leaf[leaf >= 0], weights=cross_peers[leaf >= 0], minlength=n_leaves)
    cross_pairs = float(leaf_judged.sum()) / 2
    out: list[Suspect] = []
    tests: dict[str, Test] = {}

    def explain(mask: np.ndarray) -> dict[str, Any]:
        sel = mask & alive
        k = int(sel.sum())
        r = reasons[sel]
        return {
            "bw_flows": int(np.count_nonzero(r & BW_BITS)),
            "latency_flows": int(np.count_nonzero(r & (LAT50_BITS | LAT99_BITS))),
            "error_flows": int(np.count_nonzero(r & R_ERROR)),
            "stall_flows": int(np.count_nonzero(r & R_BW_STALL)),
            "stalled_windows": int(stalled[sel].sum()),
            "bw_vs_limit_median": round_sig(stats.nan_median(bw_ratio[sel])),
            "latency_vs_limit_median": round_sig(stats.nan_median(lat_ratio[sel])),
            "flows": k,
            "clear_flows": int(np.count_nonzero(cat[sel])),  # the ones the counting tests count
        }

    # The share rule for small fabrics: at least the configured fraction and at least halfway
    # between the background rate and 1 (with 40% of all flows failing, a host needs 70%).
    judged_total = max(1, int(scan.judged_out.sum()))
    background = src.size / judged_total
    host_fraction = max(att.host_fail_fraction, background + 0.5 * (1 - background))
    link_fraction = max(att.link_fail_fraction, background + 0.5 * (1 - background))
    if background > 0.05:
        notes.append(f"{100 * background:.1f}% of all directed flows fail: suspects must stand out from that "
                     f"(or fail at least {100 * host_fraction:.0f}% of their flows)")
    alpha = att.significance
    while len(out) < att.max_suspects and alive.any():
        pc = np.zeros(pkey.size, dtype=np.uint8)
        np.bitwise_or.at(pc, pinv[alive], cat[alive])
        has = [(pc & c) != 0 for c in CATEGORIES]
        # ranks
        k_host = np.stack([np.bincount(pa[h], minlength=n) + np.bincount(pb[h], minlength=n) for h in has])
        k_total = np.array([h.sum() for h in has], dtype=np.float64)
        t_host = counting_test(k_host, judged_peers, k_total, judged_pairs)
        s_alive, d_alive = src[alive], dst[alive]
        host_fail = np.bincount(s_alive, minlength=n) + np.bincount(d_alive, minlength=n)
        with np.errstate(divide="ignore", invalid="ignore"):
            share_ok = host_fail >= host_fraction * 2 * judged_peers
        host_ok = (host_fail >= att.min_pairs) & ((t_host.q < alpha) | share_ok)
        # a host the stall test singled out is a candidate on that evidence alone, as long as the
        # stalls left once named upstream causes took theirs still stand out ...
        for h in np.flatnonzero(stalls.flagged & (host_fail > 0) & ~host_ok):
            host_ok[h] = _stalls_stand_out(job, int(h), out, stalls, stalled[alive & ((src == h) | (dst == h))].sum())
        t_leaf = None
        if lay.has_leaves:
            # ... but a rank whose leaf's cross-leaf pairs stand out without it is charged only when
            # its same-leaf pairs show the fault too (else it is a victim of its leaf's uplinks)
            anyc = pc != 0
            k_cross_rank = np.stack([np.bincount(pa[h & p_cross], minlength=n) + np.bincount(pb[h & p_cross], minlength=n)
                                     for h in has])
            k_leaf = np.stack([np.bincount(leaf[pa[h & p_cross]], minlength=n_leaves)
                               + np.bincount(leaf[pb[h & p_cross]], minlength=n_leaves) for h in has])
            kc_total = np.array([(h & p_cross).sum() for h in has], dtype=np.float64)
            on = leaf >= 0
            lr = np.where(on, leaf, 0)
            t_wo = counting_test(k_leaf[:, lr], leaf_judged[lr], kc_total, cross_pairs,
                                 k_out=k_leaf[:, lr] - k_cross_rank, n_out=leaf_judged[lr] - cross_peers)
            upstream = on & (t_wo.p < alpha)
            sl_fail = np.bincount(pa[anyc & p_same], minlength=n) + np.bincount(pb[anyc & p_same], minlength=n)
            cross_fail = np.bincount(pa[anyc & p_cross], minlength=n) + np.bincount(pb[anyc & p_cross], minlength=n)
            sl_rate = np.full(n, float(sum((h & p_same).sum() for h in has)))
            t_sl = stats.binom_excess_p(sl_fail, sl_peers, stats.rest_rate(sl_rate, float(sl_peers.sum()) / 2,
                                                                             sl_fail, sl_peers))
            with np.errstate(divide="ignore", invalid="ignore"):
                shows = (sl_fail >= 1) & ((t_sl < alpha) |
                                          (sl_fail / sl_peers >= 0.5 * cross_fail / np.maximum(cross_peers, 1)))
            host_ok &= ~upstream | shows
            # a leaf's uplinks (routes unknown): its cross-leaf pairs stand out without its worst rank
            if not lay.has_routes and n_leaves >= 2:
                worst = np.zeros((len(CATEGORIES), n_leaves))
                for c in range(len(CATEGORIES)):
                    np.maximum.at(worst[c], leaf[on], k_cross_rank[c, on])
                per_rank = np.bincount(leaf[on], minlength=n_leaves)
                n_wo = leaf_judged * (1 - 1 / np.maximum(per_rank, 1))
                t_leaf = counting_test(k_leaf, leaf_judged, kc_total, cross_pairs, k_out=k_leaf - worst, n_out=n_wo)
                tests["leaf"] = t_leaf
        tests["host"] = t_host
        best_host = int(np.argmax(np.where(host_ok, host_fail, -1))) if host_ok.any() else -1
        host_count = int(host_fail[best_host]) if best_host >= 0 else -1
        best_cable, cable_count, t_cable = -1, -1, None
        if lay.n_cables:
            nc = lay.n_cables
            k_cab = np.zeros((len(CATEGORIES), nc))
            ca = alive & (up >= 0)
            for i, c in enumerate(CATEGORIES):
                m = ca & ((cat & c) != 0)
                k_cab[i] = np.bincount(up[m], minlength=nc) + np.bincount(down[m], minlength=nc)
            kf_total = np.array([np.count_nonzero(ca & ((cat & c) != 0)) for c in CATEGORIES], dtype=np.float64)
            # leave the cable's worst rank on its leaf out (a slow host's flows cross its leaf's cables)
            side = np.concatenate([up[ca] * n + src[ca], down[ca] * n + dst[ca]])
            keys, counts = np.unique(side, return_counts=True)
            worst_rank = np.zeros(nc)
            np.maximum.at(worst_rank, keys // n, counts)
            per_leaf = np.bincount(leaf[leaf >= 0], minlength=n_leaves)
            cab_ranks = np.maximum(1, per_leaf[np.arange(nc) // lay.n_planes])
            n_cab = scan.cable_judged.astype(np.float64)
            k_any = np.bincount(up[ca], minlength=nc) + np.bincount(down[ca], minlength=nc)
            share = np.where(k_any > 0, worst_rank / np.maximum(k_any, 1), 0.0)
            t_cable = counting_test(k_cab, n_cab, kf_total, float(n_cab.sum()) / 2,
                                    k_out=np.floor(k_cab * (1 - share)), n_out=n_cab * (1 - 1 / cab_ranks))
            tests["cable"] = t_cable
            with np.errstate(divide="ignore", invalid="ignore"):
                cable_ok = (k_any >= att.min_pairs) & ((t_cable.q < alpha) | (k_any >= link_fraction * n_cab)) & \
                    (k_any * (1 - share) >= att.min_pairs)
            if cable_ok.any():
                best_cable = int(np.argmax(np.where(cable_ok, k_any, -1)))
                cable_count = int(k_any[best_cable])
        best_leaf, leaf_count = -1, -1
        if t_leaf is not None:
            ls, ld = leaf[src], leaf[dst]
            crossf = alive & (ls >= 0) & (ld >= 0) & (ls != ld)
            touch = np.bincount(ls[crossf], minlength=n_leaves) + np.bincount(ld[crossf], minlength=n_leaves)
            ranks_on = np.zeros(n_leaves, dtype=np.int64)
            for x in range(n_leaves):
                mk = crossf & ((ls == x) | (ld == x))
                if mk.any():
                    ranks_on[x] = np.unique(np.concatenate([src[mk][ls[mk] == x], dst[mk][ld[mk] == x]])).size
            total = int(crossf.sum())
            # without its worst rank's flows (a bad host's cross-leaf flows are not its leaf's uplinks)
            fl = np.concatenate([ls[crossf] * n + src[crossf], ld[crossf] * n + dst[crossf]])
            keys, counts = np.unique(fl, return_counts=True)
            worst_flows = np.zeros(n_leaves)
            np.maximum.at(worst_flows, keys // n, counts)
            residual = touch - worst_flows
            leaf_ok = (residual >= att.min_pairs) & (ranks_on >= 2) & \
                ((t_leaf.q < alpha) | (residual >= 0.5 * total))
            if leaf_ok.any():
                best_leaf = int(np.argmax(np.where(leaf_ok, residual, -1)))
                leaf_count = int(residual[best_leaf])
        if best_host < 0 and best_cable < 0 and best_leaf < 0:
            break
        top = max(host_count, cable_count, leaf_count)
        if cable_count == top:
            mask = (up == best_cable) | (down == best_cable)
            d = explain(mask)
            judged = int(scan.cable_judged[best_cable])
            name = lay.cable_name(best_cable)
            hosts = np.unique(np.concatenate([src[mask & alive], dst[mask & alive]]))
            assert t_cable is not None
            out.append(Suspect(
                run=job.name, kind="leaf_spine_link", name=name, failing=d["flows"], judged=judged,
                evidence=f"{d['flows']} of the {judged} directed flows routed over this cable fail, "
                         f"among {hosts.size} ranks; " + describe(d) + "; " + t_cable.text(best_cable, "flows"),
                details={**d, "ranks_involved": int(hosts.size), "cable": best_cable, "severity": "fail",
                         "q": round_sig(float(t_cable.q[best_cable]))},
            ))
        elif host_count == top:
            h = best_host
            mask = (src == h) | (dst == h)
            d = explain(mask)
            out.append(_host_suspect(job, h, d, src, dst, mask & alive, int(2 * judged_peers[h]), stalls, t_host))
        else:
            assert t_leaf is not None
            ls, ld = leaf[src], leaf[dst]
            cross = alive & (ls >= 0) & (ld >= 0) & (ls != ld)
            out.append(_leaf_suspect(job, best_leaf, cross, src, dst, explain, t_leaf))
            mask = cross & ((ls == best_leaf) | (ld == best_leaf))
            for twin in out[-1].details["leaves"][1:]:
                mask |= cross & ((ls == twin) | (ld == twin))
        alive &= ~mask
    failing_entities = len(out)
    out.extend(_degraded(job, out, notes))
    pairs = _pairs(job, src, dst, severity, alive, explain, out)
    out = out[:failing_entities] + sorted(out[failing_entities:], key=lambda s: -s.failing) + pairs
    out = _rank(out, att.max_suspects)
    _retests(job, out, src, dst)
    return out


def _stalls_stand_out(job: PairsJob, h: int, named: list[Suspect], stalls: StallTest, stalled_left: int) -> bool:
    """The stall test again for rank h, on its flows that no named leaf's uplinks or cable carry
    (their windows estimated at the rank's windows per flow): a congested uplink stalls the windows
    of the hosts behind it, which is the uplink's evidence, not theirs."""
    lay, rule = job.layout, job.crit.stalls
    assert rule is not None and stalls.windows is not None and stalls.rest_windows is not None
    assert stalls.rest_stalled is not None
    leaves = {x for s in named for x in s.details.get("leaves", [])}
    cables = {int(s.details["cable"]) for s in named if "cable" in s.details}
    if not leaves and not cables:
        return True
    peers = np.arange(job.n)
    other = peers != h
    lh, lp = int(lay.leaf[h]), lay.leaf
    cross = (lh >= 0) & (lp >= 0) & (lp != lh)
    explained = cross & (np.isin(lp, list(leaves)) | (lh in leaves))
    flows_left = 2 * int(np.count_nonzero(other & ~explained))
    if cables:
        for s_, d_ in ((np.full(job.n, h), peers), (peers, np.full(job.n, h))):
            up, down = lay.flow_cables(s_, d_)
            flows_left -= int(np.count_nonzero(other & ~explained & (np.isin(up, list(cables)) |
                                                                     np.isin(down, list(cables)))))
    per_flow = stalls.windows[h] / max(1, 2 * (job.n - 1))
    rate = (stalls.rest_stalled[h] + 1) / (stalls.rest_windows[h] + 2)
    p = float(stats.binom_excess_p(np.array([stalled_left]), np.array([flows_left * per_flow]), np.array([rate]))[0])
    return bool(stalled_left >= rule.min_windows and p < rule.significance)


def _rank(out: list[Suspect], cap: int) -> list[Suspect]:
    """Failing suspects by the failing flows they explain, then warnings, then pairs; at most `cap`,
    pairs cut first (a pair never displaces a host, link or leaf)."""
    def order(s: Suspect) -> tuple[int, int, int]:
        tier = (3 if "pairs" in s.details else 2) if s.kind == "pair" else \
            1 if s.details.get("severity") == "warning" else 0
        return tier, -int(s.details.get("clear_flows", 0)) if s.kind == "pair" else 0, -s.failing
    ranked = sorted(out, key=order)
    entities = [s for s in ranked if s.kind != "pair"]
    pairs = [s for s in ranked if s.kind == "pair"]
    return entities[:cap] + pairs[: max(0, cap - len(entities))]


def extend_suspects(suspects: list[Suspect], extra: list[Suspect], cap: int) -> list[Suspect]:
    """Evidence-based suspects from another source (e.g. configuration) joined to a pairs run's
    list: one naming a host already listed adds its evidence to that entry (details["also"]);
    the others go after the failing suspects and before the pairs; at most `cap`, pairs cut first."""
    out = list(suspects)
    for x in extra:
        host = x.details.get("host")
        same = next((s for s in out if host is not None and s.kind in ("host", "host_link")
                     and s.details.get("host") == host), None)
        if same is not None:
            same.details.setdefault("also", []).append(x.evidence)
            same.evidence += "; also: " + x.evidence
        else:
            out.append(x)
    return _rank(out, cap)


def _leaf_suspect(job: PairsJob, leaf: int, cross: np.ndarray, src: np.ndarray, dst: np.ndarray, explain: Explain,
                  test: Test) -> Suspect:
    """The uplinks of a leaf (routes unknown), or of two leaves whose flows cannot be told apart."""
    lay = job.layout
    ls, ld = lay.leaf[src], lay.leaf[dst]
    mask = cross & ((ls == leaf) | (ld == leaf))
    total = int(cross.sum())
    nl = len(lay.leaf_names)
    touch = np.bincount(ls[cross], minlength=nl) + np.bincount(ld[cross], minlength=nl)
    on_leaf = np.unique(np.concatenate([src[mask][ls[mask] == leaf], dst[mask][ld[mask] == leaf]]))
    # Leaves that every one of these flows also touches (two leaves whose only failing flows
    # run between each other): their uplinks cannot be told apart, so name them together.
    twins = [int(o) for o in np.flatnonzero(touch == touch[leaf]) if o != leaf
             and np.array_equal(mask, cross & ((ls == o) | (ld == o)))]
    names = [lay.leaf_names[x] for x in [leaf] + twins]
    d = explain(mask)
    why = ("" if not twins else
           f"every one of these flows runs between {' and '.join(names)}, so which side's uplinks are at "
           "fault cannot be told from these pairs; ")
    return Suspect(
        run=job.name, kind="leaf_uplinks", name="uplinks of " + " or ".join(names),
        failing=d["flows"], judged=int(2 * test.n[leaf]),
        evidence=f"{d['flows']} of the {total} failing cross-leaf flows left involve this leaf, spread over "
                 f"{on_leaf.size} of its ranks (routes not recorded: which spine cable cannot be told); "
                 + why + describe(d) + "; " + test.text(leaf, "cross-leaf pairs"),
        details={**d, "ranks_on_leaf": int(on_leaf.size), "leaf": leaf, "leaves": [leaf] + twins, "severity": "fail",
                 "q": round_sig(float(test.q[leaf]))},
    )


def _degraded(job: PairsJob, out: list[Suspect], notes: list[str]) -> list[Suspect]:
    """Warnings: ranks and leaves whose flows sit consistently below the fabric's (degraded.py)."""
    lay, n = job.layout, job.n
    prof = deg.profile(job)
    if prof is None:
        return []
    ranks = np.zeros(n, dtype=bool)
    leaves = np.zeros(len(lay.leaf_names), dtype=bool)
    for s in out:
        if "rank" in s.details:
            ranks[s.details["rank"]] = True
        for x in s.details.get("leaves", []):
            leaves[x] = True
        if "cable" in s.details:
            leaves[s.details["cable"] // max(1, lay.n_planes)] = True
    d = deg.judge(job, prof, ranks, leaves)
    for s in out:  # the failing ranks' ratio, for the reader
        if "rank" in s.details and math.isfinite(d.bw_ratio[s.details["rank"]]):
            s.details["ratio_to_fabric"] = round_sig(float(d.bw_ratio[s.details["rank"]]))
    frac = job.criteria.attribution.degraded_fraction
    warn: list[Suspect] = []
    for x in np.flatnonzero(d.leaf):
        ratio = float(d.leaf_ratio[x])
        name = lay.leaf_names[int(x)]
        warn.append(Suspect(
            run=job.name, kind="leaf_uplinks", name=f"uplinks of {name}", failing=0, judged=0,
            evidence=f"degraded: the cross-leaf flows of its ranks run at {fmt(ratio, 2)} x the fabric's "
                     f"{fmt(prof.bw_ref_gbps)} Gb/s (median), below {fmt(frac, 2)}, on most of its ranks, while its "
                     "same-leaf flows do not",
            details={"severity": "warning", "ratio_to_fabric": round_sig(ratio), "leaf": int(x), "leaves": [int(x)],
                     "flows": 0}))
    for h in np.flatnonzero(d.bw_rank | d.lat_rank):
        h = int(h)
        host, leaf = lay.rank_name(h), lay.leaf_name(h)
        bw = bool(d.bw_rank[h])
        rate = float(lay.rate_gbps[h])
        if bw:
            kind, name = "host_link", f"{host} port/cable" + (f" to {leaf}" if leaf else "")
            ratio = float(d.bw_ratio[h])
            what = (f"degraded: its flows run at {fmt(ratio, 2)} x the fabric's {fmt(prof.bw_ref_gbps)} Gb/s (median "
                    f"of its pairs), {fmt(100 * d.bw_low_share[h], 2)}% of its pairs below "
                    f"{fmt(0.5 * (1 + frac), 2)} x; every limit may pass, but the port or cable is not what its "
                    "peers have")
        else:
            kind, name = "host", host
            ratio = float(d.lat_ratio[h])
            what = (f"degraded: its latency p50 runs at {fmt(ratio, 2)} x the fabric's for the same hop class "
                    f"(median of its pairs), {fmt(100 * d.lat_high_share[h], 2)}% of its pairs above "
                    f"{fmt(2 / (1 + frac), 2)} x")
        warn.append(Suspect(
            run=job.name, kind=kind, name=name, failing=0, judged=int(d.clean_pairs[h]),
            evidence=what + (f"; port rate {fmt(rate)} Gb/s on file" if math.isfinite(rate) else ""),
            details={"severity": "warning", "ratio_to_fabric": round_sig(ratio), "metric": "bandwidth" if bw else
                     "latency", "rank": h, "host": lay.hostnames[h], "leaf": leaf, "flows": 0,
                     "port_rate_gbps": round_sig(rate)}))
    if warn:
        notes.append(f"{len(warn)} degraded (warning): flows consistently below the fabric's although limits may pass")
    return warn


def _pairs(job: PairsJob, src: np.ndarray, dst: np.ndarray, severity: np.ndarray, alive: np.ndarray,
           explain: Explain, out: list[Suspect]) -> list[Suspect]:
    """What is left: single failing pairs. A pair with a listed rank folds into that rank's suspect;
    pairs sharing an endpoint are listed as one entry (too few to single the endpoint out)."""
    lay, n = job.layout, job.n
    if not alive.any():
        return []
    named = {int(s.details["rank"]): s for s in out if "rank" in s.details}
    a, b = np.minimum(src[alive], dst[alive]), np.maximum(src[alive], dst[alive])
    key = a.astype(np.int64) * n + b
    sev = severity[alive]
    order = np.lexsort((sev, key))
    key_sorted = key[order]
    first = np.concatenate([[True], key_sorted[1:] != key_sorted[:-1]])
    uniq = order[first]  # the worst flow of each pair
    uniq = uniq[np.argsort(sev[uniq], kind="stable")]
    left: list[tuple[int, int]] = []
    for k in uniq:
        i, j = int(a[k]), int(b[k])
        host = named.get(i) or named.get(j)
        if host is not None:
            folded = host.details.setdefault("folded_pairs", [])
            folded.append([i, j])
            host.retest.append((i, j))
            continue
        left.append((i, j))
    for s in named.values():
        if s.details.get("folded_pairs"):
            s.evidence += f"; and {len(s.details['folded_pairs'])} more failing pairs of its own"
    # group by shared endpoint, the most shared first; then rank by the failures the tests count
    groups = _shared_endpoint_groups(left, n)
    fkey = np.minimum(src, dst).astype(np.int64) * n + np.maximum(src, dst)
    forder = np.argsort(fkey, kind="stable")
    fsorted = fkey[forder]

    def mask_of(pairs: list[tuple[int, int]]) -> np.ndarray:
        keys = np.array([i * n + j for i, j in pairs], dtype=np.int64)
        lo, hi = np.searchsorted(fsorted, keys, "left"), np.searchsorted(fsorted, keys, "right")
        mask = np.zeros(src.size, dtype=bool)
        for a0, a1 in zip(lo.tolist(), hi.tolist()):
            mask[forder[a0:a1]] = True
        return mask

    # Many entries (a large fabric's scattered failures): explain them largest first and stop
    # once no later one can reach the top MAX_PAIR_ENTRIES (an entry counts at most 2 flows per
    # pair); the ranking is the same, the rest go into the last entry unexplained.
    prune = len(groups) > 20 * MAX_PAIR_ENTRIES
    if prune:
        groups.sort(key=lambda g: -len(g[1]))
    entries: list[Suspect] = []
    unexplained: list[tuple[int, int]] = []
    best: list[int] = []  # clear_flows of the entries so far, highest first (up to MAX_PAIR_ENTRIES)
    for e, group in groups:
        if prune and len(best) >= MAX_PAIR_ENTRIES and 2 * len(group) < best[MAX_PAIR_ENTRIES - 1]:
            unexplained += group
            continue
        d = explain(mask_of(group))
        if prune:
            best = sorted([*best, d["clear_flows"]], reverse=True)[:MAX_PAIR_ENTRIES]
        if e >= 0:
            peers = [q if p == e else p for p, q in group]
            entries.append(Suspect(
                run=job.name, kind="pair",
                name=f"{lay.rank_name(e)} <-> " + ", ".join(lay.rank_name(p) for p in peers[:5])
                     + (f" and {len(peers) - 5} more" if len(peers) > 5 else ""),
                failing=d["flows"], judged=2 * len(group),
                evidence=f"{len(group)} failing pairs share {lay.rank_name(e)}, too few to single it out from "
                         "the rest of the fabric's failures (re-test them); " + describe(d),
                details={**d, "ranks": [e, *peers], "shared_endpoint": e, "severity": "fail"},
                retest=list(group)))
        else:
            (i, j), = group
            entries.append(Suspect(
                run=job.name, kind="pair", name=f"{lay.rank_name(i)} <-> {lay.rank_name(j)}",
                failing=d["flows"], judged=2,
                evidence="an isolated failing pair (the cable path between them, or either end); " + describe(d),
                details={**d, "ranks": [i, j], "severity": "fail"}, retest=[(i, j)],
            ))
    entries.sort(key=lambda x: (-x.details["clear_flows"], -x.failing))
    rest = entries[MAX_PAIR_ENTRIES:]
    entries = entries[:MAX_PAIR_ENTRIES]
    remaining = [pair for x in rest for pair in x.retest] + unexplained
    if remaining:
        entries.append(Suspect(
            run=job.name, kind="pair", name=f"{len(remaining)} more failing pairs", failing=len(remaining),
            judged=2 * len(remaining),
            evidence="more failing pairs, single or sharing an endpoint, with fewer failures the counting tests "
                     "count than the pairs above (listed in failing_pairs)",
            details={"ranks": [], "pairs": len(remaining), "severity": "fail", "flows": len(remaining)},
            retest=remaining[:job.criteria.retest.max_pairs]))
    return entries


def _retests(job: PairsJob, out: list[Suspect], src: np.ndarray, dst: np.ndarray) -> None:
    """Re-test pairs, once every suspect is known (peers are chosen among the others)."""
    n = job.n
    picks = _Retests(job, fail_count=np.bincount(src, minlength=n) + np.bincount(dst, minlength=n),
                     suspect_ranks=np.array([x.details["rank"] for x in out if "rank" in x.details], dtype=np.int64))
    for x in out:
        if "rank" in x.details:
            x.retest = picks.host(int(x.details["rank"])) + x.retest
        elif "cable" in x.details:
            x.retest = picks.link(int(x.details.pop("cable")))
        elif "leaf" in x.details:
            x.retest = picks.leaf(int(x.details.pop("leaf")))


def describe(d: dict[str, Any]) -> str:
    """What failed in the flows a suspect explains (explain()'s dict), in words."""
    parts = []
    if d["stall_flows"]:
        parts.append(f"bandwidth stalled ({d['stalled_windows']} windows in {d['stall_flows']} flows)")
    if d["bw_flows"]:
        parts.append(f"bandwidth at {fmt(d['bw_vs_limit_median'], 2)} x its limit (median)")
    if d["latency_flows"]:
        ratio = d["latency_vs_limit_median"]
        parts.append(f"latency at {fmt(ratio, 2)} x its limit" if ratio is not None
                     else "latency p99 above its limit")
    if d["error_flows"]:
        parts.append(f"{d['error_flows']} flows failed or timed out")
    return "; ".join(parts)


def _host_suspect(job: PairsJob, h: int, d: dict[str, Any], src: np.ndarray, dst: np.ndarray, mask: np.ndarray,
                  judged: int, stalls: StallTest, test: Test) -> Suspect:
    """A rank: the host itself, or its port / cable when bandwidth alone fails or the port is slow."""
    lay = job.layout
    sends = int(np.count_nonzero(mask & (src == h)))
    receives = int(np.count_nonzero(mask & (dst == h)))
    rate = float(lay.rate_gbps[h])
    fabric_rate = job.criteria.link_rate_gbps or stats.nan_median(lay.rate_gbps)
    degraded = math.isfinite(rate) and math.isfinite(fabric_rate) and rate < 0.99 * fabric_rate
    link_like = degraded or ((d["bw_flows"] + d["stall_flows"]) > 0 and d["latency_flows"] == 0
                             and d["error_flows"] == 0)
    leaf = lay.leaf_name(h)
    host = lay.rank_name(h)
    kind = "host_link" if link_like else "host"
    name = (f"{host} port/cable" + (f" to {leaf}" if leaf else "")) if link_like else host
    why = []
    if degraded:
        why.append(f"its port runs at {fmt(rate)} Gb/s, the fabric at {fmt(fabric_rate)} Gb/s")
    elif link_like:
        why.append("bandwidth fails while latency is normal (a link, not the host, is the usual cause)")
    if test.q[h] < job.criteria.attribution.significance:
        why.append(test.text(h))
    if stalls.flagged[h]:
        why.append(stalls.text(h))
    return Suspect(
        run=job.name, kind=kind, name=name, failing=d["flows"], judged=judged,
        evidence=f"fails with {_peers(src, dst, mask, h)} of {job.n - 1} peers "
                 f"({sends} flows sending, {receives} receiving); " + describe(d)
                 + ("; " + "; ".join(why) if why else ""),
        details={**d, "rank": h, "host": lay.hostnames[h], "leaf": leaf, "sending": sends,
                 "receiving": receives, "port_rate_gbps": round_sig(rate), "severity": "fail",
                 "q": round_sig(float(test.q[h]))},
    )


def _peers(src: np.ndarray, dst: np.ndarray, mask: np.ndarray, h: int) -> int:
    other = np.where(src[mask] == h, dst[mask], src[mask])
    return int(np.unique(other).size)


class _Retests:
    """Re-test pairs for a suspect, with peers among the healthy ranks."""

    def __init__(self, job: PairsJob, fail_count: np.ndarray, suspect_ranks: np.ndarray) -> None:
        self.job, self.fail_count, self.suspect_ranks = job, fail_count, suspect_ranks

    def healthy_peers(self, exclude: np.ndarray) -> np.ndarray:
        """Peers for re-tests, in display order: not a suspect host, not sharing a host with the
        excluded ranks, and among the quarter of ranks with the fewest failing flows."""
        lay = self.job.layout
        bad = np.zeros(self.job.n, dtype=bool)
        bad[exclude] = True
        bad[self.suspect_ranks] = True
        bad |= np.isin(lay.host_id, lay.host_id[np.asarray(exclude, dtype=np.int64)])
        cand = lay.order[~bad[lay.order]]
        if cand.size == 0:
            return cand
        counts = self.fail_count[cand]
        return cand[counts <= np.percentile(counts, 25)]

    def host(self, h: int) -> list[tuple[int, int]]:
        k = self.job.criteria.retest.peers_per_host
        cand = self.healthy_peers(np.array([h]))
        if cand.size == 0:
            return []
        picks = cand[np.linspace(0, cand.size - 1, min(k, cand.size)).round().astype(int)]
        return [(h, int(p)) for p in picks]

    def link(self, cable: int) -> list[tuple[int, int]]:
        lay, k = self.job.layout, self.job.criteria.retest.pairs_per_link
        leaf, plane = divmod(cable, lay.n_planes)
        assert lay.dest_plane is not None
        ranks = lay.order[~np.isin(lay.order, self.suspect_ranks)]
        on = ranks[lay.leaf[ranks] == leaf]
        off = ranks[(lay.leaf[ranks] != leaf) & (lay.dest_plane[ranks] == plane) & (lay.leaf[ranks] >= 0)]
        pairs = [(int(a), int(b)) for a, b in zip(on[:k], off[np.linspace(0, max(0, off.size - 1), k).round()
                                                               .astype(int)] if off.size else [])]
        return pairs

    def leaf(self, leaf: int) -> list[tuple[int, int]]:
        lay, k = self.job.layout, self.job.criteria.retest.pairs_per_link
        ranks = lay.order[~np.isin(lay.order, self.suspect_ranks)]
        on = ranks[lay.leaf[ranks] == leaf]
        off = ranks[(lay.leaf[ranks] != leaf) & (lay.leaf[ranks] >= 0)]
        if not on.size or not off.size:
            return []
        picks = off[np.linspace(0, off.size - 1, k).round().astype(int)]
        return [(int(on[i % on.size]), int(p)) for i, p in enumerate(picks)]


def _shared_endpoint_groups(pairs: list[tuple[int, int]], n: int) -> list[tuple[int, list[tuple[int, int]]]]:
    """The pairs grouped greedily by a shared endpoint: repeatedly the endpoint in most remaining
    pairs (the lowest rank on a tie) takes all of them, while it is in at least 2; then every pair
    left is its own group (endpoint -1). Pairs keep their order within a group. O(P log P) with a
    heap of endpoint counts (a 12,500-host fabric can leave tens of thousands of single pairs)."""
    import heapq

    if not pairs:
        return []
    arr = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    count = np.bincount(arr.ravel(), minlength=n).astype(np.int64)
    ends = arr.ravel()
    by_end = np.argsort(ends, kind="stable")  # pair index = position // 2, ascending within an endpoint
    starts = np.searchsorted(ends[by_end], np.arange(n + 1))
    gone = np.zeros(arr.shape[0], dtype=bool)
    heap = [(-int(c), int(e)) for e in np.flatnonzero(count >= 2).tolist() for c in (count[e],)]
    heapq.heapify(heap)
    out: list[tuple[int, list[tuple[int, int]]]] = []
    while heap:
        c, e = heapq.heappop(heap)
        if -c != count[e]:
            if count[e] >= 2:
                heapq.heappush(heap, (-int(count[e]), e))
            continue
        if count[e] < 2:
            continue
        idx = by_end[starts[e]:starts[e + 1]] // 2
        idx = np.unique(idx[~gone[idx]])
        gone[idx] = True
        group = [(int(arr[k, 0]), int(arr[k, 1])) for k in idx]
        for i, j in group:
            count[i] -= 1
            count[j] -= 1
        out.append((e, group))
    out += [(-1, [(int(arr[k, 0]), int(arr[k, 1]))]) for k in np.flatnonzero(~gone)]
    return out

