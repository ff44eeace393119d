"""``teelog monitor`` against the explorer's served log (``/log/``) of real data."""

from __future__ import annotations

import threading
from typing import Any

from teelog.log.served import HttpLog
from teelog.monitor.follow import Monitor, reverify_with_teelog
from werkzeug.serving import make_server


class Sink:
    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []

    def deliver(self, alert: dict[str, Any]) -> None:
        self.alerts.append(alert)


def test_monitor_audits_the_explorer_served_log_of_real_data_without_alerts(app, built, tmp_path):
    """The explorer's /log/ (tiles, bundles, blobs) of the real NEAR AI bundle and receipts:
    every verdict re-verifies offline to what was logged."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sink = Sink()
        mon = Monitor(
            HttpLog(f"http://127.0.0.1:{server.server_port}/log/"),
            built.log.vkey,
            tmp_path / "s.json",
            sink,
            reverify=reverify_with_teelog,
        )
        result = mon.poll()
    finally:
        server.shutdown()
    assert result.size == built.log.checkpoint().size == result.entries_read
    assert sink.alerts == []
