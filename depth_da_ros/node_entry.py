"""The ``depth_da_node`` console script: ``depth_da_ros.node.main`` behind a guard that turns
Ctrl-C during start-up (while numpy, OpenCV, rclpy and the model load: about 1.4 s, before the
node's own handling is in place) into a quiet exit instead of a KeyboardInterrupt traceback.
This module imports nothing heavy, so the guard is in place from the first moment.

    python -m depth_da_ros.node_entry --ros-args ...   # the same as depth_da_node
"""
from __future__ import annotations

import sys


def main(args: list[str] | None = None) -> int:
    try:
        from .node import main as node_main

        return node_main(args)
    except KeyboardInterrupt:
        return 0  # as a Ctrl-C once the node runs: a clean stop, nothing to report


if __name__ == "__main__":
    sys.exit(main())
