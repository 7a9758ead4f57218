"""Measuring careerqa: scoring retrieval and grounded answers on the eval set, the LLM judge and the
lexical claim check, failure kinds, the retrieval regression gate, the report, and the question log
with its content-gap report.

Not handled here: answering (``answer/``) and printing the results (``cli/eval_cmds.py``).
"""
