"""`cpl init`: scaffold a control repo that validates cleanly."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import click

from controlplane.cli.output import console_for
from controlplane.errors import ConfigError, ExitCode

_SCAFFOLD = {
    "workflows/example/hello.yaml": "hello.yaml",
    "environments/local.yaml": "local.yaml",
    ".github/workflows/cpl.yml": "ci.yml",
    "README.md": "README.md",
    "waivers/.gitkeep": None,
    "policies/.gitkeep": None,
}


@click.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=Path("."))
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init_command(directory: Path, force: bool) -> int:
    """Scaffold a control repo in DIRECTORY: an example workflow, environments/local.yaml,
    a CI workflow and a README. Existing files are kept unless --force is given."""
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
    console.print(f"next: cd {directory} && cpl validate", markup=False)
    return int(ExitCode.OK)
