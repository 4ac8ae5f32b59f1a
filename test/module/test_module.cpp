// The real mtalog.so through the core's Boost.DLL loader: it loads, writes
// records, exports only its entry point, and every load failure is one line
// naming the file and the reason.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <thread>
#include <sys/stat.h>

#include "counters.hpp"
#include "module_loader.hpp"
#include "test_support.hpp"

namespace {

std::string load_error(const std::string &dir, const std::string &name)
{
    auto result = mtacore::load_module(dir, name);
    REQUIRE(std::holds_alternative<std::string>(result));
    return std::get<std::string>(result);
}

} // namespace

TEST_CASE("the built mtalog.so loads through Boost.DLL and writes all three records", "[module]")
{
    testing::TempDir dir;
    testing::Harness h(dir, "attempt_logfile = \"" + dir / "a.log" + "\"\nconnection_failure_logfile = \"" +
                                dir / "c.log" + "\"\npermanent_failure_logfile = \"" + dir / "p.log" + "\"");
    REQUIRE(h.error().empty());
    ec_message msg{};
    msg.id = message_id{0x5F000000u, 1, 1};
    char domain[] = "example.com";
    domain_record dr{domain, 0, 0};
    timeval now{1700000000, 0};
    h.core().log_attempt(&msg, &dr, &now, "250 ok", 6);
    h.core().log_connection_failure(nullptr, CONN_ERROR_SOCKET, &dr, 0, &now);
    h.core().log_permanent_failure(&msg, &dr, &now, nullptr);
    h.stop();
    CHECK(testing::read_lines(dir / "a.log") ==
          std::vector<std::string>{"1700000000@00/01-00001-5F000000@@@A@example.com@0@default@default@0@0@@@250 ok"});
    CHECK(testing::read_lines(dir / "c.log") ==
          std::vector<std::string>{"1700000000@@@@C@example.com@@default@default@0@1024@CONN_ERROR_SOCKET"});
    CHECK(testing::read_lines(dir / "p.log") ==
          std::vector<std::string>{"1700000000@00/01-00001-5F000000@@@P@example.com@0@default@default@0@0@@@"});
}

TEST_CASE("the module's threads carry its name: mtalog-writer and mtalog-flush", "[module]")
{
    // Thread id -> name, from /proc (a thread joined a moment ago may still be listed).
    const auto threads = [] {
        std::map<std::string, std::string> out;
        std::error_code ec;
        for (const auto &task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
            const std::string comm = testing::read_file(task.path() / "comm");
            out[task.path().filename().string()] = comm.substr(0, comm.find('\n'));
        }
        return out;
    };
    const auto before = threads();
    testing::TempDir dir;
    testing::Harness h(dir, "mainlog = \"" + dir / "m.log" + "\"");
    REQUIRE(h.error().empty());
    // A new thread of each name (each names itself once it runs: up to 5 s).
    const auto has_new = [&](const std::map<std::string, std::string> &now, const std::string &name) {
        return std::any_of(now.begin(), now.end(), [&](const auto &t) { return t.second == name && !before.count(t.first); });
    };
    bool named = false;
    for (int i = 0; i < 100 && !named; ++i) {
        const auto now = threads();
        named = has_new(now, "mtalog-writer") && has_new(now, "mtalog-flush");
        if (!named)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    CHECK(named);
    h.stop();
}

TEST_CASE("log files are created with exactly the configured mode, whatever the umask", "[module]")
{
    testing::TempDir dir;
    const mode_t old = ::umask(0077);
    {
        testing::Harness h(dir, "mainlog = \"" + dir / "m.log" + "\"\nlog_mode = 0644");
        REQUIRE(h.error().empty());
    }
    ::umask(old);
    struct stat st {};
    REQUIRE(::stat((dir / "m.log").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0644);
}

TEST_CASE("the module exports only its two entry points: the core's and Exim's", "[module]")
{
    const auto result = testing::run_command(
        {"/usr/bin/nm", "-D", "--defined-only", testing::modules_dir() + "/mtalog.so"});
    REQUIRE(result.status == 0);
    std::vector<std::string> symbols;
    std::size_t start = 0;
    while (start < result.out.size()) {
        auto end = result.out.find('\n', start);
        const std::string line = result.out.substr(start, end - start);
        symbols.push_back(line.substr(line.rfind(' ') + 1));
        start = end == std::string::npos ? result.out.size() : end + 1;
    }
    CHECK(symbols == std::vector<std::string>{"ec_module_entry", "mtalog_exim_event"});
}

TEST_CASE("load failures are one line naming the file and the reason", "[module][loader]")
{
    const std::string dir = testing::test_modules_dir();
    CHECK(load_error(dir, "mtalgo") == dir + "/mtalgo.so: no such module file for stanza 'mtalgo'");
    CHECK(load_error(testing::modules_dir(), "mtalgo") ==
          testing::modules_dir() + "/mtalgo.so: no such module file for stanza 'mtalgo' (did you mean 'mtalog'?)");
    CHECK(load_error(dir, "not_elf") == dir + "/not_elf.so: not a shared object (no ELF header)");
    CHECK(load_error(dir, "no_entry") == dir + "/no_entry.so: not an mtahooks module (no ec_module_entry symbol)");
    CHECK(load_error(dir, "bad_abi") ==
          dir + "/bad_abi.so: module ABI version 99 does not match this core's ABI version 1");
    CHECK(load_error("/nonexistent", "mtalog") ==
          "/nonexistent/mtalog.so: no such module file for stanza 'mtalog'; modules_path \"/nonexistent\" is not a "
          "directory");
}

TEST_CASE("the module refuses a core of another ABI version", "[module][loader]")
{
    auto loaded = mtacore::load_module(testing::modules_dir(), "mtalog");
    REQUIRE(std::holds_alternative<std::shared_ptr<mtacore::LoadedModule>>(loaded));
    const auto &module = std::get<std::shared_ptr<mtacore::LoadedModule>>(loaded);
    mtacore::Core core;
    ec_core foreign = *core.c_api();
    foreign.abi_version = 7;
    ec_config_stanza stanza{};
    stanza.module = "mtalog";
    void *instance = reinterpret_cast<void *>(1);
    char err[512] = "";
    CHECK(module->info().create(&foreign, &stanza, &instance, err, sizeof err) == EC_MODULE_ERROR);
    CHECK(instance == nullptr);
    CHECK(std::string(err).rfind("mtalog: core ABI version 7 (table size ", 0) == 0);
}

TEST_CASE("a stanza the module refuses stops the whole configuration, before any file is opened", "[module]")
{
    testing::TempDir dir;
    testing::Harness h(dir, "mainlog = \"" + dir / "m.log" + "\"\nqueue_sise = 100");
    CHECK(h.error() == dir / "mtacore.conf" +
                           ":4:1: unknown option 'queue_sise' in mtalog \"test\" (did you mean 'queue_size'?)");
    CHECK_FALSE(std::filesystem::exists(dir / "m.log"));
}

TEST_CASE("two instances naming one file are refused, with both positions", "[module]")
{
    testing::TempDir dir;
    const std::string conf = dir / "two.conf";
    // Same file, same format: still one writer per file, or both would
    // rotate it, apply retention and write its header on their own.
    testing::write_file(conf, "modules_path = \"" + testing::modules_dir() + "\"\n"
                              "mtalog \"a\" { mainlog = \"" + dir / "m.log" + "\" }\n"
                              "mtalog \"b\" {\n  attempt_logfile = \"" + dir / "m.log" + "\"\n  log_connection_failures = off\n"
                              "  log_permanent_failures = off\n}\n");
    mtacore::Core core;
    auto result = mtacore::Host::configure(core, conf, testing::modules_dir());
    REQUIRE(std::holds_alternative<std::string>(result));
    CHECK(std::get<std::string>(result) == conf + ":4:22: log file \"" + dir / "m.log" +
                                               "\" is already written by mtalog \"a\" (" + conf +
                                               ":2:25); one file has one writer: give each instance its own files");
    CHECK_FALSE(std::filesystem::exists(dir / "m.log"));
}

TEST_CASE("the stats control command reports per-file counters", "[module]")
{
    testing::TempDir dir;
    testing::Harness h(dir, "mainlog = \"" + dir / "m.log" + "\"");
    REQUIRE(h.error().empty());
    timeval now{1700000000, 0};
    for (int i = 0; i < 3; ++i)
        h.core().log_connection_failure(nullptr, 0, nullptr, 0, &now);
    const std::string stats = h.host().control("stats");
    CHECK(stats.rfind("mtalog \"test\": file=\"" + dir / "m.log" + "\" accepted=3 ", 0) == 0);
    CHECK(stats.find("\nmtalog \"test\": total accepted=3 ") != std::string::npos);
    h.stop();
    bool closed_reported = false;
    for (const auto &p : h.panics())
        if (p.find("closed \"" + dir / "m.log" + "\": accepted=3 written=3 ") != std::string::npos)
            closed_reported = true;
    CHECK(closed_reported);
}

TEST_CASE("the documented C example compiles against the ABI headers as strict C11", "[module][docs]")
{
    const std::string readme = testing::read_file(testing::source_dir() + "/docs/mtacore.md");
    const auto begin = readme.find("```c\n");
    REQUIRE(begin != std::string::npos);
    const auto end = readme.find("```", begin + 5);
    REQUIRE(end != std::string::npos);
    testing::TempDir dir;
    testing::write_file(dir / "example.c", readme.substr(begin + 5, end - begin - 5));
    const auto r = testing::run_command({"/usr/bin/cc", "-std=c11", "-Wall", "-Wextra", "-pedantic", "-Werror", "-c",
                                         "-I" + testing::source_dir() + "/hooks/include", dir / "example.c", "-o",
                                         dir / "example.o"});
    INFO(r.err);
    CHECK(r.status == 0);
}

TEST_CASE("debug_level 1 reports each file opened and reopened; 0 does not", "[module]")
{
    testing::TempDir dir;
    for (int level : {0, 1}) {
        testing::Harness h(dir, "attempt_logfile = \"" + dir / "a.log" + "\"\npermanent_failure_logfile = \"" +
                                    dir / "a.log" + "\"\ndebug_level = " + std::to_string(level));
        REQUIRE(h.error().empty());
        h.core().log_reopen();
        h.stop();
        const auto panics = h.panics();
        const std::string opened = "mtalog \"test\": writing attempt, permanent_failure records to \"" +
                                   dir / "a.log" + "\" (format mainlog)";
        const std::string reopened = "mtalog \"test\": reopened \"" + dir / "a.log" + "\"";
        CHECK((std::find(panics.begin(), panics.end(), opened) != panics.end()) == (level == 1));
        CHECK((std::find(panics.begin(), panics.end(), reopened) != panics.end()) == (level == 1));
    }
}

TEST_CASE("the documented counter table and logrotate snippet are the real ones", "[module][docs]")
{
    std::string rows = "| counter | meaning |\n| --- | --- |\n";
#define MTALOG_COUNTER_ROW(name, meaning) rows += "| `" #name "` | " meaning " |\n";
    MTALOG_FILE_COUNTERS(MTALOG_COUNTER_ROW)
#undef MTALOG_COUNTER_ROW
    CHECK(testing::generated_section("docs/operations.md", "counters") == rows);
    CHECK(testing::generated_section("docs/operations.md", "logrotate") ==
          "```\n" + testing::read_file(testing::source_dir() + "/config/logrotate.mtalog") + "```\n");
}

TEST_CASE("enabled = off loads the instance passively: no hooks, no files", "[module]")
{
    testing::TempDir dir;
    testing::Harness h(dir, "mainlog = \"" + dir / "m.log" + "\"\nenabled = off");
    REQUIRE(h.error().empty());
    CHECK(h.core().hooks().provider_count(mtacore::Hook::log_attempt_v1) == 0);
    CHECK(h.core().hooks().provider_count(mtacore::Hook::log_reopen) == 0);
    timeval now{1700000000, 0};
    h.core().log_attempt(nullptr, nullptr, &now, "x", 1);
    h.stop();
    CHECK_FALSE(std::filesystem::exists(dir / "m.log"));
}

TEST_CASE("a symlink planted at the log path is refused at reopen; the old file stays in use", "[module]")
{
    testing::TempDir dir;
    const std::string path = dir / "m.log";
    testing::Harness h(dir, "mainlog = \"" + path + "\"");
    REQUIRE(h.error().empty());
    timeval now{1700000000, 0};
    h.core().log_connection_failure(nullptr, 0, nullptr, 1, &now);
    std::filesystem::rename(path, path + ".1");
    testing::write_file(dir / "target", "");
    std::filesystem::create_symlink(dir / "target", path); // an attacker's link
    h.core().log_reopen();
    h.core().log_connection_failure(nullptr, 0, nullptr, 2, &now);
    h.stop();
    CHECK(testing::read_file(dir / "target").empty());
    CHECK(testing::read_lines(path + ".1").size() == 2);
    bool reported = false;
    for (const auto &p : h.panics())
        reported = reported || p.find("cannot reopen log file \"" + path + "\": Too many levels of symbolic links") !=
                                   std::string::npos;
    CHECK(reported);
}
