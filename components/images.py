"""Container images of the pipeline steps: their names, and the mapping the pipeline is
compiled with. Standard library only, so the image build can name images without the
project's dependencies (``python3 components/images.py --registry R --tag T``).

The mapping is ``{step: image reference}`` for every step in ``STEPS``, plus optionally
``DATAFLOW_WORKER`` (the transform image with Beam's boot as its entrypoint, the SDK
container of Dataflow workers). ``make images`` writes it to ``build/images.json``;
``python -m pipeline compile --images build/images.json`` reads it. A pinned reference
names its digest: ``<registry>/<step>@sha256:<64 hex>``.

The file also records the platform the images were built for, ``"platform":
"linux/amd64"`` (``PLATFORM_KEY``): the machines of Dataflow, Vertex AI and GKE. A file
written before the platform was recorded has no such key and reads the same.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

STEPS: tuple[str, ...] = ("ingest", "transform", "tune", "train", "deploy")
#: Key of the Dataflow worker image in an images mapping (optional).
DATAFLOW_WORKER = "transform-worker"
#: Registry of images that are only named, never pushed (local runs, tests).
DEFAULT_REGISTRY = "localhost/crypto-kfp"
DEFAULT_TAG = "dev"
#: The user every step image runs as (``USER`` in components/Dockerfile.base).
IMAGE_USER_UID = 1000
#: The platform the images are built for (``PLATFORM`` of components/build_images.sh).
DEFAULT_PLATFORM = "linux/amd64"
#: Key of an images file that records the platform of its images (not an image).
PLATFORM_KEY = "platform"

_REFERENCE = re.compile(r"[a-z0-9][a-z0-9._/:@-]*[a-z0-9]", re.IGNORECASE)
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
_PLATFORM = re.compile(r"[a-z0-9]+/[a-z0-9_]+(?:/v[0-9]+)?")


class ImagesError(ValueError):
    """An images mapping is missing a step or holds something that is not an image."""


def image_refs(registry: str = DEFAULT_REGISTRY, tag: str = DEFAULT_TAG) -> dict[str, str]:
    """``{step: "<registry>/<step>:<tag>"}`` for every step, and the Dataflow worker."""
    registry = registry.strip().rstrip("/")
    if not registry or not tag.strip():
        raise ImagesError("an image registry and tag must both be non-empty")
    names = (*STEPS, DATAFLOW_WORKER)
    return validate_images({name: f"{registry}/{name}:{tag.strip()}" for name in names})


def is_pinned(reference: str) -> bool:
    """True when ``reference`` names an image by its content digest."""
    return bool(_DIGEST.search(reference))


def validate_images(images: object) -> dict[str, str]:
    """Return ``images`` as ``{name: reference}`` or raise ImagesError naming what is wrong."""
    if not isinstance(images, dict):
        raise ImagesError(f"an images mapping must be a JSON object, got {type(images).__name__}")
    missing = [step for step in STEPS if step not in images]
    if missing:
        raise ImagesError(f"images mapping has no image for step(s): {', '.join(missing)}")
    unknown = sorted(set(images) - {*STEPS, DATAFLOW_WORKER})
    if unknown:
        raise ImagesError(
            f"images mapping has unknown key(s) {', '.join(unknown)}; "
            f"expected {', '.join(STEPS)} and optionally {DATAFLOW_WORKER}"
        )
    bad = [k for k, v in images.items() if not isinstance(v, str) or not _REFERENCE.fullmatch(v)]
    if bad:
        raise ImagesError(
            "not an image reference: " + ", ".join(f"{k}={images[k]!r}" for k in sorted(bad))
        )
    return {name: images[name] for name in (*STEPS, DATAFLOW_WORKER) if name in images}


def validate_platform(platform: object) -> str:
    """Return ``platform`` (``<os>/<architecture>[/<variant>]``) or raise ImagesError."""
    if not isinstance(platform, str) or not _PLATFORM.fullmatch(platform):
        raise ImagesError(f"not a platform (<os>/<architecture>, e.g. linux/amd64): {platform!r}")
    return platform


def _read(path: Path) -> tuple[dict[str, str], str | None]:
    """The images and the recorded platform (None in a file without one) of an images file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ImagesError(f"images file not found: {path} (run `make images` first)") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImagesError(f"images file {path} is not valid JSON: {exc}") from None
    try:
        platform = None
        if isinstance(data, dict) and PLATFORM_KEY in data:
            data = dict(data)
            platform = validate_platform(data.pop(PLATFORM_KEY))
        return validate_images(data), platform
    except ImagesError as exc:
        raise ImagesError(f"{path}: {exc}") from None


def load_images(path: str | Path) -> dict[str, str]:
    """Read and validate an images JSON file (``build/images.json``): ``{name: reference}``."""
    return _read(Path(path))[0]


def load_platform(path: str | Path) -> str | None:
    """The platform an images file records its images were built for (None: not recorded)."""
    return _read(Path(path))[1]


def write_images(path: str | Path, images: object, platform: str) -> dict[str, str]:
    """Validate ``images`` and write them with their ``platform`` to ``path`` (JSON)."""
    mapping = validate_images(images)
    data = {**mapping, PLATFORM_KEY: validate_platform(platform)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return mapping


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 components/images.py",
        description="Print the images mapping {step: <registry>/<step>:<tag>} as JSON.",
    )
    parser.add_argument("--registry", default=DEFAULT_REGISTRY, help="default: %(default)s")
    parser.add_argument("--tag", default=DEFAULT_TAG, help="default: %(default)s")
    args = parser.parse_args(argv)
    try:
        print(json.dumps(image_refs(args.registry, args.tag), indent=2))
    except ImagesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
