"""Losses on tiny tensors with hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from srgan.archs.vgg import VGGFeatureExtractor
from srgan.errors import SrganError
from srgan.losses import (
    SRGAN_FEATURE_RESCALE,
    AdversarialLoss,
    PerceptualLoss,
    PixelLoss,
    gradient_penalty,
    tv_loss,
)


def softplus(x: float) -> float:
    """-log(sigmoid(-x)) = log(1 + e^x), written out for the reference values."""
    return math.log1p(math.exp(x))


def test_pixel_loss_values():
    sr = torch.zeros(1, 1, 2, 2)
    hr = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    assert PixelLoss("l1")(sr, hr).item() == pytest.approx(2.5)
    assert PixelLoss("mse")(sr, hr).item() == pytest.approx(7.5)
    with pytest.raises(SrganError, match="pixel loss: unknown criterion 'l3'"):
        PixelLoss("l3")


def test_vanilla_gan_losses():
    loss = AdversarialLoss("vanilla")
    even = torch.zeros(3, 1)
    assert loss.discriminator_loss(even, even).item() == pytest.approx(math.log(2))
    real, fake = torch.tensor([[2.0]]), torch.tensor([[-1.0]])
    # D: -log sigmoid(2) and -log(1 - sigmoid(-1)), averaged
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(0.5 * (softplus(-2) + softplus(-1)))
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(0.2200948, abs=1e-6)
    # G, non-saturating: -log sigmoid(-1)
    assert loss.generator_loss(fake).item() == pytest.approx(1.3132617, abs=1e-6)


def test_ragan_losses():
    loss = AdversarialLoss("ragan")
    real = torch.tensor([[1.0], [3.0]])  # mean 2
    fake = torch.tensor([[0.0], [2.0]])  # mean 1
    # real - mean(fake) = [0, 2]; fake - mean(real) = [-2, 0]
    d_expected = 0.5 * (
        (softplus(-0.0) + softplus(-2.0)) / 2  # -log sigmoid([0, 2])
        + (softplus(-2.0) + softplus(0.0)) / 2  # -log(1 - sigmoid([-2, 0]))
    )
    g_expected = 0.5 * (
        (softplus(0.0) + softplus(2.0)) / 2  # -log(1 - sigmoid([0, 2]))
        + (softplus(2.0) + softplus(-0.0)) / 2  # -log sigmoid([-2, 0])
    )
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(d_expected)
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(0.4100377, abs=1e-6)
    assert loss.generator_loss(fake, real).item() == pytest.approx(g_expected)
    assert loss.generator_loss(fake, real).item() == pytest.approx(1.4100377, abs=1e-6)


def test_ragan_generator_gradient_reaches_fake_logits_only():
    loss = AdversarialLoss("ragan")
    real = torch.tensor([[1.0], [3.0]], requires_grad=True)
    fake = torch.tensor([[0.0], [2.0]], requires_grad=True)
    loss.generator_loss(fake, real).backward()
    assert real.grad is None
    assert fake.grad is not None and (fake.grad < 0).all()  # G wants higher fake logits
    with pytest.raises(ValueError, match="needs the discriminator's logits on real images"):
        loss.generator_loss(fake)


def test_wgan_losses():
    loss = AdversarialLoss("wgan_gp")
    real = torch.tensor([[1.0], [3.0]])
    fake = torch.tensor([[0.0], [2.0]])
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(-1.0)
    assert loss.generator_loss(fake).item() == pytest.approx(-1.0)


def test_lsgan_losses():
    loss = AdversarialLoss("lsgan")
    real = torch.tensor([[1.0], [3.0]])
    fake = torch.tensor([[0.0], [2.0]])
    # D: 0.5 * (mean((real - 1)^2) + mean(fake^2)) = 0.5 * (2 + 2); G: mean((fake - 1)^2) = 1
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(2.0)
    assert loss.generator_loss(fake).item() == pytest.approx(1.0)


def test_hinge_losses():
    loss = AdversarialLoss("hinge")
    real = torch.tensor([[0.5], [3.0]])
    fake = torch.tensor([[-2.0], [0.0]])
    # D: 0.5 * (mean(relu(1 - real)) + mean(relu(1 + fake))) = 0.5 * (0.25 + 0.5); G: -mean(fake) = 1
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(0.375)
    assert loss.generator_loss(fake).item() == pytest.approx(1.0)


def test_unknown_adversarial_kind():
    with pytest.raises(SrganError, match="unknown kind 'lsgn'; use one of vanilla, ragan, lsgan, hinge, wgan_gp"):
        AdversarialLoss("lsgn")


class LinearCritic(torch.nn.Module):
    """C(x) = <w, x> per sample: its input gradient is w everywhere."""

    def __init__(self, norm: float):
        super().__init__()
        weight = torch.randn(3, 4, 4)
        self.weight = torch.nn.Parameter(norm * weight / weight.norm())

    def forward(self, x):
        return (x * self.weight).flatten(1).sum(1, keepdim=True)


@pytest.mark.parametrize(("norm", "expected"), [(1.0, 0.0), (2.0, 1.0), (0.5, 0.25)])
def test_gradient_penalty_of_linear_critics(norm, expected):
    real, fake = torch.rand(5, 3, 4, 4), torch.rand(5, 3, 4, 4)
    penalty = gradient_penalty(LinearCritic(norm), real, fake)
    assert penalty.item() == pytest.approx(expected, abs=1e-6)


def test_gradient_penalty_trains_the_critic():
    critic = LinearCritic(2.0)
    gradient_penalty(critic, torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)).backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w|| = w at ||w|| = 2
    torch.testing.assert_close(critic.weight.grad, critic.weight.detach())


def test_gradient_penalty_refuses_a_batchnorm_critic():
    critic = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.BatchNorm2d(2))
    with pytest.raises(SrganError, match="gradient penalty: the critic has BatchNorm layers.*norm='none'"):
        gradient_penalty(critic, torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4))


def test_tv_loss_values():
    assert tv_loss(torch.full((1, 3, 4, 4), 0.7)).item() == 0.0
    x = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    # vertical differences 2, 2 -> 4; horizontal 1, 1 -> 1
    assert tv_loss(x).item() == pytest.approx(5.0)


@pytest.fixture
def vgg_block1(tmp_path):
    """Random weights for VGG19's first two convs (relu1_1, relu1_2)."""
    path = tmp_path / "vgg_block1.safetensors"
    save_file(
        {
            "features.0.weight": 0.2 * torch.randn(64, 3, 3, 3),
            "features.0.bias": 0.1 * torch.randn(64),
            "features.2.weight": 0.05 * torch.randn(64, 64, 3, 3),
            "features.2.bias": 0.1 * torch.randn(64),
        },
        str(path),
    )
    return path


def test_perceptual_loss_compares_vgg_features(vgg_block1):
    sr, hr = torch.rand(2, 3, 8, 8, requires_grad=True), torch.rand(2, 3, 8, 8)
    loss = PerceptualLoss("relu1_2", vgg_block1, convention="caffe", criterion="mse")
    extractor = VGGFeatureExtractor("relu1_2", vgg_block1, convention="caffe")
    expected = F.mse_loss(extractor(sr)["relu1_2"], extractor(hr)["relu1_2"])
    value = loss(sr, hr)
    torch.testing.assert_close(value, expected)
    assert value.item() > 0
    assert loss(hr, hr).item() == 0.0
    value.backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0


@pytest.mark.parametrize(("criterion", "factor"), [("mse", SRGAN_FEATURE_RESCALE**2), ("l1", SRGAN_FEATURE_RESCALE)])
def test_perceptual_loss_rescale(vgg_block1, criterion, factor):
    sr, hr = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    plain = PerceptualLoss("relu1_1", vgg_block1, criterion=criterion)(sr, hr)
    scaled = PerceptualLoss("relu1_1", vgg_block1, criterion=criterion, rescale=SRGAN_FEATURE_RESCALE)(sr, hr)
    assert scaled.item() == pytest.approx(plain.item() * factor, rel=1e-5)


def test_perceptual_loss_weights_several_layers(vgg_block1):
    sr, hr = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    first = PerceptualLoss("relu1_1", vgg_block1, criterion="l1")(sr, hr)
    second = PerceptualLoss("relu1_2", vgg_block1, criterion="l1")(sr, hr)
    both = PerceptualLoss({"relu1_1": 0.25, "relu1_2": 2.0}, vgg_block1, criterion="l1")(sr, hr)
    assert both.item() == pytest.approx(0.25 * first.item() + 2.0 * second.item(), rel=1e-5)
    equal = PerceptualLoss(["relu1_1", "relu1_2"], vgg_block1, criterion="l1")(sr, hr)
    assert equal.item() == pytest.approx(first.item() + second.item(), rel=1e-5)


def test_perceptual_loss_errors(vgg_block1):
    with pytest.raises(SrganError, match="perceptual loss: unknown criterion 'huber'"):
        PerceptualLoss("relu1_1", vgg_block1, criterion="huber")
    with pytest.raises(SrganError, match="no weights for VGG19 layer conv2_1"):
        PerceptualLoss("vgg22", vgg_block1)


def test_style_loss_compares_gram_matrices_with_the_layer_weights(vgg_block1):
    from srgan.losses import gram_matrix

    sr, hr = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    loss = PerceptualLoss({"relu1_1": 0.5, "relu1_2": 2.0}, vgg_block1, convention="caffe", criterion="l1")
    perceptual, style = loss.with_style(sr, hr)
    assert perceptual.item() == pytest.approx(loss(sr, hr).item(), rel=1e-6)
    features = VGGFeatureExtractor(["relu1_1", "relu1_2"], vgg_block1, convention="caffe")
    sr_maps, hr_maps = features(sr), features(hr)
    expected = sum(weight * F.l1_loss(gram_matrix(sr_maps[name]), gram_matrix(hr_maps[name]))
                   for name, weight in (("relu1_1", 0.5), ("relu1_2", 2.0)))
    assert style.item() == pytest.approx(expected.item(), rel=1e-5) and style.item() > 0
    assert loss.with_style(sr, hr, style=False)[1] is None
    # channel correlations / (C*H*W), blind to where in the image they occur
    torch.testing.assert_close(gram_matrix(torch.ones(1, 2, 3, 3)), torch.full((1, 2, 2), 9 / 18))
    maps = torch.rand(2, 4, 5, 5)
    shuffled = maps.flatten(2)[..., torch.randperm(25)].reshape(maps.shape)
    torch.testing.assert_close(gram_matrix(shuffled), gram_matrix(maps))
