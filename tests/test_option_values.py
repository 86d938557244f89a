"""Numeric options refuse values that make no sense: nan, infinity, negatives, out of range.

`--lock-timeout nan` once waited forever and `-5` was accepted. Every numeric option of
every command is listed here with values it must refuse: each is a usage error (exit 2)
whose message names the option, before the command does anything.
"""

from __future__ import annotations

import pytest

from controlplane.cli import run

# (command line up to the option, option, good value, every value it must refuse)
NUMERIC_OPTIONS = [
    (["apply", "--env", "dev"], "--lock-timeout", "5", ["nan", "inf", "-inf", "-5", "1e9", "x"]),
    (["local", "up", "--env", "dev"], "--timeout", "5", ["nan", "inf", "0", "-5", "1e9"]),
    (["local", "down", "--env", "dev"], "--grace", "1", ["nan", "inf", "-1", "1e9"]),
    (["drift", "--env", "dev"], "--concurrency", "4", ["0", "-3", "257", "nan", "2.5"]),
    (
        ["run", "acme/x", "--env", "dev", "--wait"],
        "--timeout",
        "90s",
        ["nan", "-5s", "0s", "99999999999999999999d", "5"],
    ),
]

CASES = [
    pytest.param(
        prefix,
        option,
        bad,
        id=f"{prefix[0]}{'-' + prefix[1] if prefix[0] == 'local' else ''}{option}={bad}",
    )
    for prefix, option, _, bads in NUMERIC_OPTIONS
    for bad in bads
]


@pytest.mark.parametrize(("prefix", "option", "bad"), CASES)
def test_bad_numeric_value_is_a_usage_error(
    prefix: list[str], option: str, bad: str, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run([*prefix, option, bad, "--repo", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"Invalid value for '{option}'" in err, err


@pytest.mark.parametrize(
    ("prefix", "option", "good"),
    [pytest.param(p, o, g, id=f"{p[0]}{o}") for p, o, g, _ in NUMERIC_OPTIONS],
)
def test_sensible_value_gets_past_the_option(
    prefix: list[str], option: str, good: str, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same command line with a sensible value fails later, for want of a repo."""
    code = run([*prefix, option, good, "--repo", str(tmp_path)])
    err = capsys.readouterr().err
    assert f"Invalid value for '{option}'" not in err
    assert code != 2 or "Invalid value" not in err
