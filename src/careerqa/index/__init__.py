"""careerqa.index."""
