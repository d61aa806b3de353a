"""`python -m desktop` starts the app (same as the `stepvideo-desktop` script)."""

import sys

from stepvideo_desktop.app import main

sys.exit(main())
