"""careerqa: local, offline question answering about AI careers, with a citation for every claim."""

__version__ = "0.1.0"
