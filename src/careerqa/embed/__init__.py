"""Embedding text: the ``Embedder`` contract and the torch backend (``embedding``), the ONNX Runtime
backend and its one-time export (``onnx``), and choosing between them (``loader``).

Not handled here: what is embedded (``ingest/`` makes the chunks), storing and searching the vectors
(``index/``, ``retrieve/``).
"""
