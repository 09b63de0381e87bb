"""Every recipe's quick preset learns: trained on a few photos it ends above bicubic on Set5.

The quick presets are what a newcomer runs first; one that trains to below bicubic looks broken.
Each test trains the recipe's quick preset as it is (networks, patch size, batch, learning rates,
warm-up) on 12 crops of the shared photos instead of the whole prepared set (no preparation pass),
with the GAN recipes' adversarial phase cut to a few iterations, and asserts that the validation
PSNR after the last iteration beats bicubic's on the same images (Set5, scored as `srgan eval`).
Shortening a schedule moves its milestones with it (proportionally).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_train_loop import _one_thread  # noqa: F401  (autouse fixture: one thread)

from srgan.train.config import load_config
from srgan.train.monitor import read_metrics
from srgan.train.trainer import train

REPO_ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((REPO_ROOT / "configs").glob("*.yaml"))
TRAIN_CROPS = 12
# adversarial iterations kept after a GAN preset's pixel warm-up
ADVERSARIAL_ITERATIONS = 10


@pytest.fixture(scope="module")
def train_crops(shared_dir, tmp_path_factory) -> Path:
    """192 px centre crops of the first clean photos (cq100 PNGs, no JPEG artefacts)."""
    from srgan.imageio import read_image, write_image

    folder = tmp_path_factory.mktemp("crops")
    for path in sorted((shared_dir / "data" / "train" / "cq100").glob("*.png"))[:TRAIN_CROPS]:
        pixels = read_image(path).to_tensor()
        top, left = (pixels.shape[1] - 192) // 2, (pixels.shape[2] - 192) // 2
        write_image(folder / path.name, pixels[:3, top : top + 192, left : left + 192])
    return folder


@pytest.fixture(scope="module")
def bicubic_set5(shared_dir) -> float:
    from srgan.evaluate import evaluate_models

    report = evaluate_models([], [shared_dir / "data" / "bench" / "Set5"], 4)
    return report.means()[0].psnr


def _shrunk(recipe: Path, train_dir: Path, val_dir: Path) -> list[str]:
    quick = load_config(recipe, ["preset=quick"])
    overrides = ["preset=quick", f"data.train_dirs=[{train_dir}]", "data.prepare=false", f"data.val_dir={val_dir}",
                 "data.val_lr_dir=null", "log.progress=off", "log.tensorboard=off", "log.plots=false",
                 "log.sample_images=0"]
    iterations = quick.train.iterations
    warmup = quick.train.pixel_warmup_iterations
    if quick.discriminator is not None and warmup:
        iterations = warmup + ADVERSARIAL_ITERATIONS
        milestones = [m if m <= warmup else warmup + (m - warmup) * ADVERSARIAL_ITERATIONS // (quick.train.iterations - warmup)
                      for m in quick.schedule.milestones]
        overrides.append(f"schedule.milestones={milestones}")
    return overrides + [f"train.iterations={iterations}", f"log.val_every={iterations}",
                        f"checkpoint.every={iterations}", f"log.every={iterations}"]


@pytest.mark.parametrize("recipe", RECIPES, ids=[path.stem for path in RECIPES])
def test_quick_preset_ends_above_bicubic(recipe, shared_dir, train_crops, bicubic_set5, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)  # the recipes' VGG weights are ../shared paths relative to the repo root
    config = load_config(recipe, _shrunk(recipe, train_crops, shared_dir / "data" / "bench" / "Set5"))
    run_dir = train(config, tmp_path / "run")
    final = [record for record in read_metrics(run_dir) if record["kind"] == "val"][-1]
    assert final["iteration"] == config.train.iterations
    assert final["psnr"] > bicubic_set5, f"{recipe.stem} quick: {final['psnr']:.2f} dB, bicubic {bicubic_set5:.2f} dB"
