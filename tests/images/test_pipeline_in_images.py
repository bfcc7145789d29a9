"""The whole pipeline in its own images (kfp.local's DockerRunner), pinned to the digests
`make images` pushed, with the same results as in the virtual environment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.images import IMAGE_USER_UID, STEPS, is_pinned
from pipeline.crypto_pipeline import compile_pipeline

from .conftest import IMAGES_JSON, ROOT

pytestmark = [pytest.mark.images, pytest.mark.slow]

SMALL = ["--n-trials", "2", "--tune-max-epochs", "4", "--tune-timeout-s", "120", "--epochs", "8"]


def test_every_executor_is_pinned_to_the_pushed_digest(images, tmp_path):
    compiled = yaml.safe_load_all(compile_pipeline(tmp_path / "p.yaml", images).read_text())
    executors = next(compiled)["deploymentSpec"]["executors"]
    for step in STEPS:
        image = executors[f"exec-{step}-op"]["container"]["image"]
        assert image == images[step], step
        assert is_pinned(image), f"{step}: {image} is not pinned to a digest"


def _run_local(root: Path, source: Path, runner: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "run-local",
            "--local-runner",
            runner,
            "--images",
            str(IMAGES_JSON),
            "--root",
            str(root),
            "--source",
            str(source),
            "--gate-metric",
            "mae",
            "--max-mae-ratio",
            "1e6",
            *SMALL,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=1800,
    )


def _train_metrics(root: Path) -> dict:
    (output,) = (root / "pipeline_root").glob("*/train-op/executor_output.json")
    return json.loads(output.read_text())["artifacts"]["metrics"]["artifacts"][0]["metadata"]


@pytest.fixture(scope="module")
def in_images(images, crypto_csv, tmp_path_factory):
    root = tmp_path_factory.mktemp("docker-run")
    return root, _run_local(root, crypto_csv, "docker")


@pytest.fixture(scope="module")
def in_venv(crypto_csv, tmp_path_factory):
    root = tmp_path_factory.mktemp("venv-run")
    return root, _run_local(root, crypto_csv, "subprocess")


def test_the_whole_pipeline_runs_in_its_images(in_images):
    root, done = in_images
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "running it with kfp.local in the step images (DockerRunner)" in done.stdout
    summary = done.stdout[done.stdout.index("Run summary") :]
    for step in STEPS:
        assert f"{step:<10} SUCCEEDED" in summary, summary
    assert "Deployed: version" in summary


def test_the_steps_ran_as_the_image_user(in_images):
    root, _ = in_images
    (stored,) = (root / "lake" / "raw").glob("sha256=*/*.csv")
    assert stored.stat().st_uid == IMAGE_USER_UID
    (current,) = (root / "model_repository").glob("*/CURRENT")
    assert current.stat().st_uid == IMAGE_USER_UID


def test_same_results_as_in_the_virtual_environment(in_images, in_venv):
    docker_metrics, venv_metrics = _train_metrics(in_images[0]), _train_metrics(in_venv[0])
    assert in_venv[1].returncode == 0, in_venv[1].stdout[-3000:]
    assert docker_metrics["mae_ratio"] == pytest.approx(venv_metrics["mae_ratio"], rel=1e-9)
    for name in ("model_mae", "baseline_mae", "test_rows", "train_rows"):
        assert docker_metrics[name] == pytest.approx(venv_metrics[name], rel=1e-9), name
