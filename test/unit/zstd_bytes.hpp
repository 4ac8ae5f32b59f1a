// Text compressed as one zstd frame, for the shipper's reader and follower tests.
#pragma once

#include <catch2/catch.hpp>

#include <string>
#include <zstd.h>

inline std::string zstd_bytes(const std::string &text)
{
    std::string out(ZSTD_compressBound(text.size()), '\0');
    const std::size_t n = ZSTD_compress(out.data(), out.size(), text.data(), text.size(), 3);
    REQUIRE_FALSE(ZSTD_isError(n));
    out.resize(n);
    return out;
}
