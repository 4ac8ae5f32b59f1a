// Compresses rotated files on its own thread, never the writer's: X is
// compressed into X.gz.tmp (or .zst.tmp), renamed to X.gz, then X is
// removed, so a crash never leaves a half-compressed file under the final
// name. The compressed file gets the mode of the file it came from.
// stop() finishes the queue and joins.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "counters.hpp"
#include "diagnostics.hpp"
#include "mtalog_options.hpp"

namespace mtalog {

class Compressor {
public:
    Compressor(mtacfg::Compression kind, const Diagnostics &diag);
    ~Compressor();
    Compressor(const Compressor &) = delete;
    Compressor &operator=(const Compressor &) = delete;

    // Queues `path` for compression; `counters` gets compressed/failed counts.
    void submit(std::string path, FileCounters *counters);
    void stop() noexcept;

    // Compresses one file in the calling thread: "" or the error.
    static std::string compress_file(const std::string &path, mtacfg::Compression kind);
    static const char *extension(mtacfg::Compression kind);

private:
    struct Job {
        std::string path;
        FileCounters *counters;
    };
    void run();

    mtacfg::Compression kind_;
    const Diagnostics &diag_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Job> jobs_;
    bool stopping_ = false;
    std::thread thread_;
};

} // namespace mtalog
