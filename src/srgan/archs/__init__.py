"""Network architectures (nn.Modules only) and the registry that names them.

Use `create_model(name)` / `list_models()` / `get_spec(name)` to get networks; `build_arch(arch, kwargs)`
rebuilds one from a model file's metadata.
"""

from srgan.archs.registry import (
    ARCHS,
    PRESETS,
    ModelSpec,
    build_arch,
    create_model,
    get_spec,
    list_models,
)
from srgan.archs.vgg import VGGFeatureExtractor

__all__ = [
    "ARCHS",
    "PRESETS",
    "ModelSpec",
    "VGGFeatureExtractor",
    "build_arch",
    "create_model",
    "get_spec",
    "list_models",
]
