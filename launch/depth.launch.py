"""Launch ``depth_da_node`` (and optionally RViz).

    ros2 launch depth_da_ros depth.launch.py model:=/path/to/model.onnx image:=/camera/image_raw \
        camera_info:=/camera/camera_info
    ros2 launch depth_da_ros depth.launch.py kitti:=true use_rviz:=true   # camera_height 1.65 m
    ros2 launch depth_da_ros depth.launch.py image:=/cam/image_raw camera_height:=0.9  # ground constraint on
    ros2 launch depth_da_ros depth.launch.py namespace:=front params_file:=/path/to/my_depth.yaml
    # several cameras: one node per camera, each in the camera's namespace (its topics, its
    # parameters: /front/depth_da_node, /rear/depth_da_node); relative remaps resolve in each
    ros2 launch depth_da_ros depth.launch.py cameras:=front,rear image:=image_raw

Arguments are resolved in an OpaqueFunction, so plain Python decides what to pass: a parameter
is overridden only when its argument is not empty, and ``kitti:=true`` picks the KITTI topics
(as kitti2bag names them) unless ``image``/``camera_info`` are given. Unless Fast DDS is configured
otherwise, the launched processes get the package's Fast DDS profile for large images.
"""
from __future__ import annotations

import os
from pathlib import Path

import yaml
from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

PACKAGE = "depth_da_ros"
NODE_NAME = "depth_da_node"
EXECUTABLE = "depth_da_node"
# Launch argument -> the node parameter it sets when not empty.
PARAMETER_ARGUMENTS = {"model": "model_path", "backend": "backend"}
# kitti:=true: the left colour camera of a KITTI raw bag (kitti2bag's names) and its frame.
KITTI_TOPICS = {"image": "/kitti/camera_color_left/image_raw", "camera_info": "/kitti/camera_color_left/camera_info"}
KITTI_FRAME = "camera_color_left"
KITTI_CAMERA_HEIGHT = 1.65  # metres: KITTI's colour cameras above the road (the recording platform's drawing)
# The topics config/depth.rviz displays (the node's topics in the root namespace, unremapped)
# -> the node's own topic name; RViz is remapped to wherever that topic really is.
RVIZ_TOPICS = {"/image": "image", "/depth/colorized": "depth/colorized", "/points": "points"}


def _is_true(value: str) -> bool:
    return value.strip().lower() in ("true", "1", "yes", "on")


def _node_parameters(params_file: str) -> dict:
    """The node's parameters from ``params_file`` (a ``depth_da_node:``, ``/**/depth_da_node:`` or
    ``/**:`` section).

    Passed to the node as a dict, which launch_ros applies whatever the namespace: given as a
    file, a ``depth_da_node:`` section would only match a node in the root namespace.
    """
    data = yaml.safe_load(Path(params_file).read_text()) or {}
    parameters: dict = {}
    for key in ("/**", f"/**/{NODE_NAME}", NODE_NAME, f"/{NODE_NAME}"):
        section = data.get(key) or {}
        parameters.update(section.get("ros__parameters") or {})
    if not parameters:
        raise RuntimeError(f"{params_file}: no ros__parameters under '{NODE_NAME}:', '/**/{NODE_NAME}:' or '/**:'")
    return parameters


def _typed(parameters: dict) -> dict:
    """Strings stay strings: launch_ros reads a plain string value as YAML ('' fails, 'true'
    turns into a bool)."""
    return {name: ParameterValue(value, value_type=str) if isinstance(value, str) else value
            for name, value in parameters.items()}


def _ground_overrides(camera_height: str, kitti: bool) -> dict:
    """``ground_camera_height`` from the ``camera_height`` argument (metres; KITTI's with
    ``kitti:=true`` when empty); no override when both are empty. Raises RuntimeError (launch
    reports it and starts nothing) for a value that is not a number."""
    if not camera_height:
        return {"ground_camera_height": KITTI_CAMERA_HEIGHT} if kitti else {}
    try:
        return {"ground_camera_height": float(camera_height)}
    except ValueError:
        raise RuntimeError(f"camera_height:={camera_height!r} is not a height in metres (e.g. 1.65; "
                           "0 turns the ground constraint off)") from None


def _resolve(topic: str, namespace: str) -> str:
    """A topic name as the node in ``namespace`` resolves it."""
    if topic.startswith("/"):
        return topic
    return f"/{namespace}/{topic}" if namespace else f"/{topic}"


def _camera_namespaces(namespace: str, cameras: str) -> list[str]:
    """The namespace of each node: one per camera in ``cameras`` (comma separated, under
    ``namespace``), else ``namespace`` alone. Two nodes in one namespace would publish to the
    same topics and share a name (a parameter set on one would reach both)."""
    base = namespace.strip("/")
    names = [c.strip().strip("/") for c in cameras.split(",") if c.strip().strip("/")]
    if len(set(names)) != len(names):
        raise RuntimeError(f"cameras:={cameras}: each camera needs a namespace of its own")
    return ["/".join(filter(None, (base, name))) for name in names] or [base]


def _rviz_missing() -> str | None:
    """Why rviz2 cannot start here, or None. Checked before any node is created: otherwise a
    failed rviz2 would end the launch and leave depth_da_node running unmanaged."""
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        prefix = Path(get_package_prefix("rviz2"))
    except (PackageNotFoundError, LookupError, OSError):
        return ("use_rviz:=true, but rviz2 is not installed (sudo apt install ros-$ROS_DISTRO-rviz2) or its "
                "workspace is not sourced; install it, or launch with use_rviz:=false")
    if not (prefix / "lib" / "rviz2" / "rviz2").exists():
        return f"use_rviz:=true, but the rviz2 package at {prefix} has no lib/rviz2/rviz2 executable"
    return None


def _fastdds_profile() -> list[SetEnvironmentVariable]:
    """The package's Fast DDS profile for large images (config/fastdds_large_images.xml: 50 ms
    heartbeats) for every process of this launch, unless the user configured Fast DDS (a profiles
    variable, a profiles file in the working directory, another RMW): depth_da_ros.console decides,
    as the node itself does when started alone."""
    from depth_da_ros.console import PROFILE, fastdds_profile_choice, profile_variable

    if fastdds_profile_choice(os.environ, Path.cwd()) is not None:
        return []
    profile = Path(get_package_share_directory(PACKAGE)) / PROFILE
    return [SetEnvironmentVariable(profile_variable(os.environ), str(profile))] if profile.is_file() else []


def _launch_setup(context: LaunchContext) -> list:
    def arg(name: str) -> str:
        return LaunchConfiguration(name).perform(context).strip()

    if _is_true(arg("use_rviz")) and (problem := _rviz_missing()):
        raise RuntimeError(problem)  # launch reports it and starts nothing
    namespaces = _camera_namespaces(arg("namespace"), arg("cameras"))
    namespace = namespaces[0]  # RViz shows the first camera
    kitti = _is_true(arg("kitti"))
    remapped = {}
    for topic in ("image", "camera_info"):
        target = arg(topic) or (KITTI_TOPICS[topic] if kitti else "")
        if target:
            remapped[topic] = target

    parameters = [_typed(_node_parameters(arg("params_file")))]
    overrides = {param: arg(name) for name, param in PARAMETER_ARGUMENTS.items() if arg(name)}
    overrides.update(_ground_overrides(arg("camera_height"), kitti))
    if overrides:
        parameters.append(_typed(overrides))
    actions = [*_fastdds_profile(), *(Node(
        package=PACKAGE, executable=EXECUTABLE, name=NODE_NAME, namespace=camera_namespace,
        parameters=parameters, remappings=list(remapped.items()), output="screen", emulate_tty=True,
    ) for camera_namespace in namespaces)]

    if _is_true(arg("use_rviz")):
        share = Path(get_package_share_directory(PACKAGE))
        arguments = ["-d", str(share / "config" / "depth.rviz")]
        frame = arg("frame") or (KITTI_FRAME if kitti else "")
        if frame:
            arguments += ["-f", frame]
        rviz_remappings = [(shown, _resolve(remapped.get(topic, topic), namespace))
                           for shown, topic in RVIZ_TOPICS.items()]
        actions.append(Node(package="rviz2", executable="rviz2", name="rviz2", namespace=namespace,
                            arguments=arguments, remappings=rviz_remappings, output="screen"))
    return actions


def generate_launch_description() -> LaunchDescription:
    share = Path(get_package_share_directory(PACKAGE))
    return LaunchDescription([
        DeclareLaunchArgument("model", default_value="",
                              description="Model (.onnx or depth checkpoint .pt); empty: the params file's or the "
                                          "bundled model"),
        DeclareLaunchArgument("backend", default_value="",
                              description="auto | onnxruntime | tensorrt | torch; empty: the params file's"),
        DeclareLaunchArgument("params_file", default_value=str(share / "config" / "depth.yaml"),
                              description="Node parameters (YAML, '/**/depth_da_node: ros__parameters:')"),
        DeclareLaunchArgument("namespace", default_value="", description="Namespace of the node (and RViz)"),
        DeclareLaunchArgument("cameras", default_value="",
                              description="Comma-separated camera namespaces (e.g. front,rear): one node per "
                                          "camera in <namespace>/<camera>, relative image/camera_info remaps "
                                          "resolved in each; RViz shows the first; empty: one node"),
        DeclareLaunchArgument("image", default_value="",
                              description="Image topic the node's 'image' is remapped to; empty: 'image' "
                                          "(or KITTI's with kitti:=true)"),
        DeclareLaunchArgument("camera_info", default_value="",
                              description="CameraInfo topic the node's 'camera_info' is remapped to; empty: "
                                          "'camera_info' (or KITTI's with kitti:=true)"),
        DeclareLaunchArgument("kitti", default_value="false",
                              description=f"Use the KITTI bag topics {KITTI_TOPICS['image']} and "
                                          f"{KITTI_TOPICS['camera_info']}"),
        DeclareLaunchArgument("camera_height", default_value="",
                              description="Metres of the camera above flat ground: the node's ground_camera_height "
                                          f"(depth below the horizon kept to the ground); empty: the params "
                                          f"file's, or {KITTI_CAMERA_HEIGHT} with kitti:=true; 0: off"),
        DeclareLaunchArgument("use_rviz", default_value="false",
                              description="Start rviz2 with config/depth.rviz"),
        DeclareLaunchArgument("frame", default_value="",
                              description="RViz fixed frame (the camera's optical frame); empty: the config's "
                                          f"or '{KITTI_FRAME}' with kitti:=true"),
        OpaqueFunction(function=_launch_setup),
    ])
