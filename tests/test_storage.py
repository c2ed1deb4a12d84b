"""Location's local atomic writes: unnamed file + link where the OS allows it, temp name + rename otherwise."""

from __future__ import annotations

import errno
import os

import pytest

from synthgen.storage import Location


def _unnamed_files_work_in(folder) -> bool:
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag:
        return False
    try:
        os.close(os.open(folder, flag | os.O_WRONLY, 0o666))
    except OSError:
        return False
    return True


def _all_entries(root) -> list[str]:
    """Every file under ``root``, hidden temp names included."""
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files)


def test_a_new_file_appears_whole_without_a_rename(tmp_path, monkeypatch):
    if not _unnamed_files_work_in(tmp_path):
        pytest.skip("this filesystem or OS has no O_TMPFILE: the writer renames a temp file (other tests)")

    def no_rename(*args, **kwargs):
        raise AssertionError("a new file was renamed into place")

    out = Location(str(tmp_path / "o"))
    monkeypatch.setattr(os, "replace", no_rename)
    out.write_bytes("png/Bag/000000000007.png", b"\x89PNG seven")
    assert _all_entries(tmp_path / "o") == ["png/Bag/000000000007.png"]
    assert out.read_bytes("png/Bag/000000000007.png") == b"\x89PNG seven"


def test_an_existing_file_is_replaced_with_the_new_bytes(tmp_path):
    out = Location(str(tmp_path / "o"))
    out.write_bytes("manifest.json", b"old")
    out.write_bytes("manifest.json", b"the new manifest")  # a link never replaces: the writer must rename here
    assert _all_entries(tmp_path / "o") == ["manifest.json"]
    assert out.read_bytes("manifest.json") == b"the new manifest"


def test_a_filesystem_without_unnamed_files_gets_temp_and_rename(tmp_path, monkeypatch):
    real_open, unnamed_tries = os.open, []

    def open_without_tmpfile(path, flags, *args, **kwargs):
        tmpfile = getattr(os, "O_TMPFILE", 0)
        if tmpfile and flags & tmpfile == tmpfile:
            unnamed_tries.append(path)
            raise OSError(errno.EOPNOTSUPP, "Operation not supported", path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_without_tmpfile)
    out = Location(str(tmp_path / "o"))
    for i in range(3):
        out.write_bytes(f"png/Coat/{i:012d}.png", bytes([i]) * 10)
    assert _all_entries(tmp_path / "o") == [f"png/Coat/{i:012d}.png" for i in range(3)]
    assert [out.read_bytes(f"png/Coat/{i:012d}.png") for i in range(3)] == [bytes([i]) * 10 for i in range(3)]
    assert len(unnamed_tries) <= 1  # asked once at most, then this Location stops trying


def test_a_write_that_fails_midway_leaves_nothing(tmp_path, monkeypatch):
    def disk_full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    out = Location(str(tmp_path / "o"))
    out.write_bytes("png/Bag/000000000001.png", b"kept")
    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(OSError, match="No space left"):
        out.write_bytes("png/Bag/000000000002.png", b"x" * 4096)
    assert _all_entries(tmp_path / "o") == ["png/Bag/000000000001.png"]
