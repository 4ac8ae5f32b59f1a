// log_reopen while 4 threads keep logging: the file is renamed away and
// reopened several times; every record lands exactly once, whole, in one of
// the files.
#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <set>
#include <thread>
#include <vector>

#include "test_support.hpp"

TEST_CASE("reopen under 4 logging threads loses, duplicates, splits and reorders nothing", "[reopen][concurrency]")
{
    testing::TempDir dir;
    const std::string path = dir / "attempt.log";
    testing::Harness h(dir, "attempt_logfile = \"" + path + "\"\nflush_interval = 1ms\nqueue_size = 1024");
    REQUIRE(h.error().empty());

    constexpr int kThreads = 4;
    constexpr int kPerThread = 20000;
    constexpr int kReopens = 10;
    std::atomic<long> done{0};
    std::array<std::atomic<int>, kThreads> progress{}; // records each thread has finished logging
    // Writers may run at most one part ahead of the reopens (part r: the
    // records meant for between reopens r and r + 1), so the records spread
    // over the files however the scheduler treats the reopening thread, and
    // writers still have work while a reopen runs.
    std::atomic<int> reopens_begun{0};
    std::vector<std::thread> writers;
    for (int t = 0; t < kThreads; ++t) {
        writers.emplace_back([&, t] {
            char domain[] = "example.com";
            domain_record dr{domain, 0, 0};
            for (int i = 0; i < kPerThread; ++i) {
                while (i * (kReopens + 1) / kPerThread > reopens_begun.load() + 1)
                    std::this_thread::yield();
                ec_message msg{};
                msg.id = message_id{0x5F000000u + static_cast<uint32_t>(t), 1, static_cast<uint16_t>(i)};
                const std::string note = "t" + std::to_string(t) + "-" + std::to_string(i);
                timeval now{1700000000, 0};
                h.core().log_attempt(&msg, &dr, &now, note.data(), static_cast<int>(note.size()));
                progress[t].store(i + 1);
                done.fetch_add(1);
            }
        });
    }
    std::vector<std::string> rotated;
    // before[r][t]: records of thread t finished before reopen r began (they
    // must be in file r or earlier); after[r][t]: finished when it returned
    // (records from after[r][t] + 1 on began later and must be in a later file).
    std::vector<std::array<int, kThreads>> before(kReopens + 1), after(kReopens + 1);
    for (int r = 1; r <= kReopens; ++r) {
        while (done.load() < static_cast<long>(kThreads) * kPerThread * r / (kReopens + 1))
            std::this_thread::yield();
        const std::string old = path + "." + std::to_string(r);
        REQUIRE(std::rename(path.c_str(), old.c_str()) == 0);
        rotated.push_back(old);
        for (int t = 0; t < kThreads; ++t)
            before[r][t] = progress[t].load();
        reopens_begun.store(r);
        h.core().log_reopen();
        for (int t = 0; t < kThreads; ++t)
            after[r][t] = progress[t].load();
        REQUIRE(std::filesystem::exists(path)); // created again by the reopen, before it returned
    }
    for (auto &w : writers)
        w.join();
    h.stop();
    rotated.push_back(path);

    // A whole record: the fixed prefix, the id, the fixed middle, "t<thread>-<i>".
    auto parse = [](const std::string &line, int &thread, int &index) {
        const std::string middle = "@@@A@example.com@0@default@default@0@0@@@t";
        if (line.size() < 11 + 20 + middle.size() + 3 || line.compare(0, 11, "1700000000@") != 0 ||
            line.compare(11 + 5, 6, "-00001") != 0 || line.compare(11 + 12, 7, "5F00000") != 0 ||
            line.compare(31, middle.size(), middle) != 0)
            return false;
        const std::string tail = line.substr(31 + middle.size());
        const auto dash = tail.find('-');
        if (dash != 1 || tail[0] < '0' || tail[0] > '3' || tail.size() < 3 ||
            tail.find_first_not_of("0123456789", 2) != std::string::npos)
            return false;
        thread = tail[0] - '0';
        index = std::stoi(tail.substr(2));
        return line[11 + 19] == static_cast<char>('0' + thread);
    };
    std::set<std::pair<int, int>> seen;
    long total = 0, duplicates = 0, broken = 0, out_of_order = 0;
    std::size_t nonempty_files = 0;
    for (std::size_t k = 1; k <= rotated.size(); ++k) { // file k holds what came between reopens k-1 and k
        const auto lines = testing::read_lines(rotated[k - 1]);
        nonempty_files += lines.empty() ? 0 : 1;
        for (const auto &line : lines) {
            int thread = -1, index = -1;
            if (!parse(line, thread, index)) {
                ++broken;
                continue;
            }
            ++total;
            if (!seen.emplace(thread, index).second)
                ++duplicates;
            for (int r = 1; r <= kReopens; ++r) {
                if (index < before[r][thread] && static_cast<int>(k) > r)
                    ++out_of_order; // accepted before reopen r, written after it
                if (index > after[r][thread] && static_cast<int>(k) <= r)
                    ++out_of_order; // begun after reopen r returned, written before it
            }
        }
    }
    CHECK(broken == 0);
    CHECK(duplicates == 0);
    CHECK(out_of_order == 0);
    long window = 0;
    for (int r = 1; r <= kReopens; ++r)
        for (int t = 0; t < kThreads; ++t)
            window += after[r][t] - before[r][t];
    // The reopens really raced the writers: records were logged while they ran.
    INFO("records logged while reopens ran: " << window);
    CHECK(window >= kReopens);
    CHECK(total == kThreads * kPerThread);
    CHECK(seen.size() == static_cast<std::size_t>(kThreads * kPerThread));
    CHECK(nonempty_files >= 3); // the records really were spread over several files
}

TEST_CASE("reopen creates a missing file and keeps writing the old one if the new cannot be opened", "[reopen]")
{
    testing::TempDir dir;
    std::filesystem::create_directory(dir / "logs");
    const std::string path = dir / "logs/m.log";
    testing::Harness h(dir, "mainlog = \"" + path + "\"");
    REQUIRE(h.error().empty());
    timeval now{1700000000, 0};
    h.core().log_connection_failure(nullptr, 0, nullptr, 1, &now);
    std::filesystem::rename(dir / "logs", dir / "gone"); // the directory itself disappears
    h.core().log_reopen();                                // cannot create logs/m.log: keep the old fd
    h.core().log_connection_failure(nullptr, 0, nullptr, 2, &now);
    h.stop();
    CHECK(testing::read_lines(dir / "gone/m.log") ==
          std::vector<std::string>{"1700000000@@@@C@@@@@1@0@", "1700000000@@@@C@@@@@2@0@"});
    bool reported = false;
    for (const auto &p : h.panics())
        if (p.find("cannot reopen log file \"" + path + "\": No such file or directory; still writing to the file "
                   "opened before") != std::string::npos)
            reported = true;
    CHECK(reported);
}
