"""docs/operations.md and CHANGELOG.md keep up with the code: every setting, every alert, the
version."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from pulse_core.config import Settings

ROOT = Path(__file__).resolve().parent.parent
OPERATIONS = ROOT / "docs" / "operations.md"
# Where the product reads its settings (tests and benchmarks have their own variables).
SOURCES = ("pulse_core", "pulse_data", "pulse_cli", "server", "workers", "desktop")
VARIABLE = re.compile(r"\bPULSE_[A-Z0-9]+(?:_[A-Z0-9]+)*\b")


def documented_settings() -> set[str]:
    """The first column of the settings table of docs/operations.md."""
    section = OPERATIONS.read_text().split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(PULSE_[A-Z0-9_]+)` \|", section, re.MULTILINE))


def settings_in_the_code() -> set[str]:
    fields = {f"PULSE_{name.upper()}" for name in Settings.model_fields}
    read = {
        name
        for package in SOURCES
        for path in (ROOT / package).rglob("*.py")
        for name in VARIABLE.findall(path.read_text(encoding="utf-8"))
    }
    return fields | read


def test_every_setting_is_in_the_operations_table_and_no_other() -> None:
    documented = documented_settings()
    in_code = settings_in_the_code()

    assert not in_code - documented, f"add these to docs/operations.md: {in_code - documented}"
    assert not documented - in_code, f"nothing reads these any more: {documented - in_code}"


def test_every_alert_rule_is_explained() -> None:
    rules = (ROOT / "packaging" / "prometheus" / "alerts.yml").read_text()
    alerts = set(re.findall(r"^\s*- alert: (\w+)", rules, re.MULTILINE))
    explained = OPERATIONS.read_text().split("\n## What each alert means\n", 1)[1]

    assert alerts
    assert {alert for alert in alerts if f"`{alert}`" not in explained} == set()


def test_the_changelogs_newest_release_is_the_packages_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    releases = re.findall(r"^## \[(\d[^\]]*)\]", (ROOT / "CHANGELOG.md").read_text(), re.MULTILINE)

    assert releases and releases[0] == version
