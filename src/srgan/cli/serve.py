"""`srgan serve`: a local web page and HTTP API for upscaling images."""

from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import socket
import sys

from srgan.errors import SrganError

# Kept in step with srgan.serve.app.LOOPBACK_HOSTS, which needs the serve extra to import.
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
TOKEN_ENV = "SRGAN_SERVE_TOKEN"
# Jobs one client may have waiting or running when the server is reachable from other machines.
_REMOTE_JOBS_PER_CLIENT = 2
# Import names of the `serve` extra's packages.
_SERVE_MODULES = ("fastapi", "uvicorn", "python_multipart")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="web page and HTTP API for upscaling images",
        description=(
            "Serve a web page (drop an image, compare before/after, download) and a JSON API "
            "(documented at /docs) for upscaling. Binds to this machine only unless --host says otherwise."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=_port, default=8000, help="port to listen on (default: %(default)s)")
    parser.add_argument(
        "--model",
        default=None,
        help="default model: a name from `srgan models` or a model file (default: the one `srgan upscale` uses)",
    )
    parser.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda:0 (default: best available)")
    parser.add_argument(
        "--max-upload-mb", type=_positive_float, default=20.0, help="largest accepted upload (default: %(default)s MB)"
    )
    parser.add_argument(
        "--max-pixels",
        type=_positive_int,
        default=4_000_000,
        help="largest accepted image (default: %(default)s pixels)",
    )
    parser.add_argument(
        "--queue-size",
        type=_positive_int,
        default=8,
        help="jobs that may wait behind the running one; more get 503 (default: %(default)s)",
    )
    parser.add_argument(
        "--keep-minutes",
        type=_positive_float,
        default=60.0,
        help="how long finished results stay downloadable (default: %(default)s)",
    )
    parser.add_argument(
        "--max-kept-mb",
        type=_positive_float,
        default=1024.0,
        help="total size of the results kept for download; the oldest are deleted past it (default: %(default)s MB)",
    )
    parser.add_argument(
        "--max-jobs-per-client",
        type=_positive_int,
        default=None,
        metavar="N",
        help="jobs one client address may have waiting or running; more get 429 (default: no limit on "
        f"loopback, {_REMOTE_JOBS_PER_CLIENT} when listening beyond it)",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a name clients reach this server by (as in http://NAME:PORT/), beside the --host address and "
        "localhost; requests naming any other host are refused (DNS rebinding); repeat for several",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV) or None,
        help=f"secret every request must carry (Authorization: Bearer TOKEN; the page: open /?token=TOKEN); "
        f"default: ${TOKEN_ENV}, else none on loopback and a random one, printed at start, beyond it",
    )
    parser.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    missing = [name for name in _SERVE_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise SrganError(f'srgan serve needs {", ".join(missing)}: pip install "srgan[serve]"')
    _check_can_listen(args.host, args.port)
    import uvicorn

    from srgan.serve.app import ServerSettings, create_app
    from srgan.serve.engine import UpscaleEngine

    engine = UpscaleEngine(args.model, device=args.device, max_pixels=args.max_pixels)
    local = args.host in _LOCAL_HOSTS
    token = args.token or (None if local else secrets.token_urlsafe(24))
    settings = ServerSettings(
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        max_pixels=args.max_pixels,
        queue_size=args.queue_size,
        result_ttl_s=args.keep_minutes * 60,
        max_kept_bytes=int(args.max_kept_mb * 1024 * 1024),
        max_jobs_per_client=args.max_jobs_per_client or (None if local else _REMOTE_JOBS_PER_CLIENT),
        allowed_hosts=allowed_hosts(args.host, args.allow_host),
        any_ip_host=args.host in _WILDCARD_HOSTS,
        token=token,
    )
    app = create_app(engine, settings)
    if not local:
        print(
            f"srgan: warning: listening on {args.host}: other machines can reach this server and use its CPU/GPU; "
            f"it answers requests for {', '.join(sorted(settings.allowed_hosts))}"
            f"{' and any IP address' if settings.any_ip_host else ''} (add names with --allow-host)",
            file=sys.stderr,
        )
    if token is not None and token != args.token:
        print(f"srgan: access token (random; choose one with --token or ${TOKEN_ENV}): {token}", file=sys.stderr)
    query = f"?token={token}" if token is not None and token != args.token else ""
    print(f"srgan: serving model {engine.default_model} on http://{args.host}:{args.port}/{query}", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def allowed_hosts(bound: str, names: list[str]) -> frozenset[str]:
    """Host names requests may give: loopback names, `names`, and the bound address, or for a wildcard
    bind this machine's own name (any IP address is then accepted too, see ServerSettings)."""
    given = {name.strip().lower().strip("[]") for name in names if name.strip()}
    if bound in _WILDCARD_HOSTS:
        own = {socket.gethostname().lower(), socket.getfqdn().lower()}
    else:
        own = {bound.lower().strip("[]")}
    return _LOCAL_HOSTS | own | given


def _check_can_listen(host: str, port: int) -> None:
    """Fail with one line before the model loads, rather than with uvicorn's log after it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            probe.bind((host, port))
    except OSError as error:
        reason = error.strerror or str(error)
        raise SrganError(f"cannot listen on {host}:{port} ({reason}); pick another --port or --host") from None


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"port {text} is out of range; use 1-65535")
    return value


def _positive_number(parse, kind: str):
    """An argparse `type` that parses with `parse` and accepts only finite values above 0."""

    def check(text: str):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind}") from None
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"{text} must be a positive {kind}")
        return value

    return check


_positive_int = _positive_number(int, "whole number")
_positive_float = _positive_number(float, "number")
