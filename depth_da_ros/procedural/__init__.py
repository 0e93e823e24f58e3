"""Procedural two-domain road scenes: exact depth, a synthetic look and a real-camera look."""
from .render import Face, Geometry, render_geometry
from .scene import Boxes, Scene, SceneConfig, Surface, sample_scene

__all__ = ["Boxes", "Face", "Geometry", "Scene", "SceneConfig", "Surface", "render_geometry", "sample_scene"]
