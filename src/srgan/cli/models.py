"""`srgan models` (being written)."""


def register(subparsers) -> None:
    subparsers.add_parser("models", help="(not yet available)")
