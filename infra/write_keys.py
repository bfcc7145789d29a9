"""Write the stack's service-account keys to ``service_accounts/<name>.json`` (mode 600).

Usage (what ``make keys`` runs)::

    python -m infra.write_keys          # runs `pulumi stack output --json --show-secrets`
    pulumi stack output --json --show-secrets | python -m infra.write_keys -

Keys exist only when the stack was deployed with ``serviceAccountKeys: true``; otherwise
this exits with a message saying how to ask for them. Nothing here is needed with
Workload Identity, the default.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

OUTPUT_NAME = "service_account_keys"
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "service_accounts"
NO_KEYS = (
    f"No service-account keys in the stack outputs (no '{OUTPUT_NAME}' output). Keys are off "
    "by default because Workload Identity needs none. To create them: "
    "`pulumi config set serviceAccountKeys true`, `pulumi up`, then run this again."
)


class KeysError(Exception):
    """The stack outputs hold no usable keys."""


def read_stack_outputs(source: str | None) -> dict:
    """Stack outputs as JSON: from stdin when ``source`` is '-', else from the Pulumi CLI."""
    if source == "-":
        text = sys.stdin.read()
    else:
        try:
            done = subprocess.run(
                ["pulumi", "stack", "output", "--json", "--show-secrets"],
                check=True,
                capture_output=True,
                text=True,
            )
        except FileNotFoundError as exc:
            raise KeysError(
                "The Pulumi CLI is not on PATH; install it or pipe the outputs in with '-'."
            ) from exc
        except subprocess.CalledProcessError as exc:
            raise KeysError(f"`pulumi stack output` failed: {exc.stderr.strip()}") from exc
        text = done.stdout
    try:
        outputs = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KeysError(f"The stack outputs are not JSON: {exc}") from exc
    if not isinstance(outputs, dict):
        raise KeysError("The stack outputs are not a JSON object.")
    return outputs


def extract_keys(outputs: dict) -> dict[str, dict]:
    """``{account name: key file content}``; raises KeysError when there is none."""
    keys = outputs.get(OUTPUT_NAME)
    if not keys:
        raise KeysError(NO_KEYS)
    if keys == "[secret]":
        raise KeysError("The keys are hidden; read the outputs with --show-secrets.")
    parsed = {}
    for name, content in keys.items():
        key = json.loads(content) if isinstance(content, str) else content
        if (
            not isinstance(key, dict)
            or key.get("type") != "service_account"
            or "private_key" not in key
        ):
            raise KeysError(f"The key for {name!r} is not a service-account key file.")
        if not name or "/" in name or name.startswith("."):
            raise KeysError(f"Refusing to write a key under the unsafe name {name!r}.")
        parsed[name] = key
    return parsed


def write_keys(keys: dict[str, dict], directory: Path) -> list[Path]:
    """Write one ``<name>.json`` per key, readable by the owner only."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, key in sorted(keys.items()):
        path = directory / f"{name}.json"
        # Created with 600 from the start, so the key is never readable by others, and
        # chmod again in case the file already existed with wider permissions.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(key, handle, indent=2)
        os.chmod(path, 0o600)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", help="'-' to read the stack outputs JSON from stdin")
    parser.add_argument(
        "--dir", type=Path, default=DEFAULT_DIR, help="where to write the key files"
    )
    args = parser.parse_args(argv)
    try:
        keys = extract_keys(read_stack_outputs(args.source))
    except KeysError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in write_keys(keys, args.dir):
        print(f"wrote {path} (mode 600)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
