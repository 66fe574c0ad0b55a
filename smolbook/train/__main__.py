"""``python -m smolbook.train run SPEC.yaml [--in-process]`` (what accelerate launch / torchrun run on each rank)."""
import sys

from smolbook.quiet import quiet_libraries
from smolbook.train.launch import main

quiet_libraries()  # launched ranks log to the notebook's output as much as an in-process run does
sys.exit(main())
