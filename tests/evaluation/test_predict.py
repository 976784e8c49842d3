import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from ganet_lib.checkpoint import save_checkpoint
from ganet_lib.config import PreprocessConfig, load_config
from ganet_lib.data.cases import find_brats_cases, load_modalities
from ganet_lib.data.synthetic import SynthSpec, write_synthetic_dataset
from ganet_lib.evaluation.predict import predict_volume
from ganet_lib.method.models import SegmentationUNet
from ganet_lib.method.preprocess import preprocess_case
from ganet_lib.runner.cli import main


class ConstantClass(torch.nn.Module):
    """A stand-in network that calls every pixel of its input class `k`."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k

    def forward(self, x):
        logits = torch.zeros(x.shape[0], 4, *x.shape[2:])
        logits[:, self.k] = 10.0
        return logits


@pytest.fixture(scope="module")
def oblong(tmp_path_factory):
    """One case whose x and y sizes differ, so a transposed slice cannot pass unnoticed."""
    root = write_synthetic_dataset(
        tmp_path_factory.mktemp("oblong") / "data",
        SynthSpec(cases=1, normals=0, shape=(40, 52, 24), seed=5),
        progress=False,
    )
    return find_brats_cases(root / "brats")[0]


def test_prediction_lands_on_the_input_grid(oblong):
    settings = PreprocessConfig(image_size=32, min_brain_pixels=16)
    volumes, _ = load_modalities(oblong, dtype=None)
    labels = predict_volume(ConstantClass(2), volumes, settings)  # "edema" wherever it looks
    assert labels.shape == volumes[0].shape and labels.dtype == np.uint8
    # Expected: label 2 exactly in the square brain box (clipped to the slice) of every brain slice.
    reference = preprocess_case(volumes, None, settings)
    row0, row1, col0, col1 = reference.box  # rows run along y, columns along x
    expected = np.zeros(volumes[0].shape, np.uint8)
    for z in reference.slice_index:
        expected[max(col0, 0) : col1, max(row0, 0) : row1, z] = 2
    np.testing.assert_array_equal(labels, expected)
    assert set(np.unique(predict_volume(ConstantClass(3), volumes, settings))) == {0, 4}  # class 3 is BraTS label 4


def untrained_checkpoint(path: Path) -> Path:
    """A `train-seg` checkpoint of the smoke profile's U-Net, untrained (seeded)."""
    config = load_config("smoke")
    torch.manual_seed(0)
    model = SegmentationUNet(channels=config.model.seg_channels)
    save_checkpoint({"model": model.state_dict(), "config": json.dumps({"variant": "unet", **config.to_dict()})}, path)
    return path


def test_ganet_predict_on_a_case_without_label(oblong, tmp_path, capsys):
    case_dir = tmp_path / "input" / oblong.case_id
    case_dir.mkdir(parents=True)
    for path in oblong.images.values():
        shutil.copy(path, case_dir / path.name)  # no *_seg file
    checkpoint = untrained_checkpoint(tmp_path / "best.pt")

    assert (
        main(["predict", "--checkpoint", str(checkpoint), "--input", str(case_dir), "--out", str(tmp_path / "out")])
        == 0
    )
    written = nib.load(tmp_path / "out" / f"{oblong.case_id}.nii.gz")
    source = nib.load(oblong.images["t1"])
    assert written.shape == source.shape
    np.testing.assert_array_equal(written.affine, source.affine)
    assert set(np.unique(np.asarray(written.dataobj))) <= {0, 1, 2, 4}
    assert [p.name for p in (tmp_path / "out").iterdir()] == [f"{oblong.case_id}.nii.gz"]  # no temporary file left
    assert "wrote 1 label map" in capsys.readouterr().out


def test_ganet_predict_reads_a_folder_of_linked_cases(oblong, tmp_path, capsys):
    """`ganet predict --input` on a split whose case folders are symbolic links (it once said "No BraTS
    files found")."""
    split = tmp_path / "split"
    split.mkdir()
    (split / oblong.case_id).symlink_to(oblong.images["t1"].parent, target_is_directory=True)
    checkpoint = untrained_checkpoint(tmp_path / "best.pt")
    assert (
        main(["predict", "--checkpoint", str(checkpoint), "--input", str(split), "--out", str(tmp_path / "out")]) == 0
    )
    assert (tmp_path / "out" / f"{oblong.case_id}.nii.gz").is_file()


def test_ganet_predict_applies_the_recorded_post_processing_unless_told_not_to(oblong, tmp_path, capsys):
    from ganet_lib.evaluation.postprocess import PostProcessing, choose, write_record

    checkpoint = untrained_checkpoint(tmp_path / "seg-unet" / "best.pt")
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(checkpoint),
                "--input",
                str(oblong.images["t1"].parent),
                "--out",
                str(tmp_path / "none"),
            ]
        )
        == 0
    )
    assert "post-processing: none recorded" in capsys.readouterr().out
    raw = np.asarray(nib.load(tmp_path / "none" / f"{oblong.case_id}.nii.gz").dataobj)
    assert raw.any()  # an untrained U-Net predicts tumour somewhere
    _, tried = choose([(raw, raw, (1.0, 1.0, 1.0))])
    write_record(checkpoint, PostProcessing("min-volume", 1e9), tried, ["some-validation-case"])  # removes everything
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(checkpoint),
                "--input",
                str(oblong.images["t1"].parent),
                "--out",
                str(tmp_path / "pp"),
            ]
        )
        == 0
    )
    assert (
        "post-processing: remove whole-tumour components below 1e+09 mm^3 (chosen on 1 validation subject(s)"
        in capsys.readouterr().out
    )
    assert not np.asarray(nib.load(tmp_path / "pp" / f"{oblong.case_id}.nii.gz").dataobj).any()
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(checkpoint),
                "--input",
                str(oblong.images["t1"].parent),
                "--out",
                str(tmp_path / "raw"),
                "--no-postprocess",
            ]
        )
        == 0
    )
    assert "post-processing: off (--no-postprocess)" in capsys.readouterr().out
    np.testing.assert_array_equal(np.asarray(nib.load(tmp_path / "raw" / f"{oblong.case_id}.nii.gz").dataobj), raw)
