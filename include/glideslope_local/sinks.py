"""Local stand-ins for a mail server and Slack: an SMTP sink and a webhook receiver on loopback.

The embedded profile points the ``smtp_default`` and ``slack_default`` connections at these
(see :func:`glideslope_local.env.embedded_airflow_env`), so the demo and the tests can show and
assert exactly what would have been sent, and nothing leaves the machine.

* :class:`SmtpSink` — an aiosmtpd server in a background thread; every message is kept in
  memory (``messages``) and, with a folder, written as ``<n>-<subject>.eml``.
* :class:`WebhookReceiver` — a stdlib HTTP server in a background thread; every POSTed JSON body
  is kept (``bodies``) and, with a folder, written as ``<n>.json``. ``fail_next(n)`` makes it
  answer the next ``n`` POSTs with an HTTP error, as a Slack outage would (kept in ``rejected``).

Both bind to 127.0.0.1 only. ``python -m glideslope_local.sinks --folder DIR`` runs both in the
foreground (ports from ``GLIDESLOPE_SMTP_PORT`` / ``GLIDESLOPE_WEBHOOK_PORT``).
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:80] or "message"


class SmtpSink:
    """A plain (no TLS, no auth) SMTP server that keeps what it receives."""

    def __init__(self, port: int | None = None, folder: str | Path | None = None, host: str = HOST):
        self.host = host
        self.port = port or free_port(host)
        self.folder = Path(folder) if folder else None
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()
        self._controller: Any = None

    # aiosmtpd handler hook
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        if "X-Envelope-To" not in msg:
            msg["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        with self._lock:
            self.messages.append(msg)
            n = len(self.messages)
        if self.folder:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"{n:04d}-{_slug(str(msg.get('Subject', '')))}.eml"
            path.write_bytes(msg.as_bytes())
        log.info("smtp sink: message %d to %s: %s", n, envelope.rcpt_tos, msg.get("Subject"))
        return "250 Message accepted for delivery"

    def start(self) -> SmtpSink:
        from aiosmtpd.controller import Controller

        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP verb at INFO
        self._controller = Controller(self, hostname=self.host, port=self.port, ready_timeout=10)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for(self, count: int, timeout: float = 20.0) -> list[EmailMessage]:
        _wait(lambda: len(self.messages) >= count, timeout, f"{count} message(s) at smtp://{self.host}:{self.port}")
        return list(self.messages)

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()

    @staticmethod
    def html_of(msg: EmailMessage) -> str:
        part = msg.get_body(preferencelist=("html", "plain"))
        return part.get_content() if part is not None else ""


class WebhookReceiver:
    """An HTTP server that accepts POSTs (like a Slack incoming webhook) and keeps the JSON bodies."""

    def __init__(self, port: int | None = None, folder: str | Path | None = None, host: str = HOST):
        self.host = host
        self.port = port or free_port(host)
        self.folder = Path(folder) if folder else None
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.rejected: list[dict[str, Any]] = []
        self._failures: list[int] = []  # HTTP statuses to answer the next POSTs with
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = {"raw": raw.decode("utf-8", "replace")}
                with receiver._lock:
                    status = receiver._failures.pop(0) if receiver._failures else None
                    if status is None:
                        receiver.bodies.append(body)
                        receiver.paths.append(self.path)
                        n = len(receiver.bodies)
                    else:
                        receiver.rejected.append(body)
                if status is not None:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain")
                    self.end_headers()
                    self.wfile.write(b"internal_error")  # what Slack answers when it is down
                    return
                if receiver.folder:
                    receiver.folder.mkdir(parents=True, exist_ok=True)
                    (receiver.folder / f"{n:04d}.json").write_text(json.dumps(body, indent=2))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")  # what Slack answers

            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug("webhook receiver: " + fmt, *args)

        return Handler

    def start(self) -> WebhookReceiver:
        self._server = ThreadingHTTPServer((self.host, self.port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        _wait(lambda: len(self.bodies) >= count, timeout, f"{count} POST(s) at {self.url}")
        return list(self.bodies)

    def fail_next(self, count: int = 1, status: int = 500) -> None:
        """Answer the next ``count`` POSTs with HTTP ``status``; their bodies go to ``rejected``."""
        with self._lock:
            self._failures.extend([status] * count)

    def clear(self) -> None:
        with self._lock:
            self.bodies.clear()
            self.paths.clear()
            self.rejected.clear()
            self._failures.clear()


def start_sinks(folder: str | Path | None = None, smtp_port: int | None = None,
                webhook_port: int | None = None) -> tuple[SmtpSink, WebhookReceiver]:
    """Start both on the embedded profile's ports (``GLIDESLOPE_SMTP_PORT`` / ``_WEBHOOK_PORT``)."""
    from glideslope_local.env import DEFAULT_SMTP_PORT, DEFAULT_WEBHOOK_PORT

    smtp_port = smtp_port or int(os.environ.get("GLIDESLOPE_SMTP_PORT") or DEFAULT_SMTP_PORT)
    webhook_port = webhook_port or int(os.environ.get("GLIDESLOPE_WEBHOOK_PORT") or DEFAULT_WEBHOOK_PORT)
    base = Path(folder) if folder else None
    smtp = SmtpSink(smtp_port, base / "mail" if base else None).start()
    try:
        hook = WebhookReceiver(webhook_port, base / "slack" if base else None).start()
    except BaseException:
        smtp.stop()
        raise
    return smtp, hook


def stop_sinks(*sinks: SmtpSink | WebhookReceiver) -> None:
    for s in sinks:
        s.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m glideslope_local.sinks",
                                 description="Run the local SMTP sink and webhook receiver in the foreground.")
    ap.add_argument("--folder", default=None, help="write mails (.eml) and webhook bodies (.json) here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    smtp, hook = start_sinks(args.folder)
    print(f"SMTP sink on {smtp.host}:{smtp.port}, webhook receiver on {hook.url}; Ctrl-C to stop", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        stop_sinks(smtp, hook)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
