"""The CI workflow: lint and tests on pull requests, a keyless, policy-checked preview."""

from __future__ import annotations

import yaml

from tests.infra.harness import PROJECT_ROOT

WORKFLOW = yaml.safe_load((PROJECT_ROOT / ".github" / "workflows" / "ci.yml").read_text())
# PyYAML reads the bare key `on` as True.
TRIGGERS = WORKFLOW.get("on", WORKFLOW.get(True))


def _runs(job: dict) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def test_lint_and_tests_on_pull_requests():
    assert "pull_request" in TRIGGERS
    runs = _runs(WORKFLOW["jobs"]["lint-and-test"])
    assert "make lint" in runs and "make test" in runs


def test_preview_only_with_workload_identity_federation_and_no_key():
    job = WORKFLOW["jobs"]["preview"]
    assert "vars.GCP_WORKLOAD_IDENTITY_PROVIDER" in job["if"]
    assert "vars.GCP_SERVICE_ACCOUNT" in job["if"]
    assert job["permissions"]["id-token"] == "write"
    auth = next(
        s for s in job["steps"] if s.get("uses", "").startswith("google-github-actions/auth")
    )
    assert set(auth["with"]) == {"workload_identity_provider", "service_account"}
    assert "credentials_json" not in (PROJECT_ROOT / ".github" / "workflows" / "ci.yml").read_text()
    assert any(r.startswith("make preview") for r in _runs(job))


def test_make_preview_and_up_run_the_policy_pack():
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert "POLICY = --policy-pack infra/policy --policy-pack-config $(POLICY_CONFIG)" in makefile
    assert "\tpulumi preview $(PULUMI_STACK) $(POLICY)\n" in makefile
    assert "\tpulumi up $(PULUMI_STACK) $(POLICY)\n" in makefile
    assert "\t$(VENV)/bin/actionlint .github/workflows/*.yml\n" in makefile
