"""The student's functions in the real training loop (notebook 04's path): once their checks pass,
`exercises.use` hands them to `short_trainings`, and the trainer calls each of them."""

from collections import Counter

import pytest

from ganet_lib.method.train_gan import pretrain_gan_for_run
from ganet_lib.method.train_seg import LossTerms
from ganet_lib.run import setup_run
from ganet_lib.teaching import exercises
from ganet_lib.teaching.in_the_loop import predictions, short_trainings
from tests.method.test_train_seg import spy
from tests.teaching.test_exercises import CORRECT


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run = setup_run("smoke", str(tmp_path_factory.mktemp("loop")), progress=False)
    pretrain_gan_for_run(run, progress=False)
    return run


def test_a_students_functions_are_called_by_the_trainer_when_my_code_is_on(run, monkeypatch):
    monkeypatch.setattr(exercises, "_checked", {})
    calls = Counter()
    written = {key: spy(calls, key, CORRECT[key]) for key in ("04.1", "04.2", "04.3", "04.4")}  # the student's cells
    for key, function in written.items():
        assert exercises.check(key, function) == exercises.PASSED
    yours = LossTerms(*(exercises.use(key, written[key], my_code=True) for key in ("04.1", "04.2", "04.3", "04.4")))
    trained, slices = short_trainings(run, yours, epochs=2)
    assert set(calls) == {"04.1", "04.2", "04.3", "04.4"}
    during_training = dict(calls)
    # Correct lines give the kit's training: the same curve to the last digit.
    ours, kits = (trained[label].history for label in ("your functions", "the kit's"))
    assert [row["loss_total"] for row in ours] == pytest.approx([row["loss_total"] for row in kits], rel=1e-5)
    assert set(predictions(trained, slices, 0)) == {"your functions", "the kit's"}

    calls.clear()
    off = LossTerms(*(exercises.use(key, written[key], my_code=False) for key in ("04.1", "04.2", "04.3", "04.4")))
    short_trainings(run, off, epochs=2)
    assert not calls and min(during_training.values()) > 0  # my_code off: the kit's functions only
