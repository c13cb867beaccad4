from pyrunc.main import main

main()
