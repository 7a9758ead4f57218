"""careerqa.text."""
