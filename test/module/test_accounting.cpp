// Exact accounting when memory runs out: this program replaces operator new
// (the module's and spdlog's allocations resolve to it) and fails one chosen
// allocation, on the calling thread or on the writer thread. Whatever fails,
// accepted = written + dropped_write_error + dropped_internal, and hook calls
// = accepted + dropped_overflow, counted per record, not per batch.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>
#include <pthread.h>
#include <thread>

#include "file_checks.hpp"

namespace {

enum class FailOn { nothing, this_thread, other_threads };

std::atomic<FailOn> g_fail_on{FailOn::nothing};
std::atomic<std::size_t> g_min_size{0};
std::atomic<pthread_t> g_thread{};
std::atomic<int> g_failed{0};

// Fails the first allocation of at least g_min_size bytes on the chosen
// threads, once.
bool fail_this(std::size_t size) noexcept
{
    FailOn mode = g_fail_on.load(std::memory_order_relaxed);
    if (mode == FailOn::nothing || size < g_min_size.load(std::memory_order_relaxed))
        return false;
    const bool mine = pthread_equal(pthread_self(), g_thread.load(std::memory_order_relaxed)) != 0;
    if ((mode == FailOn::this_thread) != mine)
        return false;
    if (!g_fail_on.compare_exchange_strong(mode, FailOn::nothing))
        return false;
    g_failed.fetch_add(1);
    return true;
}

void *allocate(std::size_t size)
{
    if (fail_this(size))
        throw std::bad_alloc();
    if (void *p = std::malloc(size == 0 ? 1 : size))
        return p;
    throw std::bad_alloc();
}

void arm(FailOn where, std::size_t min_size)
{
    g_failed.store(0);
    g_thread.store(pthread_self());
    g_min_size.store(min_size);
    g_fail_on.store(where);
}

} // namespace

void *operator new(std::size_t size) { return allocate(size); }
void *operator new[](std::size_t size) { return allocate(size); }
void operator delete(void *p) noexcept { std::free(p); }
void operator delete[](void *p) noexcept { std::free(p); }
void operator delete(void *p, std::size_t) noexcept { std::free(p); }
void operator delete[](void *p, std::size_t) noexcept { std::free(p); }
// Every unaligned form, so that none pairs a sanitizer's allocator with free().
void *operator new(std::size_t size, const std::nothrow_t &) noexcept { return std::malloc(size == 0 ? 1 : size); }
void *operator new[](std::size_t size, const std::nothrow_t &) noexcept { return std::malloc(size == 0 ? 1 : size); }
void operator delete(void *p, const std::nothrow_t &) noexcept { std::free(p); }
void operator delete[](void *p, const std::nothrow_t &) noexcept { std::free(p); }

TEST_CASE("a batch that gets no buffer from the pool counts each of its records as dropped_internal",
          "[accounting]")
{
    testing::TempDir dir;
    const std::string path = dir / "m.log";
    testing::Harness h(dir, "mainlog = \"" + path + "\"\nflush_interval = 60s");
    REQUIRE(h.error().empty());
    testing::log_numbered(h, 0, 1024); // one whole batch: the stage now holds a pool buffer
    testing::log_numbered(h, 1024, 1023);
    // The hand-off's empty batch: no idle one has its full size yet (the
    // writer gave back its own first, small buffer, or nothing), so the pool
    // must reserve one.
    arm(FailOn::this_thread, 16 * 1024);
    testing::log_numbered(h, 2047, 1);
    g_fail_on.store(FailOn::nothing);
    CHECK(g_failed.load() == 1);
    testing::log_numbered(h, 2048, 10);
    h.stop();
    const auto c = testing::closing_counters(h, path);
    testing::check_accounting(c, 2058);
    CHECK(c.at("dropped_internal") == 1024);
    CHECK(c.at("written") == 1034);
    CHECK(c.at("written") == static_cast<long long>(testing::read_lines(path).size()));
}

TEST_CASE("a batch the writer must add to records it holds, and cannot, counts each of its records as dropped_internal",
          "[accounting]")
{
    testing::TempDir dir;
    const std::string path = dir / "m.log";
    testing::Harness h(dir, "mainlog = \"" + path + "\"\nflush_interval = 60s\nmax_note_bytes = 4096");
    REQUIRE(h.error().empty());
    const std::string note(400, 'n');
    const auto log = [&](int count) {
        for (int i = 0; i < count; ++i) {
            timeval now{1700000000, 0};
            h.core().log_attempt(nullptr, nullptr, &now, note.data(), static_cast<int>(note.size()));
        }
    };
    // 120 records (about 50 KiB) go to the writer through `stats` and stay
    // in its buffer (under 64 KiB: no write before a flush).
    log(120);
    testing::stats_counters(h, path);
    // A full batch (256 KiB) then lands behind them: too big for the
    // buffer it swapped in, so the writer must grow it.
    arm(FailOn::other_threads, 16 * 1024);
    log(1024);
    REQUIRE(testing::wait_until([] { return g_failed.load() == 1; }));
    h.stop();
    const auto c = testing::closing_counters(h, path);
    testing::check_accounting(c, 1144);
    const auto lines = testing::read_lines(path);
    REQUIRE_FALSE(lines.empty());
    const long long line_bytes = static_cast<long long>(lines.front().size()) + 1; // every line is alike
    CHECK(c.at("dropped_internal") == (256 * 1024 + line_bytes - 1) / line_bytes); // the whole batch, no more
    CHECK(c.at("written") == static_cast<long long>(lines.size()));
}

TEST_CASE("a batch the flusher cannot collect or queue is counted, and the flusher goes on", "[accounting]")
{
    testing::TempDir dir;
    const std::string path = dir / "m.log";
    testing::Harness h(dir, "mainlog = \"" + path + "\"\nflush_interval = 5ms");
    REQUIRE(h.error().empty());
    arm(FailOn::other_threads, 8 * 1024); // the flusher's collected batch, its copy, or the writer's buffer
    testing::log_numbered(h, 0, 500);     // staged only: the flusher moves them
    REQUIRE(testing::wait_until([] { return g_failed.load() == 1; }));
    testing::log_numbered(h, 500, 10);
    // The flusher still collects: later records arrive without more traffic.
    CHECK(testing::wait_until([&] {
        const auto numbers = testing::numbers_in(path);
        return std::count_if(numbers.begin(), numbers.end(), [](int n) { return n >= 500; }) == 10;
    }));
    h.stop();
    const auto c = testing::closing_counters(h, path);
    testing::check_accounting(c, 510);
    CHECK(c.at("written") == static_cast<long long>(testing::read_lines(path).size()));
    CHECK(c.at("written") >= 10);
}

TEST_CASE("a record that cannot be formatted is dropped alone and counted", "[accounting]")
{
    testing::TempDir dir;
    const std::string path = dir / "m.log";
    testing::Harness h(dir, "mainlog = \"" + path + "\"\nflush_interval = 60s");
    REQUIRE(h.error().empty());
    testing::log_numbered(h, 0, 1); // the calling thread's stage exists
    arm(FailOn::this_thread, 600); // the stage buffer growing past its inline 500 bytes
    testing::log_numbered(h, 1, 40);
    g_fail_on.store(FailOn::nothing);
    CHECK(g_failed.load() == 1);
    h.stop();
    const auto c = testing::closing_counters(h, path);
    testing::check_accounting(c, 41);
    CHECK(c.at("dropped_internal") == 1);
    CHECK(c.at("written") == 40);
    testing::check_whole_lines(path);
}

TEST_CASE("a thread whose first record finds no memory for its stage: that record is counted, the next is written",
          "[accounting]")
{
    testing::TempDir dir;
    const std::string path = dir / "m.log";
    testing::Harness h(dir, "mainlog = \"" + path + "\"");
    REQUIRE(h.error().empty());
    std::thread caller([&] {
        arm(FailOn::this_thread, 400); // the stage's per-file buffers (over 500 bytes each)
        testing::log_numbered(h, 0, 1);
        g_fail_on.store(FailOn::nothing);
        testing::log_numbered(h, 1, 1); // finds its stage whole, or makes it now
    });
    caller.join();
    CHECK(g_failed.load() == 1);
    h.stop();
    const auto c = testing::closing_counters(h, path);
    testing::check_accounting(c, 2);
    CHECK(c.at("dropped_internal") == 1);
    CHECK(c.at("written") == 1);
    CHECK(testing::read_lines(path).size() == 1);
}

TEST_CASE("a log_reopen that runs out of memory is counted, and the moved file is reopened when found", "[accounting]")
{
    testing::TempDir dir;
    const std::string path = dir / "m.log";
    testing::Harness h(dir, "mainlog = \"" + path + "\"\nreopen_check_interval = 100ms");
    REQUIRE(h.error().empty());
    testing::log_numbered(h, 0, 5);
    REQUIRE(::rename(path.c_str(), (path + ".1").c_str()) == 0);
    arm(FailOn::this_thread, 0); // log_reopen's first allocation
    h.core().log_reopen();
    g_fail_on.store(FailOn::nothing);
    CHECK(g_failed.load() == 1);
    // The identity check finds the path moved and reopens it.
    CHECK(testing::wait_until([&] { return std::filesystem::exists(path); }));
    testing::log_numbered(h, 5, 5);
    h.stop();
    const auto c = testing::closing_counters(h, path);
    testing::check_accounting(c, 10);
    CHECK(c.at("reopen_errors") == 1);
    CHECK(c.at("missed_reopens") == 1);
    CHECK(c.at("written") == 10);
    CHECK(testing::read_lines(path + ".1").size() + testing::read_lines(path).size() == 10);
}
