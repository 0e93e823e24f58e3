"""The ``depth_da_node`` console script: ``depth_da_ros.node.main`` behind a guard for Ctrl-C
during start-up (while numpy, OpenCV, onnxruntime, rclpy and the model load: 1-2 s for the
bundled model on a CPU, far longer while TensorRT builds an engine).

A KeyboardInterrupt raised inside third-party imports is not reliably a KeyboardInterrupt:
onnxruntime's C extension (pybind11) turns it into ``ImportError: initialization failed`` (a
traceback, exit 1), and where an optional import catches ImportError it is lost: once in CI
(2026-12-04) a SIGINT 0.3 s after the start left the node starting and running on (killed after
20 s). So a first SIGINT during start-up is only recorded
(``StartupInterrupt``) and the node exits quietly (code 0) as soon as it is up, before spinning;
a second one raises KeyboardInterrupt at once (a start-up that hangs still stops). SIGTERM keeps
its default: ``ros2 launch`` sends it 5 s after SIGINT, so a longer start-up ends there (exit
-15, nothing to clean up yet). This module imports nothing heavy, so the guard is in place from
the interpreter's first statement on (a SIGINT before that is Python's own KeyboardInterrupt).

    python -m depth_da_ros.node_entry --ros-args ...   # the same as depth_da_node
"""
from __future__ import annotations

import signal
import sys
from types import FrameType


class StartupInterrupt:
    """Installs a SIGINT handler that records the first SIGINT (``received``) and raises
    KeyboardInterrupt on the next. Main thread only (``signal.signal``)."""

    def __init__(self) -> None:
        self.received = False
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received:
            raise KeyboardInterrupt
        self.received = True


def main(args: list[str] | None = None) -> int:
    try:
        guard = StartupInterrupt()
        from .node import main as node_main

        return node_main(args, interrupted=lambda: guard.received)
    except KeyboardInterrupt:
        return 0  # as a Ctrl-C once the node runs: a clean stop, nothing to report


if __name__ == "__main__":
    sys.exit(main())
