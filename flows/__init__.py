"""Prefect flows, one per file; each composes tasks and is deployed from prefect.yaml."""
