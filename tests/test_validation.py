"""Tests for the shared argument checks."""

import numpy as np
import pytest

from keras_darn.validation import check_layer_names
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


def test_layer_names_accepts_lists_of_names_and_names_what_it_expected():
    check_layer_names(["a", "b"], "exclude")
    check_layer_names((), "exclude")
    check_layer_names(None, "layers", allow_none=True)
    with pytest.raises(ValueError, match=r"`exclude`, expected a list of layer names\. "
                                         r"Received: exclude='a'"):
        check_layer_names("a", "exclude")
    with pytest.raises(ValueError, match="expected a list of layer names or None"):
        check_layer_names([1], "layers", allow_none=True)
    with pytest.raises(ValueError, match="Received: layers=None"):
        check_layer_names(None, "layers")
