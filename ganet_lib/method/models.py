"""The three networks of GANet-Seg (paper 4.1; SPEC section 3).

- `UNet`: encoder-decoder with skips. Each level is a block of two 3x3 convolutions, each followed
  by InstanceNorm and an activation; 2x2 max-pooling goes down, a 2x2 transposed convolution goes
  up, and the skip connection is concatenated before the decoder block.
- `SegmentationUNet`: the U-Net on the four modalities, 1x1 convolution to 4 classes (logits).
  Paper profile: channels 64-128-256-320, ReLU (paper 4.1.2; its Fig. 5 shows an nnU-Net-like
  32-...-320 LeakyReLU net instead, so channels and activation are parameters).
- `InpaintingGenerator`: the same U-Net on [masked T1, hole mask, noise in the hole], ReLU inside,
  Tanh out, on images scaled to [-1, 1] (paper 4.1.1 and Fig. 4).
- `PatchDiscriminator`: the pix2pix 70x70 PatchGAN (Isola et al. 2017): 4x4 convolutions
  64-128-256-512 with strides 2, 2, 2, 1 and LeakyReLU(0.2), then a 1-channel 4x4 convolution.
  It returns logits, one per overlapping 70x70 patch: a 14x14 map for 128x128 input, 30x30 for
  256x256. Apply a sigmoid for the "real normal tissue" probability.

Models know nothing of files or configs.
"""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU}


class ConvBlock(nn.Sequential):
    """(3x3 conv -> InstanceNorm -> activation) x 2; keeps the spatial size."""

    def __init__(self, in_channels: int, out_channels: int, activation: type[nn.Module] = nn.ReLU):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
            nn.InstanceNorm2d(out_channels, affine=True),
            activation(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1),
            nn.InstanceNorm2d(out_channels, affine=True),
            activation(inplace=True),
        )


class UNet(nn.Module):
    """A plain U-Net: `channels[k]` features at level k; len(channels) - 1 poolings.

    Input (B, in_channels, H, W) with H and W multiples of 2 ** (len(channels) - 1);
    output (B, out_channels, H, W), no final activation.
    """

    def __init__(self, in_channels: int, out_channels: int, channels: tuple[int, ...], activation: str = "relu"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        act = ACTIVATIONS[activation]
        self.channels = tuple(channels)
        # Encoder: level k takes channels[k-1] (or the input) to channels[k]; the last level is the bottleneck.
        self.encoder = nn.ModuleList(
            ConvBlock(c_in, c_out, act) for c_in, c_out in zip((in_channels,) + self.channels[:-1], self.channels)
        )
        self.pool = nn.MaxPool2d(2)
        # Decoder, from the bottleneck up: upsample channels[k+1] -> channels[k], concatenate the skip, block.
        self.upsample = nn.ModuleList(
            nn.ConvTranspose2d(c_deep, c_skip, kernel_size=2, stride=2)
            for c_skip, c_deep in zip(reversed(self.channels[:-1]), reversed(self.channels[1:]))
        )
        self.decoder = nn.ModuleList(ConvBlock(2 * c_skip, c_skip, act) for c_skip in reversed(self.channels[:-1]))
        self.head = nn.Conv2d(self.channels[0], out_channels, kernel_size=1)

    @property
    def size_multiple(self) -> int:
        return 2 ** (len(self.channels) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if height % self.size_multiple or width % self.size_multiple:
            raise ValueError(
                f"U-Net input of {height} x {width} pixels: height and width must be multiples of "
                f"{self.size_multiple} (2 ** number of poolings); resize or pad the input."
            )
        skips = []
        for level, block in enumerate(self.encoder):
            x = block(x)  # (B, channels[level], H / 2**level, W / 2**level)
            if level < len(self.encoder) - 1:
                skips.append(x)
                x = self.pool(x)
        for up, block, skip in zip(self.upsample, self.decoder, reversed(skips)):
            x = up(x)  # (B, c_skip, 2h, 2w)
            x = block(torch.cat([x, skip], dim=1))  # (B, 2 c_skip, 2h, 2w) -> (B, c_skip, 2h, 2w)
        return self.head(x)  # (B, out_channels, H, W)


class SegmentationUNet(UNet):
    """4 modalities in, logits of 4 classes (background, NCR/NET, ED, ET) out: (B, 4, H, W)."""

    def __init__(
        self,
        channels: tuple[int, ...] = (64, 128, 256, 320),
        activation: str = "relu",
        in_channels: int = 4,
        num_classes: int = 4,
    ):
        super().__init__(in_channels, num_classes, channels, activation)


class InpaintingGenerator(nn.Module):
    """Fills a hole in a normal T1 slice with tissue that matches its surroundings.

    forward(masked, mask, noise): each (B, 1, H, W); `masked` is the image in [-1, 1] with the hole
    set to 0, `mask` is 1 in the hole, `noise` is Gaussian inside the hole and 0 outside.
    Returns the generated image (B, 1, H, W) in [-1, 1] (Tanh); callers paste its hole into the input.
    """

    def __init__(self, channels: tuple[int, ...] = (64, 128, 256, 512)):
        super().__init__()
        self.unet = UNet(in_channels=3, out_channels=1, channels=channels, activation="relu")

    def forward(self, masked: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.unet(torch.cat([masked, mask, noise], dim=1)))  # (B, 3, H, W) -> (B, 1, H, W)


class PatchDiscriminator(nn.Sequential):
    """pix2pix 70x70 PatchGAN: (B, in_channels, H, W) -> (B, 1, H/8 - 2, W/8 - 2) logits."""

    def __init__(self, in_channels: int = 1, base_channels: int = 64):
        c = base_channels
        super().__init__(
            nn.Conv2d(in_channels, c, kernel_size=4, stride=2, padding=1),  # H/2   (no norm on the first layer)
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(c, 2 * c, kernel_size=4, stride=2, padding=1),  # H/4
            nn.InstanceNorm2d(2 * c, affine=True),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * c, 4 * c, kernel_size=4, stride=2, padding=1),  # H/8
            nn.InstanceNorm2d(4 * c, affine=True),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(4 * c, 8 * c, kernel_size=4, stride=1, padding=1),  # H/8 - 1
            nn.InstanceNorm2d(8 * c, affine=True),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(8 * c, 1, kernel_size=4, stride=1, padding=1),  # H/8 - 2: one logit per 70x70 patch
        )


def xavier_init(model: nn.Module) -> nn.Module:
    """Xavier (Glorot) normal weights and zero biases for every convolution (paper 5.4.2)."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_normal_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model
