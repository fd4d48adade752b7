"""The deployment kit's systemd units and compose file, checked by their own tools where they
exist (systemd-analyze; docker compose or docker-compose).

`systemd-analyze verify` refuses a unit whose ExecStart is missing, so the units are checked
as installed: copied to a folder where /opt/campaign-pulse/bin/pulse is this venv's `pulse`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGING = Path(__file__).resolve().parents[1] / "packaging"
UNITS = PACKAGING / "systemd"
INSTALLED_PULSE = "/opt/campaign-pulse/bin/pulse"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
# `systemd-analyze security` scores a unit's exposure from 0 (locked down) to 10; the units
# score 1.7. 2.5 leaves room for systemd's scoring to change, not for a protection to go.
MAX_EXPOSURE = 2.5

needs_systemd = pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="no systemd-analyze")


def systemd_version() -> int:
    assert SYSTEMD_ANALYZE is not None
    first = subprocess.run(
        [SYSTEMD_ANALYZE, "--version"], capture_output=True, text=True, check=True
    ).stdout
    match = re.match(r"systemd (\d+)", first)
    assert match, first
    return int(match.group(1))


@pytest.fixture(scope="module")
def installed_units(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The units, with ExecStart pointing at this venv's `pulse`."""
    pulse = Path(sys.executable).with_name("pulse")
    assert pulse.exists(), f"{pulse} is missing: pip install -e ."
    folder = tmp_path_factory.mktemp("units")
    units = sorted(UNITS.glob("*.service"))
    assert {unit.name for unit in units} == {
        "pulse-server@.service",
        "pulse-worker@.service",
        "pulse-db-upgrade.service",
    }
    for unit in units:
        text = unit.read_text()
        assert INSTALLED_PULSE in text, unit.name
        (folder / unit.name).write_text(text.replace(INSTALLED_PULSE, str(pulse)))
    return sorted(folder.glob("*.service"))


@needs_systemd
def test_systemd_accepts_the_units_without_a_warning(installed_units: list[Path]) -> None:
    assert SYSTEMD_ANALYZE is not None
    folder = installed_units[0].parent
    # The folder first, then systemd's own (the trailing colon): the units find each other.
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{folder}:"}
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", *map(str, installed_units)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    # An unknown or misspelt setting is only a warning ("Unknown key ..., ignoring"): any
    # output fails the test.
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        result.stdout + result.stderr
    )


@needs_systemd
def test_every_unit_is_hardened(installed_units: list[Path]) -> None:
    assert SYSTEMD_ANALYZE is not None
    if systemd_version() < 250:
        pytest.skip("systemd-analyze security --offline needs systemd 250 or newer")
    for unit in installed_units:
        result = subprocess.run(
            [
                SYSTEMD_ANALYZE,
                "security",
                "--offline=yes",
                "--no-pager",
                f"--threshold={int(MAX_EXPOSURE * 10)}",
                str(unit),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        overall = result.stdout.strip().splitlines()[-1:] or [result.stderr]
        assert result.returncode == 0, f"{unit.name}: {overall[0]}"


def compose_command() -> list[str] | None:
    """`docker compose` (when the plugin is installed), else `docker-compose`, else None."""
    if shutil.which("docker") is not None:
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") is not None else None


def test_compose_file_is_valid_with_the_example_settings(tmp_path: Path) -> None:
    command = compose_command()
    if command is None:
        pytest.skip("neither docker compose nor docker-compose is installed")
    shutil.copy(PACKAGING / "compose.yaml", tmp_path / "compose.yaml")
    shutil.copy(PACKAGING / ".env.example", tmp_path / ".env")
    result = subprocess.run(
        [*command, "--project-directory", str(tmp_path), "config", "--services"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == {
        "postgres",
        "redis",
        "db-upgrade",
        "server-1",
        "server-2",
        "worker-1",
        "worker-2",
        "proxy",
    }
