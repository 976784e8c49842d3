"""Post-processing rules and their choice on validation subjects (hand-made label maps)."""

import numpy as np
import pytest

from ganet_lib.data.labels import WHOLE_TUMOUR
from ganet_lib.errors import KitInputError
from ganet_lib.evaluation.postprocess import IDENTITY, PostProcessing, choose, read_record, rule_of, write_record

SHAPE = (40, 40, 40)
SPACING = (1.0, 1.0, 1.0)


def box(labels, value, *ranges):
    labels[tuple(slice(a, b) for a, b in ranges)] = value
    return labels


def tumour(offset=0):
    """A 12^3 tumour: edema around a 6^3 NCR core with a 2^3 enhancing centre."""
    labels = np.zeros(SHAPE, np.uint8)
    box(labels, 2, (8 + offset, 20 + offset), (8, 20), (8, 20))
    box(labels, 1, (11 + offset, 17 + offset), (11, 17), (11, 17))
    return box(labels, 4, (13 + offset, 15 + offset), (13, 15), (13, 15))


def test_the_rules_on_one_map():
    labels = tumour()
    box(labels, 2, (30, 33), (30, 33), (30, 33))  # 27 voxels, separate
    box(labels, 4, (2, 3), (35, 36), (2, 3))  # one stray ET voxel
    largest = PostProcessing("largest").apply(labels, SPACING)
    assert np.array_equal(largest, tumour())
    small = PostProcessing("min-volume", 10.0).apply(labels, SPACING)  # removes the 1-voxel one only
    assert small[30:33, 30:33, 30:33].all() and small[2, 35, 2] == 0
    coarse = PostProcessing("min-volume", 10.0).apply(labels, (0.2, 0.2, 0.2))  # mm^3: 27 voxels of 0.008 mm^3 are tiny
    assert np.array_equal(coarse, tumour())
    assert np.array_equal(IDENTITY.apply(labels, SPACING), labels)
    relabelled = PostProcessing(et_min_mm3=9.0).apply(tumour(), SPACING)  # 8 mm^3 of ET: below 9 -> NCR
    assert not (relabelled == 4).any() and (relabelled == 1).sum() == (tumour() == 1).sum() + 8
    kept = PostProcessing(et_min_mm3=8.0).apply(tumour(), SPACING)  # exactly 8: kept ("below" is strict)
    assert np.array_equal(kept, tumour())


def test_whole_tumour_masks_get_the_component_rules_only():
    mask = (tumour() > 0).astype(np.uint8)
    mask[35, 35, 35] = 1
    out = PostProcessing("largest", et_min_mm3=1000.0).apply(mask, SPACING, WHOLE_TUMOUR)
    assert out.sum() == 12**3 and out.max() == 1


def test_unknown_rule_is_refused():
    with pytest.raises(KitInputError, match="largest"):
        PostProcessing("biggest")


def test_stray_components_make_a_rule_win_and_none_is_kept_when_nothing_helps():
    noisy = []
    for k in range(3):
        prediction = tumour(offset=k % 2)
        box(prediction, 2, (30, 32), (30 + k, 32 + k), (30, 32))  # 8-voxel false positives
        box(prediction, 1, (2, 3), (2, 3), (30, 31))
        noisy.append((prediction, tumour(), SPACING))
    rule, tried = choose(noisy)
    assert rule.wt_rule != "none"
    assert tried[0].rule == IDENTITY and max(c.score for c in tried) > tried[0].score
    assert rule.apply(noisy[0][0], SPACING)[30:32, 30:32, 30:32].sum() == 0  # the false positives are gone

    clean = [(tumour(offset=1), tumour(), SPACING) for _ in range(2)]
    rule, tried = choose(clean)
    assert rule == IDENTITY  # nothing to remove: every candidate ties, the gentlest (none) stays


def test_a_rule_that_deletes_a_true_second_lesion_loses_on_validation():
    # Multifocal truth: a main tumour and a second, smaller lesion (216 mm^3) far from it. The
    # prediction finds both and adds small stray components. "Keep the largest" deletes the true
    # second lesion and must not be chosen; a small volume threshold removes only the strays.
    cases = []
    for k in range(3):
        truth = tumour()
        box(truth, 2, (28, 34), (28, 34), (28, 34))
        prediction = truth.copy()
        box(prediction, 2, (2 + k, 4 + k), (30, 32), (2, 4))  # 8-voxel stray
        box(prediction, 1, (35, 36), (2, 3), (35, 36))  # 1-voxel stray
        cases.append((prediction, truth, SPACING))
    rule, tried = choose(cases)
    largest = next(c for c in tried if c.rule == PostProcessing("largest"))
    chosen = next(c for c in tried if c.rule == rule)
    assert rule.wt_rule == "min-volume" and rule.wt_min_mm3 <= 216
    assert largest.score < chosen.score
    out = rule.apply(cases[0][0], SPACING)
    assert out[28:34, 28:34, 28:34].all()  # the second lesion survives


def test_the_et_threshold_is_chosen_when_empty_et_truths_meet_false_et():
    cases = []
    for k in range(3):
        truth = tumour()
        truth[truth == 4] = 1  # a tumour without an enhancing part
        prediction = truth.copy()
        box(prediction, 4, (13, 14), (13, 14 + k % 2), (13, 14))  # 1-2 false ET voxels
        cases.append((prediction, truth, SPACING))
    rule, _ = choose(cases)
    assert rule.et_min_mm3 > 2
    assert not (rule.apply(cases[1][0], SPACING) == 4).any()


def test_the_record_belongs_to_its_checkpoint(tmp_path):
    checkpoint = tmp_path / "best.pt"
    checkpoint.write_bytes(b"weights")
    rule, tried = choose([(tumour(), tumour(), SPACING)])
    write_record(checkpoint, PostProcessing("largest"), tried, ["BraTS20_Training_003"])
    record = read_record(checkpoint)
    assert rule_of(record) == PostProcessing("largest") and record["validation_subjects"] == ["BraTS20_Training_003"]
    assert record["candidates"][0]["rule"]["wt_rule"] == "none"
    checkpoint.write_bytes(b"other weights")  # retrained: the old choice no longer applies
    assert read_record(checkpoint) is None and rule_of(None) == IDENTITY
    (tmp_path / "postprocess.json").write_text("{broken")
    with pytest.raises(KitInputError, match="postprocess.json"):
        read_record(checkpoint)
