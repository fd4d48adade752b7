"""arq workers: the jobs that change campaigns and publish their events."""
