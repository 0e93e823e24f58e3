"""Ctrl-C in the middle of a tool's work, for the tests of its clean stop."""
from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def interrupted_on_call(monkeypatch: Any, owner: Any, name: str, call: int = 3) -> Iterator[None]:
    """Patch ``owner.name`` to raise KeyboardInterrupt at its ``call``-th call (as a Ctrl-C would,
    mid-work), and afterwards restore the SIGINT / SIGTERM handlers the tool under test installs."""
    original, calls = getattr(owner, name), []

    def patched(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        if len(calls) == call:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, patched)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, signal.default_int_handler)
