"""The crisis runs' search attributes (`eucp.protocol.search`) on a Temporal server.

A run that sets an attribute its namespace does not know fails its workflow task again and
again, and starting one with it is refused, so every server eucp runs on must have them: the
dev server gets them as flags (`eucp.runtime.devserver`), the time-skipping test server and any
server whose operator service allows it through `register`, a cluster from its operator
(`temporal operator search-attribute create`, `docs/operations.md`). The worker checks them
before it starts (`check`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from eucp.protocol.search import SEARCH_ATTRIBUTES

NOT_YET = (RPCStatusCode.NOT_FOUND, RPCStatusCode.UNAVAILABLE)  # the namespace is on its way
INDEXED_TYPES = {
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "KeywordList": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
    "Bool": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
}


def create_commands(namespace: str = "default", names: Collection[str] = ()) -> list[str]:
    """The `temporal` commands that register the attributes (those `names`, or all) on a
    cluster's namespace."""
    return [
        f"temporal operator search-attribute create --namespace {namespace} "
        f"--name {name} --type {kind}"
        for name, kind in SEARCH_ATTRIBUTES.items()
        if not names or name in names
    ]


async def missing(client: Client) -> dict[str, str] | None:
    """The attributes the client's namespace lacks, or has with another type, by name; None
    when the server does not say (the time-skipping server lists none)."""
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
    except RPCError as err:
        if err.status in (RPCStatusCode.UNIMPLEMENTED, RPCStatusCode.PERMISSION_DENIED):
            return None
        raise
    return {
        name: kind
        for name, kind in SEARCH_ATTRIBUTES.items()
        if listed.custom_attributes.get(name) != INDEXED_TYPES[kind]
    }


async def register(client: Client) -> None:
    """Adds the attributes the client's namespace lacks (all of them where the server cannot
    list them, as the time-skipping test server): for servers eucp or its tests start."""
    lacking = await missing(client)
    wanted = SEARCH_ATTRIBUTES if lacking is None else lacking
    if not wanted:
        return
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={name: INDEXED_TYPES[kind] for name, kind in wanted.items()},
        )
    )


class Unregistered(Exception):
    """The namespace lacks search attributes eucp sets; the message says how to add them."""


async def check(client: Client, within: float = 30.0) -> None:
    """Raises `Unregistered` if the namespace lacks an attribute, with the commands that add
    them; passes when the server cannot say (the runs would then fail on their first turn).
    A server just started may not serve its namespace yet: asked again for `within` s."""
    deadline = time.monotonic() + within
    while True:
        try:
            lacking = await missing(client)
            break
        except RPCError as err:
            if err.status not in NOT_YET or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.5)
    if lacking:
        commands = "\n  ".join(create_commands(client.namespace, lacking))
        raise Unregistered(
            f"the Temporal namespace {client.namespace!r} lacks the search attributes "
            f"{', '.join(sorted(lacking))} that every crisis run sets; register them:\n  "
            f"{commands}"
        )
