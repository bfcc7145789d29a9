"""Writes the policy pack's config from a stack's settings.

``make preview``/``up`` run ``pulumi config --json | python -m infra.policy.stack_config``
and pass the result with ``--policy-pack-config``. The pack never reads stack settings
itself: without this file (a bare ``--policy-pack infra/policy``, or the pack enforced from
Pulumi Cloud with an organisation's own config) keys and an open control plane are refused.
Only the two explicit, described settings relax their policy.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

PROJECT = "crypto-kfp"


def _enabled(settings: Mapping[str, Any], key: str) -> bool:
    value = settings.get(f"{PROJECT}:{key}")
    if isinstance(value, Mapping):  # `pulumi config --json`: {"value": "true", ...}
        value = value.get("value")
    return str(value).lower() == "true"


def policy_config(settings: Mapping[str, Any]) -> dict[str, dict[str, bool]]:
    """Policy config for a stack; ``settings`` maps ``crypto-kfp:<key>`` to its value."""
    return {
        "no-service-account-key": {"allowKeys": _enabled(settings, "serviceAccountKeys")},
        "no-open-control-plane": {
            "allowOpenToAnyAddress": _enabled(settings, "controlPlaneOpenToAnyAddress")
        },
    }


def main() -> int:
    raw = sys.stdin.read()
    settings = json.loads(raw) if raw.strip() else {}
    json.dump(policy_config(settings), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
