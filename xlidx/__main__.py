from xlidx.cli import main

main()
