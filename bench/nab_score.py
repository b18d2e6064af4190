"""Numenta Anomaly Benchmark scoring, written from NAB's published method (v1.1), no NAB code copied.

- Each series has labelled anomaly windows (``labels/combined_windows.json``). The first
  ``min(floor(0.15 n), 750)`` rows are probation: never scored.
- A row whose anomaly score is at least the threshold is a detection. Inside a window, a detection is worth
  ``A_TP * sigma(position) / sigma(-1)`` where ``position = -(right - i + 1) / width`` runs from -1 at the
  window's first row to ~0 at its last, and ``sigma(x) = 2 / (1 + exp(5 x)) - 1`` (the scaled sigmoid);
  only the window's best (earliest) detection counts. A window with no detection costs ``A_FN``.
- A detection outside every window costs ``A_FP * sigma(d)``, d the distance after the previous window's end
  in units of that window's width (d >= 3, or no window before: the full ``-A_FP``); detections just after a
  window are cheap, far ones cost the most.
- One threshold for the whole corpus and profile, the best one (NAB optimises it per profile); the corpus
  sum is normalised to 0 for the null detector (no detection: every window missed) and 100 for the perfect
  one (every window detected at its first row).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


def scaled_sigmoid(position: float) -> float:
    if position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


MAX_TP = scaled_sigmoid(-1.0)


@dataclass(frozen=True)
class Profile:
    name: str
    tp: float
    fp: float
    fn: float


def load_profiles(nab_dir: Path) -> list[Profile]:
    raw = json.loads((nab_dir / "config" / "profiles.json").read_text())
    return [Profile(name, p["CostMatrix"]["tpWeight"], p["CostMatrix"]["fpWeight"], p["CostMatrix"]["fnWeight"])
            for name, p in raw.items()]


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.strip())


@dataclass
class Series:
    name: str
    timestamps: list[str]
    values: list[float]
    windows: list[tuple[int, int]]  # row index of each window's first and last row

    @property
    def probation(self) -> int:
        n = len(self.values)
        return int(min(math.floor(0.15 * n), 0.15 * 5000))


def load_corpus(nab_dir: Path) -> list[Series]:
    labels = json.loads((nab_dir / "labels" / "combined_windows.json").read_text())
    corpus = []
    for name in sorted(labels):
        lines = (nab_dir / "data" / name).read_text().splitlines()[1:]
        stamps, values = [], []
        for line in lines:
            ts, value = line.split(",")[:2]
            stamps.append(ts)
            values.append(float(value))
        parsed = [_parse(ts) for ts in stamps]
        windows = []
        for start, end in labels[name]:
            s, e = _parse(start), _parse(end)
            rows = [i for i, t in enumerate(parsed) if s <= t <= e]
            if rows:
                windows.append((rows[0], rows[-1]))
        corpus.append(Series(name, stamps, values, windows))
    return corpus


@dataclass
class Row:
    score: float  # the detector's anomaly score
    window: int  # global window id, or -1 outside windows
    tp_unit: float  # reward per unit A_TP if this row is a window's best detection
    fp_unit: float  # cost per unit A_FP if this row is a false positive (negative)


def sweep_rows(series: Series, scores: list[float], first_window_id: int) -> list[Row]:
    """NAB's per-row values for one series (probation rows dropped)."""
    if len(scores) != len(series.values):
        raise ValueError(f"{series.name}: {len(scores)} scores for {len(series.values)} rows")
    rows: list[Row] = []
    windows = series.windows
    w = 0
    prev_end: int | None = None
    prev_width = 0
    for i, score in enumerate(scores):
        while w < len(windows) and i > windows[w][1]:
            prev_end, prev_width = windows[w][1], windows[w][1] - windows[w][0] + 1
            w += 1
        inside = w < len(windows) and windows[w][0] <= i <= windows[w][1]
        if inside:
            start, end = windows[w]
            width = end - start + 1
            tp_unit = scaled_sigmoid(-(end - i + 1) / width) / MAX_TP
            row = Row(score, first_window_id + w, tp_unit, 0.0)
        else:
            if prev_end is None:
                position = 3.0
            else:
                position = abs(prev_end - i) / max(prev_width - 1, 1)
            row = Row(score, -1, 0.0, scaled_sigmoid(position))
        if i >= series.probation:
            rows.append(row)
    return rows


@dataclass(frozen=True)
class Result:
    profile: str
    score: float  # normalised, 0 = null detector, 100 = perfect
    threshold: float
    raw: float
    detected: int
    windows: int
    false_positives: int


def score_corpus(corpus: list[Series], scores: dict[str, list[float]], profiles: list[Profile]) -> list[Result]:
    rows: list[Row] = []
    window_ids: set[int] = set()
    next_id = 0
    for series in corpus:
        series_rows = sweep_rows(series, scores[series.name], next_id)
        next_id += len(series.windows)
        rows += series_rows
        window_ids.update(r.window for r in series_rows if r.window >= 0)
    rows.sort(key=lambda r: -r.score)
    n_windows = len(window_ids)
    results = []
    for profile in profiles:
        best: dict[int, float] = {}
        fp_sum = 0.0
        fps = 0
        base = -profile.fn * n_windows
        tp_sum = 0.0  # sum over detected windows of (best reward + A_FN): the gain over a miss
        best_score, best_threshold, best_detected, best_fps = base, 1.1, 0, 0
        i = 0
        while i < len(rows):
            threshold = rows[i].score
            while i < len(rows) and rows[i].score == threshold:
                r = rows[i]
                if r.window >= 0:
                    reward = profile.tp * r.tp_unit
                    old = best.get(r.window)
                    if old is None:
                        best[r.window] = reward
                        tp_sum += reward + profile.fn
                    elif reward > old:
                        best[r.window] = reward
                        tp_sum += reward - old
                else:
                    fp_sum += profile.fp * r.fp_unit
                    fps += 1
                i += 1
            total = base + tp_sum + fp_sum
            if total > best_score:
                best_score, best_threshold, best_detected, best_fps = total, threshold, len(best), fps
        perfect = profile.tp * n_windows
        normalised = 100.0 * (best_score - base) / (perfect - base)
        results.append(Result(profile.name, normalised, best_threshold, best_score, best_detected, n_windows,
                              best_fps))
    return results
