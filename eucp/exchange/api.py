"""The eucp exchange: a platform's tasks as python-threatexchange signals, and its matches and
false positives back to eucp.

Fetch reads `GET /v1/tasks` from the checkpoint it kept: each change of one of the platform's
tasks, in any of its incidents, replaces that task's record (keyed `incident/task`). A task
withdrawn is a removal, unless its item had been reported as a false positive before: a
confirmed false positive stays, as a negative opinion. An identifier becomes the library's
signal of its kind: pdq as `pdq`, md5 as `video_md5`, sha256 as `video_sha256`, a URL as `url`
(and vpdq, tmk when eucp and the library both have them); a platform's item id has none.

An opinion goes back to the incidents in which one of the platform's open tasks matches the
signal (PDQ within the library's distance, 31; otherwise the same value):

- a false positive (the `false_positive` label: the command line's `label` has no flag for
  it) is a false-positive report on each matching item;
- any other opinion is a sighting: the signal itself (a pdq needs its `quality=N` label),
  the copy's own identifiers given as labels (`md5=`, `sha256=`, `url=`), or, if none of
  them, the matching crisis identifiers, seen again. New identifiers become tasks for the
  other platforms; a repeat is counted as a duplicate.

Labels `incident=ID` (only that incident), `reason=TEXT` (a false positive's reason) and
`entity=`, `content_type=`, `behaviour=` (the GIFCT labels of a sighting) are read too.
"""

import asyncio
import hashlib
import json
import logging
import typing as t
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from pydantic import ValidationError
from threatexchange.cli.exceptions import CommandError
from threatexchange.exchanges import auth
from threatexchange.exchanges import fetch_state as state
from threatexchange.exchanges.collab_config import CollaborationConfigWithDefaults
from threatexchange.exchanges.signal_exchange_api import SignalExchangeAPI
from threatexchange.signal_type.signal_base import FileHasher, SignalType, SimpleSignalType

from eucp.api.wire import TaskChange, TaskChanges
from eucp.client import ApiClient, ApiUnavailable
from eucp.protocol.actions import Action
from eucp.protocol.identifiers import (
    TX_ALGORITHM_OF_SIGNAL,
    TX_SIGNAL_OF_ALGORITHM,
    TX_URL_SIGNAL,
    AnyIdentifier,
    HashIdentifier,
    Labels,
    UrlIdentifier,
)
from eucp.protocol.refusal import Refusal
from eucp.protocol.tasks import TaskState

T = t.TypeVar("T")
log = logging.getLogger(__name__)

API_NAME = "eucp"
# eucp's hash algorithm -> the library's signal type name (the library's video types take any
# file's md5 and sha256, as NCMEC's exchange does)
FALSE_POSITIVE_LABELS = frozenset({"false_positive", "false-positive"})
DEFAULT_REASON = "a false positive on our service, reported from python-threatexchange"


class EucpExchangeError(CommandError):
    """eucp refused, could not be reached, or nothing of the platform's matched: the command
    line prints the message; any other caller gets an exception with it."""


@dataclass
class _EucpCollabConfigRequiredFields:
    api_url: str = field(
        metadata={"help": "eucp's API address, e.g. https://eucp.example.eu", "metavar": "URL"}
    )


@dataclass
class EucpCollabConfig(CollaborationConfigWithDefaults, _EucpCollabConfigRequiredFields):
    """One eucp deployment; the token (from `EUCP_TOKEN` or `~/.tx_eucp_token`) says which
    platform reads it."""

    api: str = field(init=False, default=API_NAME)


@dataclass
class EucpCredentials(auth.CredentialHelper):
    """The platform's eucp API token."""

    ENV_VARIABLE: t.ClassVar[str] = "EUCP_TOKEN"
    FILE_NAME: t.ClassVar[str] = "~/.tx_eucp_token"

    token: str

    @classmethod
    def _from_str(cls, s: str) -> "EucpCredentials":
        return cls(s.strip())

    def _are_valid(self) -> bool:
        return bool(self.token)


@dataclass
class EucpCheckpoint(state.FetchCheckpointBase):
    """eucp's own checkpoint (opaque) and the moment up to which it is complete."""

    checkpoint: str
    as_of: int  # unix seconds

    def get_progress_timestamp(self) -> int | None:
        return self.as_of


@dataclass
class EucpTask:
    """One of the platform's tasks as fetched: where it is, what it carries, how it stands."""

    incident_id: str
    task_id: str
    item_no: int
    signal_type: str  # the library's signal type name
    signal: str
    quality: int | None
    labels: dict[str, str]  # GIFCT labels that are set
    basis: str  # voluntary, removal_order
    state: str
    false_positive: bool  # withdrawn as a confirmed false positive
    changed_at: str

    @property
    def key(self) -> str:
        return f"{self.incident_id}/{self.task_id}"

    @property
    def tags(self) -> set[str]:
        return {f"{name}:{value}" for name, value in self.labels.items()} | {f"basis:{self.basis}"}


@dataclass
class EucpOpinion(state.SignalOpinion):
    """eucp's opinion of one task's signal: positive, or negative for a confirmed false
    positive."""

    incident_id: str
    task_id: str


@dataclass
class EucpSignalMetadata(state.FetchedSignalMetadata):
    """The platform's tasks that carry one signal (one per incident and item)."""

    tasks: list[EucpTask] = field(default_factory=list)

    def get_as_opinions(self) -> Sequence[EucpOpinion]:
        return [
            EucpOpinion(
                False,
                state.SignalOpinionCategory.NEGATIVE_CLASS
                if task.false_positive
                else state.SignalOpinionCategory.POSITIVE_CLASS,
                task.tags,
                task.incident_id,
                task.task_id,
            )
            for task in self.tasks
        ]

    def __str__(self) -> str:
        agg = self.get_as_aggregate_opinion()
        where = ",".join(task.key for task in self.tasks)
        return " ".join(x for x in (agg.category.name, ",".join(sorted(agg.tags)), where) if x)


def signal_of(identifier: AnyIdentifier) -> tuple[str, str] | None:
    """The library's (signal type name, value) for an eucp identifier; None for a kind the
    library has no signal for (a platform's item id)."""
    if isinstance(identifier, HashIdentifier):
        name = TX_SIGNAL_OF_ALGORITHM.get(str(identifier.algorithm))
        return None if name is None else (name, identifier.value)
    if isinstance(identifier, UrlIdentifier):
        return TX_URL_SIGNAL, identifier.value
    return None


def record_of(change: TaskChange, signal_types: Mapping[str, type[SignalType]]) -> EucpTask | None:
    """A fetched task as the exchange keeps it; None removes it: withdrawn (but not as a
    confirmed false positive), or carrying no signal of the given types."""
    task = change.task
    if task.state is TaskState.withdrawn and not change.false_positive:
        return None
    found = signal_of(task.identifier)
    if found is None or found[0] not in signal_types:
        return None
    name, value = found
    try:
        value = signal_types[name].validate_signal_str(value)
    except Exception:  # the library's own check of its format: skip what it does not take
        log.warning("eucp task %s: not a valid %s signal", task.task_id, name)
        return None
    labels = task.identifier.labels.model_dump(exclude_none=True)
    return EucpTask(
        incident_id=change.incident_id,
        task_id=task.task_id,
        item_no=task.item_no,
        signal_type=name,
        signal=value,
        quality=getattr(task.identifier, "quality", None),
        labels={k: str(v) for k, v in labels.items()},
        basis=task.basis.kind,
        state=str(task.state),
        false_positive=change.false_positive,
        changed_at=change.changed_at.isoformat(),
    )


def same_signal(s_type: type[SignalType], one: str, other: str) -> bool:
    """Whether two signals of a type match by the library's own comparison (a PDQ distance of
    31 or less), else when they are the same."""
    if issubclass(s_type, (FileHasher, SimpleSignalType)):
        return bool(s_type.compare_hash(one, other).match)
    return one == other


@dataclass(frozen=True)
class Tags:
    """What an opinion's labels tell eucp."""

    false_positive: bool = False
    incident: str | None = None
    reason: str | None = None
    quality: int | None = None
    copies: tuple[str, ...] = ()  # identifiers of the copy: md5=..., sha256=..., url=...
    labels: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, tags: t.Iterable[str]) -> "Tags":
        values: dict[str, str] = {}
        flags: set[str] = set()
        copies: list[str] = []
        for tag in sorted(tags):
            name, eq, value = tag.strip().partition("=")
            if not eq:
                flags.add(name.lower())
            elif name in ("md5", "sha256"):
                copies.append(f"{name}:{value.strip().lower()}")
            elif name == "url":
                copies.append(value.strip())
            else:
                values[name] = value.strip()
        quality = values.get("quality")
        if quality is not None and not quality.isdigit():
            raise EucpExchangeError(f"quality={quality}: give the PDQ quality score, 0-100", 2)
        return cls(
            false_positive=bool(flags & FALSE_POSITIVE_LABELS),
            incident=values.get("incident"),
            reason=values.get("reason"),
            quality=int(quality) if quality is not None else None,
            copies=tuple(copies),
            labels={k: values[k] for k in Labels.model_fields if k in values},
        )


class EucpSignalExchangeAPI(
    auth.SignalExchangeWithAuth[EucpCollabConfig, EucpCredentials],
    SignalExchangeAPI[EucpCollabConfig, EucpCheckpoint, EucpSignalMetadata, str, EucpTask],
):
    """eucp's API as a python-threatexchange exchange, for one platform (its token's)."""

    def __init__(
        self, collab: EucpCollabConfig, token: str, timeout: float = 60.0, page: int = 500
    ) -> None:
        self.collab = collab
        self.page = page  # task changes per request (and per delta)
        self._token = token
        self._timeout = timeout

    @classmethod
    def for_collab(
        cls, collab: EucpCollabConfig, credentials: EucpCredentials | None = None
    ) -> "EucpSignalExchangeAPI":
        credentials = credentials or EucpCredentials.get(cls)
        return cls(collab, credentials.token)

    @classmethod
    def get_name(cls) -> str:
        return API_NAME

    @staticmethod
    def get_config_cls() -> type[EucpCollabConfig]:
        return EucpCollabConfig

    @staticmethod
    def get_checkpoint_cls() -> type[EucpCheckpoint]:
        return EucpCheckpoint

    @staticmethod
    def get_record_cls() -> type[EucpSignalMetadata]:
        return EucpSignalMetadata

    @staticmethod
    def get_credential_cls() -> type[EucpCredentials]:
        return EucpCredentials

    # ---- fetch ----------------------------------------------------------------------------

    def fetch_iter(
        self,
        supported_signal_types: Sequence[type[SignalType]],
        checkpoint: EucpCheckpoint | None,
    ) -> Iterator[state.FetchDelta[str, EucpTask, EucpCheckpoint]]:
        """The platform's task changes since the checkpoint, a page per delta."""
        types = {st.get_name(): st for st in supported_signal_types}
        since = checkpoint.checkpoint if checkpoint is not None else None
        while True:
            page = self._call(partial(_changes, since=since, limit=self.page))
            updates: dict[str, EucpTask | None] = {
                f"{change.incident_id}/{change.task.task_id}": record_of(change, types)
                for change in page.changes
            }
            as_of = int(page.as_of.timestamp())
            yield state.FetchDelta(updates, EucpCheckpoint(page.checkpoint, as_of))
            if not page.more:
                return
            since = page.checkpoint

    @classmethod
    def naive_convert_to_signal_type(
        cls,
        signal_types: Sequence[type[SignalType]],
        collab: EucpCollabConfig,
        fetched: Mapping[str, EucpTask],
    ) -> dict[type[SignalType], dict[str, EucpSignalMetadata]]:
        by_name = {st.get_name(): st for st in signal_types}
        ret: dict[type[SignalType], dict[str, EucpSignalMetadata]] = {}
        for _, task in sorted(fetched.items()):
            s_type = by_name.get(task.signal_type)
            if s_type is None:
                continue
            ret.setdefault(s_type, {}).setdefault(task.signal, EucpSignalMetadata()).tasks.append(
                task
            )
        return ret

    # ---- opinions and sightings -----------------------------------------------------------

    def report_opinion(
        self, s_type: type[SignalType], signal: str, opinion: state.SignalOpinion
    ) -> None:
        """A false positive becomes a false-positive report on every matching item, anything
        else a sighting in every incident with a matching task (see the module's notes)."""
        signal = s_type.validate_signal_str(signal)
        tags = Tags.parse(opinion.tags)
        matched = self.matching_tasks(s_type, signal, tags.incident)
        if opinion.category is state.SignalOpinionCategory.NEGATIVE_CLASS or tags.false_positive:
            self._report_false_positives(matched, tags.reason or DEFAULT_REASON)
        else:
            self._report_sightings(matched, s_type, signal, tags)

    def report_seen(
        self, s_type: type[SignalType], signal: str, metadata: EucpSignalMetadata | None = None
    ) -> None:
        """A match seen on the platform: a sighting of the matching crisis identifiers (of
        the tasks in `metadata`, else of those found)."""
        signal = s_type.validate_signal_str(signal)
        tasks = [t for t in metadata.tasks if not t.false_positive] if metadata else []
        self._report_sightings(tasks or self.matching_tasks(s_type, signal), s_type, signal)

    def matching_tasks(
        self, s_type: type[SignalType], signal: str, incident: str | None = None
    ) -> list[EucpTask]:
        """The platform's open tasks whose signal matches, read from eucp now."""
        types = {s_type.get_name(): s_type}

        async def every_task(api: ApiClient) -> list[EucpTask]:
            found: list[EucpTask] = []
            async for page in api.iter_task_changes(limit=1000):
                found += [r for c in page.changes if (r := record_of(c, types)) is not None]
            return found

        matched = [
            task
            for task in self._call(every_task)
            if not task.false_positive
            and (incident is None or task.incident_id == incident)
            and same_signal(s_type, task.signal, signal)
        ]
        if not matched:
            where = f" in {incident}" if incident else ""
            raise EucpExchangeError(
                f"none of your open tasks{where} in eucp matches this {s_type.get_name()} "
                "signal: nothing reported",
                2,
            )
        return matched

    def _report_false_positives(self, tasks: list[EucpTask], reason: str) -> None:
        items = sorted({(task.incident_id, task.item_no) for task in tasks})

        async def report(api: ApiClient) -> None:
            for incident_id, item in items:
                await api.act(
                    incident_id,
                    Action.report_false_positive,
                    idempotency_key=_key("tx-false-positive", incident_id, item, reason),
                    item=item,
                    reason=reason,
                )

        self._call(report)

    def _report_sightings(
        self,
        tasks: list[EucpTask],
        s_type: type[SignalType],
        signal: str,
        tags: Tags = Tags(),
    ) -> None:
        by_incident: dict[str, list[EucpTask]] = {}
        for task in tasks:
            by_incident.setdefault(task.incident_id, []).append(task)
        sent = {
            incident_id: _sighting(matched, s_type, signal, tags)
            for incident_id, matched in sorted(by_incident.items())
        }

        async def report(api: ApiClient) -> None:
            for incident_id, identifiers in sent.items():
                await api.act(
                    incident_id,
                    Action.report_sightings,
                    idempotency_key=_key("tx-sighting", incident_id, identifiers),
                    identifiers=identifiers,
                )

        self._call(report)

    # ---- the HTTP client, from synchronous code -------------------------------------------

    def _call(self, work: Callable[[ApiClient], Awaitable[T]]) -> T:
        """Runs one exchange with eucp on a fresh client and event loop (in a thread of its
        own when the caller already runs one); eucp's refusals and failures as
        `EucpExchangeError`."""

        async def run() -> T:
            async with ApiClient(self.collab.api_url, self._token, timeout=self._timeout) as api:
                try:
                    return await work(api)
                except Refusal as refused:
                    raise EucpExchangeError(f"eucp refused: {refused}", 2) from refused
                except ApiUnavailable as err:
                    raise EucpExchangeError(str(err), 3) from err

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(run())
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, run()).result()


async def _changes(api: ApiClient, since: str | None, limit: int) -> TaskChanges:
    return await api.task_changes(since, limit=limit)


def _sighting(
    matched: list[EucpTask], s_type: type[SignalType], signal: str, tags: Tags
) -> list[dict[str, t.Any]]:
    """What a match on the platform tells the incident: the signal and the copy's own
    identifiers, with the labels given (else the first matching task's); if none of them can
    be sent, the matching crisis identifiers."""
    labels = tags.labels or matched[0].labels
    wanted: list[dict[str, t.Any]] = []
    algorithm = TX_ALGORITHM_OF_SIGNAL.get(s_type.get_name())
    if s_type.get_name() == TX_URL_SIGNAL:
        wanted.append({"kind": "url", "value": signal})
    elif algorithm is not None and (algorithm != "pdq" or tags.quality is not None):
        wanted.append(
            {"kind": "hash", "algorithm": algorithm, "value": signal, "quality": tags.quality}
        )
    for copy in tags.copies:
        algorithm, colon, value = copy.partition(":")
        if colon and algorithm in ("md5", "sha256"):
            wanted.append({"kind": "hash", "algorithm": algorithm, "value": value})
        else:
            wanted.append({"kind": "url", "value": copy})
    if not wanted:
        wanted = [_crisis_identifier(task) for task in matched]
        labels = {}
    identifiers: list[dict[str, t.Any]] = []
    for raw in wanted:
        data = {k: v for k, v in raw.items() if v is not None}
        data.setdefault("labels", labels)
        try:
            model = UrlIdentifier if data["kind"] == "url" else HashIdentifier
            parsed = model.model_validate(data)
        except ValidationError as err:
            raise EucpExchangeError(f"not an identifier eucp takes: {data}: {err}", 2) from err
        dumped = parsed.model_dump(mode="json")
        if dumped not in identifiers:
            identifiers.append(dumped)
    return identifiers


def _crisis_identifier(task: EucpTask) -> dict[str, t.Any]:
    """A task's own identifier, as eucp gave it, with its labels."""
    if task.signal_type == TX_URL_SIGNAL:
        return {"kind": "url", "value": task.signal, "labels": task.labels}
    return {
        "kind": "hash",
        "algorithm": TX_ALGORITHM_OF_SIGNAL[task.signal_type],
        "value": task.signal,
        "quality": task.quality,
        "labels": task.labels,
    }


def _key(*parts: object) -> str:
    """An idempotency key fixed by what is sent: the same report twice changes nothing twice."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return f"{parts[0]}-{hashlib.sha256(text.encode()).hexdigest()[:40]}"


__all__ = [
    "EucpCheckpoint",
    "EucpCollabConfig",
    "EucpCredentials",
    "EucpExchangeError",
    "EucpSignalExchangeAPI",
    "EucpSignalMetadata",
    "EucpTask",
]
