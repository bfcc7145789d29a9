"""Recurring runs, against the loopback stand-in of the KFP API of ``test_submit``: the
upload of a pipeline version named by the git revision, the recurring-run request (cron,
version, experiment, parameters, max concurrency 1), the listing and the deletion."""

import json
import subprocess
import sys

import pytest

from pipeline.crypto_pipeline import PIPELINE_NAME
from pipeline.profiles import gcp_arguments
from pipeline.revision import git_revision
from pipeline.schedule import kfp_cron, list_schedules, schedule, unschedule, version_name
from pipeline.submit import SubmitError, connect
from tests.pipeline import test_submit as stand_in
from tests.pipeline.test_profiles import KUBECONFIG_SECRET, stack_outputs
from tests.pipeline.test_submit import API, PROJECT_ROOT, REGISTRY

# The stand-in of the KFP API and the compiled pipeline, shared with the submit tests.
kfp_stub, gcp_yaml, outputs_file = stand_in.kfp_stub, stand_in.gcp_yaml, stand_in.outputs_file

REVISION = "0123456789ab"


def _schedule(stub, pipeline_yaml, name="nightly", cron="0 6 * * *"):
    return schedule(
        connect(stub.url, namespace=None),
        pipeline_yaml,
        gcp_arguments(stack_outputs()),
        pipeline_name=PIPELINE_NAME,
        cron=cron,
        experiment="crypto-forecast",
        name=name,
        revision=REVISION,
        pipeline_root=stack_outputs()["pipeline_root"],
        host=stub.url,
    )


def test_schedule_uploads_a_version_and_creates_the_recurring_run(kfp_stub, gcp_yaml):
    scheduled = _schedule(kfp_stub, gcp_yaml)

    [(_, created, _), (_, versioned, uploaded)] = kfp_stub.uploads
    assert created["name"] == [PIPELINE_NAME]
    assert versioned["name"] == [REVISION] and versioned["pipelineid"] == ["pipe-1"]
    assert uploaded == gcp_yaml.read_text()  # exactly what was compiled
    [experiment] = kfp_stub.bodies("POST", f"{API}/experiments")
    assert experiment["display_name"] == "crypto-forecast"

    [run] = kfp_stub.bodies("POST", f"{API}/recurringruns")
    assert run["display_name"] == "nightly"
    assert run["experiment_id"] == "exp-1"
    assert run["trigger"]["cron_schedule"]["cron"] == "0 0 6 * * *"  # KFP's seconds first
    assert int(run["max_concurrency"]) == 1
    assert run["no_catchup"] is True and run["mode"] == "ENABLE"
    assert run["pipeline_version_reference"] == {
        "pipeline_id": "pipe-1",
        "pipeline_version_id": "ver-1",
    }
    assert run["runtime_config"]["parameters"] == gcp_arguments(stack_outputs())
    assert run["runtime_config"]["pipeline_root"] == stack_outputs()["pipeline_root"]
    assert "pipeline_spec" not in run  # the stored version is what runs
    assert scheduled.recurring_run_id == kfp_stub.recurring_runs[0]["recurring_run_id"]
    assert (scheduled.version_name, scheduled.cron) == (REVISION, "0 0 6 * * *")


def test_the_same_revision_reuses_its_version(kfp_stub, gcp_yaml):
    _schedule(kfp_stub, gcp_yaml, name="daily")
    _schedule(kfp_stub, gcp_yaml, name="hourly", cron="0 * * * *")
    assert len(kfp_stub.uploads) == 2  # the pipeline and one version, not a second one
    daily, hourly = kfp_stub.bodies("POST", f"{API}/recurringruns")
    assert daily["pipeline_version_reference"] == hourly["pipeline_version_reference"]
    assert hourly["trigger"]["cron_schedule"]["cron"] == "0 0 * * * *"


def test_list_and_unschedule_by_name_and_all(kfp_stub, gcp_yaml):
    for name in ("a", "b", "c"):
        _schedule(kfp_stub, gcp_yaml, name=name)
    # Someone else's recurring run in the same experiment is never listed nor deleted.
    kfp_stub.recurring_runs.append(
        {
            "recurring_run_id": "theirs",
            "display_name": "other pipeline",
            "experiment_id": "exp-1",
            "pipeline_version_reference": {"pipeline_id": "pipe-99"},
        }
    )
    client = connect(kfp_stub.url, namespace=None)
    common = dict(pipeline_name=PIPELINE_NAME, experiment="crypto-forecast")
    assert [r.display_name for r in list_schedules(client, **common)] == ["a", "b", "c"]

    b_id = next(r["recurring_run_id"] for r in kfp_stub.recurring_runs if r["display_name"] == "b")
    assert unschedule(client, name="b", **common) == ["b"]
    deletes = [p for m, p, _, _ in kfp_stub.requests if m == "DELETE"]
    assert deletes == [f"{API}/recurringruns/{b_id}"]

    with pytest.raises(SubmitError, match="no recurring run named 'zz'.*there: 'a', 'c'"):
        unschedule(client, name="zz", **common)
    assert unschedule(client, name=None, **common) == ["a", "c"]
    assert [r["recurring_run_id"] for r in kfp_stub.recurring_runs] == ["theirs"]
    assert list_schedules(client, pipeline_name=PIPELINE_NAME, experiment="never-used") == []


def test_cron_and_version_names():
    assert kfp_cron("0 6 * * *") == "0 0 6 * * *"
    assert kfp_cron("30 0 6 * * 1-5") == "30 0 6 * * 1-5"
    for bad in ("daily", "0 6 * *", "0 6 * * * * * *", "0 6 * * ; rm"):
        with pytest.raises(SubmitError, match="5 fields"):
            kfp_cron(bad)
    assert version_name("abc123") == "abc123"
    assert version_name("abc123-dirty").startswith("abc123-dirty-20")
    assert git_revision() == "unknown" or len(git_revision().split("-")[0]) == 12


def test_a_cron_that_never_fires_or_is_out_of_range_is_refused():
    cases = {
        "61 * * * *": "minute '61' is not in 0-59",
        "0 24 * * *": "hour '24' is not in 0-23",
        "0 6 0 * *": "day of month '0' is not in 1-31",
        "0 6 * 13 *": "month '13' is not in 1-12",
        "0 6 * * 8": "day of week '8' is not in 0-6",
        "0 0 30 2 *": "day of month 30 never occurs in month 2",
        "0 0 31 feb,apr *": "day of month 31 never occurs in month feb,apr",
        "10-5 * * * *": "minute range '10-5' is empty",
        "*/0 * * * *": "minute step '*/0' must be at least 1",
        "? 6 * * *": "'?' is only for the day of month or week, not the minute",
    }
    for cron, problem in cases.items():
        with pytest.raises(SubmitError) as caught:
            kfp_cron(cron)
        assert str(caught.value) == f"--cron {cron!r}: {problem}", cron
    # 29 February occurs (leap years); a weekday with a day of month is either of them.
    assert kfp_cron("0 0 29 2 *") == "0 0 0 29 2 *"
    assert kfp_cron("0 0 30 2 MON") == "0 0 0 30 2 MON"
    assert kfp_cron("*/15 9-17 ? JAN-MAR mon-fri") == "0 */15 9-17 ? JAN-MAR mon-fri"
    assert kfp_cron("0 0 31 4,5 *") == "0 0 0 31 4,5 *"


def test_cli_schedule_refuses_an_impossible_cron_before_reading_anything(tmp_path, capsys):
    from pipeline.__main__ import main

    rc = main(["schedule", "--cron", "0 0 30 2 *", "--stack-outputs", str(tmp_path / "none")])
    assert rc == 2
    assert "--cron '0 0 30 2 *': day of month 30 never occurs in month 2" in capsys.readouterr().err


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=300,
    )


def test_cli_schedule_schedules_unschedule(kfp_stub, outputs_file, tmp_path):
    images = {
        step: f"{REGISTRY}/{step}@sha256:{'cd' * 32}"
        for step in ("ingest", "transform", "tune", "train", "deploy", "transform-worker")
    }
    images_file = tmp_path / "images.json"
    images_file.write_text(json.dumps(images))
    proc = _cli(
        "schedule",
        "--cron",
        "0 6 * * *",
        "--stack-outputs",
        str(outputs_file),
        "--host",
        kfp_stub.url,
        "--output",
        str(tmp_path / "p.yaml"),
        "--images",
        str(images_file),
    )
    assert proc.returncode == 0, proc.stderr
    assert "Scheduled 'crypto-forecast 0 6 * * *'" in proc.stdout
    assert "at most one run at a time" in proc.stdout
    assert KUBECONFIG_SECRET not in proc.stdout + proc.stderr
    [run] = kfp_stub.bodies("POST", f"{API}/recurringruns")
    assert run["runtime_config"]["parameters"] == gcp_arguments(stack_outputs())
    assert int(run["max_concurrency"]) == 1
    [(_, _, _), (_, versioned, uploaded)] = kfp_stub.uploads
    assert versioned["name"][0].startswith(git_revision())
    assert images["train"] in uploaded  # pinned images in the stored version

    listed = _cli("schedules", "--host", kfp_stub.url)
    assert listed.returncode == 0, listed.stderr
    assert "'crypto-forecast 0 6 * * *'  cron '0 0 6 * * *'" in listed.stdout
    assert "1 recurring run(s)" in listed.stdout

    refused = _cli("unschedule", "--host", kfp_stub.url)
    assert refused.returncode == 2 and "--name NAME or --all" in refused.stderr
    gone = _cli("unschedule", "--all", "--host", kfp_stub.url)
    assert gone.returncode == 0, gone.stderr
    assert "Deleted 1 recurring run(s): 'crypto-forecast 0 6 * * *'" in gone.stdout
    assert kfp_stub.recurring_runs == []


def test_cli_bad_cron_is_a_usage_error(tmp_path):
    proc = _cli("schedule", "--cron", "every day", "--stack-outputs", str(tmp_path / "none"))
    assert proc.returncode == 2
    assert "--cron 'every day': expected a cron expression of 5 fields" in proc.stderr
