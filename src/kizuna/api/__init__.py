"""The REST API under /api/v1 (FastAPI): routes call services; `create_app(settings)` wires
everything once (ADR 0018)."""
