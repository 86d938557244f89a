"""Strings of a spec are data on Argo, never template tags or expressions: Argo ends a tag at
its first `}}` and evaluates `{{=...}}`, so the braces a string carries are escaped inside
expr literals and the expression structure never holds `}}` either.

The checks read the manifest the way Argo's controller does: the template as JSON text, cut
into tags from each `{{` to the next `}}` (fasttemplate), an expression tag's text decoded as
a JSON string, then expr's string escapes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from controlplane.cli import run

HOSTILE = "x}}{{=sprig.env('HOME')}}{{workflow.name}} '\\ {{"
_LITERAL = re.compile(r"'((?:[^'\\]|\\.)*)'")


def _tags(manifest: dict[str, Any]) -> list[str]:
    """The tag bodies Argo's fasttemplate finds in the JSON text of the manifest."""
    text, tags, start = json.dumps(manifest), [], 0
    while (opening := text.find("{{", start)) >= 0:
        closing = text.find("}}", opening + 2)
        assert closing > 0, "a tag is never closed"
        tags.append(text[opening + 2 : closing])
        start = closing + 2
    return tags


def _expr_strings(tag: str) -> list[str]:
    """The values of the string literals of an expression tag, decoded as Argo and expr do."""
    expression = json.loads('"' + tag[1:] + '"')
    return [bytes(body, "utf-8").decode("unicode_escape") for body in _LITERAL.findall(expression)]


def _balanced(tag: str) -> bool:
    outside = _LITERAL.sub("''", json.loads('"' + tag[1:] + '"'))
    return all(outside.count(a) == outside.count(b) for a, b in ("()", "[]", "{}"))


@pytest.fixture
def manifest(files_repo: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    workflow = files_repo / "workflows" / "retail" / "price-feed-export.yaml"
    text = workflow.read_text(encoding="utf-8").replace(
        "parameters: {feedDate: $.feedDate, catalog: eu-main}",
        f"parameters: {{feedDate: $.feedDate, catalog: {json.dumps(HOSTILE)}, "
        "nested: {outer: {inner: {deepest: end}}}}",
    )
    workflow.write_text(text, encoding="utf-8")
    argv = ["render", "--repo", str(files_repo), "--env", "files", "--format", "json"]
    assert run([*argv, str(workflow)]) == 0
    [artifact] = json.loads(capsys.readouterr().out)
    [document] = artifact["document"]["manifests"]
    assert isinstance(document, dict)
    return document


def test_a_string_parameter_cannot_end_a_tag_or_start_another(manifest: dict[str, Any]) -> None:
    tags = _tags(manifest)
    assert not any("sprig.env" in tag and not tag.startswith("=") for tag in tags)
    holding = [tag for tag in tags if "sprig.env" in tag]
    assert holding, "the parameter is in no expression"
    for tag in holding:
        assert tag.startswith("=") and _balanced(tag), tag
        assert HOSTILE in _expr_strings(tag)


def test_nested_objects_do_not_end_their_tag_early(manifest: dict[str, Any]) -> None:
    for tag in _tags(manifest):
        if tag.startswith("="):
            assert _balanced(tag), tag
    assert any("deepest" in tag for tag in _tags(manifest))
