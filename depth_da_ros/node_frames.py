"""Frames between the executor and the inference thread: the newest-frame slot, camera_info
matching by stamp and the warning throttle. Times are plain floats (seconds, ``time.monotonic``)
and stamps plain integers (nanoseconds): the node converts."""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestFrameSlot(Generic[T]):
    """A one-item mailbox between the executor (``put``) and the inference thread (``take``).

    A new frame replaces one that was not taken yet: the older frame is stale by then, so it is
    dropped and counted rather than queued, and a slow model never builds up latency.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._item: T | None = None
        self._closed = False
        self.received = 0
        self.dropped = 0

    def put(self, item: T) -> bool:
        """Store ``item``; True when it replaced (dropped) an untaken frame."""
        with self._condition:
            replaced = self._item is not None
            self._item = item
            self.received += 1
            self.dropped += replaced
            self._condition.notify()
            return replaced

    def take(self, timeout: float | None = None) -> T | None:
        """The newest frame, waiting up to ``timeout`` seconds; None on timeout or once closed."""
        with self._condition:
            self._condition.wait_for(lambda: self._item is not None or self._closed, timeout)
            if self._closed:
                return None
            item, self._item = self._item, None
            return item

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

    def match(self, stamp_ns: int, wait_s: float = 0.0) -> T | None:
        """The item nearest ``stamp_ns`` within the tolerance, waiting up to ``wait_s`` for it."""
        deadline = time.monotonic() + wait_s
        with self._condition:
            while True:
                best = min(self._items, key=lambda entry: abs(entry[0] - stamp_ns), default=None)
                if best is not None and abs(best[0] - stamp_ns) <= self.tolerance_ns:
                    return best[1]
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._items or self._items[-1][0] > stamp_ns + self.tolerance_ns:
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
