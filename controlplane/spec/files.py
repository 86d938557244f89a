"""Finding and reading a control repo's document files.

Every document file found is either read or reported: a file that cannot be read (a broken
symbolic link, a link loop, a link out of the repository, something that is not a regular
file, no permission, not UTF-8, too large) becomes a `Source` with a `problem`, which the
loader turns into a CPL-S006 error. It never becomes an absent workflow, which `apply` would
delete from the engine.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controlplane.errors import ConfigError

SUFFIXES = (".yaml", ".yml", ".json")
MAX_FILE_BYTES = 4 * 1024 * 1024
"""The largest document file cpl reads (a workflow of thousands of steps is far below)."""

_MAX_GIT_LINK_HOPS = 40  # as many as Linux follows before ELOOP
_FOLDER_LOOP = "a symbolic link loop (it leads back to a folder it is in)"
_GIT_LINK = 0o120000  # the mode git gives a symbolic link


@dataclass(frozen=True)
class Source:
    """A document's text and the path users know it by (relative to the repo).

    `problem` says why the file could not be read (its `text` is then empty), and `code` is
    the diagnostic code it is reported with.
    """

    file: str
    text: str
    problem: str | None = None
    code: str = "CPL-S006"


def read_tree(repo: Path, directories: list[str]) -> list[Source]:
    """The documents under the repo's `directories` (those that exist), in path order."""
    confine = repo.resolve()
    sources: list[Source] = []
    for directory in directories:
        root = repo / directory
        if root.is_dir() or root.is_symlink():
            sources.extend(document_sources(repo, root, confine))
    return sources


def read_paths(repo: Path, paths: Iterable[Path]) -> Iterator[Source]:
    """The documents of the given files and folders; a path that does not exist is an error.

    Links found inside a folder must stay inside the repo (or, for a folder outside the repo
    named on purpose, inside that folder).
    """
    for path in paths:
        confine = _confinement(repo, path)
        if path.is_dir():
            yield from document_sources(repo, path, confine)
        elif path.exists() or path.is_symlink():
            yield read_document(repo, path, confine)
        else:
            raise ConfigError(f"{path}: no such file or directory")


def document_sources(repo: Path, root: Path, confine: Path) -> list[Source]:
    """Every document file under `root`, following links that stay inside `confine`.

    A link whose target is missing or loops is reported whatever its name (it may have been
    a folder of documents); a folder reached again through a link to one of its ancestors is
    reported as a loop, not walked forever.
    """
    found: list[Source] = []
    start = _link_problem(root, confine)
    if start is not None:
        return [Source(relative_name(repo, root), "", start)]

    def visit(directory: Path, ancestors: frozenset[str]) -> None:
        try:
            with os.scandir(directory) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as exc:
            found.append(_unreadable(repo, directory, f"cannot list the folder: {exc.strerror}"))
            return
        for entry in entries:
            path = Path(entry.path)
            document = entry.name.endswith(SUFFIXES)
            if entry.is_symlink():
                problem = _link_problem(path, confine)
                if problem is not None:
                    found.append(_unreadable(repo, path, problem))
                    continue
            if entry.is_dir():
                real = os.path.realpath(path)
                if real in ancestors:
                    found.append(_unreadable(repo, path, _FOLDER_LOOP))
                else:
                    visit(path, ancestors | {real})
            elif document:
                found.append(read_document(repo, path, confine))

    visit(root, frozenset({os.path.realpath(root)}))
    return sorted(found, key=lambda source: source.file)  # path order, as users list files


def read_document(repo: Path, path: Path, confine: Path) -> Source:
    """One document file, or a Source saying why it cannot be read."""
    name = relative_name(repo, path)
    problem = _link_problem(path, confine) if path.is_symlink() else None
    if problem is not None:
        return Source(name, "", problem)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        return Source(name, "", f"cannot be read: {exc.strerror}")
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return Source(name, "", "not a regular file")
        try:
            data = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            return Source(name, "", f"cannot be read: {exc.strerror}")
    return decode(name, data)


def decode(name: str, data: bytes) -> Source:
    """A Source from a file's bytes: UTF-8 text at most MAX_FILE_BYTES long."""
    if len(data) > MAX_FILE_BYTES:
        limit = f"{MAX_FILE_BYTES // 2**20} MiB"
        return Source(name, "", f"larger than the limit of {limit}", code="CPL-S007")
    try:
        return Source(name, data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return Source(name, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})")


def relative_name(repo: Path, path: Path) -> str:
    """The path as users know it: relative to the repo, links not followed."""
    lexical, top = os.path.abspath(path), os.path.abspath(repo)
    if lexical.startswith(top + os.sep):  # the usual case, without pathlib (once per file)
        return lexical[len(top) + 1 :].replace(os.sep, "/")
    for base in (Path(top), repo.resolve()):
        if Path(lexical).is_relative_to(base):
            return Path(lexical).relative_to(base).as_posix()
    try:
        return path.resolve().relative_to(repo.resolve()).as_posix()
    except (ValueError, OSError, RuntimeError):
        return path.as_posix()


def _confinement(repo: Path, path: Path) -> Path:
    """Where links found under `path` may point: the repo, or the path itself when the user
    named something outside the repo."""
    root = repo.resolve()
    return (
        root
        if Path(os.path.abspath(path)).is_relative_to(os.path.abspath(repo))
        else Path(os.path.abspath(path if path.is_dir() else path.parent))
    )


def _link_problem(path: Path, confine: Path) -> str | None:
    """Why the link (or a link on the way to `path`) cannot be followed, if it cannot."""
    try:
        target = Path(os.path.realpath(path, strict=True))
    except OSError as exc:
        link = _link_text(path)
        if exc.errno == errno.ELOOP:
            return f"a symbolic link loop{link}"
        if exc.errno == errno.ENOENT:
            return f"a broken symbolic link{link}: its target does not exist"
        return f"cannot be read: {exc.strerror}"
    if not target.is_relative_to(confine):
        return f"a symbolic link out of the repository (to {target}): refused"
    return None


def _link_text(path: Path) -> str:
    try:
        return f" (to '{os.readlink(path)}')"
    except OSError:
        return ""


def _unreadable(repo: Path, path: Path, problem: str) -> Source:
    return Source(relative_name(repo, path), "", problem)


def git_documents(tree: Any, prefix: str) -> list[Source]:
    """The documents under `prefix` of a git tree (GitPython), links followed in the tree.

    A link in git is a blob holding the target's path: it is followed inside the tree (and
    must stay inside the control repo, `prefix`'s parent), never read as a document.
    """
    top = posixpath.dirname(prefix)
    try:
        root = tree / prefix
    except KeyError:
        return []
    sources: list[Source] = []

    def visit(node: Any, name: str, ancestors: frozenset[str]) -> None:
        for item in node:
            child = f"{name}/{item.name}"
            if item.type == "blob" and item.mode == _GIT_LINK:
                item, problem = _git_follow(tree, item, top)
                if problem is not None:
                    sources.append(Source(child, "", problem))
                    continue
            if item.type == "tree":
                if item.path in ancestors:
                    sources.append(Source(child, "", _FOLDER_LOOP))
                else:
                    visit(item, child, ancestors | {item.path})
            elif item.type == "blob" and child.endswith(SUFFIXES):
                sources.append(decode(child, item.data_stream.read(MAX_FILE_BYTES + 1)))

    visit(root, posixpath.relpath(prefix, top) if top else prefix, frozenset({prefix}))
    return sorted(sources, key=lambda source: source.file)


def _git_follow(tree: Any, link: Any, top: str) -> tuple[Any, str | None]:
    """What a link in a git tree leads to, or why it leads nowhere."""
    current = link
    for _ in range(_MAX_GIT_LINK_HOPS):
        target = current.data_stream.read().decode("utf-8", "replace")
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(current.path), target))
        inside = resolved == top or resolved.startswith(f"{top}/") if top else resolved != ".."
        if posixpath.isabs(target) or not inside or resolved.startswith("../"):
            return None, f"a symbolic link out of the repository (to '{target}'): refused"
        try:
            current = tree if resolved == "." else tree / resolved
        except KeyError:
            return None, f"a broken symbolic link (to '{target}'): its target does not exist"
        if not (current.type == "blob" and current.mode == _GIT_LINK):
            return current, None
    return None, "a symbolic link loop"
