"""The desktop's network client and campaign store: asyncio only, no Qt."""
