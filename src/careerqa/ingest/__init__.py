"""careerqa.ingest."""
