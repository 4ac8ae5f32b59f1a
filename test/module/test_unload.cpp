// Load → log → unload, 1,000 times in one process: afterwards no extra
// threads or fds, no RSS growth, and the .so is no longer mapped.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>

#include "test_support.hpp"

TEST_CASE("1,000 load/log/unload cycles leave no thread, fd, memory or mapping behind", "[unload][concurrency]")
{
    testing::TempDir dir;
    const std::string path = dir / "m.log";
    // Warm-up: let one-time allocations (e.g. libspdlog's, which is never
    // unloaded) happen before the baseline is taken.
    {
        testing::Harness warm(dir, "mainlog = \"" + path + "\"");
        REQUIRE(warm.error().empty());
    }
    REQUIRE_FALSE(testing::maps_contain("/mtalog.so"));
    const std::size_t threads_before = testing::thread_count();
    const std::size_t fds_before = testing::open_fd_count();
    std::size_t rss_warm = 0; // after 200 cycles: glibc has made its per-thread malloc arenas by then

    // MTALOG_UNLOAD_CYCLES shortens the loop for slow runners (valgrind).
    const char *override_cycles = std::getenv("MTALOG_UNLOAD_CYCLES");
    const int kCycles = override_cycles ? std::max(1, std::atoi(override_cycles)) : 1000;
    for (int cycle = 0; cycle < kCycles; ++cycle) {
        testing::Harness h(dir, "mainlog = \"" + path + "\"");
        REQUIRE(h.error().empty());
        REQUIRE(testing::maps_contain("/mtalog.so"));
        REQUIRE(testing::thread_count() > threads_before); // the worker and flusher run
        timeval now{1700000000, 0};
        for (int i = 0; i < 5; ++i)
            h.core().log_connection_failure(nullptr, i, nullptr, cycle, &now);
        h.stop();
        REQUIRE_FALSE(testing::maps_contain("/mtalog.so"));
        if (cycle == std::min(199, kCycles - 1))
            rss_warm = testing::resident_bytes();
    }
    CHECK(testing::thread_count() == threads_before);
    CHECK(testing::open_fd_count() == fds_before);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    // Sanitizer runtimes keep freed memory in quarantine on purpose. Here the
    // last 800 cycles must not grow RSS: a leak of 650 bytes a cycle would.
    const std::size_t rss_after = testing::resident_bytes();
    INFO("RSS after 200 cycles " << rss_warm / 1024 << " KiB, after 1000: " << rss_after / 1024 << " KiB");
    if (kCycles >= 1000)
        CHECK(rss_after <= rss_warm + 512 * 1024);
#else
    (void)rss_warm;
#endif
    CHECK(testing::read_lines(path).size() == static_cast<std::size_t>(kCycles * 5));
}
