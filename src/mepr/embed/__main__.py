"""`python -m mepr.embed --modality M --input SHARD --params JSON --out OUT --failures F`."""

import sys

from mepr.embed.shard import main

sys.exit(main())
