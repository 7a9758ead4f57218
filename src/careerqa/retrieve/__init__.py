"""Retrieval: one ranking of passages for a query, from the candidates of one loaded index version.

``hybrid.Retriever`` corrects the query's spelling against the corpus, embeds it, asks the store for
its candidates (by chunk vector, best sentence and BM25) and fuses them by reciprocal rank, the same
way on FAISS and on Qdrant.

Not handled here: storing and searching vectors and postings (``index/``), and what is done with the
passages found (``answer/``).
"""
