"""Publishing an output directory: written beside it, renamed into place, never half there.

Every writer of ``patternc build`` (the transformers and torch backends, the Megatron arguments)
publishes the same way, so the rules live here, in the core, with nothing but the standard library:

1. ``check_out_dir`` refuses (``P502``) an existing ``OUT_DIR`` without ``--force``, and one that
   holds the build's own input (a config, a checkpoint) even with it.
2. ``staging`` makes a temporary sibling directory (same filesystem, so the rename is atomic),
   after removing what a killed earlier build left there (``clean_stale``); it is removed again
   unless published.
3. ``publish`` renames it to ``OUT_DIR``; with ``--force`` an existing one is renamed aside first
   and deleted after, so a reader sees the old directory or the new one, never a mix.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from patternc.diagnostics import Diagnostic, diag

_STAGING, _ASIDE = "patternc-build", "patternc-old"
"""Sibling names: ``.<out>.patternc-build-<pid>-<random>`` (being written), ``.<out>.patternc-old-<pid>-<random>``
(the directory ``--force`` replaces, between two renames)."""


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a sibling it is writing is not stale)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's process, or a name we did not write: leave it alone
    return True


def clean_stale(out_dir: Path) -> list[Path]:
    """Remove the siblings a killed build left beside ``out_dir`` (their process is gone); the paths removed.

    A SIGKILL (or a power cut) runs no clean-up, so the next build to the same directory does it:
    a staging directory is deleted; a directory set aside by ``--force`` is renamed back when
    ``out_dir`` is missing (the kill came between the two renames), else deleted.
    """
    removed: list[Path] = []
    parent = out_dir.parent
    if not parent.is_dir():
        return removed
    for kind in (_ASIDE, _STAGING):
        for path in sorted(parent.glob(f".{_glob_escape(out_dir.name)}.{kind}-*")):
            pid_text = path.name[len(f".{out_dir.name}.{kind}-") :].partition("-")[0]
            if not pid_text.isdigit() or _alive(int(pid_text)) or path.is_symlink() or not path.is_dir():
                continue
            if kind == _ASIDE and not (out_dir.exists() or out_dir.is_symlink()):
                os.rename(path, out_dir)
            else:
                shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _glob_escape(name: str) -> str:
    """``name`` as a glob pattern that matches only itself (``*``, ``?`` and ``[`` bracketed)."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


@contextmanager
def staging(out_dir: Path) -> Iterator[Path]:
    """A temporary directory beside ``out_dir`` (same filesystem), removed unless published.

    Stale siblings of a killed earlier build are cleaned first (``clean_stale``).
    """
    parent = out_dir.parent
    created = [p for p in (parent, *parent.parents) if not p.exists()]  # deepest first
    parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.{_STAGING}-{os.getpid()}-", dir=parent))
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o777 & ~mask)  # mkdtemp makes it private; the published directory follows the umask
    try:
        yield tmp
    finally:
        if tmp.exists():  # not published: leave no trace, the directories made for it included
            shutil.rmtree(tmp, ignore_errors=True)
            for directory in created:
                try:
                    directory.rmdir()
                except OSError:  # not empty (someone else's files): kept
                    break


def publish(tmp: Path, out_dir: Path, force: bool) -> None:
    """Rename ``tmp`` to ``out_dir``; with ``force`` an existing one is renamed aside, then deleted.

    Files follow the umask, like the directory: writers that go through a private temporary file
    (safetensors does) would otherwise publish weights only their owner can read."""
    mask = os.umask(0)
    os.umask(mask)
    for path in tmp.rglob("*"):
        if path.is_file() and not path.is_symlink():
            os.chmod(path, 0o666 & ~mask)
    if not (out_dir.exists() or out_dir.is_symlink()):
        os.rename(tmp, out_dir)
        return
    if not force:
        raise FileExistsError(str(out_dir))
    aside = out_dir.parent / f".{out_dir.name}.{_ASIDE}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    os.rename(out_dir, aside)
    try:
        os.rename(tmp, out_dir)
    except BaseException:
        os.rename(aside, out_dir)
        raise
    if aside.is_dir() and not aside.is_symlink():
        shutil.rmtree(aside, ignore_errors=True)
    else:
        aside.unlink()


def _inside(path: Path, other: Path) -> bool:
    """Whether ``path`` is ``other`` or lies under it, symbolic links resolved."""
    try:
        path.resolve().relative_to(other.resolve())
    except ValueError:
        return False
    return True


def check_out_dir(out_dir: Path, force: bool, protected: list[Path]) -> list[Diagnostic]:
    """``P502`` when ``out_dir`` holds one of the build's inputs (``protected``: never replaced, even with
    ``force``), or exists and ``force`` is off; empty when the build may publish there."""
    for source in protected:
        if _inside(source, out_dir):
            return [
                diag(
                    "P502",
                    f"`{out_dir}` holds the input `{source}`: the build would replace its own input",
                    None,
                    help="choose another output directory",
                )
            ]
    if (out_dir.exists() or out_dir.is_symlink()) and not force:
        return [
            diag(
                "P502",
                f"`{out_dir}` already exists",
                None,
                help="pass `--force` to replace it (atomically), or choose another directory",
            )
        ]
    return []


def os_reason(error: OSError) -> str:
    """An ``OSError`` as the words of a ``P509`` message: the reason, and the file it is about."""
    reason = error.strerror or str(error)
    return f"{reason} (`{error.filename}`)" if error.filename else reason
