"""Alembic's environment and revision scripts for the store; ``llmops.store.migrate`` runs them."""
