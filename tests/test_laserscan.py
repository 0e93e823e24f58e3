"""depth_da_ros.laserscan against analytic geometry, and read back the way Nav2's layers do."""
from __future__ import annotations

import math

import numpy as np
import pytest

from depth_da_ros.geometry import Intrinsics
from depth_da_ros.laserscan import (band_rows, depth_to_scan, scan_frame_for, scan_grid, scan_points,
                                    scan_to_optical)

CAMERA = Intrinsics(width=320, height=96, fx=240.0, fy=240.0, cx=161.3, cy=47.6)


def wall(z: float, camera: Intrinsics = CAMERA) -> np.ndarray:
    return np.full((camera.height, camera.width), z, np.float32)


def test_angles_span_the_horizontal_field_of_view_counter_clockwise():
    scan = depth_to_scan(wall(5.0), CAMERA)
    # Leftmost column (u = 0) at angle_max > 0, rightmost at angle_min < 0 (REP 103: CCW about z up).
    assert scan.angle_max == pytest.approx(math.atan(CAMERA.cx / CAMERA.fx))
    assert scan.angle_min == pytest.approx(-math.atan((CAMERA.width - 1 - CAMERA.cx) / CAMERA.fx))
    assert scan.angle_min + scan.angle_increment * (scan.ranges.size - 1) == pytest.approx(scan.angle_max)
    assert scan.ranges.size == CAMERA.width and scan.ranges.dtype == np.float32


def test_flat_wall_gives_range_z_over_cos_and_points_on_the_wall():
    z = 4.0
    scan = depth_to_scan(wall(z), CAMERA, band_height=5)
    expected = z / np.cos(scan.angles)
    # Bins are uniform in angle, columns in tan(angle): a bin takes a column within half a column's angle.
    half_column = 0.5 / CAMERA.fx
    assert np.all(np.abs(scan.ranges - expected) <= z * np.abs(np.tan(scan.angles)) * half_column / np.cos(scan.angles) + 1e-4)
    marks, _ = scan_points(scan)
    assert len(marks) == CAMERA.width
    # Every point lies on the wall x = z (scan frame: x forward), at most half a column off it.
    assert np.allclose(marks[:, 0], z, atol=z * half_column * 0.6)


def test_exact_column_ranges_where_a_bin_holds_one_column():
    # A bin holding one column has that column's range hypot((u - cx) z / fx, z); where several
    # columns share a bin (image edges) the nearest of them wins.
    z = 3.0
    scan = depth_to_scan(wall(z), CAMERA)
    grid = scan_grid(CAMERA.width, CAMERA.fx, CAMERA.cx)
    u = np.arange(CAMERA.width)
    exact = np.hypot((u - CAMERA.cx) * z / CAMERA.fx, z)
    counts = np.bincount(grid.bin_of_column, minlength=CAMERA.width)
    single = counts[grid.bin_of_column] == 1
    assert single.sum() > CAMERA.width // 2
    np.testing.assert_allclose(scan.ranges[grid.bin_of_column[single]], exact[single], rtol=1e-6)
    for b in np.flatnonzero(counts > 1):
        assert scan.ranges[b] == pytest.approx(exact[grid.bin_of_column == b].min(), rel=1e-6)


def test_box_in_front_of_wall_shows_its_near_face_at_its_columns():
    depth = wall(8.0)
    # A box 2 m away spanning lateral x in [-0.5, 0.3] m (optical x right), taller than the band.
    u0 = int(math.ceil(CAMERA.cx + (-0.5) * CAMERA.fx / 2.0))
    u1 = int(math.floor(CAMERA.cx + 0.3 * CAMERA.fx / 2.0))
    depth[30:70, u0:u1 + 1] = 2.0
    scan = depth_to_scan(depth, CAMERA, band_height=9)
    marks, _ = scan_points(scan)
    optical = scan_to_optical(marks)
    near = optical[:, 2] < 2.5
    assert np.allclose(optical[near, 2], 2.0, atol=0.01)
    # The box's left and right edges come back where they were put (within one column at 2 m).
    column = 2.0 / CAMERA.fx
    assert optical[near, 0].min() == pytest.approx((u0 - CAMERA.cx) * column, abs=column)
    assert optical[near, 0].max() == pytest.approx((u1 - CAMERA.cx) * column, abs=column)
    assert np.allclose(optical[~near, 2], 8.0, atol=0.05)
    assert np.allclose(optical[:, 1], 0.0)  # the scan plane is the optical centre's row


def test_box_outside_the_band_is_ignored_and_thin_post_survives_binning():
    depth = wall(6.0)
    depth[:20, :] = 1.0  # above the band (rows around cy = 47.6)
    depth[40:60, 3] = 1.5  # a one-column post near the left edge, where columns crowd the bins
    scan = depth_to_scan(depth, CAMERA, band_height=5)
    assert np.nanmin(scan.ranges) == pytest.approx(1.5 * math.hypot(1.0, (3 - CAMERA.cx) / CAMERA.fx), rel=1e-5)
    assert np.sum(scan.ranges < 5) == 1


def test_min_over_band_and_invalid_pixels_skipped():
    depth = wall(5.0)
    first, last = band_rows(CAMERA.height, CAMERA.cy, 5)
    assert (first, last) == (46, 51)
    depth[first:last, 100] = np.nan
    depth[first + 1, 100] = 3.0  # one valid pixel in the band: it wins
    depth[first:last, 200] = np.nan  # a column with no valid pixel
    depth[first, 201] = 0.0  # zero depth is invalid, the rest of the column counts
    depth[last, 150] = 0.5  # just below the band: ignored
    scan = depth_to_scan(depth, CAMERA, band_height=5)
    grid = scan_grid(CAMERA.width, CAMERA.fx, CAMERA.cx)
    assert scan.ranges[grid.bin_of_column[100]] == pytest.approx(3.0 * math.hypot(1, (100 - CAMERA.cx) / CAMERA.fx))
    assert math.isnan(scan.ranges[grid.bin_of_column[200]])
    assert scan.ranges[grid.bin_of_column[201]] == pytest.approx(5.0 * math.hypot(1, (201 - CAMERA.cx) / CAMERA.fx))
    assert np.nanmin(scan.ranges) > 2.9


def test_beyond_range_is_plus_inf_and_clears_with_inf_is_valid():
    depth = wall(50.0)
    depth[:, 150:170] = np.inf  # REP 118 beyond range (sky)
    depth[:, 10:20] = 0.05  # nearer than range_min: -Inf (REP 117 too close), never clears
    depth[:, 300:] = 4.0
    scan = depth_to_scan(depth, CAMERA, band_height=3, range_min=0.1, range_max=20.0)
    grid = scan_grid(CAMERA.width, CAMERA.fx, CAMERA.cx)
    assert np.all(np.isposinf(scan.ranges[grid.bin_of_column[30:290]]))
    assert np.all(np.isneginf(scan.ranges[grid.bin_of_column[10:20]]))
    assert np.all(np.isfinite(scan.ranges[grid.bin_of_column[300:]]))
    # Nav2 with inf_is_valid and obstacle_max_range below range_max: +Inf rays clear to range_max
    # and mark nothing; the finite columns mark.
    marks, clears = scan_points(scan, inf_is_valid=True, obstacle_max_range=19.5, raytrace_max_range=25.0)
    right = 4.0 * np.hypot(1, (np.arange(300, 320) - CAMERA.cx) / CAMERA.fx)
    assert np.all((np.hypot(marks[:, 0], marks[:, 1]) >= right.min() - 1e-4)
                  & (np.hypot(marks[:, 0], marks[:, 1]) <= right.max() + 1e-4))
    lengths = np.hypot(clears[:, 0], clears[:, 1])
    assert np.sum(np.isclose(lengths, 20.0 - 1e-4)) >= 260
    # The pitfall: obstacle_max_range >= range_max makes those +Inf end points obstacles.
    marks_pitfall, _ = scan_points(scan, inf_is_valid=True)
    assert len(marks_pitfall) == len(clears) > len(marks)
    # Without inf_is_valid (the layers' default) +Inf is dropped: nothing clears there.
    marks_default, clears_default = scan_points(scan)
    assert len(clears_default) == len(marks_default) == len(marks)
    # raytrace_max_range cuts the clearing rays.
    _, short = scan_points(scan, inf_is_valid=True, obstacle_max_range=19.5, raytrace_max_range=10.0)
    assert np.hypot(short[:, 0], short[:, 1]).max() <= 10.0 + 1e-9


def test_a_too_close_pixel_beats_beyond_range_in_its_column():
    depth = wall(np.inf)
    depth[47, 100] = 0.01
    scan = depth_to_scan(depth, CAMERA, band_height=3)
    grid = scan_grid(CAMERA.width, CAMERA.fx, CAMERA.cx)
    assert np.isneginf(scan.ranges[grid.bin_of_column[100]])


def test_every_bin_gets_a_value_though_centre_columns_are_wider_than_a_bin():
    grid = scan_grid(CAMERA.width, CAMERA.fx, CAMERA.cx)
    assert grid.empty.any()  # the centre columns span more angle than the average
    scan = depth_to_scan(wall(2.0), CAMERA)
    assert np.all(np.isfinite(scan.ranges))


def test_read_back_matches_the_depth_image_through_the_camera():
    # Nav2's reading (range, angle -> point in the scan frame), moved to the optical frame and
    # projected with P, lands on the band's row within a column of the pixel it came from, and
    # its range is that pixel's sqrt(x^2 + z^2).
    rng = np.random.default_rng(0)
    depth = np.repeat(rng.uniform(1.0, 9.0, (1, CAMERA.width)), CAMERA.height, axis=0).astype(np.float32)
    scan = depth_to_scan(depth, CAMERA, range_max=20.0)
    grid = scan_grid(CAMERA.width, CAMERA.fx, CAMERA.cx)
    marks, _ = scan_points(scan)
    assert len(marks) == CAMERA.width
    optical = scan_to_optical(marks)
    u = CAMERA.fx * optical[:, 0] / optical[:, 2] + CAMERA.cx
    v = CAMERA.fy * optical[:, 1] / optical[:, 2] + CAMERA.cy
    assert np.allclose(v, CAMERA.cy)
    columns = np.arange(CAMERA.width)
    column_range = depth[0] * np.hypot(1, (columns - CAMERA.cx) / CAMERA.fx)
    r = np.hypot(marks[:, 0], marks[:, 1])
    for b in range(CAMERA.width):
        sources = columns[grid.bin_of_column == b] if not grid.empty[b] else [grid.column_of_empty_bin[b]]
        source = min(sources, key=lambda c: column_range[c])
        assert r[b] == pytest.approx(column_range[source], rel=1e-5)
        assert abs(u[b] - source) <= 1.0


def test_scan_frame_names():
    assert scan_frame_for("camera_color_optical_frame") == "camera_color_frame"
    assert scan_frame_for("cam_optical") == "cam"
    assert scan_frame_for("base_camera") == "base_camera"
    assert scan_frame_for("camera_optical_frame", "laser") == "laser"


def test_bad_inputs_raise():
    with pytest.raises(ValueError):
        depth_to_scan(wall(1.0), CAMERA, range_min=5.0, range_max=1.0)
    with pytest.raises(ValueError):
        depth_to_scan(wall(1.0), CAMERA, band_height=0)
    with pytest.raises(ValueError):
        depth_to_scan(np.ones((10, 10), np.float32), CAMERA)


def test_scan_maker_keeps_the_grid_and_says_when_the_frame_looks_wrong():
    from depth_da_ros.laserscan import ScanMaker

    maker = ScanMaker()
    kwargs = dict(band_height=3, range_min=0.1, range_max=30.0)
    scan, frame, problem = maker.make(wall(5.0), CAMERA, "camera_color_optical_frame", **kwargs)
    assert frame == "camera_color_frame" and problem is None
    np.testing.assert_array_equal(scan.ranges, depth_to_scan(wall(5.0), CAMERA, **kwargs).ranges)
    _, frame, problem = maker.make(wall(5.0), CAMERA, "camera_color_left", **kwargs)
    assert frame == "camera_color_left" and "scan_frame_id" in problem  # no body frame to derive
    _, frame, problem = maker.make(wall(5.0), CAMERA, "x", frame_id="my_optical_mount", **kwargs)
    assert frame == "my_optical_mount" and "optical" in problem
    _, frame, problem = maker.make(wall(5.0), CAMERA, "x", frame_id="camera_link", **kwargs)
    assert frame == "camera_link" and problem is None
    other = Intrinsics(width=320, height=96, fx=300.0, fy=300.0, cx=160.0, cy=48.0)
    scan, _, _ = maker.make(wall(5.0), other, "cam_optical", **kwargs)  # a new camera: a new grid
    assert scan.angle_max == pytest.approx(math.atan(160.0 / 300.0))
