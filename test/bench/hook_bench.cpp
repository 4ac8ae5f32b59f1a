// The hook-path benchmark behind scripts/bench. For each implementation and
// producer-thread count it runs one child process (so peak RSS is that
// case's own) that pushes N realistic records and measures, on the calling
// thread, the latency of every call (histogram: p50, p99, p99.9, max), the
// end-to-end rate (until every record is on disk), lost records (lines in
// the file against calls made) and peak RSS.
//
//   mtalog        the real mtalog.so through the core's loader and hook table
//   spdlog_async  a bare spdlog 1.10 async_logger (block, 8192 slots)
//                 writing the same, already formatted lines to a file
//   write_mutex   one write(2) per record under a mutex (Exim, Halon)
//   floor         no logging: a 200 ns spin timed the same way, so the
//                 machine's own tail (interrupts, hypervisor) shows
//   raw_write     the same bytes in 64 KiB writes from one thread: the limit
#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <mutex>
#include <netinet/in.h>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <spdlog/async.h>
#include <spdlog/sinks/basic_file_sink.h>

#include "core.hpp"
#include "formatter.hpp"
#include "host.hpp"

namespace {

using Clock = std::chrono::steady_clock;

// Log-linear latency histogram: 16 sub-buckets per power of two (≈ 6 %).
class Histogram {
public:
    void add(std::uint64_t ns)
    {
        max_ = std::max(max_, ns);
        ++buckets_[index(ns)];
        ++count_;
    }
    void merge(const Histogram &o)
    {
        for (std::size_t i = 0; i < buckets_.size(); ++i)
            buckets_[i] += o.buckets_[i];
        count_ += o.count_;
        max_ = std::max(max_, o.max_);
    }
    [[nodiscard]] std::uint64_t percentile(double p) const
    {
        const auto target = static_cast<std::uint64_t>(std::ceil(p * static_cast<double>(count_)));
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < buckets_.size(); ++i) {
            seen += buckets_[i];
            if (seen >= target && buckets_[i] > 0)
                return std::min(upper(i), max_);
        }
        return max_;
    }
    [[nodiscard]] std::uint64_t max() const { return max_; }

private:
    static std::size_t index(std::uint64_t ns)
    {
        if (ns < 16)
            return static_cast<std::size_t>(ns);
        const int top = 63 - __builtin_clzll(ns); // >= 4
        const auto sub = static_cast<std::size_t>((ns >> (top - 4)) & 15);
        return static_cast<std::size_t>(top - 3) * 16 + sub;
    }
    static std::uint64_t upper(std::size_t i)
    {
        if (i < 16)
            return i;
        const std::size_t top = i / 16 + 3, sub = i % 16;
        return ((16 + sub + 1) << (top - 4)) - 1;
    }
    std::array<std::uint64_t, 16 * 64> buckets_{};
    std::uint64_t count_ = 0, max_ = 0;
};

// The fractions of calls at which the latency distribution is kept (its
// CDF, for scripts/bench --plot); the last is the maximum.
constexpr std::array<double, 24> kCdfAt{0.01, 0.05, 0.1,   0.2,    0.3,   0.4,    0.5,     0.6,
                                        0.7,  0.8,  0.9,   0.95,   0.98,  0.99,   0.995,   0.998,
                                        0.999, 0.9995, 0.9998, 0.9999, 0.99995, 0.99999, 0.999999, 1.0};

struct Result {
    std::string name;
    unsigned threads = 0;
    double records_per_s = 0, bytes_per_s = 0;
    std::uint64_t p50 = 0, p99 = 0, p999 = 0, max = 0;
    long long lost = 0;
    double rss_mb = 0;
    std::array<std::uint64_t, kCdfAt.size()> cdf{}; // latency (ns) at each kCdfAt fraction
};

// The format mtalog writes (--format), and the baselines' lines with it.
std::string g_format = "mainlog";
// --no-classes: the instance runs with bounce_classes = off.
bool g_no_classes = false;

// The template that writes exactly the mainlog attempt line.
constexpr const char *kMainlogTemplate = "%t@%i@%BI@%CI@A@%d@%B@%g@%b@%S@%N@%T@%H@%n";
// --format classified: the mainlog permanent-failure line with the bounce
// class (number and name) before the DSN, classified by the default rules.
constexpr const char *kClassifiedTemplate = "%t@%i@%BI@%CI@P@%d@%B@%g@%b@%S@%N@%T@%H@%C@%c@%n";

// The value of the `*_format` options for --format.
std::string format_value()
{
    if (g_format == "template")
        return kMainlogTemplate;
    if (g_format == "classified")
        return kClassifiedTemplate;
    return g_format;
}

mtacfg::FormatSpec format_spec()
{
    return *mtacfg::parse_format(format_value()); // checked in main
}

// Realistic attempt records (what the mtalog case logs) and their lines in
// the format of the run (what the baselines write).
struct Workload {
    mtacore::Core core;
    std::vector<std::string> domains{"example.com", "mail.example.net", "gmail.example", "outlook.example"};
    std::vector<std::string> notes;
    std::vector<std::string> failures; // DSNs of permanent failures, as large receivers answer
    std::vector<std::string> lines; // one per record pattern

    Workload()
    {
        core.set_bindings({{"mta1", "pool-a"}, {"mta2", "pool-a"}, {"mta3", "pool-b"}});
        for (int i = 0; i < 64; ++i)
            notes.push_back("250 2.0.0 Ok: queued as " + std::to_string(100000 + i * 7919) +
                            (i % 3 == 0 ? " (accepted by mx" + std::to_string(i) + ".example.net)" : ""));
        const char *const replies[] = {
            "550-5.1.1 The email account that you tried to reach does not exist. Please try\n550-5.1.1 "
            "double-checking the recipient's email address for typos or\n550 5.1.1 unnecessary spaces. "
            "https://support.google.com/mail/?p=NoSuchUser a1si2345678qkb.12 - gsmtp",
            "550 5.5.0 Requested action not taken: mailbox unavailable (S2017062302). [BN8NAM12FT045.eop-nam12.prod.protection.outlook.com]",
            "552 5.2.2 <{r}>: Recipient address rejected: mailbox full",
            "554 5.7.1 Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.10",
            "550 5.7.26 This mail is unauthenticated, which poses a security risk to the sender and Gmail users, and has been blocked.",
            "554 delivery error: dd This user doesn't have a yahoo.com account ({r}) [0] - mta1234.mail.gq1.yahoo.com",
            "550 5.1.1 <{r}>: Recipient address rejected: User unknown in virtual mailbox table",
            "552 5.3.4 Message size exceeds fixed maximum message size",
        };
        for (int i = 0; i < 64; ++i) {
            std::string reply = replies[static_cast<std::size_t>(i) % std::size(replies)];
            if (const auto at = reply.find("{r}"); at != std::string::npos)
                reply.replace(at, 3, "user" + std::to_string(i) + "@example.com");
            failures.push_back(std::move(reply));
        }
        auto formatter = std::get<std::unique_ptr<mtalog::Formatter>>(
            mtalog::make_formatter(format_spec(), true, mtalog::kAttempt));
        mtalog::FormatContext ctx;
        ctx.core = core.c_api();
        for (int i = 0; i < 64; ++i) {
            ec_message msg = message(static_cast<std::uint64_t>(i));
            domain_record dr{domains[static_cast<std::size_t>(i) % domains.size()].data(), 0, 0};
            mtalog::Record r;
            r.now = timeval{1700000000, 0};
            r.msg = &msg;
            r.dr = &dr;
            r.note = notes[static_cast<std::size_t>(i)];
            r.has_note = true;
            mtalog::Buffer b;
            formatter->format(r, ctx, b);
            lines.push_back(fmt::to_string(b) + "\n");
        }
    }
    static ec_message message(std::uint64_t seq)
    {
        ec_message m{};
        m.id = message_id{0x65000000u + static_cast<std::uint32_t>(seq >> 16), 4242, static_cast<std::uint16_t>(seq)};
        m.batch_id = message_id{0x65000000u, 4242, static_cast<std::uint16_t>(seq & ~7u)};
        m.conn_id = m.batch_id;
        m.creation_time = timeval{1699999000, 0};
        m.binding_slot = static_cast<int>(seq % 4);
        m.size = 2000 + seq % 50000;
        m.num_retries = static_cast<int>(seq % 3);
        m.stage = EC_STAGE_SENDING_BODY;
        m.remote_ip = "192.0.2.55";
        m.mailfrom_local = "bounces";
        m.mailfrom_domain = "sender.example";
        m.rcptto_local = "user";
        m.rcptto_domain = "example.com";
        return m;
    }
};

std::size_t count_lines(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    std::vector<char> buf(1 << 20);
    std::size_t n = 0;
    while (in) {
        in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
        n += static_cast<std::size_t>(std::count(buf.data(), buf.data() + in.gcount(), '\n'));
    }
    return n;
}

std::uint64_t file_size(const std::string &path)
{
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    return in ? static_cast<std::uint64_t>(in.tellg()) : 0;
}

// Runs `call(thread, i)` count/threads times on each of `threads` threads,
// timing each call on its own thread.
template <typename Call>
Histogram drive(unsigned threads, std::uint64_t count, Call &&call)
{
    std::vector<Histogram> per_thread(threads);
    std::vector<std::thread> running;
    std::atomic<unsigned> ready{0};
    std::atomic<bool> go{false};
    for (unsigned t = 0; t < threads; ++t)
        running.emplace_back([&, t] {
            const std::uint64_t mine = count / threads + (t < count % threads ? 1 : 0);
            ready.fetch_add(1);
            while (!go.load())
                std::this_thread::yield();
            for (std::uint64_t i = 0; i < mine; ++i) {
                const auto start = Clock::now();
                call(t, i);
                per_thread[t].add(static_cast<std::uint64_t>((Clock::now() - start).count()));
            }
        });
    while (ready.load() < threads)
        std::this_thread::yield();
    go.store(true);
    for (auto &t : running)
        t.join();
    Histogram all;
    for (const auto &h : per_thread)
        all.merge(h);
    return all;
}

// The hook the mtalog case calls: attempts (the default, and all that the
// timed runs use), or for --callgrind the other two record kinds.
std::string g_kind = "attempt";

Result run_case(const std::string &name, unsigned threads, std::uint64_t count, const std::string &dir,
                const std::string &modules, std::size_t queue)
{
    Workload w;
    const std::string path = dir + "/" + name + "-" + std::to_string(threads) + ".log";
    std::remove(path.c_str());
    Histogram h;
    const auto start = Clock::now();
    if (name == "mtalog") {
        const std::string conf = dir + "/bench.conf";
        std::ofstream out(conf);
        // The Workload's bindings (the core takes its binding table from the config).
        out << "Binding_Group \"pool-a\" {\n  Binding \"mta1\" {}\n  Binding \"mta2\" {}\n}\n"
               "Binding_Group \"pool-b\" {\n  Binding \"mta3\" {}\n}\n";
        out << "mtalog \"bench\" {\n  " << (g_kind == "attempt" ? "attempt_logfile" : g_format == "classified" ? "permanent_failure_logfile" : "mainlog") << " = \"" << path
            << "\"\n  queue_size = " << queue << "\n" << (g_no_classes ? "  bounce_classes = off\n" : "");
        if (g_format != "mainlog") // the mainlog file takes all three kinds: one format for all
            for (const std::string kind : {"attempt", "connection_failure", "permanent_failure"})
                if ((g_format != "template" && g_format != "classified") || kind == g_kind) // templates show message fields
                    out << "  " << kind << "_format = \"" << format_value() << "\"\n";
        out << "}\n";
        out.close();
        w.core.set_panic_sink([](int, std::string_view, std::string_view) {});
        auto configured = mtacore::Host::configure(w.core, conf, modules);
        if (!std::holds_alternative<std::unique_ptr<mtacore::Host>>(configured)) {
            std::fprintf(stderr, "bench: %s\n", std::get<std::string>(configured).c_str());
            std::exit(2);
        }
        auto host = std::move(std::get<std::unique_ptr<mtacore::Host>>(configured));
        if (const auto e = host->start(); !e.empty()) {
            std::fprintf(stderr, "bench: %s\n", e.c_str());
            std::exit(2);
        }
        const int kind = g_kind == "connection_failure" ? 1 : g_kind == "permanent_failure" ? 2 : 0;
        h = drive(threads, count, [&](unsigned t, std::uint64_t i) {
            ec_message msg = Workload::message(i * threads + t);
            domain_record dr{w.domains[i % w.domains.size()].data(), 0, 0};
            timeval now{1700000000, 0};
            const std::string &note = kind == 2 ? w.failures[i % w.failures.size()] : w.notes[i % w.notes.size()];
            if (kind == 0) {
                w.core.log_attempt(&msg, &dr, &now, note.data(), static_cast<int>(note.size()));
            } else if (kind == 1) {
                sockaddr_in peer{};
                peer.sin_family = AF_INET;
                peer.sin_port = htons(25);
                peer.sin_addr.s_addr = htonl(0xC0000200u + static_cast<std::uint32_t>(i % 200)); // 192.0.2.x
                w.core.log_connection_failure(reinterpret_cast<sockaddr *>(&peer), CONN_ERROR_CONNECT | CONN_ACTION_REQUEUE1,
                                              &dr, static_cast<int>(i % 4), &now);
            } else {
                string dsn{static_cast<int>(note.size()), static_cast<int>(note.size()), const_cast<char *>(note.data())};
                w.core.log_permanent_failure(&msg, &dr, &now, &dsn);
            }
        });
        host->stop(); // every accepted record is on disk after this
    } else if (name == "floor") {
        // No logging: each call spins for 200 ns (about mtalog's p50), so
        // its tail is what this machine adds to any call of that length
        // (interrupts, the hypervisor, other threads on the cores).
        h = drive(threads, count, [](unsigned, std::uint64_t) {
            const auto until = Clock::now() + std::chrono::nanoseconds(200);
            while (Clock::now() < until) {
            }
        });
    } else if (name == "spdlog_async") {
        auto pool = std::make_shared<spdlog::details::thread_pool>(8192, 1);
        auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, true);
        sink->set_pattern("%v");
        auto logger = std::make_shared<spdlog::async_logger>("bench", sink, pool, spdlog::async_overflow_policy::block);
        h = drive(threads, count, [&](unsigned, std::uint64_t i) {
            const std::string &line = w.lines[i % w.lines.size()];
            logger->log(spdlog::level::info, spdlog::string_view_t(line.data(), line.size() - 1));
        });
        logger->flush();
        logger.reset();
        pool.reset(); // drains and joins
        sink.reset();
    } else if (name == "write_mutex") {
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_TRUNC | O_CLOEXEC, 0640);
        std::mutex m;
        h = drive(threads, count, [&](unsigned, std::uint64_t i) {
            const std::string &line = w.lines[i % w.lines.size()];
            std::lock_guard lock(m);
            if (::write(fd, line.data(), line.size()) < 0)
                std::abort();
        });
        ::close(fd);
    } else { // raw_write: one thread, 64 KiB writes of the same bytes
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_TRUNC | O_CLOEXEC, 0640);
        std::string batch;
        h = drive(1, count, [&](unsigned, std::uint64_t i) {
            batch += w.lines[i % w.lines.size()];
            if (batch.size() >= 65536) {
                if (::write(fd, batch.data(), batch.size()) < 0)
                    std::abort();
                batch.clear();
            }
        });
        if (!batch.empty() && ::write(fd, batch.data(), batch.size()) < 0)
            std::abort();
        ::close(fd);
        threads = 1;
    }
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    Result r;
    r.name = name;
    r.threads = threads;
    r.records_per_s = static_cast<double>(count) / secs;
    r.bytes_per_s = static_cast<double>(file_size(path)) / secs;
    r.p50 = h.percentile(0.50);
    r.p99 = h.percentile(0.99);
    r.p999 = h.percentile(0.999);
    r.max = h.max();
    for (std::size_t i = 0; i < kCdfAt.size(); ++i)
        r.cdf[i] = kCdfAt[i] >= 1.0 ? h.max() : h.percentile(kCdfAt[i]);
    // mtalog starts a CSV file with its header line; the baselines write records only.
    const long long header_lines = name == "mtalog" && g_format == "csv" ? 1 : 0;
    r.lost = name == "floor" ? 0 : static_cast<long long>(count) - (static_cast<long long>(count_lines(path)) - header_lines);
    std::remove(path.c_str());
    return r;
}

// Runs one case in a child process and reads its result back through a pipe.
Result isolated(const std::string &name, unsigned threads, std::uint64_t count, const std::string &dir,
                const std::string &modules, std::size_t queue)
{
    int p[2];
    if (pipe(p) != 0)
        std::abort();
    const pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        const Result r = run_case(name, threads, count, dir, modules, queue);
        std::string line = fmt::format("{:.1f} {:.1f} {} {} {} {} {}", r.records_per_s, r.bytes_per_s, r.p50, r.p99,
                                       r.p999, r.max, r.lost);
        for (const std::uint64_t ns : r.cdf) {
            line += ' ';
            line += std::to_string(ns);
        }
        line += "\n";
        if (write(p[1], line.data(), line.size()) < 0)
            _exit(1);
        _exit(0);
    }
    close(p[1]);
    char buf[2048] = {};
    std::size_t got = 0;
    ssize_t n;
    while ((n = read(p[0], buf + got, sizeof buf - 1 - got)) > 0)
        got += static_cast<std::size_t>(n);
    close(p[0]);
    int status = 0;
    rusage usage{};
    wait4(pid, &status, 0, &usage);
    Result r;
    r.name = name;
    r.threads = name == "raw_write" ? 1 : threads;
    unsigned long long p50 = 0, p99 = 0, p999 = 0, max = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        std::sscanf(buf, "%lf %lf %llu %llu %llu %llu %lld", &r.records_per_s, &r.bytes_per_s, &p50, &p99, &p999,
                    &max, &r.lost) != 7) {
        std::fprintf(stderr, "bench: case %s/%u failed\n", name.c_str(), threads);
        std::exit(1);
    }
    r.p50 = p50;
    r.p99 = p99;
    r.p999 = p999;
    r.max = max;
    std::istringstream rest(buf);
    std::string skip;
    for (int i = 0; i < 7; ++i)
        rest >> skip;
    for (auto &ns : r.cdf)
        rest >> ns;
    r.rss_mb = static_cast<double>(usage.ru_maxrss) / 1024.0;
    return r;
}

} // namespace

// Every case, in the order they run and print; `floor` logs nothing (see run_case).
constexpr const char *kCases[] = {"floor", "mtalog", "spdlog_async", "write_mutex", "raw_write"};

int main(int argc, char **argv)
{
    std::uint64_t count = 2000000;
    std::vector<unsigned> thread_counts{1, 2, 4, 8};
    std::string json_path, dir = "/tmp", modules = "build-release/plugin", only;
    std::size_t queue = 8192;
    bool in_process = false; // for callgrind: no child process
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
        if (a == "--records")
            count = std::stoull(next());
        else if (a == "--json")
            json_path = next();
        else if (a == "--dir")
            dir = next();
        else if (a == "--modules")
            modules = next();
        else if (a == "--queue")
            queue = std::stoul(next());
        else if (a == "--threads") {
            thread_counts.clear();
            std::stringstream list(next()); // T or T,T,...
            for (std::string one; std::getline(list, one, ',');)
                thread_counts.push_back(static_cast<unsigned>(std::stoul(one)));
        }
        else if (a == "--only")
            only = next();
        else if (a == "--in-process")
            in_process = true;
        else if (a == "--kind")
            g_kind = next();
        else if (a == "--format")
            g_format = next();
        else if (a == "--no-classes")
            g_no_classes = true;
        else {
            std::fprintf(stderr, "usage: hook_bench [--records N] [--threads T[,T...]] [--only NAME] [--json FILE] "
                                 "[--dir DIR] [--modules DIR] [--queue N] [--in-process [--kind attempt|connection_failure|"
                                 "permanent_failure]] [--format mainlog|json|csv|template|classified] [--no-classes]\n");
            return 64;
        }
    }
    if (g_format != "mainlog" && g_format != "json" && g_format != "csv" && g_format != "template" &&
        g_format != "classified") {
        std::fprintf(stderr, "hook_bench: unknown --format %s\n", g_format.c_str());
        return 64;
    }
    if (g_kind != "attempt" && g_kind != "connection_failure" && g_kind != "permanent_failure") {
        std::fprintf(stderr, "hook_bench: unknown --kind %s\n", g_kind.c_str());
        return 64;
    }
    std::vector<Result> results;
    std::printf("%-13s %3s %14s %10s %9s %9s %9s %10s %6s %8s\n", "impl", "T", "records/s", "MB/s", "p50 ns",
                "p99 ns", "p99.9 ns", "max ns", "lost", "RSS MB");
    for (unsigned t : thread_counts) {
        // At T = 4, where the targets are judged, each case runs three times,
        // interleaved, and the run with the median rate stands for it (its
        // `lost` is the sum over all three): one noisy run of either side
        // does not decide a ratio.
        const int repeats = (t == 4 && !in_process) ? 3 : 1;
        std::map<std::string, std::vector<Result>> runs;
        for (int k = 0; k < repeats; ++k) {
            for (const char *name : kCases) {
                if (!only.empty() && only != name)
                    continue;
                if (std::string(name) == "raw_write" && t != thread_counts.front())
                    continue; // one thread by definition: measured once
                runs[name].push_back(in_process ? run_case(name, t, count, dir, modules, queue)
                                                : isolated(name, t, count, dir, modules, queue));
            }
        }
        for (const char *name : kCases) {
            auto it = runs.find(name);
            if (it == runs.end())
                continue;
            std::vector<Result> &all = it->second;
            long long lost = 0;
            for (const auto &one : all)
                lost += one.lost;
            std::sort(all.begin(), all.end(),
                      [](const Result &a, const Result &b) { return a.records_per_s < b.records_per_s; });
            Result r = all[all.size() / 2];
            r.lost = lost;
            std::printf("%-13s %3u %14.0f %10.1f %9llu %9llu %9llu %10llu %6lld %8.1f\n", r.name.c_str(), r.threads,
                        r.records_per_s, r.bytes_per_s / 1e6, static_cast<unsigned long long>(r.p50),
                        static_cast<unsigned long long>(r.p99), static_cast<unsigned long long>(r.p999),
                        static_cast<unsigned long long>(r.max), r.lost, r.rss_mb);
            std::fflush(stdout);
            results.push_back(r);
        }
        if (repeats > 1)
            std::printf("    (T = %u: the median-rate run of %d for each case)\n", t, repeats);
    }
    if (!json_path.empty()) {
        std::ofstream out(json_path);
        out << "{\"format\":\"" << g_format << "\",\"results\":[";
        for (std::size_t i = 0; i < results.size(); ++i) {
            const Result &r = results[i];
            out << (i ? "," : "") << "{\"name\":\"" << r.name << "\",\"threads\":" << r.threads
                << ",\"records_per_s\":" << static_cast<long long>(r.records_per_s) << ",\"p50_ns\":" << r.p50
                << ",\"p99_ns\":" << r.p99 << ",\"p999_ns\":" << r.p999 << ",\"max_ns\":" << r.max
                << ",\"lost\":" << r.lost << ",\"rss_mb\":" << r.rss_mb << ",\"cdf\":[";
            for (std::size_t k = 0; k < kCdfAt.size(); ++k)
                out << (k ? "," : "") << "[" << r.cdf[k] << "," << kCdfAt[k] << "]";
            out << "]}";
        }
        out << "]}\n";
    }
    // The targets, at T = 4 (see docs/performance.md).
    auto find = [&](const std::string &name, unsigned t) -> const Result * {
        for (const auto &r : results)
            if (r.name == name && r.threads == t)
                return &r;
        return nullptr;
    };
    const Result *m = find("mtalog", 4), *s = find("spdlog_async", 4);
    if (m == nullptr || s == nullptr)
        return 0; // targets are judged on a run that has T = 4 for both
    // The latency and rate targets are mainlog's; another format is judged on
    // throughput against spdlog_async writing the same lines, and on loss.
    const bool mainlog = g_format == "mainlog";
    // Memory: 10M records through a 64K-record queue may grow RSS by the
    // queue's budget (its records' bytes) + 16 MiB, against a tiny run.
    const std::size_t big_queue = 65536;
    const std::uint64_t many = only.empty() && mainlog ? 10000000 : 0;
    double rss_growth = 0, budget_mb = 0;
    if (many > 0) {
        const Result small = isolated("mtalog", 4, 1000, dir, modules, big_queue);
        const Result big = isolated("mtalog", 4, many, dir, modules, big_queue);
        Workload w;
        double line_bytes = 0;
        for (const auto &l : w.lines)
            line_bytes += static_cast<double>(l.size());
        line_bytes /= static_cast<double>(w.lines.size());
        budget_mb = static_cast<double>(big_queue) * line_bytes / (1024.0 * 1024.0);
        rss_growth = big.rss_mb - small.rss_mb;
        std::printf("\nmemory: 10M records through a %zu-record queue: peak RSS %.1f MB (a 1,000-record run: %.1f MB)\n",
                    big_queue, big.rss_mb, small.rss_mb);
    }
    struct Target {
        std::string what;
        bool met;
        std::string seen;
    };
    std::vector<Target> all_targets{
        {"throughput >= 3x spdlog_async", m->records_per_s >= 3 * s->records_per_s,
         std::to_string(m->records_per_s / s->records_per_s) + "x"}};
    if (mainlog) {
        all_targets.push_back({"p99.9 <= 1/10 of spdlog_async's", m->p999 * 10 <= s->p999,
                               std::to_string(m->p999) + " vs " + std::to_string(s->p999) + " ns"});
        all_targets.push_back({"p50 <= 300 ns", m->p50 <= 300, std::to_string(m->p50) + " ns"});
        all_targets.push_back({">= 1.5M records/s", m->records_per_s >= 1.5e6,
                               std::to_string(static_cast<long long>(m->records_per_s))});
    }
    all_targets.push_back({"no record lost", m->lost == 0, std::to_string(m->lost)});
    if (many > 0)
        all_targets.push_back({"RSS growth <= queue budget + 16 MiB", rss_growth <= budget_mb + 16,
                               std::to_string(rss_growth) + " MB vs " + std::to_string(budget_mb) + " + 16 MB"});
    bool all = true;
    auto print = [&](const std::vector<Target> &targets) {
        for (const auto &t : targets) {
            std::printf("  %-38s %-6s (%s)\n", t.what.c_str(), t.met ? "met" : "MISSED", t.seen.c_str());
            all = all && t.met;
        }
    };
    std::printf("\ntargets at T=4 (%s lines):\n", g_format.c_str());
    print(all_targets);
    // mainlog's tail at one and two threads, beside the floor: the same
    // timing loop around a 200 ns spin that logs nothing.
    std::vector<Target> tail;
    for (const auto &[t, limit] : {std::pair<unsigned, std::uint64_t>{1, 1000}, {2, 2000}}) {
        const Result *at = find("mtalog", t), *floor = find("floor", t);
        if (!mainlog || at == nullptr)
            continue;
        tail.push_back({"p99.9 <= " + std::to_string(limit / 1000) + " us at T=" + std::to_string(t), at->p999 <= limit,
                        std::to_string(at->p999) + " ns; floor " +
                            (floor != nullptr ? std::to_string(floor->p999) + " ns" : std::string("not run"))});
    }
    if (!tail.empty()) {
        std::printf("targets at T=1 and T=2 (the floor: a 200 ns spin timed alike, logging nothing):\n");
        print(tail);
    }
    return all ? 0 : 1;
}
