from grader.worker.main import main

main()
