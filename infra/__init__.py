"""The Pulumi program: small ComponentResources composed in ``infra/__main__.py``."""
