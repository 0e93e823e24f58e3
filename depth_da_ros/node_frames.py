"""Frames between the executor and the inference thread: the frame queue, camera_info
matching by stamp, the warning throttle (and a logger throttled by it) and the inference
threads' lower priority. Times are plain floats (seconds, ``time.monotonic``) and stamps plain
integers (nanoseconds): the node converts."""
from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class FrameQueue(Generic[T]):
    """The mailbox between the executor (``put``) and the inference thread (``take``).

    ``capacity`` 1 (live cameras): a new frame replaces one that was not taken yet; the older
    frame is stale by then, so it is dropped and counted rather than queued, and a slow model
    never builds up latency. ``capacity`` N > 1 (bags, evaluation): frames wait in order and every
    one is processed while at most N wait; beyond that the oldest is dropped and counted, so
    memory stays bounded (N camera frames).
    """

    def __init__(self, capacity: int = 1) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._condition = threading.Condition()
        self._items: deque[T] = deque()
        self._closed = False
        self.received = 0
        self.dropped = 0

    def put(self, item: T) -> bool:
        """Store ``item``; True when that dropped an untaken frame (the oldest)."""
        with self._condition:
            dropped = len(self._items) >= self.capacity
            if dropped:
                self._items.popleft()
            self._items.append(item)
            self.received += 1
            self.dropped += dropped
            self._condition.notify()
            return dropped

    def take(self, timeout: float | None = None) -> T | None:
        """The oldest waiting frame (the newest with capacity 1), waiting up to ``timeout``
        seconds; None on timeout or once closed."""
        with self._condition:
            self._condition.wait_for(lambda: self._items or self._closed, timeout)
            if self._closed or not self._items:
                return None
            return self._items.popleft()

    def __len__(self) -> int:
        with self._condition:
            return len(self._items)

    def close(self) -> None:
        """Wake the consumer for good: ``take`` returns None from now on."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


class StampMatcher(Generic[T]):
    """Recent items (camera_info) by stamp; ``match`` finds the nearest within a tolerance.

    An image and its camera_info travel on two topics, so either may arrive first: ``match``
    can wait a little for the item of a stamp while the stream is live (something arrived
    before) and nothing newer than the stamp has arrived yet.
    """

    def __init__(self, tolerance_s: float, capacity: int = 30) -> None:
        self.tolerance_ns = round(tolerance_s * 1e9)
        self._items: deque[tuple[int, T]] = deque(maxlen=capacity)
        self._condition = threading.Condition()

    def set_tolerance(self, tolerance_s: float) -> None:
        self.tolerance_ns = round(tolerance_s * 1e9)

    def add(self, stamp_ns: int, item: T) -> None:
        with self._condition:
            self._items.append((stamp_ns, item))
            self._condition.notify_all()

    def match(self, stamp_ns: int, wait_s: float = 0.0, wait_when_empty: bool = False,
              accept: Callable[[T], bool] | None = None) -> T | None:
        """The item nearest ``stamp_ns`` within the tolerance (the newest of equally near ones),
        waiting up to ``wait_s`` for it; only items ``accept`` takes count, when given.

        With nothing received yet it waits only if ``wait_when_empty`` (e.g. a publisher of the
        items exists, so the first item is on its way); it never waits once a newer item (taken
        or not) is in: a reliable publisher delivers in order, so the one for this stamp is lost."""
        deadline = time.monotonic() + wait_s
        with self._condition:
            while True:
                items = [entry for entry in self._items if accept is None or accept(entry[1])]
                # Ties (identical stamps: drivers without a clock stamp everything 0) go to the
                # newest item, so a changed calibration is picked up: min keeps the first of equals.
                best = min(reversed(items), key=lambda entry: abs(entry[0] - stamp_ns), default=None)
                if best is not None and abs(best[0] - stamp_ns) <= self.tolerance_ns:
                    return best[1]
                remaining = deadline - time.monotonic()
                if (remaining <= 0 or (not self._items and not wait_when_empty)
                        or (self._items and self._items[-1][0] > stamp_ns + self.tolerance_ns)):
                    return None
                self._condition.wait(remaining)

    @property
    def newest_stamp_ns(self) -> int | None:
        with self._condition:
            return self._items[-1][0] if self._items else None


class WarningThrottle:
    """At most one warning per problem ``key`` every ``period_s``; counts what it held back."""

    def __init__(self, period_s: float) -> None:
        self.period_s = period_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def check(self, key: str, now: float) -> int | None:
        """None: stay quiet. Otherwise log now; the value is how many were suppressed since the last one."""
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.period_s:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return None
            self._last[key] = now
            return self._suppressed.pop(key, 0)


class ThrottledLog:
    """A logger (rclpy's or ``logging``'s: ``info``, ``warning``) whose warnings and notes are
    throttled per problem key by a WarningThrottle of ``period_s``; a warning let through says how
    many of its kind were held back. ``logger`` stays available for messages never throttled."""

    def __init__(self, logger: Any, period_s: float) -> None:
        self.logger = logger
        self.throttle = WarningThrottle(period_s)

    def warning(self, key: str, message: str) -> None:
        suppressed = self.throttle.check(key, time.monotonic())
        if suppressed is not None:
            more = f" ({suppressed} more since the last such warning)" if suppressed else ""
            self.logger.warning(message + more)

    def info(self, key: str, message: str) -> None:
        if self.throttle.check(key, time.monotonic()) is not None:
            self.logger.info(message)


def lower_thread_priority(increment: int) -> bool:
    """Raise the calling thread's niceness by ``increment`` (0-19); threads it starts afterwards
    (an inference library's worker pool) inherit it. Linux schedules threads by their own nice
    value; elsewhere, or when the system refuses, nothing changes. True when it was applied."""
    if increment <= 0 or not hasattr(os, "setpriority") or not sys.platform.startswith("linux"):
        return False
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment))
    except OSError:
        return False
    return True


def call_with_lower_priority(function: Callable[[], R], increment: int) -> R:
    """``function()`` run in a thread of its own with niceness raised by ``increment``, so that
    the threads it creates (e.g. ONNX Runtime's pool, made when a session loads) inherit it; its
    exception, if any, is raised here."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        lower_thread_priority(increment)
        try:
            outcome["value"] = function()
        except BaseException as exc:  # noqa: BLE001  re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="depth_model_load")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
