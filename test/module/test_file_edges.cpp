// A file's edges across a crash: a record the crash cut short at the end of
// a file (no newline) is cut off before the first new record, counted and
// reported, so no record is ever joined to a fragment; in every format, and
// whatever the file holds before it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "file_checks.hpp"

namespace {

// The harness's reports that name `needle`.
int reports_with(const testing::Harness &h, const std::string &needle)
{
    int n = 0;
    for (const auto &p : h.panics())
        n += p.find(needle) != std::string::npos;
    return n;
}

} // namespace

TEST_CASE("a record a crash cut short at the end of a file is cut off, counted and reported, not joined",
          "[files]")
{
    struct Case {
        std::string format;
        std::string before; // what the file holds when mtalog opens it
        std::string kept;   // what must stay of it
    };
    const std::string whole = R"({"type":"attempt","timestamp":1.000000,"note":"whole"})";
    const std::vector<Case> cases{
        {"json", whole + "\n" + R"({"type":"attempt","timestamp":2.0000)", whole + "\n"},
        {"json", R"({"type":"attem)", ""},                                   // nothing whole at all
        {"mainlog", "1@00/00-1-1@0@A@x@y@z@example.com@a@b@2@1@0@note cut in the mi", ""},
        {"mainlog", std::string(10000, 'x') + "\n" + std::string(9000, 'y'), std::string(10000, 'x') + "\n"},
    };
    for (const Case &c : cases) {
        INFO(c.format << ": " << c.before.substr(0, 60));
        testing::TempDir dir;
        const std::string path = dir / "m.log";
        testing::write_file(path, c.before);
        testing::Harness h(dir, "connection_failure_logfile = \"" + path + "\"\nconnection_failure_format = " + c.format);
        REQUIRE(h.error().empty());
        testing::log_numbered(h, 0, 3);
        h.stop();
        CHECK(testing::closing_counters(h, path).at("torn_records") == 1);
        CHECK(reports_with(h, "of a record a crash cut short") == 1);
        const std::string text = testing::read_file(path);
        REQUIRE(text.starts_with(c.kept));
        const auto lines = testing::read_lines(path);
        const std::size_t kept_lines = static_cast<std::size_t>(std::count(c.kept.begin(), c.kept.end(), '\n'));
        REQUIRE(lines.size() == kept_lines + 3);
        for (std::size_t i = kept_lines; i < lines.size(); ++i) {
            // Each new line is one of this run's records, whole, from its first byte.
            if (c.format == "json") {
                const auto j = nlohmann::json::parse(lines[i]);
                CHECK(j.at("type") == "connection_failure");
                CHECK(j.at("binding_slot") == static_cast<int>(i - kept_lines));
            } else {
                CHECK(lines[i].starts_with("1700000000@@@@C@"));
                CHECK(lines[i].ends_with("@" + std::to_string(i - kept_lines) + "@0@"));
            }
        }
    }
}

TEST_CASE("a torn record met at log_reopen is cut off too, counted, before the new file's first record", "[files]")
{
    testing::TempDir dir;
    const std::string path = dir / "m.log";
    testing::Harness h(dir, "connection_failure_logfile = \"" + path + "\"\nconnection_failure_format = json");
    REQUIRE(h.error().empty());
    testing::log_numbered(h, 0, 2);
    h.core().log_reopen(); // the two records are in m.log
    REQUIRE(::rename(path.c_str(), (path + ".1").c_str()) == 0);
    // What the path names at the next reopen ends in a fragment (a writer
    // killed mid-record put it there).
    testing::write_file(path, R"({"type":"connection_failure","binding_sl)");
    h.core().log_reopen();
    testing::log_numbered(h, 2, 2);
    h.stop();
    CHECK(testing::closing_counters(h, path).at("torn_records") == 1);
    CHECK(reports_with(h, "of a record a crash cut short") == 1);
    CHECK(testing::read_lines(path + ".1").size() == 2);
    const auto lines = testing::read_lines(path);
    REQUIRE(lines.size() == 2);
    for (std::size_t i = 0; i < lines.size(); ++i)
        CHECK(nlohmann::json::parse(lines[i]).at("binding_slot") == static_cast<int>(2 + i));
}

TEST_CASE("a file that ends in a newline, or is empty, is left as it is", "[files]")
{
    for (const std::string &before : {std::string(), std::string("a whole line\n")}) {
        testing::TempDir dir;
        const std::string path = dir / "m.log";
        testing::write_file(path, before);
        testing::Harness h(dir, "mainlog = \"" + path + "\"");
        REQUIRE(h.error().empty());
        testing::log_numbered(h, 0, 2);
        h.stop();
        CHECK(testing::closing_counters(h, path).at("torn_records") == 0);
        CHECK(reports_with(h, "crash cut short") == 0);
        CHECK(testing::read_file(path).starts_with(before));
        CHECK(testing::read_lines(path).size() == (before.empty() ? 2u : 3u));
    }
}

// Run under strace by the next test: rotations compressed with `format`.
TEST_CASE("(rotations compressed)", "[.compress_run]")
{
    const char *dir_name = std::getenv("MTALOG_TEST_DIR");
    const char *kind = std::getenv("MTALOG_TEST_COMPRESS");
    REQUIRE(dir_name != nullptr);
    REQUIRE(kind != nullptr);
    const std::string path = std::string(dir_name) + "/m.log";
    testing::TempDir unused;
    testing::Harness h(unused, "mainlog = \"" + path + "\"\nrotate_size = 4k\nrotate_keep = 0\ncompress = " + kind +
                                   "\nflush_interval = 5ms");
    REQUIRE(h.error().empty());
    for (int round = 0; round < 3; ++round) { // each over 4 KiB: a rotation per round
        testing::log_numbered(h, round * 200, 200);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    h.stop(); // the compressor finishes its queue
}

// A compressed file is on disk, and its name in the directory, before the
// file it came from is removed: fsync of the temporary, its rename, fsync of
// the directory, then the unlink; a power loss leaves one whole form.
TEST_CASE("a rotated file is compressed durably: data synced, renamed, directory synced, then the original removed",
          "[files][rotation][compress]")
{
    if (std::system("strace -f -qq -o /dev/null true >/dev/null 2>&1") != 0) {
        WARN("strace is not installed, or may not trace here: not checked");
        return;
    }
    for (const std::string kind : {"gzip", "zstd"}) {
        INFO(kind);
        testing::TempDir dir;
        const std::string trace = dir / "trace.txt";
        const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
        // (LeakSanitizer cannot run under ptrace: off for the traced run.)
        const std::string cmd = "ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0\" MTALOG_TEST_DIR='" +
                                dir.path() + "' MTALOG_TEST_COMPRESS=" + kind +
                                " strace -f -qq -y -e trace=fsync,rename,renameat,renameat2,unlink,unlinkat -o '" +
                                trace + "' '" + self + "' '[.compress_run]' >/dev/null 2>&1";
        REQUIRE(std::system(cmd.c_str()) == 0);
        const auto calls = testing::read_lines(trace);
        // Per compressed file: the index of each step in the trace.
        const std::string ext = kind == "gzip" ? ".gz" : ".zst";
        int files = 0;
        for (std::size_t i = 0; i < calls.size(); ++i) {
            const auto at = calls[i].find(ext + ".tmp\", \"");
            if (calls[i].find("rename") == std::string::npos || at == std::string::npos)
                continue;
            // rename("<dir>/m.log.<stamp>.zst.tmp", "<dir>/m.log.<stamp>.zst")
            const auto open_quote = calls[i].find('"');
            const std::string temp = calls[i].substr(open_quote + 1, calls[i].find('"', open_quote + 1) - open_quote - 1);
            const std::string original = temp.substr(0, temp.size() - ext.size() - 4);
            INFO(original);
            ++files;
            bool synced_before = false;
            for (std::size_t k = 0; k < i; ++k)
                synced_before |= calls[k].find("fsync(") != std::string::npos && calls[k].find(temp + ">") != std::string::npos;
            CHECK(synced_before);
            std::size_t dir_sync = 0, removed = 0;
            for (std::size_t k = i + 1; k < calls.size(); ++k) {
                if (dir_sync == 0 && calls[k].find("fsync(") != std::string::npos &&
                    calls[k].find("<" + dir.path() + ">") != std::string::npos)
                    dir_sync = k;
                if (removed == 0 && calls[k].find("unlink") != std::string::npos &&
                    calls[k].find("\"" + original + "\"") != std::string::npos)
                    removed = k;
            }
            CHECK(dir_sync > i);
            CHECK(removed > dir_sync);
        }
        CHECK(files >= 2);
    }
}
