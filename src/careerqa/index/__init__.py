"""The index: one committed version of the corpus's chunks and vectors, and keeping it in step.

``manifest`` is what a version holds and how it was built; ``store`` the contract both stores keep
(``faiss_store``: FAISS files in the index folder, with ``faiss_files`` for its manifest file and old
files; ``qdrant_store``: Qdrant collections, with ``qdrant_conn`` and ``qdrant_search``); ``backends``
picks one from the settings; ``sync`` brings the index in line with the corpus, embedding only what
changed; ``watch`` syncs while the corpus folder changes. ``bm25`` is the lexical scoring both stores
search by, ``vector_index`` the FAISS index type for a vector count.

Not handled here: reading and chunking documents (``ingest/``), the embedder (``embed/``) and ranking
the candidates a store finds (``retrieve/``).
"""
