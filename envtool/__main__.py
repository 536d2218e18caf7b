import sys

from envtool.cli.app import main

sys.exit(main())
