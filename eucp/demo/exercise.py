"""`eucp exercise run`: a scenario file played as an exercise against a running stack.

The incident is reported with `exercise=True` (every notice says so), then the scenario is
played over HTTP as the demo plays its own (`eucp.demo.run.run_scenario`): assessment,
activation, waves, platforms brought in, sightings, then de-escalation, review and closure.
Unlike the demo it starts no worker, API or Temporal: it works on the operator's machine, the
stack's host, with the files the running API and worker read (EUCP_REGISTRY_PATH,
EUCP_TOKENS_PATH, EUCP_REPORTS_DIR).

Platforms are simulated by default, each by a reference receiver (`eucp simulate-platform`)
answering as the scenario describes it (its median delays at the exercise's pace, its decline
rate, whether it misses its deadlines). For the time of the exercise a simulated platform's
registry entry points at its simulator and it is issued a token; the entry is put back at the
end. A platform left out of `--platforms` plays itself: it must be registered, it answers its
tasks and reports its sightings on its own (a table-top exercise).

Clocks: a scenario minute lasts `seconds_per_minute` seconds (60: real time) and the
protocol's clocks (EUCP_SLA__*) are scaled alike, except how long a notification is retried.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx

from eucp.client import ApiClient, ApiUnavailable
from eucp.demo.presets import contact
from eucp.demo.run import (
    Play,
    Simulated,
    run_scenario,
    say,
    simulated_on_loopback,
    start_simulators,
)
from eucp.demo.scenario import Scenario, ScenarioPlatform
from eucp.demo.simulator import WEBHOOK_PATH
from eucp.protocol.clocks import SlaSettings, spoken
from eucp.protocol.participants import Channel, Contact, ParticipantKind
from eucp.runtime.registry import Registry
from eucp.runtime.settings import Settings
from eucp.runtime.stack import Stack
from eucp.runtime.tokens import TokenStore

REAL_TIME = 60.0  # seconds per scenario minute
SEED = 7  # which tasks a simulated platform declines: the same on every run


class ExerciseError(Exception):
    """The exercise cannot start as asked: what is wrong, and what to do."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def scaled(sla: SlaSettings, seconds_per_minute: float) -> SlaSettings:
    """The protocol's clocks at the exercise's pace. How long a notification is retried is
    the delivery's patience, not a deadline of the protocol: it stays as it is."""
    factor = seconds_per_minute / REAL_TIME
    return sla.model_copy(
        update={
            name: getattr(sla, name) * factor
            for name in SlaSettings.model_fields
            if name != "deliver_within"
        }
    )


def simulator_flags(
    platform: ScenarioPlatform, seconds_per_minute: float, sla: SlaSettings
) -> list[str]:
    """`eucp simulate-platform` options that answer as the scenario's platform does. One that
    misses its deadlines acts once it has been escalated (half an escalation later)."""
    if platform.misses_sla:
        late = 1.5 * sla.escalate_after.total_seconds()
        flags = ["--miss-sla", "--late-by", f"{late:g}"]
    else:
        flags = [
            "--ack-after",
            f"{platform.ack_median_min * seconds_per_minute:g}",
            "--act-after",
            f"{platform.act_median_min * seconds_per_minute:g}",
        ]
    if platform.decline_rate:
        flags += ["--decline-rate", f"{platform.decline_rate:g}", "--seed", str(SEED)]
    return flags


def may_stand_in(entry: Contact) -> bool:
    """Whether an exercise may put a simulator in place of this registry entry: a platform told
    on the log only (as `eucp up`'s starter registry has them) or already on a simulator's
    loopback webhook. One reached by email or elsewhere is a real platform: left alone."""
    if entry.kind is not ParticipantKind.platform or Channel.email in entry.channels:
        return False
    if Channel.webhook not in entry.channels:
        return True
    url = entry.webhook_url or ""
    return url.startswith("http://127.0.0.1:") and url.endswith(WEBHOOK_PATH)


@dataclass
class Exercise:
    """One run of `eucp exercise run`."""

    scenario: Scenario
    api: str
    settings: Settings
    seconds_per_minute: float = REAL_TIME
    simulated: Sequence[str] | None = None  # None: every platform of the scenario
    token: str | None = None  # the coordinator's own; None: one is issued
    # each simulated platform's registry entry before the exercise (None: absent) and during
    _stood_in: dict[str, tuple[Contact | None, Contact]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        ids = [p.id for p in self.scenario.platforms]
        if self.simulated is None:
            self.simulated = ids
        unknown = sorted(set(self.simulated) - set(ids))
        if unknown:
            raise ExerciseError(
                f"--platforms: {', '.join(unknown)} not among the scenario's platforms",
                f"the scenario's platforms are {', '.join(ids)}",
            )
        if self.seconds_per_minute <= 0:
            raise ExerciseError("--speed: seconds per scenario minute, more than 0")

    @property
    def sla(self) -> SlaSettings:
        return scaled(self.settings.sla, self.seconds_per_minute)

    async def run(self) -> str:
        """Plays the scenario; returns the incident id once the incident has completed."""
        registry = Registry.load_or_empty(self.settings.registry_path)
        self._check_platforms(registry)
        await self._check_api(None)  # before a token is issued for nothing
        coordinator, token = self._coordinator(registry)
        await self._check_api(token)
        store = TokenStore(self.settings.tokens_path)
        scenario, pace, sla = self.scenario, self.seconds_per_minute, self.sla
        simulated = {
            pid: simulated_on_loopback(
                store.issue(pid), simulator_flags(scenario.platform(pid), pace, sla)
            )
            for pid in self.simulated or []
        }
        play = Play(
            scenario,
            platforms=[p.id for p in scenario.platforms],
            seconds_per_minute=pace,
            sla=sla,
            coordinator=coordinator,
            exercise=True,
        )
        self._announce(play, simulated)
        run = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
        logs = self.settings.var_dir / "exercise" / run  # the simulators' logs
        try:
            self._stand_in(simulated)
            with Stack(logs, {}) as stack:
                await start_simulators(stack, self.api, simulated)
                stack.check()
                if simulated:
                    names = ", ".join(simulated)
                    say(f"UP     simulated platforms: {names} (logs in {logs})")
                tokens = {coordinator: token} | {p: s.token for p, s in simulated.items()}
                incident_id = await run_scenario(self.api, tokens, play)
        finally:
            self._put_back()
        self._point_to_report(incident_id)
        return incident_id

    def _coordinator(self, registry: Registry) -> tuple[str, str]:
        """Who coordinates and with which token: the operator's own (its holder read from the
        tokens file), else a new token for the scenario's reporter (its earlier one stops
        working)."""
        if self.token:
            holder = TokenStore(self.settings.tokens_path).who(self.token)
            if holder is None:
                raise ExerciseError(
                    f"the token is not one of {self.settings.tokens_path}",
                    "run the exercise on the stack's host, with its EUCP_TOKENS_PATH",
                )
            coordinator = holder
        else:
            coordinator = self.scenario.report.reported_by
        try:
            entry = registry.get(coordinator)
        except KeyError:
            raise ExerciseError(
                f"{coordinator} is not registered in {self.settings.registry_path}",
                f"register it: eucp participants add {coordinator} --kind coordinator --name ...",
            ) from None
        if entry.kind is not ParticipantKind.coordinator:
            raise ExerciseError(
                f"{coordinator} is a {entry.kind}: an exercise is run by a coordinator",
                "set EUCP_TOKEN (or --token) to a coordinator's token",
            )
        if self.token:
            return coordinator, self.token
        token = TokenStore(self.settings.tokens_path).issue(coordinator)
        say(f"TOKEN  issued to {coordinator} for the exercise: its earlier token stops working")
        return coordinator, token

    async def _check_api(self, token: str | None) -> None:
        """Fails before changing anything when the API is not there (`ApiUnavailable`) or,
        given a token, refuses it (`Refusal`). Without one it asks `/metrics`, which answers
        anyone, rather than count as a failed sign-in."""
        if token is None:
            try:
                async with httpx.AsyncClient(timeout=10.0) as http:
                    await http.get(f"{self.api.rstrip('/')}/metrics")
            except httpx.TransportError as err:
                raise ApiUnavailable(f"cannot reach the eucp API at {self.api}: {err}") from None
            return
        async with ApiClient(self.api, token) as client:
            await client.incidents()

    def _check_platforms(self, registry: Registry) -> None:
        """A simulator stands in only for a platform that is not a real one; the platforms
        not simulated take part as registered: they must be."""
        known = {c.id: c for c in registry.participants}
        for p in self.scenario.platforms:
            if p.id in (self.simulated or []):
                entry = known.get(p.id)
                if entry is not None and not may_stand_in(entry):
                    raise ExerciseError(
                        f"{p.id} is registered with its own channels ({entry.kind}, "
                        f"{', '.join(entry.channels)}): an exercise does not simulate it",
                        "leave it out of --platforms: it plays itself",
                    )
            elif p.id not in known or known[p.id].kind is not ParticipantKind.platform:
                raise ExerciseError(
                    f"{p.id} plays itself (not in --platforms) but is not a registered platform",
                    f"register it (eucp participants add {p.id} --kind platform ...) "
                    "or simulate it (--platforms)",
                )

    def _announce(self, play: Play, simulated: dict[str, Simulated]) -> None:
        scenario = self.scenario
        themselves = [p.id for p in scenario.platforms if p.id not in simulated]
        say(
            f"EXERCISE {scenario.name}: {len(scenario.platforms)} platforms, "
            f"{len(simulated)} simulated"
            + (f", {', '.join(themselves)} playing themselves" if themselves else "")
        )
        playing = spoken_seconds(play.minutes * self.seconds_per_minute)
        say(
            f"       1 scenario minute = {self.seconds_per_minute:g} s: the steps take {playing}, "
            f"then the platforms have up to {spoken_seconds(play.settle_within)} to answer"
        )

    def _stand_in(self, simulated: dict[str, Simulated]) -> None:
        """Points each simulated platform's registry entry at its simulator (the running API
        and worker read the file again), remembering what was there."""
        if not simulated:
            return
        path = self.settings.registry_path
        with Registry.locked(path):
            registry = Registry.load_or_empty(path)
            entries = {c.id: c for c in registry.participants}
            for pid, sim in simulated.items():
                name = f"{self.scenario.platform(pid).name} (exercise simulator)"
                mine = contact(pid, ParticipantKind.platform, name, webhook=sim.webhook)
                self._stood_in[pid] = (entries.get(pid), mine)
                entries[pid] = mine
            Registry(participants=list(entries.values())).save(path)

    def _put_back(self) -> None:
        """The simulated platforms' entries as they were (absent ones removed), unless someone
        changed them meanwhile."""
        if not self._stood_in:
            return
        path = self.settings.registry_path
        with Registry.locked(path):
            registry = Registry.load_or_empty(path)
            entries: list[Contact] = []
            for entry in registry.participants:
                before, mine = self._stood_in.get(entry.id, (entry, None))
                if mine is None or entry != mine:
                    entries.append(entry)
                elif before is not None:
                    entries.append(before)
            Registry(participants=entries).save(path)
        self._stood_in.clear()

    def _point_to_report(self, incident_id: str) -> None:
        folder = self.settings.reports_dir / incident_id
        report = folder / "report.html"
        if report.exists():
            say(f"REVIEW after-action report: {report.resolve()} (report.md, report.json beside)")
        else:
            say(
                f"REVIEW after-action report: {Path(incident_id) / 'report.html'} under the "
                f"worker's EUCP_REPORTS_DIR (not at {folder.resolve()} from here)"
            )
        say(f"       audit: eucp ledger verify {incident_id}")


def spoken_seconds(seconds: float) -> str:
    return spoken(timedelta(seconds=seconds))
