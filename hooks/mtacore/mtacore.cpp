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
#include <getopt.h>
#include <iostream>
#include <optional>
#include <pthread.h>
#include <string>
#include <string_view>
#include <thread>
#include <unistd.h>

#include "core.hpp"
#include "generate.hpp"
#include "host.hpp"
#include "replay.hpp"
#include "values.hpp"

#ifndef MTACORE_MODULES_DIR
#define MTACORE_MODULES_DIR "modules"
#endif
#ifndef MTALOG_VERSION
#define MTALOG_VERSION "unknown"
#endif

namespace {

constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;
constexpr int kExitConfig = 2;
constexpr int kExitUsage = 64;

const char kUsage[] = R"USAGE(Usage: mtacore --config FILE [--check]
       mtacore --config FILE --replay FILE|-
       mtacore --config FILE --generate N [--duration D] [--rate R] [--threads T]
               [--seed S] [--reopens K]
       mtacore --config FILE --duration D [--rate R] [--threads T] [--seed S]
               [--reopens K]
       mtacore --config FILE            (run until SIGTERM/SIGINT)

The reference MTA core: loads the modules its config names from modules_path,
hands them the hook table, and drives the hooks.

Options:
  -c, --config FILE    core config in Momentum syntax (required)
      --check          validate the config and every module stanza, then exit
      --replay FILE|-  feed hook events from JSON lines (- is standard input),
                       then unload the modules and exit
      --generate N     make N hook calls of realistic synthetic traffic (with
                       --duration, at most N: the run ends at whichever comes
                       first)
      --duration D     generate traffic for D: seconds (30) or a number with a
                       unit (500ms, 30s, 2m, 1h, 1d); alone, no limit on calls
      --rate R         pace generated traffic to R hook calls per second over
                       all threads (default: as fast as they can); the summary
                       gives the rate achieved
      --threads T      threads for --generate (default 4)
      --seed S         random seed for --generate (default 1)
      --reopens K      core_log_reopen calls spread evenly over a --generate
                       or --duration run (default 1)
      --pidfile FILE   write the process id to FILE (removed at exit), for
                       logrotate's postrotate: kill -HUP "$(cat FILE)"
  -q, --quiet          no progress lines (without it, --replay and --generate
                       print one about once a second on standard error when
                       it is a terminal)
  -h, --help           this text
  -V, --version        the version

Signals: SIGHUP fires core_log_reopen; SIGUSR1 prints every module's
counters; SIGTERM and SIGINT stop the run and shut down cleanly (every record
already accepted is written).

Exit status: 0 success; 1 a replay line was malformed or a run-time error;
2 config or module error (nothing is written); 64 bad command line.
)USAGE";

struct Args {
    std::string config;
    bool check = false;
    std::string replay;
    bool have_generate = false;
    std::uint64_t generate = 0;
    std::optional<std::chrono::microseconds> duration;
    double rate = 0; // 0: unpaced
    unsigned threads = 4;
    std::uint64_t seed = 1;
    unsigned reopens = 1;
    bool quiet = false;
    std::string pidfile;

    // --duration alone generates too, with no limit on the calls.
    [[nodiscard]] bool generating() const { return have_generate || duration.has_value(); }
};

bool parse_number(const char *text, std::uint64_t &out)
{
    if (text == nullptr || *text == '\0' || *text == '-')
        return false;
    errno = 0;
    char *end = nullptr;
    out = std::strtoull(text, &end, 10);
    return errno == 0 && end && *end == '\0';
}

// A rate above 0 in plain decimal (2000, 0.5): no sign, exponent, inf or nan.
bool parse_rate(const char *text, double &out)
{
    const std::string_view digits(text);
    const auto dot = digits.find('.');
    const bool plain = !digits.empty() && digits != "." &&
                       digits.find_first_not_of("0123456789.") == std::string_view::npos &&
                       (dot == std::string_view::npos || digits.find('.', dot + 1) == std::string_view::npos);
    if (!plain)
        return false;
    out = std::strtod(text, nullptr);
    return out > 0 && std::isfinite(out);
}

// Plain seconds (30) or the config files' durations (500ms, 30s, 2m), above 0.
std::optional<std::chrono::microseconds> parse_run_duration(const char *text)
{
    std::string with_unit(text);
    if (!with_unit.empty() && with_unit.find_first_not_of("0123456789") == std::string::npos)
        with_unit += "s";
    const auto duration = mtacfg::parse_duration(with_unit);
    if (!duration || duration->count() <= 0)
        return std::nullopt;
    return duration;
}

int usage_error(const std::string &message)
{
    std::fprintf(stderr, "mtacore: %s\nTry 'mtacore --help'.\n", message.c_str());
    return kExitUsage;
}

// -1: carry on; otherwise the exit status.
int parse_args(int argc, char **argv, Args &args)
{
    enum {
        opt_check = 256,
        opt_replay,
        opt_generate,
        opt_duration,
        opt_rate,
        opt_threads,
        opt_seed,
        opt_reopens,
        opt_pidfile
    };
    static const option long_options[] = {
        {"config", required_argument, nullptr, 'c'},     {"check", no_argument, nullptr, opt_check},
        {"replay", required_argument, nullptr, opt_replay}, {"generate", required_argument, nullptr, opt_generate},
        {"duration", required_argument, nullptr, opt_duration}, {"rate", required_argument, nullptr, opt_rate},
        {"threads", required_argument, nullptr, opt_threads}, {"seed", required_argument, nullptr, opt_seed},
        {"reopens", required_argument, nullptr, opt_reopens}, {"quiet", no_argument, nullptr, 'q'},
        {"pidfile", required_argument, nullptr, opt_pidfile},
        {"help", no_argument, nullptr, 'h'},             {"version", no_argument, nullptr, 'V'},
        {nullptr, 0, nullptr, 0}};
    int c;
    std::uint64_t n = 0;
    while ((c = getopt_long(argc, argv, "c:qhV", long_options, nullptr)) != -1) {
        switch (c) {
        case 'c': args.config = optarg; break;
        case opt_check: args.check = true; break;
        case opt_replay: args.replay = optarg; break;
        case opt_generate:
            if (!parse_number(optarg, args.generate))
                return usage_error(std::string("--generate needs a whole number, not '") + optarg + "'");
            args.have_generate = true;
            break;
        case opt_duration:
            args.duration = parse_run_duration(optarg);
            if (!args.duration)
                return usage_error(std::string("--duration needs a time above 0 such as 30, 500ms, 30s or 2m, not '") +
                                   optarg + "'");
            break;
        case opt_rate:
            if (!parse_rate(optarg, args.rate))
                return usage_error(std::string("--rate needs a number of calls per second above 0, not '") + optarg +
                                   "'");
            break;
        case opt_threads:
            if (!parse_number(optarg, n) || n < 1 || n > 1024)
                return usage_error(std::string("--threads needs a number from 1 to 1024, not '") + optarg + "'");
            args.threads = static_cast<unsigned>(n);
            break;
        case opt_seed:
            if (!parse_number(optarg, args.seed))
                return usage_error(std::string("--seed needs a whole number, not '") + optarg + "'");
            break;
        case opt_reopens:
            if (!parse_number(optarg, n) || n > 100000)
                return usage_error(std::string("--reopens needs a number from 0 to 100000, not '") + optarg + "'");
            args.reopens = static_cast<unsigned>(n);
            break;
        case opt_pidfile: args.pidfile = optarg; break;
        case 'q': args.quiet = true; break;
        case 'h': std::fputs(kUsage, stdout); return kExitOk;
        case 'V': std::printf("mtacore %s\n", MTALOG_VERSION); return kExitOk;
        default: return usage_error("unknown option");
        }
    }
    if (optind < argc)
        return usage_error(std::string("unexpected argument '") + argv[optind] + "'");
    if (args.config.empty())
        return usage_error("--config FILE is required");
    const bool generating = args.generating();
    if (!args.replay.empty() && generating)
        return usage_error("--replay cannot be combined with --generate or --duration");
    if (args.check && (!args.replay.empty() || generating))
        return usage_error("--check cannot be combined with --replay, --generate or --duration");
    if (args.rate > 0 && !generating)
        return usage_error("--rate needs --generate N or --duration D");
    return -1;
}

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
