"""careerqa.embed."""
