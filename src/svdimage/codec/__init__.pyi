# The codec's public names: the one list of them. Type checkers read it, and
# svdimage/codec/__init__.py hands it to lazy_loader.attach_stub (imported on first use).
from ._compare import CompressionReport as CompressionReport
from ._compare import Measured as Measured
from ._compare import PillowFile as PillowFile
from ._compare import compress as compress
from ._compare import jpeg_at_size as jpeg_at_size
from ._compare import pillow_at_size as pillow_at_size
from ._compare import pillow_at_sizes as pillow_at_sizes
from ._decode import FileInfo as FileInfo
from ._decode import decode as decode
from ._decode import inspect as inspect
from ._decode import load as load
from ._decode import read_file as read_file
from ._encode import CHROMA_STEP_FACTOR as CHROMA_STEP_FACTOR
from ._encode import DC_STEP_DIVISOR as DC_STEP_DIVISOR
from ._encode import RANK_RULE as RANK_RULE
from ._encode import encode as encode
from ._encode import encode_for_sizes as encode_for_sizes
from ._encode import quality_to_step as quality_to_step
from ._encode import save as save
from ._format import VERSION as VERSION
from ._format import FormatError as FormatError
from ._planes import DEBLOCK_STRENGTH as DEBLOCK_STRENGTH
from ._sizes import GlobalSizes as GlobalSizes
