"""The sighting platforms' webhook receivers, in a process of their own:
`python -m bench.receivers FD OUT`, accepting on the listening socket the benchmark holds as FD.

In the benchmark's own process they shared an event loop with the 50-calls-a-second sender,
so an arrival was stamped when that loop got round to it, not when it came. Here each
`task_assigned` item is stamped on arrival and appended to OUT as one JSON line:
`[arrived_at, platform, url, delivery_id]`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TextIO

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eucp.runtime.signing import DELIVERY_HEADER

Arrival = tuple[float, str, str, str]  # arrived at, platform, url, delivery id


def app(out: TextIO) -> Starlette:
    async def hook(request: Request) -> Response:
        now = time.time()
        body = json.loads(await request.body())
        delivery = request.headers.get(DELIVERY_HEADER, body.get("delivery_id", ""))
        platform = request.path_params["platform"]
        urls = [""]  # a delivery that names no URL still counts towards "delivered twice"
        if body.get("kind") == "task_assigned":
            urls = [
                url
                for task in body.get("data", {}).get("tasks", [])
                if isinstance(url := task.get("identifier", {}).get("value"), str)
            ] or urls
        out.writelines(json.dumps([now, platform, url, delivery]) + "\n" for url in urls)
        out.flush()
        return Response(status_code=200)

    async def ready(request: Request) -> Response:
        return Response(status_code=204)

    return Starlette(
        routes=[Route("/hook/{platform}", hook, methods=["POST"]), Route("/ready", ready)]
    )


def read(path: Path) -> list[Arrival]:
    """The arrivals written so far (a line being written is left for the next read)."""
    if not path.exists():
        return []
    arrivals: list[Arrival] = []
    for line in path.read_text().splitlines():
        try:
            at, platform, url, delivery = json.loads(line)
        except ValueError:
            continue
        arrivals.append((float(at), str(platform), str(url), str(delivery)))
    return arrivals


@contextlib.asynccontextmanager
async def serving(listener: socket.socket, out: Path) -> AsyncIterator[None]:
    """The receivers in a process of their own, accepting on `listener` and writing to `out`,
    while the block runs. The socket stays the caller's: its port never changes hands."""
    fd = listener.fileno()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.receivers", str(fd), str(out), pass_fds=(fd,)
    )
    try:
        await _until_ready(listener, proc)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):  # a receiver that died is reported below
            proc.terminate()
        if await proc.wait() not in (0, -signal.SIGTERM):
            raise RuntimeError(f"the webhook receivers stopped with exit code {proc.returncode}")


async def _until_ready(
    listener: socket.socket, proc: asyncio.subprocess.Process, within: float = 30.0
) -> None:
    """Until the process answers: the held socket accepts connections before anyone serves."""
    host, port = listener.getsockname()
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=1.0) as http:
        while proc.returncode is None:
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/ready")).status_code == 204:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the webhook receivers did not answer within {within:.0f} s")
            await asyncio.sleep(0.05)
    raise RuntimeError(f"the webhook receivers stopped with exit code {proc.returncode}")


def main() -> None:
    fd, out = int(sys.argv[1]), Path(sys.argv[2])
    with out.open("w") as sink, socket.socket(fileno=fd) as listener:
        config = uvicorn.Config(app(sink), log_level="warning", access_log=False)
        uvicorn.Server(config).run(sockets=[listener])


if __name__ == "__main__":
    main()
