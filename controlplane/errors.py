"""Errors, diagnostics and exit codes shared by every command.

Deny and drift are results, not exceptions: only conditions that stop a command
(bad input, unreachable engines, internal faults) are raised as `CplError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Literal


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    DENIED = 3
    CHANGES = 4
    DRIFT = 5


Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One finding about a document, located at a file, line, column and JSON pointer."""

    file: str
    line: int
    column: int
    code: str
    message: str
    path: str = ""
    severity: Severity = "error"

    def format(self) -> str:
        """Compiler-style rendering: `FILE:LINE:COL: CODE message`."""
        return f"{self.file}:{self.line}:{self.column}: {self.code} {self.message}"

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
        }


@dataclass
class CplError(Exception):
    """An error a user can act on; the CLI prints it and exits with `exit_code`."""

    message: str
    exit_code: ExitCode = ExitCode.ERROR
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def __str__(self) -> str:
        return self.message


class ConfigError(CplError):
    """A document or option is invalid (exit 1)."""


class EngineError(CplError):
    """An engine could not be reached or refused an operation (exit 1)."""
