"""Point clouds out of the ROS graph: a PointCloud2 (rclpy's or a bag's deserialised message,
anything with its fields) -> NumPy arrays, and arrays -> a PLY file."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def write_ply(path: Path, xyz: np.ndarray, rgb: np.ndarray | None = None,
              comment: str = "depth_da_ros point cloud") -> None:
    """Binary little-endian PLY: float32 x, y, z (and uchar red, green, blue) per vertex."""
    xyz = np.asarray(xyz, dtype=np.float32)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise ValueError(f"expected (N, 3) points, got {xyz.shape}")
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if rgb is not None:
        if rgb.shape != xyz.shape or rgb.dtype != np.uint8:
            raise ValueError(f"expected (N, 3) uint8 colours for {len(xyz)} points, got {rgb.dtype} {rgb.shape}")
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    vertices = np.empty(len(xyz), dtype=fields)
    for axis, name in enumerate("xyz"):
        vertices[name] = xyz[:, axis]
    if rgb is not None:
        for channel, name in enumerate(("red", "green", "blue")):
            vertices[name] = rgb[:, channel]
    types = {"<f4": "float", "u1": "uchar"}
    header = ["ply", "format binary_little_endian 1.0", f"comment {comment}", f"element vertex {len(xyz)}",
              *(f"property {types[kind]} {name}" for name, kind in fields), "end_header"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\n".join(header) + "\n").encode("ascii") + vertices.tobytes())


def cloud_arrays(msg: object) -> tuple[np.ndarray, np.ndarray | None]:
    """Finite points (N, 3) float32 and their colours (N, 3) uint8 (None without an ``rgb`` field)
    of a PointCloud2 with float32 x, y, z (and the packed ``rgb`` RViz reads)."""
    offsets = {f.name: f.offset for f in msg.fields}
    if not {"x", "y", "z"} <= offsets.keys():
        raise ValueError(f"the point cloud has no x, y, z fields (fields: {', '.join(offsets)})")
    order = ">" if msg.is_bigendian else "<"
    rows = np.asarray(msg.data, dtype=np.uint8).reshape(msg.height, msg.row_step)[:, : msg.width * msg.point_step]
    records = np.ascontiguousarray(rows).reshape(-1, msg.point_step)

    def column(name: str, kind: str) -> np.ndarray:
        start = offsets[name]
        return np.ascontiguousarray(records[:, start: start + 4]).view(order + kind)[:, 0]

    xyz = np.stack([column(name, "f4") for name in "xyz"], axis=1)
    valid = np.isfinite(xyz).all(axis=1)
    if "rgb" not in offsets:
        return xyz[valid], None
    packed = column("rgb", "u4")[valid]
    rgb = np.stack([(packed >> 16) & 0xFF, (packed >> 8) & 0xFF, packed & 0xFF], axis=1).astype(np.uint8)
    return xyz[valid], rgb
