"""Where the monitor's alerts go: a webhook (JSON POST), a command (JSON on stdin), or stdout.

An alert is one JSON object (docs/monitor.md, "Alerts"). Delivery is at least once: an alert is
recorded in the state before it is sent and removed only after the sink accepted it (HTTP 2xx,
exit status 0), so an alert is never lost and, barring a crash between sending and recording,
never repeated.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

import httpx


class DeliveryError(RuntimeError):
    """The sink did not accept an alert; it stays pending and is retried at the next poll."""


class AlertSink(Protocol):
    def deliver(self, alert: dict[str, Any]) -> None:
        """Deliver one alert or raise :class:`DeliveryError`."""
        ...


def alert_bytes(alert: dict[str, Any]) -> bytes:
    return json.dumps(alert, sort_keys=True, ensure_ascii=False).encode() + b"\n"


@dataclass
class WebhookSink:
    """POST each alert as ``application/json`` to ``url``; any 2xx answer accepts it."""

    url: str  # often its own secret (in its path): kept out of repr()
    timeout: float = 10.0

    def __repr__(self) -> str:
        origin = httpx.URL(self.url)
        return f"WebhookSink(url='{origin.scheme}://{origin.host}/…', timeout={self.timeout})"

    def deliver(self, alert: dict[str, Any]) -> None:
        try:
            response = httpx.post(
                self.url,
                content=alert_bytes(alert),
                headers={"Content-Type": "application/json", "User-Agent": "teelog-monitor"},
                timeout=self.timeout,
                follow_redirects=False,
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook {self.url}: {exc}") from exc
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"webhook {self.url}: HTTP {response.status_code}")


@dataclass
class ExecSink:
    """Run ``command`` (split like a shell would, but run without one) with the alert on stdin;
    exit status 0 accepts it."""

    command: str
    timeout: float = 60.0

    def deliver(self, alert: dict[str, Any]) -> None:
        argv = shlex.split(self.command)
        try:
            done = subprocess.run(
                argv, input=alert_bytes(alert), capture_output=True, timeout=self.timeout
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DeliveryError(f"command {argv[0]!r}: {exc}") from exc
        if done.returncode != 0:
            err = done.stderr.decode(errors="replace").strip()[:200]
            raise DeliveryError(f"command {argv[0]!r} exited {done.returncode}: {err}")


@dataclass
class StreamSink:
    """Write each alert as one JSON line (the default when no webhook or command is given)."""

    stream: TextIO = sys.stdout

    def deliver(self, alert: dict[str, Any]) -> None:
        self.stream.write(alert_bytes(alert).decode())
        self.stream.flush()
