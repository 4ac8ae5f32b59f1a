// The files through the real module: a missed reopen (mv, rm) noticed and
// repaired, a full disk on a real small filesystem under both overflow
// policies, and unload while threads keep calling hooks.
#include <catch2/catch.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <fcntl.h>
#include <functional>
#include <filesystem>
#include <map>
#include <sys/mount.h>
#include <thread>
#include <unistd.h>

#include "test_support.hpp"

namespace fs = std::filesystem;

namespace {

bool wait_until(const std::function<bool()> &condition, std::chrono::milliseconds limit = std::chrono::seconds(10))
{
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > end)
            return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

void log_batch(testing::Harness &h, int first, int count)
{
    for (int i = first; i < first + count; ++i) {
        timeval now{1700000000, 0};
        h.core().log_connection_failure(nullptr, 0, nullptr, i, &now);
    }
}

// The slots (record numbers) of the C records in a file.
std::vector<int> slots_in(const std::string &path)
{
    std::vector<int> slots;
    for (const auto &line : testing::read_lines(path)) {
        // 1700000000@@@@C@@@@@<slot>@0@
        const auto end = line.rfind("@0@");
        const auto start = line.rfind('@', end - 1);
        slots.push_back(std::stoi(line.substr(start + 1, end - start - 1)));
    }
    return slots;
}

// The counters the module reported for `path` when it closed it.
std::map<std::string, long long> closing_counters(const testing::Harness &h, const std::string &path)
{
    std::map<std::string, long long> counters;
    for (const auto &p : h.panics()) {
        const std::string key = "closed \"" + path + "\": ";
        const auto at = p.find(key);
        if (at == std::string::npos)
            continue;
        std::string rest = p.substr(at + key.size());
        std::size_t pos = 0;
        while (pos < rest.size()) {
            auto space = rest.find(' ', pos);
            if (space == std::string::npos)
                space = rest.size();
            const std::string item = rest.substr(pos, space - pos);
            const auto eq = item.find('=');
            counters[item.substr(0, eq)] = std::stoll(item.substr(eq + 1));
            pos = space + 1;
        }
    }
    return counters;
}

// A small tmpfs mounted at <parent>/small for the test's lifetime, or
// nothing without root.
class SmallFilesystem {
public:
    SmallFilesystem(const testing::TempDir &parent, const char *size)
    {
        const std::string dir = parent / "small";
        fs::create_directory(dir);
        if (::geteuid() == 0)
            mounted_ = ::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
                               (std::string("size=") + size + ",mode=0755").c_str()) == 0;
        if (mounted_)
            dir_ = dir;
    }
    ~SmallFilesystem()
    {
        if (mounted_)
            ::umount2(dir_.c_str(), MNT_DETACH);
    }
    [[nodiscard]] bool mounted() const { return mounted_; }
    [[nodiscard]] std::string operator/(const std::string &name) const { return dir_ + "/" + name; }

    // Fills the filesystem with `name` until a write fails with ENOSPC.
    static void fill(const std::string &name)
    {
        const int fd = ::open(name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        REQUIRE(fd >= 0);
        char block[4096] = {};
        ssize_t n;
        while ((n = ::write(fd, block, sizeof block)) > 0) {
        }
        while ((n = ::write(fd, block, 1)) > 0) {
        }
        CHECK(errno == ENOSPC);
        ::close(fd);
    }

private:
    bool mounted_ = false;
    std::string dir_;
};

// Every line of the file is a whole C record, and the file ends with a newline.
void check_whole_lines(const std::string &path)
{
    const std::string text = testing::read_file(path);
    if (!text.empty())
        CHECK(text.back() == '\n');
    std::size_t broken = 0;
    std::string first_broken;
    for (const auto &line : testing::read_lines(path)) {
        if (!line.starts_with("1700000000@@@@C@@@") || !line.ends_with("@0@")) {
            if (broken++ == 0)
                first_broken = line;
        }
    }
    INFO("first broken line: " << first_broken);
    CHECK(broken == 0);
}

} // namespace

TEST_CASE("a log file moved away without a reopen is noticed and reopened within the interval", "[files]")
{
    testing::TempDir dir;
    const std::string path = dir / "m.log";
    testing::Harness h(dir, "mainlog = \"" + path + "\"\nreopen_check_interval = 50ms\nflush_interval = 5ms");
    REQUIRE(h.error().empty());
    log_batch(h, 0, 10);
    REQUIRE(wait_until([&] { return slots_in(path).size() == 10; }));
    fs::rename(path, path + ".moved"); // an operator's mv, no reopen
    log_batch(h, 10, 10);
    REQUIRE(wait_until([&] { return fs::exists(path); })); // recreated by the module itself
    log_batch(h, 20, 10);
    h.stop();
    const auto moved = slots_in(path + ".moved");
    const auto fresh = slots_in(path);
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
    log_batch(h, 0, 10);
    REQUIRE(wait_until([&] { return slots_in(path).size() == 10; }));
    fs::remove(path); // an operator's rm
    log_batch(h, 10, 10);
    REQUIRE(wait_until([&] { return fs::exists(path); }));
    log_batch(h, 20, 10);
    h.stop();
    const auto fresh = slots_in(path);
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
    SmallFilesystem small(dir, "256k");
    if (!small.mounted()) {
        WARN("skipped: mounting a small tmpfs needs root");
        return;
    }
    const std::string path = small / "m.log";
    testing::Harness h(dir, "mainlog = \"" + path + "\"\noverflow = drop\nflush_interval = 5ms\nqueue_size = 4096");
    REQUIRE(h.error().empty());
    log_batch(h, 0, 100);
    REQUIRE(wait_until([&] { return slots_in(path).size() == 100; }));
    SmallFilesystem::fill(small / "filler");
    log_batch(h, 100, 2000); // the disk is full: these fail
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    fs::remove(small / "filler");
    std::this_thread::sleep_for(std::chrono::milliseconds(1200)); // past the drop-mode retry pause
    log_batch(h, 2100, 100);
    h.stop();
    check_whole_lines(path);
    const auto c = closing_counters(h, path);
    const auto lines = static_cast<long long>(slots_in(path).size());
    CHECK(c.at("accepted") + c.at("dropped_overflow") == 2200);
    CHECK(c.at("accepted") == c.at("written") + c.at("dropped_write_error"));
    CHECK(c.at("written") == lines);
    CHECK(c.at("dropped_write_error") > 0);
    CHECK(c.at("write_errors") > 0);
    const auto slots = slots_in(path);
    for (int i = 2100; i < 2200; ++i) // logging resumed by itself
        CHECK(std::find(slots.begin(), slots.end(), i) != slots.end());
    WARN("full disk, drop: accepted " << c.at("accepted") << ", written " << c.at("written")
                                      << ", dropped_write_error " << c.at("dropped_write_error")
                                      << ", dropped_overflow " << c.at("dropped_overflow"));
}

TEST_CASE("full disk, overflow = block: accepted records all reach the file once space returns", "[files][disk]")
{
    testing::TempDir dir;
    SmallFilesystem small(dir, "256k");
    if (!small.mounted()) {
        WARN("skipped: mounting a small tmpfs needs root");
        return;
    }
    const std::string path = small / "m.log";
    testing::Harness h(dir, "mainlog = \"" + path +
                                "\"\noverflow = block\noverflow_timeout = 20ms\nflush_interval = 5ms\nqueue_size = 64");
    REQUIRE(h.error().empty());
    SmallFilesystem::fill(small / "filler");
    std::atomic<long long> slowest_ns{0};
    std::thread mta([&] { // an MTA thread: waits up to 20 ms a call once the queue is full
        for (int i = 0; i < 200; ++i) {
            const auto start = std::chrono::steady_clock::now();
            log_batch(h, i, 1);
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
    log_batch(h, 200, 50);
    h.stop();
    check_whole_lines(path);
    const auto c = closing_counters(h, path);
    CHECK(c.at("accepted") + c.at("dropped_overflow") == 250);
    CHECK(c.at("dropped_write_error") == 0); // nothing accepted was lost
    CHECK(c.at("accepted") == c.at("written"));
    CHECK(c.at("written") == static_cast<long long>(slots_in(path).size()));
    CHECK(c.at("write_errors") > 0);
    CHECK(c.at("dropped_overflow") > 0); // the queue really filled and calls really waited
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
    log_batch(h, 0, 1); // one record: far below a batch, so only the flusher can move it
    // Generous bound (two intervals are promised): this checks that it arrives at all.
    CHECK(wait_until([&] { return slots_in(path).size() == 1; }, std::chrono::seconds(5)));
}
