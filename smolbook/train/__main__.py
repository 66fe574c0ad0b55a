"""``python -m smolbook.train pretrain --scale S --output DIR [--resume]`` (what accelerate launch / torchrun run)."""
import sys

from smolbook.train.launch import main

sys.exit(main())
