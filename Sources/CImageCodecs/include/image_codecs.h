// Decoders for PNG (libpng) and JPEG (libjpeg-turbo) that run entirely in C.
//
// Both libraries report fatal errors by longjmp. Each decoder here sets its own
// jump target, so a corrupt or truncated file unwinds only C frames and comes back
// as a return value of 0 with a message in `error`; it never jumps through Swift.
#ifndef CNNLAB_IMAGE_CODECS_H
#define CNNLAB_IMAGE_CODECS_H

#include <stddef.h>

/// A decoded image: interleaved samples, rows top to bottom, no padding between rows.
typedef struct {
    /// Allocated by the decoder; release with cnnlab_image_release.
    unsigned char *pixels;
    size_t width;
    size_t height;
    /// Samples per pixel: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA.
    int channels;
    /// 8, or 16 for two bytes per sample, most significant byte first (PNG order).
    int bit_depth;
    /// 1 when decoding was refused because the image has more than `max_pixels` pixels.
    int too_large;
    /// Why decoding failed, when it did.
    char error[200];
} cnnlab_decoded_image;

/// Decodes a PNG of any colour type and bit depth without gamma or alpha conversion:
/// palettes and tRNS become RGB(A), gray below 8 bits is scaled to 8 bits, 16-bit
/// samples stay 16 bits. Returns 1 on success, 0 with `error` set otherwise.
/// Images of more than `max_pixels` pixels are refused before any pixel memory is allocated.
int cnnlab_png_decode(const unsigned char *data, size_t size, size_t max_pixels,
                      cnnlab_decoded_image *out);

/// Decodes a baseline, progressive or arithmetic-coded JPEG to 8-bit gray (for gray
/// files) or RGB (for YCbCr, RGB, CMYK and YCCK files). A file that ends early is an
/// error, not a grey-filled image. Returns 1 on success, 0 with `error` set otherwise.
int cnnlab_jpeg_decode(const unsigned char *data, size_t size, size_t max_pixels,
                       cnnlab_decoded_image *out);

/// Frees the pixels of a decoded image (safe on a failed or already released one).
void cnnlab_image_release(cnnlab_decoded_image *image);

#endif
