#include "mtacore_args.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <getopt.h>
#include <string_view>

#include "values.hpp"

#ifndef MTALOG_VERSION
#define MTALOG_VERSION "unknown"
#endif

namespace mtacore::cli {

namespace {

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

} // namespace

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

} // namespace mtacore::cli
