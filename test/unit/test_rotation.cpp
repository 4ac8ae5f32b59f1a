// Built-in rotation at the sink: by size, by time (an injected clock, no
// sleeps), retention that never touches foreign files, and both compressors
// (checked with the system's gzip and zstd).
#include <catch2/catch.hpp>

#include <csignal>
#include <fcntl.h>
#include <filesystem>
#include <functional>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <set>
#include <stdexcept>

#include "rotation.hpp"
#include "sink_harness.hpp"
#include "test_support.hpp"

using namespace mtalog;
using namespace mtalog::sink_test;
namespace fs = std::filesystem;

TEST_CASE("rotated names follow the documented scheme, and only they match it", "[rotation]")
{
    CHECK(rotated_name("/var/log/m.log", 1700002800, true, 0) == "/var/log/m.log.20231114-230000");
    CHECK(rotated_name("m.log", 1700002800, true, 2) == "m.log.20231114-230000-2");
    CHECK(is_rotated_name("m.log.20231114-230000", "m.log"));
    CHECK(is_rotated_name("m.log.20231114-230000-12.gz", "m.log"));
    CHECK(is_rotated_name("m.log.20231114-230000.zst", "m.log"));
    CHECK_FALSE(is_rotated_name("m.log.20231114-2300", "m.log"));
    CHECK_FALSE(is_rotated_name("m.log.20231114-230000.bak", "m.log"));
    CHECK_FALSE(is_rotated_name("m.log.20231114-230000.gz.tmp", "m.log"));
    CHECK_FALSE(is_rotated_name("m.log.old", "m.log"));
    CHECK_FALSE(is_rotated_name("xm.log.20231114-230000", "m.log"));
    CHECK(next_rotation_time(1700000000, mtacfg::RotateInterval::hourly, true) == 1700002800);
    CHECK(next_rotation_time(1700000000, mtacfg::RotateInterval::daily, true) == 1700006400);
    CHECK(next_rotation_time(1700000000, mtacfg::RotateInterval::none, true) == 0);
}

TEST_CASE("size rotation cuts between whole records and keeps every record once, in order", "[rotation]")
{
    testing::TempDir dir;
    SinkOptions o;
    o.path = dir / "m.log";
    o.rotate_size = 1000;
    o.rotate_keep = 0;
    SinkHarness h(o);
    for (int i = 0; i < 100; ++i) {
        h.put(record(i));
        h.sink->flush();
    }
    h.done();
    auto files = rotated_files(o.path);
    CHECK(files.size() == 5); // 19 records (1007 bytes) per file
    for (const auto &f : files)
        CHECK(fs::file_size(f) >= 1000);
    CHECK(files[1] == o.path + ".20231114-225959-1"); // rotations within one second are numbered
    files.push_back(o.path);
    const auto lines = all_lines(files);
    REQUIRE(lines.size() == 100);
    for (int i = 0; i < 100; ++i)
        CHECK(lines[static_cast<std::size_t>(i)] == record(i));
    CHECK(h.counters.rotations.load() == 5);
}

TEST_CASE("time rotation follows the injected clock to the hour and the day", "[rotation]")
{
    testing::TempDir dir;
    for (auto interval : {mtacfg::RotateInterval::hourly, mtacfg::RotateInterval::daily}) {
        SinkOptions o;
        o.path = dir / (interval == mtacfg::RotateInterval::hourly ? "h.log" : "d.log");
        o.rotate_interval = interval;
        SinkHarness h(o);
        h.put(record(1));
        h.sink->flush();
        CHECK(rotated_files(o.path).empty());
        h.now = interval == mtacfg::RotateInterval::hourly ? 1700002800 : 1700006400; // the boundary
        h.put(record(2));
        h.sink->flush(); // the writer notices the boundary and rotates before writing record 2
        h.now += 10;
        h.put(record(3));
        h.sink->flush();
        h.done();
        const auto files = rotated_files(o.path);
        REQUIRE(files.size() == 1);
        CHECK(files[0] == o.path + (interval == mtacfg::RotateInterval::hourly ? ".20231114-230000" : ".20231115-000000"));
        CHECK(testing::read_lines(files[0]) == std::vector<std::string>{record(1)});
        CHECK(testing::read_lines(o.path) == std::vector<std::string>{record(2), record(3)});
    }
}

TEST_CASE("retention keeps the newest rotated files and never deletes a file that is not ours", "[rotation]")
{
    testing::TempDir dir;
    const std::string path = dir / "m.log";
    const std::vector<std::string> foreign{path + ".old", path + ".20231114-2300", path + ".20231114-230000.bak",
                                           dir / "other.log.20231114-220000", path + ".20231114-220000.gz.tmp"};
    for (const auto &f : foreign)
        testing::write_file(f, "not ours\n");
    SinkOptions o;
    o.path = path;
    o.rotate_size = 100;
    o.rotate_keep = 2;
    SinkHarness h(o);
    for (int i = 0; i < 10; ++i) {
        h.put(record(i));
        h.put(record(i + 100));
        h.sink->flush();
        h.now += 1;
    }
    h.done();
    const auto files = rotated_files(path);
    REQUIRE(files.size() == 2);
    CHECK(testing::read_lines(files[1]) == std::vector<std::string>{record(9), record(109)});
    for (const auto &f : foreign)
        CHECK(fs::exists(f));
}

TEST_CASE("rotated files are compressed off the writer and decompress to the exact records", "[rotation][compress]")
{
    for (auto kind : {mtacfg::Compression::gzip, mtacfg::Compression::zstd}) {
        testing::TempDir dir;
        SinkOptions o;
        o.path = dir / "m.log";
        o.rotate_size = 500;
        o.rotate_keep = 0;
        o.compress = kind;
        o.mode = 0600;
        SinkHarness h(o);
        for (int i = 0; i < 30; ++i) {
            h.put(record(i));
            h.sink->flush();
        }
        h.done();
        const auto files = rotated_files(o.path);
        REQUIRE(files.size() == 3);
        const std::string tool = kind == mtacfg::Compression::gzip ? "/usr/bin/gzip" : "/usr/bin/zstd";
        const std::string ext = kind == mtacfg::Compression::gzip ? ".gz" : ".zst";
        std::string all;
        for (const auto &f : files) {
            CHECK(f.ends_with(ext));
            CHECK((fs::status(f).permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));
            const auto r = testing::run_command({tool, "-dc", f});
            REQUIRE(r.status == 0);
            all += r.out;
        }
        all += testing::read_file(o.path);
        std::string expected;
        for (int i = 0; i < 30; ++i)
            expected += record(i) + "\n";
        CHECK(all == expected);
        CHECK(h.counters.compressed.load() == 3);
        CHECK(h.counters.compress_errors.load() == 0);
        for (const auto &entry : fs::directory_iterator(dir.path()))
            CHECK_FALSE(entry.path().string().ends_with(".tmp"));
    }
}

TEST_CASE("a rotated file a crash left uncompressed is compressed at the next start", "[rotation][compress]")
{
    testing::TempDir dir;
    const std::string left = dir / "m.log.20231114-220000";
    testing::write_file(left, record(1) + "\n");
    testing::write_file(left + ".gz.tmp", "half written"); // a crash mid-compression
    SinkOptions o;
    o.path = dir / "m.log";
    o.compress = mtacfg::Compression::gzip;
    SinkHarness h(o);
    h.done();
    CHECK_FALSE(fs::exists(left));
    CHECK_FALSE(fs::exists(left + ".gz.tmp"));
    const auto r = testing::run_command({"/usr/bin/gzip", "-dc", left + ".gz"});
    CHECK(r.out == record(1) + "\n");
}

TEST_CASE("an error inside a time rotation loses none of the batch being written", "[rotation]")
{
    testing::TempDir dir;
    SinkOptions o;
    o.path = dir / "m.log";
    o.rotate_interval = mtacfg::RotateInterval::hourly;
    SinkHarness h(o);
    h.now = 1700002800;             // the boundary: this batch rotates first
    h.throw_at = h.clock_calls + 2; // the rotation's own reading of the clock fails
    h.put(record(1));
    h.sink->flush();
    h.throw_at = -1;
    h.put(record(2));
    h.sink->flush();
    h.done();
    CHECK(h.counters.written.load() == 2);
    CHECK(h.counters.rotation_errors.load() == 1);
    auto files = rotated_files(o.path);
    files.push_back(o.path);
    CHECK(all_lines(files) == std::vector<std::string>{record(1), record(2)});
}

TEST_CASE("retention counts a rotation once in all its forms, and spares files queued for compression",
          "[rotation]")
{
    testing::TempDir dir;
    const std::string log = dir / "m.log";
    const std::string a = log + ".20231114-220000", b = log + ".20231114-230000", c = log + ".20231115-000000";
    // b is being compressed: both forms exist for a moment.
    for (const std::string &f : {a + ".gz", b, b + ".gz"})
        testing::write_file(f, "x\n");
    CHECK(apply_retention(log, 2).empty()); // two rotations: a and b
    CHECK(fs::exists(a + ".gz"));
    testing::write_file(c + ".zst", "x\n");
    // Three rotations, keep 2: a goes; b's forms stay.
    CHECK(apply_retention(log, 2) == std::vector<std::string>{a + ".gz"});
    // Keep 1: b's two forms go, unless b is still queued (then only b.gz).
    CHECK(apply_retention(log, 1, std::set<std::string>{b}) == std::vector<std::string>{b + ".gz"});
    CHECK(fs::exists(b));
    CHECK(apply_retention(log, 1) == std::vector<std::string>{b});
    CHECK(rotated_files(log) == std::vector<std::string>{c + ".zst"});
}

TEST_CASE("compression and retention, rotations in quick succession: rotate_keep files remain, each compressed once",
          "[rotation][compress]")
{
    testing::TempDir dir;
    SinkOptions o;
    o.path = dir / "m.log";
    o.rotate_size = 200000;
    o.rotate_keep = 1;
    o.compress = mtacfg::Compression::zstd;
    SinkHarness h(o);
    for (int i = 0; i < 12000; ++i) { // about three rotations of 200 kB
        h.put(record(i));
        if (i % 100 == 99) // a write per 5.3 kB: each file ends just past 200 kB
            h.sink->flush();
    }
    h.done();
    CHECK(h.counters.rotations.load() == 3);
    CHECK(h.counters.compressed.load() == 3);
    CHECK(h.counters.compress_errors.load() == 0);
    const auto files = rotated_files(o.path);
    REQUIRE(files.size() == 1);
    CHECK(files[0].ends_with(".zst"));
}

// Plugin review F3: a write that completes a record an earlier failed write
// left partial (its cut-back refused: someone else appended) and stops
// inside the next one leaves only that next record partial; at shutdown on a
// still failing disk only it is cut, never the completed record's end.
// RLIMIT_FSIZE is the failing disk, in a child process.
TEST_CASE("a record completed after an earlier failed write is never cut at shutdown", "[rotation][disk]")
{
    testing::TempDir dir;
    const std::string path = dir / "m.log";
    const std::string r1 = record(1), r2 = record(2); // 52 bytes and a newline each
    CHECK(in_child_with_disk_limit([&](const auto &limit) {
        bool ok = true;
        {
            SinkOptions o;
            o.path = path;
            SinkHarness h(o);
            h.sink->begin_shutdown(std::chrono::steady_clock::now()); // no waiting for the disk
            const int other = ::open(path.c_str(), O_WRONLY | O_APPEND);
            ok = ok && other >= 0 && ::write(other, "x\n", 2) == 2 && ::close(other) == 0;
            ok = ok && limit(2 + 10); // R1 stops after 10 bytes
            h.put(r1);
            h.sink->flush();
            ok = ok && limit(2 + 53 + 10); // R1 completes; R2 stops after 10 bytes
            h.put(r2);
            h.sink->flush();
            h.done(); // still failing: the partial R2 is cut
            ok = ok && limit(RLIM_INFINITY);
        }
        return ok && testing::read_file(path) == "x\n" + r1 + "\n";
    }));
    const std::string text = testing::read_file(path);
    INFO(text);
    CHECK(text == "x\n" + r1 + "\n");
}
