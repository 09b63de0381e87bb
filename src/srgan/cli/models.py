"""`srgan models`: list architectures and named weights; `srgan models fetch-*`: optional downloads."""

from __future__ import annotations

import argparse

from srgan.cli.notes import warnings_said


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list architectures and named weights; fetch optional weights",
        description="Without a subcommand: list the named models usable with `--model` (bicubic, embedded, "
        "pretrained, and your own files in $SRGAN_MODELS_DIR or ~/.local/share/srgan/models) and the untrained "
        "architecture presets for `srgan train`, from one catalogue.",
    )
    parser.set_defaults(handler=list_models_command)
    actions = parser.add_subparsers(dest="models_action", metavar="ACTION")
    _add_fetch(
        actions,
        "fetch-vgg19",
        help="download torchvision's VGG19 ImageNet weights (checksummed) for the perceptual loss",
        description="Download torchvision's vgg19-dcbb9e9d.pth, verify its sha256 against the "
        "'dcbb9e9d' prefix torchvision names its files by, and keep the `features.*` weights as "
        "safetensors (torchvision preprocessing: RGB in [0, 1], ImageNet mean/std).",
        source="download.pytorch.org",
        suffix=".safetensors",
        handler=fetch_vgg19_command,
    )
    _add_fetch(
        actions,
        "fetch-niqe",
        help="download NIQE's pristine-image model (checksummed) for `srgan metrics niqe` and `--metric niqe`",
        description="Download niqe_pris_params.npz (BasicSR's conversion of the official NIQE "
        "modelparameters.mat) from the BasicSR repository and verify its sha256.",
        source="raw.githubusercontent.com, BasicSR",
        suffix=".npz",
        handler=fetch_niqe_command,
    )
    lpips = actions.add_parser(
        "fetch-lpips",
        help="download LPIPS weights (AlexNet or VGG16 backbone + v0.1 heads, checksummed) for `--metric lpips`",
        description="Download torchvision's AlexNet or VGG16 ImageNet weights and the v0.1 linear heads of the "
        "reference lpips package, verify both sha256s, and keep what LPIPS uses as one safetensors file.",
    )
    lpips.add_argument("--net", choices=("alex", "vgg"), default="alex", help="backbone (default: %(default)s)")
    lpips.add_argument("--backbone-url", help="where to download the backbone from (with --backbone-sha256)")
    lpips.add_argument("--backbone-sha256", help="expected sha256 (or prefix) of --backbone-url")
    lpips.add_argument("--heads-url", help="where to download the v0.1 heads from (with --heads-sha256)")
    lpips.add_argument("--heads-sha256", help="expected sha256 (or prefix) of --heads-url")
    lpips.add_argument("--out", help="output .safetensors path (default: in $SRGAN_CACHE_DIR or ~/.cache/srgan)")
    lpips.set_defaults(handler=fetch_lpips_command)


def _add_fetch(actions, name: str, *, help: str, description: str, source: str, suffix: str, handler) -> None:
    """A `fetch-*` action of one checksummed file: --url, --sha256, --out."""
    fetch = actions.add_parser(name, help=help, description=description)
    fetch.add_argument("--url", help=f"where to download from (default: {source})")
    fetch.add_argument("--sha256", help="expected sha256 (full or a prefix) when --url points to another file")
    fetch.add_argument("--out", help=f"output {suffix} path (default: in $SRGAN_CACHE_DIR or ~/.cache/srgan)")
    fetch.set_defaults(handler=handler)


def list_models_command(args: argparse.Namespace) -> int:
    from srgan.catalogue import PRESET, entries, user_models_dir
    from srgan.models import DEFAULT_MODEL

    with warnings_said():
        listed = entries()
    weights = {name: entry for name, entry in listed.items() if entry.kind != PRESET}
    presets = {name: entry for name, entry in listed.items() if entry.kind == PRESET}
    print("Named models (`srgan upscale --model NAME`, `srgan export NAME`, srgan.load_model):")
    width = max(len(name) for name in weights)
    for name, entry in weights.items():
        status = entry.kind if entry.available else 'missing: pip install "srgan[pretrained]"'
        network = f"{entry.spec.arch} x{entry.scale}" if entry.spec is not None else "any scale"
        default = " (default)" if name == DEFAULT_MODEL else ""
        print(f"  {name:<{width}}  {status:<10}  {network:<18}  {entry.description}{default}")
        print(f"  {'':<{width}}  {'':<10}  {'':<18}  source: {entry.source}; licence: {entry.license}")
    print(f"\nYour own model files become named models in {user_models_dir()} (name = file stem).")
    print("\nUntrained architecture presets (`srgan train`, srgan.create_model):")
    width = max(len(name) for name in presets)
    for name, entry in presets.items():
        print(f"  {name:<{width}}  x{entry.scale}  {entry.num_params / 1e6:6.2f}M params  {entry.description}")
    return 0


def fetch_vgg19_command(args: argparse.Namespace) -> int:
    from srgan.downloads import VGG19_SHA256_PREFIX, VGG19_URL, fetch_vgg19

    written = fetch_vgg19(args.out, url=args.url or VGG19_URL, expected_sha256=args.sha256 or VGG19_SHA256_PREFIX)
    print(f"wrote {written} (torchvision preprocessing: RGB in [0, 1], ImageNet mean/std)")
    return 0


def fetch_niqe_command(args: argparse.Namespace) -> int:
    from srgan.downloads import NIQE_PARAMS_SHA256, NIQE_PARAMS_URL, fetch_niqe_params

    written = fetch_niqe_params(
        args.out, url=args.url or NIQE_PARAMS_URL, expected_sha256=args.sha256 or NIQE_PARAMS_SHA256
    )
    print(f"wrote {written} (NIQE pristine-image model)")
    return 0


def fetch_lpips_command(args: argparse.Namespace) -> int:
    from srgan.downloads import LPIPS_SOURCES, fetch_lpips

    default_backbone, default_heads = LPIPS_SOURCES[args.net]
    backbone = (args.backbone_url or default_backbone[0], args.backbone_sha256 or default_backbone[1])
    heads = (args.heads_url or default_heads[0], args.heads_sha256 or default_heads[1])
    written = fetch_lpips(args.net, args.out, backbone=backbone, heads=heads)
    print(f"wrote {written} (LPIPS-{args.net}, v0.1 heads)")
    return 0
