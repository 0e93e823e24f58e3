"""depth_da_ros.console: the package's Fast DDS profile as our ROS tools' default (never over the
user's own Fast DDS configuration), and SIGINT / SIGTERM as a stop request."""
from __future__ import annotations

import os
import signal
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from depth_da_ros import console

ROOT = Path(__file__).resolve().parents[1]


def test_the_default_profile_is_the_shipped_file_with_50_ms_heartbeats(tmp_path):
    environ: dict[str, str] = {}
    profile = console.apply_default_fastdds_profile(environ, cwd=tmp_path)
    assert profile == ROOT / "config" / "fastdds_large_images.xml"  # the checkout's, first in the search order
    assert environ == {"FASTDDS_DEFAULT_PROFILES_FILE": str(profile)}  # Fast DDS 3 only: no deprecation warning
    ns = {"dds": "http://www.eprosima.com"}
    writer = ET.parse(profile).getroot().find("dds:data_writer", ns)
    assert writer is not None and writer.get("is_default_profile") == "true"
    period = writer.find("dds:times/dds:heartbeat_period", ns)
    assert period.findtext("dds:sec", namespaces=ns) == "0"
    assert period.findtext("dds:nanosec", namespaces=ns) == "50000000"


def test_fast_dds_2_distros_get_the_variable_they_read(tmp_path):
    environ = {"ROS_DISTRO": "jazzy"}
    profile = console.apply_default_fastdds_profile(environ, cwd=tmp_path)
    assert environ["FASTRTPS_DEFAULT_PROFILES_FILE"] == str(profile) and "FASTDDS_DEFAULT_PROFILES_FILE" not in environ


@pytest.mark.parametrize("environ, reason", [
    ({"FASTDDS_DEFAULT_PROFILES_FILE": "/mine.xml"}, "FASTDDS_DEFAULT_PROFILES_FILE=/mine.xml is set"),
    ({"FASTRTPS_DEFAULT_PROFILES_FILE": "/mine.xml"}, "FASTRTPS_DEFAULT_PROFILES_FILE=/mine.xml is set"),
    ({"SKIP_DEFAULT_XML_FILE": "1"}, "SKIP_DEFAULT_XML_FILE=1 is set"),
    ({"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}, "RMW_IMPLEMENTATION=rmw_cyclonedds_cpp is not Fast DDS"),
])
def test_the_users_own_fast_dds_configuration_wins(tmp_path, environ, reason):
    before = dict(environ)
    assert console.fastdds_profile_choice(environ, tmp_path) == reason
    assert console.apply_default_fastdds_profile(environ, cwd=tmp_path) is None and environ == before


def test_a_profile_file_in_the_working_directory_wins(tmp_path):
    (tmp_path / "DEFAULT_FASTDDS_PROFILES.xml").write_text("<profiles/>")
    environ: dict[str, str] = {"RMW_IMPLEMENTATION": "rmw_fastrtps_cpp"}
    assert console.apply_default_fastdds_profile(environ, cwd=tmp_path) is None
    assert environ == {"RMW_IMPLEMENTATION": "rmw_fastrtps_cpp"}


def test_stop_signals_set_a_flag_once_and_restore_the_handlers():
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    with console.StopSignals() as stop:
        assert not stop.requested.is_set() and stop.signal_name is None
        os.kill(os.getpid(), signal.SIGINT)  # no KeyboardInterrupt
        assert stop.requested.wait(5) and stop.signal_name == "SIGINT"
        os.kill(os.getpid(), signal.SIGTERM)  # a second signal does not end the process either
        assert stop.signal_name == "SIGINT"
    assert {signum: signal.getsignal(signum) for signum in before} == before


def test_a_sigint_during_the_nodes_start_up_is_recorded_and_a_second_one_raises():
    """node_entry.StartupInterrupt: the first SIGINT must not raise inside a third-party import
    (onnxruntime turned it into an ImportError; an optional import swallowed it and the node ran
    on), a second one still stops a start-up that hangs."""
    from depth_da_ros.node_entry import StartupInterrupt

    before = signal.getsignal(signal.SIGINT)
    try:
        guard = StartupInterrupt()
        os.kill(os.getpid(), signal.SIGINT)  # handled at the next bytecode: no KeyboardInterrupt
        assert guard.received
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_clean_up_that_hangs_ends_the_process_with_code_1():
    import subprocess
    import sys

    code = ("import time\nfrom depth_da_ros.console import ExitIfStuck\nprint('output complete', flush=True)\n"
            "with ExitIfStuck(0.5):\n    time.sleep(60)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and done.stdout == "output complete\n"
    assert "Timeout" in done.stderr  # faulthandler's stacks say where it hung
    fine = subprocess.run([sys.executable, "-c", code.replace("60", "0")], cwd=ROOT, capture_output=True, timeout=30)
    assert fine.returncode == 0
