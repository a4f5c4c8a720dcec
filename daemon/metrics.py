"""An optional Prometheus endpoint: poll counts and durations, alerts, drafts, errors.

Off unless ``[metrics] listen`` is set. Plain text exposition format from the
standard library's HTTP server; nothing but /metrics is served.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from onplatform.daemon.poller import AccountPoller, PollSummary

_HELP = {
    "onplatform_polls_total": ("counter", "Polls run, by result."),
    "onplatform_poll_duration_seconds_sum": ("counter", "Total seconds spent in polls."),
    "onplatform_poll_duration_seconds_count": ("counter", "Polls timed."),
    "onplatform_messages_total": ("counter", "Upwork messages read."),
    "onplatform_alerts_total": ("counter", "Alerts raised, by category."),
    "onplatform_drafts_total": ("counter", "Reply drafts appended."),
    "onplatform_errors_total": ("counter", "Failed polls and failed messages."),
    "onplatform_reconnects_total": ("counter", "IMAP reconnections after a failure."),
}


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)

    def add(self, name: str, value: float = 1.0, **labels: str) -> None:
        with self._lock:
            self._values[(name, tuple(sorted(labels.items())))] += value

    def observe(
        self, poller: AccountPoller, summary: PollSummary | None, error: str | None
    ) -> None:
        account = poller.account.name
        self.add(
            "onplatform_polls_total",
            account=account,
            result="ok" if summary is not None else "error",
        )
        if summary is None:
            self.add("onplatform_errors_total", account=account)
            return
        self.add(
            "onplatform_poll_duration_seconds_sum", summary.duration_ms / 1000, account=account
        )
        self.add("onplatform_poll_duration_seconds_count", account=account)
        self.add("onplatform_messages_total", summary.messages, account=account)
        self.add("onplatform_drafts_total", summary.drafts, account=account)
        self.add("onplatform_errors_total", summary.failed, account=account)
        self.add("onplatform_reconnects_total", summary.reconnects, account=account)
        for category, count in summary.by_category.items():
            self.add("onplatform_alerts_total", count, account=account, category=category)

    def render(self) -> str:
        with self._lock:
            values = dict(self._values)
        lines: list[str] = []
        for name, (kind, text) in _HELP.items():
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
            for (metric, labels), value in sorted(values.items()):
                if metric != name:
                    continue
                label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                lines.append(f"{name}{{{label_text}}} {value:g}")
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def parse_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


class MetricsServer:
    def __init__(self, metrics: Metrics, listen: str) -> None:
        host, port = parse_listen(listen)
        render = metrics.render

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                body = render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # requests are not worth a log line

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.address = self._server.server_address
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
