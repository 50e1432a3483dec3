"""/admin/jobs: job executions for admins, with a restart for a failed one."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext

from ..auth import role_required
from ..errors import Refused, refused_to_page
from . import batch

bp = Blueprint("jobs_admin", __name__, url_prefix="/admin/jobs")


@bp.get("")
@role_required("admin")
def executions():
    """Each job's latest execution, and failed ones waiting for a restart."""
    return render_template(
        "jobs/executions.html",
        latest=batch.latest_executions(),
        failed=batch.unresumed_failures(),
    )


@bp.post("/executions/<int:execution_id>/restart")
@role_required("admin")
def restart(execution_id: int):
    """Queue a failed execution's instance to resume from its last committed chunk."""
    back = url_for("jobs_admin.executions")
    try:
        params = batch.restart(execution_id)
    except Refused as error:
        return refused_to_page(error, back)
    shown = " ".join(f"{k}={v}" for k, v in params.items())
    flash(
        gettext(
            "Execution %(id)s (%(params)s) will resume on the worker.",
            id=execution_id,
            params=shown,
        ),
        "success",
    )
    return redirect(back)
