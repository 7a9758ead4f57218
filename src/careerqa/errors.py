"""Errors that are shown to the user.

The library raises these; only the CLI (``cli/``) and the web service (``web/``) turn them into messages,
exit codes
and HTTP statuses. Anything that is not a ``CareerQAError`` is a bug and keeps its traceback.
"""


class CareerQAError(Exception):
    """An error with a message meant for the person using careerqa."""

    exit_code = 1
    http_status = 500


class BadInput(CareerQAError):
    """The request itself is wrong (empty question, bad option value, unreadable file)."""

    exit_code = 2
    http_status = 422


class CorpusEmpty(CareerQAError):
    """The corpus folder is missing or holds no readable documents."""

    http_status = 409


class IndexMissing(CareerQAError):
    """No index has been built yet."""

    http_status = 409


class IndexStale(CareerQAError):
    """The index on disk was built by another format or embedder and must be rebuilt."""

    http_status = 409


class IndexCorrupt(IndexStale):
    """A file of the index is missing, truncated or does not match the others; the message names it.

    A subclass of ``IndexStale``: both are fixed by rebuilding the index with ``careerqa index --full``.
    """


class ModelUnavailable(CareerQAError):
    """A model package is missing, corrupt or cannot be loaded."""

    http_status = 503


class ServerUnavailable(CareerQAError):
    """``--server`` / ``CAREERQA_SERVER_URL`` names a careerqa server that does not answer."""

    http_status = 502
