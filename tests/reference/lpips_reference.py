"""Reference LPIPS distances from the `lpips` package (Zhang et al.), for tests/test_quality_lpips.py.

Run once in a side environment that has torchvision and lpips (they do not install beside srgan's
CPU torch), from the repository root:

    python -m venv /tmp/lpipsenv && /tmp/lpipsenv/bin/pip install torch torchvision lpips
    /tmp/lpipsenv/bin/python tests/reference/lpips_reference.py > tests/reference/lpips_reference.json

The backbone weights are seeded random numbers (so the test can rebuild them without a download);
the heads are either seeded random numbers or the package's real v0.1 heads (`weights/v0.1/*.pth`
inside the wheel, whose sha256 is recorded: the test can check those cases when the same head file
is at hand). The generation rules below are repeated in the test: keep them in step.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os

import torch


def seeded_weights(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    """He-scaled normal weights, small normal biases, one generator per key (sorted), seed*1000 + rank."""
    weights = {}
    for rank, key in enumerate(sorted(shapes)):
        generator = torch.Generator().manual_seed(seed * 1000 + rank)
        shape = shapes[key]
        values = torch.randn(shape, generator=generator, dtype=torch.float64)
        fan_in = math.prod(shape[1:]) if len(shape) > 1 else 1
        weights[key] = (values * (math.sqrt(2 / fan_in) if key.endswith("weight") else 0.01)).float()
    return weights


def seeded_heads(widths: list[int], seed: int) -> list[torch.Tensor]:
    """Non-negative head weights like the real ones: uniform [0, 1) / width."""
    generator = torch.Generator().manual_seed(seed)
    return [(torch.rand(width, generator=generator, dtype=torch.float64) / width).float().view(1, width, 1, 1)
            for width in widths]


def seeded_images(seed: int, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=generator, dtype=torch.float64)
    y = (x + 0.15 * torch.randn(shape, generator=generator, dtype=torch.float64)).clamp(0, 1)
    return x.float(), y.float()


CASES = [  # (seed, image shape)
    (1, (2, 3, 64, 64)),
    (2, (1, 3, 48, 80)),
]


def main() -> None:
    import lpips

    weights_dir = os.path.join(os.path.dirname(inspect.getfile(lpips.LPIPS)), "weights", "v0.1")
    results = {"lpips_version": lpips.__version__ if hasattr(lpips, "__version__") else "0.1.4",
               "torch_version": torch.__version__, "nets": {}}
    for net in ("alex", "vgg"):
        model = lpips.LPIPS(net=net, version="0.1", pretrained=True, pnet_rand=True, verbose=False).eval()
        backbone = {}
        for name, tensor in model.net.named_parameters():
            # lpips keeps torchvision's feature indices inside its slices: slice2.3.weight = features.3.weight
            backbone["features." + name.split(".", 1)[1]] = tensor
        shapes = {key: tuple(tensor.shape) for key, tensor in backbone.items()}
        generated = seeded_weights(shapes, seed=7)
        with torch.no_grad():
            for key, tensor in backbone.items():
                tensor.copy_(generated[key])
        real_heads = [lin.model[1].weight.detach().clone() for lin in model.lins]
        head_file = os.path.join(weights_dir, f"{net}.pth")
        entry = {
            "backbone_seed": 7,
            "backbone_checksum": float(sum(tensor.double().sum() for tensor in generated.values())),
            "real_head_sha256": hashlib.sha256(open(head_file, "rb").read()).hexdigest(),
            "cases": [],
        }
        widths = [head.shape[1] for head in real_heads]
        for heads_kind in ("seeded", "v0.1"):
            heads = seeded_heads(widths, seed=11) if heads_kind == "seeded" else real_heads
            with torch.no_grad():
                for lin, head in zip(model.lins, heads):
                    lin.model[1].weight.copy_(head)
            for seed, shape in CASES:
                x, y = seeded_images(seed, shape)
                with torch.no_grad():
                    distances = model(x, y, normalize=True).flatten().double().tolist()
                    same = model(x, x, normalize=True).flatten().double().tolist()
                entry["cases"].append({"heads": heads_kind, "head_seed": 11, "image_seed": seed,
                                       "shape": list(shape), "distances": distances, "identical": same})
        results["nets"][net] = entry
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
