"""The `pulse` command: runs the server, the workers, the desktop app, or all of them."""
