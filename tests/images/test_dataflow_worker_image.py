"""The Dataflow worker image (``transform-worker``) as Dataflow starts it: Beam's boot program
as root, told to run the SDK harness in the image's own Python environment (issue 21,
defect 1). Here the boot is the stand-in of docker-offline.sh (argument handling only), so
the checks are the image's configuration plus, in the image, what the boot would execute.

Beam's boot (sdks/python/container/boot.go) without RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT
makes a new venv under /opt/apache/beam-venv from the base interpreter, which has no Beam;
with it, it pip-installs the job's staged packages into the environment of the ``python``
on PATH and runs ``python -m apache_beam.runners.worker.sdk_worker_main``."""

from __future__ import annotations

import tomllib

import pytest

from components.images import DATAFLOW_WORKER
from tests.images.conftest import ROOT, docker

pytestmark = pytest.mark.images

BOOT = "/opt/apache/beam/boot"
# What the boot runs, in the image's default environment and user (no --user here).
_HARNESS_CHECK = r"""
id -u
command -v python
python -c '
import os, sysconfig
import apache_beam, apache_beam.runners.worker.sdk_worker_main
print(apache_beam.__version__)
print(os.access(sysconfig.get_path("purelib"), os.W_OK))
'
"""


def _env(inspected: dict) -> dict[str, str]:
    return dict(item.split("=", 1) for item in inspected["Config"]["Env"] or [])


def test_the_worker_image_is_configured_as_dataflow_needs(inspect):
    config = inspect[DATAFLOW_WORKER]["Config"]
    assert config["User"] in ("", "0", "root"), config["User"]
    assert _env(inspect[DATAFLOW_WORKER]).get("RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT") == "1"
    assert config["Entrypoint"] == [BOOT]
    assert _env(inspect[DATAFLOW_WORKER])["PATH"].split(":")[0] == "/opt/venv/bin"


def test_the_sdk_harness_the_boot_runs_starts_from_the_default_environment(images):
    out = docker(
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "sh",
        images[DATAFLOW_WORKER],
        "-c",
        _HARNESS_CHECK,
        timeout=120,
    )
    uid, python, version, site_packages_writable = out.stdout.split()
    assert uid == "0"
    assert python == "/opt/venv/bin/python"
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    assert version == next(p["version"] for p in lock["package"] if p["name"] == "apache-beam")
    # The boot pip-installs the job's staged packages (requirements, the workflow) there.
    assert site_packages_writable == "True"
