// Compresses rotated files on its own thread, never the writer's: X is
// compressed into X.gz.tmp (or .zst.tmp), fsynced, renamed to X.gz, the
// directory fsynced, then X is removed, so neither a crash nor a power loss
// leaves a half-compressed file under the final name or loses both forms.
// The compressed file gets the mode of the file it came from. Retention
// (rotate_keep) runs here too, after each file, so it never counts a file
// being compressed twice or deletes one under the compressor. stop()
// finishes the queue and joins.
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

    // Queues `path` (a rotated file of `log_path`) for compression;
    // `counters` gets compressed/failed counts. Then the rotated files of
    // `log_path` beyond `keep` are deleted (0: none), but none still queued.
    void submit(std::string path, FileCounters *counters, std::string log_path = {}, std::size_t keep = 0);
    void stop() noexcept;

    // Compresses one file in the calling thread: "" or the error (which
    // says what was left).
    static std::string compress_file(const std::string &path, mtacfg::Compression kind);
    static const char *extension(mtacfg::Compression kind);

private:
    struct Job {
        std::string path;
        FileCounters *counters;
        std::string log_path;
        std::size_t keep;
    };
    void apply_retention_after(const Job &job); // with mutex_ not held
    static std::string compress_into_place(const std::string &path, mtacfg::Compression kind);
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
