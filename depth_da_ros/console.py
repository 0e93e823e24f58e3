"""Process set-up shared by the console tools that join the ROS graph (``depth_da_node``,
``depth_da_record``, ``depth_da_replay``): the package's Fast DDS profile as the default, and
SIGINT / SIGTERM as a request to stop.

**Fast DDS profile.** A reliable Fast DDS writer repairs a lost sample (or a lost fragment of
one) when its next heartbeat announces it: every 3 s by default. Camera-size messages (hundreds of
kB to a few MB, sent in 64 kB fragments) can be lost in transport, for instance when a buffer fills
while the reader's process waits for the CPU; each loss then delays the message by up to 3 s (seen
here: 12 frames recorded in 5.6 s instead of 2.5 s), and a publisher that exits first (a bag replay)
takes its unrepaired samples with it. ``config/fastdds_large_images.xml`` makes writers announce
every 50 ms. Fast DDS reads its default profile file from ``FASTDDS_DEFAULT_PROFILES_FILE`` when
the process creates its first participant, so ``apply_default_fastdds_profile`` must run before
``rclpy.init``. It never
overrides a choice of the user: a set ``FASTDDS_DEFAULT_PROFILES_FILE`` (or Fast DDS 2's
``FASTRTPS_DEFAULT_PROFILES_FILE``), a ``DEFAULT_FASTDDS_PROFILES.xml`` (Fast DDS 2:
``DEFAULT_FASTRTPS_PROFILES.xml``) in the working directory, which Fast DDS loads by itself,
``SKIP_DEFAULT_XML_FILE=1``, or another RMW than Fast DDS.

**Stop signals.** rclpy's own handlers shut the context down under whatever code runs at that
moment (a recorder's timer then fails to create a subscription: ``RCLError: context is
invalid``, exit code 1) and a second Ctrl-C killed the recorder (exit code -2). ``StopSignals`` instead turns the first
SIGINT or SIGTERM into a flag the tool's loop polls and ignores further ones, so the tool closes
its bag and exits normally.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

LOG = logging.getLogger(__name__)

PROFILE_ENV = "FASTDDS_DEFAULT_PROFILES_FILE"
LEGACY_PROFILE_ENV = "FASTRTPS_DEFAULT_PROFILES_FILE"  # Fast DDS 2.x
FASTDDS_2_DISTROS = ("humble", "iron", "jazzy")  # ROS 2 distros that ship Fast DDS 2.x
SKIP_DEFAULT_XML_ENV = "SKIP_DEFAULT_XML_FILE"
# Loaded by Fast DDS 3 / Fast DDS 2 from the working directory by themselves.
WORKING_DIR_PROFILES = ("DEFAULT_FASTDDS_PROFILES.xml", "DEFAULT_FASTRTPS_PROFILES.xml")
PROFILE = Path("config") / "fastdds_large_images.xml"  # relative to a package directory
FASTDDS_RMWS = ("rmw_fastrtps_cpp", "rmw_fastrtps_dynamic_cpp")
DEFAULT_RMW = "rmw_fastrtps_cpp"  # of every ROS 2 distro since Foxy except Galactic


def fastdds_profile_choice(environ: Mapping[str, str], cwd: Path) -> str | None:
    """Why the package's profile must not be applied (the user's own Fast DDS configuration or
    another RMW), or None when it should be."""
    for name in (PROFILE_ENV, LEGACY_PROFILE_ENV):
        if environ.get(name):
            return f"{name}={environ[name]} is set"
    for name in WORKING_DIR_PROFILES:
        if (cwd / name).is_file():
            return f"{cwd / name} exists (Fast DDS loads it)"
    if environ.get(SKIP_DEFAULT_XML_ENV) == "1":
        return f"{SKIP_DEFAULT_XML_ENV}=1 is set"
    rmw = environ.get("RMW_IMPLEMENTATION") or DEFAULT_RMW
    if rmw not in FASTDDS_RMWS:
        return f"RMW_IMPLEMENTATION={rmw} is not Fast DDS"
    return None


def profile_variable(environ: Mapping[str, str]) -> str:
    """The variable the installed Fast DDS reads: Fast DDS 2 (the distros in ``FASTDDS_2_DISTROS``)
    only the legacy name; Fast DDS 3 (Kilted and later, and the PyPI wheels, which set no
    ROS_DISTRO) the new one, and it warns that the legacy one is deprecated."""
    return LEGACY_PROFILE_ENV if environ.get("ROS_DISTRO", "") in FASTDDS_2_DISTROS else PROFILE_ENV


def find_fastdds_profile() -> Path | None:
    """The package's ``config/fastdds_large_images.xml`` (source checkout, ament index or pip
    prefix, as ``node_parameters.package_directories`` orders them), or None."""
    from .node_parameters import package_directories

    return next((d / PROFILE for d in package_directories() if (d / PROFILE).is_file()), None)


def apply_default_fastdds_profile(environ: os._Environ | dict[str, str] | None = None,
                                  cwd: Path | None = None) -> Path | None:
    """Set ``FASTDDS_DEFAULT_PROFILES_FILE`` (``FASTRTPS_DEFAULT_PROFILES_FILE`` on Fast DDS 2) in
    ``environ`` (default: this process's environment, read by Fast DDS) to the package's
    large-image profile unless the user configured Fast DDS (see the module doc). Returns the
    profile applied, or None. Call it before ``rclpy.init``."""
    environ = os.environ if environ is None else environ
    reason = fastdds_profile_choice(environ, Path.cwd() if cwd is None else cwd)
    if reason is not None:
        LOG.debug("not applying the package's Fast DDS profile: %s", reason)
        return None
    profile = find_fastdds_profile()
    if profile is None:
        LOG.warning("the package's Fast DDS profile %s was not found; large images may arrive seconds late "
                    "on a busy machine (see the README's Fast DDS notes)", PROFILE)
        return None
    variable = profile_variable(environ)
    environ[variable] = str(profile)
    LOG.info("Fast DDS profile %s (the package's default for large images; set %s to use another)",
             profile, variable)
    return profile


class StopSignals:
    """Context manager: SIGINT and SIGTERM set ``requested`` (a ``threading.Event``) instead of
    raising; ``signal_name`` names the first one received (None if none), later ones change
    nothing. On exit the previous handlers come back; with ``restore`` False (a tool's ``main``,
    whose process ends after the block) both signals are ignored instead: the interpreter's
    shutdown resets Python-level handlers to the default, and a second Ctrl-C arriving then killed
    the recorder (exit status -SIGINT) after its bag was written. Main thread only."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, restore: bool = True) -> None:
        self.requested = threading.Event()
        self.signal_name: str | None = None
        self.restore = restore
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not self.requested.is_set():
            self.signal_name = signal.Signals(signum).name
            self.requested.set()

    def __enter__(self) -> StopSignals:
        # Also SIGINT: a background job of a non-interactive shell starts with it ignored.
        self._previous = {signum: signal.signal(signum, self._handle) for signum in self.SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if self.restore else signal.SIG_IGN)


CLEANUP_TIMEOUT_S = 20.0


class ExitIfStuck:
    """Context manager around a tool's final ROS clean-up (``destroy_node``, ``rclpy.try_shutdown``):
    if it has not finished after ``timeout_s``, the stacks are written to stderr and the process
    exits with code 1. Once on a loaded machine (2026-11-29, rclpy + Fast DDS 3.2) a recorder's
    ``destroy_node`` spun forever: Fast DDS waited in ``DomainParticipant::set_listener`` for a
    discovery callback (``on_writer_discovery``) that waited for a lock the destruction held. The
    rclpy call holds the GIL, so the watchdog is faulthandler's C thread, not a Python one. Use it
    only after the tool's output (a bag, a summary) is complete."""

    def __init__(self, timeout_s: float = CLEANUP_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s

    def __enter__(self) -> ExitIfStuck:
        import faulthandler
        import sys

        faulthandler.dump_traceback_later(self.timeout_s, exit=True, file=sys.stderr)
        return self

    def __exit__(self, *exc: object) -> None:
        import faulthandler

        faulthandler.cancel_dump_traceback_later()
