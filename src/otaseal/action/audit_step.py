"""The Action's ``command: audit``: the store audit as annotations, a job summary and an exit code.

It reads the store only, needs no signing key and talks to no GitHub API: errors (what a device
would refuse) become ``::error::`` and fail the step with the CLI's exit code (3 for metadata,
4 for bundles, 5 when the store cannot be read); warnings become ``::warning::``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from otaseal.audit_run import run_audit

if TYPE_CHECKING:
    from otaseal.action.runner import Runner
    from otaseal.audit import Finding
    from otaseal.operations import Project

#: Findings listed in the summary; the rest are counted (annotations carry every one).
SUMMARY_ROWS = 50


def run_audit_step(runner: Runner, project: Project) -> int:
    """Audit, annotate each finding, write the summary; return the audit's exit code."""
    with runner.group("otaseal audit"):
        report = run_audit(project)
        for line in report.lines():
            runner.info(line)
    for finding in report.findings:
        text = f"{finding.key}: {finding.message}"
        if finding.severity == "error":
            runner.error(text, title=f"otaseal audit: {finding.code}")
        else:
            runner.warning(text, title=f"otaseal audit: {finding.code}")
    runner.append_summary(summary(report.lines()[0], report.findings, report.exit_code))
    return report.exit_code


def summary(headline: str, rows: tuple[Finding, ...], code: int) -> str:
    """Markdown: a verdict, the audit's scope, and a table of findings."""
    errors = sum(f.severity == "error" for f in rows)
    verdict = (
        f"### otaseal audit: {errors} error(s) (exit {code})"
        if code
        else f"### otaseal audit: OK, nothing a device would refuse ({len(rows)} warning(s))"
    )
    out = [verdict, "", _escape(headline), ""]
    if rows:
        out += ["| | code | object | finding |", "|---|---|---|---|"]
        out += [
            f"| {'❌' if f.severity == 'error' else '⚠️'} | `{f.code}` | `{f.key}` | "
            f"{_escape(f.message)} |"
            for f in rows[:SUMMARY_ROWS]
        ]
        if len(rows) > SUMMARY_ROWS:
            out += ["", f"…and {len(rows) - SUMMARY_ROWS} more (see the annotations)."]
    return "\n".join(out) + "\n"


def _escape(text: str) -> str:
    """No HTML and no table breaks from store keys or messages."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
