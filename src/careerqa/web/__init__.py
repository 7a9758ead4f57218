"""The web server: the FastAPI app, its schemas and docs, the OpenAI-compatible endpoint and the
streams and queue that serve answers over HTTP."""
