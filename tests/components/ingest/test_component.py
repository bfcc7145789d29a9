"""The KFP wrapper: compiles into a pipeline with the step's image, and runs under
kfp.local's SubprocessRunner on the real shared data."""

# No `from __future__ import annotations`: KFP reads the pipeline's annotations as types.
import hashlib
from pathlib import Path

import kfp.local
import pytest
import yaml
from kfp import compiler, dsl

from components.images import image_refs
from pipeline.crypto_pipeline import step_component
from tests.conftest import FULL_CSV_SHA256

IMAGE = image_refs()["ingest"]
ingest_op = step_component("ingest", IMAGE)


def test_compiles_with_the_ingest_image(tmp_path: Path) -> None:
    @dsl.pipeline(name="ingest-only")
    def ingest_only(source: str = "", lake: str = "gs://lake/crypto"):
        ingest_op(source=source, lake=lake, expected_sha256="", column_mapping="")

    package = tmp_path / "ingest.yaml"
    compiler.Compiler().compile(ingest_only, str(package))
    spec = yaml.safe_load(package.read_text())

    executor = spec["deploymentSpec"]["executors"]["exec-ingest-op"]["container"]
    assert executor["image"] == IMAGE
    command = " ".join(executor["command"])
    assert "pip install" not in command  # install_kfp_package=False: the image has it all
    assert "from components.ingest import run" in command
    component = spec["components"]["comp-ingest-op"]
    assert set(component["inputDefinitions"]["parameters"]) == {
        "source",
        "lake",
        "expected_sha256",
        "column_mapping",
    }
    assert component["outputDefinitions"]["artifacts"]["raw"]["artifactType"]["schemaTitle"] == (
        "system.Dataset"
    )


# SubprocessRunner warns that it ignores the base image; running here is the point.
@pytest.mark.filterwarnings("ignore:You may be attemping to run a task:RuntimeWarning")
def test_runs_locally_and_fills_the_artifact(crypto_csv: Path, tmp_path: Path) -> None:
    kfp.local.init(
        runner=kfp.local.SubprocessRunner(use_venv=False),
        pipeline_root=str(tmp_path / "root"),
    )
    lake = tmp_path / "lake"
    task = ingest_op(
        source=str(crypto_csv),
        lake=str(lake),
        expected_sha256=FULL_CSV_SHA256,
        column_mapping="",
    )
    raw = task.outputs["raw"]
    assert Path(raw.path).read_bytes() == crypto_csv.read_bytes()
    assert raw.metadata["sha256"] == FULL_CSV_SHA256
    assert (raw.metadata["rows"], raw.metadata["bytes"]) == (29_999, 2_645_563)
    assert raw.metadata["source"] == str(crypto_csv.resolve())
    stored = Path(raw.metadata["lake_uri"])
    assert stored.is_relative_to(lake)
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == FULL_CSV_SHA256
