"""`srgan serve` (being written)."""


def register(subparsers) -> None:
    subparsers.add_parser("serve", help="(not yet available)")
