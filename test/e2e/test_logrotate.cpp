// The real logrotate (Debian's) rotating mtacore's files over and over while
// `mtacore --generate` logs from 4 threads: logrotate's `create` mode and a
// postrotate SIGHUP, as shipped in config/logrotate.mtalog. Afterwards every
// record is in exactly one file, whole.
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <set>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "file_checks.hpp"

namespace fs = std::filesystem;

namespace {

// The shipped snippet, pointed at `dir`'s files and pid file.
std::string shipped_snippet(const testing::TempDir &dir, const std::vector<std::pair<std::string, std::string>> &edits)
{
    std::string snippet = testing::read_file(testing::source_dir() + "/config/logrotate.mtalog");
    auto replace_all = [&](const std::string &from, const std::string &to) {
        for (auto p = snippet.find(from); p != std::string::npos; p = snippet.find(from, p + to.size()))
            snippet.replace(p, from.size(), to);
    };
    replace_all("/var/log/mtalog", dir.path());
    replace_all("/run/mtacore.pid", dir / "mtacore.pid");
    for (const auto &[from, to] : edits)
        replace_all(from, to);
    return snippet;
}

bool logrotate_installed(const std::string &path)
{
    if (!fs::exists(path))
        WARN("skipped: logrotate is not installed (scripts/install-deps installs it)");
    return fs::exists(path);
}

fs::perms mode_of(const std::string &path) { return fs::status(path).permissions() & fs::perms::all; }

long long summary_number(const std::string &out, const std::string &label)
{
    const auto at = out.find("  " + label + " ");
    REQUIRE(at != std::string::npos);
    return std::stoll(out.substr(out.find_first_not_of(' ', at + label.size() + 2)));
}

} // namespace

TEST_CASE("logrotate create + postrotate SIGHUP during 4-thread traffic loses and duplicates nothing", "[logrotate]")
{
    const std::string logrotate = "/usr/sbin/logrotate";
    if (!logrotate_installed(logrotate))
        return;
    testing::TempDir dir;
    const std::string conf = dir / "mtacore.conf";
    testing::write_file(conf, "modules_path = \"" + testing::modules_dir() + "\"\n"
                              "mtalog \"main\" {\n"
                              "  attempt_logfile = \"" + dir / "attempt.log" + "\"\n"
                              "  permanent_failure_logfile = \"" + dir / "mainlog.ec" + "\"\n"
                              "  log_connection_failures = off\n"
                              "  flush_interval = 10ms\n"
                              "}\n");
    const std::string snippet = shipped_snippet(dir, {{"rotate 7", "rotate 10000"},
                                                      {"    compress\n", ""},
                                                      {"    delaycompress\n", ""},
                                                      {"    daily\n", ""}});
    testing::write_file(dir / "logrotate.conf", snippet);

    int out_pipe[2];
    REQUIRE(pipe(out_pipe) == 0);
    const std::string exe = testing::mtacore_exe(), pidfile = dir / "mtacore.pid"; // not made in the child
    const pid_t pid = fork();
    if (pid == 0) {
        dup2(out_pipe[1], 1);
        close(out_pipe[0]);
        close(out_pipe[1]);
        execl(exe.c_str(), exe.c_str(), "--config", conf.c_str(), "--generate", "1000000", "--threads", "4",
              "--reopens", "0", "--quiet", "--pidfile", pidfile.c_str(), static_cast<char *>(nullptr));
        _exit(127);
    }
    close(out_pipe[1]);
    for (int i = 0; i < 500 && !fs::exists(dir / "mtacore.pid"); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));

    int rotations = 0, status = 0;
    std::string logrotate_errors;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        const auto r = testing::run_command({logrotate, "-f", "-s", dir / "logrotate.state", dir / "logrotate.conf"});
        if (r.status == 0)
            ++rotations;
        else
            logrotate_errors += r.err;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const std::string out = testing::read_all_and_close(out_pipe[0]);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    INFO(out);
    INFO(logrotate_errors);

    std::set<std::string> ids;
    long long attempts = 0, failures = 0, broken = 0, files = 0;
    for (const auto &entry : fs::directory_iterator(dir.path())) {
        const std::string name = entry.path().filename().string();
        const bool attempt_file = name.starts_with("attempt.log");
        if (!attempt_file && !name.starts_with("mainlog.ec"))
            continue;
        ++files;
        for (const auto &line : testing::read_lines(entry.path().string())) {
            // time@msgid@batchid@connid@A|P@... : 14 fields, the id second.
            const auto first = line.find('@');
            const std::string id = first == std::string::npos ? "" : line.substr(first + 1, 20);
            const auto type_at = line.find('@', line.find('@', line.find('@', first + 1) + 1) + 1);
            const char type = type_at == std::string::npos || type_at + 1 >= line.size() ? '?' : line[type_at + 1];
            if (id.size() != 20 || type != (attempt_file ? 'A' : 'P')) {
                ++broken;
                continue;
            }
            (attempt_file ? attempts : failures) += 1;
            ids.insert(id);
        }
    }
    CHECK(broken == 0);
    CHECK(attempts == summary_number(out, "attempt"));
    CHECK(failures == summary_number(out, "permanent_failure"));
    CHECK(static_cast<long long>(ids.size()) == attempts + failures); // no record twice
    CHECK(rotations >= 5);
    CHECK(logrotate_errors.empty());
    const std::string first_line = out.substr(0, out.find('\n'));
    const auto latency_at = out.find("hook-call latency");
    WARN("logrotate storm: " << rotations << " rotations, " << files << " files; " << first_line << "; "
                             << out.substr(latency_at, out.find('\n', latency_at) - latency_at));
}

TEST_CASE("logrotate keeps each file's own mode on the rotated, compressed and new files", "[logrotate]")
{
    const std::string logrotate = "/usr/sbin/logrotate";
    if (!logrotate_installed(logrotate))
        return;
    testing::TempDir dir;
    const std::string attempts = dir / "attempt.log", bounces = dir / "mainlog.ec";
    testing::Harness h(dir, "attempt_logfile = \"" + attempts + "\"\nattempt_log_mode = 0600\n"
                            "permanent_failure_logfile = \"" + bounces + "\"\nlog_connection_failures = off\n"
                            "flush_interval = 5ms");
    REQUIRE(h.error().empty());
    auto log_both = [&] {
        timeval now{1700000000, 0};
        h.core().log_attempt(nullptr, nullptr, &now, "250 ok", 6);
        h.core().log_permanent_failure(nullptr, nullptr, &now, nullptr);
    };
    log_both();
    REQUIRE(testing::wait_until([&] { return fs::file_size(attempts) > 0 && fs::file_size(bounces) > 0; }));
    // As shipped, but compressing at once (no delaycompress) and no SIGHUP:
    // this test fires the reopen hook itself.
    testing::write_file(dir / "logrotate.conf", shipped_snippet(dir, {{"    delaycompress\n", ""}}));
    const auto r = testing::run_command({logrotate, "-f", "-s", dir / "logrotate.state", dir / "logrotate.conf"});
    INFO(r.err);
    REQUIRE(r.status == 0);
    h.core().log_reopen();
    log_both();
    h.stop();
    const auto owner_only = fs::perms::owner_read | fs::perms::owner_write;
    const auto group_read = owner_only | fs::perms::group_read;
    CHECK(mode_of(attempts + ".1.gz") == owner_only);
    CHECK(mode_of(bounces + ".1.gz") == group_read);
    CHECK(mode_of(attempts) == owner_only);
    CHECK(mode_of(bounces) == group_read);
    CHECK(testing::read_lines(attempts).size() == 1);
    CHECK(testing::read_lines(bounces).size() == 1);
}
