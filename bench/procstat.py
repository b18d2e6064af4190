"""What a child process costs, read from /proc: CPU seconds (utime + stime) and peak RSS (VmHWM)."""

from __future__ import annotations

import os

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process; 0 when it is gone. /proc/<pid>/stat fields 14 and 15 (clock ticks)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / _TICK


def status_kib(pid: int | str, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def peak_rss_mib(pid: int) -> float:
    return status_kib(pid, "VmHWM") / 1024


def loadavg() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])
