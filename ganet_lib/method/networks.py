"""The networks of a config, and trained ones back from their checkpoints.

One place knows which config field builds which network: the trainers build theirs here, and
inference (`evaluation.predict`), the studies and the notebooks load trained ones here. A
checkpoint stores the resolved config beside the weights (nanoGPT's habit), so a checkpoint alone
rebuilds its network.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ganet_lib.checkpoint import load_checkpoint
from ganet_lib.config import ExperimentConfig, ModelConfig, config_from_json
from ganet_lib.data.labels import scheme_for
from ganet_lib.method.models import InpaintingGenerator, PatchDiscriminator, SegmentationUNet, xavier_init


def build_gan(model: ModelConfig, seed: int) -> tuple[InpaintingGenerator, PatchDiscriminator]:
    """Both GAN networks, Xavier-initialised from `seed`."""
    torch.manual_seed(seed)
    return xavier_init(InpaintingGenerator(model.gen_channels)), xavier_init(PatchDiscriminator(1, model.disc_channels))


def load_gan(checkpoint_path: Path | str, model: ModelConfig) -> tuple[InpaintingGenerator, PatchDiscriminator, dict]:
    """The generator and discriminator of a checkpoint, in eval mode on the CPU, and the checkpoint."""
    checkpoint = load_checkpoint(checkpoint_path)
    generator_net, discriminator = build_gan(model, seed=0)
    generator_net.load_state_dict(checkpoint["generator"])
    discriminator.load_state_dict(checkpoint["discriminator"])
    return generator_net.eval(), discriminator.eval(), checkpoint


def build_model(model: ModelConfig, seed: int, in_channels: int = 4, num_classes: int = 4) -> SegmentationUNet:
    """The segmentation U-Net: one input channel per chosen modality, one output per class of the label scheme."""
    torch.manual_seed(seed)
    return SegmentationUNet(
        channels=model.seg_channels, activation=model.seg_activation, in_channels=in_channels, num_classes=num_classes
    )


def model_for_config(config: ExperimentConfig, seed: int) -> SegmentationUNet:
    """The U-Net a config describes (a checkpoint's config rebuilds its network)."""
    # The whole config: the widths come from `model`, the input and output widths from `data`.
    return build_model(config.model, seed, len(config.data.modalities), scheme_for(config.data.labels).num_classes)


def load_segmentation(checkpoint_path: Path | str) -> tuple[SegmentationUNet, ExperimentConfig, str, dict]:
    """The U-Net of a checkpoint (eval mode, CPU), the config it was trained with, its variant, and the checkpoint."""
    checkpoint = load_checkpoint(checkpoint_path)
    values = json.loads(checkpoint["config"])
    variant = values.pop("variant")
    config = config_from_json(json.dumps(values), str(checkpoint_path))
    model = model_for_config(config, seed=0)
    model.load_state_dict(checkpoint["model"])
    return model.eval(), config, variant, checkpoint
