import sys

from fcn_tutorial.cli import main

sys.exit(main())
