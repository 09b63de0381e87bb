"""Command-line entry point: `srgan COMMAND ...`.

Argument parsing only. Each command lives in its own module with a `register(subparsers)` function
that adds its parser and sets `handler`; handlers import the heavy layers lazily so `srgan --help`
stays instant.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
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
        with _sigterm_unwinds():
            return int(args.handler(args) or 0)
    except SrganError as error:
        print(f"srgan: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("srgan: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Whoever read our output has gone (`srgan models | head`): nothing to report. Point stdout at
        # /dev/null so the interpreter's final flush does not raise again, and exit as a shell reports
        # a process ended by SIGPIPE.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


@contextlib.contextmanager
def _sigterm_unwinds():
    """SIGTERM (kill, systemd, a batch scheduler) exits with 143 through the normal unwinding, so files
    being written are deleted rather than left as `.partial` (the default action ends the process at once)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def exit_now(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, exit_now)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
