"""Resource options shared by the components."""

from __future__ import annotations

import pulumi


def child_options(
    parent: pulumi.Resource,
    opts: pulumi.ResourceOptions | None,
    *,
    protect: bool | None = None,
    retain_on_delete: bool | None = None,
    ignore_changes: list[str] | None = None,
) -> pulumi.ResourceOptions:
    """Options for a component's children: parented to it and waiting for what it waits for.

    Pulumi does not pass a component's ``depends_on`` on to its children, so without this a
    VPC could be created before the Compute API that the component waited for is enabled.

    The resources the ``protect`` setting governs pass ``protect`` explicitly, true or false,
    so that turning the setting off lifts Pulumi's protection at the next ``pulumi up``.
    """
    depends_on = opts.depends_on if opts is not None else None
    return pulumi.ResourceOptions(
        parent=parent,
        depends_on=depends_on,
        protect=protect,
        retain_on_delete=retain_on_delete,
        ignore_changes=ignore_changes,
    )
