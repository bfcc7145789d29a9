"""deploy() and rollback() on the local target: layout, no overwrite, records, cleanup."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from components.common.results import ParameterError
from components.deploy.deploy import DeployError, rollback
from components.deploy.deploy import run as deploy
from components.deploy.repository import ModelRepository, RepositoryError
from components.deploy.serving import ServingModel, smoke_rows

from .conftest import LEVELS, OFFSETS


def _deploy(model_dir, repo, **kwargs):
    kwargs.setdefault("model_name", "btc")
    return deploy(str(model_dir), model_repository=str(repo), **kwargs)


def test_publish_layout_record_and_current(model_dir, repo):
    metrics = {"mae_ratio": 0.97, "passed_gate": True}
    result = _deploy(model_dir("v1"), repo, metrics=metrics, source_run="run-1")

    version_dir = repo / "btc" / "1"
    assert result.version == "1" and result.previous_version is None
    assert result.path == str(version_dir)
    assert (version_dir / "saved_model.pb").is_file()
    assert (version_dir / "variables").is_dir()
    assert (repo / "btc" / "CURRENT").read_text() == "1\n"
    # No staging leftovers next to the version folders.
    assert sorted(p.name for p in (repo / "btc").iterdir() if not p.name.startswith(".lock")) == [
        "1",
        "CURRENT",
        "deployments.jsonl",
    ]

    record = json.loads((version_dir / "deployment.json").read_text())
    assert record["version"] == "1"
    assert record["metrics"] == metrics
    assert record["source_run"] == "run-1"
    assert record["previous_version"] is None
    assert record["deployed_at"].endswith("+00:00")
    assert len(record["smoke_predictions"]) == 2
    assert all(math.isfinite(p) for p in record["smoke_predictions"])
    assert record["quantile_levels"] == list(LEVELS)
    assert result.record == record
    assert result.output_metadata()["deployment"]["quantile_levels"] == "0.05,0.25,0.5,0.75,0.95"

    # The published copy serves the same predictions as the source.
    rows = smoke_rows()
    source = ServingModel(model_dir("v1") / "1").predict(rows)
    assert ServingModel(version_dir).predict(rows) == source


def test_never_overwrites_an_existing_version(model_dir, repo):
    _deploy(model_dir("v1"), repo)
    saved = (repo / "btc" / "1" / "saved_model.pb").read_bytes()
    with pytest.raises(RepositoryError, match=r"already has version\(s\) 1.*never overwritten"):
        _deploy(model_dir("v1"), repo)
    assert (repo / "btc" / "1" / "saved_model.pb").read_bytes() == saved
    assert len(ModelRepository(repo, "btc").history()) == 1


def test_records_and_rollback(model_dir, repo):
    _deploy(model_dir("v1"), repo, metrics={"mae_ratio": 0.99})
    second = _deploy(model_dir("v2"), repo, metrics={"mae_ratio": 0.95})
    assert second.previous_version == "1"
    store = ModelRepository(repo, "btc")
    assert store.current() == "2"
    assert store.deployed_versions() == ["1", "2"]

    back = rollback(str(repo), "btc")
    assert (back.version, back.previous_version) == ("1", "2")
    assert store.current() == "1"
    assert (repo / "btc" / "2" / "saved_model.pb").is_file(), "rolled-back version is kept"

    history = store.history()
    assert [(h["action"], h["version"], h["previous_version"]) for h in history] == [
        ("deploy", "1", None),
        ("deploy", "2", "1"),
        ("rollback", "1", "2"),
    ]
    assert history[1]["metrics"] == {"mae_ratio": 0.95}

    with pytest.raises(RepositoryError, match="no deployed version of 'btc' older than CURRENT 1"):
        rollback(str(repo), "btc")
    forward = rollback(str(repo), "btc", to_version="2")
    assert forward.version == "2" and store.current() == "2"
    with pytest.raises(RepositoryError, match="already CURRENT"):
        rollback(str(repo), "btc", to_version="2")
    with pytest.raises(RepositoryError, match="version 9 of 'btc' was never deployed"):
        rollback(str(repo), "btc", to_version="9")
    assert len(store.history()) == 4


@pytest.mark.parametrize(
    ("label", "reason"),
    [
        ("nan", "not finite"),
        ("broken", "cannot load SavedModel"),
    ],
)
def test_failed_smoke_test_removes_version_and_keeps_current(model_dir, repo, label, reason):
    _deploy(model_dir("v1"), repo)
    before = (repo / "btc" / "deployments.jsonl").read_text()
    with pytest.raises(
        DeployError, match=rf"failed and was undone .*CURRENT still 1\): .*{reason}"
    ):
        _deploy(model_dir(label), repo)
    store = ModelRepository(repo, "btc")
    assert store.published_versions() == ["1"]
    assert store.current() == "1"
    assert (repo / "btc" / "deployments.jsonl").read_text() == before
    assert not [p for p in (repo / "btc").iterdir() if p.name.startswith(".incoming")]


def test_failed_first_deploy_leaves_no_current(model_dir, repo):
    with pytest.raises(DeployError, match="CURRENT still None"):
        _deploy(model_dir("nan"), repo)
    assert ModelRepository(repo, "btc").current() is None
    assert ModelRepository(repo, "btc").published_versions() == []


@pytest.mark.parametrize("target", ["vertex", "gke"])
def test_cloud_targets_refuse_a_local_repository_and_no_image(model_dir, repo, target):
    """Refused before anything runs (test_deploy_cloud.py deploys with the settings)."""
    with pytest.raises(ParameterError) as refused:
        _deploy(model_dir("v1"), repo, target=target)
    assert f"the {target} target publishes to the models bucket" in str(refused.value)
    assert "pinned by digest" in str(refused.value)
    assert not repo.exists()


def test_unknown_target(model_dir, repo):
    with pytest.raises(ValueError, match="unknown deploy target 'k8s'; expected one of local"):
        _deploy(model_dir("v1"), repo, target="k8s")


@pytest.mark.parametrize("name", ["", "../evil", "a/b", ".hidden", "x" * 64, "a..b"])
def test_bad_model_name(model_dir, repo, name):
    with pytest.raises(RepositoryError, match="invalid model name"):
        _deploy(model_dir("v1"), repo, model_name=name)


def test_missing_saved_model(tmp_path, repo):
    (tmp_path / "empty").mkdir()
    with pytest.raises(RepositoryError, match=r"no SavedModel found in .*<version>/saved_model.pb"):
        _deploy(tmp_path / "empty", repo)
    (tmp_path / "empty" / "5").mkdir()
    with pytest.raises(RepositoryError, match=r"version folder\(s\) 5 .* have no saved_model.pb"):
        _deploy(tmp_path / "empty", repo)
    with pytest.raises(RepositoryError, match="model directory not found"):
        _deploy(tmp_path / "nowhere", repo)


def test_version_folder_instead_of_model_dir(model_dir, repo):
    with pytest.raises(RepositoryError, match="is a single SavedModel, not a model directory"):
        _deploy(model_dir("v1") / "1", repo)


def test_select_version_and_publish_several(model_dir, repo, tmp_path):
    both = tmp_path / "both"
    both.mkdir()
    (model_dir("v1") / "1").rename(both / "1")
    (model_dir("v2") / "2").rename(both / "2")
    with pytest.raises(RepositoryError, match=r"version 7 not found in .*found: 1, 2"):
        _deploy(both, repo, version="7")
    only = _deploy(both, repo, version="1")
    assert only.version == "1" and ModelRepository(repo, "btc").published_versions() == ["1"]

    again = _deploy(both, repo, model_name="btc2")
    assert again.version == "2"
    assert ModelRepository(repo, "btc2").deployed_versions() == ["1", "2"]
    assert ModelRepository(repo, "btc2").current() == "2"


def test_records_name_the_quantile_levels_of_each_version_and_none_for_a_point_model(
    model_dir, repo
):
    _deploy(model_dir("point"), repo)
    second = _deploy(model_dir("v1"), repo)
    store = ModelRepository(repo, "btc")
    assert store.record("5")["quantile_levels"] is None
    assert second.record["quantile_levels"] == store.record("1")["quantile_levels"] == list(LEVELS)
    back = rollback(str(repo), "btc", to_version="5")
    assert back.record["quantile_levels"] is None
    assert back.output_metadata()["deployment"]["quantile_levels"] == ""
    assert rollback(str(repo), "btc", to_version="1").record["quantile_levels"] == list(LEVELS)


def test_train_metadata_is_recorded_as_strict_json(model_dir, repo):
    """Train's model metadata (the deploy component passes it as ``metrics``): the levels,
    pinball ratio and 90% coverage are recorded; a score the run did not compute (NaN)
    is recorded as null, never as a NaN the record's readers refuse."""
    metrics = {
        "mae_ratio": 0.99,
        "quantile_levels": "0.05,0.25,0.5,0.75,0.95",
        "pinball_ratio": 0.97,
        "coverage_90": 0.91,
        "model_mae": float("nan"),
    }
    _deploy(model_dir("v1"), repo, metrics=metrics)
    text = (repo / "btc" / "1" / "deployment.json").read_text()
    record = json.loads(text, parse_constant=lambda name: pytest.fail(f"record holds {name}"))
    assert record["metrics"] == {**metrics, "model_mae": None}
    assert json.loads((repo / "btc" / "deployments.jsonl").read_text())["metrics"] == {
        **metrics,
        "model_mae": None,
    }


def test_quantiles_that_cross_fail_the_smoke_test(repo, tmp_path):
    """A model whose quantiles are not increasing (here the offsets reversed) is refused."""
    from components.train.export import export_serving_model

    from .conftest import _tiny_model

    crossing = _tiny_model(0.01, 0.001, offsets=tuple(-o for o in OFFSETS))
    export_serving_model(crossing, tmp_path / "crossing", 6, LEVELS)
    with pytest.raises(DeployError, match="smoke quantiles cross"):
        _deploy(tmp_path / "crossing", repo)
    assert ModelRepository(repo, "btc").published_versions() == []


def test_metrics_must_be_json(model_dir, repo):
    with pytest.raises(ValueError, match="metrics must be JSON-serialisable"):
        _deploy(model_dir("v1"), repo, metrics={"bad": object()})


def test_interrupted_publish_is_named_and_never_served(model_dir, repo):
    """A version folder without a record (a crash mid-deploy) blocks reuse with a hint."""
    _deploy(model_dir("v1"), repo)
    shutil.copytree(model_dir("v2") / "2", repo / "btc" / "2")
    store = ModelRepository(repo, "btc")
    assert store.deployed_versions() == ["1"] and store.current() == "1"
    with pytest.raises(RepositoryError, match="no deployment record: left by an interrupted"):
        _deploy(model_dir("v2"), repo)


def test_concurrent_deploys_of_two_versions_both_succeed_and_stay_consistent(model_dir, repo):
    """Two runs that finish together deploy at the same time: the repository's lock makes
    them take turns; both versions are deployed, CURRENT is the one deployed last."""
    import threading

    sources = {"1": model_dir("v1"), "2": model_dir("v2")}
    results, errors = {}, []
    start = threading.Barrier(2)

    def one(version):
        start.wait()
        try:
            results[version] = _deploy(sources[version], repo, source_run=f"run-{version}")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(v,)) for v in sources]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    model = ModelRepository(repo, "btc")
    assert model.deployed_versions() == ["1", "2"]
    history = model.history()
    assert sorted(h["version"] for h in history) == ["1", "2"]
    assert model.current() == history[-1]["version"]
    # The second deploy saw the first one's version as the previous one.
    assert history[-1]["previous_version"] == history[0]["version"]


def test_check_parameters_requires_each_targets_settings_only_for_that_target():
    from components.deploy import check_parameters

    empty = {
        "image": "",
        "vertex_project": "",
        "vertex_region": "",
        "serving_machine_type": "",
        "serving_service_account": "",
        "serving_namespace": "",
        "serving_k8s_service_account": "",
    }
    gke = check_parameters(target="gke", model_repository="gs://m/repository", **empty)
    assert set(gke) == {"image", "serving_namespace", "serving_k8s_service_account"}
    assert "serving_namespace must be a Kubernetes name" in gke["serving_namespace"]
    vertex = check_parameters(target="vertex", model_repository="gs://m/repository", **empty)
    assert set(vertex) == {
        "image",
        "vertex_project",
        "vertex_region",
        "serving_machine_type",
        "serving_service_account",
    }
    assert vertex["vertex_project"] == "vertex_project is required for deploy target 'vertex'"
    assert "image" not in check_parameters(target="local", **empty)
    bad = check_parameters(
        target="vertex",
        serving_service_account="serving",
        serving_min_replicas=0,
        serving_max_replicas=True,
    )
    assert "must be a service account e-mail" in bad["serving_service_account"]
    assert bad["serving_min_replicas"] == "serving_min_replicas must be an integer >= 1, got 0"
    assert "serving_max_replicas must be an integer" in bad["serving_max_replicas"]
