"""The data layer shared by the server and the workers: models, queries, the event log."""
