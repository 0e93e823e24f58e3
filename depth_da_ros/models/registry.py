"""The network registry and ``NetworkSpec``, the architecture record kept in checkpoints.

A checkpoint stores ``NetworkSpec.to_dict()`` (a name and plain keyword arguments, safe for
``torch.load(..., weights_only=True)``) next to the state dict, so export and inference
rebuild the exact architecture without re-deriving it from a config.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from depth_da_ros.registry import Registry

NETWORKS: Registry[Callable[..., nn.Module]] = Registry("network")


def build_network(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered network ``name``; unknown names list the known ones."""
    return NETWORKS.get(name)(**kwargs)


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (trainable or not; buffers such as running stats excluded)."""
    return sum(p.numel() for p in module.parameters())


@dataclass(frozen=True)
class NetworkSpec:
    """Name + constructor kwargs of a registered network, validated when created."""

    name: str
    # Left out of the hash (a dict is unhashable); equality still compares it.
    kwargs: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        # Own a copy so that mutating the caller's dict cannot change a frozen spec.
        object.__setattr__(self, "kwargs", dict(self.kwargs))
        builder = NETWORKS.get(self.name)
        try:
            inspect.signature(builder).bind(**self.kwargs)
        except TypeError as exc:
            # Fail at config time, not after a dataset has been loaded.
            raise ValueError(f"invalid arguments for network {self.name!r}: {exc}") from None

    def build(self) -> nn.Module:
        return build_network(self.name, **self.kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kwargs": dict(self.kwargs)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkSpec:
        unknown = set(data) - {"name", "kwargs"}
        if unknown or "name" not in data:
            raise ValueError(
                f"a network spec needs keys 'name' and optionally 'kwargs'; got {sorted(data)}"
            )
        return cls(name=data["name"], kwargs=dict(data.get("kwargs", {})))
