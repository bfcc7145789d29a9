"""The rules as ``ResourceValidationPolicy`` objects (served by ``__main__``)."""

from __future__ import annotations

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from infra.policy.rules import RULES, Rule

PACK_NAME = "crypto-kfp-guardrails"


def _validate(rule: Rule):
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in rule(args.resource_type, args.props, args.get_config(), urn=args.urn):
            report_violation(message, None)

    return validate


def build_policies() -> list[ResourceValidationPolicy]:
    """One policy per rule; the pack makes every one mandatory."""
    return [
        ResourceValidationPolicy(
            name=rule.name,
            description=rule.description,
            validate=_validate(rule),
            config_schema=PolicyConfigSchema(properties=rule.config) if rule.config else None,
        )
        for rule in RULES
    ]
