// Vector operations the engine's Swift kernels cannot spell so that they compile to one
// instruction: header-only, inlined where they are used.
#ifndef CNNLAB_KERNELS_H
#define CNNLAB_KERNELS_H

typedef float cnn_float8 __attribute__((ext_vector_type(8)));

/// a · b + c in each of eight lanes, rounded once (one FMA instruction on x86-64 with FMA3 and
/// on ARM64). Swift's own SIMD8 addingProduct is written lane by lane, and inside a larger
/// function the compiler had put it back together only in part, with scalar multiply-adds and
/// shuffles in between.
static inline __attribute__((always_inline)) cnn_float8 cnn_fma8(cnn_float8 a, cnn_float8 b, cnn_float8 c) {
    return __builtin_elementwise_fma(a, b, c);
}

#endif
