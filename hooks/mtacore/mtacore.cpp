// mtacore: the reference core. Loads modules as an MTA would and drives their
// hooks from replayed or generated traffic.
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <iostream>
#include <optional>
#include <pthread.h>
#include <string>
#include <string_view>
#include <thread>
#include <unistd.h>

#include "core.hpp"
#include "mtacore_args.hpp"
#include "generate.hpp"
#include "host.hpp"
#include "replay.hpp"
#include "values.hpp"

#ifndef MTACORE_MODULES_DIR
#define MTACORE_MODULES_DIR "modules"
#endif

namespace {

using namespace mtacore::cli;

// Handles SIGHUP, SIGUSR1, SIGTERM and SIGINT on one thread (the signals are
// blocked everywhere else, including in module threads, which inherit the mask).
class SignalThread {
public:
    SignalThread(mtacore::Core &core, mtacore::Host &host, std::atomic<bool> &stop)
        : core_(core), host_(host), stop_(stop), thread_([this] { loop(); })
    {
    }
    ~SignalThread()
    {
        done_.store(true);
        thread_.join();
    }

    static sigset_t handled()
    {
        sigset_t set;
        sigemptyset(&set);
        for (int s : {SIGHUP, SIGUSR1, SIGTERM, SIGINT})
            sigaddset(&set, s);
        return set;
    }

private:
    void loop()
    {
        const sigset_t set = handled();
        const timespec tick{0, 50 * 1000 * 1000};
        while (!done_.load()) {
            const int sig = sigtimedwait(&set, nullptr, &tick);
            if (sig == SIGHUP) {
                core_.log_reopen();
                core_.panic(EC_LOG_NOTICE, "mtacore", "SIGHUP: log files reopened");
            } else if (sig == SIGUSR1) {
                const std::string stats = host_.control("stats");
                std::fputs(stats.c_str(), stderr);
            } else if (sig == SIGTERM || sig == SIGINT) {
                core_.panic(EC_LOG_NOTICE, "mtacore", std::string(strsignal(sig)) + ": shutting down");
                stop_.store(true);
            }
        }
    }

    mtacore::Core &core_;
    mtacore::Host &host_;
    std::atomic<bool> &stop_;
    std::atomic<bool> done_{false};
    std::thread thread_;
};

// Writes our pid to a file for the life of the run (nothing if path is "").
class PidFile {
public:
    explicit PidFile(std::string path) : path_(std::move(path))
    {
        if (path_.empty())
            return;
        std::FILE *f = std::fopen(path_.c_str(), "w");
        if (f == nullptr || std::fprintf(f, "%ld\n", static_cast<long>(getpid())) < 0 || std::fclose(f) != 0) {
            error_ = "cannot write pid file " + path_ + ": " + std::strerror(errno);
            path_.clear();
        }
    }
    ~PidFile()
    {
        if (!path_.empty())
            std::remove(path_.c_str());
    }
    PidFile(const PidFile &) = delete;
    PidFile &operator=(const PidFile &) = delete;
    [[nodiscard]] const std::string &error() const { return error_; }

private:
    std::string path_;
    std::string error_;
};

// "mtacore: <what>, <rate> <unit>/s, <secs> s elapsed" on standard error.
void progress_line(const std::string &what, double done, const char *unit, double secs)
{
    std::fprintf(stderr, "mtacore: %s, %.0f %s/s, %.1f s elapsed\n", what.c_str(), secs > 0 ? done / secs : 0.0, unit,
                 secs);
}

// "1200/5000 hook calls (24%)"; without a limit on the calls, "1200 hook
// calls (24%)", the share then being of the duration.
std::string generate_progress(std::uint64_t done, const std::optional<std::uint64_t> &limit, double share)
{
    char what[96];
    if (limit)
        std::snprintf(what, sizeof what, "%llu/%llu hook calls (%.0f%%)", static_cast<unsigned long long>(done),
                      static_cast<unsigned long long>(*limit), 100.0 * share);
    else
        std::snprintf(what, sizeof what, "%llu hook calls (%.0f%%)", static_cast<unsigned long long>(done),
                      100.0 * share);
    return what;
}

// A paced run names its target beside the rate achieved, so a machine that
// could not keep up shows in the summary; low rates keep their decimals.
void print_generate_summary(const mtacore::GenerateStats &s, const mtacore::GenerateOptions &options)
{
    const double rate = s.seconds > 0 ? static_cast<double>(s.calls()) / s.seconds : 0;
    char target[64] = "";
    if (options.rate > 0) // whole rates in full, not as 2e+06
        std::snprintf(target, sizeof target, options.rate == std::floor(options.rate) ? ", target %.0f" : ", target %g",
                      options.rate);
    const int decimals = rate > 0 && rate < 100 ? 2 : 0;
    std::printf("generated %llu hook calls from %u threads in %.3f s (%.*f calls/s%s)\n",
                static_cast<unsigned long long>(s.calls()), options.threads, s.seconds, decimals, rate, target);
    std::printf("  %-20s %12llu\n", "attempt", static_cast<unsigned long long>(s.attempts));
    std::printf("  %-20s %12llu\n", "connection_failure", static_cast<unsigned long long>(s.connection_failures));
    std::printf("  %-20s %12llu\n", "permanent_failure", static_cast<unsigned long long>(s.permanent_failures));
    std::printf("  %-20s %12llu\n", "reopen", static_cast<unsigned long long>(s.reopens));
    std::printf("hook-call latency: p99.9 < %.1f us, max %.1f us\n", static_cast<double>(s.p999_call_ns) / 1000.0,
                static_cast<double>(s.max_call_ns) / 1000.0);
}

int run(const Args &args)
{
    mtacore::Core core;
    ec_set_default_core(core.c_api());
    auto configured = mtacore::Host::configure(core, args.config, MTACORE_MODULES_DIR);
    if (auto *error = std::get_if<std::string>(&configured)) {
        std::fprintf(stderr, "mtacore: %s\n", error->c_str());
        return kExitConfig;
    }
    auto &host = *std::get<std::unique_ptr<mtacore::Host>>(configured);
    if (args.check) {
        std::printf("mtacore: %s: configuration OK (%zu module instance%s)\n", args.config.c_str(),
                    host.instance_count(), host.instance_count() == 1 ? "" : "s");
        return kExitOk;
    }
    if (const std::string error = host.start(); !error.empty()) {
        std::fprintf(stderr, "mtacore: %s\n", error.c_str());
        return kExitConfig;
    }

    PidFile pidfile(args.pidfile);
    if (!pidfile.error().empty()) {
        std::fprintf(stderr, "mtacore: %s\n", pidfile.error().c_str());
        host.stop();
        return kExitRuntime;
    }
    std::atomic<bool> stop{false};
    int status = kExitOk;
    // Progress lines are for a person watching: on a terminal only, so logs
    // and pipes get the summary alone.
    const bool show_progress = !args.quiet && ::isatty(STDERR_FILENO) == 1;
    {
        SignalThread signals(core, host, stop);
        if (!args.replay.empty()) {
            int fd = STDIN_FILENO;
            if (args.replay != "-") {
                fd = ::open(args.replay.c_str(), O_RDONLY | O_CLOEXEC);
                if (fd < 0) {
                    std::fprintf(stderr, "mtacore: cannot read replay file %s: %s\n", args.replay.c_str(),
                                 std::strerror(errno));
                    host.stop();
                    return kExitRuntime;
                }
            }
            // Read through poll(), so SIGTERM ends a replay whose producer went quiet.
            mtacore::FdInput input(fd, stop);
            std::istream in(&input);
            const auto stats = mtacore::replay(
                core, in, args.replay == "-" ? "<stdin>" : args.replay, stop, std::cerr,
                show_progress ? mtacore::ReplayProgress([](std::uint64_t lines, double secs) {
                    progress_line(std::to_string(lines) + " lines replayed", static_cast<double>(lines), "lines", secs);
                })
                              : mtacore::ReplayProgress());
            std::printf("replayed %llu lines: %llu attempt, %llu connection_failure, %llu permanent_failure, "
                        "%llu reopen, %llu malformed\n",
                        static_cast<unsigned long long>(stats.lines), static_cast<unsigned long long>(stats.attempts),
                        static_cast<unsigned long long>(stats.connection_failures),
                        static_cast<unsigned long long>(stats.permanent_failures),
                        static_cast<unsigned long long>(stats.reopens),
                        static_cast<unsigned long long>(stats.bad_lines));
            if (fd != STDIN_FILENO)
                ::close(fd);
            if (stats.bad_lines > 0)
                status = kExitRuntime;
        } else if (args.generating()) {
            mtacore::GenerateOptions options;
            if (args.have_generate)
                options.calls = args.generate;
            options.duration = args.duration;
            options.rate = args.rate;
            options.threads = args.threads;
            options.seed = args.seed;
            options.reopens = args.reopens;
            options.bindings = static_cast<std::uint32_t>(host.config().bindings.size());
            const auto stats = mtacore::generate(
                core, options, stop,
                show_progress ? mtacore::Progress([&options](std::uint64_t done, double share, double secs) {
                    progress_line(generate_progress(done, options.calls, share), static_cast<double>(done), "calls",
                                  secs);
                })
                              : mtacore::Progress());
            print_generate_summary(stats, options);
        } else {
            core.panic(EC_LOG_NOTICE, "mtacore", "running; SIGHUP reopens logs, SIGTERM stops");
            while (!stop.load())
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }
    std::fflush(stdout); // the summary before the modules' shutdown notices
    const auto drain_start = std::chrono::steady_clock::now();
    host.stop();
    const double drain = std::chrono::duration<double>(std::chrono::steady_clock::now() - drain_start).count();
    // Each module reports on stderr (its paniclog) what it wrote and dropped.
    std::printf("modules unloaded (drain took %.3f s)\n", drain);
    return status;
}

} // namespace

int main(int argc, char **argv)
{
    // Before any thread exists, so every thread (modules' too) inherits it.
    const sigset_t handled = SignalThread::handled();
    pthread_sigmask(SIG_BLOCK, &handled, nullptr);
    Args args;
    if (const int status = parse_args(argc, argv, args); status >= 0)
        return status;
    try {
        return run(args);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "mtacore: %s\n", e.what());
        return kExitRuntime;
    }
}
