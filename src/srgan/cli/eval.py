"""`srgan eval` (being written)."""


def register(subparsers) -> None:
    subparsers.add_parser("eval", help="(not yet available)")
