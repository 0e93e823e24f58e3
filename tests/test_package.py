"""The package builds with colcon (package.xml + setup.py valid) and declares what it imports."""
from __future__ import annotations

import ast
import configparser
import importlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "depth_da_ros"

# Third-party import -> (rosdep key in package.xml, pip distribution in setup.py).
DEPENDENCIES = {
    "numpy": ("python3-numpy", "numpy"),
    "cv2": ("python3-opencv", "opencv-python-headless"),
    "yaml": ("python3-yaml", "pyyaml"),
    "tqdm": ("python3-tqdm", "tqdm"),
    "torch": ("python3-torch", "torch"),
    "torchvision": ("python3-torchvision", "torchvision"),
    "PIL": ("python3-pil", "pillow"),
    "tensorboard": ("tensorboard", "tensorboard"),
    "onnx": ("python3-onnx", "onnx"),
    "onnxscript": ("python3-onnx", "onnxscript"),
    "onnxruntime": ("python3-onnxruntime-pip", "onnxruntime"),
    "rclpy": ("rclpy", "ros-kilted-rclpy"),
    "std_msgs": ("std_msgs", "ros-kilted-std-msgs"),
    "sensor_msgs": ("sensor_msgs", "ros-kilted-sensor-msgs"),
    "diagnostic_msgs": ("diagnostic_msgs", "ros-kilted-diagnostic-msgs"),
    "builtin_interfaces": ("builtin_interfaces", "ros-kilted-builtin-interfaces"),
    "rcl_interfaces": ("rcl_interfaces", "ros-kilted-rcl-interfaces"),
    "ament_index_python": ("ament_index_python", "ros-kilted-ament-index-python"),
    "rosbags": ("python3-rosbags-pip", "rosbags"),
    "rosgraph_msgs": ("rosgraph_msgs", "ros-kilted-rosgraph-msgs"),
}

# Imported only where present (GPU machines); never a hard dependency of the package.
OPTIONAL_IMPORTS = {"tensorrt"}


def package_imports() -> set[str]:
    names = set()
    for path in (ROOT / PACKAGE).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names | OPTIONAL_IMPORTS | {PACKAGE, "__future__"}}


def setup_py_requirements() -> set[str]:
    text = (ROOT / "setup.py").read_text()
    return {m.lower() for m in re.findall(r'"([A-Za-z0-9_.-]+)(?:[<>=!~].*?)?"', text)}


def test_package_xml_is_valid_format_3_ament_python():
    from catkin_pkg.package import parse_package

    package = parse_package(str(ROOT / "package.xml"))
    package.validate()
    assert package.name == PACKAGE and package.package_format == 3
    assert package.get_build_type() == "ament_python"
    assert re.search(r'version="([^"]+)"', (ROOT / "setup.py").read_text()).group(1) == package.version


def test_every_import_is_declared_in_package_xml_and_setup_py():
    from catkin_pkg.package import parse_package

    package = parse_package(str(ROOT / "package.xml"))
    declared = {d.name for d in package.exec_depends + package.build_export_depends}
    requirements = setup_py_requirements()
    for module in sorted(package_imports()):
        assert module in DEPENDENCIES, f"{module} is imported by {PACKAGE}: add it to DEPENDENCIES, package.xml and setup.py"
        rosdep_key, distribution = DEPENDENCIES[module]
        assert rosdep_key in declared, f"package.xml lacks <exec_depend>{rosdep_key}</exec_depend> for import {module}"
        assert distribution.lower() in requirements, f"setup.py lacks {distribution} for import {module}"


def test_ament_index_marker_and_script_dirs():
    assert (ROOT / "resource" / PACKAGE).is_file()
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert cfg["develop"]["script_dir"] == f"$base/lib/{PACKAGE}"
    assert cfg["install"]["install_scripts"] == f"$base/lib/{PACKAGE}"
    text = (ROOT / "setup.py").read_text()
    for needle in ("resource/{PACKAGE}", '"package.xml"', "launch/*.launch.py", "config/*.yaml"):
        assert needle in text


def test_console_scripts_resolve_to_callables():
    text = (ROOT / "setup.py").read_text()
    scripts = re.findall(r'"(\w+) = ([\w.]+):(\w+)"', text)
    assert scripts, "no console_scripts found"
    for name, module, func in scripts:
        assert callable(getattr(importlib.import_module(module), func)), name


@pytest.mark.parametrize("script", ["depth_da_demo", "depth_da_render", "depth_da_node", "depth_da_kitti2bag",
                                    "depth_da_replay", "depth_da_record"])
def test_console_scripts_are_installed_in_the_venv(script):
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "pip").exists():
        pytest.skip("not running inside the project's venv")
    if not (bin_dir / script).exists():
        pytest.skip(f"{script} not installed (package not pip-installed in this interpreter)")
    assert (bin_dir / script).stat().st_mode & 0o111


def test_colcon_build_installs_what_ros2_run_and_launch_need(tmp_path):
    colcon = shutil.which("colcon", path=str(Path(sys.executable).parent)) or shutil.which("colcon")
    if colcon is None:
        pytest.skip("colcon is not installed (pip install colcon-common-extensions)")
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    if not files:
        pytest.skip("not a git checkout: cannot tell which files a clone would have")
    src = tmp_path / "src" / PACKAGE
    for name in files:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    done = subprocess.run([colcon, "build", "--packages-select", PACKAGE], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    install = tmp_path / "install" / PACKAGE
    assert (install / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE).is_file()
    assert (install / "share" / PACKAGE / "package.xml").is_file()
    scripts = re.findall(r'"(\w+) = [\w.]+:\w+"', (ROOT / "setup.py").read_text())
    for script in scripts:  # `ros2 run depth_da_ros <script>` looks in lib/<package>
        assert (install / "lib" / PACKAGE / script).is_file(), script
    for folder in ("launch", "config"):
        expected = {Path(f).name for f in files if f.startswith(f"{folder}/") and Path(f).suffix in (".py", ".yaml", ".rviz")}
        installed = {p.name for p in (install / "share" / PACKAGE / folder).glob("*")}
        assert expected <= installed, f"{folder}/ files missing from the install: {expected - installed}"
