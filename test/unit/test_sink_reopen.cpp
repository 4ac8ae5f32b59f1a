// A reopen while the old file fails (plugin review F4): the records accepted
// before the reopen go to the old file, the ones after it to the new file,
// and if the old file still fails after overflow_timeout its records go to
// the new file, counted. RLIMIT_FSIZE is the failing disk, in a child
// process: it refuses writes past an offset, so a file already that long
// fails while a new, empty one takes records.
#include <catch2/catch.hpp>

#include <chrono>
#include <fcntl.h>
#include <filesystem>
#include <string>
#include <thread>

#include "sink_harness.hpp"
#include "test_support.hpp"

using namespace mtalog;
using namespace mtalog::sink_test;

namespace {

// Appends `text` through a descriptor of its own (another writer).
bool append_other(const std::string &path, const std::string &text)
{
    const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND);
    const bool ok = fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    return ::close(fd) == 0 && ok;
}

// logrotate's rename, the reopen's marker, then `after`: a record for the
// new file. False if the rename failed.
bool rotate_then_put(SinkHarness &h, const std::string &path, const std::string &moved, const std::string &after)
{
    if (::rename(path.c_str(), moved.c_str()) != 0)
        return false;
    h.reopen_marker();
    h.put(after);
    return true;
}

// A flush once the tests' overflow_timeout (20 ms) is over.
void flush_past_overflow_timeout(SinkHarness &h)
{
    std::this_thread::sleep_for(std::chrono::milliseconds(40));
    h.sink->flush();
}

} // namespace

TEST_CASE("a reopen while the old file fails keeps its records for the old file", "[rotation][disk]")
{
    testing::TempDir dir;
    const std::string path = dir / "m.log", moved = dir / "m.log.1";
    const std::string r1 = record(1), r2 = record(2), r3 = record(3);
    CHECK(in_child_with_disk_limit([&](const auto &limit) {
        SinkOptions o;
        o.path = path;
        SinkHarness h(o);
        h.put(r1);
        h.put(r2); // buffered, not written yet
        bool ok = limit(0);             // every write fails
        ok = ok && ::rename(path.c_str(), moved.c_str()) == 0; // logrotate's rename
        h.reopen_marker();
        ok = ok && h.sink->reopens_done() == 0; // not done while its records wait for the old file
        h.put(r3);                              // after the reopen: the new file's
        ok = ok && limit(RLIM_INFINITY);
        h.sink->flush();
        ok = ok && h.sink->reopens_done() == 1 && h.counters.reopens.load() == 1;
        ok = ok && h.counters.crossed_reopen.load() == 0;
        h.done();
        return ok;
    }));
    CHECK(testing::read_file(moved) == r1 + "\n" + r2 + "\n");
    CHECK(testing::read_file(path) == r3 + "\n");
}

TEST_CASE("after a reopen, records wait while the old file completes a partial record", "[rotation][disk]")
{
    testing::TempDir dir;
    const std::string path = dir / "m.log", moved = dir / "m.log.1";
    const std::string r1 = record(1), r2 = record(2);
    const auto overflow = GENERATE(mtacfg::Overflow::block, mtacfg::Overflow::drop);
    CHECK(in_child_with_disk_limit([&](const auto &limit) {
        SinkOptions o;
        o.path = path;
        o.overflow = overflow;
        SinkHarness h(o);
        // A failing write is not retried (as at shutdown): the test goes on.
        if (overflow == mtacfg::Overflow::block)
            h.sink->begin_shutdown(std::chrono::steady_clock::now());
        // Another writer's line makes the cut-back refuse: R1 stays partly
        // in the file, to be completed there.
        bool ok = append_other(path, "x\n") && limit(2 + 10);
        h.put(r1);
        h.sink->flush();
        ok = ok && rotate_then_put(h, path, moved, r2);
        ok = ok && limit(RLIM_INFINITY);
        h.sink->flush();
        ok = ok && h.sink->reopens_done() == 1 && h.counters.dropped_write_error.load() == 0;
        h.done();
        return ok;
    }));
    CHECK(testing::read_file(moved) == "x\n" + r1 + "\n");
    CHECK(testing::read_file(path) == r2 + "\n");
}

TEST_CASE("an old file that fails past overflow_timeout gives its records to the new file, counted",
          "[rotation][disk]")
{
    testing::TempDir dir;
    const std::string path = dir / "m.log", moved = dir / "m.log.1";
    const std::string filler(199, 'f');
    const std::string r1 = record(1), r2 = record(2);
    CHECK(in_child_with_disk_limit([&](const auto &limit) {
        SinkOptions o;
        o.path = path;
        o.overflow_timeout = std::chrono::milliseconds(20);
        SinkHarness h(o);
        // The old file is 200 bytes long and the limit is 200: it fails; the
        // new file is empty and takes records.
        bool ok = append_other(path, filler + "\n") && limit(200);
        h.put(r1);
        ok = ok && ::rename(path.c_str(), moved.c_str()) == 0;
        h.reopen_marker();
        ok = ok && h.sink->reopens_done() == 0;
        h.put(r2);
        flush_past_overflow_timeout(h); // overflow_timeout has passed
        ok = ok && h.sink->reopens_done() == 1 && h.counters.crossed_reopen.load() == 1;
        ok = ok && h.counters.dropped_write_error.load() == 0;
        h.done();
        return ok && limit(RLIM_INFINITY);
    }));
    CHECK(testing::read_file(moved) == filler + "\n");
    CHECK(testing::read_file(path) == r1 + "\n" + r2 + "\n");
}

TEST_CASE("a reopen of a file that was not renamed switches nothing, even while it fails", "[rotation][disk]")
{
    testing::TempDir dir;
    const std::string path = dir / "m.log";
    const std::string r1 = record(1);
    CHECK(in_child_with_disk_limit([&](const auto &limit) {
        SinkOptions o;
        o.path = path;
        SinkHarness h(o);
        h.put(r1);
        bool ok = limit(0);
        h.reopen_marker(); // a HUP without a rotation
        ok = ok && h.sink->reopens_done() == 1 && h.counters.reopens.load() == 1;
        ok = ok && limit(RLIM_INFINITY);
        h.sink->flush();
        ok = ok && h.counters.crossed_reopen.load() == 0 && h.counters.torn_records.load() == 0;
        h.done();
        return ok;
    }));
    CHECK(testing::read_file(path) == r1 + "\n");
}

TEST_CASE("giving up on an old file cuts a half-written record off it and drops it, counted", "[rotation][disk]")
{
    testing::TempDir dir;
    const std::string path = dir / "m.log", moved = dir / "m.log.1";
    const std::string filler(199, 'f');
    const std::string r1 = record(1), r2 = record(2);
    CHECK(in_child_with_disk_limit([&](const auto &limit) {
        SinkOptions o;
        o.path = path;
        o.overflow_timeout = std::chrono::milliseconds(20);
        SinkHarness h(o);
        h.sink->begin_shutdown(std::chrono::steady_clock::now()); // a failing write is not retried
        // Another writer's 200 bytes make the cut-back refuse: R1 stays
        // partly (10 bytes) in the old file. A new file takes 210 bytes.
        bool ok = append_other(path, filler + "\n") && limit(200 + 10);
        h.put(r1);
        h.sink->flush();
        ok = ok && rotate_then_put(h, path, moved, r2);
        flush_past_overflow_timeout(h);
        ok = ok && h.sink->reopens_done() == 1 && h.counters.dropped_write_error.load() == 1;
        ok = ok && h.counters.crossed_reopen.load() == 0;
        h.done();
        return ok && limit(RLIM_INFINITY);
    }));
    CHECK(testing::read_file(moved) == filler + "\n");
    CHECK(testing::read_file(path) == r2 + "\n");
}

TEST_CASE("shutting down while a reopen waits for a failing old file moves its records, counted", "[rotation][disk]")
{
    testing::TempDir dir;
    const std::string path = dir / "m.log", moved = dir / "m.log.1";
    const std::string filler(199, 'f');
    const std::string r1 = record(1), r2 = record(2);
    CHECK(in_child_with_disk_limit([&](const auto &limit) {
        SinkOptions o;
        o.path = path;
        SinkHarness h(o);
        bool ok = append_other(path, filler + "\n") && limit(200);
        h.put(r1);
        ok = ok && rotate_then_put(h, path, moved, r2);
        h.done(); // well within overflow_timeout
        ok = ok && h.sink->reopens_done() == 1 && h.counters.crossed_reopen.load() == 1;
        ok = ok && h.counters.dropped_write_error.load() == 0;
        return ok && limit(RLIM_INFINITY);
    }));
    CHECK(testing::read_file(moved) == filler + "\n");
    CHECK(testing::read_file(path) == r1 + "\n" + r2 + "\n");
}

TEST_CASE("overflow = drop: after a reopen away from a failing file, the new file takes records at once",
          "[rotation][disk]")
{
    testing::TempDir dir;
    const std::string path = dir / "m.log", moved = dir / "m.log.1";
    const std::string filler(199, 'f');
    const std::string r1 = record(1), r2 = record(2);
    CHECK(in_child_with_disk_limit([&](const auto &limit) {
        SinkOptions o;
        o.path = path;
        o.overflow = mtacfg::Overflow::drop;
        SinkHarness h(o);
        // The old file is 200 bytes long and the limit is 200: it fails (R1
        // dropped, the policy); the new file is empty and takes records.
        bool ok = append_other(path, filler + "\n") && limit(200);
        h.put(r1);
        // R2 is the new file's, within a second of the old file's failure.
        ok = ok && rotate_then_put(h, path, moved, r2);
        h.sink->flush();
        ok = ok && h.sink->reopens_done() == 1 && h.counters.dropped_write_error.load() == 1;
        h.done();
        return ok && limit(RLIM_INFINITY);
    }));
    CHECK(testing::read_file(moved) == filler + "\n");
    CHECK(testing::read_file(path) == r2 + "\n");
}

TEST_CASE("giving up on an old file cuts nobody else's bytes written after a half-written record",
          "[rotation][disk]")
{
    testing::TempDir dir;
    const std::string path = dir / "m.log", moved = dir / "m.log.1";
    const std::string filler(199, 'f');
    const std::string r1 = record(1), r2 = record(2);
    CHECK(in_child_with_disk_limit([&](const auto &limit) {
        SinkOptions o;
        o.path = path;
        o.overflow_timeout = std::chrono::milliseconds(20);
        SinkHarness h(o);
        h.sink->begin_shutdown(std::chrono::steady_clock::now()); // a failing write is not retried
        // R1 stays partly (10 bytes) in the file; then another writer
        // appends a line after it, and the file fails from there on.
        bool ok = append_other(path, filler + "\n") && limit(200 + 10);
        h.put(r1);
        h.sink->flush();
        ok = ok && limit(RLIM_INFINITY) && append_other(path, "y\n") && limit(200 + 10 + 2);
        ok = ok && rotate_then_put(h, path, moved, r2);
        flush_past_overflow_timeout(h); // gives up on the old file: R1 is dropped, counted
        ok = ok && h.sink->reopens_done() == 1 && h.counters.dropped_write_error.load() == 1;
        h.done();
        return ok && limit(RLIM_INFINITY);
    }));
    CHECK(testing::read_file(moved) == filler + "\n" + r1.substr(0, 10) + "y\n");
    CHECK(testing::read_file(path) == r2 + "\n");
}

TEST_CASE("a half-written record continued after another writer's line is never cut", "[rotation][disk]")
{
    testing::TempDir dir;
    const std::string path = dir / "m.log", moved = dir / "m.log.1";
    const std::string filler(199, 'f');
    const std::string r1 = record(1), r2 = record(2);
    CHECK(in_child_with_disk_limit([&](const auto &limit) {
        SinkOptions o;
        o.path = path;
        o.overflow_timeout = std::chrono::milliseconds(20);
        SinkHarness h(o);
        h.sink->begin_shutdown(std::chrono::steady_clock::now()); // a failing write is not retried
        bool ok = append_other(path, filler + "\n") && limit(200 + 10); // 10 bytes of R1
        h.put(r1);
        h.sink->flush();
        ok = ok && limit(RLIM_INFINITY) && append_other(path, "y\n") && limit(200 + 10 + 2 + 3);
        h.sink->flush(); // 3 more bytes of R1, after the other writer's line
        ok = ok && rotate_then_put(h, path, moved, r2);
        flush_past_overflow_timeout(h); // gives up on the old file: R1 is dropped, counted, nothing cut
        ok = ok && h.sink->reopens_done() == 1 && h.counters.dropped_write_error.load() == 1;
        h.done();
        return ok && limit(RLIM_INFINITY);
    }));
    CHECK(testing::read_file(moved) == filler + "\n" + r1.substr(0, 10) + "y\n" + r1.substr(10, 3));
    CHECK(testing::read_file(path) == r2 + "\n");
}
