"""Training losses: pixel, perceptual and style (VGG19 features), adversarial (vanilla, RaGAN, LSGAN, hinge,
WGAN-GP), total variation.

Inputs are images as everywhere in srgan (float RGB in [0, 1], NCHW) or discriminator logits (N, 1).
Each loss returns a scalar tensor; weighting the terms against each other is the trainer's job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from srgan.archs.vgg import VGGFeatureExtractor
from srgan.errors import SrganError

# SRGAN (Ledig et al. 2017, section 3.2) divides VGG feature maps by 12.75, which scales the MSE by
# about 0.006 and brings it to the size of the pixel loss
SRGAN_FEATURE_RESCALE = 1 / 12.75

_CRITERIA = {"l1": F.l1_loss, "mse": F.mse_loss}


def _criterion(kind: str, what: str):
    if kind not in _CRITERIA:
        raise SrganError(f"{what}: unknown criterion {kind!r}; use 'l1' or 'mse'")
    return _CRITERIA[kind]


class PixelLoss(nn.Module):
    """Mean absolute ("l1", EDSR/ESRGAN) or squared ("mse", SRResNet) error between SR and HR."""

    def __init__(self, kind: str = "l1"):
        super().__init__()
        self.kind = kind
        self._loss = _criterion(kind, "pixel loss")

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        return self._loss(sr, hr)


class PerceptualLoss(nn.Module):
    """Distance between VGG19 feature maps of SR and HR.

    `layers`: one layer name, several (equal weights), or a {layer: weight} mapping; see
    `srgan.archs.vgg` for names (SRGAN: "vgg54" = relu5_4 with MSE and `rescale=SRGAN_FEATURE_RESCALE`;
    ESRGAN: "conv5_4", before the activation, with L1). `convention` must match the weights file
    ("torchvision" or "caffe"). Both feature maps are multiplied by `rescale` before the criterion.
    """

    def __init__(
        self,
        layers: str | Sequence[str] | Mapping[str, float],
        weights_path: str | Path,
        convention: str = "torchvision",
        rescale: float = 1.0,
        criterion: str = "mse",
    ):
        super().__init__()
        if isinstance(layers, str):
            layers = [layers]
        self.layer_weights = dict(layers) if isinstance(layers, Mapping) else dict.fromkeys(layers, 1.0)
        self.rescale = rescale
        self._criterion = _criterion(criterion, "perceptual loss")
        self.extractor = VGGFeatureExtractor(list(self.layer_weights), weights_path, convention)

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        return self.with_style(sr, hr, style=False)[0]

    def with_style(self, sr: Tensor, hr: Tensor, *, style: bool = True) -> tuple[Tensor, Tensor | None]:
        """(perceptual loss, style loss) from one VGG pass; the style loss compares the layers' Gram
        matrices (channel correlations, divided by C*H*W as BasicSR does) with the same criterion and
        layer weights; None when `style` is false."""
        sr_features = self.extractor(sr)
        with torch.no_grad():  # HR is the target: no gradient, no stored activations
            hr_features = self.extractor(hr)
        pairs = [(weight, sr_features[name] * self.rescale, hr_features[name] * self.rescale)
                 for name, weight in self.layer_weights.items()]
        perceptual = sum(weight * self._criterion(sr_map, hr_map) for weight, sr_map, hr_map in pairs)
        if not style:
            return perceptual, None
        return perceptual, sum(weight * self._criterion(gram_matrix(sr_map), gram_matrix(hr_map))
                               for weight, sr_map, hr_map in pairs)


def gram_matrix(features: Tensor) -> Tensor:
    """(N, C, H, W) -> (N, C, C) channel correlations divided by C*H*W."""
    batch, channels, height, width = features.shape
    flat = features.reshape(batch, channels, height * width)
    return flat @ flat.transpose(1, 2) / (channels * height * width)


def _bce(logits: Tensor, target_is_real: bool) -> Tensor:
    target = torch.ones_like(logits) if target_is_real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


class AdversarialLoss:
    """GAN objectives on discriminator logits.

    - "vanilla" (SRGAN): D minimises BCE on real -> 1, fake -> 0; G the non-saturating -log D(G(z)).
    - "ragan" (ESRGAN): relativistic average GAN, D_Ra(a, b) = sigmoid(C(a) - mean C(b)); D pushes
      D_Ra(real, fake) -> 1 and D_Ra(fake, real) -> 0, G the opposite, and both terms are averaged
      as in the ESRGAN code, so its weight 5e-3 applies unchanged. G needs the real logits too.
    - "lsgan" (Mao et al. 2017): least squares, D pushes D(real) -> 1 and D(fake) -> 0, G pushes
      D(fake) -> 1.
    - "hinge" (Lim & Ye 2017; SAGAN): D minimises relu(1 - D(real)) + relu(1 + D(fake)), G -mean D(fake).
    - "wgan_gp": Wasserstein critic, D minimises mean C(fake) - mean C(real), G minimises
      -mean C(fake); add `gradient_penalty` to the critic loss (and build the critic without BatchNorm).

    Discriminator losses average their real and fake terms. Only "vanilla" and "ragan" read the
    outputs as logits of a probability (`RAW_SCORE_KINDS` are the others).
    """

    KINDS = ("vanilla", "ragan", "lsgan", "hinge", "wgan_gp")
    RAW_SCORE_KINDS = ("lsgan", "hinge", "wgan_gp")

    def __init__(self, kind: str = "vanilla"):
        if kind not in self.KINDS:
            raise SrganError(f"adversarial loss: unknown kind {kind!r}; use one of {', '.join(self.KINDS)}")
        self.kind = kind

    def discriminator_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """Loss for the discriminator step; `fake_logits` come from D(G(lr).detach())."""
        if self.kind == "vanilla":
            return 0.5 * (_bce(real_logits, True) + _bce(fake_logits, False))
        if self.kind == "ragan":
            return 0.5 * (_bce(real_logits - fake_logits.mean(), True) + _bce(fake_logits - real_logits.mean(), False))
        if self.kind == "lsgan":
            return 0.5 * ((real_logits - 1).pow(2).mean() + fake_logits.pow(2).mean())
        if self.kind == "hinge":
            return 0.5 * (F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean())
        return fake_logits.mean() - real_logits.mean()

    def generator_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        """Loss for the generator step; `real_logits` (D(hr)) are required for "ragan" only."""
        if self.kind == "vanilla":
            return _bce(fake_logits, True)
        if self.kind == "ragan":
            if real_logits is None:
                raise ValueError("the RaGAN generator loss needs the discriminator's logits on real images")
            # D(hr) does not depend on G: no gradient needed through it
            real_logits = real_logits.detach()
            return 0.5 * (_bce(real_logits - fake_logits.mean(), False) + _bce(fake_logits - real_logits.mean(), True))
        if self.kind == "lsgan":
            return (fake_logits - 1).pow(2).mean()
        return -fake_logits.mean()


def gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP penalty (Gulrajani et al. 2017): mean over the batch of (||grad C(x_mix)||_2 - 1)^2.

    x_mix mixes each real/fake pair with its own uniform weight. The result keeps its graph so the
    critic can be trained on it; the caller multiplies it by the penalty weight (10 in the paper).
    A critic with BatchNorm in training mode is refused: it mixes the samples of the batch, so the
    per-sample gradient the penalty constrains does not exist.
    """
    if critic.training and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in critic.modules()):
        raise SrganError(
            "gradient penalty: the critic has BatchNorm layers, which WGAN-GP cannot use; "
            "build the discriminator with norm='none'"
        )
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    (gradients,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return ((gradients.flatten(1).norm(dim=1) - 1) ** 2).mean()


def tv_loss(x: Tensor) -> Tensor:
    """Total variation: mean squared difference of vertical plus of horizontal neighbours."""
    vertical = (x[..., 1:, :] - x[..., :-1, :]).pow(2).mean()
    horizontal = (x[..., :, 1:] - x[..., :, :-1]).pow(2).mean()
    return vertical + horizontal
