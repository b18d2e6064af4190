"""A worker in a child process, as a user runs it (``faust -A app.worker worker``): for the demo and tests."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
import sys
from pathlib import Path
from typing import Mapping


class WorkerProcess:
    """Starts ``faust -A app.worker worker`` with extra environment; stopping sends SIGTERM, then SIGKILL."""

    def __init__(self, env: Mapping[str, str], log_path: Path, app: str = "app.worker",
                 cwd: Path | None = None) -> None:
        self.app = app  # another Faust app module runs the same way (the benchmark's passthrough baseline)
        self.cwd = cwd
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "faust", "-A", self.app, "worker", "-l", "info"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.cwd,
            )
        return self

    @property
    def pid(self) -> int:
        assert self._process is not None, "not started"
        return self._process.pid

    @property
    def exit_code(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def wait_ready(self, timeout: float = 120) -> None:
        """Until the worker's ``/ready`` answers 200 (tables recovered, partitions assigned)."""
        url = f"http://127.0.0.1:{self.env.get('EMLOPS_WEB_PORT', '6066')}/ready"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.exit_code is not None:
                raise RuntimeError(f"the worker exited with {self.exit_code}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:  # not listening yet, or 503 while recovering
                pass
            time.sleep(0.5)
        raise TimeoutError(f"the worker was not ready within {timeout}s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL, as an out-of-memory killer or a lost node would: no shutdown, no last commit."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def stop(self, timeout: float = 20) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
