"""Read and write arrays in the IDX format of MNIST and Fashion-MNIST.

An IDX file is a 4-byte magic number (two zero bytes, a type code and the
number of dimensions), one big-endian 32-bit size per dimension, then the data
in row-major order, big-endian. Files whose name ends in `.gz` are read and
written gzip-compressed.
"""

import gzip
import os
import struct

import numpy as np

# Type code in the third byte of the magic number -> big-endian NumPy dtype.
_TYPE_CODE_TO_DTYPE = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_KIND_AND_SIZE_TO_TYPE_CODE = {
    (dtype.kind, dtype.itemsize): code
    for code, dtype in _TYPE_CODE_TO_DTYPE.items()
}


def _open(path, mode):
    if os.fspath(path).endswith(".gz"):
        return gzip.open(path, mode)
    return open(path, mode)


def read_idx(path):
    """Reads an IDX file into a NumPy array.

    Args:
        path: path of the file; a name ending in `.gz` is decompressed.

    Returns:
        A NumPy array with the file's shape and its element type in native
        byte order (`uint8` for MNIST-style images and labels).

    Raises:
        ValueError: if the file does not start with a valid IDX magic number,
            holds fewer bytes than its header announces, or is named `.gz`
            without being gzip-compressed.
        FileNotFoundError: if `path` does not exist.

    Example:

    >>> images = read_idx("train-images-idx3-ubyte.gz")
    >>> images.shape, images.dtype
    ((60000, 28, 28), dtype('uint8'))
    """
    try:
        with _open(path, "rb") as f:
            return _read_open_idx(f, path)
    except gzip.BadGzipFile as error:
        raise ValueError(
            f"{path} ends in .gz but is not gzip-compressed: {error}"
        ) from error


def _read_open_idx(f, path):
    magic = f.read(4)
    if len(magic) != 4 or magic[0] != 0 or magic[1] != 0:
        raise ValueError(
            f"{path} is not an IDX file: expected a magic number starting "
            f"with two zero bytes. Received: magic={magic!r}"
        )
    type_code, ndim = magic[2], magic[3]
    if type_code not in _TYPE_CODE_TO_DTYPE:
        raise ValueError(
            f"{path} has an unknown IDX type code. Expected one of "
            f"{sorted(hex(c) for c in _TYPE_CODE_TO_DTYPE)}. "
            f"Received: type_code={hex(type_code)}"
        )
    header = f.read(4 * ndim)
    if len(header) != 4 * ndim:
        raise ValueError(
            f"{path} is truncated: its header announces {ndim} dimensions "
            f"but holds {len(header)} bytes of sizes."
        )
    shape = struct.unpack(f">{ndim}I", header)
    dtype = _TYPE_CODE_TO_DTYPE[type_code]
    expected_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    data = f.read(expected_bytes)
    if len(data) != expected_bytes:
        raise ValueError(
            f"{path} is truncated: shape {shape} needs {expected_bytes} bytes "
            f"of data. Received: {len(data)} bytes"
        )
    array = np.frombuffer(data, dtype=dtype).reshape(shape)
    # The copy makes the array writable and native-endian.
    return array.astype(dtype.newbyteorder("="))


def write_idx(path, array):
    """Writes a NumPy array as an IDX file.

    Args:
        path: path of the file to write; a name ending in `.gz` is written
            gzip-compressed.
        array: array-like of `uint8`, `int8`, `int16`, `int32`, `float32` or
            `float64` with at most 255 dimensions.

    Raises:
        ValueError: if the array's dtype has no IDX type code.

    Example:

    >>> write_idx("labels-idx1-ubyte.gz", np.array([3, 1, 4], dtype="uint8"))
    >>> read_idx("labels-idx1-ubyte.gz")
    array([3, 1, 4], dtype=uint8)
    """
    array = np.asarray(array)
    key = (array.dtype.kind, array.dtype.itemsize)
    if key not in _KIND_AND_SIZE_TO_TYPE_CODE:
        raise ValueError(
            "Received an array whose dtype has no IDX type code; expected one "
            "of uint8, int8, int16, int32, float32, float64. "
            f"Received: array.dtype={array.dtype}"
        )
    if array.ndim > 255:
        raise ValueError(
            "IDX files hold at most 255 dimensions. "
            f"Received: array.ndim={array.ndim}"
        )
    type_code = _KIND_AND_SIZE_TO_TYPE_CODE[key]
    big_endian = array.astype(_TYPE_CODE_TO_DTYPE[type_code], copy=False)
    with _open(path, "wb") as f:
        f.write(bytes([0, 0, type_code, array.ndim]))
        f.write(struct.pack(f">{array.ndim}I", *array.shape))
        f.write(np.ascontiguousarray(big_endian).tobytes())
