"""docs/admin.md, followed to the letter: its `sh` blocks run in order, in one shell, against a
real server and worker on an empty database, with the real `pulse` command and curl."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pulse_core.config import Settings
from pulse_data.migrate import upgrade_database
from tests.backend import LiveBackend, free_port
from tests.conftest import running_backend

GUIDE = Path(__file__).parent.parent / "docs" / "admin.md"
SH_BLOCK = re.compile(r"^```sh\n(.*?)^```$", re.MULTILINE | re.DOTALL)

pytestmark = pytest.mark.skipif(
    not (shutil.which("curl") and shutil.which("jq")), reason="the guide needs curl and jq"
)


def guide_script() -> str:
    return "\n".join(SH_BLOCK.findall(GUIDE.read_text(encoding="utf-8")))


@pytest.fixture
def new_company_backend(settings: Settings, empty_database: str) -> Iterator[LiveBackend]:
    """A server and a worker on a migrated, empty database: no demo data at all."""
    upgrade_database(empty_database)
    settings = settings.model_copy(
        update={"port": free_port(), "offer_activation_delay_seconds": 0.5}
    )
    with running_backend(settings) as backend:
        yield backend


def test_the_guide_has_every_step() -> None:
    script = guide_script()
    for step in (
        "pulse marketer add",
        "pulse user add",
        "pulse apikey create",
        "pulse members import",
        "/api/targets",
        "/api/campaigns",
        "/deposits",
        "/launch",
        "/api/ingest/offers",
        "/api/ingest/ad-events",
        "/api/audit",
    ):
        assert step in script, step


def test_onboarding_a_company_from_nothing_as_the_guide_says(
    new_company_backend: LiveBackend, tmp_path: Path
) -> None:
    backend = new_company_backend
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PULSE_URL": backend.url,
        "PULSE_DATABASE_URL": backend.settings.database_url or "",
        "PULSE_REDIS_URL": backend.settings.redis_url or "",
    }
    env.pop("PULSE_PASSWORD", None)
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", guide_script()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    out = run.stdout

    # The ad server's request counted once, its retry only as duplicates.
    assert '{"accepted":3,"duplicates":0}' in out.replace(" ", "")
    assert '{"accepted":0,"duplicates":3}' in out.replace(" ", "")
    # The target placed the five northern members: two in the bullseye, three in ring 1.
    launched = json.loads(next(line for line in out.splitlines() if line.startswith('{"state"')))
    assert launched["state"] == "active"
    assert launched["target"] == "populated"
    assert launched["stats"]["target_population"] == 5
    assert launched["stats"]["balance"] == 500.0
    # One banner view, one jump and one completion of an offer of band 0 or 1 moved the stats.
    final = json.loads(out.strip().splitlines()[-1 - _audit_lines(out)])
    assert final["banner_views"] == 1
    assert final["text_jumps"] == 1
    assert final["unique_reach"] == 1
    assert final["spend_to_date"] in (4.0, 3.0)
    assert final["balance"] == 500.0 - final["spend_to_date"]
    # The audit trail names who did each step, from the command line and over REST.
    for line in (
        "pulse command: user_created",
        "pulse command: api_key_created",
        "Max Manager: target_created",
        "Max Manager: campaign_created",
        "Ann Admin: deposit",
        "Max Manager: launch",
    ):
        assert line in out, line


def _audit_lines(out: str) -> int:
    """How many of the last lines of the output are the audit trail's."""
    lines = out.strip().splitlines()
    count = 0
    for line in reversed(lines):
        if line.startswith("{"):
            break
        count += 1
    return count
