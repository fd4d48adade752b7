"""Alembic migrations of the Campaign Pulse schema (run through `pulse_data.migrate`)."""
