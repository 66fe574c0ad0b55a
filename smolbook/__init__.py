"""smolbook: the SmolLM3 training recipe as a book you can run."""
from smolbook.chapter import Chapter
from smolbook.scales import Scale, get_scale

__version__ = "0.1.0"
__all__ = ["Chapter", "Scale", "get_scale", "__version__"]
