import sys

from mepr.cli import main

sys.exit(main())
