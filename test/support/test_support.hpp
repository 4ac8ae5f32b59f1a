// Helpers shared by the test programs: temporary directories, files, the
// real module loaded from a config, and process-level measurements.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core.hpp"
#include "host.hpp"

namespace testing {

// Paths baked in by test/meson.build.
std::string modules_dir();      // where the built mtalog.so is
std::string test_modules_dir(); // where the broken test modules are
std::string source_dir();       // the repository root
std::string mtacore_exe();

class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir &) = delete;
    TempDir &operator=(const TempDir &) = delete;
    [[nodiscard]] const std::string &path() const { return path_; }
    [[nodiscard]] std::string operator/(const std::string &name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

void write_file(const std::string &path, const std::string &text);
std::string read_file(const std::string &path);
std::vector<std::string> read_lines(const std::string &path);
// The text between the lines "<!-- NAME:begin -->" and "<!-- NAME:end -->" of
// a repository file (generated sections of the docs); empty if missing.
std::string generated_section(const std::string &repo_file, const std::string &name);

// A core with mtalog loaded from `stanza_body` (the lines inside
// `mtalog "test" { ... }`), configured and started, or the error line.
class Harness {
public:
    Harness(const TempDir &dir, const std::string &stanza_body, const std::string &core_lines = "");
    ~Harness();
    [[nodiscard]] const std::string &error() const { return error_; }
    [[nodiscard]] bool ok() const { return error_.empty(); }
    mtacore::Core &core() { return *core_; }
    mtacore::Host &host() { return *host_; }
    void stop(); // unregister, drain, unload
    std::vector<std::string> panics() const;

private:
    std::unique_ptr<mtacore::Core> core_;
    std::unique_ptr<mtacore::Host> host_;
    std::string error_;
    std::shared_ptr<std::vector<std::string>> panics_;
    std::shared_ptr<std::mutex> panics_mutex_;
};

struct CommandResult {
    int status = -1; // exit status, or 128+signal; 124 when it outlived its limit
    bool timed_out = false;
    std::string out;
    std::string err;
};
// argv as execv takes it, made before fork(): a child of a process with
// other threads (libnats's, spdlog's) must not allocate before it execs,
// since another thread may have held the allocator's lock at the fork
// (AddressSanitizer's stack depot then spins in the child for ever).
std::vector<char *> exec_args(const std::vector<std::string> &argv);
// In a forked child before exec: every signal back to its default action
// (Catch2's handlers would otherwise show as the child's until it execs).
void default_signals() noexcept;

// Runs argv (no shell) in `cwd`, with `input` on standard input. With a
// limit (seconds), a command still running then has its threads' stacks
// appended to `err` (gdb, where installed), gets SIGTERM, and SIGKILL 15 s
// later, and its status is 124 (as timeout(1) says): a hang fails its test
// with evidence instead of timing out the suite.
CommandResult run_command(const std::vector<std::string> &argv, const std::string &cwd = "",
                          const std::string &input = "", int limit_s = 0);

// Reads `fd` to its end and closes it.
std::string read_all_and_close(int fd);

std::size_t thread_count();
std::size_t open_fd_count();
std::size_t resident_bytes(); // RSS from /proc/self/statm
bool maps_contain(const std::string &needle);

} // namespace testing
