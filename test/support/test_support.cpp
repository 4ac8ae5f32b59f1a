#include "test_support.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <poll.h>
#include <signal.h>
#include <sstream>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

namespace testing {

std::string modules_dir() { return MTALOG_MODULES_DIR; }
std::string test_modules_dir() { return TEST_MODULES_DIR; }
std::string source_dir() { return SOURCE_DIR; }
std::string mtacore_exe() { return MTACORE_EXE; }

TempDir::TempDir()
{
    std::string templ = (std::filesystem::temp_directory_path() / "mtalog-test-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr)
        throw std::runtime_error("mkdtemp failed");
    path_ = templ;
}

TempDir::~TempDir()
{
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

void write_file(const std::string &path, const std::string &text)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out)
        throw std::runtime_error("cannot write " + path);
}

std::string read_file(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::vector<std::string> read_lines(const std::string &path)
{
    std::vector<std::string> lines;
    std::ifstream in(path, std::ios::binary);
    std::string line;
    while (std::getline(in, line))
        lines.push_back(line);
    return lines;
}

std::string generated_section(const std::string &repo_file, const std::string &name)
{
    const std::string text = read_file(source_dir() + "/" + repo_file);
    const std::string begin = "<!-- " + name + ":begin -->\n", end = "<!-- " + name + ":end -->";
    const auto from = text.find(begin);
    const auto to = text.find(end);
    if (from == std::string::npos || to == std::string::npos || to < from)
        return {};
    return text.substr(from + begin.size(), to - from - begin.size());
}

Harness::Harness(const TempDir &dir, const std::string &stanza_body, const std::string &core_lines)
    : core_(std::make_unique<mtacore::Core>()), panics_(std::make_shared<std::vector<std::string>>()),
      panics_mutex_(std::make_shared<std::mutex>())
{
    core_->set_panic_sink([p = panics_, m = panics_mutex_](int, std::string_view module, std::string_view text) {
        std::lock_guard lock(*m);
        p->push_back(std::string(module) + ": " + std::string(text));
    });
    const std::string config = dir / "mtacore.conf";
    write_file(config, "modules_path = \"" + modules_dir() + "\"\n" + core_lines + "mtalog \"test\" {\n" +
                           stanza_body + "\n}\n");
    auto configured = mtacore::Host::configure(*core_, config, modules_dir());
    if (auto *e = std::get_if<std::string>(&configured)) {
        error_ = *e;
        return;
    }
    host_ = std::move(std::get<std::unique_ptr<mtacore::Host>>(configured));
    error_ = host_->start();
}

Harness::~Harness() { stop(); }

void Harness::stop()
{
    if (host_)
        host_->stop();
    host_.reset();
}

std::vector<std::string> Harness::panics() const
{
    std::lock_guard lock(*panics_mutex_);
    return *panics_;
}

std::vector<char *> exec_args(const std::vector<std::string> &argv)
{
    std::vector<char *> args;
    for (const auto &a : argv)
        args.push_back(const_cast<char *>(a.c_str()));
    args.push_back(nullptr);
    return args;
}

void default_signals() noexcept
{
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; ++sig)
        if (sig != SIGKILL && sig != SIGSTOP)
            ::sigaction(sig, &dfl, nullptr);
}

namespace {

// What a command that outlived its limit was doing: every thread's stack,
// from gdb where it is installed (a hang in CI is otherwise a bare timeout).
std::string stacks_of(pid_t pid)
{
    if (::access("/usr/bin/gdb", X_OK) != 0)
        return "(no gdb: no stacks)\n";
    // Bounded itself (timeout's SIGKILL 5 s after its SIGTERM), and not
    // through run_command's own limit, which would ask for gdb's stacks.
    const auto r = run_command({"/usr/bin/timeout", "-k", "5", "60", "/usr/bin/gdb", "-p", std::to_string(pid), "-batch",
                                "-nx", "-ex", "thread apply all bt"});
    return r.out + r.err;
}

} // namespace

CommandResult run_command(const std::vector<std::string> &argv, const std::string &cwd, const std::string &input,
                          int limit_s)
{
    int in_pipe[2], out_pipe[2], err_pipe[2];
    if (pipe(in_pipe) || pipe(out_pipe) || pipe(err_pipe))
        throw std::runtime_error("pipe failed");
    const std::vector<char *> args = exec_args(argv);
    const pid_t pid = fork();
    if (pid < 0)
        throw std::runtime_error("fork failed");
    if (pid == 0) { // async-signal-safe calls only: see exec_args
        default_signals();
        dup2(in_pipe[0], 0);
        dup2(out_pipe[1], 1);
        dup2(err_pipe[1], 2);
        for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]})
            close(fd);
        if (!cwd.empty() && chdir(cwd.c_str()) != 0)
            _exit(126);
        execv(args[0], args.data());
        _exit(127);
    }
    close(in_pipe[0]);
    close(out_pipe[1]);
    close(err_pipe[1]);
    if (!input.empty() && write(in_pipe[1], input.data(), input.size()) < 0) {
    }
    close(in_pipe[1]);
    CommandResult result;
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    std::string *sinks[2] = {&result.out, &result.err};
    int open_count = 2;
    using Clock = std::chrono::steady_clock;
    // Past the limit: its stacks, SIGTERM, SIGKILL 15 s later, and 2 s
    // after that no more reading.
    auto deadline = limit_s > 0 ? Clock::now() + std::chrono::seconds(limit_s) : Clock::time_point::max();
    int signalled = 0;
    while (open_count > 0) {
        int wait_ms = -1;
        if (deadline != Clock::time_point::max()) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
            if (left <= 0) {
                if (signalled == 0) {
                    result.err += "\n== run_command: still running after " + std::to_string(limit_s) +
                                  " s; its threads' stacks:\n" + stacks_of(pid);
                    ::kill(pid, SIGTERM);
                    deadline = Clock::now() + std::chrono::seconds(15);
                } else if (signalled == 1) {
                    ::kill(pid, SIGKILL);
                    deadline = Clock::now() + std::chrono::seconds(2);
                } else {
                    break; // a child of it holds the pipes open: not waited for
                }
                ++signalled;
                continue;
            }
            wait_ms = static_cast<int>(std::min<long long>(left, 1000));
        }
        const int ready = poll(fds, 2, wait_ms);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready < 0)
            break;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP)))
                continue;
            char buf[4096];
            const ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                --open_count;
            } else {
                sinks[i]->append(buf, static_cast<std::size_t>(n));
            }
        }
    }
    for (const pollfd &p : fds)
        if (p.fd >= 0)
            close(p.fd);
    int wstatus = 0;
    waitpid(pid, &wstatus, 0);
    result.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
    if (signalled > 0) {
        result.timed_out = true;
        result.status = 124;
    }
    return result;
}

std::string read_all_and_close(int fd)
{
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        out.append(buf, static_cast<std::size_t>(n));
    close(fd);
    return out;
}

std::size_t thread_count()
{
    std::size_t n = 0;
    for ([[maybe_unused]] const auto &e : std::filesystem::directory_iterator("/proc/self/task"))
        ++n;
    return n;
}

std::size_t open_fd_count()
{
    std::size_t n = 0;
    for ([[maybe_unused]] const auto &e : std::filesystem::directory_iterator("/proc/self/fd"))
        ++n;
    return n;
}

std::size_t resident_bytes()
{
    std::size_t pages_total = 0, pages_resident = 0;
    std::ifstream statm("/proc/self/statm");
    statm >> pages_total >> pages_resident;
    return pages_resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

bool maps_contain(const std::string &needle)
{
    return read_file("/proc/self/maps").find(needle) != std::string::npos;
}

} // namespace testing
