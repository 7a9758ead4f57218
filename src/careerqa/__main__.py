from careerqa.cli import main

main()
