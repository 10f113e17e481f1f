"""Zip archives that many chunk outputs are folded into, written and read.

Appending to a zip rewrites its central directory at the end of the file. If
the submitting process is killed in between, the file ends in entries without
a directory and ``zipfile`` can no longer open it. :func:`repair` then
rebuilds the archive from the local entry headers, which are complete for
every entry written before the kill, so finished work survives.

The map writes with :func:`append` and reads with :func:`read` and
:func:`names`, which repair an archive they cannot open. An inspector must
not write, may read an archive in the middle of an append (its central
directory then points at entries being overwritten), and must not keep an
object per member (tens of megabytes for 100,000 members, as ``zipfile``
does). :func:`members`, :func:`contents`, :func:`read_member` and
:func:`read_each` are for it: they read the central directory as bytes and,
if that is not consistent, walk the local headers in place, with the same
walker :func:`repair` uses. Members are read one at a time and checked
against their CRC: a member overwritten while it was read is not there.
"""

from __future__ import annotations

import dataclasses
import os
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_END_OF_DIRECTORY = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_END_OF_DIRECTORY = struct.Struct("<4sQ2H2L4Q")
_CENTRAL_HEADER = struct.Struct("<4s4B4HL2L5H2L")
_LOCAL_SIGNATURE = b"PK\x03\x04"
_END_SIGNATURE = b"PK\x05\x06"
_ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_ZIP64_END_SIGNATURE = b"PK\x06\x06"
_CENTRAL_SIGNATURE = b"PK\x01\x02"
_ZIP64_EXTRA_ID = 0x0001
_OVERFLOW_32 = 0xFFFFFFFF
"""A 32-bit size or offset with this value is in the zip64 extra field."""
_OVERFLOW_16 = 0xFFFF
_DATA_DESCRIPTOR_FLAG = 0x08


@dataclasses.dataclass(frozen=True)
class Member:
    """Where a member's data is, and how to check it."""

    name: str
    offset: int
    """Of its local header."""
    compressed_size: int
    method: int
    crc: int


# -- the map's side: append, read, repair -------------------------------------


def append(path: str, members: dict[str, bytes]) -> None:
    """Add ``members`` (name -> bytes) to the archive at ``path``, creating it if needed.

    A member whose name is already in the archive is left as it is. The file
    is flushed to disk before this returns, so the caller may then delete
    the originals.

    Raises
    ------
    OSError
        If the archive cannot be written (a full disk, say).
    """
    if not members:
        return
    if os.path.exists(path) and not zipfile.is_zipfile(path):
        repair(path)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    with os.fdopen(descriptor, "r+b") as file:
        mode = "a" if os.fstat(file.fileno()).st_size > 0 else "w"
        with zipfile.ZipFile(file, mode=mode, compression=zipfile.ZIP_DEFLATED) as archive:
            existing = set(archive.namelist())
            for name, data in members.items():
                if name not in existing:
                    archive.writestr(name, data, compresslevel=1)
        file.flush()
        os.fsync(file.fileno())


def read(path: str, name: str) -> bytes:
    """Return member ``name`` of the archive at ``path``.

    Raises
    ------
    KeyError
        If the archive has no member ``name``.
    """
    with zipfile.ZipFile(path) as archive:
        return archive.read(name)


def names(path: str) -> list[str]:
    """Names of the members of the archive at ``path``; none if it does not exist.

    An archive whose central directory was lost is repaired first (a write).
    """
    if not os.path.exists(path):
        return []
    if not zipfile.is_zipfile(path):
        repair(path)
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def repair(path: str) -> int:
    """Rebuild a zip whose central directory was lost; return the entries saved.

    Entries are read one after the other from their local headers; the first
    one that is cut off or fails its checksum ends the scan. One entry at a
    time is in memory.
    """
    repaired_path = f"{path}.repairing"
    saved: set[str] = set()
    with open(path, "rb") as damaged:
        descriptor = os.open(repaired_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            with zipfile.ZipFile(file, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:
                # The walker seeks before each header: reading a member in between is safe.
                for member in _local_members(damaged):
                    data = _read_from(damaged, member)
                    if data is None:
                        break
                    if member.name not in saved:
                        archive.writestr(member.name, data, compresslevel=1)
                        saved.add(member.name)
            file.flush()
            os.fsync(file.fileno())
    os.replace(repaired_path, path)
    return len(saved)


# -- an inspector's side: read without ever writing ----------------------------


def members(path: str) -> Iterator[Member]:
    """The members of the zip at ``path``; none if it does not exist. Never writes."""
    try:
        file = open(path, "rb")
    except FileNotFoundError:
        return
    with file:
        yield from _members_in(file)


def contents(path: str, wanted: Callable[[str], bool]) -> Iterator[tuple[Member, bytes | None]]:
    """The members whose name ``wanted`` accepts, with their content, read through one handle.

    The content is None where the member is gone or was overwritten meanwhile
    (it fails its CRC). Never writes.
    """
    try:
        file = open(path, "rb")
    except FileNotFoundError:
        return
    with file:
        for member in _members_in(file):
            if wanted(member.name):
                yield member, _read_from(file, member)


def read_member(path: str, name: str) -> bytes | None:
    """The content of the member ``name``; None if it is not there or was overwritten meanwhile.

    Unlike :func:`read`, never writes and never raises for a missing member.
    """
    found = [data for _, data in contents(path, lambda member_name: member_name == name)]
    return found[-1] if found else None


def read_each(path: str, wanted: Iterable[Member]) -> Iterator[bytes | None]:
    """The content of each member of ``wanted``, in that order, read through one handle."""
    try:
        file = open(path, "rb")
    except FileNotFoundError:
        for _ in wanted:
            yield None
        return
    with file:
        for member in wanted:
            yield _read_from(file, member)


def _members_in(file: BinaryIO) -> Iterator[Member]:
    directory = _central_directory(file)
    if directory is not None:
        yield from _central_members(*directory)
    else:
        yield from _local_members(file)


def _central_directory(file: BinaryIO) -> tuple[bytes, int] | None:
    """The central directory's bytes and member count, if they are consistent."""
    size = file.seek(0, os.SEEK_END)
    tail_size = min(size, _END_OF_DIRECTORY.size + _OVERFLOW_16)  # the comment is at most that
    file.seek(size - tail_size)
    tail = file.read(tail_size)
    position = tail.rfind(_END_SIGNATURE)
    if position < 0 or position + _END_OF_DIRECTORY.size > len(tail):
        return None
    end_offset = size - tail_size + position
    (_, _, _, _, count, directory_size, directory_offset, _) = _END_OF_DIRECTORY.unpack_from(
        tail, position
    )
    if count == _OVERFLOW_16 or _OVERFLOW_32 in (directory_size, directory_offset):
        zip64 = _zip64_directory(file, end_offset)
        if zip64 is None:
            return None
        count, directory_size, directory_offset = zip64
    if directory_offset + directory_size > end_offset:
        return None
    file.seek(directory_offset)
    directory = file.read(directory_size)
    if len(directory) != directory_size or not _is_consistent(directory, count):
        return None
    return directory, count


def _zip64_directory(file: BinaryIO, end_offset: int) -> tuple[int, int, int] | None:
    """Member count, size and offset of the central directory, from the zip64 records."""
    if end_offset < _ZIP64_LOCATOR.size:
        return None
    file.seek(end_offset - _ZIP64_LOCATOR.size)
    locator = file.read(_ZIP64_LOCATOR.size)
    if len(locator) != _ZIP64_LOCATOR.size or locator[:4] != _ZIP64_LOCATOR_SIGNATURE:
        return None
    file.seek(_ZIP64_LOCATOR.unpack(locator)[2])
    record = file.read(_ZIP64_END_OF_DIRECTORY.size)
    if len(record) != _ZIP64_END_OF_DIRECTORY.size or record[:4] != _ZIP64_END_SIGNATURE:
        return None
    count, directory_size, directory_offset = _ZIP64_END_OF_DIRECTORY.unpack(record)[7:10]
    return count, directory_size, directory_offset


def _is_consistent(directory: bytes, count: int) -> bool:
    """Whether ``directory`` is exactly ``count`` central headers."""
    offset = 0
    for _ in range(count):
        if directory[offset : offset + 4] != _CENTRAL_SIGNATURE:
            return False
        if offset + _CENTRAL_HEADER.size > len(directory):
            return False
        variable_lengths = _CENTRAL_HEADER.unpack_from(directory, offset)[12:15]
        offset += _CENTRAL_HEADER.size + sum(variable_lengths)  # name, extra field, comment
    return offset == len(directory)


def _central_members(directory: bytes, count: int) -> Iterator[Member]:
    offset = 0
    for _ in range(count):
        fields = _CENTRAL_HEADER.unpack_from(directory, offset)
        method, crc, compressed, uncompressed = fields[6], fields[9], fields[10], fields[11]
        name_length, extra_length, comment_length = fields[12:15]
        local_offset = fields[18]
        name_start = offset + _CENTRAL_HEADER.size
        name = directory[name_start : name_start + name_length].decode("utf-8", "replace")
        extra = directory[name_start + name_length : name_start + name_length + extra_length]
        _, compressed, local_offset = _widen_from_zip64_extra(
            [uncompressed, compressed, local_offset], extra
        )
        yield Member(name, local_offset, compressed, method, crc)
        offset = name_start + name_length + extra_length + comment_length


def _widen_from_zip64_extra(values: list[int], extra: bytes) -> list[int]:
    """Replace the 32-bit fields that overflowed by their zip64 extra values, in order."""
    position = 0
    while position + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, position)
        if tag == _ZIP64_EXTRA_ID:
            data = extra[position + 4 : position + 4 + length]
            widened, cursor = [], 0
            for value in values:
                if value == _OVERFLOW_32 and cursor + 8 <= len(data):
                    value = struct.unpack_from("<Q", data, cursor)[0]
                    cursor += 8
                widened.append(value)
            return widened
        position += 4 + length
    return values


def _local_members(file: BinaryIO) -> Iterator[Member]:
    """Members found by walking the local headers; stops at the first cut-off one.

    The one walker of local headers: :func:`repair` rebuilds an archive from
    it, and an inspector reads an archive without a usable directory with it.
    """
    size = file.seek(0, os.SEEK_END)
    offset = 0
    while offset + _LOCAL_HEADER.size <= size:
        file.seek(offset)
        header = file.read(_LOCAL_HEADER.size)
        if header[:4] != _LOCAL_SIGNATURE:
            return
        (_, _, flags, method, _, _, crc, compressed, uncompressed, name_length, extra_length) = (
            _LOCAL_HEADER.unpack(header)
        )
        if flags & _DATA_DESCRIPTOR_FLAG:
            return  # sizes follow the data: cannot skip over it
        name_and_extra = file.read(name_length + extra_length)
        extra = name_and_extra[name_length:]
        _, compressed = _widen_from_zip64_extra([uncompressed, compressed], extra)
        data_start = offset + _LOCAL_HEADER.size + name_length + extra_length
        if data_start + compressed > size:
            return
        name = name_and_extra[:name_length].decode("utf-8", "replace")
        yield Member(name, offset, compressed, method, crc)
        offset = data_start + compressed


def _read_from(file: BinaryIO, member: Member) -> bytes | None:
    """The content of ``member``; None if it is gone or was overwritten meanwhile."""
    try:
        file.seek(member.offset)
        header = file.read(_LOCAL_HEADER.size)
        if len(header) != _LOCAL_HEADER.size or header[:4] != _LOCAL_SIGNATURE:
            return None
        name_length, extra_length = _LOCAL_HEADER.unpack(header)[9:11]
        file.seek(name_length + extra_length, os.SEEK_CUR)
        raw = file.read(member.compressed_size)
    except OSError:
        return None
    try:
        data = zlib.decompress(raw, -15) if member.method == zipfile.ZIP_DEFLATED else raw
    except zlib.error:
        return None
    return data if zlib.crc32(data) == member.crc else None
