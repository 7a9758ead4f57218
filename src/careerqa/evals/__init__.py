"""The evaluation: scoring answers and retrieval on the eval set, the LLM judge and the claim
check, failure kinds, the regression gate and the report."""
