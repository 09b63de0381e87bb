"""Optional downloads: a checksummed, atomic `fetch`, the cache folder, and torchvision's VGG19.

Nothing is downloaded implicitly: a command or function the user calls asks for it. Every download
streams to a temporary file next to its destination, is verified against a published sha256 and is
renamed into place only when it matches, so a failed or tampered download never leaves a file that
a later run could mistake for a good one.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from srgan.errors import SrganError
from srgan.fileutil import atomic_write

_CHUNK = 1 << 20


def cache_dir() -> Path:
    """Where downloaded and converted model files are kept: `$SRGAN_CACHE_DIR`, else `~/.cache/srgan`."""
    configured = os.environ.get("SRGAN_CACHE_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "srgan"


@dataclass(frozen=True)
class Fetched:
    """A verified download: where it is and its full sha256 (the expected value may be a prefix)."""

    path: Path
    sha256: str


def fetch(
    url: str,
    dest: str | os.PathLike,
    sha256: str,
    *,
    progress: bool | None = None,
    desc: str | None = None,
    timeout: float = 60.0,
) -> Fetched:
    """Download `url` to `dest` if its sha256 starts with `sha256` (a full hex digest or a prefix).

    Atomic: the bytes stream to a temporary file in `dest`'s folder, are fsynced and renamed over
    `dest` only after the checksum matched; on any failure nothing is left behind and an existing
    `dest` is untouched. `progress=None` shows a bar only on a terminal. SrganError names the URL.
    """
    from tqdm import tqdm

    expected = sha256.strip().lower()
    if not expected or any(char not in "0123456789abcdef" for char in expected) or len(expected) > 64:
        raise SrganError(f"{url}: expected sha256 {sha256!r} is not a hex digest or prefix of one; check it")
    out = Path(dest)
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".download", dir=out.parent)
    download = Path(temp_name)
    try:
        hasher = hashlib.sha256()
        with os.fdopen(handle, "wb") as sink:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    total = int(response.headers.get("Content-Length") or 0) or None
                    hide = None if progress is None else not progress
                    with tqdm(total=total, unit="B", unit_scale=True, desc=desc or out.name, disable=hide) as bar:
                        while chunk := response.read(_CHUNK):
                            hasher.update(chunk)
                            sink.write(chunk)
                            bar.update(len(chunk))
            except (urllib.error.URLError, OSError, ValueError) as error:
                raise SrganError(
                    f"{url}: download failed ({error}); check the network, or pass a mirror URL"
                ) from None
            sink.flush()
            os.fsync(sink.fileno())
        digest = hasher.hexdigest()
        if not digest.startswith(expected):
            raise SrganError(
                f"{url}: checksum mismatch (sha256 {digest[:16]}..., expected {expected[:16]}...); "
                "the download was discarded, try again or check the URL"
            )
        os.replace(download, out)
    finally:
        download.unlink(missing_ok=True)
    return Fetched(out, digest)


# --- torchvision's VGG19 (optional, for the perceptual loss) -----------------------------------

VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
# torchvision names each weight file after the first 8 hex digits of its sha256, so the file name
# is the published checksum; that prefix is what gets verified.
VGG19_SHA256_PREFIX = "dcbb9e9d"
VGG19_FILE_NAME = "vgg19_imagenet_torchvision.safetensors"
TORCHVISION_PREPROCESSING = (
    "torchvision: RGB, range 0-1, subtract mean R0.485 G0.456 B0.406, divide by std R0.229 G0.224 B0.225"
)


def fetch_vgg19(
    out_path: str | os.PathLike | None = None,
    *,
    url: str = VGG19_URL,
    expected_sha256: str = VGG19_SHA256_PREFIX,
    progress: bool | None = None,
) -> Path:
    """Download torchvision's VGG19 ImageNet weights, verify them, keep `features.*` as safetensors.

    The verified `.pth` is a temporary file next to the output, deleted afterwards; on any failure
    (network, checksum, content) no output is left behind. Returns the written path (default:
    `cache_dir()/VGG19_FILE_NAME`).
    """
    from safetensors.torch import save_file

    from srgan.modelfiles.pth import read_state_dict

    out = Path(out_path) if out_path is not None else cache_dir() / VGG19_FILE_NAME
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".pth", dir=out.parent)
    os.close(handle)
    download = Path(temp_name)
    try:
        fetched = fetch(url, download, expected_sha256, progress=progress, desc="vgg19")
        checkpoint = read_state_dict(download, shown_as=url)
        features = {key: tensor.contiguous() for key, tensor in checkpoint.items() if key.startswith("features.")}
        if not features:
            raise SrganError(f"{url}: the file holds no VGG `features.*` weights; is it a torchvision VGG19?")
        metadata = {
            "format": "srgan-vgg19",
            "source": f"torchvision VGG19 ImageNet weights, {url}",
            "sha256": fetched.sha256,
            "license": "CC BY 4.0 (VGG weights)",
            "layout": "torchvision vgg19().features indices",
            "convention": "torchvision",
            "preprocessing": TORCHVISION_PREPROCESSING,
        }
        with atomic_write(out) as temp_path:
            save_file(features, str(temp_path), metadata=metadata)
    finally:
        download.unlink(missing_ok=True)
    return out


# --- NIQE's pristine-image model (optional, for `srgan metrics niqe` and `--metric niqe`) ------

# BasicSR's conversion of the official modelparameters.mat (Mittal et al.), from its repository.
NIQE_PARAMS_URL = "https://raw.githubusercontent.com/XPixelGroup/BasicSR/master/basicsr/metrics/niqe_pris_params.npz"
NIQE_PARAMS_SHA256 = "2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296"
NIQE_PARAMS_FILE_NAME = "niqe_pris_params.npz"


def niqe_params_path() -> Path:
    """Where `fetch_niqe_params` puts the NIQE parameters by default (and where NIQE looks for them)."""
    return cache_dir() / NIQE_PARAMS_FILE_NAME


def fetch_niqe_params(
    out_path: str | os.PathLike | None = None,
    *,
    url: str = NIQE_PARAMS_URL,
    expected_sha256: str = NIQE_PARAMS_SHA256,
    progress: bool | None = None,
) -> Path:
    """Download NIQE's pristine-image model (`niqe_pris_params.npz`), checksummed; returns its path."""
    out = Path(out_path) if out_path is not None else niqe_params_path()
    return fetch(url, out, expected_sha256, progress=progress, desc="niqe params").path
