// mtalog-ship's follower without a server: what its lag counts.
#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <unistd.h>
#include <vector>
#include <zstd.h>

#include "cursor.hpp"
#include "follower.hpp"
#include "ledger.hpp"
#include "test_support.hpp"
#include "zstd_bytes.hpp"

using namespace mtalog::ship;

TEST_CASE("ship follower: records a round sends back to a finished compressed file count in the lag until read "
          "again",
          "[ship]")
{
    testing::TempDir dir;
    std::string rotated;
    for (int i = 0; i < 50; ++i)
        rotated += "1700000000@m" + std::to_string(i) + "@@@@@R@example.com@x@@delivered\n";
    testing::write_file(dir / "attempt.log.1.zst", zstd_bytes(rotated));
    testing::write_file(dir / "attempt.log", "1700000100@live@@@@@R@example.com@x@@delivered\n");

    ShipFile spec;
    spec.path = dir / "attempt.log";
    spec.format = "mainlog";
    FollowerSettings fs;
    fs.rotated_idle = 0;
    Cursor cursor;
    Ledger ledger(20000);
    Follower f(spec, fs, cursor, ledger, [](const std::string &) {});
    std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> where; // line -> key, offset
    const auto take = [&](std::uint64_t key, std::uint64_t offset, std::string_view line) {
        where[std::string(line)] = {key, offset};
        const auto end = offset + line.size() + 1;
        REQUIRE(ledger.consider(key, offset, end) == Ledger::Line::send);
        ledger.sent(key, offset, end, 0);
        return true;
    };
    Millis now = 1000;
    std::uint64_t key = 0;
    for (int i = 0; i < 50 && !(key && cursor.files[key].done_end); ++i, now += 1100) {
        f.pump(now, take);
        const auto first = where.find("1700000000@m0@@@@@R@example.com@x@@delivered");
        key = first == where.end() ? 0 : first->second.first;
    }
    REQUIRE(where.size() >= 50); // the compressed file's records (the live one may wait)
    REQUIRE(key != 0);
    REQUIRE(cursor.files[key].done_end);
    const Follower::Lag before = f.unread(); // the live file's line, if not read yet
    CHECK(before.bytes <= 47);

    // A round found the 11th record of the compressed file missing: the
    // ledger moves the file's read position back to it.
    const auto [k, offset] = where.at("1700000000@m10@@@@@R@example.com@x@@delivered");
    REQUIRE(k == key);
    ledger.set_read_pos(key, offset);
    const Follower::Lag lag = f.unread();
    CHECK(lag.bytes == before.bytes + (*cursor.files[key].done_end - offset));
    CHECK(lag.records >= before.records + 1);
}

TEST_CASE("ship follower: a partial last line taken back and written over between two reads is never glued to "
          "the new record",
          "[ship]")
{
    testing::TempDir dir;
    const std::string path = dir / "attempt.log";
    const std::string first = "1700000000@m1@@@@@R@example.com@x@@delivered";
    const std::string torn = "1700000000@torn fragm";
    const std::string next = "1700000001@m2@@@@@R@example.com@x@@delivered after the cut";
    testing::write_file(path, first + "\n" + torn);

    ShipFile spec;
    spec.path = path;
    spec.format = "mainlog";
    FollowerSettings fs;
    Cursor cursor;
    Ledger ledger(20000);
    Follower f(spec, fs, cursor, ledger, [](const std::string &) {});
    std::vector<std::string> lines;
    const auto take = [&](std::uint64_t key, std::uint64_t offset, std::string_view line) {
        lines.emplace_back(line);
        const auto end = offset + line.size() + 1;
        (void)ledger.consider(key, offset, end);
        ledger.sent(key, offset, end, 0);
        if (lines.size() == 1) {
            // While the follower holds the partial line: the next mtalog
            // cuts it back and writes its first record there.
            REQUIRE(::truncate(path.c_str(), static_cast<off_t>(first.size() + 1)) == 0);
            std::ofstream(path, std::ios::app | std::ios::binary) << next << "\n";
        }
        return true;
    };
    for (Millis now = 1000; now < 10000 && lines.size() < 2; now += 1100)
        f.pump(now, take);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0] == first);
    CHECK(lines[1] == next);
}
