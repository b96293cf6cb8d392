#ifndef RELAY_CZLIB_SHIM_H
#define RELAY_CZLIB_SHIM_H
#include <zlib.h>

// deflateInit2/inflateInit2 are macros, which Swift cannot call. windowBits 31 = gzip framing.
static inline int relay_deflate_init_gzip(z_streamp stream, int level) {
    return deflateInit2(stream, level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
}
static inline int relay_inflate_init_gzip(z_streamp stream) {
    return inflateInit2(stream, 47); // 32 + 15: detect gzip or zlib framing
}
#endif
