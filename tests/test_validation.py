"""Tests for the shared argument checks."""

import numpy as np
import pytest

from keras_darn.validation import check_one_of
from keras_darn.validation import check_positive_int


@pytest.mark.parametrize("value", [1, 7, np.int64(3)])
def test_accepts_positive_integers(value):
    check_positive_int(value, "steps")


@pytest.mark.parametrize("value", [0, -2, 1.0, 2.5, True, "3", None])
def test_rejects_others_naming_argument_and_value(value):
    with pytest.raises(ValueError, match=rf"`steps`, expected a positive integer\. Received: steps={value!r}"):
        check_positive_int(value, "steps")


def test_one_of_accepts_allowed_and_names_the_rest():
    check_one_of("std", "mode", ("fraction", "std"))
    with pytest.raises(ValueError, match=r"`mode`, expected one of \('fraction', 'std'\)\. "
                                         r"Received: mode='global'"):
        check_one_of("global", "mode", ("fraction", "std"))
