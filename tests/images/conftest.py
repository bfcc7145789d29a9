"""Checks of the built images with a real Docker engine (``make test-images``).

The tests build nothing: ``make test-images`` runs ``make images`` first (pushing to a
local registry), which writes build/images.json; they read it and run the images with the
docker CLI. A missing file or engine is a failure, not a skip. Every test here carries the
``images`` marker, which the default run (``make test``) deselects.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from components.images import load_images

ROOT = Path(__file__).resolve().parents[2]
IMAGES_JSON = Path(os.environ.get("CRYPTO_KFP_IMAGES", ROOT / "build" / "images.json"))


def docker(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    out = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        pytest.fail(f"docker {' '.join(args)} exited {out.returncode}:\n{out.stderr[-2000:]}")
    return out


def run(image: str, *command: str, check: bool = True) -> subprocess.CompletedProcess:
    """``docker run --rm IMAGE COMMAND...`` with the image's own entrypoint and user."""
    return docker("run", "--rm", "--network", "none", image, *command, check=check)


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    if shutil.which("docker") is None:
        pytest.fail("the docker CLI is not on PATH (make test-images needs a Docker engine)")
    if docker("version", check=False).returncode != 0:
        pytest.fail("no Docker engine answers (DOCKER_HOST); start one first")
    return load_images(IMAGES_JSON)


@pytest.fixture(scope="session")
def inspect(images):
    """``{name: docker inspect output}`` of every image in build/images.json."""
    return {
        name: json.loads(docker("image", "inspect", ref).stdout)[0] for name, ref in images.items()
    }
