"""How an alert reads: an email subject and HTML body, and a Slack (mrkdwn) text.

Every rendering carries the same facts: the use case and logical date, what happened (the
title), why (the body), the numbers behind it (``facts``) and where to look (``links``).
Rendering is pure so it can be tested without a mail server; the text is final (no templating
happens after this), so a ``{{`` in a reason cannot be mistaken for Jinja.
"""

from __future__ import annotations

import html
from collections.abc import Mapping

from glideslope.alerts import Alert

_SLACK_MARK = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}
_COLOR = {"info": "#1f6feb", "warning": "#bf8700", "critical": "#cf222e"}
_KIND_LABEL = {
    "task_failed": "task failed",
    "quarantine": "data quarantined",
    "drift_detected": "drift detected",
    "retrain_suppressed": "retraining suppressed",
    "promoted": "challenger promoted",
    "rejected": "challenger rejected",
    "rolled_back": "champion rolled back",
    "escalated": "escalation",
    "acknowledged": "escalation acknowledged",
    "escalation_answered": "escalation answered",
}


def kind_label(kind: str) -> str:
    return _KIND_LABEL.get(kind, kind.replace("_", " "))


def subject(alert: Alert) -> str:
    return f"[glideslope][{alert.severity.upper()}] {alert.usecase} {alert.ds}: {alert.title}"


def _fact_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple, set)):
        return ", ".join(str(v) for v in value) or "—"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_fact_value(v)}" for k, v in value.items()) or "—"
    return str(value)


def html_body(alert: Alert) -> str:
    esc = html.escape
    rows = [("Use case", alert.usecase), ("Logical date", alert.ds), ("What happened", kind_label(alert.kind)),
            ("Severity", alert.severity)]
    rows += [(str(k), _fact_value(v)) for k, v in alert.facts.items()]
    table = "".join(
        f"<tr><th align='left' style='padding:2px 12px 2px 0'>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows
    )
    why = "".join(f"<p>{esc(p)}</p>" for p in alert.body.split("\n\n") if p.strip()) or "<p>—</p>"
    links = "".join(f"<li><a href='{esc(url, quote=True)}'>{esc(name)}</a></li>"
                    for name, url in alert.links.items() if url)
    return (
        "<html><body style='font-family:sans-serif'>"
        f"<h2 style='color:{_COLOR.get(alert.severity, '#000')}'>{esc(alert.title)}</h2>"
        f"<table>{table}</table>"
        f"<h3>Why</h3>{why}"
        + (f"<h3>Links</h3><ul>{links}</ul>" if links else "")
        + "</body></html>"
    )


def slack_text(alert: Alert) -> str:
    def slack_escape(s: str) -> str:
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    lines = [
        f"{_SLACK_MARK.get(alert.severity, '')} *{slack_escape(alert.title)}*",
        f"*Use case:* {alert.usecase}   *Date:* {alert.ds}   *Severity:* {alert.severity}   "
        f"*Event:* {kind_label(alert.kind)}",
        slack_escape(alert.body),
    ]
    if alert.facts:
        lines.append("\n".join(f"• {k}: {slack_escape(_fact_value(v))}" for k, v in alert.facts.items()))
    if alert.links:
        lines.append("  ".join(f"<{url}|{name}>" for name, url in alert.links.items() if url))
    return "\n".join(line for line in lines if line)
