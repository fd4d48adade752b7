"""The Qt layer of the desktop app: widgets, models and the bridge to the asyncio client."""
