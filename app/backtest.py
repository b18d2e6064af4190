"""``emlops backtest INPUT --output OUT``: replay a file through the monitors the agents use, offline.

- **JSONL** (one event per line, as on the topics: ``type`` prediction, label or infra): the events go
  through a ``ModelFleet`` and a ``ServiceFleet`` in file order; OUT gets one JSON detection per line,
  with the input line number. Lines that fail validation are counted and reported, as the agents
  dead-letter them, and the replay goes on.
- **CSV** with ``timestamp`` and ``value`` columns (one numeric infrastructure series, as in public anomaly
  benchmarks such as NAB): the values go through one ``ServiceMonitor`` as the metric ``value`` of a
  source named after the file; OUT is a CSV ``timestamp,value,anomaly_score`` with one row per input row
  and the score in [0, 1] (0 during the warm-up).

No broker is needed and nothing is sent anywhere. Progress goes to stderr on long inputs.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable, Iterator

from models import codec
from models.config import MonitorConfig
from models.fleet import ModelFleet, ServiceFleet
from models.routing import OfflineRouter, Rules, RulesError, load_rules
from models.schema import InfraEvent, InvalidEvent, decode_prediction_topic
from models.service_monitor import ServiceMonitor


@dataclass
class Outcome:
    rows: int = 0
    detections: int = 0  # detections written (JSONL input)
    tickets: int = 0  # ticket revisions written (JSONL input with --tickets)
    invalid: int = 0
    first_error: str = ""


class Progress:
    """A line on stderr at most every ``every_s`` seconds: bytes read of the input and rows so far."""

    def __init__(self, total_bytes: int, stream: IO[str] | None, every_s: float = 2.0) -> None:
        self.total = max(total_bytes, 1)
        self.stream = stream
        self.every_s = every_s
        self.started = self.last = time.monotonic()

    def tick(self, done_bytes: int, rows: int) -> None:
        now = time.monotonic()
        if self.stream is None or now - self.last < self.every_s:
            return
        self.last = now
        self.stream.write(f"backtest: {rows:,} rows, {100 * done_bytes / self.total:.0f}% of the input, "
                          f"{now - self.started:.0f} s\n")
        self.stream.flush()


def score_series(values: Iterable[float], config: MonitorConfig | None = None, source: str = "series",
                 timestamps: Iterable[float] | None = None) -> Iterator[float]:
    """The anomaly score in [0, 1] of each value of one metric, as the infrastructure monitor sees it."""
    monitor = ServiceMonitor(source, "service", config)
    times = iter(timestamps) if timestamps is not None else None
    for i, value in enumerate(values):
        t = next(times) if times is not None else float(i)
        monitor.observe(InfraEvent(source, "value", value, t))
        yield monitor.score


def _parse_time(text: str, row: int) -> float:
    from datetime import datetime, timezone

    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidEvent(f"row {row}: timestamp {text[:40]!r} is neither epoch seconds nor ISO 8601") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)  # benchmark series carry local wall-clock times
    return parsed.timestamp()


def backtest_csv(source: IO[str], out: IO[str], config: MonitorConfig, name: str, progress: Progress) -> Outcome:
    reader = csv.reader(source)
    header = next(reader, None)
    if header is None or "timestamp" not in header or "value" not in header:
        raise InvalidEvent(f"a CSV input needs 'timestamp' and 'value' columns, got {header}")
    t_col, v_col = header.index("timestamp"), header.index("value")
    outcome = Outcome()
    rows: list[tuple[str, str, float, float]] = []
    for row in reader:
        if not row:
            continue
        outcome.rows += 1
        try:
            value = float(row[v_col])
        except (ValueError, IndexError):
            raise InvalidEvent(f"row {outcome.rows}: value {row[v_col:v_col + 1]} is not a number") from None
        rows.append((row[t_col], row[v_col], _parse_time(row[t_col], outcome.rows), value))
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["timestamp", "value", "anomaly_score"])
    scores = score_series((r[3] for r in rows), config, name, (r[2] for r in rows))
    for i, (row, score) in enumerate(zip(rows, scores), 1):
        writer.writerow([row[0], row[1], f"{score:.6f}"])
        if i % 4096 == 0:
            progress.tick(progress.total * i // max(len(rows), 1), i)
    return outcome


def backtest_jsonl(source: IO[bytes], out: IO[str], config: MonitorConfig, progress: Progress,
                   router: OfflineRouter | None = None, tickets: IO[str] | None = None) -> Outcome:
    """Detections to ``out``; with a router, also the ticket revisions the rules would have published."""
    models, services = ModelFleet(config), ServiceFleet(config)
    outcome = Outcome()
    done = 0
    for line_no, line in enumerate(source, 1):
        done += len(line)
        if not line.strip():
            continue
        outcome.rows += 1
        try:
            raw = codec.loads(line)
            if isinstance(raw, dict) and raw.get("type") == "infra":
                found = services.observe(InfraEvent.from_dict(raw))
            else:
                found = models.observe(decode_prediction_topic(raw))
        except InvalidEvent as exc:
            outcome.invalid += 1
            outcome.first_error = outcome.first_error or f"line {line_no}: {exc}"
            continue
        for detection in found:
            outcome.detections += 1
            out.write(codec.dumps({"type": "detection", "line": line_no, **detection.to_dict()}).decode() + "\n")
            if router is not None and tickets is not None:
                for ticket in router.route(detection):
                    outcome.tickets += 1
                    tickets.write(codec.dumps({"line": line_no, **ticket.to_dict()}).decode() + "\n")
        if line_no % 4096 == 0:
            progress.tick(done, outcome.rows)
    return outcome


def run(input_path: Path, output_path: Path, config: MonitorConfig | None = None, fmt: str = "auto",
        progress_stream: IO[str] | None = sys.stderr, progress_every_s: float = 2.0,
        tickets_path: Path | None = None, rules: Rules | None = None) -> Outcome:
    config = config or MonitorConfig()
    if fmt == "auto":
        fmt = "csv" if input_path.suffix.lower() == ".csv" else "jsonl"
    progress = Progress(os.path.getsize(input_path), progress_stream, progress_every_s)
    tmp = output_path.with_name(output_path.name + ".partial")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as out:
            if fmt == "csv":
                with open(input_path, encoding="utf-8", newline="") as source:
                    outcome = backtest_csv(source, out, config, input_path.stem, progress)
            else:
                with open(input_path, "rb") as raw, ExitStack() as stack:
                    tickets = None
                    if tickets_path is not None:
                        tickets = stack.enter_context(open(tickets_path, "w", encoding="utf-8"))
                    router = OfflineRouter(rules or load_rules()) if tickets is not None else None
                    outcome = backtest_jsonl(io.BufferedReader(raw), out, config, progress, router, tickets)
        os.replace(tmp, output_path)  # a failed run leaves no half-written output behind
    finally:
        if tmp.exists():
            tmp.unlink()
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="emlops backtest",
        description="Replay a JSONL file of events (predictions, labels, infra) or a CSV series "
        "(timestamp,value) through the same monitors the agents use, and write what they find.",
    )
    parser.add_argument("input", type=Path, help="events.jsonl, or series.csv with timestamp,value columns")
    parser.add_argument("--output", "-o", type=Path, required=True,
                        help="detections as JSONL; for a CSV input, a CSV timestamp,value,anomaly_score")
    parser.add_argument("--format", choices=("auto", "jsonl", "csv"), default="auto",
                        help="input format (default: from the file extension)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a monitor setting (MonitorConfig field), e.g. --set drift_delta=1e-5")
    parser.add_argument("--tickets", type=Path, metavar="TICKETS.jsonl",
                        help="JSONL input: also route the detections and write the ticket revisions the rules "
                        "would have published (the clock is the events' time)")
    parser.add_argument("--rules", type=Path, help="routing rules file for --tickets (default: the shipped rules)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    if not args.input.is_file():
        parser.error(f"no such file: {args.input}")
    try:
        overrides = dict(item.split("=", 1) for item in args.set)
        config = MonitorConfig().with_overrides(overrides)
    except ValueError as exc:
        parser.error(f"--set: {exc}")
    try:
        rules = load_rules(args.rules) if args.rules else None
    except RulesError as exc:
        parser.error(str(exc))
    try:
        outcome = run(args.input, args.output, config, args.format, None if args.quiet else sys.stderr,
                      tickets_path=args.tickets, rules=rules)
    except InvalidEvent as exc:
        print(f"emlops backtest: {args.input}: {exc}", file=sys.stderr)
        return 1
    what = "rows scored" if (args.format == "csv" or args.input.suffix.lower() == ".csv") else "events"
    found = "" if what == "rows scored" else f", {outcome.detections} detections"
    if args.tickets:
        found += f", {outcome.tickets} ticket revisions -> {args.tickets}"
    print(f"emlops backtest: {outcome.rows} {what}{found}, {outcome.invalid} invalid -> {args.output}",
          file=sys.stderr)
    if outcome.first_error:
        print(f"emlops backtest: first invalid input: {outcome.first_error}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
