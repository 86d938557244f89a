"""JUnit XML of a policy decision: a testcase per (workflow, rule).

A rule with a denying violation on any target is a `<failure>`; one whose violations are
all waived is `<skipped>` (with the waiver); warnings pass with the messages in
`<system-out>`. Disabled rules are not listed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict

from controlplane.policy.decision import Decision, Violation


def check_junit(decision: Decision) -> str:
    suites = ET.Element("testsuites", name=f"cpl check {decision.environment}")
    by_workflow: dict[str, list[tuple[str, Violation]]] = defaultdict(list)
    files: dict[str, str] = {}
    for result in decision.results:
        files.setdefault(result.workflow, result.file)
        by_workflow[result.workflow].extend((result.target, v) for v in result.violations)
    rules = sorted(
        (
            info
            for info in decision.rules.values()
            if decision.enforcement.get(info.id) != "disabled"
        ),
        key=lambda info: info.id,
    )
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for workflow in sorted(files):
        suite = ET.SubElement(suites, "testsuite", name=workflow, file=files[workflow])
        counts = {"tests": 0, "failures": 0, "skipped": 0}
        for info in rules:
            found = [(t, v) for t, v in by_workflow[workflow] if v.rule == info.id]
            case = ET.SubElement(
                suite,
                "testcase",
                classname=workflow,
                name=f"{info.id} {info.title}",
                file=files[workflow],
            )
            counts["tests"] += 1
            denied = [(t, v) for t, v in found if v.denies]
            if denied:
                counts["failures"] += 1
                failure = ET.SubElement(
                    case, "failure", message=denied[0][1].message, type=info.severity
                )
                failure.text = "\n".join(_line(t, v) for t, v in denied)
            elif found and all(v.waived for _, v in found):
                counts["skipped"] += 1
                waivers = sorted({v.waiver or "" for _, v in found})
                ET.SubElement(case, "skipped", message=f"waived by {', '.join(waivers)}")
            elif found:
                out = ET.SubElement(case, "system-out")
                out.text = "\n".join(_line(t, v) for t, v in found)
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("errors", "0")
    for key, value in totals.items():
        suites.set(key, str(value))
    suites.set("errors", str(len(decision.errors)))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode")


def _line(target: str, violation: Violation) -> str:
    return (
        f"{violation.file}:{violation.line}:{violation.column}: {violation.rule} "
        f"{violation.message} (target {target}, {violation.enforcement})"
    )
