"""The one way cardctl writes a file it was asked to write (``report --html``, ``audit export``).

A name given on the command line is a wish, not a licence: a typo or a tab completion can
name the database, its key or a device. So every output file goes through ``output_file``:

- ``-`` is standard output;
- a path that exists but is not a regular file (a device, a directory, a FIFO, a socket, a
  symbolic link to one or to nothing) is refused, ``--force`` or not;
- cardctl's own files (``Settings.protected_files``: the SQLite database with its ``-wal``,
  ``-shm`` and ``-journal``, and every key file) are refused, ``--force`` or not, however
  they are spelled: an existing file is compared by device and inode (a symbolic or hard
  link to the database is the database), a missing one by its folder's device and inode
  and its name;
- any other existing file is kept unless ``--force`` is given;
- the content goes to a hidden temporary file beside the target (mode 0600: reports and
  exports name holders), is synced, and appears under its name only when complete: a hard
  link (which never replaces a file that appeared meanwhile), or with ``--force`` a rename
  over the old file. A crash, Ctrl-C or an error leaves the old file, or nothing.

Refusals are ``InvalidInput`` (exit 2): the path given cannot be an output file
(docs/security.md, "Output files").
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

from .errors import CardctlError, InvalidInput
from .i18n import _

STDOUT = "-"


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _place(path: Path) -> tuple[int, int, str] | None:
    """Where a name lives, whatever the spelling of its folder: (device, inode of the folder, name)."""
    folder = _identity(path.parent if str(path.parent) else Path("."))
    return None if folder is None else (*folder, path.name)


def check_target(target: str, force: bool, protected: Iterable[Path]) -> Path | None:
    """The path to write, or None for standard output; refuses what must never be written."""
    if target == STDOUT:
        return None
    if not target or "\x00" in target:
        raise InvalidInput(_("{file!r} is not a file name").format(file=target[:80]))
    path = Path(target)
    protected = [Path(p) for p in protected]
    found = _identity(path)
    if found is not None and found in {_identity(p) for p in protected}:
        raise InvalidInput(_("{file} is one of cardctl's own files (its database or a key file); an output file "
                             "never replaces it, not even with --force").format(file=target))
    if found is None and _place(path) is not None and _place(path) in {_place(p) for p in protected}:
        raise InvalidInput(_("{file} is the name of one of cardctl's own files (its database or a key file); an "
                             "output file never takes it").format(file=target))
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.lexists(path):
            raise InvalidInput(_("{file} is a symbolic link to nothing; an output file is written only to a "
                                 "regular file").format(file=target)) from None
        return path
    except OSError as exc:
        raise InvalidInput(_("cannot write {file}: {error}").format(file=target, error=exc.strerror)) from None
    if stat.S_ISDIR(mode):
        raise InvalidInput(_("{file} is a directory; give a file name").format(file=target))
    if not stat.S_ISREG(mode):
        raise InvalidInput(_("{file} is not a regular file (a device, FIFO or socket); an output file is written "
                             "only to a regular file").format(file=target))
    if not force:
        raise InvalidInput(_("{file} exists; an output file never replaces a file unless --force is given").format(
            file=target))
    return path


@contextlib.contextmanager
def output_file(target: str, force: bool, protected: Iterable[Path]) -> Iterator[BinaryIO]:
    """A binary stream to ``target`` that appears under its name only once complete.

    ``protected``: ``Settings.protected_files()``. The target is checked before anything is
    written and again just before it is published, so a file put there meanwhile is kept.
    """
    protected = list(protected)
    path = check_target(target, force, protected)
    if path is None:
        sys.stdout.flush()
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else Path("."), prefix=f".{path.name}.",
                                   suffix=".part")
    except OSError as exc:
        raise InvalidInput(_("cannot write {file}: {error}").format(file=target, error=exc.strerror)) from None
    try:
        with os.fdopen(fd, "wb") as raw:
            yield raw
            raw.flush()
            os.fsync(raw.fileno())
        check_target(target, force, protected)  # what is there now, not what was there at the start
        _publish(tmp, path, force)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise CardctlError(_("cannot write {file}: {error}").format(
            file=target, error=exc.strerror or str(exc))) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _publish(tmp: str, path: Path, force: bool) -> None:
    if force:
        os.replace(tmp, path)  # replaces the name (a link itself), never writes through it
    else:
        try:  # a hard link never replaces: a file that appeared meanwhile is kept
            os.link(tmp, path)
        except FileExistsError:
            raise InvalidInput(_("{file} appeared while it was being written; kept it, nothing written").format(
                file=str(path))) from None
        except OSError:  # a file system without hard links
            if os.path.lexists(path):
                raise InvalidInput(_("{file} appeared while it was being written; kept it, nothing written").format(
                    file=str(path))) from None
            os.replace(tmp, path)
        else:
            os.unlink(tmp)
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(path.parent if str(path.parent) else ".", os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
