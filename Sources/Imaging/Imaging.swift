// Imaging: PNG and JPEG codecs (libpng, libjpeg-turbo), conversions between images and
// tensors, transforms, colormaps and grids. An image is a tensor in display space:
// values in [0, 1], CHW.
import Engine
