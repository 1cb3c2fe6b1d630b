"""Writing the files a command was asked to write (``run --save``, ``export -o``, ``corpus
export -o``, ``fuzz --out``): checked before the work starts, written atomically, and an
OS error is one line (``UsageError``, exit status 2) that leaves nothing half-written."""
from __future__ import annotations

import os
from typing import Callable, TextIO

from .cli import UsageError


def _why(e: OSError) -> str:
    return e.strerror or type(e).__name__


def check_writable(path: str, what: str = "output file") -> None:
    """Refuse, before any work is done, a file that cannot be written: its directory is
    missing or not writable, or the path is a directory."""
    if not path:
        raise UsageError(f"empty {what} name")
    if os.path.isdir(path):
        raise UsageError(f"{path}: is a directory (give a file name)")
    if os.path.exists(path) and not os.path.isfile(path):
        return                  # a device or a pipe: written in place (see write_atomic)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"{path}: cannot write the {what}: no directory {parent}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{path}: cannot write the {what}: directory {parent} is not "
                         f"writable")


def check_dir_writable(path: str, what: str = "output directory") -> None:
    """Refuse a directory that cannot be made or written to (creating nothing): a file in
    the way, or no writable existing ancestor."""
    if not path:
        raise UsageError(f"empty {what} name")
    cur = os.path.abspath(path)
    while not os.path.exists(cur):
        up = os.path.dirname(cur)
        if up == cur:
            break
        cur = up
    if not os.path.isdir(cur):
        raise UsageError(f"{path}: cannot make the {what}: {cur} is not a directory")
    if not os.access(cur, os.W_OK | os.X_OK):
        raise UsageError(f"{path}: cannot write the {what}: {cur} is not writable")


def write_atomic(path: str, text: str | Callable[[TextIO], object],
                 what: str = "output file"):
    """Write ``text`` (or call ``text(f)`` to write it) to a temporary file next to
    ``path`` and rename it into place: readers never see half a file, and on any error the
    temporary file is removed and the old file (if any) is left as it was. Returns what the
    writer returned."""
    if os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path):
        # a device or a pipe (-o /dev/null, -o /dev/stdout, a FIFO): write into it; a
        # rename would replace it with a regular file (as root, /dev/null itself)
        try:
            with open(path, "w", encoding="utf-8") as f:
                return text(f) if callable(text) else f.write(text)
        except OSError as e:
            raise UsageError(f"{path}: cannot write the {what}: {_why(e)}") from None
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            out = text(f) if callable(text) else f.write(text)
        os.replace(tmp, path)
        return out
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise UsageError(f"{path}: cannot write the {what}: {_why(e)}") from None
        raise
