// PNG decoding through libpng's full API, so 16-bit samples and unassociated alpha
// arrive exactly as stored (the simplified API converts 16-bit data to linear light
// and premultiplies alpha). libpng's errors longjmp back to the setjmp below.
#include "image_codecs.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct memory_reader {
    const unsigned char *data;
    size_t size;
    size_t position;
};

static void read_from_memory(png_structp png, png_bytep destination, size_t count) {
    struct memory_reader *reader = (struct memory_reader *)png_get_io_ptr(png);
    if (count > reader->size - reader->position) {
        png_error(png, "unexpected end of file (the file is truncated)");
    }
    memcpy(destination, reader->data + reader->position, count);
    reader->position += count;
}

static void record_error(png_structp png, png_const_charp message) {
    cnnlab_decoded_image *out = (cnnlab_decoded_image *)png_get_error_ptr(png);
    snprintf(out->error, sizeof out->error, "%s", message);
    png_longjmp(png, 1);
}

// Warnings concern ancillary data (a bad colour profile, a text chunk); the pixels are fine.
static void ignore_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

static void check_size(png_structp png, size_t width, size_t height, size_t max_pixels) {
    if (width * height > max_pixels) {
        ((cnnlab_decoded_image *)png_get_error_ptr(png))->too_large = 1;
        char message[120];
        snprintf(message, sizeof message, "the image is %zu x %zu pixels, more than the limit of %zu pixels",
                 width, height, max_pixels);
        png_error(png, message);
    }
}

int cnnlab_png_decode(const unsigned char *data, size_t size, size_t max_pixels,
                      cnnlab_decoded_image *out) {
    memset(out, 0, sizeof *out);
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, out, record_error, ignore_warning);
    if (png == NULL) {
        snprintf(out->error, sizeof out->error, "out of memory");
        return 0;
    }
    png_infop info = png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_read_struct(&png, NULL, NULL);
        snprintf(out->error, sizeof out->error, "out of memory");
        return 0;
    }
    // Assigned after setjmp and read after a longjmp, hence volatile.
    png_bytep *volatile rows = NULL;
    struct memory_reader reader = {data, size, 0};

    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(rows);
        free(out->pixels);
        out->pixels = NULL;
        return 0;
    }

    // IHDR is the first chunk of every PNG: bytes 16-23 hold width and height. Checking them
    // here refuses a huge image even when the file is cut before libpng would look.
    if (size >= 24 && memcmp(data + 12, "IHDR", 4) == 0) {
        size_t claimed_width = (size_t)data[16] << 24 | (size_t)data[17] << 16 | (size_t)data[18] << 8 | data[19];
        size_t claimed_height = (size_t)data[20] << 24 | (size_t)data[21] << 16 | (size_t)data[22] << 8 | data[23];
        check_size(png, claimed_width, claimed_height, max_pixels);
    }
    png_set_read_fn(png, &reader, read_from_memory);
    // Problems in ancillary chunks (a wrong CRC on a text chunk, an odd profile) should
    // not make a readable picture unreadable; broken image data is still an error.
    png_set_benign_errors(png, 1);
    png_read_info(png, info);

    png_uint_32 width = 0, height = 0;
    int depth = 0, color_type = 0;
    png_get_IHDR(png, info, &width, &height, &depth, &color_type, NULL, NULL, NULL);
    check_size(png, width, height, max_pixels);

    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    int channels = png_get_channels(png, info);
    int bit_depth = png_get_bit_depth(png, info);
    size_t row_bytes = png_get_rowbytes(png, info);
    if ((bit_depth != 8 && bit_depth != 16) || channels < 1 || channels > 4 ||
        row_bytes != (size_t)width * (size_t)channels * (size_t)(bit_depth / 8)) {
        png_error(png, "unsupported sample layout");
    }

    out->pixels = (unsigned char *)malloc(row_bytes * height);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * height);
    if (out->pixels == NULL || rows == NULL) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < height; y++) rows[y] = out->pixels + (size_t)y * row_bytes;

    png_read_image(png, rows);
    // Reading to IEND checks the rest of the file, so a file cut after its pixels is reported too.
    png_read_end(png, NULL);

    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    out->width = width;
    out->height = height;
    out->channels = channels;
    out->bit_depth = bit_depth;
    return 1;
}

void cnnlab_image_release(cnnlab_decoded_image *image) {
    free(image->pixels);
    image->pixels = NULL;
}
