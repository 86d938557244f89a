"""`cpl policy test`: run the Rego unit tests (`test_*` rules) on real OPA.

Every `test_*` rule of every `*_test.rego` module is evaluated on an engine holding the
built-in library, the extra directory and all tests: a test passes when it is `true`,
fails when it is undefined or false, and errors when evaluation raises (e.g. a conflict).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from opa_bindings import OpaError

from controlplane.policy.engine import EmbeddedOpa
from controlplane.policy.library import TEST_SUFFIX, load_library

_TEST_RULE = re.compile(r"^(test_[A-Za-z0-9_]*)\b", re.MULTILINE)


@dataclass(frozen=True)
class TestCase:
    package: str
    name: str
    file: str
    line: int
    status: str  # pass | fail | error
    seconds: float
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "pass"


@dataclass(frozen=True)
class TestReport:
    cases: tuple[TestCase, ...]

    @property
    def ok(self) -> bool:
        return bool(self.cases) and all(c.passed for c in self.cases)

    def count(self, status: str) -> int:
        return sum(1 for c in self.cases if c.status == status)


def run_tests(extra: Iterable[Path] = (), *, builtin: bool = True) -> TestReport:
    """Run the tests of the built-in library (when `builtin`) and of `extra` directories.

    All tests are evaluated in one query (each distinct query is prepared anew, which costs
    more than the tests themselves); when that raises, each test runs alone to find the one
    that errors.
    """
    library = load_library(list(extra), builtin=builtin, tests=True)
    found: list[tuple[str, str, str, int]] = []
    for module in library.modules:
        if not module.name.endswith(TEST_SUFFIX):
            continue
        seen: set[str] = set()
        for match in _TEST_RULE.finditer(module.source):
            name = match.group(1)
            if name not in seen:  # a test split over several bodies is one test
                seen.add(name)
                line = module.source.count("\n", 0, match.start()) + 1
                found.append((module.package, name, module.name, line))
    if not found:
        return TestReport(())
    with EmbeddedOpa(library) as engine:
        started = time.perf_counter()
        query = (
            "x := {"
            + ", ".join(
                f'"{package}.{name}": [v | v := data.{package}.{name}]'
                for package, name, _, _ in found
            )
            + "}"
        )
        try:
            values = engine.opa.eval_query(query)[0]["x"]
        except OpaError:
            return TestReport(
                tuple(
                    _run(engine, package, name, file, line) for package, name, file, line in found
                )
            )
        each = _since(started) / len(found)
        cases = []
        for package, name, file, line in found:
            value = values.get(f"{package}.{name}") or []
            status = "pass" if value == [True] else "fail"
            detail = (
                "" if status == "pass" else ("undefined" if not value else f"value {value[0]!r}")
            )
            cases.append(TestCase(package, name, file, line, status, each, detail))
    return TestReport(tuple(cases))


def _run(engine: EmbeddedOpa, package: str, name: str, file: str, line: int) -> TestCase:
    started = time.perf_counter()
    try:
        result = engine.opa.eval_query(f"x := data.{package}.{name}")
    except OpaError as exc:
        return TestCase(package, name, file, line, "error", _since(started), exc.message)
    value = result[0].get("x") if result else None
    status = "pass" if value is True else "fail"
    detail = "" if status == "pass" else ("undefined" if not result else f"value {value!r}")
    return TestCase(package, name, file, line, status, _since(started), detail)


def _since(started: float) -> float:
    return time.perf_counter() - started
