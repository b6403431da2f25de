"""The HTTP service: the FastAPI app (``app``), its routes per surface (jobs, voices, the
OpenAI-compatible speech endpoint, the resident engine), the request gate, the shared state
the routes read (``state``), the schemas and the web page (``static/``).
"""
