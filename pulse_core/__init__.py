"""Qt-free, I/O-free shared core of Campaign Pulse: topics, events, wire format, stats."""
