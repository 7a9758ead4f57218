"""Text rules every stage shares: where sentences end, the word tokenizer, spelling correction against
the corpus, citation markers, pipe tables as the model reads them, and what one line is (a list item,
a table row, code, a title: ``lines``).

Owns only pure functions over strings: nothing here reads files, embeds, searches or calls a model.
Not handled here: cleaning documents (``ingest/``), ranking (``retrieve/``), prompts (``generate/``).
"""
