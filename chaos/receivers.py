"""Real notification receivers on loopback that misbehave on cue: a webhook endpoint that can be
down (nothing listens), slow, answer 500 or flap, and an SMTP server (aiosmtpd) that refuses.

Each records the delivery ids (`X-EUCP-Delivery`) it accepted, so a scenario can tell whether
every notification arrived, on its primary route or its backup.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from eucp.runtime.signing import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    verify,
)
from eucp.runtime.stack import free_port


class Webhook:
    """A webhook endpoint on 127.0.0.1: `status` and `delay` say how it answers; `down()`
    closes its socket (connections are refused) and `up()` listens again on the same port."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/eucp/webhook"
        self.status = 200
        self.delay = 0.0
        self.attempts = 0
        self.refused = 0  # answered with an error status on purpose
        self.bad_signatures = 0
        self.delivered: set[str] = set()
        self.tasks: set[str] = set()  # task ids of the task_assigned notices that arrived
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                time.sleep(hook.delay)
                status = hook.receive(dict(self.headers.items()), body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        return Handler

    def receive(self, headers: dict[str, str], body: bytes) -> int:
        with self._lock:
            self.attempts += 1
            status = self.status
            if status >= 300:
                self.refused += 1
                return status
            try:
                verify(
                    self.secret,
                    headers[TIMESTAMP_HEADER],
                    body,
                    headers[SIGNATURE_HEADER],
                    now=int(time.time()),
                )
            except (KeyError, SignatureError):
                self.bad_signatures += 1
                return 401
            self.delivered.add(headers[DELIVERY_HEADER])
            notice = json.loads(body)
            if notice.get("kind") == "task_assigned":
                self.tasks.update(t["task_id"] for t in notice["data"]["tasks"])
            return status

    @property
    def is_up(self) -> bool:
        return self._server is not None

    def up(self) -> None:
        if self._server is not None:
            return
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def down(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    async def flap(self, period: float, until: Callable[[], bool]) -> int:
        """Down and up again every `period` seconds until `until()`; returns the flaps."""
        flaps = 0
        while not until():
            await asyncio.sleep(period)
            if self.is_up:
                self.down()
                flaps += 1
            else:
                self.up()
        self.up()
        return flaps


class Mailbox:
    """An SMTP server on 127.0.0.1 (aiosmtpd). `refuse` maps a recipient address to the reply
    it gets at RCPT TO (`"550 ..."` final, `"451 ..."` try later); the rest is accepted."""

    def __init__(self) -> None:
        self.port = free_port()
        self.refuse: dict[str, str] = {}
        self.refusals = 0
        self.delivered: dict[str, set[str]] = {}  # address -> delivery ids
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        reply = self.refuse.get(address)
        if reply is not None:
            self.refusals += 1
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.content.decode(errors="replace")
        delivery = next(
            (
                line.split(":", 1)[1].strip()
                for line in content.splitlines()
                if line.lower().startswith(DELIVERY_HEADER.lower() + ":")
            ),
            None,
        )
        for address in envelope.rcpt_tos:
            if delivery is not None:
                self.delivered.setdefault(address, set()).add(delivery)
        return "250 Message accepted"

    def __enter__(self) -> Mailbox:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()
