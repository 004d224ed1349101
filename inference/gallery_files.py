"""Replace a gallery's files all at once, so that a crash mid-edit never leaves a half-edited gallery.

An edit (add, remove) writes every file it changes into `<gallery>/.pending/` (same relative names), then a
`COMMIT` marker, then moves the files into place, the manifest last, and deletes `.pending`. Whoever opens the
gallery next finishes a committed edit (`recover`): moves are idempotent, so this is safe to repeat. An edit that
crashed before its marker is discarded by the next edit; until then the old files are all in place and loadable.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PENDING = ".pending"
COMMIT = "COMMIT"
LOCK = ".edit.lock"
LAST = "manifest.json"
"""Moved last: the manifest's count is what makes the new rows part of the gallery."""


def pending_dir(root: Path) -> Path:
    return Path(root) / PENDING


def _staged(pending: Path) -> list[Path]:
    files = [p for p in pending.rglob("*") if p.is_file() and p.name != COMMIT]
    return sorted(files, key=lambda p: (p.relative_to(pending).as_posix() == LAST, p.relative_to(pending).as_posix()))


def recover(root: Path) -> bool:
    """Finish a committed edit left unfinished by a crash; True when there was one."""
    pending = pending_dir(root)
    if not (pending / COMMIT).is_file():
        return False
    _move_all(Path(root), pending)
    return True


def _move_all(root: Path, pending: Path) -> None:
    for staged in _staged(pending):
        target = root / staged.relative_to(pending)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(staged, target)
        except FileNotFoundError:
            continue  # another process finishing the same commit moved it first
    shutil.rmtree(pending, ignore_errors=True)


@contextmanager
def edit(root: Path) -> Iterator[Path]:
    """Lock the gallery for an edit and give a fresh `.pending` folder to write the changed files into; they
    replace the gallery's own when the block ends without an exception (discarded when it raises)."""
    root = Path(root)
    with (root / LOCK).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            recover(root)
            pending = pending_dir(root)
            shutil.rmtree(pending, ignore_errors=True)  # an edit that crashed before committing
            pending.mkdir()
            try:
                yield pending
            except BaseException:
                shutil.rmtree(pending, ignore_errors=True)
                raise
            _fsync_tree(pending)
            marker = pending / (COMMIT + ".tmp")
            marker.write_text("ok\n")
            os.replace(marker, pending / COMMIT)
            _move_all(root, pending)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _fsync_tree(folder: Path) -> None:
    """Staged files on disk before the marker says they are complete."""
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())


def write_atomic(path: Path, text: str) -> None:
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_text(text, encoding="utf-8")
    os.replace(scratch, path)
