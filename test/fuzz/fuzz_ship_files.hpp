// What the shipper's fuzz targets share: the input as a file (the code under
// test reads paths), one per process in /dev/shm, and an abort that
// libFuzzer saves as a crash.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <unistd.h>

namespace fuzzing {

// Writes `data` to a file of this process named with `suffix`; its path.
inline std::string as_file(std::string_view data, const std::string &suffix)
{
    const std::string path = "/dev/shm/mtalog-fuzz-" + std::to_string(::getpid()) + suffix;
    std::FILE *f = std::fopen(path.c_str(), "wb");
    if (f == nullptr || std::fwrite(data.data(), 1, data.size(), f) != data.size() || std::fclose(f) != 0)
        std::abort(); // the machine, not the input
    return path;
}

inline void expect(bool ok, const char *what)
{
    if (ok)
        return;
    std::fprintf(stderr, "invariant violated: %s\n", what);
    std::abort();
}

} // namespace fuzzing
