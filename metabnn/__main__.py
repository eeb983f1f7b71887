import sys

from metabnn.cli import main

sys.exit(main())
