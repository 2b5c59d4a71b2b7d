"""stepdag's AWS infrastructure as a CDK (Python) app: ``python -m infra.app``."""
