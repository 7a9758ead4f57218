"""The engine: the stages wired into what the CLI and the web service call (search, ask, sync).

``core.Engine`` keeps the index in step with the corpus and answers from the version it serves;
``view`` holds that version and swaps in a newer one while requests run; ``models`` loads the embedder
and the language model on first use. Not handled here: how any stage works (each package owns its
own), printing (``cli/``) and HTTP (``web/``).
"""
