"""A synthetic subject and its slice with the most tumour, for the figure tests."""

import numpy as np
import pytest

from ganet_lib.data.cases import find_brats_cases, load_case


@pytest.fixture(scope="module")
def case(synthetic_root):
    image, label, _ = load_case(find_brats_cases(synthetic_root / "brats")[0])
    return image, label, int(np.argmax(label.astype(bool).sum(axis=(0, 1))))
