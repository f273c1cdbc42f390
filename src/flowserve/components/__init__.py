"""Built-in components (one class per Langflow component type) and their registry."""

from flowserve.components.registry import BUILTIN, build_registry, catalogue

__all__ = ["BUILTIN", "build_registry", "catalogue"]
