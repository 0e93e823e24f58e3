"""Colour maps and their legends (depth_da_ros.visualization)."""
from __future__ import annotations

import numpy as np
import pytest

from depth_da_ros.visualization import (
    COLORMAP_SCALES,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MIN_DEPTH,
    colorize_depth,
    colour_bar,
    colour_bar_ticks,
    depth_to_unit,
    draw_colour_legend,
    label_columns,
    with_colour_bar,
)


@pytest.mark.parametrize("scale", COLORMAP_SCALES)
def test_near_is_one_far_is_zero_and_the_map_is_monotonic(scale):
    depths = np.geomspace(DEFAULT_MIN_DEPTH, DEFAULT_MAX_DEPTH, 50)
    unit = depth_to_unit(depths, scale=scale)
    assert unit[0] == pytest.approx(1.0) and unit[-1] == pytest.approx(0.0) and np.all(np.diff(unit) < 0)
    assert depth_to_unit(np.array([0.5, 500.0]), scale=scale).tolist() == pytest.approx([1.0, 0.0])  # clipped


def test_the_default_spreads_street_depths():
    """KITTI lidar depths of the sample frames: 5th-95th percentiles 5.5-38.6 m, median 10.3 m
    (measured, see the module doc). The default gives them half the colour range; 1/depth over
    1-80 m gave them a sixth."""
    low, median, high = depth_to_unit(np.array([5.5, 10.3, 38.6]))
    assert low - high > 0.5 and 0.4 < median < 0.7
    inverse = depth_to_unit(np.array([5.5, 38.6]), 1.0, 80.0, "inverse")
    assert inverse[0] - inverse[1] < 0.2


def test_invalid_depth_is_black_and_bad_ranges_are_errors():
    rgb = colorize_depth(np.array([[np.nan, np.inf, 0.0, -1.0, 10.0]], np.float32))
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 5, 3)
    assert not rgb[0, :4].any() and rgb[0, 4].any()
    with pytest.raises(ValueError, match="min_depth < max_depth"):
        colorize_depth(np.ones((2, 2)), 10.0, 5.0)
    with pytest.raises(ValueError, match="known: log, inverse, linear"):
        colorize_depth(np.ones((2, 2)), scale="sqrt")


@pytest.mark.parametrize("scale", COLORMAP_SCALES)
def test_colour_bar_ticks_sit_where_their_depth_is_drawn(scale):
    width = 600
    bar = colour_bar(width, scale=scale)
    assert bar.shape == (34, width, 3) and bar.dtype == np.uint8
    ticks = colour_bar_ticks(DEFAULT_MIN_DEPTH, DEFAULT_MAX_DEPTH, scale)
    assert ticks[0] == DEFAULT_MIN_DEPTH and ticks[-1] == DEFAULT_MAX_DEPTH and 10 in ticks
    stripe = bar[3]  # a row through the colour stripe, above the title text
    columns = np.flatnonzero((stripe != 255).any(axis=1))
    left, right = columns[0], columns[-1] + 1
    for tick in ticks:
        x = left + round((1.0 - float(depth_to_unit(np.array(tick), scale=scale))) * (right - left - 1))
        expected = colorize_depth(np.array([[tick]], np.float32), scale=scale)[0, 0].astype(int)
        assert np.abs(stripe[x].astype(int) - expected).max() <= 12, (tick, stripe[x], expected)


def test_legends_on_colorized_images_sheets_and_strips():
    colors = colorize_depth(np.full((375, 1242), 10.0, np.float32))
    before = colors.copy()
    draw_colour_legend(colors)
    changed = np.argwhere((colors != before).any(axis=2))
    assert changed[:, 0].min() >= 375 - 30 and changed[:, 1].min() >= 1242 - 360  # bottom-right corner only
    small = colorize_depth(np.full((40, 60), 10.0, np.float32))
    assert np.array_equal(draw_colour_legend(small.copy()), small)  # too small for a readable bar
    sheet = np.zeros((100, 3 * 200, 3), np.uint8)
    labelled = with_colour_bar(label_columns(sheet, ["input", "depth", "ground truth"], title="t"))
    assert labelled.shape == (44 + 100 + 34, 600, 3)
    assert (labelled[:44] != 255).any()  # the labels are drawn
