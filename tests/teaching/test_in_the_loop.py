"""The student's functions in the real training loop (notebook 04's path): once their checks pass,
`exercises.use` hands them to `short_trainings`, and the trainer calls each of them; the two
trainings are compared step by step, so a wrong function shows even where nothing is learnt."""

from collections import Counter
from dataclasses import replace

import pytest

from ganet_lib.method.train_gan import pretrain_gan_for_run
from ganet_lib.method.train_seg import KIT_TERMS, LossTerms, SegResult
from ganet_lib.run import setup_run
from ganet_lib.teaching import exercises
from ganet_lib.teaching.in_the_loop import (
    KITS,
    PART_RELATIVE,
    judged_steps,
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
    per_epoch = len(ours.step_losses) // 2
    assert judged_steps(trained) == [1, 2, per_epoch + 1, per_epoch + 2]
    assert parting_sentence(trained).startswith(
        f"the two trainings agree where your functions first act (steps 1, 2, {per_epoch + 1}, {per_epoch + 2}; "
        f"the adversarial terms start at step {per_epoch + 1}): below {PART_RELATIVE:g} of the loss"
    )
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
        f"start at step {per_epoch + 1}), where your functions first act: difference "
    )


def test_the_label_names_whose_functions_ran():
    assert whose(KIT_TERMS) == "the kit's functions again (none of yours ran)"
    assert whose(LossTerms(*(CORRECT[key] for key in KEYS))) == "your functions"
    partial = replace(KIT_TERMS, edge_map=CORRECT["04.1"], soft_dice_loss=CORRECT["04.4"])
    assert whose(partial) == "your edge_map, soft_dice_loss (the kit's for the rest)"


def _results(mine: list[float], kits: list[float], epochs: int = 3) -> dict[str, SegResult]:
    history = [
        {"epoch": e + 1, "loss_adv": float("nan") if e == 0 else 0.3, "val_dice_mean": 0.1} for e in range(epochs)
    ]
    return {
        "your functions": SegResult("last.pt", "best.pt", history, mine),
        KITS: SegResult("last.pt", "best.pt", history, kits),
    }


def test_only_the_steps_where_the_functions_first_act_judge_them():
    """Training amplifies rounding (the default profile: 5e-3 of the loss late in training for correct
    functions): a drift after the judged steps is said to be that, a difference on them is a parting."""
    kits = [3.0] * 30  # 3 epochs of 10 steps; the adversarial terms from step 11
    drifting = kits[:12] + [3.0 * (1 + 1e-6 * 10**k) for k in range(18)]  # right where judged, then drifting
    results = _results(drifting, kits)
    assert judged_steps(results) == [1, 2, 11, 12]
    sentence = parting_sentence(results)
    assert sentence.startswith("the two trainings agree where your functions first act (steps 1, 2, 11, 12;")
    assert "later steps drift apart" in sentence and "cannot tell a right function from a wrong one" in sentence
    wrong = kits[:10] + [3.006] + kits[11:]  # 2e-3 of the loss at the first adversarial step
    assert parting_sentence(_results(wrong, kits)).startswith(
        "the two trainings part at step 11 of 30 (epoch 2; the adversarial terms start at step 11), where your "
        "functions first act: difference 0.006 there, 0.002 of the loss"
    )
    assert parting_sentence(_results(kits, kits)).endswith("and so do all 30 steps (largest difference 0)")
