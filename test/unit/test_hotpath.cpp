// The hot path's parts alone: admission counts units and bounds what waits,
// a waiter wakes when room comes; each thread gets its own stage, past the
// lock-free table too; the hand-off lock lets no new reader past a waiting
// writer.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "admission.hpp"
#include "handoff_lock.hpp"
#include "staging.hpp"

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
