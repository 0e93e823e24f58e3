"""Child processes stopped the way a ROS launch does: SIGINT first (rclpy shuts down cleanly,
a recorder closes its bag), SIGKILL only when that does not work within a timeout; and a set of
them with their logs (``ChildProcesses``, the demo's)."""
from __future__ import annotations

import logging
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

LOG = logging.getLogger(__name__)


def interrupt(proc: subprocess.Popen, timeout: float, name: str = "process") -> int:
    """SIGINT ``proc``, SIGKILL it after ``timeout`` seconds; returns its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            LOG.warning("%s did not stop within %.0f s of SIGINT; killing it", name, timeout)
            proc.kill()
            proc.wait()
    return proc.returncode


class ChildProcesses:
    """Child processes, each ``python -m <module>`` in a session of its own (a Ctrl-C reaches only
    the parent, which stops them in order) with its output in ``<log_dir>/<name>.log``;
    ``stop_all`` ends every one still running, the newest first; ``check_running`` raises
    ``ChildProcessError`` naming one that exited early, with its log's last lines."""

    def __init__(self, env: dict[str, str], log_dir: Path, stop_timeout_s: float = 10.0) -> None:
        self.env, self.log_dir, self.stop_timeout_s = env, log_dir, stop_timeout_s
        self.procs: dict[str, subprocess.Popen] = {}
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, module: str, args: Sequence[str]) -> subprocess.Popen:
        with (self.log_dir / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", module, *args], env=self.env, stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs[name] = proc
        LOG.debug("started %s (pid %d): %s", name, proc.pid, " ".join(proc.args))
        return proc

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.log_dir / f"{name}.log"
        text = path.read_text(errors="replace").splitlines()[-lines:] if path.is_file() else []
        return f"last lines of {path}:\n  " + "\n  ".join(text)

    def check_running(self, *names: str) -> None:
        for name in names:
            code = self.procs[name].poll()
            if code is not None:
                raise ChildProcessError(f"{name} exited early with code {code}; {self.log_tail(name)}")

    def stop(self, name: str) -> int:
        """SIGINT (a clean shutdown: a recorder writes its bag), SIGKILL after ``stop_timeout_s``."""
        return interrupt(self.procs[name], self.stop_timeout_s, name)

    def stop_all(self) -> None:
        for name in reversed(list(self.procs)):
            self.stop(name)

    def record(self) -> dict[str, dict[str, int | None]]:
        return {name: {"pid": p.pid, "returncode": p.returncode} for name, p in self.procs.items()}
