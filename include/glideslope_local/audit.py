"""``make lint``'s dependency audit: every locked package against the known advisories (pip-audit).

The lock is exported (``uv export --frozen``) and pip-audit checks each pinned version against
its advisory service (PyPI's JSON API by default). Findings that were looked at and accepted are
listed in ``pyproject.toml`` under ``[tool.glideslope.audit] accepted`` (``{id, reason}``) and
documented in docs/security.md; any other finding fails.

The advisory service is on the network. Where it cannot be reached -- a machine that only sees a
package mirror answers "not found" for every package, or does not resolve the host at all -- pip-audit
itself would report "no known vulnerabilities" with every package skipped. That is not a pass:
this says plainly that no audit took place, and exits 0 so that ``make lint`` still checks the
code, unless ``GLIDESLOPE_AUDIT_REQUIRED=true`` (then 1).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def accepted(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, str]:
    """Accepted advisories: {id: reason}."""
    table = tomllib.loads(pyproject.read_text()).get("tool", {}).get("glideslope", {}).get("audit", {})
    out = {}
    for entry in table.get("accepted", []):
        if not entry.get("reason"):
            raise SystemExit(f"{pyproject}: accepted advisory {entry.get('id')!r} has no reason")
        out[str(entry["id"])] = str(entry["reason"])
    return out


def judge(report: dict[str, Any], accepted_ids: dict[str, str]) -> tuple[str, list[str]]:
    """``("ok" | "findings" | "unreachable", lines)`` for a pip-audit JSON report."""
    deps = report.get("dependencies", [])
    skipped = [d for d in deps if d.get("skip_reason")]
    audited = [d for d in deps if not d.get("skip_reason")]
    lines: list[str] = []
    if deps and not audited:
        reasons = sorted({str(d["skip_reason"]) for d in skipped})
        return "unreachable", [f"none of the {len(deps)} locked packages could be looked up "
                               f"({'; '.join(reasons)[:300]})"]
    findings = []
    for d in audited:
        for v in d.get("vulns", []):
            ids = [v["id"], *v.get("aliases", [])]
            if any(i in accepted_ids for i in ids):
                lines.append(f"accepted {v['id']} in {d['name']} {d['version']}: "
                             f"{next(accepted_ids[i] for i in ids if i in accepted_ids)}")
                continue
            fix = ", ".join(v.get("fix_versions", [])) or "no fixed version yet"
            findings.append(f"{d['name']} {d['version']}: {v['id']} (fixed in {fix})")
    for d in skipped:
        lines.append(f"not audited: {d['name']} {d.get('version', '')} ({d['skip_reason']})")
    if findings:
        return "findings", findings + lines
    return "ok", [f"{len(audited)} locked packages audited, no unaccepted advisory", *lines]


def _audit(requirements: Path, ids: dict[str, str]) -> tuple[str, list[str]]:
    cmd = [str(Path(sys.executable).with_name("pip-audit")), "-r", str(requirements), "--no-deps", "--disable-pip",
           "--format", "json", "--progress-spinner", "off", "--timeout", "20"]
    for vuln in ids:
        cmd += ["--ignore-vuln", vuln]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return "unreachable", [f"pip-audit exited {proc.returncode} without a report: {tail[:300]}"]
    return judge(report, ids)


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print("usage: python -m glideslope_local.audit REQUIREMENTS_FILE (from `uv export --frozen`)",
              file=sys.stderr)
        return 2
    required = os.environ.get("GLIDESLOPE_AUDIT_REQUIRED", "").lower() == "true"
    ids = accepted()
    reqs = Path(args[0])
    # One package first: where the service cannot answer, the whole lock is not sent to it.
    pins = [line for line in reqs.read_text().splitlines() if line.startswith("pip-audit==")]
    probe = reqs.with_name(reqs.name + ".probe")
    probe.write_text((pins[0] if pins else "pip==25.0") + "\n")
    verdict, lines = _audit(probe, ids)
    if verdict != "unreachable":
        verdict, lines = _audit(reqs, ids)
    if verdict == "unreachable":
        print("dependency audit NOT RUN: the advisory service cannot be reached from this machine; "
              + lines[0], file=sys.stderr)
        print("  run `make lint` where PyPI's JSON API is reachable (GLIDESLOPE_AUDIT_REQUIRED=true makes "
              "this an error); see docs/security.md", file=sys.stderr)
        return 1 if required else 0
    if verdict == "findings":
        print("dependency audit FAILED:\n" + "\n".join(f"  {line}" for line in lines), file=sys.stderr)
        print("  upgrade, or accept with a reason in pyproject.toml [tool.glideslope.audit] and docs/security.md",
              file=sys.stderr)
        return 1
    print("dependency audit: " + "\n  ".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
