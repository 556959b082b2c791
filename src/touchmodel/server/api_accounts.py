"""REST API routes under /api (see the module names in app.py for who owns what)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api")
