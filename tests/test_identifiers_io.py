"""`eucp identifiers export` and `import`: an incident's identifiers out as CSV and in
python-threatexchange's file-exchange format, and back into other incidents, with the real
dev server, a worker and the API on loopback, the installed `eucp` run as a subprocess (as in
tests/test_cli.py: CliRunner would swap the process's stdout, where the served API logs). The
tx export is read by the library's own file exchange (`LocalFileSignalExchangeAPI`)."""

from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import io
import json
import os
import re
import struct
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from eucp.cli.framework import Invalid
from eucp.cli.identifiers import (
    BATCH_BYTES,
    Defaults,
    Exported,
    as_tx,
    batches,
    read_list,
    read_source,
    signal_of,
)
from eucp.client import ApiClient
from eucp.protocol.actions import Action
from eucp.protocol.commands import MAX_BATCH
from eucp.protocol.identifiers import (
    AnyIdentifier,
    HashAlgorithm,
    HashIdentifier,
    Labels,
    PlatformItemIdentifier,
    UrlIdentifier,
)
from eucp.protocol.tasks import TaskState
from tests.conftest import AUDITOR, COORDINATOR, FASTBOOK, SLOWTUBE, Protocol, a_report
from tests.http_steps import issue_tokens, serving
from tests.protocol_steps import ALL_MET, MANIFESTO, VIDEO, VIDEO_REENCODED, eventually, url

SHA = "ab" * 32
LABELS = Labels(entity='Front "A", cell 3', content_type="video", behaviour="livestream")


def frame(n: int) -> str:
    """A vPDQ frame: a made-up PDQ hash, quality 100, at n seconds."""
    return f"{hashlib.sha256(str(n).encode()).hexdigest()},100,{n}.0"


def a_tmk_file() -> str:
    """A small but well-formed TMK+PDQF .tmk file (1 period, 1 coefficient), in base64."""
    header = struct.pack("<4s4s4s5i", b"TMK1", b"FVEC", b"PDQF", 15, 1, 1, 256, 30)
    floats = 1 + 256 + 2 * 1 * 1 * 256
    features = struct.pack(f"<{floats}f", *[0.5] * floats)
    return base64.b64encode(header + struct.pack("<i", 30) + features).decode()


VPDQ = HashIdentifier(
    algorithm=HashAlgorithm.vpdq, value=json.dumps([frame(n) for n in range(1, 4)])
)
TMK = HashIdentifier(algorithm=HashAlgorithm.tmk, value=a_tmk_file())
ITEM = PlatformItemIdentifier(platform=FASTBOOK.id, item_id="post-42")
# item numbers 1-9 in this order; 9 is withdrawn before the export
IDENTIFIERS: list[AnyIdentifier] = [
    url(1).model_copy(update={"labels": LABELS}),
    UrlIdentifier(value="https://slowtube.example.test/v/7", platform=SLOWTUBE.id),
    HashIdentifier(algorithm=HashAlgorithm.sha256, value=SHA, labels=LABELS),
    MANIFESTO,
    VIDEO.model_copy(update={"labels": LABELS}),
    VPDQ,
    TMK,
    ITEM,
    url(9),
]
STANDING = IDENTIFIERS[:8]
IN_TX = [i for i in STANDING if not isinstance(i, PlatformItemIdentifier)]


SCRIPT = Path(sys.executable).with_name("eucp")


@dataclass
class Ran:
    exit_code: int
    stdout: str
    stderr: str


class Live:
    """The API on loopback: the installed `eucp` run as one participant (a subprocess: its
    own stdout, apart from the server's logs), and typed clients."""

    def __init__(self, base: str, tokens: dict[str, str]) -> None:
        self.base = base
        self.tokens = tokens
        self.clients = {p: ApiClient(base, token) for p, token in tokens.items()}

    async def eucp(self, *args: str, as_: str = COORDINATOR.id, stdin: str = "") -> Ran:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EUCP_")}
        env |= {"EUCP_API_URL": self.base, "EUCP_TOKEN": self.tokens[as_]}
        command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "eucp.cli"]
        proc = await asyncio.create_subprocess_exec(
            *command,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        out, err = await proc.communicate(stdin.encode())
        assert proc.returncode is not None
        return Ran(proc.returncode, out.decode(), err.decode())

    async def ok(self, *args: str, as_: str = COORDINATOR.id, stdin: str = "") -> Ran:
        ran = await self.eucp(*args, as_=as_, stdin=stdin)
        assert ran.exit_code == 0, (args, ran)
        return ran

    async def incident(self, *identifiers: AnyIdentifier) -> str:
        iru = self.clients[COORDINATOR.id]
        incident = (await iru.report(a_report())).incident_id
        await iru.act(incident, Action.assess, assessment=ALL_MET)
        await iru.act(incident, Action.activate, reason="all met", identifiers=list(identifiers))
        return incident

    async def items(self, incident: str) -> int:
        status = await self.clients[COORDINATOR.id].status(incident)
        return status.crisis.items  # type: ignore[union-attr]


@pytest.fixture
async def live(eucp: Protocol) -> AsyncIterator[Live]:
    async with serving(eucp.settings, eucp.env.client) as base:
        opened = Live(base, issue_tokens(eucp.settings))
        yield opened
        for client in opened.clients.values():
            await client.aclose()


async def the_source_incident(live: Live) -> str:
    """An incident holding IDENTIFIERS, item 9 withdrawn, once both platforms hold it so."""
    incident = await live.incident(*IDENTIFIERS)
    await live.clients[COORDINATOR.id].act(
        incident, Action.withdraw_content, items=[9], reason="not the attack's"
    )

    async def settled() -> bool:
        for platform in (FASTBOOK.id, SLOWTUBE.id):
            tasks = [t async for t in live.clients[platform].iter_tasks(incident)]
            if not any(t.item_no == 9 and t.state is TaskState.withdrawn for t in tasks):
                return False
        return True

    await eventually(settled)
    return incident


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def without_item(found: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k != "item"} for row in found]


def answer(ran: Ran) -> dict[str, Any]:
    return json.loads(ran.stdout)  # type: ignore[no-any-return]


async def test_identifiers_go_out_and_come_back_in_csv_and_tx(live: Live, tmp_path: Path) -> None:
    source, target, fresh = await asyncio.gather(
        the_source_incident(live), live.incident(), live.incident()
    )
    out, tx_file = tmp_path / "list.csv", tmp_path / "list.txt"
    said, audited, tx = await asyncio.gather(
        live.ok("identifiers", "export", source, "--out", str(out)),
        live.ok("identifiers", "export", source, as_=AUDITOR.id),
        live.ok("identifiers", "export", source, "--format", "tx"),
    )
    assert said.stdout == ""
    assert f"{source}: 8 identifiers as csv to {out}" in said.stderr
    exported = rows(out.read_text())
    assert [r["item"] for r in exported] == [str(n) for n in range(1, 9)]  # 9 was withdrawn
    assert [r["type"] for r in exported] == [
        "url", "url", "sha256", "md5", "pdq", "vpdq", "tmk", "item",
    ]  # fmt: skip
    assert exported[0]["entity"] == 'Front "A", cell 3'
    assert (exported[1]["platform"], exported[4]["quality"]) == (SLOWTUBE.id, "95")
    assert (exported[7]["value"], exported[7]["platform"]) == ("post-42", FASTBOOK.id)
    assert audited.stdout == out.read_text()
    # tx: what python-threatexchange's file exchange reads, without quality, labels or item ids
    lines = tx.stdout.splitlines()
    assert len(lines) == len(IN_TX) == 7
    assert lines[4] == f"pdq {VIDEO.value}"
    assert lines[3] == f"video_md5 {MANIFESTO.value}"
    assert "1 left out: a platform's item id has no python-threatexchange signal" in tx.stderr
    tx_file.write_text(tx.stdout)
    library_reads(tx_file)

    # into other incidents: csv the same identifiers, labels and all; tx their types and values
    tx_import = ("identifiers", "import", "--format", "tx", "--pdq-quality", "95", "--json")
    imported, loaded, no_quality = await asyncio.gather(
        live.ok("identifiers", "import", target, str(out), "--json"),
        live.ok(*tx_import, fresh, "-", "--entity", "Example Front", stdin=tx.stdout),
        live.eucp("identifiers", "import", target, str(tx_file), "--format", "tx"),
    )
    assert (answer(imported)["read"], answer(imported)["accepted_items"]) == (8, [*range(1, 9)])
    assert (answer(imported)["duplicates"], answer(imported)["low_quality"]) == (0, 0)
    assert answer(loaded)["accepted_items"] == list(range(1, 8))
    assert no_quality.exit_code == 2
    assert f"{tx_file} line 5: quality: a pdq hash needs its quality score" in no_quality.stderr

    copied, back, back_tx, again, repeated = await asyncio.gather(
        live.ok("identifiers", "export", target),
        live.ok("identifiers", "export", fresh),
        live.ok("identifiers", "export", fresh, "--format", "tx"),
        live.ok("identifiers", "import", target, str(out)),  # the same again: all duplicates
        live.ok(*tx_import, fresh, str(tx_file)),
    )
    assert without_item(rows(copied.stdout)) == without_item(exported)
    assert [(r["type"], r["value"]) for r in rows(back.stdout)] == [
        (r["type"], r["value"]) for r in exported if r["type"] != "item"
    ]
    assert {r["entity"] for r in rows(back.stdout)} == {"Example Front"}
    assert rows(back.stdout)[4]["quality"] == "95"
    assert back_tx.stdout == tx.stdout
    assert "read            8 identifiers from" in again.stdout
    assert "accepted items  none" in again.stdout
    assert "duplicates      8" in again.stdout
    assert (answer(repeated)["accepted_items"], answer(repeated)["duplicates"]) == ([], 7)
    assert (await live.items(target), await live.items(fresh)) == (8, 7)


def library_reads(path: Path) -> None:
    """The tx export as python-threatexchange's own file exchange fetches it, and the signals
    its signal types take (vpdq's only where the vpdq hasher is installed; tmk_pdqf has none
    in the library)."""
    pytest.importorskip("threatexchange")
    from threatexchange.exchanges.impl.file_api import (
        FileCollaborationConfig,
        LocalFileSignalExchangeAPI,
    )
    from threatexchange.signal_type.md5 import VideoMD5Signal
    from threatexchange.signal_type.pdq.signal import PdqSignal
    from threatexchange.signal_type.sha256 import VideoSHA256Signal
    from threatexchange.signal_type.url import URLSignal

    collab = FileCollaborationConfig(name="crisis-list", api="local_file", filename=str(path))
    exchange = LocalFileSignalExchangeAPI.for_collab(collab)
    fetched: dict[Any, Any] = {}
    for delta in exchange.fetch_iter([], None):
        fetched |= delta.updates
    assert set(fetched) == {signal_of(i) for i in IN_TX}
    types = [PdqSignal, VideoMD5Signal, VideoSHA256Signal, URLSignal]
    by_type = exchange.naive_convert_to_signal_type(types, collab, fetched)
    assert {t.get_name(): sorted(s) for t, s in by_type.items()} == {
        "pdq": [VIDEO.value],
        "video_md5": [MANIFESTO.value],
        "video_sha256": [SHA],
        "url": sorted([url(1).value, "https://slowtube.example.test/v/7"]),
    }
    try:
        from threatexchange.extensions.vpdq.vpdq import VPDQSignal
    except ImportError:  # the vpdq hasher is not installed here
        return
    vpdq = exchange.naive_convert_to_signal_type([VPDQSignal], collab, fetched)
    assert list(vpdq[VPDQSignal]) == [VPDQ.value]


async def test_bad_rows_refused_with_their_line_and_each_sees_its_own(
    live: Live, tmp_path: Path
) -> None:
    source = await the_source_incident(live)
    before = await live.items(source)

    bad, header, good = (tmp_path / name for name in ("bad.csv", "header.csv", "good.csv"))
    bad.write_text(
        "type,value,quality,entity\n"
        f"md5,{'cd' * 16},,Example Front\n"
        "\n"
        "sha256,abc,,\n"
        f"pdq,{VIDEO.value[:-2]}ff,,\n"
        'url,"https://x.example/a\nb",,\n'  # one row on lines 6 and 7
        "sha1,00,,\n"
    )
    header.write_text("hash,value\nmd5,00\n")
    good.write_text(
        "type,value,quality\n"
        f"md5,{'ef' * 16},\n"
        f"pdq,{VIDEO_REENCODED.value},90\n"  # 8 bits from the incident's video
        f"pdq,{'f0' * 32},10\n"  # under the quality floor
    )
    partner = f"# from a partner\npdq {VIDEO.value}\nurl_md5 {'cd' * 16}\n"
    refused, wrong, tx, forbidden, unknown, mine, theirs = await asyncio.gather(
        live.eucp("identifiers", "import", source, str(bad)),
        live.eucp("identifiers", "import", source, str(header)),
        live.eucp("identifiers", "import", source, "-", "--format", "tx", stdin=partner),
        live.eucp("identifiers", "import", source, str(good), as_=FASTBOOK.id),
        live.eucp("identifiers", "export", "inc-nope"),
        live.ok("identifiers", "export", source, as_=FASTBOOK.id),
        live.ok("identifiers", "export", source, as_=SLOWTUBE.id),
    )
    assert refused.exit_code == 2
    assert "3 bad rows, nothing was sent" in refused.stderr
    assert f"{bad} line 4: value: a sha256 hash is 64 hex digits, got 3" in refused.stderr
    assert f"{bad} line 5: quality: a pdq hash needs its quality score (0-100)" in refused.stderr
    assert f"{bad} line 8: type: 'sha1' is none of url, item, md5" in refused.stderr
    assert wrong.exit_code == 2
    assert f"{header} line 1: the header's column 'hash' is none of item, type" in wrong.stderr
    assert tx.exit_code == 2
    assert "stdin line 2: quality: a pdq hash needs" in tx.stderr
    assert "stdin line 3: signal type 'url_md5' is none eucp takes: pdq, video_md5" in tx.stderr
    assert forbidden.exit_code == 1  # a platform may not import
    assert "add_content may be taken by" in forbidden.stderr
    assert unknown.exit_code == 1
    assert "eucp crisis list" in unknown.stderr
    assert await live.items(source) == before

    # a platform exports its own tasks, never another's
    assert [r["item"] for r in rows(mine.stdout)] == ["1", "3", "4", "5", "6", "7", "8"]
    assert rows(mine.stdout)[-1]["value"] == "post-42"
    assert [r["item"] for r in rows(theirs.stdout)] == ["1", "2", "3", "4", "5", "6", "7"]

    # eucp's dedup applies: a copy within 31 bits is a duplicate, a flat image's PDQ dropped
    added = answer(await live.ok("identifiers", "import", source, str(good), "--json"))
    assert (added["read"], added["accepted_items"]) == (3, [before + 1])
    assert (added["duplicates"], added["low_quality"]) == (1, 1)
    assert await live.items(source) == before + 1


# ---- without the API -----------------------------------------------------------------------


def test_lists_are_read_whole_or_refused(tmp_path: Path) -> None:
    none = Defaults(Labels(), None)
    source = tmp_path / "list.csv"
    source.write_text(
        "\ufefftype,value,platform,entity\n"  # a spreadsheet's byte order mark is dropped
        'url,https://x.example/a,,"two\nlines"\n'
        "video_md5,CD" + "cd" * 15 + ",,\n"
        "item,post-1,,\n",
        encoding="utf-8",
    )
    name, text = read_source(str(source))
    assert (name, text[:5]) == (str(source), "type,")
    with pytest.raises(Invalid) as refused:
        read_list("list.csv", text, "csv", none)
    assert "list.csv line 5: platform: an item id needs the platform it is on" in (
        refused.value.message
    )
    found = read_list("list.csv", text.replace("post-1,,", f"post-1,{FASTBOOK.id},"), "csv", none)
    assert found[0] == UrlIdentifier(
        value="https://x.example/a", labels=Labels(entity="two\nlines")
    )
    assert found[1] == HashIdentifier(algorithm="md5", value="cd" * 16)
    assert found[2] == PlatformItemIdentifier(platform=FASTBOOK.id, item_id="post-1")
    labelled = Defaults(Labels(entity="Example Front"), 80)
    tx = read_list("l.txt", f"pdq {VIDEO.value}\n\nvideo_sha256 {SHA}\n", "tx", labelled)
    assert tx[0] == VIDEO.model_copy(update={"quality": 80, "labels": labelled.labels})
    bare = read_list("l.txt", f"{VIDEO.value}\n{'0' * 64}\n", "tx", Defaults(Labels(), 90, "pdq"))
    assert [(i.value, i.quality) for i in bare] == [(VIDEO.value, 90), ("0" * 64, 90)]  # type: ignore[union-attr]
    with pytest.raises(Invalid, match=re.escape("l.txt: no identifiers")):
        read_list("l.txt", "# nothing\n", "tx", none)
    with pytest.raises(Invalid, match="line 2: quality: a hash has one, not a URL"):
        read_list("l.csv", "type,value,quality\nurl,https://x.example/a,5\n", "csv", none)


def test_batches_keep_under_the_count_and_the_body_size() -> None:
    md5s: list[AnyIdentifier] = [
        HashIdentifier(algorithm="md5", value=f"{n:032x}") for n in range(MAX_BATCH + 5)
    ]
    assert [len(b) for b in batches(md5s)] == [MAX_BATCH, 5]
    heavy = HashIdentifier.model_construct(algorithm=HashAlgorithm.tmk, value="A" * 300_000)
    sizes = [len(b) for b in batches([heavy] * 5)]
    assert sizes == [2, 2, 1]
    assert 2 * 300_000 < BATCH_BYTES < 3 * 300_000


def test_a_tx_line_is_one_signal_or_none() -> None:
    broken = UrlIdentifier(value="https://x.example/a\nb")  # eucp takes it, a line cannot
    text, no_signal, no_line = as_tx(
        [Exported(1, broken), Exported(2, ITEM), Exported(3, MANIFESTO), Exported(4, MANIFESTO)]
    )
    assert (text, no_signal, no_line) == (f"video_md5 {MANIFESTO.value}\n", 1, 1)
