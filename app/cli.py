"""The ``emlops`` command: one entry point for the broker, the worker, the demo and (later) backtests."""

from __future__ import annotations

import argparse
import os
import sys

from app import broker
from app.config_check import main as config_main


def _worker(argv: list[str]) -> int:
    """Run the worker the standard Faust way, so every Faust worker option works here too."""
    os.execvp(sys.executable, [sys.executable, "-m", "faust", "-A", "app.worker", "worker", *argv])


def _demo(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="emlops demo",
        description="Start the local broker (unless KAFKA_BOOTSTRAP_SERVERS is set) and a worker, produce demo "
        "traffic with injected incidents, print the tickets and a summary.",
    )
    parser.add_argument("--steps", type=int, default=3000, help="rounds of traffic (one event per model each)")
    parser.add_argument("--rate", type=float, default=2000.0, help="events per second to produce")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds to wait for tickets after the traffic ends")
    args = parser.parse_args(argv)
    from app import demo

    return demo.run(steps=args.steps, rate=args.rate, timeout=args.timeout)


def _backtest(argv: list[str]) -> int:
    from app import backtest

    return backtest.main(argv)


COMMANDS = {
    "broker": (broker.main, "start|stop|status the local Apache Kafka broker"),
    "worker": (_worker, "run the streaming worker (arguments go to 'faust worker')"),
    "demo": (_demo, "run the whole pipeline on demo traffic and print the tickets"),
    "config": (config_main, "check a configuration file and print what it understood"),
    "backtest": (_backtest, "replay a JSONL or CSV file through the monitors, write the detections"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        lines = [f"  {name:<8} {help_}" for name, (_, help_) in COMMANDS.items()]
        print("usage: emlops COMMAND [ARGS]\n\ncommands:\n" + "\n".join(lines)
              + "\n\n'emlops COMMAND --help' describes each one.")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    command, args = argv[0], argv[1:]
    return COMMANDS[command][0](args)


if __name__ == "__main__":
    sys.exit(main())
