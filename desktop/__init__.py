"""The PySide6 desktop app for marketers."""
