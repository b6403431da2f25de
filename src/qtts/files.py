"""Writing files so that readers never see half of one: a temporary name in the same
directory, then a rename.  The permissions follow the umask (``mkstemp`` alone makes 0600);
a full disk is ``DiskFull``, an unwritable place ``BadInput`` (``errors.os_error``)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from qtts.errors import os_error


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; whatever is written there replaces ``path``
    when the block ends, or is deleted when it raises."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        os.close(handle)
    except OSError as exc:
        raise os_error(exc, str(path)) from exc
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise os_error(exc, str(path)) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, synced to disk before the rename."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def current_umask() -> int:
    """The process's umask, read without changing it where the OS allows (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_input_file(path: Path, what: str, allow_fifo: bool = False) -> None:
    """An input path that is a regular file (a symlink to one is fine), or a FIFO where
    ``allow_fifo`` (read with a bound by the caller); anything else (a device, a directory,
    a missing path) is bad input that names what it is, before anything is read."""
    import stat

    from qtts.errors import BadInput

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError as exc:
        raise BadInput(f"{what} {path} does not exist", hint="check the path") from exc
    except OSError as exc:
        raise BadInput(f"{what} {path} cannot be read: {exc.strerror}", hint="check the path") from exc
    if stat.S_ISREG(mode) or (allow_fifo and stat.S_ISFIFO(mode)):
        return
    kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO (a pipe)" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
    raise BadInput(f"{what} {path} is {kind}", hint=f"pass {'a text' if allow_fifo else 'an audio'} file")

