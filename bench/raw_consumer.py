"""The ceiling for a Python consumer: plain aiokafka reading the input topics to their end offsets.

Run as a child process by bench/throughput.py (``python -m bench.raw_consumer BOOTSTRAP GROUP TOPIC...``);
prints one JSON line: events, seconds, CPU seconds over the same time, peak RSS. The backlog is read in
several passes (seek to the beginning after each) until at least 3 seconds passed.
With ``--decode`` it also parses every value with orjson (what any consumer of JSON events pays).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

import orjson
from aiokafka import AIOKafkaConsumer


def peak_rss_kib(pid: int | str = "self") -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


async def consume(bootstrap: str, group: str, topics: list[str], decode: bool, min_seconds: float = 3.0,
                  max_passes: int = 20) -> dict[str, float]:
    """Read every assigned partition to its end offset, then seek back and read again, until ``min_seconds``
    passed (a backlog of 60,000 events takes a fraction of a second: one pass is too short to time)."""
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=group,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024)
    await consumer.start()
    try:
        while not consumer.assignment():
            await asyncio.sleep(0.05)
        partitions = sorted(consumer.assignment())
        ends = await consumer.end_offsets(partitions)
        count = nbytes = passes = 0
        started, cpu0 = time.perf_counter(), time.process_time()  # from the first fetch on
        while passes < max_passes and (passes == 0 or time.perf_counter() - started < min_seconds):
            await consumer.seek_to_beginning(*partitions)
            remaining = {tp: end for tp, end in ends.items() if end > 0}
            while remaining:
                batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
                for tp, messages in batches.items():
                    for message in messages:
                        count += 1
                        nbytes += len(message.value)
                        if decode:
                            orjson.loads(message.value)
                    if messages and messages[-1].offset + 1 >= remaining.get(tp, 0):
                        remaining.pop(tp, None)
            passes += 1
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu0
    finally:
        await consumer.stop()
    return {"events": count, "bytes": nbytes, "passes": passes, "seconds": seconds, "cpu_s": cpu,
            "peak_rss_kib": peak_rss_kib()}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("bootstrap")
    parser.add_argument("group")
    parser.add_argument("topics", nargs="+")
    parser.add_argument("--decode", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(consume(args.bootstrap, args.group, args.topics, args.decode))
    print(orjson.dumps({**result, "pid": os.getpid()}).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
