"""careerqa.answer."""
