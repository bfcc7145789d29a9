"""The Pulumi policy pack: the stack's security and cost invariants, checked at every
``pulumi preview``/``up`` run with ``--policy-pack infra/policy`` (``make preview``/``up``).

``rules`` holds each check as a plain function over a resource's type and inputs, so the
tests run them on the inputs the mocked program registers; ``pack`` wraps them as
``ResourceValidationPolicy`` objects and ``__main__`` serves them to the engine.
"""
