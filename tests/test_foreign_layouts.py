"""Widely shared foreign `.pth` files load with the outputs of the networks that published them, and
srgan-written `.pth` files load back into those networks. The reference modules below are written
here from the published key layouts (xinntao/ESRGAN's RRDB_arch; BasicSR's RRDBNet, SRVGGNetCompact,
EDSR and MSRResNet), independently of srgan's own architecture code."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from srgan.errors import SrganError
from srgan.models import export_model, load_model


def conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, 1, 1)


# --- xinntao/ESRGAN (2018): one nn.Sequential, RRDBs inside a ShortcutBlock ----------------------


class DenseBlock5C(nn.Module):
    def __init__(self, nf: int, gc: int):
        super().__init__()
        act = lambda: nn.LeakyReLU(0.2)  # noqa: E731
        self.conv1 = nn.Sequential(conv(nf, gc), act())
        self.conv2 = nn.Sequential(conv(nf + gc, gc), act())
        self.conv3 = nn.Sequential(conv(nf + 2 * gc, gc), act())
        self.conv4 = nn.Sequential(conv(nf + 3 * gc, gc), act())
        self.conv5 = nn.Sequential(conv(nf + 4 * gc, nf))

    def forward(self, x):
        x1 = self.conv1(x)
        x2 = self.conv2(torch.cat((x, x1), 1))
        x3 = self.conv3(torch.cat((x, x1, x2), 1))
        x4 = self.conv4(torch.cat((x, x1, x2, x3), 1))
        return self.conv5(torch.cat((x, x1, x2, x3, x4), 1)) * 0.2 + x


class RRDB(nn.Module):
    """Three dense blocks in a chain with a 0.2-scaled skip, under the names a layout gives them."""

    def __init__(self, names: tuple[str, str, str], make_block):
        super().__init__()
        self.names = names
        for name in names:
            self.add_module(name, make_block())

    def forward(self, x):
        out = x
        for name in self.names:
            out = getattr(self, name)(out)
        return out * 0.2 + x


class ShortcutBlock(nn.Module):
    def __init__(self, sub: nn.Module):
        super().__init__()
        self.sub = sub

    def forward(self, x):
        return x + self.sub(x)


class OriginalESRGAN(nn.Module):
    def __init__(self, nf: int = 8, nb: int = 2, gc: int = 4):
        super().__init__()
        up = lambda: [nn.Upsample(scale_factor=2, mode="nearest"), conv(nf, nf), nn.LeakyReLU(0.2)]  # noqa: E731
        self.model = nn.Sequential(
            conv(3, nf),
            ShortcutBlock(
                nn.Sequential(*(RRDB(("RDB1", "RDB2", "RDB3"), lambda: DenseBlock5C(nf, gc)) for _ in range(nb)), conv(nf, nf))
            ),
            *up(),
            *up(),
            conv(nf, nf),
            nn.LeakyReLU(0.2),
            conv(nf, 3),
        )

    def forward(self, x):
        return self.model(x)


# --- BasicSR / Real-ESRGAN RRDBNet and SRVGGNetCompact ------------------------------------------


class BasicSRDenseBlock(nn.Module):
    def __init__(self, nf: int, gc: int):
        super().__init__()
        self.conv1, self.conv2, self.conv3 = conv(nf, gc), conv(nf + gc, gc), conv(nf + 2 * gc, gc)
        self.conv4, self.conv5 = conv(nf + 3 * gc, gc), conv(nf + 4 * gc, nf)
        self.lrelu = nn.LeakyReLU(0.2)

    def forward(self, x):
        seen = [x]
        for dense in (self.conv1, self.conv2, self.conv3, self.conv4):
            seen.append(self.lrelu(dense(torch.cat(seen, 1))))
        return self.conv5(torch.cat(seen, 1)) * 0.2 + x


class BasicSRRRDBNet(nn.Module):
    """Real-ESRGAN's x2 model pixel-unshuffles its input (channels x4) before the x4 trunk."""

    def __init__(self, nf: int = 8, nb: int = 2, gc: int = 4, scale: int = 4):
        super().__init__()
        self.scale = scale
        self.conv_first = conv(3 * (16 // scale**2), nf)
        self.body = nn.Sequential(*(RRDB(("rdb1", "rdb2", "rdb3"), lambda: BasicSRDenseBlock(nf, gc)) for _ in range(nb)))
        self.conv_body, self.conv_up1, self.conv_up2 = conv(nf, nf), conv(nf, nf), conv(nf, nf)
        self.conv_hr, self.conv_last, self.lrelu = conv(nf, nf), conv(nf, 3), nn.LeakyReLU(0.2)

    def forward(self, x):
        feat = F.pixel_unshuffle(x, 4 // self.scale) if self.scale < 4 else x
        feat = self.conv_first(feat)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))


class BasicSRCompact(nn.Module):
    """SRVGGNetCompact: `body` a ModuleList conv, PReLU, (conv, PReLU) x num_conv, conv to 3*s*s."""

    def __init__(self, nf: int = 8, num_conv: int = 2, upscale: int = 4):
        super().__init__()
        self.upscale = upscale
        layers = [conv(3, nf), nn.PReLU(num_parameters=nf)]
        for _ in range(num_conv):
            layers += [conv(nf, nf), nn.PReLU(num_parameters=nf)]
        self.body = nn.ModuleList([*layers, conv(nf, 3 * upscale * upscale)])
        self.upsampler = nn.PixelShuffle(upscale)

    def forward(self, x):
        out = x
        for layer in self.body:
            out = layer(out)
        return self.upsampler(out) + F.interpolate(x, scale_factor=self.upscale, mode="nearest")


# --- BasicSR EDSR and MSRResNet ----------------------------------------------------------------


class NoBNBlock(nn.Module):
    def __init__(self, nf: int, res_scale: float = 1.0):
        super().__init__()
        self.conv1, self.conv2, self.relu, self.res_scale = conv(nf, nf), conv(nf, nf), nn.ReLU(), res_scale

    def forward(self, x):
        return x + self.conv2(self.relu(self.conv1(x))) * self.res_scale


class BasicSREDSR(nn.Module):
    def __init__(self, nf: int = 8, nb: int = 2, upscale: int = 4, res_scale: float = 1.0):
        super().__init__()
        self.mean = torch.tensor((0.4488, 0.4371, 0.4040)).view(1, 3, 1, 1)  # a plain attribute, as in BasicSR
        self.conv_first = conv(3, nf)
        self.body = nn.Sequential(*(NoBNBlock(nf, res_scale) for _ in range(nb)))
        self.conv_after_body = conv(nf, nf)
        if upscale == 3:
            stages = [conv(nf, 9 * nf), nn.PixelShuffle(3)]
        else:  # x2 and x4: one conv + PixelShuffle(2) per factor 2
            stages = [layer for _ in range(upscale // 2) for layer in (conv(nf, 4 * nf), nn.PixelShuffle(2))]
        self.upsample = nn.Sequential(*stages)
        self.conv_last = conv(nf, 3)

    def forward(self, x):
        x = (x - self.mean) * 255.0
        x = self.conv_first(x)
        x = x + self.conv_after_body(self.body(x))
        return self.conv_last(self.upsample(x)) / 255.0 + self.mean


class BasicSRMSRResNet(nn.Module):
    def __init__(self, nf: int = 8, nb: int = 2, upscale: int = 4):
        super().__init__()
        self.upscale = upscale
        self.conv_first = conv(3, nf)
        self.body = nn.Sequential(*(NoBNBlock(nf) for _ in range(nb)))
        if upscale == 4:
            self.upconv1, self.upconv2, self.pixel_shuffle = conv(nf, 4 * nf), conv(nf, 4 * nf), nn.PixelShuffle(2)
        else:
            self.upconv1, self.pixel_shuffle = conv(nf, upscale * upscale * nf), nn.PixelShuffle(upscale)
        self.conv_hr, self.conv_last, self.lrelu = conv(nf, nf), conv(nf, 3), nn.LeakyReLU(0.1)

    def forward(self, x):
        out = self.body(self.lrelu(self.conv_first(x)))
        out = self.lrelu(self.pixel_shuffle(self.upconv1(out)))
        if self.upscale == 4:
            out = self.lrelu(self.pixel_shuffle(self.upconv2(out)))
        out = self.conv_last(self.lrelu(self.conv_hr(out)))
        return out + F.interpolate(x, scale_factor=self.upscale, mode="bilinear", align_corners=False)


def randomized(module: nn.Module) -> nn.Module:
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn_like(parameter) * 0.1)
    return module.eval()


REFERENCES = {
    "esrgan-original": (lambda: OriginalESRGAN(), "rrdbnet", 4),
    "basicsr-rrdbnet-x4": (lambda: BasicSRRRDBNet(scale=4), "rrdbnet", 4),
    "basicsr-rrdbnet-x2": (lambda: BasicSRRRDBNet(scale=2), "rrdbnet", 2),
    "realesrgan-compact-x4": (lambda: BasicSRCompact(upscale=4), "srvgg_compact", 4),
    "realesrgan-compact-x2": (lambda: BasicSRCompact(upscale=2), "srvgg_compact", 2),
    "basicsr-edsr-x4": (lambda: BasicSREDSR(upscale=4), "edsr", 4),
    "basicsr-edsr-x3": (lambda: BasicSREDSR(upscale=3), "edsr", 3),
    "basicsr-msrresnet-x4": (lambda: BasicSRMSRResNet(upscale=4), "msrresnet", 4),
    "basicsr-msrresnet-x2": (lambda: BasicSRMSRResNet(upscale=2), "msrresnet", 2),
}
# How these files are published: a bare state dict (ESRGAN), BasicSR's {"params"} or {"params_ema"}
# (beside the raw "params", which must not win), and DataParallel's "module." prefix.
WRAPPINGS = {
    "bare": lambda state: state,
    "params": lambda state: {"params": state},
    "params_ema": lambda state: {"params": {k: torch.zeros_like(v) for k, v in state.items()}, "params_ema": state},
    "module.": lambda state: {"params": {f"module.{key}": value for key, value in state.items()}},
}


@pytest.mark.parametrize("wrapping", WRAPPINGS)
@pytest.mark.parametrize("name", REFERENCES)
def test_foreign_pth_loads_with_the_publishers_outputs(name, wrapping, tmp_path):
    build, arch, scale = REFERENCES[name]
    reference = randomized(build())
    path = tmp_path / f"{name}.pth"
    torch.save(WRAPPINGS[wrapping](reference.state_dict()), path)
    image = torch.rand(1, 3, 6, 4)

    loaded = load_model(path)

    assert (loaded.arch, loaded.scale) == (arch, scale)
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(image), reference(image), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", [name for name in REFERENCES if not name.startswith("esrgan")])
def test_srgan_pth_loads_weights_only_into_basicsr_modules(name, tmp_path):
    build, _, _ = REFERENCES[name]
    published = tmp_path / "published.pth"
    torch.save({"params": randomized(build()).state_dict()}, published)
    out = export_model(published, tmp_path / "srgan.pth")

    contents = torch.load(out, weights_only=True)
    fresh = build()
    fresh.load_state_dict(contents["params_ema"], strict=True)
    fresh.eval()
    image = torch.rand(1, 3, 4, 6)
    with torch.no_grad():
        torch.testing.assert_close(fresh(image), load_model(published).module(image))


def test_original_esrgan_file_exports_to_basicsr_names(tmp_path):
    path = tmp_path / "RRDB_ESRGAN_x4.pth"
    torch.save(randomized(OriginalESRGAN()).state_dict(), path)
    contents = torch.load(export_model(path, tmp_path / "basicsr.pth"), weights_only=True)
    keys = set(contents["params_ema"])
    assert {"conv_first.weight", "body.1.rdb3.conv5.bias", "conv_body.weight", "conv_up2.weight", "conv_last.bias"} <= keys
    assert not any(key.startswith("model.") for key in keys)


def test_layout_with_extra_keys_is_not_taken_for_esrgan(tmp_path):
    state = randomized(OriginalESRGAN()).state_dict()
    state["model.11.weight"] = torch.zeros(3, 3, 3, 3)
    path = tmp_path / "odd.pth"
    torch.save(state, path)
    with pytest.raises(SrganError, match=r"odd\.pth: the network's architecture is not recorded"):
        load_model(path)
