"""The ``careerqa`` command: the only place that prints for people. Each command parses its options,
calls the stage that does the work, prints the result (or ``--json`` for scripts) and sets the exit
code; a library error (``CareerQAError``) becomes one line on stderr, anything else keeps its traceback.

The app and its commands are in ``cli/app.py``; what the commands share (the ``CliContext`` with its
engine factory, which tests replace with ``obj=``) in ``cli/context.py``.

Not handled here: what the commands do (indexing, retrieving, answering, serving, evaluating), which
is in the stage packages.
"""

from careerqa.cli.app import app, main

__all__ = ["app", "main"]
