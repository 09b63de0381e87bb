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


# --- LPIPS weights (optional, for `--metric lpips`) --------------------------------------------

# The backbones are torchvision's ImageNet classifiers (file names carry their sha256 prefix); the
# v0.1 linear heads are those of the reference `lpips` package (Zhang et al., BSD-2-Clause).
_LPIPS_HEADS = "https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/lpips/weights/v0.1"
LPIPS_SOURCES = {
    "alex": (
        ("https://download.pytorch.org/models/alexnet-owt-7be5be79.pth", "7be5be79"),
        (f"{_LPIPS_HEADS}/alex.pth", "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0"),
    ),
    "vgg": (
        ("https://download.pytorch.org/models/vgg16-397923af.pth", "397923af"),
        (f"{_LPIPS_HEADS}/vgg.pth", "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868"),
    ),
}


def lpips_path(net: str) -> Path:
    """Where `fetch_lpips(net)` writes by default (and where `--metric lpips` looks)."""
    return cache_dir() / f"lpips_{net}_v0.1.safetensors"


def fetch_lpips(
    net: str,
    out_path: str | os.PathLike | None = None,
    *,
    backbone: tuple[str, str] | None = None,
    heads: tuple[str, str] | None = None,
    progress: bool | None = None,
) -> Path:
    """Download LPIPS-`net` (alex or vgg): the backbone's `features.*` and the v0.1 heads, each
    checksummed, into one safetensors file (`net` and both sources in its header). `backbone` and
    `heads` are (url, sha256) overrides. Nothing is left behind on failure."""
    from safetensors.torch import save_file

    from srgan.modelfiles.pth import read_state_dict
    from srgan.quality.lpips import LPIPS

    if net not in LPIPS_SOURCES:
        raise SrganError(f"LPIPS network {net!r}: unknown; choose from {', '.join(LPIPS_SOURCES)}")
    sources = (backbone or LPIPS_SOURCES[net][0], heads or LPIPS_SOURCES[net][1])
    out = Path(out_path) if out_path is not None else lpips_path(net)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = []
    try:
        parts, digests = [], []
        for (url, sha256), what in zip(sources, ("backbone", "heads")):
            handle, name = tempfile.mkstemp(prefix=f".{out.name}.{what}.", suffix=".pth", dir=out.parent)
            os.close(handle)
            temporary.append(Path(name))
            fetched = fetch(url, temporary[-1], sha256, progress=progress, desc=f"lpips {net} {what}")
            parts.append(read_state_dict(temporary[-1], shown_as=url))
            digests.append(fetched.sha256)
        state_dict = {key: value for key, value in parts[0].items() if key.startswith("features.")}
        # the reference package names its heads lin<k>.model.1.weight (a dropout sits at model.0)
        state_dict.update({f"heads.{key[3]}.weight": value for key, value in parts[1].items() if key.startswith("lin")})
        expected = LPIPS(net).state_dict()
        kept = {key: state_dict[key].float().contiguous() for key in expected if key in state_dict}
        missing = [key for key in expected if key not in kept or kept[key].shape != expected[key].shape]
        if missing:
            raise SrganError(f"{sources[0][0]}, {sources[1][0]}: do not hold LPIPS-{net} weights (missing or "
                             f"misshapen: {', '.join(missing[:3])}); check the URLs")
        metadata = {"format": "srgan-lpips", "net": net, "version": "0.1",
                    "backbone": f"{sources[0][0]} sha256 {digests[0]}", "heads": f"{sources[1][0]} sha256 {digests[1]}",
                    "license": "backbone: torchvision (BSD-3-Clause); heads: lpips (BSD-2-Clause)"}
        with atomic_write(out) as temp_path:
            save_file(kept, str(temp_path), metadata=metadata)
    finally:
        for path in temporary:
            path.unlink(missing_ok=True)
    return out
