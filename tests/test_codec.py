"""The payload codec: AES-256-GCM with rotating keys, checked on a real dev server by reading the
raw history with a client that has no key, replaying it with and without the key, and through
the codec endpoint served by uvicorn on loopback."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from google.protobuf.json_format import MessageToDict
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from eucp.api.codec_server import SESSION_COOKIE, create_codec_app
from eucp.protocol.actions import Action
from eucp.protocol.identifiers import UrlIdentifier
from eucp.protocol.incident import IncidentReport
from eucp.protocol.phases import Phase
from eucp.protocol.search import SEARCH_ATTRIBUTES
from eucp.protocol.tasks import Outcome, TaskReport
from eucp.runtime.codec import (
    ENCODING,
    KEY_ID,
    NONCE_BYTES,
    CodecError,
    EncryptionCodec,
    UnknownKeyError,
    check_keys,
    decrypt_history,
    history_key_ids,
    is_encrypted,
    payloads_in,
)
from eucp.runtime.devserver import search_attribute_flags, temporal_cli
from eucp.runtime.settings import CodecKeyError, Settings
from eucp.runtime.temporal import connect, data_converter
from eucp.runtime.tokens import TokenStore
from eucp.service.incidents import Incidents
from tests.conftest import (
    AUDITOR,
    CHOOSY,
    COORDINATOR,
    FASTBOOK,
    REGISTRY,
    a_report,
    settings_in,
)
from tests.http_steps import Api, issue_tokens, serving
from tests.protocol_steps import ALL_MET, assigned
from worker import WORKFLOWS, running_worker

KEY_A = os.urandom(32)
KEY_B = os.urandom(32)


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def with_keys(settings: Settings, keys: dict[str, bytes], current: str) -> Settings:
    """The settings with these codec keys (validated as `EUCP_CODEC_KEYS` would be)."""
    spec = ",".join(f"{key_id}:{b64(key)}" for key_id, key in keys.items())
    return Settings.model_validate(
        {**settings.model_dump(), "codec_keys": spec, "codec_current_key": current}
    )


def converter(keys: dict[str, bytes], current: str) -> DataConverter:
    return data_converter(with_keys(Settings(), keys, current))


def plain_payload(text: str) -> Payload:
    [payload] = pydantic_data_converter.payload_converter.to_payloads([text])
    return payload


# ---- the codec on its own ---------------------------------------------------------------------


async def test_a_payload_is_encrypted_with_the_current_key_and_a_fresh_nonce() -> None:
    codec = EncryptionCodec({"a": KEY_A, "b": KEY_B}, current="b")
    secret = plain_payload("https://secret.example.test/watch/1")
    [one, two] = await codec.encode([secret, secret])
    assert one.metadata["encoding"] == ENCODING == b"binary/encrypted"
    assert one.metadata[KEY_ID] == b"b"
    assert b"secret.example" not in one.SerializeToString()
    assert one.data[:NONCE_BYTES] != two.data[:NONCE_BYTES]  # a random 96-bit nonce each
    assert one.data != two.data
    assert await codec.decode([one, two]) == [secret, secret]


async def test_unencrypted_payloads_pass_through_decoding() -> None:
    codec = EncryptionCodec({"a": KEY_A}, current="a")
    old = plain_payload("written before encryption was switched on")
    assert await codec.decode([old]) == [old]


async def test_an_unknown_key_id_is_named_in_the_error() -> None:
    written = await EncryptionCodec({"2025-q4": KEY_A}, current="2025-q4").encode(
        [plain_payload("x")]
    )
    reader = EncryptionCodec({"2026-q1": KEY_B}, current="2026-q1")
    with pytest.raises(UnknownKeyError, match="'2025-q4'") as raised:
        await reader.decode(written)
    assert raised.value.key_id == "2025-q4"
    assert "2026-q1" in str(raised.value)  # and which keys it holds


async def test_altered_ciphertext_or_relabelled_key_id_does_not_decrypt() -> None:
    codec = EncryptionCodec({"a": KEY_A, "b": KEY_B}, current="a")
    [sealed] = await codec.encode([plain_payload("x")])
    altered = Payload()
    altered.CopyFrom(sealed)
    altered.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    with pytest.raises(CodecError, match="does not authenticate"):
        codec.decrypt(altered)
    relabelled = Payload()
    relabelled.CopyFrom(sealed)
    relabelled.metadata[KEY_ID] = b"b"  # the key id is the associated data
    with pytest.raises(CodecError, match="does not authenticate under codec key 'b'"):
        codec.decrypt(relabelled)


async def test_rotation_keeps_old_payloads_readable_and_encrypts_new_ones_with_the_new_key() -> (
    None
):
    under_a = await EncryptionCodec({"a": KEY_A}, current="a").encode([plain_payload("old")])
    rotated = EncryptionCodec({"a": KEY_A, "b": KEY_B}, current="b")
    assert await rotated.decode(under_a) == [plain_payload("old")]
    [new] = await rotated.encode([plain_payload("new")])
    assert new.metadata[KEY_ID] == b"b"
    with pytest.raises(UnknownKeyError, match="'a'"):
        await EncryptionCodec({"b": KEY_B}, current="b").decode(under_a)  # A retired too soon


# ---- settings -----------------------------------------------------------------------------


def test_no_keys_means_no_codec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EUCP_CODEC_KEYS", raising=False)
    monkeypatch.delenv("EUCP_CODEC_CURRENT_KEY", raising=False)
    assert data_converter(Settings()) is pydantic_data_converter
    assert EncryptionCodec.from_settings(Settings()) is None


def test_keys_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EUCP_CODEC_KEYS", f"k1:{b64(KEY_A)}, k2:{b64(KEY_B)}")
    monkeypatch.setenv("EUCP_CODEC_CURRENT_KEY", "k2")
    settings = Settings()
    assert settings.codec_key_map() == {"k1": KEY_A, "k2": KEY_B}
    assert b64(KEY_A) not in repr(settings)
    conv = data_converter(settings)
    assert isinstance(conv.payload_codec, EncryptionCodec)
    assert conv.payload_codec.current == "k2"
    assert conv.payload_converter.__class__ is pydantic_data_converter.payload_converter.__class__


def test_one_key_is_the_current_key_without_saying_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EUCP_CODEC_KEYS", f"only:{b64(KEY_A)}")
    monkeypatch.delenv("EUCP_CODEC_CURRENT_KEY", raising=False)
    assert Settings().codec_current_key_id() == "only"


@pytest.mark.parametrize(
    ("keys", "current", "problem"),
    [
        (f"a:{b64(KEY_A)},b:{b64(KEY_B)}", None, "set codec_current_key"),
        (f"a:{b64(KEY_A)}", "z", "'z' is not among codec_keys"),
        (f"a:{b64(KEY_A[:16])}", None, "'a' has 16 bytes; AES-256 needs 32"),
        (f"a:{b64(KEY_A)},a:{b64(KEY_B)}", None, "'a' is given twice"),
        (f"a:{b64(KEY_A)[:-3]}!!", None, "'a' is not valid base64"),
        (b64(KEY_A), None, "codec key #1"),
        (None, "a", "codec_keys holds no key"),
    ],
    ids=["two-no-current", "unknown-current", "short", "twice", "not-base64", "unnamed", "none"],
)
def test_unusable_keys_are_refused_without_showing_them(
    monkeypatch: pytest.MonkeyPatch, keys: str | None, current: str | None, problem: str
) -> None:
    for name, value in (("EUCP_CODEC_KEYS", keys), ("EUCP_CODEC_CURRENT_KEY", current)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    with pytest.raises(CodecKeyError, match=problem) as raised:
        Settings()
    assert b64(KEY_A)[:20] not in str(raised.value)


# ---- a real crisis on a real dev server -------------------------------------------------------


@dataclass
class Secrets:
    """Every plaintext the crisis sends that must not reach the server."""

    urls: list[str]
    reasons: list[str]

    @property
    def all(self) -> list[str]:
        return self.urls + self.reasons


def secrets_for(tag: str) -> Secrets:
    return Secrets(
        urls=[f"https://attack-video-{tag}.example.test/watch/{n}" for n in range(3)],
        reasons=[
            f"activation-reason-{tag}: all five criteria met",
            f"decline-reason-{tag}: satire exemption",
            f"review-note-{tag}: hash matching caught most copies",
            f"closing-reason-{tag}: debrief held",
            f"report-title-{tag}",
        ],
    )


@pytest.fixture(scope="module")
async def encrypted_env() -> AsyncIterator[WorkflowEnvironment]:
    """A dev server whose test client encrypts with key `a`."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_cli()),
        data_converter=converter({"a": KEY_A}, "a"),
        ui=False,
        dev_server_log_level="error",
        dev_server_extra_args=search_attribute_flags(),
    )
    yield env
    await env.shutdown()


def plain_client(env: WorkflowEnvironment) -> Client:
    """A client on the same server with no codec at all: what the server holds, as stored."""
    return Client(env.client.service_client, namespace=env.client.namespace)


def rekeyed(env: WorkflowEnvironment, conv: DataConverter) -> Client:
    return Client(env.client.service_client, namespace=env.client.namespace, data_converter=conv)


async def first_half(incidents: Incidents, incident: str, s: Secrets) -> None:
    """Report, assess and activate with the secret URLs."""
    report: IncidentReport = a_report(
        title=s.reasons[4], first_identifiers=[UrlIdentifier(value=s.urls[0])]
    )
    await incidents.report(incident, report, REGISTRY.public(), None)
    iru = incidents.as_participant(incident, COORDINATOR)
    await iru.act(Action.assess, assessment=ALL_MET)
    await iru.act(
        Action.activate,
        reason=s.reasons[0],
        identifiers=[UrlIdentifier(value=u) for u in s.urls[1:]],
    )
    await assigned(iru)


async def second_half(incidents: Incidents, incident: str, s: Secrets) -> None:
    """Platforms answer (one declines with a reason), then de-escalation, review and closure."""
    fastbook = incidents.as_participant(incident, FASTBOOK)
    tasks = (await fastbook.my_tasks()).tasks
    await fastbook.report_tasks(
        [TaskReport(task_id=t.task_id, outcome=Outcome.removed) for t in tasks]
    )
    choosy = incidents.as_participant(incident, CHOOSY)
    [first, *rest] = (await choosy.my_tasks()).tasks
    await choosy.report_tasks(
        [TaskReport(task_id=first.task_id, outcome=Outcome.declined, reason=s.reasons[1])]
        + [TaskReport(task_id=t.task_id, outcome=Outcome.removed) for t in rest]
    )
    iru = incidents.as_participant(incident, COORDINATOR)
    await iru.act(Action.de_escalate, reason="re-uploads stopped", withdraw_open_tasks=True)
    await iru.act(Action.start_review)
    await fastbook.act(Action.submit_review_input, text=s.reasons[2])
    closed = await iru.act(Action.close, reason=s.reasons[3])
    assert closed.phase is Phase.closed
    assert (await incidents.result(incident)).phase is Phase.closed


async def raw_histories(client: Client, incident: str) -> list[WorkflowHistory]:
    """Every run of the incident's workflows (crisis and platforms), as the server stores it."""
    histories = []
    async for wf in client.list_workflows(f"WorkflowId STARTS_WITH '{incident}'"):
        handle = client.get_workflow_handle(wf.id, run_id=wf.run_id)
        histories.append(await handle.fetch_history())
    assert {h.workflow_id for h in histories} >= {incident, f"{incident}.platform.{FASTBOOK.id}"}
    return histories


def sdk_bookkeeping(event: HistoryEvent) -> bool:
    """Events the SDK core writes itself, outside the codec: `workflow.patched` markers and the
    `TemporalChangeVersion` search attribute listing the patch ids."""
    if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
        return event.marker_recorded_event_attributes.marker_name == "core_patch"
    if event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
        fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
        return set(fields.indexed_fields) == {"TemporalChangeVersion"}
    return False


# the events that set search attributes, by the name of their attributes field
SETTING_SEARCH_ATTRIBUTES = (
    "workflow_execution_started_event_attributes",
    "upsert_workflow_search_attributes_event_attributes",
    "workflow_execution_continued_as_new_event_attributes",
    "start_child_workflow_execution_initiated_event_attributes",
)


def search_attributes_of(event: HistoryEvent) -> set[str]:
    """The names of the search attributes an event sets."""
    return {
        name
        for field in SETTING_SEARCH_ATTRIBUTES
        if event.HasField(field)  # type: ignore[arg-type]
        for name in getattr(event, field).search_attributes.indexed_fields
    }


def without_search_attributes(event: HistoryEvent) -> HistoryEvent:
    """The event without the search attributes it sets: Temporal indexes them, in plain text
    by design (eucp's hold a phase, platform and participant ids and a flag: security.md)."""
    bare = HistoryEvent()
    bare.CopyFrom(event)
    for field in SETTING_SEARCH_ATTRIBUTES:
        if bare.HasField(field):  # type: ignore[arg-type]
            getattr(bare, field).ClearField("search_attributes")
    return bare


def unencrypted(history: WorkflowHistory) -> list[tuple[int, Payload]]:
    """(event id, payload) for every payload the codec did not encrypt, SDK bookkeeping and
    search attributes aside."""
    return [
        (event.event_id, p)
        for event in history.events
        for p in payloads_in(without_search_attributes(event))
        if not is_encrypted(p) and not sdk_bookkeeping(event)
    ]


@asynccontextmanager
async def worker_for(client: Client, settings: Settings) -> AsyncIterator[Incidents]:
    async with running_worker(client, settings):
        yield Incidents(client, settings)


@pytest.fixture(scope="module")
async def crisis_under_a(
    encrypted_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Secrets]:
    """One whole crisis, every payload written under key `a`."""
    settings = with_keys(settings_in(tmp_path_factory.mktemp("crisis")), {"a": KEY_A}, "a")
    incident, s = f"inc-{uuid.uuid4().hex[:10]}", secrets_for(uuid.uuid4().hex[:6])
    async with worker_for(encrypted_env.client, settings) as incidents:
        await first_half(incidents, incident, s)
        await second_half(incidents, incident, s)
    return incident, s


async def test_the_server_holds_only_ciphertext_of_identifiers_and_reasons(
    encrypted_env: WorkflowEnvironment, crisis_under_a: tuple[str, Secrets]
) -> None:
    incident, s = crisis_under_a
    raw = plain_client(encrypted_env)
    histories = await raw_histories(raw, incident)
    encrypted = 0
    for history in histories:
        stored = b"".join(e.SerializeToString() for e in history.events)
        for text in s.all:
            assert text.encode() not in stored, f"{text!r} in plain in {history.workflow_id}"
        encrypted += sum(1 for e in history.events for p in payloads_in(e) if is_encrypted(p))
        # every payload is encrypted, except the SDK core's own (patch ids) and the search
        # attributes, never our data
        assert unencrypted(history) == []
        searchable = {name for e in history.events for name in search_attributes_of(e)}
        assert searchable <= {*SEARCH_ATTRIBUTES, "TemporalChangeVersion"}
        assert history_key_ids(history) == {"a"}
    assert encrypted > 50

    # visibility: nothing readable in what listing returns either (memo, search attributes)
    async for wf in raw.list_workflows(f"WorkflowId STARTS_WITH '{incident}'"):
        listed = wf.raw_info.SerializeToString()
        assert not any(text.encode() in listed for text in s.all)

    # with the key, the same histories read back in clear
    key = EncryptionCodec({"a": KEY_A}, "a")
    clear = b"".join(
        e.SerializeToString() for h in histories for e in decrypt_history(h, key).events
    )
    assert all(text.encode() in clear for text in s.all)


async def test_a_memo_is_ciphertext_in_visibility(encrypted_env: WorkflowEnvironment) -> None:
    note = f"https://memo-note-{uuid.uuid4().hex}.example.test/"
    handle = await encrypted_env.client.start_workflow(
        "NoWorkerRunsThis",
        id=f"memo-{uuid.uuid4().hex[:8]}",
        task_queue=f"nobody-{uuid.uuid4().hex[:8]}",
        memo={"note": note},
    )
    try:
        raw = await plain_client(encrypted_env).get_workflow_handle(handle.id).describe()
        stored = raw.raw_description.workflow_execution_info.memo.fields["note"]
        assert is_encrypted(stored)
        assert note.encode() not in raw.raw_description.SerializeToString()
        assert await (await handle.describe()).memo() == {"note": note}  # the key holder reads it
    finally:
        await handle.terminate()


async def test_replay_works_with_the_key_and_fails_clearly_without_it(
    encrypted_env: WorkflowEnvironment, crisis_under_a: tuple[str, Secrets]
) -> None:
    incident, _ = crisis_under_a
    histories = await raw_histories(plain_client(encrypted_env), incident)
    with_key = Replayer(workflows=WORKFLOWS, data_converter=converter({"a": KEY_A}, "a"))
    for history in histories:
        result = await with_key.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, result.replay_failure

    crisis = next(h for h in histories if h.workflow_id == incident)
    no_codec = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    failed = await no_codec.replay_workflow(crisis, raise_on_replay_failure=False)
    assert "Unknown payload encoding binary/encrypted" in str(failed.replay_failure)
    with pytest.raises(UnknownKeyError, match="codec key 'a', which is not configured"):
        check_keys(crisis, None)  # the clear error to give before replaying

    other_key = Replayer(workflows=WORKFLOWS, data_converter=converter({"b": KEY_B}, "b"))
    failed = await other_key.replay_workflow(crisis, raise_on_replay_failure=False)
    assert 'type: "UnknownKeyError"' in str(failed.replay_failure)
    with pytest.raises(UnknownKeyError, match="'a'"):
        check_keys(crisis, EncryptionCodec({"b": KEY_B}, "b"))


async def test_history_written_under_key_a_still_runs_after_rotating_to_key_b(
    encrypted_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    base = settings_in(tmp_path)
    incident, s = f"inc-{uuid.uuid4().hex[:10]}", secrets_for(uuid.uuid4().hex[:6])
    under_a = with_keys(base, {"a": KEY_A}, "a")
    async with worker_for(rekeyed(encrypted_env, data_converter(under_a)), under_a) as incidents:
        await first_half(incidents, incident, s)

    # rotation: B is now current, A is kept for reading; a fresh worker must replay A's history
    rotated = with_keys(base, {"a": KEY_A, "b": KEY_B}, "b")
    async with worker_for(rekeyed(encrypted_env, data_converter(rotated)), rotated) as incidents:
        await second_half(incidents, incident, s)

    histories = await raw_histories(plain_client(encrypted_env), incident)
    crisis = next(h for h in histories if h.workflow_id == incident)
    assert history_key_ids(crisis) == {"a", "b"}
    replayer = Replayer(workflows=WORKFLOWS, data_converter=data_converter(rotated))
    for history in histories:
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, result.replay_failure
    with pytest.raises(UnknownKeyError, match="'a'"):
        check_keys(crisis, EncryptionCodec({"b": KEY_B}, "b"))


async def test_connect_applies_the_codec(encrypted_env: WorkflowEnvironment) -> None:
    settings = with_keys(
        Settings(temporal_address=encrypted_env.client.service_client.config.target_host),
        {"a": KEY_A},
        "a",
    )
    client = await connect(settings)
    assert isinstance(client.data_converter.payload_codec, EncryptionCodec)
    assert await client.count_workflows() is not None


# ---- the codec endpoint -----------------------------------------------------------------------


@dataclass
class Endpoint:
    url: str
    tokens: dict[str, str]
    codec: EncryptionCodec


def free_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
def codec_settings(tmp_path: Path) -> Settings:
    settings = with_keys(settings_in(tmp_path), {"a": KEY_A, "b": KEY_B}, "b")
    return settings.model_copy(update={"codec_server_token": SecretStr("operator-token-x")})


@pytest.fixture
async def endpoint(codec_settings: Settings) -> AsyncIterator[Endpoint]:
    store = TokenStore(codec_settings.tokens_path)
    tokens = {p: store.issue(p) for p in (COORDINATOR.id, AUDITOR.id, FASTBOOK.id)}
    app = create_codec_app(codec_settings)
    sock = free_socket()
    host, port = sock.getsockname()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no start event)
        await asyncio.sleep(0.01)
    try:
        codec = EncryptionCodec.from_settings(codec_settings)
        assert codec is not None
        yield Endpoint(f"http://{host}:{port}", tokens, codec)
    finally:
        server.should_exit = True
        await serving
        sock.close()


def body_of(payloads: list[Payload]) -> dict[str, object]:
    return {"payloads": [MessageToDict(p) for p in payloads]}


def texts_in(answer: httpx.Response) -> list[str]:
    from google.protobuf.json_format import ParseDict
    from temporalio.api.common.v1 import Payloads

    decoded = ParseDict(answer.json(), Payloads())
    return [
        pydantic_data_converter.payload_converter.from_payload(p, str) for p in decoded.payloads
    ]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def test_coordinators_auditors_and_the_operator_decode(
    endpoint: Endpoint, http: httpx.AsyncClient
) -> None:
    sealed = await endpoint.codec.encode([plain_payload("https://x.example.test/1")])
    for token in (endpoint.tokens[COORDINATOR.id], endpoint.tokens[AUDITOR.id], "operator-token-x"):
        answer = await http.post(
            f"{endpoint.url}/decode",
            json=body_of(sealed),
            headers={**bearer(token), "X-Namespace": "default"},
        )
        assert answer.status_code == 200, answer.text
        assert texts_in(answer) == ["https://x.example.test/1"]
    # the CLI's templated form: {endpoint}/{namespace}/decode
    answer = await http.post(
        f"{endpoint.url}/default/decode",
        json=body_of(sealed),
        headers=bearer(endpoint.tokens[AUDITOR.id]),
    )
    assert texts_in(answer) == ["https://x.example.test/1"]


async def test_encode_then_decode_round_trips_over_http(
    endpoint: Endpoint, http: httpx.AsyncClient
) -> None:
    auth = bearer(endpoint.tokens[COORDINATOR.id])
    plain = [plain_payload("note one"), plain_payload("note two")]
    encoded = await http.post(f"{endpoint.url}/encode", json=body_of(plain), headers=auth)
    assert encoded.status_code == 200
    assert "note one" not in encoded.text
    assert all(p["metadata"]["encoding"] == b64(ENCODING) for p in encoded.json()["payloads"])
    decoded = await http.post(f"{endpoint.url}/decode", json=encoded.json(), headers=auth)
    assert texts_in(decoded) == ["note one", "note two"]
    empty = await http.post(f"{endpoint.url}/decode", json={"payloads": []}, headers=auth)
    assert empty.json() == {"payloads": []}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"}],
    ids=["none", "unknown", "not-bearer"],
)
async def test_unauthenticated_callers_get_401(
    endpoint: Endpoint, http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    sealed = await endpoint.codec.encode([plain_payload("https://x.example.test/2")])
    for path in ("/decode", "/encode"):
        answer = await http.post(f"{endpoint.url}{path}", json=body_of(sealed), headers=headers)
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert "x.example.test" not in answer.text


async def test_guessing_tokens_is_slowed_down(endpoint: Endpoint, http: httpx.AsyncClient) -> None:
    answers = [
        await http.post(
            f"{endpoint.url}/decode", json={"payloads": []}, headers=bearer(f"guess-{n}")
        )
        for n in range(12)
    ]
    assert [a.status_code for a in answers[:10]] == [401] * 10  # a burst of 10 failures
    assert answers[-1].status_code == 429
    assert int(answers[-1].headers["Retry-After"]) >= 1


async def test_a_platform_may_not_decode(endpoint: Endpoint, http: httpx.AsyncClient) -> None:
    sealed = await endpoint.codec.encode([plain_payload("https://x.example.test/3")])
    answer = await http.post(
        f"{endpoint.url}/decode", json=body_of(sealed), headers=bearer(endpoint.tokens[FASTBOOK.id])
    )
    assert answer.status_code == 403
    assert "coordinators and auditors" in answer.json()["error"]


async def test_a_rotated_token_stops_working(
    endpoint: Endpoint, http: httpx.AsyncClient, codec_settings: Settings
) -> None:
    old = endpoint.tokens[AUDITOR.id]
    TokenStore(codec_settings.tokens_path).issue(AUDITOR.id)
    sealed = await endpoint.codec.encode([plain_payload("y")])
    answer = await http.post(f"{endpoint.url}/decode", json=body_of(sealed), headers=bearer(old))
    assert answer.status_code == 401


async def test_bad_bodies_and_unknown_keys_are_clear_400s(
    endpoint: Endpoint, http: httpx.AsyncClient
) -> None:
    auth = bearer(endpoint.tokens[COORDINATOR.id])
    bad = await http.post(f"{endpoint.url}/decode", content=b"{not json", headers=auth)
    assert bad.status_code == 400
    assert "payloads" in bad.json()["error"]
    foreign = await EncryptionCodec({"2019-old": KEY_A}, "2019-old").encode([plain_payload("z")])
    unknown = await http.post(f"{endpoint.url}/decode", json=body_of(foreign), headers=auth)
    assert unknown.status_code == 400
    assert "'2019-old'" in unknown.json()["error"]


async def test_the_web_ui_origin_may_call_with_credentials(
    endpoint: Endpoint, http: httpx.AsyncClient
) -> None:
    preflight = {
        "Origin": "http://127.0.0.1:8233",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace,authorization",
    }
    allowed = await http.options(f"{endpoint.url}/decode", headers=preflight)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "http://127.0.0.1:8233"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    elsewhere = await http.options(
        f"{endpoint.url}/decode", headers={**preflight, "Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in elsewhere.headers


async def test_a_browser_signs_in_once_and_decodes_with_its_session_cookie(
    endpoint: Endpoint, http: httpx.AsyncClient
) -> None:
    page = await http.get(f"{endpoint.url}/")
    assert 'name="token"' in page.text
    refused = await http.post(
        f"{endpoint.url}/session", data={"token": endpoint.tokens[FASTBOOK.id]}
    )
    assert refused.status_code == 403
    signed_in = await http.post(
        f"{endpoint.url}/session", data={"token": endpoint.tokens[AUDITOR.id]}
    )
    assert signed_in.status_code == 200
    cookie = signed_in.cookies[SESSION_COOKIE]
    assert "httponly" in signed_in.headers["set-cookie"].lower()
    assert "samesite=strict" in signed_in.headers["set-cookie"].lower()

    sealed = await endpoint.codec.encode([plain_payload("read in the Web UI")])
    async with httpx.AsyncClient(cookies={SESSION_COOKIE: cookie}) as browser:
        answer = await browser.post(f"{endpoint.url}/decode", json=body_of(sealed))
        assert texts_in(answer) == ["read in the Web UI"]
        await browser.delete(f"{endpoint.url}/session")
        after = await browser.post(f"{endpoint.url}/decode", json=body_of(sealed))
        assert after.status_code == 401


async def test_temporal_cli_reads_the_history_through_the_endpoint(
    encrypted_env: WorkflowEnvironment, crisis_under_a: tuple[str, Secrets], endpoint: Endpoint
) -> None:
    """Temporal's own CLI speaks the remote codec protocol the Web UI speaks."""
    incident, s = crisis_under_a

    async def show(*codec_flags: str) -> bytes:
        shown = await asyncio.to_thread(
            subprocess.run,
            [
                *(str(temporal_cli()), "workflow", "show", "-w", incident, "-o", "json"),
                *("--address", encrypted_env.client.service_client.config.target_host),
                *codec_flags,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        history = WorkflowHistory.from_json(incident, shown.stdout)
        return b"".join(e.SerializeToString() for e in history.events)

    token = endpoint.tokens[AUDITOR.id]
    decoded = await show("--codec-endpoint", endpoint.url, "--codec-auth", f"Bearer {token}")
    assert s.urls[0].encode() in decoded
    assert s.reasons[0].encode() in decoded
    assert s.urls[0].encode() not in await show()


def test_the_endpoint_needs_keys(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no codec keys"):
        create_codec_app(settings_in(tmp_path))


async def test_what_the_api_sends_reaches_the_server_encrypted(
    encrypted_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The API process connects as every eucp process does (`connect(settings)`): a report made
    over HTTP is ciphertext on the server, and reads back in clear through the API."""
    settings = with_keys(settings_in(tmp_path), {"a": KEY_A}, "a").model_copy(
        update={"temporal_address": encrypted_env.client.service_client.config.target_host}
    )
    tag = uuid.uuid4().hex[:8]
    secret_url, secret_title = f"https://api-{tag}.example.test/v/1", f"api-title-{tag}"
    report = a_report(title=secret_title, first_identifiers=[UrlIdentifier(value=secret_url)])
    api_client = await connect(settings)
    async with (
        worker_for(rekeyed(encrypted_env, data_converter(settings)), settings),
        serving(settings, api_client) as base,
    ):
        api = Api(base, issue_tokens(settings))
        reported = await api.as_(COORDINATOR.id).post(
            "/v1/incidents", json={"report": report.model_dump(mode="json")}
        )
        assert reported.status_code == 201, reported.text
        incident = reported.json()["incident_id"]
        status = (await api.as_(COORDINATOR.id).get(f"/v1/incidents/{incident}")).json()
        assert status["crisis"]["title"] == secret_title
        await api.close()
    history = await plain_client(encrypted_env).get_workflow_handle(incident).fetch_history()
    stored = b"".join(e.SerializeToString() for e in history.events)
    assert secret_url.encode() not in stored and secret_title.encode() not in stored
    assert history_key_ids(history) == {"a"}
