"""Command-line entry point: `srgan COMMAND ...`.

Argument parsing only. Each command lives in its own module with a `register(subparsers)` function
that adds its parser and sets `handler`; handlers import the heavy layers lazily so `srgan --help`
stays instant.
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

from srgan import __version__
from srgan.errors import SrganError

# Modules under srgan.cli, in the order their commands appear in --help.
COMMAND_MODULES = ("demo", "upscale", "models", "eval", "metrics", "train", "serve")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="srgan",
        description="GAN-based single-image super-resolution: upscale, train, evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"srgan {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        import_module(f"srgan.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except SrganError as error:
        print(f"srgan: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("srgan: interrupted", file=sys.stderr)
        return 130
