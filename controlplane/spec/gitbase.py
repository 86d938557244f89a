"""The documents of a control repo at a git ref, compared with the working tree by blob id.

`--base REF` needs the workflows that changed since REF. Git already knows each file's
content id at REF (its blob id), and the blob id of a working-tree file is the SHA-1 of its
bytes with a short header: comparing the two finds the changed files without reading or
parsing anything at REF. Only the changed files are then read from REF.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controlplane.errors import ConfigError
from controlplane.spec.files import (
    _GIT_LINK,
    MAX_FILE_BYTES,
    SUFFIXES,
    Source,
    decode,
    git_documents,
)


def blob_id(data: bytes) -> str:
    """The id git gives a file of these bytes (`git hash-object`)."""
    digest = hashlib.sha1(usedforsecurity=False)
    digest.update(b"blob %d\0" % len(data))
    digest.update(data)
    return digest.hexdigest()


@dataclass
class BaseRef:
    """A git ref of the repo holding `repo`, opened once."""

    repo: Path
    ref: str
    commit: Any
    prefix: str
    """The control repo's folder inside the git work tree ("" at its top)."""
    _items: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, repo: Path, ref: str) -> BaseRef:
        import git

        try:
            git_repo = git.Repo(repo, search_parent_directories=True)
            commit = git_repo.commit(ref)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise ConfigError(
                f"{repo} is not inside a git repository (needed for --base)"
            ) from None
        except (git.BadName, ValueError):
            raise ConfigError(f"unknown git ref '{ref}'") from None
        top = Path(git_repo.working_tree_dir or repo).resolve()
        prefix = repo.resolve().relative_to(top).as_posix().lstrip(".").strip("/")
        return cls(repo, ref, commit, prefix)

    def _path(self, file: str) -> str:
        return posixpath.join(self.prefix, file) if self.prefix else file

    def blobs(self, directory: str) -> dict[str, str | None]:
        """Blob id of every document file under `directory` at the ref, by repo-relative
        name (None for a symbolic link: its content is not the document's)."""
        try:
            root = self.commit.tree / self._path(directory)
        except KeyError:
            return {}
        found: dict[str, str | None] = {}
        start = len(self.prefix) + 1 if self.prefix else 0
        for item in root.traverse():
            if item.type == "blob" and item.path.endswith(SUFFIXES):
                found[item.path[start:]] = None if item.mode == _GIT_LINK else item.hexsha
                self._items[item.path[start:]] = item
        return found

    def blob(self, file: str) -> str | None:
        """The blob id of one file at the ref (None: absent, or not a plain file)."""
        try:
            item = self.commit.tree / self._path(file)
        except KeyError:
            return None
        return item.hexsha if item.type == "blob" and item.mode != _GIT_LINK else None

    def sources(self, files: list[str], directory: str) -> list[Source]:
        """The documents `files` (repo-relative names under `directory`) as they are at
        the ref; links are followed as a full read of the folder would."""
        result: list[Source] = []
        linked = False
        for file in files:
            try:  # found by `blobs` already, or looked up (each lookup parses the trees)
                item = self._items.get(file) or self.commit.tree / self._path(file)
            except KeyError:
                continue
            if item.mode == _GIT_LINK:
                linked = True
                continue
            result.append(decode(file, item.data_stream.read(MAX_FILE_BYTES + 1)))
        if linked:
            wanted = set(files)
            everything = git_documents(self.commit.tree, self._path(directory))
            result.extend(s for s in everything if s.file in wanted and s not in result)
        return sorted(result, key=lambda source: source.file)


def changed_files(
    base: BaseRef, directory: str, sources: list[Source]
) -> tuple[list[str], list[str]]:
    """(files changed or added since the ref, files deleted since) under `directory`, from
    the working tree's `sources` and the blob ids at the ref."""
    before = base.blobs(directory)
    changed = [
        s.file
        for s in sources
        if s.problem is not None or before.get(s.file) != blob_id(s.text.encode("utf-8"))
    ]
    now = {s.file for s in sources}
    deleted = sorted(file for file in before if file not in now)
    return changed, deleted
