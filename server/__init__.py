"""The FastAPI server: REST API, login and the WebSocket that streams events per topic."""
