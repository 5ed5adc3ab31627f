"""Tests for the IDX reader and writer."""

import gzip
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from keras_darn.datasets import read_idx
from keras_darn.datasets import write_idx

DTYPES = ["uint8", "int8", "int16", "int32", "float32", "float64"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip(tmp_path, dtype):
    for suffix in ["", ".gz"]:
        for shape in [(5,), (3, 4, 2), (0, 7), ()]:
            array = (np.arange(int(np.prod(shape))) * 7 - 3).reshape(shape)
            array = array.astype(dtype)
            path = tmp_path / f"data-{len(shape)}-idx{suffix}"
            write_idx(path, array)
            read = read_idx(path)
            assert read.dtype == np.dtype(dtype)
            assert read.shape == shape
            np.testing.assert_array_equal(read, array)


def test_written_bytes_follow_the_format(tmp_path):
    array = np.array([[1, 2, 3], [4, 5, 255]], dtype="uint8")
    write_idx(tmp_path / "plain", array)
    expected = bytes([0, 0, 0x08, 2]) + struct.pack(">II", 2, 3) + array.tobytes()
    assert (tmp_path / "plain").read_bytes() == expected

    write_idx(tmp_path / "packed.gz", array)
    raw = (tmp_path / "packed.gz").read_bytes()
    assert raw[:2] == b"\x1f\x8b", "a .gz name must be written gzip-compressed"
    assert gzip.decompress(raw) == expected


def test_reads_big_endian_data_written_by_hand(tmp_path):
    values = [1, -2, 70000]
    payload = bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 3) + struct.pack(">3i", *values)
    (tmp_path / "ints").write_bytes(payload)
    read = read_idx(tmp_path / "ints")
    assert read.dtype == np.dtype("int32") and read.dtype.isnative
    np.testing.assert_array_equal(read, values)
    read[0] = 5  # Callers may modify what they load, as with Keras' datasets.


@pytest.mark.parametrize(
    "payload, match",
    [
        (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00", "magic"),
        (b"PK\x03", "magic"),
        (b"\x00\x00\x0a\x01" + struct.pack(">I", 1) + b"\x00", "type code"),
        (b"\x00\x00\x08\x02" + struct.pack(">I", 1), "header"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 4) + b"\x00\x01", "truncated"),
    ],
)
def test_invalid_files_raise_clear_errors(tmp_path, payload, match):
    path = tmp_path / "bad"
    path.write_bytes(payload)
    with pytest.raises(ValueError, match=match) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_gzip_files_are_validated_after_decompression(tmp_path):
    path = tmp_path / "bad.gz"
    path.write_bytes(gzip.compress(b"\x00\x01\x08\x01"))
    with pytest.raises(ValueError, match="magic"):
        read_idx(path)
    path.write_bytes(b"\x00\x00\x08\x01" + struct.pack(">I", 1) + b"\x07")
    with pytest.raises(ValueError, match="not gzip-compressed"):
        read_idx(path)


@pytest.mark.parametrize("dtype", ["uint16", "int64", "bool", "complex64"])
def test_write_rejects_dtypes_without_a_type_code(tmp_path, dtype):
    with pytest.raises(ValueError, match=f"array.dtype={dtype}"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=dtype))


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "absent.gz")


@settings(max_examples=30, deadline=None)
@given(
    array=hnp.arrays(
        dtype=st.sampled_from(DTYPES),
        shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=5),
    ),
    compressed=st.booleans(),
)
def test_round_trip_property(tmp_path_factory, array, compressed):
    path = tmp_path_factory.mktemp("idx") / ("a.gz" if compressed else "a")
    write_idx(path, array)
    np.testing.assert_array_equal(read_idx(path), array)
