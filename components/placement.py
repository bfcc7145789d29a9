"""Where pipeline steps run on the cluster: the GKE ``pipelines`` node pool.

The one definition of that pool's node label and taint. The Pulumi program creates the
pool with them and the pipeline gives every step the matching node selector and
toleration, so the two cannot drift apart. No imports: ``infra`` (Pulumi, no kfp) and
``pipeline`` (kfp, no pulumi) both import this module.
"""

#: Node label of the pipelines pool; every step selects it.
PIPELINES_LABEL = {"pool": "pipelines"}
#: Taint of the pipelines pool, as the GKE API spells it (effect NO_SCHEDULE is
#: Kubernetes' NoSchedule); only pipeline steps tolerate it, so KFP's own services never
#: land on spot nodes that can be reclaimed.
PIPELINES_TAINT = {"key": "pool", "value": "pipelines", "effect": "NO_SCHEDULE"}
