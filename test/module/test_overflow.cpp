// The overflow policy's bounds through the real module, with the writer
// really stuck: on a full tmpfs, or blocked in write(2) on a FIFO nobody
// reads. No hook call, reopen or unload waits longer than overflow_timeout
// (plus one write); admission counts records, not batches; a thread's first
// call never waits behind other threads' hand-offs; and every record is
// accounted for exactly.
#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <thread>
#include <unistd.h>

#include "file_checks.hpp"

namespace fs = std::filesystem;
using testing::Clock;
using testing::millis_since;

namespace {

// Scheduling slack over a bound, for sanitizer builds on two busy cores.
constexpr long long kSlackMs = 250;

// Logs numbered records until the FIFO's pipe is full and the writer is
// stuck in write(2) with its buffer, then waits until the queue is empty
// again. Returns how many records were logged.
int stall_writer(testing::Harness &h, testing::Fifo &fifo, int batch)
{
    // The pipe is full when what waits in it stops growing while records
    // keep coming (it fills page by page, so not always to its capacity).
    int logged = 0;
    const auto start = Clock::now();
    while (fifo.waiting() < fifo.capacity() / 2 || logged == 0) {
        testing::log_numbered(h, logged, batch);
        logged += batch;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        REQUIRE(millis_since(start) < 20000);
    }
    // One more batch, then the writer is stuck once nothing moves through
    // the pipe for three checks in a row (a slow writer just takes longer).
    testing::log_numbered(h, logged, batch);
    logged += batch;
    std::size_t seen = fifo.waiting();
    for (int still = 0; still < 3;) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        const std::size_t now = fifo.waiting();
        still = now == seen ? still + 1 : 0;
        seen = now;
        REQUIRE(millis_since(start) < 20000);
    }
    return logged;
}

// Reads the FIFO while `stop` unloads the module (the writer needs a reader
// to finish), then returns everything that came through it.
std::string drain_while_stopping(testing::Harness &h, testing::Fifo &fifo, std::string text = {})
{
    std::atomic<bool> stopped{false};
    std::thread reader([&] {
        while (!stopped.load()) {
            fifo.drain(text);
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        fifo.drain(text);
    });
    h.stop();
    stopped.store(true);
    reader.join();
    return text;
}

std::size_t count_lines(const std::string &text) { return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')); }

} // namespace

TEST_CASE("full disk, overflow = block: no hook call and no reopen waits longer than overflow_timeout",
          "[overflow][disk]")
{
    testing::TempDir dir;
    testing::SmallFilesystem small(dir, "size=4m");
    if (!small.usable())
        return;
    // Two files, so that a reopen meets a thread waiting on the other one.
    const std::string path = small / "m.log", attempts = small / "a.log";
    testing::Harness h(dir, "mainlog = \"" + path + "\"\nattempt_logfile = \"" + attempts +
                                "\"\noverflow = block\noverflow_timeout = 200ms\nflush_interval = 5ms\nqueue_size = 4096");
    REQUIRE(h.error().empty());
    testing::SmallFilesystem::fill(small / "filler");

    std::atomic<bool> go{true};
    std::atomic<int> attempt_calls{0};
    std::atomic<long long> slowest_call_us{0};
    std::atomic<int> calls{0};
    std::vector<std::thread> mta;
    for (int t = 0; t < 2; ++t)
        mta.emplace_back([&, t] {
            const auto start = Clock::now();
            for (int i = 0; go.load() && i < 200000 && millis_since(start) < 3000; ++i) {
                const auto before = Clock::now();
                if (i % 2 == 0) {
                    testing::log_numbered(h, t * 1000000 + i, 1);
                } else {
                    timeval now{1700000000, 0};
                    h.core().log_attempt(nullptr, nullptr, &now, "250 ok", 6);
                    attempt_calls.fetch_add(1);
                }
                const long long us =
                    std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - before).count();
                long long seen = slowest_call_us.load();
                while (us > seen && !slowest_call_us.compare_exchange_weak(seen, us)) {
                }
                calls.fetch_add(1);
                if (i % 64 == 0)
                    std::this_thread::sleep_for(std::chrono::microseconds(200));
            }
        });
    long long slowest_reopen_ms = 0;
    for (int r = 0; r < 3; ++r) {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        const auto before = Clock::now();
        h.core().log_reopen();
        slowest_reopen_ms = std::max(slowest_reopen_ms, millis_since(before));
    }
    go.store(false);
    for (auto &t : mta)
        t.join();
    fs::remove(small / "filler");
    const auto stop_start = Clock::now();
    h.stop();
    const long long stop_ms = millis_since(stop_start);

    WARN("full disk, block, overflow_timeout 200 ms: slowest hook call " << slowest_call_us.load() / 1000
                                                                          << " ms, slowest reopen " << slowest_reopen_ms
                                                                          << " ms, unload " << stop_ms << " ms, "
                                                                          << calls.load() << " calls");
    CHECK(slowest_call_us.load() / 1000 <= 200 + kSlackMs);
    CHECK(slowest_reopen_ms <= 200 + kSlackMs);
    testing::check_whole_lines(path);
    const auto c = testing::closing_counters(h, path);
    testing::check_accounting(c, calls.load() - attempt_calls.load());
    CHECK(c.at("written") == static_cast<long long>(testing::read_lines(path).size()));
    CHECK(c.at("dropped_overflow") > 0); // the queue really filled
    const auto a = testing::closing_counters(h, attempts);
    testing::check_accounting(a, attempt_calls.load());
    CHECK(a.at("written") == static_cast<long long>(testing::read_lines(attempts).size()));
}

TEST_CASE("unload on a disk that stays full takes overflow_timeout once, whatever the queue holds, and counts "
          "every record it drops",
          "[overflow][disk][unload]")
{
    testing::TempDir dir;
    testing::SmallFilesystem small(dir, "size=1m");
    if (!small.usable())
        return;
    const std::string path = small / "m.log";
    testing::Harness h(dir, "mainlog = \"" + path +
                                "\"\noverflow = block\noverflow_timeout = 200ms\nflush_interval = 5ms\nqueue_size = 65536");
    REQUIRE(h.error().empty());
    testing::SmallFilesystem::fill(small / "filler");
    constexpr int kCalls = 60000; // ~2 MB of records: dozens of 64 KiB writes queued behind the failing one
    testing::log_numbered(h, 0, kCalls);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const auto stop_start = Clock::now();
    h.stop();
    const long long stop_ms = millis_since(stop_start);
    WARN("unload with a full disk and " << kCalls << " records queued: " << stop_ms << " ms (overflow_timeout 200 ms)");
    CHECK(stop_ms <= 200 + 100 + kSlackMs); // the timeout, one retry pause, the drain
    const auto c = testing::closing_counters(h, path);
    testing::check_accounting(c, kCalls);
    CHECK(c.at("written") == static_cast<long long>(testing::read_lines(path).size()));
    CHECK(c.at("dropped_write_error") > 0);
}

TEST_CASE("overflow = drop drops nothing while fewer than queue_size records wait, however many threads staged "
          "them",
          "[overflow][concurrency]")
{
    testing::TempDir dir;
    const std::string path = dir / "m.fifo";
    testing::Fifo fifo(path);
    testing::Harness h(dir, "mainlog = \"" + path + "\"\noverflow = drop\nflush_interval = 5ms\nqueue_size = 256");
    REQUIRE(h.error().empty());
    const int stalled = stall_writer(h, fifo, 256);
    const long long dropped_before = testing::stats_counters(h, path).at("dropped_overflow");

    // 40 threads log one record each: 40 records wait, far below 256.
    constexpr int kQuiet = 40;
    std::vector<std::thread> quiet;
    for (int t = 0; t < kQuiet; ++t)
        quiet.emplace_back([&, t] { testing::log_numbered(h, 900000 + t, 1); });
    for (auto &t : quiet)
        t.join();
    std::this_thread::sleep_for(std::chrono::milliseconds(100)); // 20 flush intervals
    const auto during = testing::stats_counters(h, path);
    CHECK(during.at("dropped_overflow") == dropped_before);

    const std::string text = drain_while_stopping(h, fifo);
    const auto c = testing::closing_counters(h, path);
    testing::check_accounting(c, stalled + kQuiet);
    CHECK(c.at("written") == static_cast<long long>(count_lines(text)));
    for (int t = 0; t < kQuiet; ++t)
        CHECK(text.find("@" + std::to_string(900000 + t) + "@0@\n") != std::string::npos);
}

TEST_CASE("a thread's first hook call does not wait behind other threads' hand-offs on a full queue",
          "[overflow][concurrency]")
{
    testing::TempDir dir;
    const std::string path = dir / "m.fifo";
    testing::Fifo fifo(path);
    testing::Harness h(dir, "mainlog = \"" + path +
                                "\"\noverflow = block\noverflow_timeout = 300ms\nflush_interval = 5ms\nqueue_size = 64");
    REQUIRE(h.error().empty());
    int calls = stall_writer(h, fifo, 64);
    testing::log_numbered(h, calls, 256); // fills the queue; the rest waits and is dropped
    calls += 256;
    // Four threads stage a few records each: the flusher finds no room for
    // them. They stay alive, so the newcomer below is a new thread id.
    std::atomic<bool> done{false};
    std::atomic<int> staged{0};
    std::vector<std::thread> stagers;
    for (int t = 0; t < 4; ++t)
        stagers.emplace_back([&, t] {
            testing::log_numbered(h, 800000 + 10 * t, 5);
            staged.fetch_add(1);
            while (!done.load())
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
        });
    REQUIRE(testing::wait_until([&] { return staged.load() == 4; }));
    calls += 20;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));

    long long first_call_us = 0;
    std::thread newcomer([&] {
        const auto before = Clock::now();
        testing::log_numbered(h, 700000, 1);
        first_call_us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - before).count();
    });
    newcomer.join();
    calls += 1;
    done.store(true);
    for (auto &t : stagers)
        t.join();
    WARN("a new thread's first hook call on a full queue: " << first_call_us << " us (overflow_timeout 300 ms)");
    CHECK(first_call_us < 300 * 1000);

    const std::string text = drain_while_stopping(h, fifo);
    const auto c = testing::closing_counters(h, path);
    testing::check_accounting(c, calls);
    CHECK(c.at("written") == static_cast<long long>(count_lines(text)));
}
