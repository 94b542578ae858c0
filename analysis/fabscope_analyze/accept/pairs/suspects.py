"""Attribution of a pairs run's failing flows (greedy, most failures explained first): ranks (a
host, its NIC or cable) and leaf-spine cables whose share of failing flows stands out, then,
without routes, a leaf's uplinks, then single pairs; and the pairs that re-test each suspect."""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from fabscope_analyze import stats
from fabscope_analyze.accept.pairs.flows import BW_BITS, LAT50_BITS, LAT99_BITS, R_BW_STALL, R_ERROR, Flows
from fabscope_analyze.accept.pairs.job import PairsJob
from fabscope_analyze.accept.pairs.scan import Scan
from fabscope_analyze.accept.pairs.stalls import StallTest
from fabscope_analyze.verdict import Suspect, fmt, round_sig

Explain = Callable[[np.ndarray], dict[str, Any]]
Describe = Callable[[dict[str, Any]], str]


def attribute(job: PairsJob, flows: Flows, scan: Scan, stalls: StallTest, notes: list[str]) -> list[Suspect]:
    """The suspects, each with its re-test pairs; notes get the background failure rate when high."""
    lay, att = job.layout, job.criteria.attribution
    n = job.n
    decisive = ~flows.inconclusive
    src, dst = flows.src[decisive], flows.dst[decisive]
    reasons, severity = flows.reasons[decisive], flows.severity[decisive]
    stalled = flows.stalled[decisive]
    bw_ratio = np.where((reasons & BW_BITS) != 0, flows.bw[decisive] / flows.bw_limit[decisive], np.nan)
    lat_ratio = np.where((reasons & LAT50_BITS) != 0, flows.lat[decisive] / flows.lat_limit[decisive], np.nan)
    alive = np.ones(src.size, dtype=bool)
    judged_host = scan.judged_out + scan.judged_in
    up, down = lay.flow_cables(src, dst)
    same_leaf = (lay.leaf[src] == lay.leaf[dst]) & (lay.leaf[src] >= 0)
    out: list[Suspect] = []

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
        }

    # A candidate must stand out from the fabric's background failure rate: its share of
    # failing flows must be at least the configured fraction and at least halfway between the
    # background rate and 1 (with 40% of all flows failing, a host needs 70%).
    judged_total = max(1, int(scan.judged_out.sum()))
    background = src.size / judged_total
    host_fraction = max(att.host_fail_fraction, background + 0.5 * (1 - background))
    link_fraction = max(att.link_fail_fraction, background + 0.5 * (1 - background))
    if background > 0.05:
        notes.append(f"{100 * background:.1f}% of all directed flows fail: suspects must fail at "
                     f"least {100 * host_fraction:.0f}% of their flows to stand out")
    while len(out) < att.max_suspects and alive.any():
        s_alive, d_alive = src[alive], dst[alive]
        host_fail = np.bincount(s_alive, minlength=n) + np.bincount(d_alive, minlength=n)
        with np.errstate(divide="ignore", invalid="ignore"):
            host_ok = (host_fail >= att.min_pairs) & (host_fail >= host_fraction * judged_host)
        # a host the stall test singled out is a candidate on that evidence alone ...
        host_ok |= stalls.flagged & (host_fail > 0)
        if lay.has_leaves:
            # ... but a host, its NIC or its cable slows its traffic within its leaf as well: a rank
            # whose failures are all beyond its leaf is a victim of the leaf's uplinks, not a suspect
            sl = alive & same_leaf
            sl_fail = np.bincount(src[sl], minlength=n) + np.bincount(dst[sl], minlength=n)
            host_ok &= (scan.same_leaf_judged == 0) | (sl_fail >= 0.5 * host_fraction * scan.same_leaf_judged)
        best_host = int(np.argmax(np.where(host_ok, host_fail, -1))) if host_ok.any() else -1
        best_cable, cable_count = -1, -1
        if lay.n_cables:
            u, dn = up[alive], down[alive]
            cable_fail = np.bincount(u[u >= 0], minlength=lay.n_cables) + \
                np.bincount(dn[dn >= 0], minlength=lay.n_cables)
            cable_ok = (cable_fail >= att.min_pairs) & (cable_fail >= link_fraction * scan.cable_judged)
            if cable_ok.any():
                best_cable = int(np.argmax(np.where(cable_ok, cable_fail, -1)))
                cable_count = int(cable_fail[best_cable])
        host_count = int(host_fail[best_host]) if best_host >= 0 else -1
        if best_host < 0 and best_cable < 0:
            break
        if cable_count > host_count:
            mask = (up == best_cable) | (down == best_cable)
            d = explain(mask)
            judged = int(scan.cable_judged[best_cable])
            name = lay.cable_name(best_cable)
            hosts = np.unique(np.concatenate([src[mask & alive], dst[mask & alive]]))
            out.append(Suspect(
                run=job.name, kind="leaf_spine_link", name=name, failing=d["flows"], judged=judged,
                evidence=f"{d['flows']} of the {judged} directed flows routed over this cable fail, "
                         f"among {hosts.size} ranks; " + describe(d),
                details={**d, "ranks_involved": int(hosts.size), "cable": best_cable},
            ))
        else:
            h = best_host
            mask = (src == h) | (dst == h)
            d = explain(mask)
            out.append(_host_suspect(job, h, d, src, dst, mask & alive, int(judged_host[h]), stalls))
        alive &= ~mask
    if lay.has_leaves and not lay.has_routes:
        _leaf_uplinks(job, src, dst, alive, out, explain)
    # what is left: single pairs, worst first
    if alive.any() and len(out) < att.max_suspects:
        a, b = np.minimum(src[alive], dst[alive]), np.maximum(src[alive], dst[alive])
        key = a.astype(np.int64) * n + b
        sev = severity[alive]
        order = np.lexsort((sev, key))
        key_sorted = key[order]
        first = np.concatenate([[True], key_sorted[1:] != key_sorted[:-1]])
        uniq = order[first]  # the worst flow of each pair
        uniq = uniq[np.argsort(sev[uniq], kind="stable")]
        for k in uniq[: att.max_suspects - len(out)]:
            i, j = int(a[k]), int(b[k])
            mask = ((src == i) & (dst == j)) | ((src == j) & (dst == i))
            d = explain(mask)
            out.append(Suspect(
                run=job.name, kind="pair", name=f"{lay.rank_name(i)} <-> {lay.rank_name(j)}",
                failing=d["flows"], judged=2,
                evidence="an isolated failing pair (the cable path between them, or either end); " + describe(d),
                details={**d, "ranks": [i, j]}, retest=[(i, j)],
            ))
    # re-test pairs, once every suspect is known (peers are chosen among the others)
    picks = _Retests(job, fail_count=np.bincount(src, minlength=n) + np.bincount(dst, minlength=n),
                     suspect_ranks=np.array([x.details["rank"] for x in out if "rank" in x.details], dtype=np.int64))
    for x in out:
        if "rank" in x.details:
            x.retest = picks.host(int(x.details["rank"]))
        elif "cable" in x.details:
            x.retest = picks.link(int(x.details.pop("cable")))
        elif "leaf" in x.details:
            x.retest = picks.leaf(int(x.details.pop("leaf")))
    return out


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
                  judged: int, stalls: StallTest) -> Suspect:
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
    if stalls.flagged[h]:
        why.append(stalls.text(h))
    return Suspect(
        run=job.name, kind=kind, name=name, failing=d["flows"], judged=judged,
        evidence=f"fails with {_peers(src, dst, mask, h)} of {job.n - 1} peers "
                 f"({sends} flows sending, {receives} receiving); " + describe(d)
                 + ("; " + "; ".join(why) if why else ""),
        details={**d, "rank": h, "host": lay.hostnames[h], "leaf": leaf, "sending": sends,
                 "receiving": receives, "port_rate_gbps": round_sig(rate)},
    )


def _peers(src: np.ndarray, dst: np.ndarray, mask: np.ndarray, h: int) -> int:
    other = np.where(src[mask] == h, dst[mask], src[mask])
    return int(np.unique(other).size)


def _leaf_uplinks(job: PairsJob, src: np.ndarray, dst: np.ndarray, alive: np.ndarray, out: list[Suspect],
                  explain: Explain) -> None:
    """Without routes: failures left that concentrate on one leaf's cross-leaf traffic name
    "uplinks of leaf L" (appended to out; their flows leave `alive`)."""
    lay, att = job.layout, job.criteria.attribution
    while len(out) < att.max_suspects:
        ls, ld = lay.leaf[src], lay.leaf[dst]
        cross = alive & (ls >= 0) & (ld >= 0) & (ls != ld)
        total = int(cross.sum())
        if total < att.min_pairs:
            return
        nl = len(lay.leaf_names)
        touch = np.bincount(ls[cross], minlength=nl) + np.bincount(ld[cross], minlength=nl)
        leaf = int(np.argmax(touch))
        mask = cross & ((ls == leaf) | (ld == leaf))
        on_leaf = np.unique(np.concatenate([src[mask][ls[mask] == leaf], dst[mask][ld[mask] == leaf]]))
        if touch[leaf] < max(att.min_pairs, 0.5 * total) or on_leaf.size < 2:
            return
        # Leaves that every one of these flows also touches (two leaves whose only failing flows
        # run between each other): their uplinks cannot be told apart, so name them together.
        twins = [int(o) for o in np.flatnonzero(touch == touch[leaf]) if o != leaf
                 and np.array_equal(mask, cross & ((ls == o) | (ld == o)))]
        names = [lay.leaf_names[x] for x in [leaf] + twins]
        d = explain(mask)
        why = ("" if not twins else
               f"every one of these flows runs between {' and '.join(names)}, so which side's uplinks are at "
               "fault cannot be told from these pairs; ")
        out.append(Suspect(
            run=job.name, kind="leaf_uplinks", name="uplinks of " + " or ".join(names),
            failing=d["flows"], judged=0,
            evidence=f"{d['flows']} of the {total} failing cross-leaf flows left involve this leaf, spread over "
                     f"{on_leaf.size} of its ranks (routes not recorded: which spine cable cannot be told); "
                     + why + describe(d),
            details={**d, "ranks_on_leaf": int(on_leaf.size), "leaf": leaf, "leaves": [leaf] + twins},
        ))
        alive &= ~mask


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
