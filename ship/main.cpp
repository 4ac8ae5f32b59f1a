// mtalog-ship: ships the records mtalog wrote on this node to a NATS
// JetStream stream, exactly once (see docs/fleet.md).
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "ship_config.hpp"
#include "shipper.hpp"

namespace {

constexpr const char *kUsage =
    R"(usage: mtalog-ship [--check] [--once] [--audit] CONFIG
       mtalog-ship tail [--durable NAME] [--subject SUBJECT] [--out-dir DIR]
                        [--count N] [--idle-ms MS] CONFIG

Ships every record line of the files mtalog writes on this node (named by the
mtalog config that CONFIG's mtalog_ship stanza points at) to a NATS JetStream
stream, one message per record, exactly once, with subject
<subject_prefix>.<node>.<record type>. The files are the spool: the MTA never
waits for the stream, and the cursor in state_dir moves only after the
stream acknowledged (and, after a read-back of the stream, once a second
read confirmed it: confirm_after).

  --check     validate CONFIG (and the mtalog config and credentials file it
              names), print a summary, and exit without connecting
  --once      stop once every file is shipped to its end and confirmed
              (catch-up runs)
  --audit     first read back every message of this node from the stream,
              delete second copies of a record, and ship again every record
              of the files still on disk that the stream lacks (after a
              broker incident; reads all files again)
  --help      this text

Signals: SIGTERM or SIGINT stop after the records in flight are acknowledged
(the cursor is saved, or left as last saved within confirm_after of a
read-back); SIGUSR1 prints the status line and rewrites
state_dir/status.json at once.

tail reads the stream through the durable consumer NAME (default
mtalog-tail; it remembers what it has read) and prints "<node> <record>"
lines, or appends each record to DIR/<node>.<type>.log.

Exit status: 0 when stopped or caught up; 1 on a config error, refused
credentials, a stream that does not exist (with create_stream = off) or does
not take the subjects, or when shipping of a file stopped (it shrank, or two
files begin with the same record).
)";

} // namespace

int main(int argc, char **argv)
{
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty()) {
        std::fputs(kUsage, stderr);
        return 1;
    }
    bool tail = false, check = false;
    mtalog::ship::RunOptions run;
    mtalog::ship::TailOptions to;
    std::string config;
    std::size_t i = 0;
    if (args[0] == "tail") {
        tail = true;
        i = 1;
    }
    auto value = [&](const std::string &flag) -> std::string {
        if (i + 1 >= args.size()) {
            std::fprintf(stderr, "mtalog-ship: %s needs a value\n", flag.c_str());
            std::exit(1);
        }
        return args[++i];
    };
    try {
        for (; i < args.size(); ++i) {
            const std::string &a = args[i];
            if (a == "--help" || a == "-h") {
                std::fputs(kUsage, stdout);
                return 0;
            } else if (!tail && a == "--check") {
                check = true;
            } else if (!tail && a == "--once") {
                run.once = true;
            } else if (!tail && a == "--audit") {
                run.audit = true;
            } else if (tail && a == "--durable") {
                to.durable = value(a);
            } else if (tail && a == "--subject") {
                to.subject = value(a);
            } else if (tail && a == "--out-dir") {
                to.out_dir = value(a);
            } else if (tail && a == "--count") {
                to.count = std::stoll(value(a));
            } else if (tail && a == "--idle-ms") {
                to.idle_ms = std::stoi(value(a));
            } else if (!a.empty() && a[0] == '-') {
                std::fprintf(stderr, "mtalog-ship: unknown option %s (see --help)\n", a.c_str());
                return 1;
            } else if (config.empty()) {
                config = a;
            } else {
                std::fprintf(stderr, "mtalog-ship: one CONFIG only (see --help)\n");
                return 1;
            }
        }
    } catch (const std::exception &) {
        std::fprintf(stderr, "mtalog-ship: %s needs a number\n", args[i].c_str());
        return 1;
    }
    if (config.empty()) {
        std::fprintf(stderr, "mtalog-ship: no CONFIG given (see --help)\n");
        return 1;
    }
    auto loaded = mtalog::ship::load_settings(config);
    if (auto *error = std::get_if<std::string>(&loaded)) {
        std::fprintf(stderr, "mtalog-ship: %s\n", error->c_str());
        return 1;
    }
    const auto &settings = std::get<mtalog::ship::Settings>(loaded);
    if (check) {
        std::printf("%s: ok: %s\n", config.c_str(), mtalog::ship::describe(settings).c_str());
        for (const auto &f : settings.files)
            std::printf("  %s (%s%s)\n", f.path.c_str(), f.format.c_str(),
                        f.only_type.empty() ? "" : (", " + f.only_type).c_str());
        return 0;
    }
    if (tail)
        return mtalog::ship::run_tail(settings, to);
    return mtalog::ship::run_shipper(settings, run);
}
