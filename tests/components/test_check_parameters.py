"""Each step's ``check_parameters`` (what ``run`` and the pipeline's preflight use) reports
every problem of the parameters given, each naming its parameter."""

import pytest

from components import deploy, ingest, train, transform, tune
from components.common.results import ParameterError


def test_train_reports_every_problem_and_run_refuses_before_any_work(tmp_path):
    problems = train.check_parameters(
        epochs=0, seed=-1, max_mae_ratio=float("nan"), model_name="a/b"
    )
    assert set(problems) == {"epochs", "seed", "max_mae_ratio", "model_name"}
    with pytest.raises(ParameterError) as caught:
        train.run(tmp_path / "none", tmp_path / "none.json", model_path=tmp_path / "m",
                  report_path=tmp_path / "r.html", epochs=0, seed=-1)  # fmt: skip
    assert "epochs must be >= 1, got 0" in str(caught.value)
    assert "seed must be >= 0" in str(caught.value)
    assert train.check_parameters(epochs=True) == {"epochs": "epochs must be an integer, got True"}


def test_tune_reports_every_problem():
    problems = tune.check_parameters(n_trials=0, timeout_s=-1, max_epochs="3", backend="grid")
    assert set(problems) == {"n_trials", "timeout_s", "max_epochs", "backend"}
    with pytest.raises(ParameterError, match="n_trials must be >= 1.*max_epochs must be >= 1"):
        tune.run("nowhere", "nowhere.json", n_trials=0, max_epochs=0)


def test_transform_reports_every_problem():
    problems = transform.check_parameters(
        split="1", runner="spark", num_shards=0, price_tolerance=1, as_of="soon",
        warn_usable_fraction=0.2, min_usable_fraction=0.3,
    )  # fmt: skip
    assert set(problems) == {
        "split", "runner", "num_shards", "price_tolerance", "as_of", "min_usable_fraction"
    }  # fmt: skip


def test_ingest_and_deploy_check_their_folders(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert ingest.check_parameters(lake=str(blocker / "lake"))["lake"].endswith(
        "is not a directory"
    )
    assert ingest.check_parameters(lake="https://example.com/lake")["lake"].startswith(
        "the lake must be a gs:// URI"
    )
    assert ingest.check_parameters(lake=str(tmp_path / "new" / "lake")) == {}
    problems = deploy.check_parameters(model_repository=str(blocker), model_name="..")
    assert set(problems) == {"model_repository", "model_name"}
    assert deploy.check_parameters(target="moon") == {
        "target": "unknown deploy target 'moon'; expected one of local, vertex, gke"
    }


def test_ingest_refuses_a_mapping_that_is_not_one_to_one(tmp_path):
    from components.ingest import IngestError

    src = tmp_path / "in.csv"
    src.write_text("slug,date,open,high,low,close,volume\nx,2020-01-01,1,1,1,1,1\n")
    with pytest.raises(ParameterError, match="close, open all map to column 'price'"):
        ingest.run(
            str(src), str(tmp_path / "lake"), column_mapping={"open": "price", "close": "Price"}
        )
    with pytest.raises(IngestError, match="open, close would all be read from column 'open'"):
        ingest.run(str(src), str(tmp_path / "lake"), column_mapping={"close": "open"})
    assert not (tmp_path / "lake" / "raw").exists()


def test_tune_refuses_an_absurd_number_of_trials_before_reading_anything(tmp_path, capsys):
    from components.tune.__main__ import main
    from pipeline.parameters import check_arguments

    assert tune.check_parameters(n_trials=100_000_000_000) == {
        "n_trials": "n_trials must be >= 1 and <= 10000, got 100000000000"
    }
    assert tune.check_parameters(n_trials=10_000) == {}
    rc = main([str(tmp_path / "none"), "--output-dir", str(tmp_path / "out"),
               "--n-trials", "100000000000"])  # fmt: skip
    assert rc == 2
    assert "n_trials must be >= 1 and <= 10000" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert check_arguments({"n_trials": 100_000_000_000}) == [
        "--n-trials: n_trials must be >= 1 and <= 10000, got 100000000000"
    ]
