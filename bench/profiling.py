"""py-spy's raw (collapsed-stack) output turned into top functions and a per-stage breakdown."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

# A sample whose innermost frame is the selector is the event loop waiting (for the broker, or for a CPU on
# a busy machine: a woken thread waiting to run still shows this stack). Shares below are of the others.
_WAITING = "EpollSelector.select"
# Frames every sample passes through (the CLI, the event loop, mode's service runner): they say nothing.
_STRUCTURAL = re.compile(r"\((<frozen runpy>|click/|asyncio/|faust/__main__|faust/cli/|mode/worker|selectors)")
# Where a busy sample's time goes, first match wins: the stack contains the needle.
STAGES = (
    ("monitors: infrastructure (ServiceFleet.observe: HalfSpaceTrees, scaler)", "ServiceFleet.observe"),
    ("monitors: models (ModelFleet.observe: MeanShift/ADWIN, ranges, categories)", "ModelFleet.observe"),
    ("decode: orjson (codec.loads)", "loads (models/codec.py)"),
    ("decode: schema (from_dict)", "from_dict"),
    ("decode: schema (from_dict)", "decode_prediction_topic"),
    ("metrics counters (Tally -> prometheus_client)", "prometheus_client"),
    ("metrics counters (Tally -> prometheus_client)", "Tally."),
    ("checkpoints (monitor snapshots to the state topics)", "Checkpointed.save"),
    ("checkpoints (monitor snapshots to the state topics)", "Intake._begin"),
    ("intake: aiokafka fetch and record unpacking (getmany)", "AIOKafkaConsumer.getmany"),
    ("intake: sends (detections, state, dead letters; aiokafka producer)", "Intake._send"),
    ("routing agent (route_detections)", "route_detections"),
    ("timers (request_ticks)", "request_ticks"),
    ("aiokafka consumer thread", "ServiceThread._start_thread"),
    ("intake: the batch loop itself", "Intake._process"),
)
_OWN = re.compile(r"\((agents|models|app)/")
FAUST_DELIVERY = "Faust and the event loop (routing agent's stream, timers, web server)"


@dataclass(frozen=True)
class Profile:
    samples: int
    waiting: float  # share of samples in the selector
    self_time: list[tuple[str, float]]  # (function, share of busy samples), descending
    total_time: list[tuple[str, float]]
    by_package: list[tuple[str, float]]  # self time grouped by top-level package
    stages: list[tuple[str, float]]


def available() -> bool:
    return shutil.which("py-spy") is not None


def start(pid: int, output: Path, log: Path, rate: int = 100, nonblocking: bool = True) -> subprocess.Popen[bytes]:
    """Samples the running process until stopped with :func:`stop` (SIGINT makes py-spy write its file).
    Non-blocking: the process is never paused, so what is measured alongside stays the process's own (now
    and then a stack is read mid-change); idle threads are left out."""
    with log.open("wb") as out:
        return subprocess.Popen(
            ["py-spy", "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw", "--nolineno",
             *(["--nonblocking"] if nonblocking else []), "--output", str(output)],
            stdout=out, stderr=subprocess.STDOUT,
        )


def stop(spy: subprocess.Popen[bytes], timeout: float = 60) -> int:
    if spy.poll() is None:
        spy.send_signal(signal.SIGINT)
    try:
        return spy.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        spy.kill()
        return spy.wait()


def _package(frame: str) -> str:
    """'take_events (faust/streams.py)' -> 'faust'; our own modules keep their folder (models, agents)."""
    if "(" not in frame:
        return frame
    path = frame[frame.rindex("(") + 1:].rstrip(")").split(":")[0]
    if path.startswith("<"):
        return "stdlib"
    parts = Path(path).parts
    if not parts:
        return "?"
    if len(parts) == 1:
        return "stdlib"
    return "stdlib" if parts[0] == "asyncio" else parts[0]


def parse(raw: str, top: int = 15) -> Profile:
    self_counts: Counter[str] = Counter()
    total_counts: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    stages: Counter[str] = Counter()
    samples = waiting = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        samples += count
        if _WAITING in frames[-1]:
            waiting += count
            continue
        self_counts[frames[-1]] += count
        packages[_package(frames[-1])] += count
        for frame in set(frames):
            if not _STRUCTURAL.search(frame):
                total_counts[frame] += count
        stage = next((name for name, needle in STAGES if any(needle in f for f in frames)), None)
        if stage is None:  # emlops code the stages above do not name yet (the code moves): its outermost frame
            own = next((f for f in frames if _OWN.search(f)), None)
            stage = f"other emlops code under {own}" if own else FAUST_DELIVERY
        stages[stage] += count
    busy = samples - waiting

    def shares(counter: Counter[str], n: int = top) -> list[tuple[str, float]]:
        return [(name, c / busy) for name, c in counter.most_common(n)] if busy else []

    return Profile(samples, waiting / samples if samples else 0.0, shares(self_counts), shares(total_counts),
                   shares(packages), shares(stages, 20))
