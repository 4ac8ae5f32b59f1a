// mtacore's command line: the options, their checks, and --help's text.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace mtacore::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;
inline constexpr int kExitConfig = 2;
inline constexpr int kExitUsage = 64;

struct Args {
    std::string config;
    bool check = false;
    std::string replay;
    bool have_generate = false;
    std::uint64_t generate = 0;
    std::optional<std::chrono::microseconds> duration;
    double rate = 0; // 0: unpaced
    unsigned threads = 4;
    std::uint64_t seed = 1;
    unsigned reopens = 1;
    bool quiet = false;
    std::string pidfile;

    // --duration alone generates too, with no limit on the calls.
    [[nodiscard]] bool generating() const { return have_generate || duration.has_value(); }
};

// -1: carry on; otherwise the exit status (--help, --version, a usage error).
int parse_args(int argc, char **argv, Args &args);

} // namespace mtacore::cli
