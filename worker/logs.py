"""The worker's logs: every line of a job carries its job id, as text or as JSON lines
(FATHOM_LOG_FORMAT=json) for a log collector."""

from __future__ import annotations

import logging

from pythonjsonlogger.json import JsonFormatter
from rq import get_current_job

from fathom.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [job %(job_id)s] %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(job_id)s %(process)d %(message)s"


class JobIdFilter(logging.Filter):
    """Adds `job_id`: the RQ job this process is running, or "-"."""

    def filter(self, record: logging.LogRecord) -> bool:
        job = get_current_job()
        record.job_id = job.id if job is not None else "-"
        return True


def configure(settings: Settings) -> None:
    """One handler on the root logger for the whole pool (RQ's loggers use it too rather than
    adding their own)."""
    handler = logging.StreamHandler()
    handler.addFilter(JobIdFilter())
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter(JSON_FIELDS, rename_fields={"levelname": "level"}))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO)
