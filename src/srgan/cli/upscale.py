"""`srgan upscale` (being written)."""


def register(subparsers) -> None:
    subparsers.add_parser("upscale", help="(not yet available)")
