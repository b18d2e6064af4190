"""Joins late, out-of-order labels to the predictions they judge, in bounded memory."""

from __future__ import annotations

import math
import sys
from array import array
from typing import Any, Iterator, NamedTuple

import orjson

from models.schema import PredictionEvent
from models.snapshot import Snapshottable

_NONE = math.nan  # a confidence that was not given (given ones are in [0, 1])


class Pending(NamedTuple):
    """A prediction waiting for its label."""

    version: str
    segment: str | None
    prediction: Any
    timestamp: float
    confidence: float | None = None


class LabelJoin(Snapshottable):
    """Remembers recent predictions by request id until their label arrives, expires or is pushed out.

    Labels can arrive hours late; memory must not grow with traffic, so the oldest predictions go first
    (by count and by event-time age) and the losses are counted rather than hidden.

    The predictions are held as columns, oldest first, because a checkpoint saves each model's whole join
    (up to ``max_pending`` predictions) every few seconds: with an object per prediction, scattered over the
    heap, walking and pickling 40,000 of them took 70 ms, and stalled the intake as long. A matched, re-sent
    or dropped prediction leaves a hole (its id None); the oldest slots are dropped by moving a head forward,
    and the columns are cut when holes make up most of them.
    """

    def __init__(self, max_pending: int = 50_000, ttl_s: float = 24 * 3600.0) -> None:
        if max_pending < 1 or ttl_s <= 0:
            raise ValueError("max_pending must be >= 1 and ttl_s > 0")
        self.max_pending = max_pending
        self.ttl_s = ttl_s
        self.evicted = 0
        self.expired = 0
        self.unmatched = 0
        self._fill([], [], [], [], array("d"), array("d"))

    def _fill(self, ids: list[str | None], versions: list[str], segments: list[str | None], predictions: list[Any],
              timestamps: array[float], confidences: array[float]) -> None:
        self._ids, self._versions, self._segments = ids, versions, segments
        self._predictions, self._timestamps, self._confidences = predictions, timestamps, confidences
        self._head = 0  # the columns' first slot that may still be live: those before it are dropped
        self._cut = 0  # slots cut off the front of the columns so far: a slot's index is its number minus this
        self._slots = {rid: n for n, rid in enumerate(ids) if rid is not None}  # request id -> slot number

    def __len__(self) -> int:
        return len(self._slots)

    def remember(self, event: PredictionEvent) -> None:
        rid, ids, slots = event.request_id, self._ids, self._slots
        again = slots.get(rid)
        if again is not None:  # sent again: the newer one counts, as the newest
            ids[again - self._cut] = None
        slots[rid] = self._cut + len(ids)
        ids.append(rid)
        # Versions, segments and class labels repeat across thousands of predictions: one shared string each
        # keeps the join smaller, and its snapshot too (pickle writes a repeated object as a back-reference).
        self._versions.append(sys.intern(event.version))
        segment, prediction, confidence = event.segment, event.prediction, event.confidence
        self._segments.append(segment and sys.intern(segment))
        self._predictions.append(sys.intern(prediction) if type(prediction) is str else prediction)
        self._timestamps.append(event.timestamp)
        self._confidences.append(_NONE if confidence is None else confidence)
        self._drop(event.timestamp - self.ttl_s)

    def match(self, request_id: str) -> Pending | None:
        slot = self._slots.pop(request_id, None)
        if slot is None:
            self.unmatched += 1
            return None
        i = slot - self._cut
        self._ids[i] = None
        return self._pending(i)

    def items(self) -> Iterator[tuple[str, Pending]]:
        """The predictions waiting, oldest first."""
        for i in range(self._head, len(self._ids)):
            rid = self._ids[i]
            if rid is not None:
                yield rid, self._pending(i)

    def _pending(self, i: int) -> Pending:
        confidence = self._confidences[i]
        return Pending(self._versions[i], self._segments[i], self._predictions[i], self._timestamps[i],
                       None if confidence != confidence else confidence)

    def _drop(self, horizon: float) -> None:
        """Moves the head past holes, and past the oldest predictions while there are more than ``max_pending``
        (evicted) or they are older than ``horizon`` (expired); then cuts off what it passed, or the holes,
        once they are most of the columns."""
        ids, slots, timestamps, head = self._ids, self._slots, self._timestamps, self._head
        while head < len(ids):
            rid = ids[head]
            if rid is not None:
                if len(slots) > self.max_pending:
                    self.evicted += 1
                elif timestamps[head] < horizon:
                    self.expired += 1
                else:
                    break
                del slots[rid]
                ids[head] = None
            head += 1
        self._head = head
        if head > 1024 and 2 * head > len(ids):  # the dropped slots are most of the columns: cut them off
            for column in (ids, self._versions, self._segments, self._predictions, timestamps, self._confidences):
                del column[:head]
            self._cut += head
            self._head = 0
        elif len(ids) - head > 2 * len(slots) + 1024:
            self._compact()

    def _compact(self) -> None:
        """Keeps the live slots only: labels matched soon leave holes behind the oldest predictions, which wait
        for labels that are late or never come, and the head does not pass those for a long time."""
        live = [i for i in range(self._head, len(self._ids)) if self._ids[i] is not None]
        self._fill([self._ids[i] for i in live], [self._versions[i] for i in live],
                   [self._segments[i] for i in live], [self._predictions[i] for i in live],
                   array("d", [self._timestamps[i] for i in live]), array("d", [self._confidences[i] for i in live]))

    def __getstate__(self) -> dict[str, Any]:
        head = self._head
        ids: list[str | None] | bytes = self._ids[head:]
        try:  # a fifth of the time pickle takes for as many distinct strings (it remembers each one)
            ids = orjson.dumps(ids)
        except orjson.JSONEncodeError:  # a request id that is not valid Unicode (a lone surrogate): as it is
            pass
        return {"max_pending": self.max_pending, "ttl_s": self.ttl_s, "evicted": self.evicted,
                "expired": self.expired, "unmatched": self.unmatched,
                "columns": (ids, self._versions[head:], self._segments[head:],
                            self._predictions[head:], self._timestamps[head:], self._confidences[head:])}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "columns" in state:
            ids, versions, segments, predictions, timestamps, confidences = state.pop("columns")
            if isinstance(ids, bytes):
                ids = orjson.loads(ids)
        else:  # written before the join was held as columns: by request id, or as a list per field
            pending = state.pop("_pending", None)
            if pending is not None:
                columns = (list(pending), *map(list, zip(*pending.values()))) if pending else [[] for _ in range(6)]
            else:
                columns = state.pop("_columns")
            ids, versions, segments, predictions, timestamps, confidences = columns
            timestamps = array("d", timestamps)
            confidences = array("d", (_NONE if c is None else c for c in confidences))
        self.__dict__.update(state)
        self._fill(ids, versions, segments, predictions, timestamps, confidences)
