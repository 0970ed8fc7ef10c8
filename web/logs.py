"""Logging for the CLI, the web workers and gunicorn: plain lines, or JSON lines for a log shipper.

GRIDFLOW_LOG_FORMAT=json writes one JSON object per line to stderr; gunicorn's access lines
become objects with the request's fields (the signed-in staff id included) instead of a string.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime

from grid.config import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
NOISY = ("spiff", "alembic", "apscheduler.executors", "apscheduler.scheduler", "werkzeug")
# gunicorn access-log atoms -> JSON field names
ACCESS_FIELDS = {"h": "remote", "{gridflow.user}e": "user", "m": "method", "U": "path", "q": "query",
                 "s": "status", "B": "bytes", "M": "duration_ms", "a": "agent", "f": "referer"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC), level, logger, message, exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        if record.name == "gunicorn.access" and isinstance(record.args, Mapping):
            atoms = record.args
            out["message"] = "request"
            for atom, name in ACCESS_FIELDS.items():
                value = atoms.get(atom)
                if value not in (None, "-", ""):
                    out[name] = value
        else:
            out["message"] = record.getMessage()
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def formatter(settings: Settings) -> logging.Formatter:
    return JsonFormatter() if settings.log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure_logging(settings: Settings) -> None:
    """Root logger to stderr at GRIDFLOW_LOG_LEVEL in GRIDFLOW_LOG_FORMAT; libraries' chatter quieted."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(settings))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def gunicorn_logconfig(settings: Settings) -> dict:
    """A logging dictConfig for gunicorn's own loggers in the chosen format (both to stderr)."""
    fmt = {"()": f"{__name__}.JsonFormatter"} if settings.log_format == "json" else {"format": TEXT_FORMAT}
    handler = {"class": "logging.StreamHandler", "formatter": "gridflow", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"gridflow": fmt},
        "handlers": {"stderr": handler},
        "loggers": {
            "gunicorn.error": {"level": settings.log_level, "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        },
        "root": {"level": settings.log_level, "handlers": ["stderr"]},
    }
