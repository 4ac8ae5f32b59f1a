// Helpers for the tests that drive real files through the module: numbered
// records, reading them back, the counters the module reports when it closes
// a file, a small tmpfs to fill, and a FIFO that stalls the writer on demand.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <source_location>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace testing {

// Polls `condition` every 5 ms until it holds or `limit` passes.
bool wait_until(const std::function<bool()> &condition, std::chrono::milliseconds limit = std::chrono::seconds(10));

// Logs connection-failure records numbered first .. first+count-1 (the number
// is the binding slot, so each line says which call wrote it).
void log_numbered(Harness &h, int first, int count);
// The numbers of the records in a mainlog file of such records.
std::vector<int> numbers_in(const std::string &path);
// Every line is one whole numbered record, and the file ends with a newline.
void check_whole_lines(const std::string &path);

// The counters the module reported for `path` when it closed it.
std::map<std::string, long long> closing_counters(const Harness &h, const std::string &path);
// The counters of `path` in the answer to the `stats` control command.
std::map<std::string, long long> stats_counters(Harness &h, const std::string &path);
// accepted == written + dropped_* and calls == accepted + dropped_overflow.
void check_accounting(const std::map<std::string, long long> &c, long long calls);

// A tmpfs mounted at <parent>/small for the test's lifetime (root only).
class SmallFilesystem {
public:
    SmallFilesystem(const TempDir &parent, const std::string &options);
    ~SmallFilesystem();
    SmallFilesystem(const SmallFilesystem &) = delete;
    SmallFilesystem &operator=(const SmallFilesystem &) = delete;
    // True when mounted; otherwise false with a warning naming the calling
    // test's line and the mount's error.
    [[nodiscard]] bool usable(std::source_location where = std::source_location::current()) const;
    [[nodiscard]] std::string operator/(const std::string &name) const { return dir_ + "/" + name; }

    // Fills the filesystem with `name` until a write fails with ENOSPC.
    static void fill(const std::string &name);

private:
    bool mounted_ = false;
    int mount_errno_ = 0;
    std::string dir_;
};

// A FIFO at `path`, opened for reading (non-blocking) so that the module can
// open it as its log file. Until read, the writer thread stalls in write(2)
// once 64 KiB wait in the pipe.
class Fifo {
public:
    explicit Fifo(const std::string &path);
    ~Fifo();
    Fifo(const Fifo &) = delete;
    Fifo &operator=(const Fifo &) = delete;
    [[nodiscard]] std::size_t waiting() const; // bytes in the pipe
    [[nodiscard]] std::size_t capacity() const;
    void drain(std::string &into); // reads what is there now
    void close_reader();

private:
    int fd_ = -1;
};

using Clock = std::chrono::steady_clock;
inline long long millis_since(Clock::time_point start)
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

} // namespace testing
