"""`cpl report`: the HTML page (self-contained, escaped) and the JSON model, end to end."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from controlplane.audit import DRIFT_COMPLETED, Auditor, verify
from controlplane.cli import run

EXTERNAL = ("http:", "https:", "//", "ftp:", "data:", "file:", "javascript:")


class Page(HTMLParser):
    """The tags, attributes and text of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    @property
    def content(self) -> str:
        return " ".join(" ".join(self.text).split())


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def report(repo: Path, *args: str) -> int:
    """`cpl report --env prod` on `repo` (output is read with capsys), offline: the prod
    engines are not asked for runs (the SLO section: tests/timings)."""
    return run(
        ["report", "--env", "prod", "--repo", str(repo), "--today", "2026-11-25", "--no-slo", *args]
    )


def test_report_writes_a_self_contained_page_and_exits_0(
    example_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.html"
    code = report(example_repo, "-o", str(out))
    captured = capsys.readouterr()
    assert code == 0
    assert "4 of 15 workflows fail a control" in captured.out
    assert "exit 0: the report is produced whatever it finds" in captured.out
    page = parse(out)
    tags = {tag for tag, _ in page.tags}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed", "base"}
    for tag, attrs in page.tags:
        for name in ("src", "href", "action", "srcset", "xlink:href"):
            value = attrs.get(name)
            if value is not None:
                assert value.startswith("#"), (tag, name, value)
        assert "url(" not in (attrs.get("style") or "")
    raw = out.read_text(encoding="utf-8")
    assert "http://" not in raw and "https://" not in raw and "@import" not in raw
    text = page.content
    for expected in (
        "Compliance report: environment prod",
        "finance/fx-rates-refresh",
        "retail/legacy-catalog-import",
        "legacy-catalog-no-jitter",
        "team-catalog",
        "2027-03-31",
        "CAT-1187",
        "FAIL",
        "WAIVED",
        "PASS",
        "DORA Art. 28 ICT third-party risk",
        "hash chain verified",
        "no drift run recorded",
    ):
        assert expected in text, expected
    model = json.loads(_json(example_repo, capsys))
    assert model["evidence"]["git"]["commit"] in text
    assert model["evidence"]["policy"]["digest"] in text
    assert sum(1 for tag, _ in page.tags if tag == "svg") == 1
    assert any(tag == "table" for tag, _ in page.tags) and any(tag == "th" for tag, _ in page.tags)


def _json(repo: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert (
        run(["report", "--env", "prod", "--repo", str(repo), "--format", "json", "--no-slo"]) == 0
    )
    return capsys.readouterr().out


def test_each_report_is_an_audit_event_and_the_history_grows(
    example_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = json.loads(_json(example_repo, capsys))
    Auditor(example_repo, "prod", []).emit(
        DRIFT_COMPLETED,
        None,
        {"drifted": False, "partial": False, "counts": {"managed": 3, "in_sync": 3}},
    )
    second = json.loads(_json(example_repo, capsys))
    assert [p["kind"] for p in first["evidence"]["audit"]["history"]] == ["report"]
    history = second["evidence"]["audit"]["history"]
    assert [p["kind"] for p in history] == ["report", "drift", "report"]
    summary = second["summary"]
    assert history[-1]["counts"] == {k: summary[k] for k in ("pass", "fail", "waived")}
    assert history[-1]["workflows"] == {"pass": 11, "fail": 4, "waived": 0}
    assert second["evidence"]["audit"]["lastDrift"]["drifted"] is False
    assert second["evidence"]["audit"]["recorded"] is True
    (log,) = second["evidence"]["audit"]["logs"]
    assert log["ok"] and log["lines"] == 3
    assert verify(example_repo / ".cpl" / "audit" / "prod.jsonl").ok


def test_json_is_the_compliance_model(
    example_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = json.loads(_json(example_repo, capsys))
    assert set(model) >= {"environment", "generatedAt", "summary", "controls", "workflows"}
    fx = next(w for w in model["workflows"] if w["workflow"] == "finance/fx-rates-refresh")
    assert fx["status"] == "fail" and fx["targets"] == ["temporal-prod"]
    rules = {f["rule"] for c in fx["controls"] if c["status"] == "fail" for f in c["findings"]}
    assert rules == {"CPL-P008", "CPL-P016"}
    assert model["evidence"]["git"]["dirty"] is False
    assert model["evidence"]["waivers"][0]["owner"] == "team-catalog"


def test_every_value_is_escaped(
    example_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    waiver = example_repo / "waivers" / "legacy-catalog-no-jitter.yaml"
    text = waiver.read_text(encoding="utf-8")
    text = text.replace("owner: team-catalog", 'owner: "team-<b>catalog</b>"')
    text = text.replace(
        "reason: >-", "reason: >-\n    <script>alert('pwned')</script> & \"quoted\"\n   "
    )
    waiver.write_text(text, encoding="utf-8")
    out = tmp_path / "report.html"
    assert report(example_repo, "-o", str(out)) == 0
    raw = out.read_text(encoding="utf-8")
    assert "<script>" not in raw and "<b>catalog" not in raw
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt; &amp; &quot;quoted&quot;" in raw
    assert "team-&lt;b&gt;catalog&lt;/b&gt;" in raw
    page = parse(out)
    assert all(tag not in ("script", "b") for tag, _ in page.tags)
    assert "<script>alert('pwned')</script>" in page.content  # shown as text
    assert json.loads(_json(example_repo, capsys))["evidence"]["git"]["dirty"] is True


def test_a_broken_audit_chain_is_reported_not_fatal(
    example_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _json(example_repo, capsys)
    _json(example_repo, capsys)
    log = example_repo / ".cpl" / "audit" / "prod.jsonl"
    lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
    log.write_text(lines[0].replace('"prod"', '"dev"', 1) + lines[1], encoding="utf-8")
    out = tmp_path / "report.html"
    assert report(example_repo, "-o", str(out)) == 0
    assert "AUDIT CHAIN BROKEN" in capsys.readouterr().out
    text = parse(out).content
    assert "BROKEN" in text and "line 1" in text


def test_the_page_is_deterministic_apart_from_the_generation_time(
    example_repo: Path, tmp_path: Path
) -> None:
    import datetime as dt

    from controlplane.compliance.model import ComplianceReport, assess, read_audit
    from controlplane.pipeline import desired_state
    from controlplane.report.html import render_html

    assembly = desired_state(example_repo, "prod")
    at = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
    pages = [
        render_html(
            ComplianceReport(assess(example_repo, assembly), read_audit(example_repo, "prod"), at)
        )
        for _ in range(2)
    ]
    assert pages[0] == pages[1]


def test_an_unknown_drift_coverage_reads_as_unknown(
    example_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The drift run is recorded by the drift package's own recorder: no target was read."""
    from controlplane.drift.audit import record_drift
    from controlplane.drift.model import DriftReport, ReadFailure
    from controlplane.spec.load import load_environment

    down = ReadFailure("sfn-prod", "stepfunctions", "connection refused", None, True)
    environment = load_environment(example_repo, "prod")
    record_drift(example_repo, environment, DriftReport("prod", items=(), failures=(down,)))
    out = tmp_path / "report.html"
    assert report(example_repo, "-o", str(out)) == 0
    capsys.readouterr()
    content = parse(out).content
    assert "(partial: some targets unreachable)" in content
    assert "coverage unknown" in content and "coverage None" not in content
