"""Two ``run-local`` on one ``--root`` at the same time: each reports its own run, the two
models get distinct versions, and the model repository stays consistent."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from components.deploy.repository import ModelRepository

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--n-trials", "2", "--tune-max-epochs", "4", "--epochs", "8"]


def _start(root: Path, source: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable, "-m", "pipeline", "run-local", "--root", str(root),
            "--source", str(source), "--gate-metric", "mae", "--max-mae-ratio", "1e6", *SMALL,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=PROJECT_ROOT,
    )  # fmt: skip


def test_two_concurrent_runs_on_one_root_stay_apart(tmp_path, bitcoin_csv):
    procs = [_start(tmp_path, bitcoin_csv) for _ in range(2)]
    outs = [p.communicate(timeout=1500)[0] for p in procs]
    for proc, out in zip(procs, outs, strict=True):
        assert proc.returncode == 0, out[-3000:]

    summaries = [out[out.index("Run summary") :] for out in outs]
    run_dirs = [re.search(r"^Outputs:  (.+)$", s, re.M).group(1) for s in summaries]
    versions = [re.search(r"^Deployed: version (\d+) ", s, re.M).group(1) for s in summaries]
    assert run_dirs[0] != run_dirs[1]
    assert versions[0] != versions[1]
    for run_dir, version in zip(run_dirs, versions, strict=True):
        # Each summary's folder holds that run's own model, and only it.
        exported = {p.name for p in Path(run_dir).glob("*/model/*") if p.is_dir()}
        assert exported == {version}

    repo = ModelRepository(tmp_path / "model_repository", "btc-forecast")
    assert sorted(repo.deployed_versions()) == sorted(versions)
    assert repo.current() in versions
    history = repo.history()
    assert sorted(h["version"] for h in history) == sorted(versions)
    assert history[-1]["version"] == repo.current()  # the last deploy is the one served
    for version in versions:
        assert repo.record(version)["version"] == version
    assert not [p for p in repo.path.iterdir() if p.name.startswith(".incoming-")]
    assert json.loads(json.dumps(history))  # every line parsed
