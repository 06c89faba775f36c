// JPEG decoding through libjpeg-turbo. Its default error handler exits the process;
// the handler here formats the message and longjmps back to the decoder instead.
#include "image_codecs.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

struct error_handler {
    struct jpeg_error_mgr base;  // first, so libjpeg's pointer to it is a pointer to us
    jmp_buf jump;
    cnnlab_decoded_image *out;
};

static void fail(j_common_ptr info) {
    struct error_handler *handler = (struct error_handler *)info->err;
    char message[JMSG_LENGTH_MAX];
    (*info->err->format_message)(info, message);
    snprintf(handler->out->error, sizeof handler->out->error, "%s", message);
    longjmp(handler->jump, 1);
}

// libjpeg only warns when data runs out: it pads the image with grey and carries on.
// A picture with a missing part is not what the user saved, so those warnings fail.
static void on_message(j_common_ptr info, int level) {
    if (level != -1) return;  // trace messages
    int code = info->err->msg_code;
    if (code == JWRN_JPEG_EOF) {
        // Same words as the PNG decoder uses for the same problem.
        struct error_handler *handler = (struct error_handler *)info->err;
        snprintf(handler->out->error, sizeof handler->out->error, "unexpected end of file (the file is truncated)");
        longjmp(handler->jump, 1);
    }
    if (code == JWRN_HIT_MARKER || code == JWRN_MUST_RESYNC) fail(info);
    info->err->num_warnings++;
}

int cnnlab_jpeg_decode(const unsigned char *data, size_t size, size_t max_pixels,
                       cnnlab_decoded_image *out) {
    memset(out, 0, sizeof *out);
    struct jpeg_decompress_struct info;
    struct error_handler handler;
    info.err = jpeg_std_error(&handler.base);
    handler.base.error_exit = fail;
    handler.base.emit_message = on_message;
    handler.out = out;

    if (setjmp(handler.jump)) {
        jpeg_destroy_decompress(&info);
        free(out->pixels);
        out->pixels = NULL;
        return 0;
    }

    jpeg_create_decompress(&info);
    jpeg_mem_src(&info, data, (unsigned long)size);
    jpeg_read_header(&info, TRUE);

    if ((size_t)info.image_width * (size_t)info.image_height > max_pixels) {
        out->too_large = 1;
        snprintf(out->error, sizeof out->error, "the image is %u x %u pixels, more than the limit of %zu pixels",
                 info.image_width, info.image_height, max_pixels);
        longjmp(handler.jump, 1);
    }

    int cmyk = 0;
    switch (info.jpeg_color_space) {
    case JCS_GRAYSCALE:
        info.out_color_space = JCS_GRAYSCALE;
        break;
    case JCS_CMYK:
    case JCS_YCCK:
        // libjpeg cannot convert these to RGB itself; done below.
        info.out_color_space = JCS_CMYK;
        cmyk = 1;
        break;
    default:
        info.out_color_space = JCS_RGB;
        break;
    }
    jpeg_start_decompress(&info);

    size_t width = info.output_width, height = info.output_height;
    size_t components = (size_t)info.output_components;
    size_t stride = width * components;
    out->pixels = (unsigned char *)malloc(stride * height);
    if (out->pixels == NULL) {
        snprintf(out->error, sizeof out->error, "out of memory");
        longjmp(handler.jump, 1);
    }
    while (info.output_scanline < info.output_height) {
        JSAMPROW row = out->pixels + (size_t)info.output_scanline * stride;
        jpeg_read_scanlines(&info, &row, 1);
    }

    if (cmyk) {
        // Adobe writes CMYK inverted (0 = full ink). With ink fractions c and k,
        // R = 255 (1 - c)(1 - k), likewise G with m and B with y.
        int inverted = info.saw_Adobe_marker;
        const unsigned char *source = out->pixels;
        unsigned char *target = out->pixels;
        for (size_t i = 0; i < width * height; i++, source += 4, target += 3) {
            unsigned c = source[0], m = source[1], y = source[2], k = source[3];
            if (!inverted) { c = 255 - c; m = 255 - m; y = 255 - y; k = 255 - k; }
            unsigned char r = (unsigned char)((c * k + 127) / 255);
            unsigned char g = (unsigned char)((m * k + 127) / 255);
            unsigned char b = (unsigned char)((y * k + 127) / 255);
            target[0] = r; target[1] = g; target[2] = b;
        }
        components = 3;
    }

    jpeg_finish_decompress(&info);
    jpeg_destroy_decompress(&info);
    out->width = width;
    out->height = height;
    out->channels = (int)components;
    out->bit_depth = 8;
    return 1;
}
