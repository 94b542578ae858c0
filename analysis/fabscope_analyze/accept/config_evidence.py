"""Configuration evidence in accept: what /hosts says about each host's RDMA ports (results/SCHEMA.md:
/hosts/ports, written by fabscope at start-up; older files: the /hosts/rdma_devices text).

A host is singled out by its own configuration when
  * a NIC's PCIe link runs below its maximum ("PCIe x8 of x16", "PCIe 16 of 32 GT/s"), or
  * a port runs below the expected rate: the criteria's link_rate_gbps, else the topology's link
    rate, else the majority of the same port (device name and number) on the other hosts
    ("port at 200 of 400 Gb/s"), or
  * its cable runs below the rate both ends could train to (/topology/links/max_rate_gbps, from
    InfiniBand PortInfo when the topology was discovered live or from an ibnd cache), or
  * a port's firmware, active MTU or link width differs from that majority (at least 3 hosts, more
    than half of them agreeing).
`add_config_evidence` joins this with a pairs run's verdict: a suspect on such a host gets the
reasons in its evidence and `details["config"]` (a trained-down port names both rates, and
`details["port_rate_gbps"]` is the negotiated rate from /hosts, `nominal_rate_gbps` the expected
one); a host with such a reason that no failing pair named becomes a suspect of its own with
`details["severity"] = "warning"` and its bandwidth relative to the fabric (`bw_vs_fabric`): the
verdict's status is left to the criteria's rules, so a warning alone does not fail a run.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from fabscope_analyze import stats
from fabscope_analyze.context import ReportContext
from fabscope_analyze.reader import Host, PairsRun, PortConfig
from fabscope_analyze.verdict import RunVerdict, Suspect, fmt, round_sig

__all__ = ["HostEvidence", "add_config_evidence", "host_evidence", "ports_of"]

# "mlx5_0 port 1: fw 28.39.1002, link_layer InfiniBand, state ACTIVE, rate 200 Gb/sec (4X HDR)"
_DEVICE = re.compile(r"^(?P<dev>\S+) port (?P<port>\d+): fw (?P<fw>[^,]*), link_layer (?P<ll>[^,]*), "
                     r"state (?P<state>[^,]*), rate (?P<rate>.*)$")
_RATE = re.compile(r"^\s*([0-9.]+)\s*Gb/sec(?:\s*\((\S+)\s+([^)]*)\))?")
MIN_HOSTS_FOR_MAJORITY = 3


@dataclass
class HostEvidence:
    host: str
    rank: int  # the host's first rank
    reasons: list[str] = field(default_factory=list)
    port_rate_gbps: float = math.nan  # the lowest negotiated rate of its active ports
    expected_rate_gbps: float = math.nan  # what that port should run at (NaN: no reason to doubt it)


def ports_of(h: Host) -> tuple[PortConfig, ...]:
    """A rank's ports: /hosts/ports when the file has it, else parsed from /hosts/rdma_devices
    (rate, width, speed, firmware and state only)."""
    if h.has_config:
        return h.ports
    out = []
    for text in h.rdma_devices:
        m = _DEVICE.match(text.strip())
        if not m:
            continue
        r = _RATE.match(m["rate"])
        out.append(PortConfig(
            device=m["dev"], port=int(m["port"]), link_layer=m["ll"], state=m["state"].strip().upper(),
            rate_gbps=float(r.group(1)) if r else math.nan, width=(r.group(2) or "") if r else "",
            speed=(r.group(3) or "") if r else "", active_mtu_bytes=0, max_mtu_bytes=0,
            fw_ver="" if m["fw"] == "?" else m["fw"], driver="", pcie_speed_gts=math.nan,
            pcie_max_speed_gts=math.nan, pcie_width=0, pcie_max_width=0, numa_node=-1))
    return tuple(out)


def _majority(values: Sequence[Any]) -> tuple[Any, int] | None:
    """The value more than half of `values` hold (at least MIN_HOSTS_FOR_MAJORITY values), and how many."""
    if len(values) < MIN_HOSTS_FOR_MAJORITY:
        return None
    value, count = Counter(values).most_common(1)[0]
    return (value, count) if 2 * count > len(values) else None


def _cable_rates(ctx: ReportContext) -> dict[int, tuple[float, float]]:
    """Rank -> (rate, max rate) of its NIC's cable from /topology/links when the topology knows
    the rate both ends could train to (`max_rate_gbps`, InfiniBand PortInfo) and the cable runs
    below it: a trained-down link, whatever the host's own view of its port."""
    topo = ctx.run_file.topology
    if topo is None:
        return {}
    a_kind, a_index = topo.column("links", "a_kind"), topo.column("links", "a_index")
    rate, most = topo.column("links", "rate_gbps"), topo.column("links", "max_rate_gbps")
    rank_nic = topo.column("ranks", "nic")
    if a_kind is None or a_index is None or rate is None or most is None or rank_nic is None:
        return {}
    cable = {int(n): k for k, (kind, n) in enumerate(zip(a_kind, a_index)) if str(kind) == "nic"}
    out = {}
    for r, nic in enumerate(rank_nic.tolist()):
        k = cable.get(int(nic))
        if k is not None and float(most[k]) > 0 and 0 < float(rate[k]) < 0.99 * float(most[k]):
            out[r] = (float(rate[k]), float(most[k]))
    return out


def host_evidence(ctx: ReportContext) -> dict[str, HostEvidence]:
    """Hosts (by name) whose configuration explains trouble, with the reasons in words."""
    hosts = ctx.run_file.hosts
    lay = ctx.layout
    first: dict[str, Host] = {}
    for h in hosts:
        first.setdefault(h.hostname, h)
    ports = {name: ports_of(h) for name, h in first.items()}
    # the same port on every host: (device, port) -> field -> [(host, value)]
    seen: dict[tuple[str, int], dict[str, list[tuple[str, Any]]]] = {}
    for name, ps in ports.items():
        for p in ps:
            f = seen.setdefault((p.device, p.port), {})
            if p.fw_ver:
                f.setdefault("firmware", []).append((name, p.fw_ver))
            if p.state != "ACTIVE":
                continue
            if math.isfinite(p.rate_gbps):
                f.setdefault("rate", []).append((name, p.rate_gbps))
            if p.active_mtu_bytes > 0:
                f.setdefault("active MTU", []).append((name, p.active_mtu_bytes))
            if p.width:
                f.setdefault("link width", []).append((name, p.width))
    majority = {key: {what: _majority([v for _, v in pairs]) for what, pairs in f.items()} for key, f in seen.items()}
    n_with = {key: {what: len(pairs) for what, pairs in f.items()} for key, f in seen.items()}
    link_rate = ctx.link_rate_gbps
    trained_down = _cable_rates(ctx)
    down_of: dict[str, list[int]] = {}
    for r in sorted(trained_down):
        down_of.setdefault(hosts[r].hostname, []).append(r)
    out: dict[str, HostEvidence] = {}
    for name, h in first.items():
        ev = HostEvidence(host=name, rank=h.rank)
        for r in down_of.get(name, []):
            now, most = trained_down[r]
            ev.reasons.append(f"cable of rank {r}: trained to {fmt(now)} of {fmt(most)} Gb/s (the "
                              "topology's PortInfo: both ends could run faster)")
            ev.port_rate_gbps = now if not math.isfinite(ev.port_rate_gbps) else min(ev.port_rate_gbps, now)
            ev.expected_rate_gbps = most
        nominal, source = math.nan, ""
        if link_rate:
            nominal, source = float(link_rate), "the criteria's link_rate_gbps"
        elif lay.rate_source == "topology" and math.isfinite(float(lay.rate_gbps[h.rank])):
            nominal, source = float(lay.rate_gbps[h.rank]), "the topology's link rate"
        for p in ports[name]:
            where = f"{p.device} port {p.port}"
            if 0 < p.pcie_width < p.pcie_max_width:
                ev.reasons.append(f"{where}: PCIe x{p.pcie_width} of x{p.pcie_max_width}")
            if math.isfinite(p.pcie_speed_gts) and math.isfinite(p.pcie_max_speed_gts) and \
                    p.pcie_speed_gts < p.pcie_max_speed_gts:
                ev.reasons.append(f"{where}: PCIe {fmt(p.pcie_speed_gts)} of {fmt(p.pcie_max_speed_gts)} GT/s")
            maj = majority.get((p.device, p.port), {})
            count = n_with.get((p.device, p.port), {})
            if p.fw_ver and (m := maj.get("firmware")) and p.fw_ver != m[0]:
                ev.reasons.append(f"{where}: firmware {p.fw_ver} ({m[1]} of {count['firmware']} hosts have {m[0]})")
            if p.state != "ACTIVE":
                continue
            if math.isfinite(p.rate_gbps):
                ev.port_rate_gbps = p.rate_gbps if not math.isfinite(ev.port_rate_gbps) else \
                    min(ev.port_rate_gbps, p.rate_gbps)
                expected, why = nominal, source
                if not math.isfinite(expected) and (m := maj.get("rate")):
                    expected, why = float(m[0]), f"{m[1]} of {count['rate']} hosts run {fmt(m[0])} Gb/s"
                if math.isfinite(expected) and p.rate_gbps < 0.99 * expected:
                    ev.reasons.append(f"{where}: port at {fmt(p.rate_gbps)} of {fmt(expected)} Gb/s ({why})")
                    ev.expected_rate_gbps = expected
            if p.active_mtu_bytes > 0 and (m := maj.get("active MTU")) and p.active_mtu_bytes != m[0]:
                ev.reasons.append(f"{where}: active MTU {p.active_mtu_bytes} bytes "
                                  f"({m[1]} of {count['active MTU']} hosts have {m[0]})")
            if p.width and (m := maj.get("link width")) and p.width != m[0]:
                ev.reasons.append(f"{where}: link width {p.width} ({m[1]} of {count['link width']} hosts have {m[0]})")
        out[name] = ev
    return out


def _bw_vs_fabric(run: PairsRun, ranks: Sequence[int]) -> dict[int, float]:
    """For the given ranks, the median of the rank's flows' bandwidth (both directions) over the
    fabric's median flow (of up to 4 million flows: every flow below 2,000 ranks, a seeded
    sample above)."""
    if not ranks:
        return {}
    bw = run.bw_gbps
    n = bw.shape[0]
    ranks = sorted({r for r in ranks if 0 <= r < n})
    values, _ = stats.offdiag_sample(bw, 4_000_000, seed=3)
    fabric = float(np.median(values)) if values.size else math.nan
    if not ranks or not math.isfinite(fabric) or fabric <= 0:
        return {}
    med = stats.nanmedian_rows(np.concatenate([bw[ranks, :], bw[:, ranks].T], axis=1)) / fabric
    return dict(zip(ranks, med.tolist()))


def add_config_evidence(rv: RunVerdict, run: PairsRun, ctx: ReportContext) -> None:
    """Joins the configuration evidence with a pairs run's suspects (see the module doc)."""
    evidence = host_evidence(ctx)
    hosts = ctx.run_file.hosts
    named: set[str] = set()
    for s in rv.suspects:
        if "rank" not in s.details or s.kind not in ("host", "host_link"):
            continue
        r = int(s.details["rank"])
        ev = evidence.get(hosts[r].hostname)
        if ev is None:
            continue
        named.add(ev.host)
        negotiated = ports_of(hosts[r])
        rates = [p.rate_gbps for p in negotiated if p.state == "ACTIVE" and math.isfinite(p.rate_gbps)]
        if math.isfinite(ev.port_rate_gbps):  # the cable's active rate from PortInfo counts too
            rates.append(ev.port_rate_gbps)
        if rates:  # the port's negotiated rate, not the topology's nominal one
            s.details["port_rate_gbps"] = round_sig(min(rates))
        if math.isfinite(ev.expected_rate_gbps):
            s.details["nominal_rate_gbps"] = round_sig(ev.expected_rate_gbps)
        if ev.reasons:
            s.details["config"] = list(ev.reasons)
            s.evidence += "; configuration: " + "; ".join(ev.reasons)
    unnamed = [(name, ev) for name, ev in evidence.items() if name not in named and ev.reasons]
    ratio = _bw_vs_fabric(run, [ev.rank for _, ev in unnamed])  # only for these: a 12,500-host matrix is 3 s
    for name, ev in unnamed:
        link = any(k in r for r in ev.reasons for k in ("PCIe", "port at", "link width", "MTU", "trained to"))
        leaf = ctx.layout.leaf_name(ev.rank)
        rel = ratio.get(ev.rank, math.nan)
        rv.suspects.append(Suspect(
            run=rv.run, kind="host_link" if link else "host",
            name=(f"{name} port/cable" + (f" to {leaf}" if leaf else "")) if link else name,
            failing=0, judged=0,
            evidence="configuration: " + "; ".join(ev.reasons)
                     + (f"; its flows run at {fmt(rel, 2)} x the fabric's median" if math.isfinite(rel) else ""),
            details={"rank": ev.rank, "host": name, "leaf": leaf, "severity": "warning", "config": list(ev.reasons),
                     "bw_vs_fabric": round_sig(rel), "port_rate_gbps": round_sig(ev.port_rate_gbps),
                     "nominal_rate_gbps": round_sig(ev.expected_rate_gbps)},
        ))
