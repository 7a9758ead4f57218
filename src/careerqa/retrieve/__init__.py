"""careerqa.retrieve."""
