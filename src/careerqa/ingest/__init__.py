"""Ingest: the corpus folder turned into chunks. Reading files of every kind (text, Markdown, HTML, PDF,
Word), cleaning them with every character traced back to the file, chunking along their structure
(headings, lists, tables, FAQ pairs), recognising page chrome, and restoring the headings a scraper
flattened.

``corpus`` walks the folder and loads ``Document``s; ``readers`` turns PDF and Word files into text;
``clean`` runs the cleaning steps (``html_text``, ``repairs``, all ``tracked`` substitutions);
``chunking`` cuts documents into ``Chunk``s; ``boilerplate`` finds page chrome; ``headings`` restores
list titles. Not handled here: embedding (``embed/``), the index and its sync (``index/``), and what
one line is (``text/lines.py``, shared with the answer checks).
"""
