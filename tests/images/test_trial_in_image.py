"""The Vertex AI tuning trial's entry point, run in the tune image as Vertex would run it:
one real trial on the shared data, as the image's user (uid 1000), reporting through
cloudml-hypertune's metric file at the path Vertex names in CLOUD_ML_HP_METRIC_FILE, under
/var/hypertune (root's unless the image prepares it: issue 21, defect 3)."""

from __future__ import annotations

import json
import os

import pytest

from tests.images.conftest import docker, run

pytestmark = pytest.mark.images

# As Vertex AI passes sampled values: every one a double.
PARAMS = {
    "learning_rate": "0.003",
    "num_layers": "2.0",
    "first_layer_units": "16.0",
    "layer_scale": "0.5",
    "dropout": "0.1",
    "batch_size": "128.0",
    "l2": "0.01",
}
# Where Vertex AI tells cloudml-hypertune to write (CLOUD_ML_HP_METRIC_FILE): inside the
# container's own file system, not a volume of ours.
VERTEX_METRIC_FILE = "/var/hypertune/output.metrics"


def test_the_tune_image_prepares_the_hypertune_directory_for_its_user(images):
    out = run(images["tune"], "sh", "-c", "id -u; stat -c '%u %a' /var/hypertune")
    uid, owner, mode = out.stdout.split()
    assert uid == owner == "1000" and mode == "755", out.stdout


def test_the_trial_runs_in_the_tune_image_and_writes_the_hypertune_metric(
    images, bitcoin_csv, tmp_path
):
    from components.transform import run as transform

    transform(
        str(bitcoin_csv),
        features_path=str(tmp_path / "features"),
        stats_path=str(tmp_path / "stats.json"),
        rejected_path=str(tmp_path / "rejected.csv"),
    )
    out = tmp_path / "out"
    out.mkdir()
    os.chmod(out, 0o777)  # the image runs as uid 1000
    for path in (tmp_path, *tmp_path.rglob("*")):
        os.chmod(path, os.stat(path).st_mode | 0o005)
    # Created, started, then the metric file copied out of the stopped container: the
    # trial writes it where Vertex would have it, in the image's /var/hypertune.
    container = docker(
        "create",
        "--network",
        "none",
        "-v",
        f"{tmp_path}:/data:ro",
        "-v",
        f"{out}:/out",
        "-e",
        "CLOUD_ML_TRIAL_ID=7",
        "-e",
        f"CLOUD_ML_HP_METRIC_FILE={VERTEX_METRIC_FILE}",
        images["tune"],
        "python",
        "-m",
        "components.tune.trial",
        "--features=/data/features",
        "--stats=/data/stats.json",
        "--errors-dir=/out/errors",
        "--max-epochs=2",
        "--seed=3",
        "--patience=2",
        *(f"--{name}={value}" for name, value in PARAMS.items()),
    ).stdout.strip()
    try:
        result = docker("start", "--attach", container, check=False, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        docker("cp", f"{container}:{VERTEX_METRIC_FILE}", str(tmp_path / "output.metrics"))
    finally:
        docker("rm", "--force", container, check=False)
    assert "trial 7: eval pinball" in result.stderr
    metric = json.loads((tmp_path / "output.metrics").read_text().splitlines()[-1])
    detail = json.loads((out / "errors" / "7.json").read_text())
    assert float(metric["eval_pinball"]) == pytest.approx(detail["value"]) and detail["value"] > 0
    assert str(metric["global_step"]) == "2" and detail["epochs"] == 2
    assert len(detail["errors"]) == 263  # the eval rows of the shared Bitcoin file
