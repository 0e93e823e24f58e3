"""Params-file sections as rcl matches them to a node in a namespace (no ROS needed)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from depth_da_ros.node_parameters import params_file_sections_problem, section_applies

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("key, fqn, applies", [
    ("depth_da_node", "/depth_da_node", True),
    ("depth_da_node", "/front/depth_da_node", False),  # rcl: a bare name is in the root namespace
    ("/depth_da_node", "/depth_da_node", True),
    ("/**", "/front/depth_da_node", True),
    ("/**", "/depth_da_node", True),
    ("/**/depth_da_node", "/depth_da_node", True),
    ("/**/depth_da_node", "/robot/front/depth_da_node", True),
    ("/**/depth_da_node", "/front/other_node", False),
    ("/*/depth_da_node", "/front/depth_da_node", True),
    ("/*/depth_da_node", "/depth_da_node", False),
    ("/front/depth_da_node", "/front/depth_da_node", True),
    ("/rear/depth_da_node", "/front/depth_da_node", False),
    ("/front/*", "/front/depth_da_node", True),
])
def test_section_keys_match_as_rcl_matches_them(key, fqn, applies):
    assert section_applies(key, fqn) is applies


def test_shipped_params_file_applies_in_any_namespace():
    assert params_file_sections_problem(["--params-file", str(ROOT / "config" / "depth.yaml")],
                                        "/robot/front/depth_da_node") is None


def test_a_params_file_for_another_namespace_is_named(tmp_path):
    rooted = tmp_path / "rooted.yaml"
    rooted.write_text(yaml.safe_dump({"depth_da_node": {"ros__parameters": {"cloud_rgb": False}}}))
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({"/**": {"ros__parameters": {"cloud_rgb": False}}}))
    args = ["-r", "__ns:=/front", "--params-file", str(good), "--params-file", str(rooted)]
    problem = params_file_sections_problem(args, "/front/depth_da_node")
    assert problem is not None and str(rooted) in problem and str(good) not in problem
    assert "'depth_da_node'" in problem and "/front/depth_da_node" in problem
    assert params_file_sections_problem(args, "/depth_da_node") is None
    assert params_file_sections_problem(["--params-file", str(tmp_path / "missing.yaml")], "/x") is None
