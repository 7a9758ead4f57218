"""careerqa.generate."""
