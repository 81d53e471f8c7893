"""The form of the API's own ASGI middlewares (`BodyLimit`, `MeasureRequests`): each sees the
HTTP requests, and lets every other kind of connection (the server's lifespan events) through
untouched."""

from __future__ import annotations

from abc import ABC, abstractmethod

from starlette.types import ASGIApp, Receive, Scope, Send


class HttpMiddleware(ABC):
    """An ASGI middleware around `app` that handles HTTP requests in `http`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    @abstractmethod
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One HTTP request, passed on to `self.app` as the middleware sees fit."""
