"""The fidelity report of `cpl import`: every construct of the source, and how it came over.

A finding is `exact` (the imported spec, rendered back, does the same), `approximated` (it
runs, differently: `detail` says how) or `unsupported` (not importable: left out of the spec,
`detail` says why). `source` locates the construct: a JSON pointer into the ASL definition,
or a YAML path (`spec.templates[2].dag.tasks[0]`) into the Argo manifest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Fidelity = Literal["exact", "approximated", "unsupported"]
LEVELS: tuple[Fidelity, ...] = ("exact", "approximated", "unsupported")


@dataclass(frozen=True)
class Finding:
    """How one construct of the source was imported."""

    fidelity: Fidelity
    construct: str
    source: str
    detail: str = ""

    def to_json(self) -> dict[str, str]:
        return {
            "fidelity": self.fidelity,
            "construct": self.construct,
            "source": self.source,
            "detail": self.detail,
        }


@dataclass
class FidelityReport:
    """Every finding of one import, plus the names the source's states took as steps."""

    source: str
    kind: str
    findings: list[Finding] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)

    def exact(self, construct: str, source: str, detail: str = "") -> None:
        self.findings.append(Finding("exact", construct, source, detail))

    def approximated(self, construct: str, source: str, detail: str) -> None:
        self.findings.append(Finding("approximated", construct, source, detail))

    def unsupported(self, construct: str, source: str, detail: str) -> None:
        self.findings.append(Finding("unsupported", construct, source, detail))

    @property
    def fidelity(self) -> Fidelity:
        """The import as a whole: its worst finding."""
        worst = max((LEVELS.index(f.fidelity) for f in self.findings), default=0)
        return LEVELS[worst]

    @property
    def summary(self) -> dict[str, int]:
        return {level: sum(1 for f in self.findings if f.fidelity == level) for level in LEVELS}

    def not_exact(self) -> list[Finding]:
        return [f for f in self.findings if f.fidelity != "exact"]

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kind": self.kind,
            "fidelity": self.fidelity,
            "summary": self.summary,
            "renamed": dict(self.renamed),
            "findings": [f.to_json() for f in self.findings],
        }

    def text(self, verbose: bool = True) -> str:
        """The report for a terminal: the summary line, then one line per finding."""
        counts = ", ".join(f"{n} {level}" for level, n in self.summary.items())
        lines = [f"{self.source} ({self.kind}): {self.fidelity} ({counts})"]
        shown = self.findings if verbose else self.not_exact()
        width = max((len(f.construct) for f in shown), default=0)
        for finding in shown:
            detail = f": {finding.detail}" if finding.detail else ""
            lines.append(
                f"  {finding.fidelity:<12} {finding.construct:<{width}}  {finding.source}{detail}"
            )
        renames = [f"{state} -> {step}" for state, step in self.renamed.items() if state != step]
        if renames:
            lines.append(f"  renamed: {', '.join(renames)}")
        return "\n".join(lines)
