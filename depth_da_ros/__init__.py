"""depth_da_ros: real-time monocular metric depth for ROS 2, trained on synthetic data and
adapted to real cameras by image style transfer (Atapour-Abarghouei & Breckon, CVPR 2018)."""

__version__ = "0.1.0"
