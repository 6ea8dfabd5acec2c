# The package's public names: the one list of them. Type checkers read it, and
# svdimage/__init__.py hands it to lazy_loader.attach_stub (imported on first use).
from . import animation as animation
from . import batch as batch
from . import codec as codec
from . import decomposition as decomposition
from . import denoising as denoising
from . import explorer as explorer
from . import image_svd as image_svd
from . import io as io
from . import metrics as metrics
from . import randomized as randomized
from . import ranks as ranks
from . import svd_kernels as svd_kernels
from . import sweep as sweep
from . import visualization as visualization
from .codec import FormatError as FormatError
from .decomposition import decompose as decompose
from .denoising import add_noise as add_noise
from .denoising import denoise as denoise
from .explorer import explore as explore
from .image_svd import ImageSVD as ImageSVD
from .io import load_image as load_image
from .io import open_image as open_image
from .io import save_image as save_image
from .randomized import randomized_svd as randomized_svd

__version__: str
