"""`cpl validate` and `cpl schema`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from controlplane.cli.output import console_for, emit, format_option, repo_option, to_json
from controlplane.errors import ConfigError, ExitCode
from controlplane.report.validation import validation_json, validation_text
from controlplane.spec.schema import KIND_NAMES, json_schema
from controlplane.spec.validate import validate_repo


@click.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@repo_option
@format_option("json")
def validate_command(
    paths: tuple[Path, ...], repo: Path, output_format: str, output_file: Path | None
) -> int:
    """Check workflows, environments and waivers against the schema and semantic rules.

    PATHS are files or folders; by default the repo's workflows/, environments/ and
    waivers/. Every problem of every file is reported (FILE:LINE:COL: CODE message);
    exits 1 if any is an error.
    """
    result = validate_repo(repo, paths)
    if not result.files:
        raise ConfigError(
            f"nothing to validate in {repo}: no workflows/, environments/ or waivers/ documents"
        )
    if output_format == "json":
        emit(to_json(validation_json(result)), output_file)
    else:
        console = console_for()
        for line in validation_text(result):
            style = "red" if ": CPL-" in line else ("green" if line == "valid" else None)
            console.print(line, style=style, markup=False)
        if output_file is not None:
            emit("\n".join(validation_text(result)), output_file)
    return int(ExitCode.OK if result.ok else ExitCode.ERROR)


@click.command("schema")
@click.option(
    "--kind",
    type=click.Choice(KIND_NAMES),
    default="Workflow",
    show_default=True,
    help="Which document kind.",
)
@click.option(
    "--output",
    "-o",
    "output_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the schema to FILE.",
)
def schema_command(kind: str, output_file: Path | None) -> int:
    """Print the JSON Schema (2020-12) of a document kind, for editors and CI.

    Reference it from a YAML file with a first line such as
    `# yaml-language-server: $schema=schemas/workflow.json`.
    """
    emit(json.dumps(json_schema(kind), indent=2), output_file)
    return int(ExitCode.OK)
