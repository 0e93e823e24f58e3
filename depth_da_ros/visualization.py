"""Colour maps for depth images (RViz ``depth/colorized``, picture strips, sample sheets) and
their legends: a colour bar in metres, and column labels for picture sheets.

One mapping everywhere: turbo over a fixed metre range (not per-frame normalisation, so colours
stay comparable across frames), near = red, far = blue, invalid = black. The default spreads
the colours by log depth over 2-80 m. Measured on KITTI's lidar ground truth (the two frames of
``../shared/data/kitti_raw_sample``, 38,862 points): the depths' 5-95th percentiles, 5.5-38.6 m,
span 53% of the colour range and the median (10.3 m) sits at 0.56 (green-yellow); with the former
1/depth over 1-80 m they spanned 16% and the median sat at 0.09 (street depths all dark blue).
``inverse`` (1/depth) still suits close-range scenes; ``linear`` resolves far depths.
"""
from __future__ import annotations

import functools

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

COLORMAP_SCALES = ("log", "inverse", "linear")
DEFAULT_MIN_DEPTH = 2.0  # metres: the near end of the colour map
DEFAULT_MAX_DEPTH = 80.0  # metres: the far end (KITTI's evaluation cap)
DEFAULT_SCALE = "log"
# Tick values (metres) a colour bar picks from: 1-2-5 steps, readable at any range.
_TICKS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _check(min_depth: float, max_depth: float, scale: str) -> None:
    if not 0 < min_depth < max_depth:
        raise ValueError(f"need 0 < min_depth < max_depth, got {min_depth}, {max_depth}")
    if scale not in COLORMAP_SCALES:
        raise ValueError(f"unknown colour map scale {scale!r}; known: {', '.join(COLORMAP_SCALES)}")


def depth_to_unit(depth: np.ndarray, min_depth: float = DEFAULT_MIN_DEPTH, max_depth: float = DEFAULT_MAX_DEPTH,
                  scale: str = DEFAULT_SCALE) -> np.ndarray:
    """float metres -> position on the colour map in [0, 1] (1 = ``min_depth``, near; 0 =
    ``max_depth``, far), clipped to the range; invalid depth (NaN, inf, <= 0) maps to 0. float32
    for float32 input (the node's depth: a 1242x375 frame in ~1 ms), else float64."""
    _check(min_depth, max_depth, scale)
    dtype = np.float32 if np.asarray(depth).dtype == np.float32 else np.float64
    d = np.asarray(np.nan_to_num(np.asarray(depth, dtype=dtype), nan=max_depth, posinf=max_depth, neginf=max_depth))
    np.clip(d, min_depth, max_depth, out=d)  # in place: d is already a copy
    if scale == "log":
        np.log(d, out=d)
        return (dtype(np.log(max_depth)) - d) * dtype(1.0 / np.log(max_depth / min_depth))
    if scale == "inverse":
        np.reciprocal(d, out=d)
        return (d - dtype(1.0 / max_depth)) * dtype(1.0 / (1.0 / min_depth - 1.0 / max_depth))
    return (dtype(max_depth) - d) * dtype(1.0 / (max_depth - min_depth))


def colorize_depth(depth: np.ndarray, min_depth: float = DEFAULT_MIN_DEPTH, max_depth: float = DEFAULT_MAX_DEPTH,
                   scale: str = DEFAULT_SCALE) -> np.ndarray:
    """float metres (H, W) -> RGB uint8 (H, W, 3): turbo over ``[min_depth, max_depth]`` spread
    by ``scale`` ("log", "inverse" = 1/depth, "linear"). Invalid depth (NaN, inf, <= 0) is black."""
    unit = depth_to_unit(depth, min_depth, max_depth, scale)
    unit *= 255.0
    unit += 0.5  # round half up (unit >= 0)
    bgr = cv2.applyColorMap(unit.astype(np.uint8), cv2.COLORMAP_TURBO)
    bgr[~(np.isfinite(depth) & (depth > 0))] = 0
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def colour_bar_ticks(min_depth: float, max_depth: float, scale: str = DEFAULT_SCALE) -> list[float]:
    """Round metre values (1-2-5 steps) for a colour bar's labels: the range's ends, and between
    them the 1-2-5 values that fall inside it, thinned for a linear scale."""
    _check(min_depth, max_depth, scale)
    inside = [t for t in _TICKS if min_depth < t < max_depth]
    if scale == "linear":  # evenly spaced labels: keep every other 1-2-5 step near the far end
        inside = [t for t in inside if t >= (max_depth - min_depth) / 8]
    return [min_depth, *inside, max_depth]


def _metres(value: float) -> str:
    return f"{value:g}"


def colour_bar(width: int, min_depth: float = DEFAULT_MIN_DEPTH, max_depth: float = DEFAULT_MAX_DEPTH,
               scale: str = DEFAULT_SCALE, height: int = 34, title: str = "depth (m)") -> np.ndarray:
    """A horizontal colour bar ``width`` pixels wide, near (left) to far (right), with tick
    labels in metres underneath: RGB uint8 (``height``, ``width``, 3) on white."""
    _check(min_depth, max_depth, scale)
    bar = np.full((height, width, 3), 255, np.uint8)
    left = min(8 + 9 * len(title), width // 3) if title else 4
    right = width - 14
    if right - left < 20:
        raise ValueError(f"a colour bar needs a wider image than {width} pixels")
    stripe = max(6, height // 3)
    # Columns left -> right from near to far: the colour map's value at each column's depth.
    positions = np.linspace(1.0, 0.0, right - left)
    colours = cv2.applyColorMap(np.round(positions * 255.0).astype(np.uint8)[None], cv2.COLORMAP_TURBO)
    bar[2:2 + stripe, left:right] = cv2.cvtColor(colours, cv2.COLOR_BGR2RGB)[0]
    if title:
        cv2.putText(bar, title, (4, 2 + stripe), _FONT, 0.38, (40, 40, 40), 1, cv2.LINE_AA)
    last_end = -1
    for tick in colour_bar_ticks(min_depth, max_depth, scale):
        x = left + int(round((1.0 - float(depth_to_unit(np.array(tick), min_depth, max_depth, scale))) *
                             (right - left - 1)))
        text = _metres(tick)
        (text_width, text_height), _ = cv2.getTextSize(text, _FONT, 0.36, 1)
        start = min(max(x - text_width // 2, 0), width - text_width)
        cv2.line(bar, (x, 2 + stripe), (x, 5 + stripe), (40, 40, 40), 1)
        if start > last_end + 3:  # skip a label that would overlap the previous one
            cv2.putText(bar, text, (start, min(height - 2, 7 + stripe + text_height)), _FONT, 0.36, (40, 40, 40), 1,
                        cv2.LINE_AA)
            last_end = start + text_width
    return bar


@functools.lru_cache(maxsize=16)
def _legend_bar(width: int, min_depth: float, max_depth: float, scale: str) -> np.ndarray:
    """The legend's colour bar, drawn once per size and range (the node draws one per frame)."""
    bar = colour_bar(width, min_depth, max_depth, scale, height=30, title="m")
    bar.setflags(write=False)
    return bar


def draw_colour_legend(rgb: np.ndarray, min_depth: float = DEFAULT_MIN_DEPTH, max_depth: float = DEFAULT_MAX_DEPTH,
                       scale: str = DEFAULT_SCALE) -> np.ndarray:
    """``rgb`` (a colorized depth image, uint8 (H, W, 3)) with a colour bar in metres drawn over
    its bottom-right corner, in place; returned for chaining. Images too small for a readable
    bar (under 160x60) are left as they are."""
    height, width = rgb.shape[:2]
    if width < 160 or height < 60:
        return rgb
    bar_width = min(width // 2, 360)
    bar = _legend_bar(bar_width, min_depth, max_depth, scale)
    rgb[height - bar.shape[0]:, width - bar_width:] = bar
    return rgb


def label_columns(sheet: np.ndarray, labels: Sequence[str], title: str = "") -> np.ndarray:
    """``sheet`` (RGB uint8, equal-width columns, one per label) under a white header with a
    ``title`` line and each column's label."""
    width = sheet.shape[1]
    column = width // max(1, len(labels))
    header = np.full((44 if title else 24, width, 3), 255, np.uint8)
    if title:
        cv2.putText(header, title, (8, 17), _FONT, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for i, name in enumerate(labels):
        cv2.putText(header, name, (i * column + 8, header.shape[0] - 7), _FONT, 0.45, (60, 60, 60), 1, cv2.LINE_AA)
    return np.vstack([header, sheet])


def with_colour_bar(sheet: np.ndarray, min_depth: float = DEFAULT_MIN_DEPTH, max_depth: float = DEFAULT_MAX_DEPTH,
                    scale: str = DEFAULT_SCALE) -> np.ndarray:
    """``sheet`` (RGB uint8) with a colour bar in metres across its width underneath."""
    return np.vstack([sheet, colour_bar(sheet.shape[1], min_depth, max_depth, scale)])


def picture_strip(rows: Sequence[Sequence[np.ndarray]], labels: Sequence[str], title: str = "",
                  scale: float = 1.0) -> np.ndarray:
    """RGB rows of equal-size RGB tiles under a title and one label per column, above a colour
    bar in metres (the depth tiles use the default colour map)."""
    if scale != 1.0:
        rows = [[cv2.resize(tile, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) for tile in row]
                for row in rows]
    return with_colour_bar(label_columns(np.vstack([np.hstack(row) for row in rows]), labels, title))


def write_png(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise OSError(f"cannot write {path}")
