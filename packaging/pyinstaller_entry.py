"""Entry point of the experimental PyInstaller bundle (packaging/stepvideo-desktop.spec).

The desktop starts its worker as `<python> -m stepvideo.jobs.worker_entry --serve …`, with <python> =
sys.executable. Inside a bundle sys.executable is this program, so the same argv lands here and is
sent on to the worker; `-m stepvideo …` reaches the CLI the same way. Anything else opens the window.
"""

from __future__ import annotations

import sys


def main() -> int:
    head = sys.argv[1:3]
    if head == ["-m", "stepvideo.jobs.worker_entry"]:
        from stepvideo.jobs.worker_entry import main as worker_main

        return worker_main(sys.argv[3:])
    if head == ["-m", "stepvideo"]:
        from stepvideo.cli import main as cli_main

        return cli_main(sys.argv[3:])
    from stepvideo_desktop.app import main as app_main

    return app_main()


if __name__ == "__main__":
    sys.exit(main())
