"""``python -m smbsession``: the umbrella command."""

import sys

from .cli.commands import smbsession_main

sys.exit(smbsession_main())
