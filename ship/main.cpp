// mtalog-ship: ships the records mtalog wrote on this node to a NATS
// JetStream stream and keeps them there (see docs/fleet.md).
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "ship_config.hpp"
#include "shipper.hpp"
#include "tail.hpp"
#include "values.hpp"

namespace {

constexpr const char *kUsage =
    R"(usage: mtalog-ship [--check] [--once] [--audit] CONFIG
       mtalog-ship tail [--durable NAME] [--subject SUBJECT] [--out-dir DIR]
                        [--state FILE] [--count N] [--idle-ms MS]
                        [--forget-after DURATION] CONFIG

Ships every record line of the files mtalog writes on this node (named by the
mtalog config that CONFIG's mtalog_ship stanza points at) to a NATS JetStream
stream, one message per record, with subject <subject_prefix>.<node>.<type>
and the record id <node>.<file key>.<offset> as its Nats-Msg-Id. The files
are the spool: the MTA never waits for the stream. Every reconcile_interval
the shipper reads back (headers only) what the stream holds of this node's
recent records, and sends again any it acknowledged and then lost; after an
incident (a failed publish, a lost connection, a new stream leader) it looks
again for everything acknowledged within reconcile_window.

  --check     validate CONFIG (and the mtalog config and credentials file it
              names), print a summary, and exit without connecting
  --once      stop once every file is shipped to its end and every record is
              found in the stream by a read-back (catch-up runs)
  --audit     check every record of the files still on disk against all of
              this node's messages in the stream, not only the recent past,
              and send what it lacks (after a broker incident); copies the
              stream holds are counted, not deleted
  --help      this text

Signals: SIGTERM or SIGINT stop after the records in flight are answered (up
to ack_wait), with the cursor saved; SIGUSR1 and SIGHUP print the status line
and rewrite state_dir/status.json at once (the config is read at start:
restart to change it). One shipper per state_dir: a second
(or an --audit beside a running shipper) refuses to start.

tail reads the stream through the durable consumer NAME (default
mtalog-tail; it remembers what was acknowledged) and writes each record once,
de-duplicated by record id: "<node> <record>" lines on standard output, or
each record appended to DIR/<node>.<type>.log. What it has written is kept
in FILE (default DIR/.tail-NAME.state with --out-dir, else
state_dir/tail-NAME.state), saved before the records are acknowledged: a
crash of tail neither loses nor repeats a record in DIR. --forget-after
(default 30d) drops the state of files not seen for that long. It ends after
--count records, after --idle-ms without one (once the durable consumer owes
none: records an earlier reader took and never acknowledged come again after
its ack wait), on SIGTERM, or when its output is closed. Every 10 s, and
before --idle-ms ends it, tail checks the headers the stream's leader holds
against what it has seen, and reads from the stream and writes any record the
durable consumer never delivered (servers can lose a consumer's bookkeeping);
not with --count. SIGHUP stops tail like SIGTERM.

tail options:
  --durable NAME      the durable consumer (default mtalog-tail)
  --subject SUBJECT   only these subjects (default <subject_prefix>.>)
  --out-dir DIR       one file per node and type in DIR, not standard output
  --state FILE        what tail has written (default DIR/.tail-NAME.state, or
                      state_dir/tail-NAME.state)
  --count N           end after N records
  --idle-ms MS        end after MS without a record, once nothing is owed
  --forget-after DURATION
                      forget files not seen for that long (default 30d)

Exit status: 0 when stopped or caught up (tail: also when its output was
closed); 1 on a config error, refused credentials, a stream that does not
exist (with create_stream = off) or does not take the subjects, a state_dir
in use, a file that could not be read (--once) or whose shipping stopped (it
shrank), or an output tail could not write.
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
            } else if (tail && a == "--state") {
                to.state = value(a);
            } else if (tail && a == "--count") {
                to.count = std::stoll(value(a));
            } else if (tail && a == "--idle-ms") {
                to.idle_ms = std::stoi(value(a));
            } else if (tail && a == "--forget-after") {
                const std::string v = value(a);
                const auto d = mtacfg::parse_duration(v);
                if (!d || d->count() <= 0) {
                    std::fprintf(stderr, "mtalog-ship: --forget-after needs a duration such as 30d, not '%s'\n",
                                 v.c_str());
                    return 1;
                }
                to.forget_after_s = std::chrono::duration_cast<std::chrono::seconds>(*d).count();
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
