"""A monthly billing budget on the project, only when a stack asks for one.

``billingAccount`` and ``monthlyBudget`` together create it; without them nothing is
created, not even the API. Google emails the billing account's administrators when actual
spend in a calendar month passes 50, 90 and 100% of the amount. A budget alerts, it never
stops spending: ``make pause`` or ``pulumi destroy`` do that.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from infra.config import Settings
from infra.options import child_options

BUDGET_API = "billingbudgets.googleapis.com"
# Fractions of the amount at which an alert is sent.
THRESHOLDS = (0.5, 0.9, 1.0)


class ProjectBudget(pulumi.ComponentResource):
    """The billing budgets API and one budget limited to this project's spend."""

    def __init__(
        self, name: str, settings: Settings, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("crypto-kfp:infra:ProjectBudget", name, None, opts)
        child = child_options(self, opts)
        self.api = gcp.projects.Service(
            f"{name}-api",
            project=settings.project,
            service=BUDGET_API,
            # As for the other APIs: never disabled on destroy.
            disable_on_destroy=False,
            disable_dependent_services=False,
            opts=child,
        )
        # The budgets API needs a quota project when called with user credentials (gcloud
        # application-default login): bill the calls to this project.
        self.provider = gcp.Provider(
            f"{name}-billing",
            project=settings.project,
            billing_project=settings.project,
            user_project_override=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # The filter names the project by number (the API reports numbers; an id would
        # show as a change at every preview).
        project = gcp.organizations.get_project_output(
            project_id=settings.project,
            opts=pulumi.InvokeOutputOptions(
                parent=self, depends_on=opts.depends_on if opts else None
            ),
        )
        self.budget = gcp.billing.Budget(
            f"{name}-budget",
            billing_account=settings.billing_account,
            display_name=f"{settings.resource_prefix} {settings.stack}"[:60],
            budget_filter=gcp.billing.BudgetBudgetFilterArgs(
                projects=[project.number.apply(lambda number: f"projects/{number}")],
            ),
            amount=gcp.billing.BudgetAmountArgs(
                specified_amount=gcp.billing.BudgetAmountSpecifiedAmountArgs(
                    units=str(settings.monthly_budget)
                )
            ),
            threshold_rules=[
                gcp.billing.BudgetThresholdRuleArgs(
                    threshold_percent=fraction, spend_basis="CURRENT_SPEND"
                )
                for fraction in THRESHOLDS
            ],
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(provider=self.provider, depends_on=[self.api]),
            ),
        )
        self.register_outputs({"budget": self.budget.name})
