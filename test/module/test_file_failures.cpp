// The files through the real module: a missed reopen (mv, rm) noticed and
// repaired, a full disk on a real small filesystem under both overflow
// policies, unload while threads keep calling hooks, the modes of rotated
// files, a header the full disk refused, and a rotation that cannot create
// its new file.
#include <catch2/catch.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <fcntl.h>
#include <functional>
#include <filesystem>
#include <map>
#include <numeric>
#include <sys/mount.h>
#include <thread>
#include <unistd.h>

#include "file_checks.hpp"

namespace fs = std::filesystem;

using testing::check_whole_lines;
using testing::closing_counters;
using testing::SmallFilesystem;
using testing::wait_until;

using testing::log_numbered;
using testing::numbers_in;

TEST_CASE("a log file moved away without a reopen is noticed and reopened within the interval", "[files]")
{
    testing::TempDir dir;
    const std::string path = dir / "m.log";
    testing::Harness h(dir, "mainlog = \"" + path + "\"\nreopen_check_interval = 50ms\nflush_interval = 5ms");
    REQUIRE(h.error().empty());
    log_numbered(h, 0, 10);
    REQUIRE(wait_until([&] { return numbers_in(path).size() == 10; }));
    fs::rename(path, path + ".moved"); // an operator's mv, no reopen
    log_numbered(h, 10, 10);
    REQUIRE(wait_until([&] { return fs::exists(path); })); // recreated by the module itself
    log_numbered(h, 20, 10);
    h.stop();
    const auto moved = numbers_in(path + ".moved");
    const auto fresh = numbers_in(path);
    CHECK(moved.size() + fresh.size() == 30);
    for (int i = 20; i < 30; ++i) // everything after the recovery is in the new file
        CHECK(std::find(fresh.begin(), fresh.end(), i) != fresh.end());
    const auto counters = closing_counters(h, path);
    CHECK(counters.at("missed_reopens") == 1);
    CHECK(counters.at("detached_records") >= static_cast<long long>(moved.size()) - 10);
    CHECK(counters.at("detached_records") <= static_cast<long long>(moved.size()));
}

TEST_CASE("a log file deleted without a reopen is recreated; the gap is counted", "[files]")
{
    testing::TempDir dir;
    const std::string path = dir / "m.log";
    testing::Harness h(dir, "mainlog = \"" + path + "\"\nreopen_check_interval = 50ms\nflush_interval = 5ms");
    REQUIRE(h.error().empty());
    log_numbered(h, 0, 10);
    REQUIRE(wait_until([&] { return numbers_in(path).size() == 10; }));
    fs::remove(path); // an operator's rm
    log_numbered(h, 10, 10);
    REQUIRE(wait_until([&] { return fs::exists(path); }));
    log_numbered(h, 20, 10);
    h.stop();
    const auto fresh = numbers_in(path);
    const auto counters = closing_counters(h, path);
    CHECK(counters.at("missed_reopens") == 1);
    long long middle_in_new = 0;
    for (int slot : fresh)
        middle_in_new += (slot >= 10 && slot < 20) ? 1 : 0;
    CHECK(middle_in_new + counters.at("detached_records") >= 10); // lost ones are counted
    for (int i = 20; i < 30; ++i)
        CHECK(std::find(fresh.begin(), fresh.end(), i) != fresh.end());
}

TEST_CASE("full disk, overflow = drop: no partial line, nothing uncounted, logging resumes", "[files][disk]")
{
    testing::TempDir dir;
    SmallFilesystem small(dir, "size=256k");
    if (!small.usable())
        return;
    const std::string path = small / "m.log";
    testing::Harness h(dir, "mainlog = \"" + path + "\"\noverflow = drop\nflush_interval = 5ms\nqueue_size = 4096");
    REQUIRE(h.error().empty());
    log_numbered(h, 0, 100);
    REQUIRE(wait_until([&] { return numbers_in(path).size() == 100; }));
    SmallFilesystem::fill(small / "filler");
    log_numbered(h, 100, 2000); // the disk is full: these fail
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    fs::remove(small / "filler");
    std::this_thread::sleep_for(std::chrono::milliseconds(1200)); // past the drop-mode retry pause
    log_numbered(h, 2100, 100);
    h.stop();
    check_whole_lines(path);
    const auto c = closing_counters(h, path);
    const auto lines = static_cast<long long>(numbers_in(path).size());
    CHECK(c.at("accepted") + c.at("dropped_overflow") == 2200);
    CHECK(c.at("accepted") == c.at("written") + c.at("dropped_write_error"));
    CHECK(c.at("written") == lines);
    CHECK(c.at("dropped_write_error") > 0);
    CHECK(c.at("write_errors") > 0);
    const auto slots = numbers_in(path);
    for (int i = 2100; i < 2200; ++i) // logging resumed by itself
        CHECK(std::find(slots.begin(), slots.end(), i) != slots.end());
    WARN("full disk, drop: accepted " << c.at("accepted") << ", written " << c.at("written")
                                      << ", dropped_write_error " << c.at("dropped_write_error")
                                      << ", dropped_overflow " << c.at("dropped_overflow"));
}

TEST_CASE("full disk, overflow = block: accepted records all reach the file once space returns", "[files][disk]")
{
    testing::TempDir dir;
    SmallFilesystem small(dir, "size=256k");
    if (!small.usable())
        return;
    const std::string path = small / "m.log";
    testing::Harness h(dir, "mainlog = \"" + path +
                                "\"\noverflow = block\noverflow_timeout = 20ms\nflush_interval = 5ms\nqueue_size = 64");
    REQUIRE(h.error().empty());
    SmallFilesystem::fill(small / "filler");
    std::atomic<long long> slowest_ns{0};
    std::thread mta([&] { // an MTA thread: waits up to 20 ms a call once the queue is full
        for (int i = 0; i < 200; ++i) {
            const auto start = std::chrono::steady_clock::now();
            log_numbered(h, i, 1);
            const long long ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now() - start)
                                     .count();
            slowest_ns.store(std::max(slowest_ns.load(), ns));
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    fs::remove(small / "filler");
    mta.join();
    log_numbered(h, 200, 50);
    h.stop();
    check_whole_lines(path);
    const auto c = closing_counters(h, path);
    CHECK(c.at("accepted") + c.at("dropped_overflow") == 250);
    CHECK(c.at("dropped_write_error") == 0); // nothing accepted was lost
    CHECK(c.at("accepted") == c.at("written"));
    CHECK(c.at("written") == static_cast<long long>(numbers_in(path).size()));
    CHECK(c.at("write_errors") > 0);
    CHECK(c.at("dropped_overflow") > 0); // the queue really filled and calls really waited
    CHECK(slowest_ns.load() / 1000000 <= 20 + 250); // overflow_timeout, and scheduling slack for sanitizer builds
    WARN("full disk, block: accepted " << c.at("accepted") << ", written " << c.at("written")
                                       << ", dropped_overflow " << c.at("dropped_overflow") << ", slowest hook call "
                                       << slowest_ns.load() / 1000 << " us");
}

TEST_CASE("unload while 4 threads call hooks: every accepted record is written whole", "[files][unload][concurrency]")
{
    testing::TempDir dir;
    const std::string path = dir / "m.log";
    testing::Harness h(dir, "mainlog = \"" + path + "\"");
    REQUIRE(h.error().empty());
    std::atomic<bool> go{true};
    std::atomic<long> calls{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            timeval now{1700000000, 0};
            while (go.load()) {
                h.core().log_connection_failure(nullptr, 0, nullptr, 7, &now);
                calls.fetch_add(1);
            }
        });
    REQUIRE(wait_until([&] { return calls.load() > 20000; }));
    h.stop(); // unregisters while calls are in flight, then drains and unloads
    const long after_stop = calls.load();
    REQUIRE(wait_until([&] { return calls.load() > after_stop + 1000; })); // calls go on, reaching nothing
    go.store(false);
    for (auto &t : threads)
        t.join();
    check_whole_lines(path);
    const auto c = closing_counters(h, path);
    CHECK(c.at("accepted") == c.at("written"));
    CHECK(c.at("written") == static_cast<long long>(testing::read_lines(path).size()));
    CHECK(c.at("written") > 20000);
    CHECK_FALSE(testing::maps_contain("/mtalog.so"));
}

TEST_CASE("a log directory that cannot be written is a config error, before anything is opened", "[files]")
{
    testing::TempDir dir;
    fs::create_directory(dir / "ro");
    if (::geteuid() != 0 || ::mount("tmpfs", (dir / "ro").c_str(), "tmpfs", MS_RDONLY, "size=64k") != 0) {
        WARN("skipped: mounting a read-only tmpfs needs root");
        return;
    }
    testing::Harness h(dir, "mainlog = \"" + dir / "ro/m.log" + "\"");
    ::umount2((dir / "ro").c_str(), MNT_DETACH);
    CHECK(h.error() == dir / "mtacore.conf" + ":3:12: log file \"" + dir / "ro/m.log" + "\": directory \"" + dir / "ro" +
                           "\" is not writable");
}

TEST_CASE("a lone record reaches its file within the flush interval, without more traffic", "[files]")
{
    testing::TempDir dir;
    const std::string path = dir / "m.log";
    testing::Harness h(dir, "mainlog = \"" + path + "\"\nflush_interval = 20ms");
    REQUIRE(h.error().empty());
    log_numbered(h, 0, 1); // one record: far below a batch, so only the flusher can move it
    // Generous bound (two intervals are promised): this checks that it arrives at all.
    CHECK(wait_until([&] { return numbers_in(path).size() == 1; }, std::chrono::seconds(5)));
}

TEST_CASE("rotated and compressed files keep the mode of the file they came from", "[files][rotation][compress]")
{
    const std::string compress = GENERATE(std::string("gzip"), std::string("zstd"));
    const std::string extension = compress == "gzip" ? ".gz" : ".zst";
    testing::TempDir dir;
    const std::string own = dir / "c.log", shared = dir / "m.log";
    // The instance's log_mode (0640) is not the connection-failure file's.
    testing::Harness h(dir, "mainlog = \"" + shared + "\"\nconnection_failure_logfile = \"" + own +
                                "\"\nconnection_failure_log_mode = 0600\nrotate_size = 2k\nrotate_keep = 100\n"
                                "compress = " + compress + "\nflush_interval = 5ms");
    REQUIRE(h.error().empty());
    for (int i = 0; i < 8; ++i) { // several rotations, one batch at a time
        log_numbered(h, i * 100, 100);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    h.stop(); // waits for the compressions already queued
    int compressed = 0;
    for (const auto &entry : fs::directory_iterator(dir.path())) {
        const std::string name = entry.path().filename().string();
        if (!name.starts_with("c.log."))
            continue;
        INFO(name);
        CHECK(name.ends_with(extension));
        CHECK((entry.status().permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));
        ++compressed;
    }
    CHECK(compressed >= 3);
    CHECK((fs::status(own).permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));
}

TEST_CASE("a header line the full disk refused is written before the first record once space returns",
          "[files][disk]")
{
    testing::TempDir dir;
    SmallFilesystem small(dir, "size=256k");
    if (!small.usable())
        return;
    const std::string path = small / "c.csv";
    SmallFilesystem::fill(small / "filler"); // the file can be created, its header cannot be written
    testing::Harness h(dir, "connection_failure_logfile = \"" + path +
                                "\"\nconnection_failure_format = csv\nlog_attempts = off\nlog_permanent_failures = off\n"
                                "flush_interval = 5ms\noverflow = drop");
    REQUIRE(h.error().empty());
    REQUIRE(fs::exists(path));
    CHECK(fs::file_size(path) == 0);
    fs::remove(small / "filler");
    log_numbered(h, 0, 3);
    h.stop();
    const auto lines = testing::read_lines(path);
    REQUIRE(lines.size() == 4);
    CHECK(lines[0].rfind("type,timestamp,", 0) == 0);
    for (std::size_t i = 1; i < lines.size(); ++i)
        CHECK(lines[i].rfind("connection_failure,", 0) == 0);
}

TEST_CASE("a rotation that cannot create the new file retries it, and is not reported as a deleted file",
          "[files][rotation]")
{
    testing::TempDir dir;
    SmallFilesystem small(dir, "size=4m,nr_inodes=16");
    if (!small.usable())
        return;
    const std::string path = small / "m.log";
    testing::Harness h(dir, "mainlog = \"" + path +
                                "\"\nrotate_size = 1k\nrotate_keep = 100\nreopen_check_interval = 20ms\nflush_interval = 5ms");
    REQUIRE(h.error().empty());
    std::vector<std::string> fillers; // every free inode taken: renaming works, creating does not
    for (int i = 0; i < 64; ++i) {
        const std::string name = small / ("filler" + std::to_string(i));
        const int fd = ::open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
            break;
        ::close(fd);
        fillers.push_back(name);
    }
    REQUIRE(!fillers.empty());
    log_numbered(h, 0, 100); // > 1k: rotates; the new file cannot be created
    REQUIRE(wait_until([&] { return !fs::exists(path); }));
    std::this_thread::sleep_for(std::chrono::milliseconds(200)); // ten identity checks
    fs::remove(fillers.back()); // an inode is free again
    REQUIRE(wait_until([&] { return fs::exists(path); }));
    log_numbered(h, 100, 10);
    h.stop();

    std::vector<int> all;
    for (const auto &entry : fs::directory_iterator(small / "")) {
        const std::string name = entry.path().filename().string();
        if (name.starts_with("m.log"))
            for (int n : numbers_in(entry.path().string()))
                all.push_back(n);
    }
    std::sort(all.begin(), all.end());
    std::vector<int> expected(110);
    std::iota(expected.begin(), expected.end(), 0);
    CHECK(all == expected);
    const auto c = closing_counters(h, path);
    CHECK(c.at("missed_reopens") == 0);
    CHECK(c.at("rotation_errors") >= 1);
    CHECK(c.at("rotations") >= 1);
    for (const auto &p : h.panics())
        CHECK(p.find("without a reopen") == std::string::npos);
}
