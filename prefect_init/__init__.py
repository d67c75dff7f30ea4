"""prefect-init: Kubernetes init pipelines as one declarative, observable, retrying Prefect flow."""

__version__ = "0.1.0"
