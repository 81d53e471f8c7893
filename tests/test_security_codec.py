"""Every `eucp audit` command that reads Temporal works with the key that wrote the histories
and stops clearly without it, naming the key id, whether no key or only another is held."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from eucp.runtime.settings import Settings
from tests.conftest import settings_in
from tests.test_audit import Audit
from tests.test_codec import (  # noqa: F401  (the fixtures)
    KEY_A,
    KEY_B,
    Secrets,
    crisis_under_a,
    encrypted_env,
    with_keys,
)


@pytest.fixture
def audit_settings(encrypted_env: WorkflowEnvironment, tmp_path: Path) -> Settings:  # noqa: F811
    """Settings pointing at the encrypted server, without keys yet."""
    address = encrypted_env.client.service_client.config.target_host
    return settings_in(tmp_path).model_copy(update={"temporal_address": address})


async def test_audit_reads_with_the_key_and_names_the_missing_one_without_it(
    crisis_under_a: tuple[str, Secrets],  # noqa: F811
    audit_settings: Settings,
    tmp_path: Path,
) -> None:
    incident, _ = crisis_under_a
    keyed = Audit(with_keys(audit_settings, {"a": KEY_A}, "a"))
    assert (await keyed("replay", incident))[0] == 0
    bundle = tmp_path / "bundle.zip"
    code, export = await keyed("export", incident, "-o", bundle)
    assert code == 0, export

    for label, settings in {
        "no key": audit_settings,
        "another key": with_keys(audit_settings, {"b": KEY_B}, "b"),
    }.items():
        for args in (
            ["replay", incident],
            ["timeline", incident],
            ["export", incident, "-o", str(tmp_path / "x.zip")],
        ):
            code, text = await Audit(settings).text(*args)
            assert code == 2, (label, args, text)
            assert "codec key 'a', which is not configured" in text, (label, args, text)
            assert "Traceback" not in text
        assert not (tmp_path / "x.zip").exists()
