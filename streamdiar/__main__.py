import sys

from streamdiar.cli import main

sys.exit(main())
