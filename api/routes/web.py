"""``/``: a plain web page to upload a file and see its verdict, score and crop scores."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["web"])

_PAGE = Path(__file__).resolve().parent.parent / "web" / "index.html"


@cache
def _page() -> str:
    return _PAGE.read_text(encoding="utf-8")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index() -> str:
    return _page()
