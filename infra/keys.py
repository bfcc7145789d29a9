"""Service-account keys, only when a stack asks for them (``serviceAccountKeys: true``).

Workload Identity is the default and needs no key. A key is a long-lived credential that
works from anywhere, so it is created only on request, kept in secret stack outputs and a
Kubernetes Secret, and written to disk only by ``make keys`` (mode 600, git-ignored).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

# The pipeline account is the one a workstation or a cluster without Workload Identity
# would run steps as; the others are only ever used by Google-managed runners.
KEYED_ACCOUNTS = ("pipeline",)
KEY_FILE = "key.json"


class ServiceAccountKeys(pulumi.ComponentResource):
    """One key per keyed account, as a secret output and a Secret in the KFP namespace."""

    def __init__(
        self,
        name: str,
        accounts: Mapping[str, gcp.serviceaccount.Account],
        account_ids: Mapping[str, str],
        provider: k8s.Provider,
        namespace: str,
        depends_on: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("crypto-kfp:infra:ServiceAccountKeys", name, None, opts)
        self.json_keys: dict[str, pulumi.Output[str]] = {}
        for account in KEYED_ACCOUNTS:
            key = gcp.serviceaccount.Key(
                f"{name}-{account}",
                service_account_id=accounts[account].name,
                opts=pulumi.ResourceOptions(parent=self),
            )
            # The API returns the key file base64-encoded; the output is the file itself.
            key_json = pulumi.Output.secret(
                key.private_key.apply(lambda b64: base64.b64decode(b64).decode())
            )
            k8s.core.v1.Secret(
                f"{name}-{account}-secret",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=f"{account_ids[account]}-key", namespace=namespace
                ),
                type="Opaque",
                string_data={KEY_FILE: key_json},
                opts=pulumi.ResourceOptions(
                    parent=self, provider=provider, depends_on=list(depends_on)
                ),
            )
            self.json_keys[account_ids[account]] = key_json
        self.register_outputs({})
