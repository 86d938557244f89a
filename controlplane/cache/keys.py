"""What a cache entry depends on, as digests: cpl's code, the environment, the policy bundle.

An entry's key is the digest of everything its value was computed from, so an entry is
never used for inputs it was not made for. cpl's own code is keyed as the digest of its
package's Python source (and its version), which covers the translators, the checks and
the policy input builder without asking each for an identity of its own.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import controlplane
from controlplane.engines.translator import digest_of
from controlplane.policy.library import builtin_policy_dir, policy_config, policy_paths
from controlplane.spec.environment import Environment


@lru_cache(maxsize=1)
def code_identity() -> str:
    """cpl's version and the digest of every Python module of the package."""
    package = Path(controlplane.__file__).resolve().parent
    digest = hashlib.sha256()
    try:
        digest.update(metadata.version("controlplane").encode())
    except metadata.PackageNotFoundError:
        digest.update(b"unversioned")
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def environment_digest(environment: Environment) -> str:
    """The environment as validated (targets, selectors, bindings, policy settings), and
    the translators registered for its engines (a registry may be changed at run time)."""
    from controlplane.engines import ENGINES

    translators = {
        name: f"{type(engine.translator).__module__}.{type(engine.translator).__qualname__}"
        for name, engine in ENGINES.items()
    }
    return digest_of([environment.model_dump(mode="json", by_alias=True), translators])


def policy_digest(environment: Environment, repo: Path) -> str | None:
    """The policy bundle: the built-in library, the environment's `policy.paths`, and
    `data.cpl.config`. None when the policies are a server's (`policy.server`): cpl cannot
    see what it evaluates, so its results are not cached."""
    if environment.spec.policy.server:
        return None
    files: dict[str, str] = {}
    for index, root in enumerate([builtin_policy_dir(), *policy_paths(environment, repo)]):
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in paths:
            # by place in the bundle, not absolute path: a CI runner's checkout may move
            name = f"{index}:{path.relative_to(root).as_posix() if path != root else root.name}"
            try:
                files[name] = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                files[name] = "unreadable"
    return digest_of({"files": files, "config": policy_config(environment)})


def key_of(*parts: Any) -> str:
    """The key of an entry computed from `parts` (JSON data) by this cpl."""
    return hashlib.sha256(digest_of([code_identity(), *parts]).encode("utf-8")).hexdigest()
