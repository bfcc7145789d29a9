"""Step images: names from the environment, one Dockerfile per step on the shared base."""

import re
import tomllib
from pathlib import Path

import pytest

from components.images import STEPS, image_for

ROOT = Path(__file__).resolve().parents[2]


def test_image_names_follow_registry_and_tag(monkeypatch):
    monkeypatch.setenv("CRYPTO_KFP_REGISTRY", "europe-west1-docker.pkg.dev/p/repo/")
    monkeypatch.setenv("CRYPTO_KFP_IMAGE_TAG", "abc123")
    assert image_for("train") == "europe-west1-docker.pkg.dev/p/repo/train:abc123"


def test_unknown_step_is_an_error():
    with pytest.raises(ValueError, match="unknown step 'serve'"):
        image_for("serve")


def test_every_step_has_a_dockerfile_on_the_base_with_existing_extras():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for step in STEPS:
        dockerfile = (ROOT / "components" / step / "Dockerfile").read_text()
        assert "FROM ${BASE_IMAGE}" in dockerfile, step
        for group in re.findall(r'pip install "\.\[([a-z,]+)\]"', dockerfile):
            assert set(group.split(",")) <= set(extras), (step, group)
        assert (ROOT / "components" / step / "build.sh").stat().st_mode & 0o111, step
    # Steps that import Beam or TensorFlow get the extra that provides them.
    assert '".[beam]"' in (ROOT / "components/transform/Dockerfile").read_text()
    for step in ("tune", "train", "deploy"):
        assert (
            "ml"
            in re.search(
                r'"\.\[([a-z,]+)\]"', (ROOT / "components" / step / "Dockerfile").read_text()
            )[1]
        )


def test_transform_image_can_serve_as_the_dataflow_sdk_container():
    """Dataflow starts workers through Beam's boot program; the Beam version must match."""
    import apache_beam

    dockerfile = (ROOT / "components/transform/Dockerfile").read_text()
    assert f"apache/beam_python3.11_sdk:{apache_beam.__version__}" in dockerfile
    assert "COPY --from=beam_sdk /opt/apache/beam /opt/apache/beam" in dockerfile
    assert 'ENTRYPOINT ["/opt/apache/beam/boot"]' in dockerfile
