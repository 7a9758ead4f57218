"""careerqa.engine.core."""
