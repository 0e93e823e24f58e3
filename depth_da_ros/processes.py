"""Stopping child processes the way a ROS launch does: SIGINT first (rclpy shuts down cleanly,
a recorder closes its bag), SIGKILL only when that does not work within a timeout."""
from __future__ import annotations

import logging
import signal
import subprocess

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
