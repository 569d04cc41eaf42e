"""Process settings from the environment (WARROOM_*); the only reader of os.environ.

`warroom.yaml` holds the organisation's process; these settings hold where the
process runs: database, files, keys and ports.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path

from warroom.core.errors import ConfigError

# Keys that appeared in docs or examples must never be accepted as real keys.
_KNOWN_WEAK_KEYS = {"", "changeme", "secret", "dev", "development", "warroom", "insecure"}
MIN_SECRET_KEY_LEN = 32


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///./warroom.db"
    config_path: Path = Path("warroom.yaml")
    runbooks_path: Path = Path("runbooks")
    secret_key: str = ""
    public_url: str = ""
    client_url: str = "http://127.0.0.1:8080"
    client_token: str = ""
    log_level: str = "info"
    log_json: bool = False
    demo: bool = False
    fault: str = ""  # WARROOM_FAULT: deterministic crash point for reliability tests
    worker_poll_seconds: float = 1.0
    job_lease_seconds: float = 30.0
    extra: dict[str, str] = field(default_factory=dict)

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def env(name: str, default: str | None = None) -> str | None:
    """Read one environment variable (config `env:NAME` references go through here)."""
    return os.environ.get(name, default)


def environ_snapshot() -> dict[str, str]:
    return dict(os.environ)


def from_env(environ: dict[str, str] | None = None) -> Settings:
    e = os.environ if environ is None else environ
    return Settings(
        database_url=e.get("WARROOM_DATABASE_URL", "sqlite:///./warroom.db"),
        config_path=Path(e.get("WARROOM_CONFIG", "warroom.yaml")),
        runbooks_path=Path(e.get("WARROOM_RUNBOOKS", "runbooks")),
        secret_key=e.get("WARROOM_SECRET_KEY", ""),
        public_url=e.get("WARROOM_PUBLIC_URL", ""),
        client_url=e.get("WARROOM_URL", "http://127.0.0.1:8080"),
        client_token=e.get("WARROOM_TOKEN", ""),
        log_level=e.get("WARROOM_LOG_LEVEL", "info"),
        log_json=e.get("WARROOM_LOG_JSON", "") in ("1", "true", "yes"),
        demo=e.get("WARROOM_DEMO", "") in ("1", "true", "yes"),
        fault=e.get("WARROOM_FAULT", ""),
        worker_poll_seconds=float(e.get("WARROOM_WORKER_POLL", "1.0")),
        job_lease_seconds=float(e.get("WARROOM_JOB_LEASE", "30")),
    )


def resolve_secret_key(settings: Settings, *, state_dir: Path) -> Settings:
    """Refuse weak keys; in demo mode generate one at first start and keep it.

    Raises ConfigError when no usable key is set outside the demo.
    """
    key = settings.secret_key
    if key:
        if key.lower() in _KNOWN_WEAK_KEYS or len(key) < MIN_SECRET_KEY_LEN:
            raise ConfigError(
                [
                    f"WARROOM_SECRET_KEY is too weak (need {MIN_SECRET_KEY_LEN}+ random "
                    "characters; generate one with: python3 -c 'import secrets; "
                    "print(secrets.token_urlsafe(48))')"
                ],
                source="environment",
            )
        return settings
    if not settings.demo:
        raise ConfigError(
            ["WARROOM_SECRET_KEY is not set (required outside the embedded demo)"],
            source="environment",
        )
    key_file = state_dir / ".warroom-secret-key"
    if key_file.exists():
        key = key_file.read_text().strip()
    else:
        key = secrets.token_urlsafe(48)
        state_dir.mkdir(parents=True, exist_ok=True)
        key_file.write_text(key + "\n")
        key_file.chmod(0o600)
    return settings.with_(secret_key=key)
