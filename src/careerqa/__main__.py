from careerqa.cli.main import main

main()
