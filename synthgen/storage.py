"""Local folders and pyarrow URIs (``s3://``, ``gs://``, ``file://``), atomic writes, checksums.

Every stage reads and writes through this module, so "is this a URI?", "write without ever leaving
a partial file" and "copy a local log folder into a bucket" each have one implementation.

Atomic writes: the bytes go to a temporary name in the final folder (``.NAME.tmp-<hex>``) and are
moved over the final name when complete. On object stores a move is copy + delete and the final key
appears whole, which keeps the same guarantee. On a local Linux disk a new file is written without a
name (``O_TMPFILE``) and linked under its final name when complete: the same guarantee with no rename,
and a killed writer leaves nothing behind (benchmarks/README.md: a PNG tree is one small file per image).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from synthgen.errors import StorageError

TEMP_RE = re.compile(r"^\..+\.tmp-[0-9a-f]{8,}$")  # temp names written by Location.write_bytes
# Linux: open a file with no name in a folder; it is freed unless linked (0 elsewhere: temp name + rename only)
_O_TMPFILE = getattr(os, "O_TMPFILE", 0)


def _temp_name(folder: str, base: str) -> str:
    """A fresh temporary name for ``base`` in ``folder`` (relative), matching ``TEMP_RE``."""
    name = f".{base}.tmp-{os.urandom(6).hex()}"
    return f"{folder}/{name}" if folder else name


def is_uri(path: str | os.PathLike[str]) -> bool:
    """True for ``scheme://`` paths handled by pyarrow filesystems (s3://, gs://, file://, ...)."""
    return "://" in os.fspath(path)


def driver_path(path: str) -> str:
    """A local path as the driver means it (``~`` expanded, made absolute); URIs and ``""`` unchanged.

    Workers and actors of a joined cluster (``ray start``, ``ray job submit``) run in Ray's session folder, where
    a relative path names nothing (or another folder): paths handed to them are resolved on the driver first.
    """
    if not path or is_uri(path):
        return path
    return os.path.abspath(os.path.expanduser(path))


def open_location(path: str | os.PathLike[str]) -> tuple[pafs.FileSystem, str]:
    """Map a local folder or pyarrow URI to ``(filesystem, base path without a trailing /)``.

    Raises:
        StorageError: the URI's filesystem cannot be opened (unknown scheme, missing credentials).
    """
    text = os.fspath(path)
    if not is_uri(text):
        return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(text)).rstrip("/") or "/"
    try:
        fs, base = pafs.FileSystem.from_uri(text)
    except (pa.ArrowException, ValueError, OSError) as exc:
        raise StorageError(f"cannot open {text!r}: {exc}; check the URI scheme and credentials") from exc
    return fs, base.rstrip("/") or "/"


def join_path(base: str, rel: str) -> str:
    """``base/rel`` for any pyarrow filesystem (always "/" separators)."""
    return f"{base.rstrip('/')}/{rel}" if rel else base


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a local file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to the local file ``path`` through a temp file in the same folder and ``os.replace``."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to the local file ``path`` through a temp file in the same folder and ``os.replace``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def copy_local_tree(local_dir: str, target: str, skip_hidden: bool = True) -> None:
    """Copy every file under the local folder ``local_dir`` to ``target`` (a folder or URI).

    Used to mirror logs written locally (object stores cannot append) into a URI run folder.
    """
    fs, root = open_location(target)
    for dirpath, _, files in os.walk(local_dir):
        rel = os.path.relpath(dirpath, local_dir)
        folder = root if rel == "." else join_path(root, rel.replace(os.sep, "/"))
        fs.create_dir(folder, recursive=True)  # a no-op on object stores; local and file:// need it
        for name in files:
            if skip_hidden and name.startswith("."):
                continue
            pafs.copy_files(os.path.join(dirpath, name), join_path(folder, name), destination_filesystem=fs)


class Location:
    """A folder (local path or pyarrow URI) with atomic writes and paths relative to it.

    Pickles as its URI, so Ray tasks re-open the filesystem where they run.
    """

    def __init__(self, uri: str) -> None:
        self.uri = os.fspath(uri)
        self.fs, self.root = open_location(self.uri)
        # local folders (plain paths and file:// URIs) are written with os calls: a PNG tree is one small file per
        # image, and pyarrow's per-file create_dir + stream + move costs about 3x as much per file
        self.local = isinstance(self.fs, pafs.LocalFileSystem)
        self._made: set[str] = set()  # folders this instance has created (or found), so each is made once
        self._unnamed = bool(_O_TMPFILE) and self.local  # new local files: unnamed + link (write_bytes)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return Location, (self.uri,)

    def path(self, rel: str = "") -> str:
        """Filesystem path of ``rel`` (relative to the folder)."""
        return join_path(self.root, rel)

    def display(self, rel: str = "") -> str:
        """``rel`` as the user would write it (URI or local path), for messages."""
        return f"{self.uri.rstrip('/')}/{rel}" if rel else self.uri

    def kind(self, rel: str = "") -> pafs.FileType:
        """What is at ``rel``: ``FileType.File``, ``Directory`` or ``NotFound``."""
        return self.fs.get_file_info(self.path(rel)).type

    def exists(self, rel: str) -> bool:
        """True when ``rel`` is a file."""
        return self.kind(rel) == pafs.FileType.File

    def size(self, rel: str) -> int:
        """Size of file ``rel`` in bytes."""
        return int(self.fs.get_file_info(self.path(rel)).size)

    def read_bytes(self, rel: str) -> bytes:
        """The whole content of file ``rel``."""
        with self.fs.open_input_stream(self.path(rel)) as fh:
            return fh.read()

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write ``data`` to ``rel`` atomically: the file appears whole or not at all (module docstring)."""
        folder, base = rel.rsplit("/", 1) if "/" in rel else ("", rel)
        if self.local:
            self._write_local(folder, rel, data)
            return
        tmp = _temp_name(folder, base)
        self.fs.create_dir(self.path(folder), recursive=True)
        try:
            with self.fs.open_output_stream(self.path(tmp)) as fh:
                fh.write(data)
            self.fs.move(self.path(tmp), self.path(rel))
        except BaseException:
            self.delete(tmp)
            raise

    def _write_local(self, folder: str, rel: str, data: bytes) -> None:
        """``write_bytes`` on a local disk, with os calls."""
        if folder not in self._made:
            os.makedirs(self.path(folder), exist_ok=True)
            self._made.add(folder)
        try:
            self._put_local(folder, rel, data)
        except FileNotFoundError:  # the folder was removed since this instance made it (--overwrite): again
            os.makedirs(self.path(folder), exist_ok=True)
            self._put_local(folder, rel, data)

    def _put_local(self, folder: str, rel: str, data: bytes) -> None:
        """The file unnamed and linked into place where the OS allows (``_link_unnamed``), else a temp file in the
        final folder and ``os.replace``."""
        if self._unnamed and self._link_unnamed(folder, rel, data):
            return
        tmp = self.path(_temp_name(folder, rel.rsplit("/", 1)[-1]))
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, self.path(rel))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _link_unnamed(self, folder: str, rel: str, data: bytes) -> bool:
        """Write ``data`` into an unnamed file in ``folder`` and link it as ``rel`` (over an existing ``rel``: linked
        under a temp name, then moved); False (nothing written) where this filesystem or OS has no unnamed files
        (then never tried again here).

        Raises:
            FileNotFoundError: the folder is gone. OSError: a write error (e.g. disk full); nothing is left.
        """
        try:
            fd = os.open(self.path(folder), _O_TMPFILE | os.O_WRONLY, 0o666)
        except FileNotFoundError:
            raise
        except OSError:  # EOPNOTSUPP / EISDIR / EINVAL: no O_TMPFILE on this filesystem or kernel
            self._unnamed = False
            return False
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            try:
                # Python's os.link calls link(2), which would link the /proc symlink itself; a dir fd makes it
                # call linkat(2) with AT_SYMLINK_FOLLOW, which links the open file (the path is absolute, so
                # the dir fd itself is ignored)
                os.link(f"/proc/self/fd/{fd}", self.path(rel), src_dir_fd=fd, follow_symlinks=True)
            except FileExistsError:  # a link never replaces: link the written file under a temp name, move it over
                tmp = self.path(_temp_name(folder, rel.rsplit("/", 1)[-1]))
                os.link(f"/proc/self/fd/{fd}", tmp, src_dir_fd=fd, follow_symlinks=True)
                try:
                    os.replace(tmp, self.path(rel))
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
                    raise
            except OSError:  # no /proc (some sandboxes): temp name + rename from here on
                self._unnamed = False
                return False
        finally:
            os.close(fd)
        return True

    def delete(self, rel: str) -> None:
        """Delete file ``rel`` if it exists."""
        try:
            self.fs.delete_file(self.path(rel))
        except (FileNotFoundError, OSError):
            pass

    def delete_dir(self, rel: str) -> None:
        """Delete folder ``rel`` and everything under it, if it exists."""
        if self.kind(rel) == pafs.FileType.Directory:
            self.fs.delete_dir(self.path(rel))

    def list_files(self, rel: str = "") -> list[str]:
        """Relative paths of every file under ``rel`` (recursive, sorted); [] if it is missing."""
        selector = pafs.FileSelector(self.path(rel), recursive=True, allow_not_found=True)
        prefix = self.root.rstrip("/") + "/"
        return sorted(i.path[len(prefix) :] for i in self.fs.get_file_info(selector) if i.type == pafs.FileType.File)

    def entries(self) -> list[str]:
        """Names directly under the folder (files and folders); [] if it does not exist."""
        selector = pafs.FileSelector(self.root, recursive=False, allow_not_found=True)
        return sorted(i.base_name for i in self.fs.get_file_info(selector))

    def clean_stale_temps(self) -> list[str]:
        """Delete temp files left by a crashed writer; return their relative paths."""
        stale = [rel for rel in self.list_files() if TEMP_RE.match(rel.rsplit("/", 1)[-1])]
        for rel in stale:
            self.delete(rel)
        return stale
