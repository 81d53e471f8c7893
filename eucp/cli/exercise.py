"""`eucp exercise`: rehearse the protocol on a running stack with a scenario file
(`eucp.demo.exercise`; the format is eucp/demo/scenarios/'s, read by `eucp.demo.scenario`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
from pydantic import ValidationError

from eucp.cli.framework import Invalid, Unavailable, current_target, refused
from eucp.client import ApiTimeout, ApiUnavailable
from eucp.demo.exercise import REAL_TIME, Exercise, ExerciseError
from eucp.demo.scenario import load_file
from eucp.protocol.identifiers import describe_invalid
from eucp.protocol.refusal import Refusal
from eucp.runtime import logs
from eucp.runtime.settings import get_settings


@click.group()
def exercise() -> None:
    """Rehearse the protocol: a scenario played as an exercise on a running stack, every
    notice marked EXERCISE (see docs/operations.md)."""


def _platforms(_: click.Context, __: click.Parameter, value: str | None) -> list[str] | None:
    if value is None:
        return None
    if value.strip().lower() == "none":
        return []
    return [pid.strip() for pid in value.split(",") if pid.strip()]


@exercise.command("run")
@click.argument(
    "scenario_file", metavar="SCENARIO.json", type=click.Path(exists=True, dir_okay=False)
)
@click.option(
    "--speed",
    type=click.FloatRange(min=0, min_open=True),
    default=REAL_TIME,
    show_default=True,
    help="seconds per scenario minute (60: real time); the protocol's clocks follow",
)
@click.option(
    "--platforms",
    metavar="ID,ID|none",
    callback=_platforms,
    help="the platforms simulated (default: all the scenario's); the others play themselves",
)
@click.option("--api", metavar="URL", help="base URL of the running eucp API (env EUCP_API_URL)")
@click.option(
    "--token",
    metavar="TOKEN",
    help="a coordinator's token to run it with (env EUCP_TOKEN); default: one is issued",
)
def exercise_run(
    scenario_file: str,
    speed: float,
    platforms: list[str] | None,
    api: str | None,
    token: str | None,
) -> None:
    """Play SCENARIO.json as an exercise on the running stack: report it (marked as an
    exercise), assess, activate, waves, platforms brought in, sightings, then de-escalate,
    review and close; print where the after-action report is.

    Run it on the stack's host, with its EUCP_* settings: it reads the participants registry
    and the tokens file (EUCP_REGISTRY_PATH, EUCP_TOKENS_PATH) and points each simulated
    platform's entry at its simulator for the time of the exercise.
    """
    logs.configure(json=False, level=30)
    target = current_target()
    try:
        scenario = load_file(Path(scenario_file))
    except ValidationError as err:
        raise Invalid(f"{scenario_file}: not a scenario: {describe_invalid(err)}") from None
    except ValueError as err:  # not JSON at all
        raise Invalid(f"{scenario_file}: not a scenario: {err}") from None
    try:
        run = Exercise(
            scenario,
            api=api or target.api,
            settings=get_settings(),
            seconds_per_minute=speed,
            simulated=platforms,
            token=token or target.token,
        )
        asyncio.run(run.run())
    except ExerciseError as err:
        raise Invalid(str(err), err.hint) from None
    except Refusal as err:
        raise refused(err) from None
    except ApiTimeout as err:
        raise Unavailable(str(err)) from None
    except ApiUnavailable as err:
        hint = "is the stack up (`eucp up`, `eucp api`)? set EUCP_API_URL or --api"
        raise Unavailable(str(err), hint if err.status is None else None) from None
