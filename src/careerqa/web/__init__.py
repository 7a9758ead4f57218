"""The web server: the FastAPI app (``app``), its request schemas and API page, the OpenAI-compatible
endpoint, and the queue and streams that serve an engine's answers over HTTP.

Not handled here: answering (``engine/``, ``answer/``) and the command that starts it (``cli/``).
"""
