"""The API served by a real ASGI server (uvicorn) on loopback, called with a real HTTP client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from temporalio.client import Client

from eucp.api.app import create_app
from eucp.runtime.settings import Settings
from eucp.runtime.stack import free_port
from eucp.runtime.tokens import TokenStore
from tests.conftest import ACTORS


@asynccontextmanager
async def serving(settings: Settings, client: Client) -> AsyncIterator[str]:
    """Serves the API until the block ends; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, client), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no start event)
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def issue_tokens(settings: Settings) -> dict[str, str]:
    store = TokenStore(settings.tokens_path)
    return {a.id: store.issue(a.id) for a in ACTORS}


class Api:
    """One HTTP client per participant, each with its own bearer token."""

    def __init__(self, base: str, tokens: dict[str, str]) -> None:
        self.base = base
        self.tokens = tokens
        self._clients: dict[str, httpx.AsyncClient] = {}

    def as_(self, participant_id: str) -> httpx.AsyncClient:
        if participant_id not in self._clients:
            self._clients[participant_id] = httpx.AsyncClient(
                base_url=self.base,
                headers={"Authorization": f"Bearer {self.tokens[participant_id]}"},
                timeout=30,
            )
        return self._clients[participant_id]

    def anonymous(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, timeout=30)

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()
