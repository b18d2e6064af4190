"""The naive baseline: a plain Faust agent that reads one event and sends one event (no decoding).

Run as ``faust -A bench.passthrough worker``; configured from the environment by bench/throughput.py:
BENCH_BOOTSTRAP, BENCH_APP_ID, BENCH_INPUTS (comma-separated topics), BENCH_OUTPUT, BENCH_PARTITIONS,
BENCH_WEB_PORT, BENCH_DATA_DIR. Same broker settings as the emlops app (raw bytes, memory store).
"""

from __future__ import annotations

import os

import faust

env = os.environ
app = faust.App(
    env["BENCH_APP_ID"],
    broker=f"kafka://{env['BENCH_BOOTSTRAP']}",
    store="memory://",
    datadir=env.get("BENCH_DATA_DIR", ".bench-data"),
    topic_partitions=int(env.get("BENCH_PARTITIONS", "4")),
    topic_replication_factor=1,
    key_serializer="raw",
    value_serializer="raw",
    web_host="127.0.0.1",
    web_port=int(env.get("BENCH_WEB_PORT", "6067")),
    consumer_auto_offset_reset="earliest",
)
source = app.topic(*env["BENCH_INPUTS"].split(","), key_type=bytes, value_type=bytes)
sink = app.topic(env["BENCH_OUTPUT"], partitions=int(env.get("BENCH_PARTITIONS", "4")), internal=True,
                 key_type=bytes, value_type=bytes)


@app.agent(source)
async def passthrough(stream):  # type: ignore[no-untyped-def]
    async for key, value in stream.items():
        await sink.send(key=key, value=value)
