"""`cpl compat`: how the constructs of the selected workflows map onto each engine.

Built from the Support records of the artifacts rendered for every engine. Three views:

- constructs: one row per construct (a Support record's `feature`) with, per engine, its
  level over all the places that use it, and how many places in how many workflows use it;
- notes: each distinct reason of an approximated or unsupported construct once, with the
  engines that share it and the places it concerns, so a finding added to many workflows
  (the Temporal namespace retention conflict) is printed once, naming them;
- places: each construct at each place (path) of each workflow x engine (`--details`, and
  the `workflows` list of the JSON output, whose shape is a contract).
"""

from __future__ import annotations

import textwrap
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from controlplane.engines import ENGINES
from controlplane.engines.translator import SUPPORT_LEVELS, Artifact, Support, SupportLevel

MARKS: dict[SupportLevel, str] = {
    "exact": "exact",
    "approximated": "approx.",
    "unsupported": "UNSUPPORTED",
}
UNUSED = "-"
_RANK: dict[SupportLevel, int] = {level: rank for rank, level in enumerate(SUPPORT_LEVELS)}
_WIDTH = 100


@dataclass(frozen=True)
class Verdict:
    """One construct at one place of one workflow on one engine."""

    support: SupportLevel
    reason: str
    note: int | None = None

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {"support": self.support, "reason": self.reason}
        if self.note is not None:
            result["note"] = self.note
        return result


@dataclass(frozen=True)
class Place:
    """One construct (`feature`) at one place (`path`) of one workflow, by engine."""

    workflow: str
    feature: str
    path: str
    verdicts: dict[str, Verdict]

    @property
    def gap(self) -> bool:
        """Some engine does not run the construct exactly here."""
        return any(v.support != "exact" for v in self.verdicts.values())

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {"feature": self.feature, "path": self.path}
        row.update({engine: v.to_json() for engine, v in self.verdicts.items()})
        return row


@dataclass(frozen=True)
class Note:
    """One reason an engine approximates or cannot run a construct, with where it applies."""

    number: int
    feature: str
    support: SupportLevel
    reason: str
    engines: tuple[str, ...]
    uses: tuple[tuple[str, str, str], ...]  # (engine, workflow, path)

    @property
    def workflows(self) -> tuple[str, ...]:
        return tuple(sorted({workflow for _, workflow, _ in self.uses}))

    @property
    def places(self) -> int:
        """The places it concerns, counted on the engine that reports most: engines may
        report one construct at different paths (a retry block, or its first field)."""
        return max(Counter(engine for engine, _, _ in self.uses).values())

    def to_json(self) -> dict[str, Any]:
        return {
            "note": self.number,
            "feature": self.feature,
            "support": self.support,
            "engines": list(self.engines),
            "reason": self.reason,
            "places": self.places,
            "workflows": list(self.workflows),
        }


@dataclass(frozen=True)
class Cell:
    """One construct on one engine: how many of its places have each level."""

    levels: dict[SupportLevel, int]  # in SUPPORT_LEVELS order, only the levels present
    places: int
    workflows: int
    notes: tuple[int, ...]

    @property
    def support(self) -> SupportLevel:
        """The worst level of the construct on the engine."""
        return max(self.levels, key=lambda level: _RANK[level])

    @property
    def mixed(self) -> bool:
        return len(self.levels) > 1

    @property
    def mark(self) -> str:
        """`approx.`, or `UNSUPPORTED 3/15` when only 3 of its 15 places are that bad."""
        mark = MARKS[self.support]
        return f"{mark} {self.levels[self.support]}/{self.places}" if self.mixed else mark

    def to_json(self) -> dict[str, Any]:
        return {
            "support": self.support,
            "places": self.places,
            "workflows": self.workflows,
            "levels": dict(self.levels),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Construct:
    """One construct over the selected workflows: places using it and its level per engine."""

    feature: str
    places: int
    workflows: int
    cells: dict[str, Cell]  # engines that do not use it are absent

    def to_json(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "places": self.places,
            "workflows": self.workflows,
            "engines": {engine: cell.to_json() for engine, cell in self.cells.items()},
        }


@dataclass(frozen=True)
class CompatReport:
    """Everything `cpl compat` prints, in text or JSON."""

    engines: tuple[str, ...]
    workflows: tuple[str, ...]
    constructs: tuple[Construct, ...]
    notes: tuple[Note, ...]
    places: tuple[Place, ...]  # by workflow, path, feature

    def totals(self) -> dict[str, Counter[str]]:
        """Places per level per engine (engines with no place are left out)."""
        counts: dict[str, Counter[str]] = {engine: Counter() for engine in self.engines}
        for place in self.places:
            for engine, verdict in place.verdicts.items():
                counts.setdefault(engine, Counter())[verdict.support] += 1
        return {engine: c for engine, c in counts.items() if c}

    def to_json(self) -> dict[str, Any]:
        """`workflows` and `summary` (the original shape), plus `engines`, `constructs` and
        `notes`; a verdict that is not exact names its note."""
        by_workflow: dict[str, list[Place]] = defaultdict(list)
        for place in self.places:
            by_workflow[place.workflow].append(place)
        return {
            "workflows": [
                {"workflow": workflow, "features": [p.to_json() for p in places]}
                for workflow, places in sorted(by_workflow.items())
            ],
            "summary": {engine: dict(counts) for engine, counts in self.totals().items()},
            "engines": list(self.engines),
            "provenOn": {name: _proven_on(name) for name in self.engines},
            "constructs": [construct.to_json() for construct in self.constructs],
            "notes": [note.to_json() for note in self.notes],
        }


def compat_report(artifacts: list[Artifact], engines: list[str]) -> CompatReport:
    """Aggregate the Support records of `artifacts` (rendered for `engines`)."""
    order = {engine: index for index, engine in enumerate(engines)}
    verdicts: dict[tuple[str, str, str], dict[str, Support]] = defaultdict(dict)
    for artifact in artifacts:
        for record in _worst_per_place(artifact.support):
            verdicts[(artifact.workflow, record.feature, record.path)][artifact.engine] = record
    notes = _notes(verdicts, order)
    note_of = {
        (note.feature, note.support, note.reason, engine): note.number
        for note in notes
        for engine in note.engines
    }
    places = tuple(
        Place(
            workflow,
            feature,
            path,
            {
                engine: Verdict(
                    r.support, r.reason, note_of.get((feature, r.support, r.reason, engine))
                )
                for engine, r in sorted(by_engine.items(), key=lambda item: order[item[0]])
            },
        )
        for (workflow, feature, path), by_engine in sorted(
            verdicts.items(), key=lambda item: (item[0][0], item[0][2], item[0][1])
        )
    )
    workflows = tuple(sorted({artifact.workflow for artifact in artifacts}))
    return CompatReport(
        tuple(engines), workflows, _constructs(places, notes, engines), notes, places
    )


def compat_text(report: CompatReport, *, details: bool = False) -> list[str]:
    """The construct table, its legend, each note once, the totals; with `details`, every
    place with a gap (not exact on some engine), by workflow."""
    if not report.places:
        return ["no constructs: no workflow selected"]
    engines = report.engines
    gaps = sum(
        1 for c in report.constructs if any(cell.support != "exact" for cell in c.cells.values())
    )
    lines = [
        f"{len(report.workflows)} workflow{_s(len(report.workflows))} on {', '.join(engines)}: "
        f"{len(report.constructs)} constructs, {gaps} with a gap on some engine",
        "",
    ]
    lines += _table(report)
    lines += ["", *_legend(report)]
    if report.notes:
        lines += ["", "Notes (each reason once):"]
        for note in report.notes:
            lines += _note_lines(note)
    lines.append("")
    for engine, counts in report.totals().items():
        levels = ", ".join(f"{counts.get(level, 0)} {level}" for level in SUPPORT_LEVELS)
        lines.append(f"{engine}: {levels} places")
    if details:
        lines += ["", *_details(report)]
    else:
        lines.append("Every place, by workflow: cpl compat --details")
    return lines


# -- aggregation -----------------------------------------------------------------------------


def _worst_per_place(records: tuple[Support, ...]) -> list[Support]:
    """One record per (feature, path): a translator may report a place twice (and the
    namespace retention conflict is added on top of the record of the retention itself)."""
    seen: dict[tuple[str, str], Support] = {}
    for record in records:
        key = (record.feature, record.path)
        if key not in seen or _RANK[record.support] > _RANK[seen[key].support]:
            seen[key] = record
    return list(seen.values())


def _notes(
    verdicts: dict[tuple[str, str, str], dict[str, Support]], order: dict[str, int]
) -> tuple[Note, ...]:
    engines: dict[tuple[str, SupportLevel, str], set[str]] = defaultdict(set)
    uses: dict[tuple[str, SupportLevel, str], set[tuple[str, str, str]]] = defaultdict(set)
    for (workflow, feature, path), by_engine in verdicts.items():
        for engine, record in by_engine.items():
            if record.support == "exact":
                continue
            key = (feature, record.support, record.reason)
            engines[key].add(engine)
            uses[key].add((engine, workflow, path))

    def rank(key: tuple[str, SupportLevel, str]) -> tuple[str, int, int, str]:
        feature, support, reason = key
        first = min(order.get(engine, len(order)) for engine in engines[key])
        return (feature, -_RANK[support], first, reason)

    return tuple(
        Note(
            number,
            key[0],
            key[1],
            key[2],
            tuple(sorted(engines[key], key=lambda engine: order.get(engine, len(order)))),
            tuple(sorted(uses[key])),
        )
        for number, key in enumerate(sorted(engines, key=rank), start=1)
    )


def _constructs(
    places: tuple[Place, ...], notes: tuple[Note, ...], engines: list[str]
) -> tuple[Construct, ...]:
    by_feature: dict[str, list[Place]] = defaultdict(list)
    for place in places:
        by_feature[place.feature].append(place)
    result = []
    for feature, used in sorted(by_feature.items()):
        cells: dict[str, Cell] = {}
        for engine in engines:
            here = [(p, p.verdicts[engine]) for p in used if engine in p.verdicts]
            if not here:
                continue
            levels = Counter(verdict.support for _, verdict in here)
            cells[engine] = Cell(
                levels={level: levels[level] for level in SUPPORT_LEVELS if levels[level]},
                places=len(here),
                workflows=len({p.workflow for p, _ in here}),
                notes=tuple(
                    n.number for n in notes if n.feature == feature and engine in n.engines
                ),
            )
        # engines may report one construct at different paths: count on the one reporting most
        most = max(cell.places for cell in cells.values())
        result.append(Construct(feature, most, len({p.workflow for p in used}), cells))
    return tuple(result)


# -- text ------------------------------------------------------------------------------------


def _table(report: CompatReport) -> list[str]:
    headers = ["construct", "places", "workflows", *report.engines]
    rows = [
        [
            c.feature,
            str(c.places),
            str(c.workflows),
            *(c.cells[e].mark if e in c.cells else UNUSED for e in report.engines),
        ]
        for c in report.constructs
    ]
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    numeric = {1, 2}

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(headers), *(line(row) for row in rows)]


def _proven_on(engine: str) -> str | None:
    """Where tests prove the engine's exact claims (None: its artifacts are never run here)."""
    return ENGINES[engine].proven_on if engine in ENGINES else None


def _legend(report: CompatReport) -> list[str]:
    lines = [
        "exact        the engine does what the spec says",
        "approx.      it does nearly that, as the note says",
        "UNSUPPORTED  it cannot: policy CPL-P020 denies it on production",
        f"{UNUSED:<12} not used by the selected workflows on that engine",
    ]
    if any(cell.mixed for c in report.constructs for cell in c.cells.values()):
        lines.append(
            "LEVEL n/m    that level at n of its m places on the engine; the others do better"
        )
    lines += [
        "places       steps and fields using it (as counted by the engine reporting most)",
        "workflows    how many of the selected workflows use it",
    ]
    for name in report.engines:
        where = _proven_on(name)
        lines.append(
            f"{name}: exact is proven by tests on {where}"
            if where
            else f"{name}: artifacts are rendered and schema-checked; no run is proven here"
        )
    return lines


def _note_lines(note: Note) -> list[str]:
    where = (
        f"{note.places} place{_s(note.places)} in "
        f"{len(note.workflows)} workflow{_s(len(note.workflows))}"
    )
    head = f"[{note.number}] {note.feature}: {MARKS[note.support]} on {', '.join(note.engines)}"
    lines = [f"{head} ({where})", *_wrap(note.reason or "(no reason given)", "    ")]
    # An unsupported construct blocks production: name the workflows concerned, unless the
    # reason already does (the namespace retention conflict lists them by retention).
    if note.support == "unsupported" and not all(w in note.reason for w in note.workflows):
        lines += _wrap("workflows: " + ", ".join(note.workflows), "    ")
    return lines


def _details(report: CompatReport) -> list[str]:
    gaps = [place for place in report.places if place.gap]
    lines = ["Places with a gap (approximated or unsupported on some engine), by workflow:"]
    for workflow in report.workflows:
        total = sum(1 for p in report.places if p.workflow == workflow)
        mine = [p for p in gaps if p.workflow == workflow]
        lines.append(f"{workflow}: {total} places, {len(mine)} with a gap")
        path_width = max((len(p.path) for p in mine), default=0)
        feature_width = max((len(p.feature) for p in mine), default=0)
        for place in mine:
            verdicts = ", ".join(
                f"{engine} {MARKS[v.support]}" + (f" [{v.note}]" if v.note is not None else "")
                for engine, v in place.verdicts.items()
                if v.support != "exact"
            )
            lines.append(
                f"  {place.path:<{path_width}}  {place.feature:<{feature_width}}  {verdicts}"
            )
    return lines


def _wrap(text: str, indent: str) -> list[str]:
    return textwrap.wrap(
        text,
        width=_WIDTH,
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _s(count: int) -> str:
    return "" if count == 1 else "s"
