"""ament_python package: builds with colcon on a ROS 2 distro and installs with pip in a venv."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "depth_da_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Real-time monocular metric depth for ROS 2: synthetic-only depth GAN + CycleGAN style adapter",
    license="Apache-2.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz") + glob("config/*.xml")),
        (f"share/{PACKAGE}/models", glob("models/*.onnx") + glob("models/*.pt") + glob("models/*.md")),
    ],
    python_requires=">=3.10",
    # Plain Python dependencies. On a ROS 2 distro colcon does not install these: rosdep does,
    # from package.xml (keep both lists in step; tests/test_package.py checks the imports).
    install_requires=[
        "setuptools",
        "numpy>=1.24",
        "opencv-python-headless>=4.8",
        "pyyaml>=6",
        "tqdm>=4.60",
        "torch>=2.4",
        "torchvision>=0.19",
        "pillow>=10",
        "tensorboard>=2.14",
        "onnx>=1.16",
        "onnxscript>=0.1",
        "onnxruntime>=1.18",
        # ROS 2 bags and Image <-> array for every encoding, under the PyPI wheels and a distro
        # alike (the PyPI cv_bridge is ROS 1's and breaks on NumPy 2).
        "rosbags>=0.10",
        "rosbags-image>=0.10",
    ],
    extras_require={
        # ROS 2 Kilted Python from PyPI, for a venv without a sourced distro. Never install this
        # extra over a sourced distro: it would shadow the distro's rclpy (the Makefile checks).
        "ros": [
            "ros-kilted-rclpy",
            "ros-kilted-std-msgs",
            "ros-kilted-sensor-msgs",
            "ros-kilted-rmw-fastrtps-cpp",
            "ros-kilted-diagnostic-msgs",
            "ros-kilted-rcl-interfaces",
            "ros-kilted-builtin-interfaces",
            "ros-kilted-ament-index-python",
            "ros-kilted-rosgraph-msgs",
        ],
        # colcon: the tests build the package as a ROS 2 workspace would.
        "test": ["pytest>=7", "catkin_pkg>=0.5", "colcon-common-extensions"],
    },
    zip_safe=True,
    maintainer="depth_da_ros maintainers",
    maintainer_email="depth-da-ros@users.noreply.github.com",
    entry_points={
        "console_scripts": [
            "depth_da_demo = depth_da_ros.demo:main",
            "depth_da_node = depth_da_ros.node_entry:main",
            "depth_da_render = depth_da_ros.procedural.writer:main",
            "depth_da_kitti2bag = depth_da_ros.bags.kitti2bag:main",
            "depth_da_replay = depth_da_ros.bags.replay:main",
            "depth_da_record = depth_da_ros.bags.record:main",
        ],
    },
)
