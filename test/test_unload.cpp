// Load → log → unload, 200 times in one process: afterwards no extra
// threads or fds, and the .so is no longer mapped.
#include <catch2/catch.hpp>

#include "test_support.hpp"

TEST_CASE("200 load/log/unload cycles leave no thread, fd or mapping behind", "[unload][concurrency]")
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

    constexpr int kCycles = 200;
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
    }
    CHECK(testing::thread_count() == threads_before);
    CHECK(testing::open_fd_count() == fds_before);
    CHECK(testing::read_lines(path).size() == static_cast<std::size_t>(kCycles * 5));
}
