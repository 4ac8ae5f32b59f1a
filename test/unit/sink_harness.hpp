// A LogFileSink driven by hand, as the writer thread drives it, for the
// sink's unit tests: an injected wall clock, batches of one line, reopen
// markers; and a failing disk (RLIMIT_FSIZE) in a child process.
#pragma once

#include <catch2/catch.hpp>

#include <csignal>
#include <ctime>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "core.hpp"
#include "log_file_sink.hpp"
#include "test_support.hpp"

namespace mtalog::sink_test {

struct SinkHarness {
    mtacore::Core core;
    Diagnostics diag{core.c_api(), "mtalog \"test\""};
    FileCounters counters;
    std::unique_ptr<Compressor> compressor;
    std::time_t now = 1700002799; // 2023-11-14T22:59:59Z
    int clock_calls = 0;
    int throw_at = -1; // the clock reading that throws (an error inside the sink)
    std::shared_ptr<LogFileSink> sink;

    explicit SinkHarness(SinkOptions options)
    {
        core.set_panic_sink([](int, std::string_view, std::string_view) {});
        if (options.compress != mtacfg::Compression::none)
            compressor = std::make_unique<Compressor>(options.compress, diag);
        sink = std::make_shared<LogFileSink>(std::move(options), counters, diag, nullptr, compressor.get(),
                                             [this] {
                                                 if (++clock_calls == throw_at)
                                                     throw std::runtime_error("no clock");
                                                 return now;
                                             });
        REQUIRE_FALSE(sink->open().has_value());
    }
    void put(const std::string &record) // a batch of one line, as staging hands the sink
    {
        const std::string line = record + "\n";
        spdlog::details::log_msg msg(spdlog::source_loc{}, "t", spdlog::level::info, line);
        sink->log(msg);
    }
    void reopen_marker() // log_reopen's message, as the queue hands it over
    {
        spdlog::details::log_msg msg(spdlog::source_loc{}, "t", LogFileSink::kReopenLevel, "");
        sink->log(msg);
    }
    void done()
    {
        sink->finish();
        if (compressor)
            compressor->stop();
    }
};

inline std::string record(int i)
{
    char buf[64];
    std::snprintf(buf, sizeof buf, "record %04d ........................................", i);
    return buf; // 52 bytes + newline
}

// Every line of `files`, in order.
inline std::vector<std::string> all_lines(const std::vector<std::string> &files)
{
    std::vector<std::string> lines;
    for (const auto &f : files)
        for (auto &l : testing::read_lines(f))
            lines.push_back(std::move(l));
    return lines;
}

// Runs `body` in a child process (so that the file size limit it sets,
// RLIMIT_FSIZE, the failing disk, ends with it), with SIGXFSZ ignored (EFBIG
// instead); true when the child ended with `body` returning true.
inline bool in_child_with_disk_limit(const std::function<bool(const std::function<bool(rlim_t)> &limit)> &body)
{
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::signal(SIGXFSZ, SIG_IGN);
        const auto limit = [](rlim_t bytes) {
            const rlimit l{bytes, RLIM_INFINITY};
            return ::setrlimit(RLIMIT_FSIZE, &l) == 0;
        };
        try {
            ::_exit(body(limit) ? 0 : 1);
        } catch (...) { // a failed REQUIRE: never let the child run the rest of the suite
            ::_exit(2);
        }
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}


} // namespace mtalog::sink_test
