"""Recurring runs of the pipeline on Kubeflow Pipelines: schedule, list, unschedule.

A recurring run needs a pipeline stored in KFP, so ``schedule`` uploads the compiled
pipeline as a new version of the ``crypto-forecast`` pipeline, named by the git revision
it was compiled from (the pipeline is created on first use), then creates the recurring
run in the experiment with the gcp-profile arguments and at most one run at a time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.submit import SubmitError, kfp_errors

#: One run at a time: a day's run that is still going when the next one is due delays it.
MAX_CONCURRENCY = 1
#: KFP's cron fields (robfig/cron, seconds first): name, lowest, highest value.
_CRON_FIELDS = (
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 6),
)
_CRON_NAMES = {
    "month": {
        m: i for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(), 1)
    },
    "day of week": {d: i for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split())},
}
_CRON_PART = re.compile(r"^(?:(\*|\?)|(\w+)(?:-(\w+))?)(?:/(\d+))?$")
#: The most days each month has (29 February: leap years).
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _cron_values(text: str, field: str, low: int, high: int) -> set[int]:
    """The values one cron field matches; ValueError naming the problem."""
    names = _CRON_NAMES.get(field, {})
    values: set[int] = set()
    for part in text.split(","):
        match = _CRON_PART.match(part)
        if not match:
            raise ValueError(f"{field} {part!r} is not a value, range or step")
        star, first, last, step = match.groups()
        if star == "?" and field not in ("day of month", "day of week"):
            raise ValueError(f"'?' is only for the day of month or week, not the {field}")
        bounds = []
        for word in (first, last):
            if word is None:
                continue
            value = int(word) if word.isdigit() else names.get(word.upper())
            if value is None or not low <= value <= high:
                raise ValueError(f"{field} {word!r} is not in {low}-{high}")
            bounds.append(value)
        if star:
            start, stop = low, high
        elif last is None and step is not None:
            start, stop = bounds[0], high  # robfig: "a/s" is "a-high/s"
        else:
            start, stop = bounds[0], bounds[-1]
        if start > stop:
            raise ValueError(f"{field} range {part!r} is empty")
        if step is not None and int(step) < 1:
            raise ValueError(f"{field} step {part!r} must be at least 1")
        values.update(range(start, stop + 1, int(step or 1)))
    return values


def cron_problem(cron: str) -> str:
    """'' if ``cron`` is a cron expression KFP can schedule that fires at some time: 5
    crontab fields (minute hour day month weekday) or 6 with seconds first, each value
    within its range (names such as JAN or MON allowed), and a day of month that occurs in
    one of its months (not 30 February) unless a weekday is given; else the sentence."""
    fields = str(cron).split()
    if len(fields) not in (5, 6) or not all(
        _CRON_PART.match(part) for text in fields for part in text.split(",")
    ):
        return (
            f"--cron {cron!r}: expected a cron expression of 5 fields (minute hour day month "
            "weekday, e.g. '0 6 * * *') or 6 with seconds first"
        )
    fields = ["0", *fields] if len(fields) == 5 else fields
    values = {}
    for text, (field, low, high) in zip(fields, _CRON_FIELDS, strict=True):
        try:
            values[field] = _cron_values(text, field, low, high)
        except ValueError as exc:
            return f"--cron {cron!r}: {exc}"
    weekday_given = fields[5] not in ("*", "?")
    if not weekday_given and not any(
        day <= _MONTH_DAYS[month - 1] for day in values["day of month"] for month in values["month"]
    ):
        return f"--cron {cron!r}: day of month {fields[3]} never occurs in month {fields[4]}"
    return ""


def kfp_cron(cron: str) -> str:
    """KFP's six-field cron (seconds first) from a five-field crontab line or six fields;
    ``SubmitError`` naming the problem (``cron_problem``) otherwise."""
    problem = cron_problem(cron)
    if problem:
        raise SubmitError(problem)
    fields = str(cron).split()
    return " ".join(["0", *fields] if len(fields) == 5 else fields)


def version_name(revision: str, *, now: dt.datetime | None = None) -> str:
    """The pipeline version's name: the git revision; a dirty tree is not a revision, so
    its upload also gets the UTC time."""
    if revision.endswith("-dirty") or revision == "unknown":
        return f"{revision}-{(now or dt.datetime.now(dt.UTC)):%Y%m%d%H%M%S}"
    return revision


def _name_filter(name: str) -> str:
    return json.dumps(
        {"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": name}]}
    )


@dataclass(frozen=True)
class Scheduled:
    recurring_run_id: str
    name: str
    pipeline_id: str
    version_id: str
    version_name: str
    experiment_id: str
    cron: str


def upload_version(client, pipeline_yaml: Path, pipeline_name: str, name: str) -> tuple[str, str]:
    """``(pipeline id, version id)`` of version ``name`` of ``pipeline_name``: uploaded,
    or the existing one of that name (same revision, same spec)."""
    pipeline_id = client.get_pipeline_id(pipeline_name)
    if pipeline_id is None:
        pipeline_id = client.upload_pipeline(
            str(pipeline_yaml),
            pipeline_name=pipeline_name,
            description="Next-day close forecast: ingest, transform, tune, train, deploy.",
        ).pipeline_id
    found = client.list_pipeline_versions(pipeline_id, filter=_name_filter(name))
    for version in found.pipeline_versions or []:
        if version.display_name == name:
            return pipeline_id, version.pipeline_version_id
    version = client.upload_pipeline_version(
        str(pipeline_yaml), pipeline_version_name=name, pipeline_id=pipeline_id
    )
    return pipeline_id, version.pipeline_version_id


def schedule(
    client,
    pipeline_yaml: Path,
    arguments: dict[str, Any],
    *,
    pipeline_name: str,
    cron: str,
    experiment: str,
    name: str,
    revision: str,
    namespace: str | None = None,
    pipeline_root: str | None = None,
    host: str = "",
    kfp_namespace: str = "kubeflow",
) -> Scheduled:
    """Upload ``pipeline_yaml`` as version ``revision`` and create the recurring run."""
    cron6 = kfp_cron(cron)
    version = version_name(revision)
    chatter = io.StringIO()  # kfp prints its own links
    with kfp_errors(host, kfp_namespace, "the schedule"), contextlib.redirect_stdout(chatter):
        pipeline_id, version_id = upload_version(client, pipeline_yaml, pipeline_name, version)
        experiment_id = client.create_experiment(experiment, namespace=namespace).experiment_id
        run = client.create_recurring_run(
            experiment_id,
            name,
            description=f"{pipeline_name} version {version}, cron {cron6}",
            cron_expression=cron6,
            max_concurrency=MAX_CONCURRENCY,
            no_catchup=True,
            params=arguments,
            pipeline_id=pipeline_id,
            version_id=version_id,
            pipeline_root=pipeline_root,
        )
    return Scheduled(
        run.recurring_run_id, name, pipeline_id, version_id, version, experiment_id, cron6
    )


def list_schedules(
    client,
    *,
    pipeline_name: str,
    experiment: str,
    namespace: str | None = None,
    host: str = "",
    kfp_namespace: str = "kubeflow",
) -> list:
    """The recurring runs of ``pipeline_name`` in ``experiment`` (every page)."""
    with kfp_errors(host, kfp_namespace, "the listing"):
        pipeline_id = client.get_pipeline_id(pipeline_name)
        if pipeline_id is None:
            return []
        try:
            experiment_id = client.get_experiment(
                experiment_name=experiment, namespace=namespace
            ).experiment_id
        except ValueError:  # no such experiment: nothing was ever scheduled in it
            return []
        found, token = [], ""
        while True:
            page = client.list_recurring_runs(
                page_token=token, page_size=100, experiment_id=experiment_id, namespace=namespace
            )
            for run in page.recurring_runs or []:
                reference = run.pipeline_version_reference
                if reference is not None and reference.pipeline_id == pipeline_id:
                    found.append(run)
            token = page.next_page_token or ""
            if not token:
                return found


def unschedule(
    client,
    *,
    pipeline_name: str,
    experiment: str,
    name: str | None,
    namespace: str | None = None,
    host: str = "",
    kfp_namespace: str = "kubeflow",
) -> list[str]:
    """Delete the recurring run called ``name`` (None: every one of ``pipeline_name`` in
    ``experiment``); the names deleted. ``SubmitError`` when ``name`` is not there."""
    runs = list_schedules(
        client,
        pipeline_name=pipeline_name,
        experiment=experiment,
        namespace=namespace,
        host=host,
        kfp_namespace=kfp_namespace,
    )
    doomed = [run for run in runs if name is None or run.display_name == name]
    if name is not None and not doomed:
        listed = ", ".join(repr(run.display_name) for run in runs) or "none"
        raise SubmitError(
            f"no recurring run named {name!r} of {pipeline_name} in experiment "
            f"{experiment!r} (there: {listed})"
        )
    with kfp_errors(host, kfp_namespace, "the deletion"):
        for run in doomed:
            client.delete_recurring_run(run.recurring_run_id)
    return [run.display_name for run in doomed]


def describe(run) -> str:
    """One line per recurring run for ``python -m pipeline schedules``."""
    trigger = run.trigger.cron_schedule.cron if run.trigger and run.trigger.cron_schedule else "?"
    version = run.pipeline_version_reference.pipeline_version_id
    return (
        f"{run.display_name!r}  cron {trigger!r}  mode {run.mode}  "
        f"version {version}  id {run.recurring_run_id}"
    )
