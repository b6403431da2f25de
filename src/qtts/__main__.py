from qtts.cli.main import main

main()
