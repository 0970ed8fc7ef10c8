"""Configuration from the environment, with defaults that work from a checkout.

Every setting has one GRIDFLOW_* variable (the README's configuration table lists them).
`Settings.findings()` says what is missing or unsafe; `gridflow check-config` prints it and the
app factory refuses to start a production app with an unsafe configuration.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ("development", "production", "test")
LOG_FORMATS = ("text", "json")
PLACEHOLDER_KEYS = {"change-me", "changeme", "secret", "dev"}  # e.g. deploy/gridflow.env.example's
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    """A setting that cannot be used: a bad value, or an unsafe production configuration."""


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    """A yes/no variable; anything but 1/true/yes/on or 0/false/no/off is an error, not a silent no."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a yes/no value (use 1/0, true/false, yes/no, on/off)")


def env_number(name: str, default: float, kind: type = int, minimum: float = 0) -> float:
    """A number variable, checked so a typo fails at start-up instead of deep inside a request."""
    raw = _env(name, str(default))
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a{'n integer' if kind is int else ' number'}") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum}")
    return value


def _choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = _env(name, default).lower()
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(allowed)}")
    return value


@dataclass
class Settings:
    database_url: str = field(default_factory=lambda: os.environ.get(
        "GRIDFLOW_DATABASE_URL", f"sqlite:///{ROOT / 'instance' / 'gridflow.sqlite'}"))
    workflows: Path = field(default_factory=lambda: Path(os.environ.get("GRIDFLOW_WORKFLOWS", ROOT / "workflows")))
    forms: Path = field(default_factory=lambda: Path(os.environ.get("GRIDFLOW_FORMS", ROOT / "forms")))
    uploads: Path = field(default_factory=lambda: Path(os.environ.get("GRIDFLOW_UPLOADS", ROOT / "instance" / "uploads")))
    secret_key: str | None = field(default_factory=lambda: os.environ.get("GRIDFLOW_SECRET_KEY") or None)
    sweep_seconds: float = field(default_factory=lambda: env_number("GRIDFLOW_SWEEP_SECONDS", 5, float, 0.1))
    session_idle_minutes: int = field(default_factory=lambda: env_number("GRIDFLOW_SESSION_IDLE_MINUTES", 60, int, 1))
    session_hours: float = field(default_factory=lambda: env_number("GRIDFLOW_SESSION_HOURS", 8, float, 0.1))
    env: str = field(default_factory=lambda: _choice("GRIDFLOW_ENV", "development", ENVIRONMENTS))
    proxy_hops: int = field(default_factory=lambda: env_number("GRIDFLOW_PROXY_HOPS", 0, int))
    secure_cookies: bool = field(default_factory=lambda: env_bool("GRIDFLOW_SECURE_COOKIES"))
    debug: bool = field(default_factory=lambda: env_bool("GRIDFLOW_DEBUG"))
    log_level: str = field(default_factory=lambda: _choice(
        "GRIDFLOW_LOG_LEVEL", "info", ("debug", "info", "warning", "error", "critical")).upper())
    log_format: str = field(default_factory=lambda: _choice("GRIDFLOW_LOG_FORMAT", "text", LOG_FORMATS))
    test_clock: str | None = field(default_factory=lambda: os.environ.get("GRIDFLOW_TEST_CLOCK") or None)
    data_key: str | None = field(default_factory=lambda: os.environ.get("GRIDFLOW_DATA_KEY") or None)
    audit_retention_days: int = field(default_factory=lambda: env_number("GRIDFLOW_AUDIT_RETENTION_DAYS", 365, int, 180))
    # maps (docs/maps.md): a tile URL template ({z}/{x}/{y}, {s}); none = outlines on a plain background
    map_tiles: str | None = field(default_factory=lambda: os.environ.get("GRIDFLOW_MAP_TILES", "").strip() or None)
    map_attribution: str = field(default_factory=lambda: _env("GRIDFLOW_MAP_ATTRIBUTION", ""))
    map_crs: str = field(default_factory=lambda: _choice("GRIDFLOW_MAP_CRS", "wgs84", ("wgs84", "gcj02")))
    # attachments (docs/storage.md): where the bytes live, size limits per kind, how long an unlinked upload may wait
    storage: str = field(default_factory=lambda: _env("GRIDFLOW_STORAGE", ""))
    s3_endpoint: str | None = field(default_factory=lambda: os.environ.get("GRIDFLOW_S3_ENDPOINT") or None)
    s3_region: str | None = field(default_factory=lambda: os.environ.get("GRIDFLOW_S3_REGION") or None)
    max_photo_mb: float = field(default_factory=lambda: env_number("GRIDFLOW_MAX_PHOTO_MB", 10, float, 0.01))
    max_audio_mb: float = field(default_factory=lambda: env_number("GRIDFLOW_MAX_AUDIO_MB", 10, float, 0.01))
    max_video_mb: float = field(default_factory=lambda: env_number("GRIDFLOW_MAX_VIDEO_MB", 25, float, 0.01))
    max_document_mb: float = field(default_factory=lambda: env_number("GRIDFLOW_MAX_DOCUMENT_MB", 10, float, 0.01))
    upload_request_mb: float = field(default_factory=lambda: env_number("GRIDFLOW_UPLOAD_REQUEST_MB", 40, float, 1))
    upload_grace_hours: float = field(default_factory=lambda: env_number("GRIDFLOW_UPLOAD_GRACE_HOURS", 24, float, 0.01))

    @property
    def calendar(self) -> Path:
        return self.workflows / "calendar.yaml"

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def session_lifetime(self) -> timedelta:
        return timedelta(hours=self.session_hours)

    def findings(self) -> list[tuple[str, str]]:
        """(level, message) pairs; level "unsafe" stops a production start, "warning" does not.

        Outside production the production-only problems are reported as warnings, so a developer
        sees what a deployment would need without being refused."""
        unsafe: list[str] = []
        warnings: list[str] = []
        if not self.secret_key:
            unsafe.append("GRIDFLOW_SECRET_KEY is not set: production requires it (elsewhere a key is generated in instance/)")
        elif self.secret_key.lower() in PLACEHOLDER_KEYS:
            unsafe.append("GRIDFLOW_SECRET_KEY is still the example placeholder")
        elif len(self.secret_key) < 32:
            warnings.append("GRIDFLOW_SECRET_KEY is shorter than 32 characters")
        if not self.data_key:
            unsafe.append("GRIDFLOW_DATA_KEY is not set: production requires it to encrypt ID numbers and phones "
                          "(base64 of 32 random bytes; elsewhere a key is generated in instance/)")
        else:
            import base64
            import binascii

            try:
                if len(base64.b64decode(self.data_key, validate=True)) != 32:
                    unsafe.append("GRIDFLOW_DATA_KEY must be base64 of exactly 32 bytes")
            except (binascii.Error, ValueError):
                unsafe.append("GRIDFLOW_DATA_KEY is not valid base64")
        if self.proxy_hops and not self.secure_cookies:
            unsafe.append("GRIDFLOW_PROXY_HOPS is set (TLS at the proxy) but GRIDFLOW_SECURE_COOKIES is off: "
                          "session cookies would also be sent over plain HTTP")
        elif self.production and not self.secure_cookies:
            warnings.append("GRIDFLOW_SECURE_COOKIES is off: fine only if nobody reaches the site over HTTPS")
        if self.debug:
            unsafe.append("GRIDFLOW_DEBUG is on: the debugger runs code sent by the browser")
        if self.storage and not (self.storage.startswith("s3://") and len(self.storage) > 5):
            unsafe.append("GRIDFLOW_STORAGE must be s3://bucket/prefix (leave it empty to use GRIDFLOW_UPLOADS)")
        if self.production and self.database_url.startswith("sqlite"):
            warnings.append("SQLite in production: run one web worker host and one scheduler only; "
                            "PostgreSQL is recommended")
        if self.test_clock and self.env != "test":
            warnings.append("GRIDFLOW_TEST_CLOCK is ignored unless GRIDFLOW_ENV=test")
        if self.production and self.test_clock:
            unsafe.append("GRIDFLOW_TEST_CLOCK is set in production")
        level = "unsafe" if self.production else "warning"
        return [(level, m) for m in unsafe] + [("warning", m) for m in warnings]

    def unsafe(self) -> list[str]:
        """The problems that stop a production start (empty outside production)."""
        return [m for level, m in self.findings() if level == "unsafe"]

    def require_safe(self) -> None:
        """Refuse to run a production app with an unsafe configuration."""
        problems = self.unsafe()
        if problems:
            raise ConfigError("unsafe production configuration (see `gridflow check-config`): " + "; ".join(problems))

    def describe(self) -> list[tuple[str, str, bool]]:
        """(variable, shown value, set in the environment) for every setting; secrets are masked."""
        from sqlalchemy.engine import make_url

        try:
            url = make_url(self.database_url).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - show what we can
            url = "(unparseable URL)"
        shown = {
            "GRIDFLOW_ENV": self.env,
            "GRIDFLOW_DATABASE_URL": url,
            "GRIDFLOW_SECRET_KEY": f"set ({len(self.secret_key)} characters)" if self.secret_key else "missing",
            "GRIDFLOW_WORKFLOWS": str(self.workflows),
            "GRIDFLOW_FORMS": str(self.forms),
            "GRIDFLOW_UPLOADS": str(self.uploads),
            "GRIDFLOW_PROXY_HOPS": str(self.proxy_hops),
            "GRIDFLOW_SECURE_COOKIES": "on" if self.secure_cookies else "off",
            "GRIDFLOW_SESSION_HOURS": f"{self.session_hours:g}",
            "GRIDFLOW_SESSION_IDLE_MINUTES": str(self.session_idle_minutes),
            "GRIDFLOW_SWEEP_SECONDS": f"{self.sweep_seconds:g}",
            "GRIDFLOW_DEBUG": "on" if self.debug else "off",
            "GRIDFLOW_LOG_LEVEL": self.log_level.lower(),
            "GRIDFLOW_LOG_FORMAT": self.log_format,
            "GRIDFLOW_TEST_CLOCK": self.test_clock or "-",
            "GRIDFLOW_DATA_KEY": "set" if self.data_key else "missing",
            "GRIDFLOW_AUDIT_RETENTION_DAYS": str(self.audit_retention_days),
            "GRIDFLOW_MAP_TILES": (self.map_tiles.split("tk=")[0] + "tk=***" if self.map_tiles and "tk=" in
                                   self.map_tiles else self.map_tiles or "-"),
            "GRIDFLOW_MAP_ATTRIBUTION": self.map_attribution or "-",
            "GRIDFLOW_MAP_CRS": self.map_crs,
            "GRIDFLOW_STORAGE": self.storage or "(local: GRIDFLOW_UPLOADS)",
            "GRIDFLOW_S3_ENDPOINT": self.s3_endpoint or "-",
            "GRIDFLOW_S3_REGION": self.s3_region or "-",
            "GRIDFLOW_MAX_PHOTO_MB": f"{self.max_photo_mb:g}",
            "GRIDFLOW_MAX_AUDIO_MB": f"{self.max_audio_mb:g}",
            "GRIDFLOW_MAX_VIDEO_MB": f"{self.max_video_mb:g}",
            "GRIDFLOW_MAX_DOCUMENT_MB": f"{self.max_document_mb:g}",
            "GRIDFLOW_UPLOAD_REQUEST_MB": f"{self.upload_request_mb:g}",
            "GRIDFLOW_UPLOAD_GRACE_HOURS": f"{self.upload_grace_hours:g}",
        }
        return [(name, value, name in os.environ) for name, value in shown.items()]


def install_test_clock(settings: Settings) -> bool:
    """Move the clock by GRIDFLOW_TEST_CLOCK, read only when GRIDFLOW_ENV=test, so a test can make a
    separate web or scheduler process see a timer as due. Returns whether the clock was moved."""
    if settings.env != "test" or not settings.test_clock:
        return False
    from engine import clock

    clock.install_shift(clock.parse_shift(settings.test_clock))
    return True
