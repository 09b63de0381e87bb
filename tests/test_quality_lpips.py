"""LPIPS against distances the reference `lpips` package computed on the same weights
(tests/reference/lpips_reference.{py,json}), and its checksummed download from a local server."""

from __future__ import annotations

import functools
import hashlib
import http.server
import importlib.util
import json
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from srgan.cli import main
from srgan.downloads import fetch_lpips, lpips_path
from srgan.errors import SrganError
from srgan.quality.lpips import LPIPS, NETS, load_lpips, lpips

REFERENCE = Path(__file__).parent / "reference"
EXPECTED = json.loads((REFERENCE / "lpips_reference.json").read_text())


def _reference_rules():
    """The weight and image generation of the reference script (one copy of those rules)."""
    spec = importlib.util.spec_from_file_location("lpips_reference", REFERENCE / "lpips_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RULES = _reference_rules()


def _seeded_module(net: str, heads: list[torch.Tensor] | None = None) -> LPIPS:
    module = LPIPS(net)
    state_dict = module.state_dict()
    backbone = {key: tuple(value.shape) for key, value in state_dict.items() if key.startswith("features.")}
    generated = RULES.seeded_weights(backbone, seed=EXPECTED["nets"][net]["backbone_seed"])
    assert float(sum(t.double().sum() for t in generated.values())) == pytest.approx(
        EXPECTED["nets"][net]["backbone_checksum"], abs=1e-9)  # the generator gives the reference's numbers
    widths = [state_dict[f"heads.{k}.weight"].shape[1] for k in range(5)]
    for k, head in enumerate(heads if heads is not None else RULES.seeded_heads(widths, seed=11)):
        generated[f"heads.{k}.weight"] = head
    module.load_state_dict(generated)
    return module


@pytest.mark.parametrize("net", NETS)
def test_matches_the_reference_package_on_identical_weights(net):
    module = _seeded_module(net)
    cases = [case for case in EXPECTED["nets"][net]["cases"] if case["heads"] == "seeded"]
    assert len(cases) == 2
    for case in cases:
        x, y = RULES.seeded_images(case["image_seed"], tuple(case["shape"]))
        assert lpips(x, y, module).tolist() == pytest.approx(case["distances"], rel=1e-4, abs=1e-7)
        assert lpips(x, x, module).tolist() == case["identical"]


@pytest.mark.parametrize("net", NETS)
def test_matches_the_reference_with_its_real_heads_when_fetched(net):
    """The v0.1 heads are not in the repository: checked when `srgan models fetch-lpips` ran here."""
    from safetensors import safe_open

    path = lpips_path(net)
    if not path.is_file():
        pytest.skip(f"{path}: LPIPS-{net} not fetched on this machine (`srgan models fetch-lpips --net {net}`)")
    with safe_open(str(path), framework="pt") as handle:
        assert handle.metadata()["heads"].endswith(EXPECTED["nets"][net]["real_head_sha256"])
        heads = [handle.get_tensor(f"heads.{k}.weight") for k in range(5)]
    module = _seeded_module(net, heads)
    for case in (case for case in EXPECTED["nets"][net]["cases"] if case["heads"] == "v0.1"):
        x, y = RULES.seeded_images(case["image_seed"], tuple(case["shape"]))
        assert lpips(x, y, module).tolist() == pytest.approx(case["distances"], rel=1e-4, abs=1e-7)


def test_gray_and_crop_are_handled_and_more_noise_is_farther():
    module = _seeded_module("alex")
    x, y = RULES.seeded_images(1, (1, 3, 72, 72))
    near = (x + 0.5 * (y - x))
    assert lpips(near, x, module).item() < lpips(y, x, module).item()
    gray = x[:, :1]
    assert lpips(gray, gray * 0.9, module).item() == lpips(gray.expand(-1, 3, -1, -1), gray.expand(-1, 3, -1, -1) * 0.9,
                                                             module).item()
    assert lpips(y, x, module, crop_border=4).item() == lpips(y[..., 4:-4, 4:-4], x[..., 4:-4, 4:-4], module).item()


@pytest.fixture
def served(tmp_path):
    """Fake torchvision AlexNet and head files of the right shapes on 127.0.0.1: (urls, sha256s, tensors)."""
    root = tmp_path / "served"
    root.mkdir()
    module = _seeded_module("alex")
    state = module.state_dict()
    backbone = {key: value for key, value in state.items() if key.startswith("features.")}
    backbone["classifier.1.weight"] = torch.zeros(2, 2)
    heads = {f"lin{k}.model.1.weight": state[f"heads.{k}.weight"] for k in range(5)}
    torch.save(backbone, root / "alexnet-fake.pth")
    torch.save(heads, root / "alex-heads.pth")
    digests = {name: hashlib.sha256((root / name).read_bytes()).hexdigest() for name in ("alexnet-fake.pth", "alex-heads.pth")}

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield base, digests, state
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_converts_verified_files_into_one_loadable_file(served, tmp_path, monkeypatch, capsys):
    base, digests, state = served
    monkeypatch.setenv("SRGAN_CACHE_DIR", str(tmp_path / "cache"))

    code = main(["models", "fetch-lpips", "--net", "alex",
                 "--backbone-url", f"{base}/alexnet-fake.pth", "--backbone-sha256", digests["alexnet-fake.pth"][:8],
                 "--heads-url", f"{base}/alex-heads.pth", "--heads-sha256", digests["alex-heads.pth"]])

    assert code == 0 and "LPIPS-alex" in capsys.readouterr().out
    loaded = load_lpips(tmp_path / "cache" / "lpips_alex_v0.1.safetensors")
    assert all(torch.equal(loaded.state_dict()[key], value) for key, value in state.items())
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["lpips_alex_v0.1.safetensors"]


def test_fetch_with_a_wrong_checksum_or_wrong_network_leaves_nothing(served, tmp_path):
    base, digests, _ = served
    out = tmp_path / "out" / "l.safetensors"
    with pytest.raises(SrganError, match="checksum mismatch"):
        fetch_lpips("alex", out, backbone=(f"{base}/alexnet-fake.pth", "0" * 64),
                    heads=(f"{base}/alex-heads.pth", digests["alex-heads.pth"]), progress=False)
    with pytest.raises(SrganError, match="do not hold LPIPS-vgg weights"):
        fetch_lpips("vgg", out, backbone=(f"{base}/alexnet-fake.pth", digests["alexnet-fake.pth"]),
                    heads=(f"{base}/alex-heads.pth", digests["alex-heads.pth"]), progress=False)
    assert list(out.parent.iterdir()) == []


def test_missing_or_foreign_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(SrganError, match="LPIPS weights not found; run `srgan models fetch-lpips`"):
        load_lpips(tmp_path / "none.safetensors")
    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(SrganError, match="header names no LPIPS network"):
        load_lpips(tmp_path / "other.safetensors")
