"""`cpl init`: scaffold a control repo that validates cleanly."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import click

from controlplane.cli.output import console_for
from controlplane.errors import ConfigError, ExitCode

# Target path in the new repo -> template in controlplane/scaffold (None: an empty file).
_SCAFFOLD = {
    "workflows/example/hello.yaml": "hello.yaml",
    "environments/local.yaml": "local.yaml",
    ".github/workflows/cpl.yml": "ci.yml",
    "README.md": "README.md",
    "waivers/.gitkeep": None,
    "policies/.gitkeep": None,
}

# Merged rather than written: a repo's own .gitignore gains cpl's lines it lacks.
_GITIGNORE = (".gitignore", "gitignore")


@click.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=Path("."))
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init_command(directory: Path, force: bool) -> int:
    """Scaffold a control repo in DIRECTORY: an example workflow, environments/local.yaml,
    a CI workflow, a README, a .gitignore for cpl's working files (.cpl/) and a development
    signing key (.cpl/identity/) with its public keys in identity/jwks.json.

    Existing files are kept unless --force is given; an existing .gitignore is never
    replaced, it only gains the lines it lacks."""
    existing = [name for name in _SCAFFOLD if (directory / name).exists()]
    if existing and not force:
        raise ConfigError(
            f"{directory} already has {', '.join(existing)}; use --force to overwrite"
        )
    templates = resources.files("controlplane.scaffold")
    console = console_for()
    for name, template in _SCAFFOLD.items():
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        text = templates.joinpath(template).read_text(encoding="utf-8") if template else ""
        target.write_text(text, encoding="utf-8")
        console.print(f"created {target}", markup=False)
    from controlplane.identity.devkeys import create_dev_key

    created = create_dev_key(directory, force=force)
    if created is not None:
        console.print(
            f"created {created[1]} (development signing key in {created[0]})", markup=False
        )
    name, template = _GITIGNORE
    action = _merge_lines(
        directory / name, templates.joinpath(template).read_text(encoding="utf-8")
    )
    if action:
        console.print(f"{action} {directory / name}", markup=False)
    console.print(f"next: cd {directory} && cpl validate", markup=False)
    return int(ExitCode.OK)


def _merge_lines(path: Path, template: str) -> str:
    """Write `template` to `path`, or append the template's entries that `path` lacks.

    Returns what was done ("created", "updated") or "" when `path` had every entry.
    """
    if not path.exists():
        path.write_text(template, encoding="utf-8")
        return "created"
    current = path.read_text(encoding="utf-8")
    present = {line.strip() for line in current.splitlines()}
    missing = [
        line
        for line in template.splitlines()
        if line.strip() and not line.startswith("#") and line.strip() not in present
    ]
    if not missing:
        return ""
    separator = "" if current.endswith("\n") or not current else "\n"
    path.write_text(current + separator + "\n".join(missing) + "\n", encoding="utf-8")
    return "updated"
