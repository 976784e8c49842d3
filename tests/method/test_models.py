import pytest
import torch
from torch import nn

from ganet_lib.method.models import InpaintingGenerator, PatchDiscriminator, SegmentationUNet, UNet, xavier_init


def test_segmentation_unet_returns_logits_of_four_classes():
    net = SegmentationUNet(channels=(8, 16, 32, 40))
    x = torch.randn(2, 4, 32, 48)
    out = net(x)
    assert out.shape == (2, 4, 32, 48)
    assert not torch.allclose(out.softmax(1).sum(1), out.sum(1))  # logits, not probabilities


def test_paper_unet_has_the_paper_channels():
    net = SegmentationUNet()
    assert [block[0].out_channels for block in net.encoder] == [64, 128, 256, 320]
    assert any(isinstance(m, nn.InstanceNorm2d) for m in net.modules())


def test_unet_rejects_a_size_that_does_not_divide():
    net = UNet(1, 1, (4, 8, 16))  # two poolings: multiples of 4
    assert net(torch.zeros(1, 1, 12, 20)).shape == (1, 1, 12, 20)
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.zeros(1, 1, 10, 20))


def test_leaky_relu_is_a_parameter():
    net = SegmentationUNet(channels=(4, 8), activation="leaky_relu")
    assert any(isinstance(m, nn.LeakyReLU) for m in net.modules())
    with pytest.raises(ValueError, match="activation"):
        SegmentationUNet(channels=(4, 8), activation="gelu")


@pytest.mark.parametrize("size, patches", [(128, 14), (256, 30)])
def test_patch_discriminator_map_size(size, patches):
    assert PatchDiscriminator()(torch.zeros(1, 1, size, size)).shape == (1, 1, patches, patches)


def test_generator_output_is_tanh_bounded():
    net = InpaintingGenerator(channels=(4, 8, 16))
    out = net(torch.randn(2, 1, 16, 16) * 10, torch.ones(2, 1, 16, 16), torch.randn(2, 1, 16, 16) * 10)
    assert out.shape == (2, 1, 16, 16) and out.abs().max() <= 1


def test_xavier_init_zero_biases_and_glorot_scale():
    torch.manual_seed(0)
    conv = xavier_init(nn.Sequential(nn.Conv2d(64, 64, 3)))[0]
    assert torch.all(conv.bias == 0)
    fan_in = fan_out = 64 * 9
    expected_std = (2.0 / (fan_in + fan_out)) ** 0.5
    assert conv.weight.std().item() == pytest.approx(expected_std, rel=0.05)
