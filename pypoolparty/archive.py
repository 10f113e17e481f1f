"""Zip archives that many chunk outputs are folded into.

Appending to a zip rewrites its central directory at the end of the file. If
the submitting process is killed in between, the file ends in entries without
a directory and ``zipfile`` can no longer open it. :func:`repair` then
rebuilds the archive from the local entry headers, which are complete for
every entry written before the kill, so finished work survives.
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib

LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"


def append(path: str, members: dict[str, bytes]) -> None:
    """Add ``members`` (name -> bytes) to the archive at ``path``, creating it if needed.

    The file is flushed to disk before this returns, so the caller may then
    delete the originals.
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
    """Return member ``name`` of the archive at ``path``."""
    with zipfile.ZipFile(path) as archive:
        return archive.read(name)


def names(path: str) -> list[str]:
    """Names of the members of the archive at ``path``; none if it does not exist."""
    if not os.path.exists(path):
        return []
    if not zipfile.is_zipfile(path):
        repair(path)
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def repair(path: str) -> int:
    """Rebuild a zip whose central directory was lost; return the entries saved.

    Entries are read one after the other from their local headers; the first
    one that is cut off or fails its checksum ends the scan.
    """
    with open(path, "rb") as file:
        content = file.read()
    saved = {}
    offset = 0
    while content[offset : offset + 4] == LOCAL_HEADER_SIGNATURE:
        entry = _read_local_entry(content, offset)
        if entry is None:
            break
        name, data, offset = entry
        saved[name] = data
    repaired_path = f"{path}.repairing"
    descriptor = os.open(repaired_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        with zipfile.ZipFile(file, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in saved.items():
                archive.writestr(name, data, compresslevel=1)
        file.flush()
        os.fsync(file.fileno())
    os.replace(repaired_path, path)
    return len(saved)


def _read_local_entry(content: bytes, offset: int):
    end_of_header = offset + LOCAL_HEADER.size
    if end_of_header > len(content):
        return None
    (_, _, flags, method, _, _, crc, compressed_size, _, name_length, extra_length) = (
        LOCAL_HEADER.unpack_from(content, offset)
    )
    if flags & 0x08:
        # Sizes follow the data: zipfile never writes this to a seekable file.
        return None
    start = end_of_header + name_length + extra_length
    stop = start + compressed_size
    if stop > len(content):
        return None
    name = content[end_of_header : end_of_header + name_length].decode("utf-8")
    raw = content[start:stop]
    try:
        data = zlib.decompress(raw, -15) if method == zipfile.ZIP_DEFLATED else raw
    except zlib.error:
        return None
    if zlib.crc32(data) != crc:
        return None
    return name, data, stop
