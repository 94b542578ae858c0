"""The failing directed flows of a pairs run and why each fails (bits of `reasons`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

R_BW_ABS, R_BW_LINK, R_BW_REL = 1, 2, 4
R_LAT50_ABS, R_LAT99_ABS, R_LAT_RATIO, R_CLASS50, R_CLASS99 = 8, 16, 32, 64, 128
R_ERROR = 256
R_BW_STALL = 512  # a flow with stalled windows, of a host the stall test singled out
BW_BITS = R_BW_ABS | R_BW_LINK | R_BW_REL
LAT50_BITS = R_LAT50_ABS | R_LAT_RATIO | R_CLASS50
LAT99_BITS = R_LAT99_ABS | R_CLASS99
MAX_FLOWS = 5_000_000  # failing flows kept for attribution; beyond, the failure is fabric-wide
MAX_LISTED = 1000  # failing / inconclusive pairs listed in JSON

# the criteria key of each bit, as the JSON listings name it
REASON_NAMES = {R_BW_ABS: "bandwidth.min_gbps", R_BW_LINK: "bandwidth.min_link_fraction",
                R_BW_REL: "bandwidth.min_fabric_fraction", R_LAT50_ABS: "latency.max_p50_us",
                R_LAT99_ABS: "latency.max_p99_us", R_LAT_RATIO: "latency.max_class_ratio",
                R_CLASS50: "hop_classes.max_p50_us", R_CLASS99: "hop_classes.max_p99_us", R_ERROR: "status",
                R_BW_STALL: "bandwidth.stalls"}


def reason_names(bits: int) -> list[str]:
    return [name for bit, name in REASON_NAMES.items() if bits & bit]


@dataclass
class Flows:
    """Failing directed flows (i -> j) of a pairs run, with what failed and by how much."""

    src: np.ndarray
    dst: np.ndarray
    reasons: np.ndarray  # uint16 bits
    bw: np.ndarray  # float32 measured
    bw_limit: np.ndarray  # float32, the highest bandwidth limit of the flow (NaN: none)
    lat: np.ndarray
    lat_limit: np.ndarray  # float32, the lowest p50 latency limit (NaN: none)
    inconclusive: np.ndarray  # bool
    stalled: np.ndarray  # int32, its stalled bandwidth windows (counted for hosts the stall test flags)

    @property
    def severity(self) -> np.ndarray:
        """measured / limit for bandwidth, limit / measured for latency: < 1 fails; errors 0."""
        with np.errstate(divide="ignore", invalid="ignore"):
            b = np.where((self.reasons & BW_BITS) != 0, self.bw / self.bw_limit, np.inf)
            lt = np.where((self.reasons & LAT50_BITS) != 0, self.lat_limit / self.lat, np.inf)
        s = np.minimum(b, lt)
        s = np.where((self.reasons & R_ERROR) != 0, 0.0, s)
        return np.where(np.isfinite(s), s, 1.0)
