"""Generating text: the ``Generator`` contract (``base``), the packaged model files (``model_files``),
the local model on llama.cpp (``llama``), the remote OpenAI-compatible generator (``remote``), the
prompts and passage format (``prompts``), passage KV caches (``kv_cache`` on disk, ``kv_stitch`` and
``kv_path`` at question time) and the llama.cpp build check (``llama_check``, ``llama_probe``).

Not handled here: choosing the passages (``retrieve/``, ``answer/``) and verifying answers
(``answer/``, ``evals/``).
"""
