"""Short time series of the monitored statistics, for the dashboard's sparklines.

The monitors keep current levels only; a timer samples their ``state()`` every few seconds into a
fixed-size ring per statistic. Everything is bounded: points per series, statistics per monitor and
monitors tracked, so memory does not grow with the data (about 8 bytes a point).
"""

from __future__ import annotations

import math
from array import array
from typing import Any, Iterable, Mapping

NAN = float("nan")


def numeric_fields(state: Mapping[str, Any], limit: int) -> dict[str, float]:
    """The finite numbers of a monitor's state: top-level ones first, then one level of nested mappings
    (``features.monthly_spend``), at most ``limit``. Booleans and anything else are left out."""

    def number(v: Any) -> float | None:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return None
        return float(v) if math.isfinite(v) else None

    found: dict[str, float] = {}
    for name, value in state.items():
        n = number(value)
        if n is not None:
            found[str(name)] = n
    for name, value in state.items():
        if isinstance(value, Mapping):
            for inner, v in sorted(value.items(), key=lambda kv: str(kv[0])):
                n = number(v)
                if n is not None:
                    found[f"{name}.{inner}"] = n
    return dict(list(found.items())[:limit])


class Track:
    """The sampled statistics of one monitor: a shared ring of times and one ring of values per name."""

    def __init__(self, points: int, max_fields: int) -> None:
        self.points = points
        self.max_fields = max_fields
        self._times = array("d", [NAN] * points)
        self._values: dict[str, array[float]] = {}
        self._next = 0
        self._count = 0

    def record(self, t: float, values: Mapping[str, float]) -> None:
        i = self._next
        self._times[i] = t
        for name in values:
            if name not in self._values and len(self._values) < self.max_fields:
                self._values[name] = array("d", [NAN] * self.points)
        for name, ring in self._values.items():
            ring[i] = values.get(name, NAN)
        self._next = (i + 1) % self.points
        self._count = min(self._count + 1, self.points)

    def _order(self) -> list[int]:
        start = (self._next - self._count) % self.points
        return [(start + k) % self.points for k in range(self._count)]

    def export(self, points: int | None = None) -> dict[str, Any]:
        """``{"t": [...], "values": {name: [...]}}`` oldest first, a missing sample as null; with
        ``points``, every k-th sample (always ending on the newest) so the answer stays small."""
        order = self._order()
        if points is not None and 0 < points < len(order):
            step = math.ceil(len(order) / points)
            order = order[::-1][::step][::-1]

        def clean(x: float) -> float | None:
            return None if math.isnan(x) else x

        return {
            "t": [round(self._times[i], 3) for i in order],
            "values": {name: [clean(ring[i]) for i in order] for name, ring in self._values.items()},
        }


class SeriesStore:
    """Tracks by monitor key; a key not sampled in a round (its monitor was evicted) is dropped."""

    def __init__(self, points: int = 900, max_fields: int = 16, max_keys: int = 200) -> None:
        if points < 2 or max_fields < 1 or max_keys < 1:
            raise ValueError("points must be >= 2, max_fields and max_keys >= 1")
        self.points = points
        self.max_fields = max_fields
        self.max_keys = max_keys
        self._tracks: dict[str, Track] = {}

    def sample(self, t: float, states: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        seen = set()
        for key, state in states:
            track = self._tracks.get(key)
            if track is None:
                if len(self._tracks) >= self.max_keys:
                    continue
                track = self._tracks[key] = Track(self.points, self.max_fields)
            track.record(t, numeric_fields(state, self.max_fields))
            seen.add(key)
        for gone in set(self._tracks) - seen:
            del self._tracks[gone]

    def wants(self, key: str) -> bool:
        """Whether a sample of ``key`` would be kept (it is tracked, or there is room for it)."""
        return key in self._tracks or len(self._tracks) < self.max_keys

    def export(self, key: str, points: int | None = None) -> dict[str, Any] | None:
        track = self._tracks.get(key)
        return None if track is None else track.export(points)

    def __len__(self) -> int:
        return len(self._tracks)
