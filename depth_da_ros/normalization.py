"""The one normalisation contract between data, networks, export and inference.

Every stage imports these functions instead of writing its own ``/ 255`` or ``* 2 - 1``:
the reference student code fed the style net's [-1, 1] output into a depth net trained on
[0, 1] input, and read 16-bit depth as 8-bit. Here:

* images on the network side are float in [-1, 1] (what a tanh generator emits, so the
  style adapter's output is a valid depth-network input with no rescale in between);
* depth on the network side is float in [-1, 1], mapped from metres by a ``DepthCodec``
  that records its maximum depth (and encoding) in every checkpoint and export;
* depth everywhere else is float metres; invalid depth (sky, no return) is NaN or inf
  in metres and is clipped to ``max_depth`` only when encoded as a training target.

The functions use only arithmetic and ``.clip``, so they work unchanged on NumPy arrays
and torch tensors (and therefore inside an exported ONNX graph).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

ArrayT = TypeVar("ArrayT")  # numpy.ndarray or torch.Tensor

IMAGE_MIN, IMAGE_MAX = -1.0, 1.0
DEPTH_ENCODINGS = ("linear", "log")


def image_to_network(image: ArrayT) -> ArrayT:
    """uint8-range values [0, 255] (any dtype) -> float in [-1, 1]."""
    return image / 127.5 - 1.0


def network_to_image(x: ArrayT) -> ArrayT:
    """[-1, 1] -> float in [0, 255] (round and cast at the caller, e.g. for PNG writing)."""
    return (x.clip(IMAGE_MIN, IMAGE_MAX) + 1.0) * 127.5


@dataclass(frozen=True)
class DepthCodec:
    """Metres <-> network range [-1, 1].

    ``linear`` (the paper's choice): d / max_depth, uniform resolution in metres.
    ``log``: log(d / min_depth) / log(max_depth / min_depth), uniform *relative*
    resolution, which suits the abs_rel metric and near obstacles.
    Depth beyond ``max_depth`` (including sky = inf) saturates at +1.
    """

    max_depth: float = 80.0
    encoding: str = "linear"
    min_depth: float = 0.5  # only used by the log encoding

    def __post_init__(self) -> None:
        if self.encoding not in DEPTH_ENCODINGS:
            raise ValueError(f"unknown depth encoding {self.encoding!r}; known: {', '.join(DEPTH_ENCODINGS)}")
        if not (0 < self.min_depth < self.max_depth):
            raise ValueError(f"need 0 < min_depth < max_depth, got {self.min_depth} and {self.max_depth}")

    def encode(self, metres: ArrayT) -> ArrayT:
        d = metres.clip(self.min_depth if self.encoding == "log" else 0.0, self.max_depth)
        if self.encoding == "linear":
            unit = d / self.max_depth
        else:
            unit = _log(d / self.min_depth) / math.log(self.max_depth / self.min_depth)
        return unit * 2.0 - 1.0

    def decode(self, x: ArrayT) -> ArrayT:
        unit = (x.clip(-1.0, 1.0) + 1.0) * 0.5
        if self.encoding == "linear":
            return unit * self.max_depth
        return _exp(unit * math.log(self.max_depth / self.min_depth)) * self.min_depth

    def to_dict(self) -> dict:
        return {"max_depth": self.max_depth, "encoding": self.encoding, "min_depth": self.min_depth}


def _log(x):
    return np.log(x) if isinstance(x, (np.ndarray, np.generic, float)) else x.log()


def _exp(x):
    return np.exp(x) if isinstance(x, (np.ndarray, np.generic, float)) else x.exp()
