"""careerqa.cli.main."""
