// What every record line must satisfy, checked by the fuzz targets: valid
// UTF-8, no control byte, no line break. A violation aborts, so libFuzzer
// saves the input as a crash.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "escape.hpp"

namespace fuzzing {

inline void require(bool ok, const char *what, std::string_view line)
{
    if (ok)
        return;
    std::fprintf(stderr, "invariant violated: %s\nline: %.*s\n", what, static_cast<int>(line.size()), line.data());
    std::abort();
}

inline void check_line(std::string_view line)
{
    for (std::size_t i = 0; i < line.size();) {
        const auto c = static_cast<unsigned char>(line[i]);
        require(c >= 0x20 && c != 0x7F, "control byte in a record", line);
        const std::size_t n = mtalog::utf8_sequence_length(line.substr(i));
        require(n > 0, "invalid UTF-8 in a record", line);
        const auto next = n > 1 ? static_cast<unsigned char>(line[i + 1]) : 0;
        require(!(c == 0xC2 && next <= 0x9F && n == 2), "a C1 control in a record", line);
        require(!(c == 0xE2 && next == 0x80 && n == 3 &&
                  (static_cast<unsigned char>(line[i + 2]) == 0xA8 || static_cast<unsigned char>(line[i + 2]) == 0xA9)),
                "U+2028 or U+2029 in a record", line);
        i += n;
    }
}

} // namespace fuzzing
