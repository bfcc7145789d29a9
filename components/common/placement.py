"""Where pipeline steps run on the cluster: the GKE ``pipelines`` node pool.

The one definition of that pool's node label and taint, in both spellings: the GKE API's
(the Pulumi program creates the pool with it) and Kubernetes' (every step's toleration),
so the pool and the steps cannot drift apart. No imports: ``infra`` (Pulumi, no kfp) and
``pipeline`` (kfp, no pulumi) both import this module.
"""

#: Node label of the pipelines pool; every step selects it.
PIPELINES_LABEL = {"pool": "pipelines"}
#: Taint of the pipelines pool, as the GKE API spells it. Only pipeline steps tolerate it,
#: so KFP's own services never land on spot nodes that can be reclaimed.
PIPELINES_TAINT = {"key": "pool", "value": "pipelines", "effect": "NO_SCHEDULE"}

#: GKE API spelling of a taint effect -> Kubernetes spelling (what a toleration names).
KUBERNETES_EFFECT = {
    "NO_SCHEDULE": "NoSchedule",
    "PREFER_NO_SCHEDULE": "PreferNoSchedule",
    "NO_EXECUTE": "NoExecute",
}
#: The toleration of PIPELINES_TAINT, as a Kubernetes pod spec spells it.
PIPELINES_TOLERATION = {
    "key": PIPELINES_TAINT["key"],
    "operator": "Equal",
    "value": PIPELINES_TAINT["value"],
    "effect": KUBERNETES_EFFECT[PIPELINES_TAINT["effect"]],
}
