"""make lint's dependency audit: a finding fails, an accepted one is named, no lookup is no pass."""

from __future__ import annotations

import pytest

from glideslope_local.audit import accepted, judge

pytestmark = pytest.mark.unit


def _dep(name: str, vulns: list[dict] | None = None, skip: str | None = None) -> dict:
    d: dict = {"name": name, "version": "1.0"}
    if skip:
        d["skip_reason"] = skip
    else:
        d["vulns"] = vulns or []
    return d


VULN = {"id": "PYSEC-2099-1", "aliases": ["GHSA-xxxx-yyyy-zzzz"], "fix_versions": ["1.1"]}


def test_a_finding_fails_and_names_the_package_and_the_fix() -> None:
    verdict, lines = judge({"dependencies": [_dep("ok"), _dep("bad", [VULN])]}, {})
    assert verdict == "findings" and lines[0] == "bad 1.0: PYSEC-2099-1 (fixed in 1.1)"


def test_an_accepted_finding_passes_by_any_of_its_ids_and_is_named() -> None:
    verdict, lines = judge({"dependencies": [_dep("bad", [VULN])]}, {"GHSA-xxxx-yyyy-zzzz": "not reachable: no X"})
    assert verdict == "ok" and "accepted PYSEC-2099-1 in bad 1.0: not reachable: no X" in lines


def test_every_package_skipped_is_no_audit_not_a_pass() -> None:
    report = {"dependencies": [_dep(n, skip="Dependency not found on PyPI and could not be audited")
                               for n in ("a", "b")]}
    verdict, lines = judge(report, {})
    assert verdict == "unreachable" and "none of the 2 locked packages" in lines[0]


def test_the_project_accepts_nothing_without_a_reason(tmp_path) -> None:
    assert all(reason for reason in accepted().values())
    bad = tmp_path / "pyproject.toml"
    bad.write_text('[tool.glideslope.audit]\naccepted = [{id = "PYSEC-1"}]\n')
    with pytest.raises(SystemExit, match="has no reason"):
        accepted(bad)
