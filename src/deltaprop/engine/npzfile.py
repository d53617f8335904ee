"""Untrusted ``.npz`` files read safely (model files, data files), and the one atomic-write helper.

An ``.npz`` file is untrusted input: a few kilobytes can claim terabytes. :func:`read_npz` reads
only the members a spec names (a dict of name -> :class:`Member`), by name, in the spec's order,
and checks before reading any data:

- the member's zip entry: not encrypted, stored or deflated, its compressed size within the
  file, its uncompressed size no more than its compressed bytes can hold (equal when stored, at
  most deflate's 1032:1 when deflated) and no more than the spec allows;
- the member's ``.npy`` header (format 1.0 or 2.0, read with :func:`numpy.lib.format.read_magic`
  and ``read_array_header_1_0`` / ``2_0`` without reading the data): a plain dtype of an allowed
  kind (never an object dtype: nothing is unpickled), the rank, the element count (at most the
  spec's maximum, or exactly the shape the members read before it imply), C order, and an
  uncompressed size equal to header plus data.

Only then is the array allocated and filled, chunk by chunk (the zip CRC is checked). Members
the spec does not name are never opened. Every malformed file raises ValueError naming the path
and the problem; a path that does not exist raises FileNotFoundError. Data files use the same
reader with their own spec; the MLP model file's spec is :mod:`deltaprop.engine.modelfile`'s.

:func:`atomic_write` is how deltaprop writes every output file (models, predictions, figures): a
temporary file in the same directory, renamed over the target only when the block succeeds.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import stat
import struct
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Optional, Union

import numpy as np
from numpy.lib import format as npy_format

__all__ = ["Member", "read_npz", "atomic_write"]

#: longest ``.npy`` header accepted (numpy writes ~120 bytes for a vector, padded to 64)
MAX_HEADER_BYTES = 4096
#: deflate cannot expand fewer than this many times its compressed size: 258 bytes per 2 bits
MAX_DEFLATE_RATIO = 1032
#: the data of a member is read in pieces of this size (the array is the only big allocation)
_CHUNK = 1 << 20
_KIND_NAMES = {"b": "booleans", "i": "integers", "u": "integers", "f": "floats", "U": "strings",
               "S": "strings"}


@dataclass(frozen=True)
class Member:
    """What one member of an ``.npz`` file may be.

    Parameters
    ----------
    kinds : str
        Allowed dtype kinds (``"f"``, ``"iu"``, ``"U"``, ``"S"``, ...; never ``"O"``).
    ndim : int or tuple of int
        The rank (0 for a scalar), or the allowed ranks.
    max_size : int or callable
        Most elements: an int, or a function of the members read before (a dict of name -> array).
    shape : callable, optional
        A function of the members read before that returns the exact shape (then ``max_size``
        is not used).
    max_chars : int
        Longest string, for kinds ``"U"`` and ``"S"``.
    optional : bool
        A missing member is left out of the result instead of an error.
    check : callable, optional
        ``check(array, members_before)`` raises ValueError with the problem after the member is read.
    """

    kinds: str
    ndim: Union[int, tuple[int, ...]]
    max_size: Union[int, Callable[[dict[str, np.ndarray]], int]] = 1
    shape: Optional[Callable[[dict[str, np.ndarray]], tuple[int, ...]]] = None
    max_chars: int = 0
    optional: bool = False
    check: Optional[Callable[[np.ndarray, dict[str, np.ndarray]], None]] = None


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def read_npz(path: str | os.PathLike, spec: Mapping[str, Member],
             what: str = "a deltaprop model file") -> dict[str, np.ndarray]:
    """Read the members ``spec`` names from the ``.npz`` file at ``path``.

    The members are read in the spec's order, each checked as described in the module docstring
    before its data is read, so a later member's shape can depend on earlier ones.

    Parameters
    ----------
    path : str or path-like
        The file (untrusted).
    spec : mapping of str to Member
        Member names (without ``.npy``) and what each may be.
    what : str
        The format, for errors ("not a deltaprop model file").

    Returns
    -------
    dict of str to ndarray
        Every member read (a missing optional one is left out).

    Raises
    ------
    ValueError
        For any malformed file, naming the path and the problem.
    FileNotFoundError
        If ``path`` does not exist.
    """
    name = os.fspath(path)
    try:
        fh = open(name, "rb")
    except FileNotFoundError:
        raise
    except OSError as exc:  # a directory, no permission, ...
        raise ValueError(f"{name}: not {what} ({_reason(exc)})") from None
    with fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{name}: not {what} (not a regular file)")
        if fh.read(6) == npy_format.MAGIC_PREFIX:
            raise ValueError(f"{name}: not {what} (a single .npy array, not an .npz archive)")
        fh.seek(0)
        try:
            archive = zipfile.ZipFile(fh)
        except MemoryError:
            raise
        except Exception as exc:  # zipfile raises many kinds on crafted input; all mean "bad file"
            raise ValueError(f"{name}: not {what} (not a readable .npz/zip archive: {_reason(exc)})") from None
        with archive:
            counts = Counter(archive.namelist())
            fields: dict[str, np.ndarray] = {}
            for key, member in spec.items():
                entry = key + ".npy"
                if counts[entry] == 0:
                    if counts[key]:
                        raise ValueError(f"{name}: member {key!r} is stored without the .npy suffix "
                                         f"(not an array written by numpy)")
                    if member.optional:
                        continue
                    raise ValueError(f"{name}: not {what} (it has no member {key!r})")
                if counts[entry] > 1:
                    raise ValueError(f"{name}: member {key!r} appears {counts[entry]} times")
                try:
                    value = _read_member(archive, archive.getinfo(entry), key, member, fields, st.st_size)
                    if member.check is not None:
                        member.check(value, fields)
                except ValueError as exc:
                    raise ValueError(f"{name}: {exc}") from None
                fields[key] = value
    return fields


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, member: Member,
                 fields: dict[str, np.ndarray], file_size: int) -> np.ndarray:
    """One member's array, after checking its zip entry and ``.npy`` header (see the module)."""
    where = f"member {key!r}"
    if info.flag_bits & 0x1:
        raise ValueError(f"{where} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ValueError(f"{where} uses zip compression method {info.compress_type}; "
                         "only stored or deflated members are read")
    if info.header_offset + info.compress_size > file_size:
        raise ValueError(f"{where} claims {info.compress_size} compressed bytes at offset "
                         f"{info.header_offset}, beyond the end of the {file_size}-byte file")
    if info.compress_type == zipfile.ZIP_STORED:
        if info.file_size != info.compress_size:
            raise ValueError(f"{where} is stored uncompressed but claims {info.file_size} bytes "
                             f"in {info.compress_size}")
    elif info.file_size > MAX_DEFLATE_RATIO * info.compress_size:
        raise ValueError(f"{where} claims {info.file_size} bytes, more than its "
                         f"{info.compress_size} compressed bytes can hold")
    if member.shape is not None:
        expected_shape = tuple(int(n) for n in member.shape(fields))
        max_size = math.prod(expected_shape)
    else:
        expected_shape = None
        max_size = member.max_size(fields) if callable(member.max_size) else member.max_size
    max_item = max(8, 4 * member.max_chars) if ("U" in member.kinds or "S" in member.kinds) else 8
    limit = 8 + 4 + MAX_HEADER_BYTES + max_size * max_item
    if info.file_size > limit:
        raise ValueError(f"{where} is {info.file_size} bytes; at most {limit} expected")

    try:
        with archive.open(info) as fh:
            shape, dtype, header_bytes = _read_header(fh, where)
            _check_header(shape, dtype, member, where, max_size, expected_shape)
            count = math.prod(shape)
            nbytes = count * dtype.itemsize
            if info.file_size != header_bytes + nbytes:
                raise ValueError(f"{where} is {info.file_size} bytes, but its header describes "
                                 f"{header_bytes + nbytes} ({count} values of {dtype})")
            array = np.empty(shape, dtype=dtype)
            # ndarray is a Buffer for mypy from Python 3.12 on only (numpy's stubs)
            buf = memoryview(array.reshape(-1).view(np.uint8)) if nbytes else memoryview(b"")  # type: ignore[arg-type]
            done = 0
            while done < nbytes:
                chunk = fh.read(min(_CHUNK, nbytes - done))
                if not chunk:
                    raise ValueError(f"{where} is truncated ({done} of {nbytes} data bytes)")
                buf[done : done + len(chunk)] = chunk
                done += len(chunk)
            if fh.read(1):  # also makes zipfile check the CRC of what was read
                raise ValueError(f"{where} holds more bytes than its header describes")
    except ValueError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # BadZipFile (CRC, local header), zlib.error, EOFError, OSError, ...
        raise ValueError(f"{where} cannot be read ({_reason(exc)})") from None
    return array


def _read_header(fh: IO[bytes], where: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """``(shape, dtype, header size in bytes)`` of an ``.npy`` stream, reading only its header."""
    try:
        version = npy_format.read_magic(fh)
    except ValueError as exc:
        raise ValueError(f"{where} is not a .npy array ({_reason(exc)})") from None
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f"{where} has .npy format version {version[0]}.{version[1]}; 1.0 or 2.0 expected")
    length_format = "<H" if version == (1, 0) else "<I"
    length_bytes = fh.read(struct.calcsize(length_format))
    if len(length_bytes) != struct.calcsize(length_format):
        raise ValueError(f"{where} is truncated inside its .npy header")
    (length,) = struct.unpack(length_format, length_bytes)
    if length > MAX_HEADER_BYTES:
        raise ValueError(f"{where} has a {length}-byte .npy header; at most {MAX_HEADER_BYTES} accepted")
    header = fh.read(length)
    if len(header) != length:
        raise ValueError(f"{where} is truncated inside its .npy header")
    read = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
    try:
        shape, fortran_order, dtype = read(io.BytesIO(length_bytes + header), max_header_size=MAX_HEADER_BYTES)
    except MemoryError:
        raise
    except Exception as exc:  # ValueError mostly; a crafted descr can raise others
        raise ValueError(f"{where} has an invalid .npy header ({_reason(exc)})") from None
    if fortran_order:
        raise ValueError(f"{where} is stored in Fortran order; deltaprop writes C order")
    return tuple(shape), dtype, npy_format.MAGIC_LEN + len(length_bytes) + length


def _check_header(shape: tuple[int, ...], dtype: np.dtype, member: Member, where: str, max_size: int,
                  expected_shape: tuple[int, ...] | None) -> None:
    if dtype.hasobject:
        raise ValueError(f"{where} has an object dtype (a pickle); it is refused, nothing is unpickled")
    if dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in member.kinds:
        wanted = " or ".join(dict.fromkeys(_KIND_NAMES.get(k, k) for k in member.kinds))
        raise ValueError(f"{where} has dtype {dtype}; expected {wanted}")
    if dtype.kind in "US":
        chars = dtype.itemsize // (4 if dtype.kind == "U" else 1)
        if chars > member.max_chars:
            raise ValueError(f"{where} holds strings of up to {chars} characters; "
                             f"at most {member.max_chars} allowed")
    elif dtype.itemsize > 8:
        raise ValueError(f"{where} has dtype {dtype}; at most 8 bytes per value expected")
    ranks = member.ndim if isinstance(member.ndim, tuple) else (member.ndim,)
    if len(shape) not in ranks:
        expected = " or ".join("a scalar" if r == 0 else f"a {r}-D array" for r in ranks)
        raise ValueError(f"{where} has shape {shape}; expected {expected}")
    if any(n < 0 for n in shape):
        raise ValueError(f"{where} has an invalid shape {shape}")
    if expected_shape is not None and shape != expected_shape:
        raise ValueError(f"{where} has shape {shape}; expected {expected_shape}")
    count = math.prod(shape)  # Python ints: no overflow
    if count > max_size:
        raise ValueError(f"{where} holds {count} values; at most {max_size} allowed")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it to ``path`` only if the block succeeds.

    On any exception (KeyboardInterrupt included) the temporary file is removed and ``path`` is
    left as it was.

    Parameters
    ----------
    path : str or path-like
        The file to write.
    mode : str
        ``"wb"``, or a text mode such as ``"w"`` (UTF-8, no newline translation).

    Yields
    ------
    file object
        The temporary file, open in ``mode``.

    Raises
    ------
    FileNotFoundError
        If the directory does not exist.
    IsADirectoryError
        If ``path`` is a directory.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{path}: directory {directory} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path}: is a directory")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        try:
            fh = os.fdopen(fd, mode) if "b" in mode else os.fdopen(fd, mode, newline="", encoding="utf-8")
        except BaseException:
            os.close(fd)
            raise
        with fh:
            yield fh
        os.chmod(tmp, _file_mode(path))  # mkstemp's 0600 -> what open() would have given
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _file_mode(path: str) -> int:
    """Permission bits for ``path``: an existing file's, else 0666 less the process umask."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask
