"""The sighting platforms' webhook receivers, in a process of their own:
`python -m bench.receivers PORT OUT`.

In the benchmark's own process they shared an event loop with the 50-calls-a-second sender,
so an arrival was stamped when that loop got round to it, not when it came. Here each
`task_assigned` item is stamped on arrival and appended to OUT as one JSON line:
`[arrived_at, platform, url, delivery_id]`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TextIO

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eucp.runtime.devserver import wait_for_port
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

    return Starlette(routes=[Route("/hook/{platform}", hook, methods=["POST"])])


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
async def serving(port: int, out: Path) -> AsyncIterator[None]:
    """The receivers in a process of their own, writing to `out`, while the block runs."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.receivers", str(port), str(out)
    )
    try:
        await wait_for_port("127.0.0.1", port)
        yield
    finally:
        proc.terminate()
        await proc.wait()


def main() -> None:
    port, out = int(sys.argv[1]), Path(sys.argv[2])
    with out.open("w") as sink:
        uvicorn.run(app(sink), host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
