"""Every catalogue entry's claims (scale, channels, parameter count, architecture, and the sizes its
description states) hold for the network it builds or the weights it names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from srgan import catalogue
from srgan.models import list_models, load_model

ENTRIES = catalogue.entries()

# description wording -> the architecture it names
ARCH_WORDS = {"rrdbnet": r"\bRRDB", "srvgg_compact": r"\bSRVGGNetCompact", "edsr": r"\bEDSR",
              "srresnet": r"\bSRResNet", "msrresnet": r"\bMSRResNet", "wdrn": r"\bWDRN"}
# sizes descriptions state -> the builder arguments they must equal
SIZE_CLAIMS = [
    (r"\bx(\d+)\b", "scale"),
    (r"(\d+) (?:blocks|RRDB)\b", "num_blocks"),
    (r"(\d+) blocks x (\d+)(?! layers)\b", ("num_blocks", "num_features")),
    (r"x (\d+) layers", "num_layers"),
    (r"\bnf (\d+)", "num_features"),
    (r"\bgc (\d+)", "growth_channels"),
    (r"(\d+) features", "num_features"),
    (r"(\d+) convs", "num_convs"),
    (r"SRVGGNetCompact (\d+)x(\d+)\b", ("num_convs", "num_features")),
]


def stated_sizes(description: str) -> list[tuple[str, int]]:
    stated = []
    for pattern, keys in SIZE_CLAIMS:
        for match in re.finditer(pattern, description):
            names = keys if isinstance(keys, tuple) else (keys,)
            stated += [(name, int(value)) for name, value in zip(names, match.groups())]
    return stated


def weights_of(entry: catalogue.Entry) -> dict[str, torch.Tensor] | None:
    """The state dict an entry with weights names (embedded or user file, the pretrained package's files)."""
    from srgan.modelfiles import read

    if entry.kind in (catalogue.EMBEDDED, catalogue.USER):
        model_file = read(entry.path)
        assert model_file.spec == entry.spec, "the entry's spec is its file's"
        return model_file.state_dict
    if entry.kind == catalogue.PRETRAINED_KIND:
        if not entry.available:
            return None
        from srgan.modelfiles.ncnn import convert_ncnn
        from srgan.models import _pretrained_ncnn_files

        spec, state_dict = convert_ncnn(*_pretrained_ncnn_files(entry))
        assert spec == entry.spec, "the catalogued network is the one the published files hold"
        return state_dict
    return None


@pytest.mark.parametrize("name", [name for name, entry in ENTRIES.items() if entry.spec is not None])
def test_entry_claims_hold_for_the_built_network(name):
    entry = ENTRIES[name]
    spec = entry.spec
    assert entry.tags >= {entry.kind, spec.arch, f"x{entry.scale}"} and entry.scale == spec.scale
    named = {arch for arch, words in ARCH_WORDS.items() if re.search(words, entry.description)}
    assert named <= {spec.arch}, "an architecture the description names is the entry's"
    for key, value in stated_sizes(entry.description):
        assert spec.kwargs[key] == value, f"description says {key} {value}"

    # the meta device runs shapes only: even the 43M-parameter presets cost nothing
    with torch.device("meta"):
        module = spec.build()
        out = module(torch.empty(1, spec.in_channels, 8, 6))
    assert out.shape == (1, spec.out_channels, 8 * spec.scale, 6 * spec.scale)
    assert module.scale == spec.scale
    count = sum(parameter.numel() for parameter in module.parameters())
    if entry.num_params is not None:
        assert count == entry.num_params
    if (millions := re.search(r"([\d.]+)M parameters", entry.description)) is not None:
        assert round(count / 1e6, 1) == float(millions.group(1))

    state_dict = weights_of(entry)
    if state_dict is not None:
        assert {key: tuple(t.shape) for key, t in state_dict.items()} == {
            key: tuple(t.shape) for key, t in module.state_dict().items()
        }, "the weights fit the catalogued network"
    assert entry.has_weights == (entry.kind in (catalogue.EMBEDDED, catalogue.PRETRAINED_KIND, catalogue.USER))


def test_bicubic_entry_and_the_lists_read_the_catalogue():
    bicubic = ENTRIES[catalogue.BICUBIC]
    assert bicubic.spec is None and load_model(catalogue.BICUBIC).scale == bicubic.scale
    assert list_models() == sorted(name for name, entry in ENTRIES.items() if entry.kind == catalogue.PRESET)
    loadable = list_models(weights=True)
    assert loadable == [name for name, entry in ENTRIES.items() if entry.kind != catalogue.PRESET]
    assert set(list_models(available=True)) == {name for name in loadable if ENTRIES[name].available}


def test_stated_sizes_reads_every_wording():
    assert stated_sizes("SRResNet x4, 16 blocks x 64, BN") == [("scale", 4), ("num_blocks", 16), ("num_blocks", 16),
                                                               ("num_features", 64)]
    assert ("num_layers", 4) in stated_sizes("WDRN x4, 8 blocks x 4 layers, nf 64")
    assert ("num_features", 4) not in stated_sizes("WDRN x4, 8 blocks x 4 layers, nf 64")


DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_the_docs_name_every_named_model_and_state_what_the_catalogue_says():
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    shipped = (DOCS / "models" / "README.md").read_text(encoding="utf-8")
    for name, entry in ENTRIES.items():
        if not entry.has_weights:
            continue
        assert f"`{name}`" in readme, f"README does not name {name}"
        if entry.kind != catalogue.EMBEDDED:
            continue
        row = next(line for line in shipped.splitlines() if line.startswith(f"| `{name}`"))
        assert (DOCS / "models" / f"{name}.md").is_file()
        # "SRVGGNetCompact 16 × 48, 355 k parameters": convs x features, and the count, of the shipped file
        if (size := re.search(r"SRVGGNetCompact (\d+) × (\d+), (\d+) k parameters", row)) is not None:
            assert (entry.spec.kwargs["num_convs"], entry.spec.kwargs["num_features"]) == tuple(map(int, size.groups()[:2]))
            count = sum(parameter.numel() for parameter in entry.spec.build().parameters())
            assert round(count / 1000) == int(size.group(3))


def test_user_model_files_are_named_models(tmp_path, monkeypatch, capsys):
    from srgan.archs.spec import NetworkSpec
    from srgan.cli import main
    from srgan.modelfiles import from_module, write

    monkeypatch.setenv("SRGAN_MODELS_DIR", str(tmp_path / "mine"))
    spec = NetworkSpec("srvgg_compact", {"num_features": 4, "num_convs": 1, "scale": 2})
    module = spec.build().eval()
    write(tmp_path / "mine" / "holiday.safetensors", from_module(module, spec, {"description": "our holiday photos"}))
    write(tmp_path / "mine" / "holiday-basicsr.pth", from_module(module, spec))
    (tmp_path / "mine" / "broken.pth").write_bytes(b"not a pickle")
    write(tmp_path / "mine" / "compact-psnr-x4.safetensors", from_module(module, spec))  # shadowed, said

    listed = catalogue.entries(tag=catalogue.USER)
    assert list(listed) == ["holiday-basicsr", "holiday"]
    assert listed["holiday"].spec == spec and listed["holiday"].description == "our holiday photos"
    assert listed["holiday"].tags >= {"weights", "available", "x2", "srvgg_compact"}
    assert {"holiday", "holiday-basicsr"} <= set(list_models(weights=True))

    loaded = load_model("holiday")
    image = torch.rand(1, 3, 5, 4)
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(image), module(image))
    assert (loaded.name, loaded.scale) == ("holiday", 2)

    assert load_model("compact-psnr-x4").scale == 4, "srgan's own model keeps its name"

    # as in a new process: files are read, and a broken or shadowed one reported, once
    catalogue._user_entry.cache_clear()
    catalogue._say_shadowed.cache_clear()
    assert main(["models"]) == 0
    captured = capsys.readouterr()
    assert any(line.split()[:3] == ["holiday", "user", "srvgg_compact"] for line in captured.out.splitlines())
    broken, shadowed = captured.err.splitlines()
    assert broken.startswith("srgan: warning: ") and "broken.pth: not a readable PyTorch file" in broken
    assert shadowed.startswith("srgan: warning: ")
    assert "compact-psnr-x4.safetensors: named like srgan's embedded model 'compact-psnr-x4'" in shadowed
