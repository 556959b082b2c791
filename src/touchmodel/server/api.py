"""The REST API under /api (OpenAPI at /api/openapi.json, docs at /api/docs)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api")
