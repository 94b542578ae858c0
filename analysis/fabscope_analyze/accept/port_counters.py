"""The fabric's own error counters in accept: /pma (fabscope --pma; results/SCHEMA.md) holds the PMA
PortCounters deltas of both ends of every cable over the command's runs. A cable with an error
counter that rose (SymbolErrorCounter, LinkErrorRecoveryCounter, LinkDownedCounter, PortRcvErrors,
PortRcvRemotePhysicalErrors, PortXmitDiscards, LocalLinkIntegrityErrors,
ExcessiveBufferOverrunErrors; PortXmitWait counts congestion and is not judged) fails the check
`fabric.port_errors` of the first judged run and is named as a suspect: kind `host_link` when a
host is on the cable (joined with that host's traffic suspect when there is one), else
`leaf_spine_link`. A cable end that could not be read is a note, not a failure.
"""

from __future__ import annotations

from fabscope_analyze.reader import RunFile
from fabscope_analyze.verdict import FAIL, PASS, Check, RunVerdict, Suspect

__all__ = ["ERROR_COUNTERS", "add_port_counter_evidence"]

ERROR_COUNTERS = ("SymbolErrorCounter", "LinkErrorRecoveryCounter", "LinkDownedCounter", "PortRcvErrors",
                  "PortRcvRemotePhysicalErrors", "PortXmitDiscards", "LocalLinkIntegrityErrors",
                  "ExcessiveBufferOverrunErrors")


def add_port_counter_evidence(runs: list[RunVerdict], run_file: RunFile) -> None:
    """Adds the check and the cable suspects to the first run verdict (the counters span them all)."""
    pma = run_file.pma
    if pma is None or not runs:
        return
    rv = runs[0]
    cols = [k for k, name in enumerate(pma.names) if name in ERROR_COUNTERS]
    cables: dict[int, list[str]] = {}
    first_end: dict[int, int] = {}
    for e in range(len(pma.end)):
        if not pma.ok[e]:
            continue
        rose = [f"{pma.names[c]} +{int(pma.delta[e, c])}" for c in cols if pma.delta[e, c] > 0]
        if rose:
            link = int(pma.link[e])
            cables.setdefault(link, []).append(f"at {pma.end[e]}: " + ", ".join(rose))
            first_end.setdefault(link, e)
    unread = int((~pma.ok).sum())
    if unread:
        rv.notes.append(f"{unread} of {len(pma.end)} cable ends did not answer their PMA query (before or after)")
    check = Check(run=rv.run, rule="fabric.port_errors", title="no error counter of any cable rose during the run",
                  status=FAIL if cables else PASS, judged=len(set(pma.link.tolist())), failing=len(cables),
                  unit="cables", detail=f"{len(cables)} cables with rising error counters (PMA PortCounters)" if cables
                  else "", examples=[f"{pma.end[first_end[k]]} <-> {pma.peer[first_end[k]]}: {'; '.join(v)}"
                                     for k, v in list(cables.items())[:10]])
    rv.checks.append(check)
    for link, what in cables.items():
        e = first_end[link]
        host = pma.host[e]
        evidence = "the fabric's own error counters rose during the run: " + "; ".join(what)
        joined = next((s for s in rv.suspects if host and s.details.get("host") == host
                       and s.kind in ("host", "host_link")), None)
        if joined is not None:
            joined.evidence += "; " + evidence
            joined.details["port_errors"] = what
            continue
        rv.suspects.append(Suspect(
            run=rv.run, kind="host_link" if host else "leaf_spine_link",
            name=f"{pma.end[e]} <-> {pma.peer[e]}", failing=0, judged=0, evidence=evidence,
            details={"link": link, "host": host, "port_errors": what},
        ))
    rv.status = FAIL if cables else rv.status
