// The hot path's parts alone: admission counts units and bounds what waits,
// a waiter wakes when room comes; each thread gets its own stage, past the
// lock-free table too; the hand-off lock lets no new reader past a waiting
// writer; the batch pool lends empty buffers and takes them back, bounded;
// the batcher hands a thread's batch off when it is full, by pointer, and
// leaves a quiet thread's records staged until they are collected.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <stdexcept>
#include <thread>

#include <spdlog/sinks/null_sink.h>

#include "admission.hpp"
#include "batch_pool.hpp"
#include "batcher.hpp"
#include "core.hpp"
#include "file_checks.hpp"
#include "handoff_lock.hpp"
#include "staging.hpp"
#include "test_support.hpp"

using namespace mtalog;
using Clock = std::chrono::steady_clock;

TEST_CASE("a batch weighs its records, or one unit per 256 bytes when that is more", "[hotpath][admission]")
{
    CHECK(Admission::weight(10, 100) == 10);
    CHECK(Admission::weight(10, 256 * 40) == 40);
    CHECK(Admission::weight(1, 255) == 1);
}

TEST_CASE("admission admits while fewer than capacity units wait, and refuses at capacity", "[hotpath][admission]")
{
    Admission a(100);
    const auto past = Clock::time_point{}; // the clock's epoch, long past: never wait
    CHECK(a.admit(60, past));
    CHECK(a.admit(60, past)); // 60 < 100 waited: admitted, the queue passes capacity by one batch
    CHECK(a.waiting() == 120);
    CHECK_FALSE(a.admit(1, past));
    a.release(60);
    CHECK(a.waiting() == 60);
    CHECK(a.admit(1, past));
    a.force(500); // a collected batch, past the capacity test
    CHECK(a.waiting() == 561);
    CHECK_FALSE(a.admit(1, past));
}

TEST_CASE("a refused batch waits for room until its deadline, and no longer", "[hotpath][admission]")
{
    Admission a(10);
    REQUIRE(a.admit(10, Clock::time_point{}));
    auto start = Clock::now();
    CHECK_FALSE(a.admit(1, start + std::chrono::milliseconds(50)));
    CHECK(Clock::now() - start >= std::chrono::milliseconds(50));
    CHECK(Clock::now() - start < std::chrono::seconds(5)); // not much past it either

    std::thread writer([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        a.release(10);
    });
    start = Clock::now();
    CHECK(a.admit(5, start + std::chrono::seconds(30)));
    CHECK(Clock::now() - start < std::chrono::seconds(10)); // woken by the release, not by the deadline
    writer.join();
    CHECK(a.waiting() == 5);
}

TEST_CASE("each thread gets its own stage, also past the lock-free table, and for_each sees them all",
          "[hotpath][staging]")
{
    Staging staging(2);
    Staging::Stage &mine = staging.local();
    CHECK(&staging.local() == &mine);
    CHECK(mine.lines.size() == 2);
    CHECK(mine.records == std::vector<std::uint32_t>{0, 0});

    constexpr int kThreads = 300; // more than the table's 256 slots
    std::atomic<int> ready{0};
    std::atomic<bool> done{false};
    std::vector<Staging::Stage *> stages(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            stages[t] = &staging.local();
            const bool same = &staging.local() == stages[t];
            stages[t]->records[0] = same ? 1 : 0;
            ready.fetch_add(1);
            while (!done.load())
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
        });
    while (ready.load() < kThreads)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::set<Staging::Stage *> distinct(stages.begin(), stages.end());
    distinct.insert(&mine);
    CHECK(distinct.size() == kThreads + 1);
    int visited = 0, marked = 0;
    staging.for_each([&](Staging::Stage &stage) {
        ++visited;
        marked += static_cast<int>(stage.records[0]);
    });
    done.store(true);
    for (auto &t : threads)
        t.join();
    CHECK(visited == kThreads + 1);
    CHECK(marked == kThreads);
}

TEST_CASE("the hand-off lock lets no new reader past a waiting writer", "[hotpath][concurrency]")
{
    HandoffLock lock;
    lock.lock_shared(); // a thread posting its batch
    std::atomic<bool> writer_has_it{false};
    std::thread writer([&] { // a reopen
        lock.lock();
        writer_has_it.store(true);
        lock.unlock();
    });
    // Once the writer waits, a new reader is turned away.
    bool refused = false;
    const auto give_up = Clock::now() + std::chrono::seconds(10);
    while (!refused && Clock::now() < give_up) {
        if (lock.try_lock_shared())
            lock.unlock_shared();
        else
            refused = true;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    CHECK(refused);
    CHECK_FALSE(writer_has_it.load());
    lock.unlock_shared();
    writer.join();
    CHECK(writer_has_it.load());
    CHECK(lock.try_lock_shared_until(Clock::now() - std::chrono::seconds(1))); // free: taken at once
    lock.unlock_shared();
}

// Run under strace by the next test: one timed wait for a lock a writer holds.
TEST_CASE("(a timed wait on the hand-off lock)", "[.handoff_wait]")
{
    HandoffLock lock;
    std::atomic<bool> held{false};
    std::atomic<bool> done{false};
    std::thread writer([&] {
        lock.lock();
        held.store(true);
        while (!done.load())
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        lock.unlock();
    });
    while (!held.load())
        std::this_thread::yield();
    CHECK_FALSE(lock.try_lock_shared_until(Clock::now() + std::chrono::milliseconds(50)));
    CHECK_FALSE(lock.try_lock_until(Clock::now() + std::chrono::milliseconds(50)));
    done.store(true);
    writer.join();
}

// A deadline on the wall clock would wait longer by as much as NTP steps the
// clock back during the wait: the kernel must be given a CLOCK_MONOTONIC one.
TEST_CASE("the hand-off lock's timed waits are on the monotonic clock", "[hotpath]")
{
#if MTALOG_RWLOCK_WALL_CLOCK
    SUCCEED("ThreadSanitizer builds wait on the wall clock (it sees only those calls)");
#else
    if (std::system("strace -f -qq -o /dev/null true >/dev/null 2>&1") != 0) {
        WARN("strace is not installed, or may not trace here: not checked");
        return;
    }
    const testing::TempDir dir;
    const std::string trace = dir / "futex.txt";
    const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
    // (LeakSanitizer cannot run under ptrace: off for the traced run.)
    const std::string cmd = "ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0\" strace -f -qq -e trace=futex "
                            "-o '" + trace + "' '" + self + "' '[.handoff_wait]' >/dev/null 2>&1";
    REQUIRE(std::system(cmd.c_str()) == 0);
    const std::string text = testing::read_file(trace);
    INFO(text);
    int timed = 0;
    std::size_t at = 0;
    while ((at = text.find("FUTEX_WAIT_BITSET", at)) != std::string::npos) {
        const std::size_t end = text.find('\n', at);
        const std::string line = text.substr(at, end - at);
        at = end;
        if (line.find(", NULL,") != std::string::npos)
            continue; // no timeout: a join
        ++timed;
        CHECK(line.find("FUTEX_CLOCK_REALTIME") == std::string::npos);
    }
    CHECK(timed >= 2); // the shared wait and the exclusive one
#endif
}

TEST_CASE("the batch pool lends reserved buffers, keeps at most kKeep idle, and frees an oversized one",
          "[hotpath][batch_pool]")
{
    BatchPool pool(4096, 8192);
    std::vector<BatchPtr> out;
    for (std::size_t i = 0; i < BatchPool::kKeep + 3; ++i) {
        out.push_back(pool.take(true));
        CHECK(out.back()->lines.size() == 0);
        CHECK(out.back()->lines.capacity() >= 4096);
    }
    CHECK(pool.idle() == 0);
    out.back()->lines.append(std::string(20000, 'x')); // grown past keep_bytes
    out.pop_back();
    CHECK(pool.idle() == 0); // freed, not kept
    out.front()->lines.append(std::string("some lines\n"));
    out.clear();
    CHECK(pool.idle() == BatchPool::kKeep); // the rest freed
    BatchPtr again = pool.take(false);
    CHECK(again->lines.size() == 0); // given back empty
    CHECK(pool.idle() == BatchPool::kKeep - 1);
    CHECK(pool.live() == BatchPool::kKeep);
    // Idle batches of a pool nobody takes from are freed at the second trim.
    again.reset();
    pool.trim_if_unused(); // a take since the last trim: kept
    CHECK(pool.idle() == BatchPool::kKeep);
    pool.trim_if_unused();
    CHECK(pool.idle() == 0);
    CHECK(pool.live() == 0);
    CHECK(pool.take(false)->lines.capacity() < 4096); // new, and not reserved without `full`
}

TEST_CASE("a batch's message carries its address, and only a tagged message is read as one", "[hotpath][batch_pool]")
{
    BatchPool pool(64, 1024);
    BatchPtr batch = pool.take(true);
    batch->lines.append(std::string("a line\n"));
    const Batch *const raw = batch.get();
    const auto msg = BatchPool::message(raw, "t", spdlog::level::info, 3);
    CHECK(msg.source.line == 3);
    BatchPtr back = BatchPool::from(msg);
    REQUIRE(back.get() == raw);
    (void)batch.release(); // owned by `back` now
    CHECK(std::string(back->lines.data(), back->lines.size()) == "a line\n");
    // The same eight bytes without the tag are text, not a batch.
    const spdlog::details::log_msg text(spdlog::source_loc{}, "t", spdlog::level::info, msg.payload);
    CHECK_FALSE(BatchPool::from(text));
    back.reset();
    CHECK(pool.idle() == 1);
}

namespace {

// One file's lane as the instance builds it, without the instance: a batcher,
// spdlog's pool and async logger, and the real sink on a file.
struct BatcherHarness {
    mtacore::Core core;
    Diagnostics diag{core.c_api(), "mtalog \"test\""};
    mtacfg::Settings settings;
    FileCounters counters;
    std::unique_ptr<Batcher> batcher;
    std::shared_ptr<spdlog::details::thread_pool> pool;
    std::shared_ptr<LogFileSink> sink;
    std::shared_ptr<spdlog::async_logger> logger;
    Batcher::Lane lane;

    BatcherHarness(const std::string &path, std::size_t queue_size)
    {
        core.set_panic_sink([](int, std::string_view, std::string_view) {});
        settings.queue_size = queue_size;
        settings.overflow = mtacfg::Overflow::block;
        settings.overflow_timeout = std::chrono::seconds(30); // nothing may be refused here
        settings.files.resize(1);
        batcher = std::make_unique<Batcher>(settings, diag);
        pool = std::make_shared<spdlog::details::thread_pool>(batcher->queue_slots(1), 1);
        batcher->attach(pool);
        SinkOptions options;
        options.path = path;
        sink = std::make_shared<LogFileSink>(std::move(options), counters, diag, batcher->admission(), nullptr);
        REQUIRE_FALSE(sink->open().has_value());
        logger = make_batch_logger("test", {sink}, pool);
        lane.counters = &counters;
        lane.logger = logger.get();
        lane.sink = sink.get();
    }
    ~BatcherHarness() // in Instance::stop's order
    {
        sink->begin_shutdown(std::chrono::steady_clock::now() + std::chrono::seconds(5));
        batcher->drain_for_unload(lane);
        batcher->post_marker(lane, spdlog::level::off);
        batcher->detach();
        pool.reset(); // drains the queue, joins the writer
        lane.logger = nullptr;
        lane.sink = nullptr;
        logger.reset();
        sink->finish();
    }
    void add(int i, std::size_t padding = 0)
    {
        batcher->add(lane, [&](Buffer &lines, FormatCache &) {
            put(lines, "record " + std::to_string(i));
            lines.append(std::string(padding, '.'));
        });
    }
    // Posts a flush and waits until the writer has done it: every batch
    // queued before it is then written.
    void flush()
    {
        const std::uint64_t seen = sink->flushes_done();
        batcher->post_marker(lane, spdlog::level::off);
        REQUIRE(testing::wait_until([&] { return sink->flushes_done() > seen; }));
    }
};

} // namespace

TEST_CASE("the batcher hands a thread's batch off when it is full, and a quiet thread's records wait to be collected",
          "[hotpath][batcher]")
{
    testing::TempDir dir;
    const std::string path = dir / "m.log";
    BatcherHarness h(path, 64); // a queue of 64 records: batches of 64
    for (int i = 0; i < 63; ++i)
        h.add(i);
    h.flush();
    CHECK(h.counters.accepted.load() == 0); // still staged
    CHECK(testing::read_lines(path).empty());

    h.add(63); // the 64th: this call hands the batch off
    h.flush();
    CHECK(h.counters.accepted.load() == 64);
    CHECK(h.counters.written.load() == 64);

    for (int i = 64; i < 69; ++i)
        h.add(i);
    h.flush();
    CHECK(h.counters.written.load() == 64); // quiet records stay staged...
    h.batcher->collect_for_stats(h.lane);   // ...until a collector takes them
    h.flush();
    CHECK(h.counters.written.load() == 69);

    // Or when the stage holds 64 x 256 bytes: sixteen records of 1 KiB stay...
    for (int i = 69; i < 85; ++i)
        h.add(i, 1000);
    h.flush();
    CHECK(h.counters.written.load() == 69);
    h.add(85, 1000); // ...the seventeenth passes 16 KiB and goes with them
    h.flush();
    CHECK(h.counters.written.load() == 86);

    const auto lines = testing::read_lines(path);
    REQUIRE(lines.size() == 86);
    for (std::size_t i = 0; i < lines.size(); ++i)
        CHECK(lines[i].rfind("record " + std::to_string(i), 0) == 0);
    CHECK(h.counters.dropped_overflow.load() == 0);
    // Every batch the writer took went back to the pool: none is lost.
    CHECK(h.batcher->batches().idle() >= 1);
    CHECK(h.batcher->batches().live() == h.batcher->batches().idle());
}

TEST_CASE("records a collector takes from several threads keep each thread's order", "[hotpath][batcher][concurrency]")
{
    testing::TempDir dir;
    const std::string path = dir / "m.log";
    // Batches of 64 and room for 64 records: threads hand off their own
    // batches, wait in admission, and race a collector over their stages.
    BatcherHarness h(path, 64);
    constexpr int kThreads = 4, kPerThread = 3000;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < kPerThread; ++i) {
                h.add(t * 1000000 + i);
                if (t == 0 && i % 200 == 0)
                    h.batcher->collect_for_stats(h.lane); // only thread 0 collects
            }
        });
    for (auto &th : threads)
        th.join();
    h.flush(); // the last collected batch is done, so the next collection runs
    h.batcher->collect_for_stats(h.lane);
    h.flush();
    const auto lines = testing::read_lines(path);
    REQUIRE(lines.size() == static_cast<std::size_t>(kThreads * kPerThread));
    std::vector<int> next(kThreads, 0);
    for (const auto &line : lines) {
        const int n = std::stoi(line.substr(7));
        const int t = n / 1000000, i = n % 1000000;
        REQUIRE(i == next[static_cast<std::size_t>(t)]);
        ++next[static_cast<std::size_t>(t)];
    }
    CHECK(h.counters.accepted.load() == kThreads * kPerThread);
    CHECK(h.counters.written.load() == kThreads * kPerThread);
    CHECK(h.counters.dropped_overflow.load() == 0);
    CHECK(h.sink->collected_done() >= 1);
}

TEST_CASE("a logger carrying batches is made with exactly one LogFileSink, or not at all", "[hotpath][batcher]")
{
    testing::TempDir dir;
    BatcherHarness h(dir / "m.log", 64);
    CHECK_THROWS_AS(make_batch_logger("two", {h.sink, h.sink}, h.pool), std::invalid_argument);
    CHECK_THROWS_AS(make_batch_logger("none", {}, h.pool), std::invalid_argument);
    CHECK_THROWS_AS(make_batch_logger("other", {std::make_shared<spdlog::sinks::null_sink_mt>()}, h.pool),
                    std::invalid_argument);
    CHECK(make_batch_logger("one", {h.sink}, h.pool)->sinks().size() == 1);
}
