"""The README's first command: the embedded default model against bicubic on the bundled photo."""

from importlib import resources
from pathlib import Path

from PIL import Image

from srgan.cli import main
from srgan.evaluate import evaluate_models
from srgan.models import DEFAULT_MODEL, load_model


def test_default_model_is_embedded_and_beats_bicubic_on_the_bundled_photo():
    model = load_model(DEFAULT_MODEL)
    assert model.scale == 4 and model.metadata.get("source") == "srgan train"
    samples = Path(str(resources.files("srgan") / "assets" / "samples"))
    report = evaluate_models([model], [samples], 4)
    ours = report.mean_of("samples", DEFAULT_MODEL).psnr
    bicubic = report.mean_of("samples", "bicubic").psnr
    assert ours > bicubic + 0.5


def test_demo_writes_the_comparison_figure(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path)]) == 0
    figure = tmp_path / "samples" / "coffee.png"
    assert str(figure.resolve()) in capsys.readouterr().out
    with Image.open(figure) as image:
        assert image.width > 3 * image.height  # LR / bicubic / model / HR side by side
