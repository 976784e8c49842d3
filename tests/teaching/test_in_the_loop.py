"""The student's functions in the real training loop (notebook 04's path): once their checks pass,
`exercises.use` hands them to `short_trainings`, and the trainer calls each of them; the two
trainings are compared step by step, so a wrong function shows even where nothing is learnt."""

from collections import Counter
from dataclasses import replace

import pytest

from ganet_lib.method.train_gan import pretrain_gan_for_run
from ganet_lib.method.train_seg import KIT_TERMS, LossTerms
from ganet_lib.run import setup_run
from ganet_lib.teaching import exercises
from ganet_lib.teaching.in_the_loop import (
    KITS,
    PART_RELATIVE,
    largest_difference,
    parting_sentence,
    predictions,
    short_trainings,
    whose,
)
from tests.method.test_train_seg import spy
from tests.teaching.test_exercises import CORRECT

KEYS = ("04.1", "04.2", "04.3", "04.4")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run = setup_run("smoke", str(tmp_path_factory.mktemp("loop")), progress=False)
    pretrain_gan_for_run(run, progress=False)
    return run


def test_a_students_functions_are_called_by_the_trainer_when_my_code_is_on(run, monkeypatch):
    monkeypatch.setattr(exercises, "_checked", {})
    calls = Counter()
    written = {key: spy(calls, key, CORRECT[key]) for key in KEYS}  # the student's cells
    for key, function in written.items():
        assert exercises.check(key, function) == exercises.PASSED
    yours = LossTerms(*(exercises.use(key, written[key], my_code=True) for key in KEYS))
    trained, slices = short_trainings(run, yours, epochs=2)
    assert set(calls) == set(KEYS)
    during_training = dict(calls)
    assert list(trained) == ["your functions", KITS]
    # Correct lines give the kit's training, step by step, to rounding.
    ours, kits = trained.values()
    assert len(ours.step_losses) == len(kits.step_losses) > 2 and len(ours.step_losses) % 2 == 0  # steps of 2 epochs
    assert ours.step_losses == pytest.approx(kits.step_losses, rel=1e-5)
    assert parting_sentence(trained).startswith(f"the two trainings agree at all {len(ours.step_losses)} steps")
    assert set(predictions(trained, slices, 0)) == set(trained)

    calls.clear()
    off = LossTerms(*(exercises.use(key, written[key], my_code=False) for key in KEYS))
    again, _ = short_trainings(run, off, epochs=2)
    assert not calls and min(during_training.values()) > 0  # my_code off: the kit's functions only
    # ... and the label says so; the kit's training was reused from its checkpoint, step losses and all.
    assert list(again) == ["the kit's functions again (none of yours ran)", KITS]
    assert again[KITS].step_losses == kits.step_losses
    assert largest_difference(again) == (0.0, 1)


def test_a_wrong_function_makes_the_trainings_part_even_on_smoke(run):
    # 04.2 with the edge map detached: the loss's value is right, its gradient is not (issue 33: the
    # epoch losses moved by 0.004 and the validation Dice not at all on smoke).
    detached = lambda logits, edges: CORRECT["04.2"](logits, edges.detach())  # noqa: E731
    trained, _ = short_trainings(run, replace(KIT_TERMS, l_adv=detached), epochs=2)
    assert list(trained) == ["your l_adv (the kit's for the rest)", KITS]
    ours, kits = trained.values()
    per_epoch = len(ours.step_losses) // 2
    # Epoch 1 has L_seg alone: identical; from the first adversarial step on, the dynamic weight of
    # L_adv (Eq. 10, from its gradient) differs, and so does every step after it.
    assert ours.step_losses[:per_epoch] == kits.step_losses[:per_epoch]
    largest, step = largest_difference(trained)
    assert step > per_epoch and largest > PART_RELATIVE * abs(kits.step_losses[step - 1])
    assert parting_sentence(trained).startswith(
        f"the two trainings part at step {per_epoch + 1} of {len(ours.step_losses)} (epoch 2; the adversarial terms "
        f"start at step {per_epoch + 1}): largest difference {largest:.4g} at step {step}"
    )


def test_the_label_names_whose_functions_ran():
    assert whose(KIT_TERMS) == "the kit's functions again (none of yours ran)"
    assert whose(LossTerms(*(CORRECT[key] for key in KEYS))) == "your functions"
    partial = replace(KIT_TERMS, edge_map=CORRECT["04.1"], soft_dice_loss=CORRECT["04.4"])
    assert whose(partial) == "your edge_map, soft_dice_loss (the kit's for the rest)"
