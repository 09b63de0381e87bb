"""`srgan train` (being written)."""


def register(subparsers) -> None:
    subparsers.add_parser("train", help="(not yet available)")
