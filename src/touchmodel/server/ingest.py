"""Segment-compatible ingestion: /v1/batch, /v1/track, /v1/identify, /v1/group, /v1/page."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1", tags=["ingestion"])
