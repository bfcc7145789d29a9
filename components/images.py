"""Container image of each pipeline step.

The KFP wrappers use these as ``base_image``; ``build.sh`` pushes to the same names.
The registry comes from ``CRYPTO_KFP_REGISTRY`` (``make pipeline`` sets it from the
Pulumi stack output ``registry_url``) and the tag from ``CRYPTO_KFP_IMAGE_TAG``.
Locally ``kfp.local.SubprocessRunner`` ignores the image and runs the same function in
this virtual environment, so the defaults only need to be well-formed.
"""

from __future__ import annotations

import os

STEPS: tuple[str, ...] = ("ingest", "transform", "tune", "train", "deploy")
DEFAULT_REGISTRY = "localhost/crypto-kfp"
DEFAULT_TAG = "0.1.0"


def image_for(step: str) -> str:
    """``<registry>/<step>:<tag>`` for one of ``STEPS``."""
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}; expected one of {', '.join(STEPS)}")
    registry = os.environ.get("CRYPTO_KFP_REGISTRY", DEFAULT_REGISTRY).rstrip("/")
    tag = os.environ.get("CRYPTO_KFP_IMAGE_TAG", DEFAULT_TAG)
    return f"{registry}/{step}:{tag}"
