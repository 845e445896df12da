"""`python -m shop_load.containers`: the container proof (`shop_load.containers.run`)."""

import sys

from shop_load.containers.run import main

sys.exit(main())
