"""``emlops backtest INPUT --output OUT``: replay a file through the monitors the agents use, offline.

- **JSONL** (one event per line, as on the topics: ``type`` prediction, label or infra): the events go
  through a ``ModelFleet`` and a ``ServiceFleet`` in file order; OUT gets one JSON detection per line,
  with the input line number. Lines that fail validation are counted and reported, as the agents
  dead-letter them, and the replay goes on.
- **A topic's range** (``--topic``, where a broker is configured as for the worker): the messages of every
  partition from ``--from-offset`` to ``--to-offset`` (inclusive; default: all that the topic holds when
  the replay starts) are replayed like a JSONL file, partition by partition; each detection names the
  partition and offset it fired on.
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
                   router: OfflineRouter | None = None, tickets: IO[str] | None = None,
                   origins: list[tuple[int, int]] | None = None) -> Outcome:
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
        where = {"partition": origins[line_no - 1][0], "offset": origins[line_no - 1][1]} if origins else {"line": line_no}
        for detection in found:
            outcome.detections += 1
            out.write(codec.dumps({"type": "detection", **where, **detection.to_dict()}).decode() + "\n")
            if router is not None and tickets is not None:
                for ticket in router.route(detection):
                    outcome.tickets += 1
                    tickets.write(codec.dumps({"line": line_no, **ticket.to_dict()}).decode() + "\n")
        if line_no % 4096 == 0:
            progress.tick(done, outcome.rows)
    return outcome


async def dump_topic(options: dict[str, object], topic: str, out: IO[bytes], first: int | None = None,
                     last: int | None = None) -> list[tuple[int, int]]:
    """Copy a range of every partition of ``topic`` to ``out``, one JSON document per line; returns the
    (partition, offset) of each line."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**options)  # type: ignore[arg-type]
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [p["partition"] for t in described if t.get("topic") == topic and not t.get("error_code")
                  for p in t.get("partitions", [])]
    if not partitions:
        raise InvalidEvent(f"topic {topic!r} does not exist or has no partitions")
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **options)  # type: ignore[arg-type]
    await consumer.start()
    origins: list[tuple[int, int]] = []
    try:
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        begins = await consumer.beginning_offsets(assigned)
        ends = await consumer.end_offsets(assigned)
        for tp in assigned:
            start = max(begins[tp], first or 0)
            stop = ends[tp] if last is None else min(ends[tp], last + 1)
            if start >= stop:
                continue
            consumer.seek(tp, start)
            while True:
                batch = await consumer.getmany(tp, timeout_ms=1000, max_records=2000)
                messages = batch.get(tp, [])
                for message in messages:
                    if message.offset >= stop:
                        break
                    try:
                        line = codec.dumps(codec.loads(message.value))  # one line, whatever the producer sent
                    except InvalidEvent:
                        line = b"<not JSON>"  # kept, so the replay counts it as invalid
                    out.write(line + b"\n")
                    origins.append((tp.partition, message.offset))
                if await consumer.position(tp) >= stop:
                    break
    finally:
        await consumer.stop()
    return origins


def run_topic(topic: str, output_path: Path, config: MonitorConfig | None = None, first: int | None = None,
              last: int | None = None, progress_stream: IO[str] | None = sys.stderr) -> Outcome:
    import asyncio
    import tempfile

    from app.settings import Settings

    settings = Settings.from_env()
    topic = getattr(settings.topics, topic, topic)  # "predictions" means this deployment's predictions topic
    with tempfile.TemporaryDirectory() as work:
        dump = Path(work) / "range.jsonl"
        with open(dump, "wb") as f:
            origins = asyncio.run(dump_topic(settings.kafka_client_options(), topic, f, first, last))
        if progress_stream is not None:
            progress_stream.write(f"backtest: read {len(origins):,} messages of {topic}\n")
        progress = Progress(os.path.getsize(dump), progress_stream)
        with open(dump, "rb") as source, open(output_path, "w", encoding="utf-8") as out:
            return backtest_jsonl(source, out, config or MonitorConfig(), progress, origins=origins)


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
    parser.add_argument("input", type=Path, nargs="?", help="events.jsonl, or series.csv with timestamp,value columns")
    parser.add_argument("--topic", help="replay a topic's range instead of a file (name, or 'predictions' / "
                        "'infrastructure' for this deployment's topics); the broker is configured as for the worker")
    parser.add_argument("--from-offset", type=int, default=None, help="first offset of each partition (--topic)")
    parser.add_argument("--to-offset", type=int, default=None,
                        help="last offset of each partition, inclusive (--topic; default: the end at start-up)")
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
    if (args.input is None) == (args.topic is None):
        parser.error("give either an INPUT file or --topic")
    if args.input is not None and not args.input.is_file():
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
    progress = None if args.quiet else sys.stderr
    try:
        if args.topic is not None:
            if args.tickets:
                parser.error("--tickets works with an INPUT file only")
            outcome = run_topic(args.topic, args.output, config, args.from_offset, args.to_offset, progress)
        else:
            outcome = run(args.input, args.output, config, args.format, progress, tickets_path=args.tickets,
                          rules=rules)
    except InvalidEvent as exc:
        print(f"emlops backtest: {args.input or args.topic}: {exc}", file=sys.stderr)
        return 1
    csv_input = args.input is not None and (args.format == "csv" or args.input.suffix.lower() == ".csv")
    what = "rows scored" if csv_input else "events"
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
