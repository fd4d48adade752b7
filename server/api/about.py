"""`GET /api`: what this server is and its version, for anyone (no login needed)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from pulse_core import version

router = APIRouter(tags=["about"])
PRODUCT_NAME = "Campaign Pulse"


class About(BaseModel):
    name: str
    version: str


@router.get("/api")
async def about() -> About:
    """The same version as `pulse --version` and the desktop's About."""
    return About(name=PRODUCT_NAME, version=version())
