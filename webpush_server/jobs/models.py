"""Job instances and their executions, as Spring Batch keeps them.

A job instance is a job's name plus its identifying parameters (``date=2027-03-14``); it
completes at most once. Each attempt at it is an execution, with its counts, its heartbeat and
the keyset position of its last committed chunk, from which the next execution resumes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..database import UTCDateTime
from ..extensions import Model
from ..timeutil import utcnow

EXECUTION_STATUSES = ("started", "completed", "failed")


class JobInstance(Model):
    """One run of a job that must happen once: its name and identifying parameters."""

    __tablename__ = "job_instance"
    __table_args__ = (UniqueConstraint("name", "params_key", name="uq_job_instance_name_params"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    # Canonical JSON of the identifying parameters: sorted keys, no spaces.
    params_key: Mapped[str] = mapped_column(String(400))
    # The instant the job's scan is evaluated at: the occurrence, or when a run by hand began.
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JobExecution(Model):
    """One attempt at a job instance: status, counts, heartbeat and last committed chunk."""

    __tablename__ = "job_execution"
    __table_args__ = (
        CheckConstraint("status IN ('started', 'completed', 'failed')", name="status"),
        Index("ix_job_execution_instance_id_id", "instance_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("job_instance.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(10), default="started")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # host:pid of the process running it, so a rerun on the same host sees a dead owner at once.
    owner: Mapped[str] = mapped_column(String(200), default="")
    read: Mapped[int] = mapped_column(Integer, default=0)
    written: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    # JSON: {"step": index of the step under way, "after": its last committed keyset key}.
    position: Mapped[str | None] = mapped_column(Text)
    # JSON: the job's own tallies ({"succeeded": 3, ...}) and the skipped items with errors.
    counts: Mapped[str | None] = mapped_column(Text)
    skips: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
