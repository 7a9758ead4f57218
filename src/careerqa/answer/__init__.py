"""The answer stage: a question (and the chat turns before it) → an answer whose every sentence is
verified against the passage it cites, or an abstention.

``answerer.Answerer`` drives one question through it as a stream of events; ``turns`` rewrites a
follow-up into a standalone question; ``shortcuts`` answers from the corpus's FAQ and picks prompt
sentences; ``pipeline`` runs every draft through the same named checks (and asks again from the
closest passage when one says so); ``checking`` verifies and shapes it with ``grounding`` (support),
``relevance`` and ``focus`` (on target) and ``form`` (markup, copies, markers); ``relay`` drops a
sentence that asks the reader for data, money or credentials or sends them to an address, link or
install nobody asked about, and holds it back while streaming; ``rules`` names the decisions that
may be turned off; ``run`` holds what these steps share.

Not handled here: retrieval (``retrieve/``), the prompts' text and recognising a refusal
(``generate/prompts.py``), the model (``generate/``).
"""
