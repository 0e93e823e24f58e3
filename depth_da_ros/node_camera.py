"""The camera of each frame ``depth_da_node`` processes (ROS messages, but no node): the header
its outputs carry, its calibration and its rectification.

- Header: the input's, with the ``frame_id`` parameter when set; an empty frame id (RViz and tf2
  drop such outputs) is warned about and counted, for images and camera_info alike.
- Calibration: the frame's own camera_info (matched by stamp, waiting a little for one still on
  its way), else its camera's last valid camera_info (same frame_id and size, see
  ``node_calibration.CalibrationCache``), else the ``intrinsics`` parameter, else none (said once
  per camera); where it came from is recorded for /diagnostics.
- Rectification: a frame whose calibration has distortion is rectified before inference when
  the ``rectify`` parameter is on (depth_da_ros.rectify), and its camera_info becomes the
  rectified one (D zero, K from P).

``received`` runs on the executor thread (camera_info callback), the rest on the inference
thread. Warnings go through the node's ThrottledLog, per-frame problems into its FrameChecks.
"""
from __future__ import annotations

import time

import numpy as np
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from .geometry import Intrinsics
from .node_calibration import (
    EMPTY_FRAME_ID,
    FROM_CACHE,
    FROM_CAMERA_INFO,
    FROM_NOTHING,
    FROM_PARAMETER,
    UNCALIBRATED,
    CalibrationCache,
    FrameChecks,
    output_frame_id,
)
from .node_frames import StampMatcher, ThrottledLog
from .rectify import DistortedCamera, Rectifier
from .ros_conversions import (
    InvalidMessageError,
    camera_info_intrinsics,
    intrinsics_to_camera_info,
    restamped_camera_info,
    stamp_to_ns,
)

# How long the inference thread waits for a frame's camera_info that has not arrived yet (the
# two topics are not delivered in order); spent only while camera_info is published.
CAMERA_INFO_WAIT_S = 0.1
# The same for the first frame of a camera (frame_id and size) with no calibration kept: the
# fallbacks are wrong for it (another camera's calibration, or none), so it waits longer; once
# per camera, so a camera_info that never comes costs one such wait.
NEW_CAMERA_INFO_WAIT_S = 1.0


class FrameCameras:
    """camera_info as it arrives, and per frame: its output header, calibration and rectified
    image. ``image_topic`` and ``info_topic`` (resolved names) are for the messages."""

    def __init__(self, tolerance_s: float, checks: FrameChecks, log: ThrottledLog, image_topic: str,
                 info_topic: str) -> None:
        self._infos: StampMatcher[tuple[str, CameraInfo]] = StampMatcher(tolerance_s)  # (frame id, message)
        self._calibrations: CalibrationCache[CameraInfo] = CalibrationCache()
        self._rectifier = Rectifier()
        self._checks = checks
        self._log = log
        self._image_topic = image_topic
        self._info_topic = info_topic

    def set_tolerance(self, tolerance_s: float) -> None:
        """The ``camera_info_tolerance`` parameter changed."""
        self._infos.set_tolerance(tolerance_s)

    def received(self, msg: CameraInfo, frame_id_parameter: str) -> None:
        """A camera_info arrived: kept for stamp matching and, when valid, as its camera's
        calibration (matched to an image or not: frames whose own camera_info is missing, late or
        stamped differently use it)."""
        stamp = stamp_to_ns(msg.header.stamp)
        frame_id = output_frame_id(msg.header.frame_id, frame_id_parameter)
        self._infos.add(stamp, (frame_id, msg))
        if not frame_id:
            self._checks.record(EMPTY_FRAME_ID, time.monotonic())
            self._log.warning("empty_frame_id_camera_info", f"camera_info on {self._info_topic} has an empty "
                              "header.frame_id (RViz and tf2 drop such messages); set the frame_id parameter")
        try:
            intrinsics = camera_info_intrinsics(msg)
        except InvalidMessageError:
            return  # reported when a frame would use it
        if self._calibrations.remember(frame_id, intrinsics, msg, stamp):
            self._log.info(
                "new_calibration",
                f"calibration of camera {frame_id!r} at {intrinsics.width}x{intrinsics.height}: fx={intrinsics.fx:.2f} "
                f"fy={intrinsics.fy:.2f} cx={intrinsics.cx:.2f} cy={intrinsics.cy:.2f}; kept for its frames "
                "without a camera_info of their own")

    def output_header(self, header: Header, frame_id_parameter: str) -> Header:
        """The header of this frame's outputs: the input's, with the ``frame_id`` parameter when
        set; an empty frame id is warned about (throttled) and counted in /diagnostics."""
        if frame_id_parameter:
            return Header(stamp=header.stamp, frame_id=frame_id_parameter)
        if not header.frame_id:
            self._checks.record(EMPTY_FRAME_ID, time.monotonic())
            self._log.warning("empty_frame_id_image", f"image on {self._image_topic} has an empty header.frame_id: "
                              "RViz and tf2 drop the outputs, which carry it; set the frame_id parameter")
        return header

    def for_frame(self, header: Header, height: int, width: int, intrinsics_parameter: tuple[float, ...], *,
                  wait_when_empty: bool) -> tuple[Intrinsics | None, CameraInfo | None]:
        """The intrinsics for this frame and the camera_info to publish with its depth: the
        frame's own camera_info (matched by stamp), else its camera's last valid camera_info
        (same frame_id and size: missing, late, invalid or differently stamped camera_info keeps
        the camera's scale), else the ``intrinsics`` parameter, else none (said once per camera).
        ``wait_when_empty``: camera_info has a publisher, so a stream's first frame waits for the
        first camera_info, which often arrives after it (else it would go uncalibrated).

        Stamp matching: a camera with a kept calibration takes only a camera_info of its own frame
        id (another camera's, near in time, is not its calibration), waiting up to
        CAMERA_INFO_WAIT_S; the first frame of a camera without one waits up to
        NEW_CAMERA_INFO_WAIT_S for its own (a loaded machine delivers it late). Failing that, a
        camera without a kept calibration takes a camera_info of a frame id no image carries (a
        driver that stamps camera_info with another frame id than its images), never another
        camera's."""
        stamp = stamp_to_ns(header.stamp)
        cache = self._calibrations
        first = cache.saw_image(header.frame_id, height, width)

        def own(item: tuple[str, CameraInfo]) -> bool:
            return item[0] == header.frame_id

        def lendable(item: tuple[str, CameraInfo]) -> bool:
            return own(item) or not cache.carried_by_images(item[0])

        if cache.recall(header.frame_id, height, width) is not None:
            found = self._infos.match(stamp, CAMERA_INFO_WAIT_S, wait_when_empty, accept=own)
        elif first:
            wait_s = NEW_CAMERA_INFO_WAIT_S if wait_when_empty else CAMERA_INFO_WAIT_S  # no publisher: none coming
            found = self._infos.match(stamp, wait_s, wait_when_empty, accept=own)
            if found is None and cache.recall(header.frame_id, height, width) is None:
                found = self._infos.match(stamp, accept=lendable)
        else:
            found = self._infos.match(stamp, CAMERA_INFO_WAIT_S, wait_when_empty, accept=lendable)
        info = None if found is None else found[1]
        problem = None
        if info is not None:
            try:
                intrinsics = camera_info_intrinsics(info, height, width)
                self._checks.record_calibration(FROM_CAMERA_INFO)
                return intrinsics, restamped_camera_info(info, header)
            except InvalidMessageError as exc:
                problem = exc
        cached = self._calibrations.recall(header.frame_id, height, width)
        if cached is None and (only := self._calibrations.recall_only(height, width)) is not None:
            other, cached = only
            self._log.warning("frame_id_mismatch", f"image frame_id {header.frame_id!r} differs from the "
                              f"camera_info's {other!r}; using that camera's calibration (the only one at "
                              f"{width}x{height})")
        if cached is not None:
            if problem is not None:
                self._log.warning(problem.kind, f"{problem}; using the camera's last valid camera_info (stamp "
                                  f"{cached.stamp_ns * 1e-9:.6f} s)")
            self._checks.record_calibration(FROM_CACHE)
            return cached.intrinsics, restamped_camera_info(cached.message, header)
        if intrinsics_parameter:
            if problem is not None:
                self._log.warning(problem.kind, f"{problem}; using the intrinsics parameter")
            self._checks.record_calibration(FROM_PARAMETER)
            intrinsics = Intrinsics.from_vector(intrinsics_parameter, width, height)
            return intrinsics, intrinsics_to_camera_info(intrinsics, header)
        self._checks.record(UNCALIBRATED, time.monotonic())
        self._checks.record_calibration(FROM_NOTHING)
        if problem is not None:
            self._log.warning(problem.kind, f"{problem}; publishing depth without camera_info, point cloud or "
                              "focal rescaling")
        if self._calibrations.first_miss(header.frame_id, height, width):
            kept = self._calibrations.describe()  # bounded: the cache is, and only a few are named
            self._log.warning(
                "no_calibration",
                f"no calibration for camera {header.frame_id!r} at {width}x{height}: no valid camera_info on "
                f"{self._info_topic} yet (calibrations kept: {kept}) and no intrinsics parameter. Until one "
                "arrives, its depth is published as the network predicts it for its training camera (no focal "
                "rescaling), without depth/camera_info and point cloud; /diagnostics warns. (Said once per camera, "
                "at most once per warning_period.)")
        return None, None

    def rectified(self, rgb: np.ndarray, info: CameraInfo | None, enabled: bool
                  ) -> tuple[np.ndarray, CameraInfo | None]:
        """The frame to infer on and its camera_info: rectified (D zero, K from P) when its
        calibration has distortion and ``enabled`` (the ``rectify`` parameter)."""
        if info is None:
            return rgb, None
        camera = DistortedCamera.from_fields(info.width, info.height, info.distortion_model, info.d, info.k,
                                             info.r, info.p)
        roi = info.roi
        full_frame = (info.binning_x <= 1 and info.binning_y <= 1
                      and roi.x_offset == 0 and roi.y_offset == 0
                      and (roi.width, roi.height) in ((0, 0), (info.width, info.height)))
        done = self._rectifier.apply(rgb, camera, enabled, full_frame=full_frame, topic=self._image_topic)
        if done.note:
            self._log.logger.info(done.note)
        if done.problem:
            self._log.warning(*done.problem)
        if done.fields is None:
            return done.image, info
        return done.image, CameraInfo(header=info.header, height=info.height, width=info.width,
                                      binning_x=info.binning_x, binning_y=info.binning_y, roi=info.roi, **done.fields)
