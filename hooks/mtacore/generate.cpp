#include "generate.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <chrono>
#include <ctime>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <mtahooks/conn_flags.hpp>

#include "event.hpp"

namespace mtacore {

namespace {

constexpr const char *kDomains[] = {"example.com", "mail.example.net", "gmail.example", "outlook.example",
                                    "xn--bcher-kva.example", "corp.example.org"};

constexpr const char *kDsns[] = {
    "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in virtual mailbox table",
    "552 5.2.2 Mailbox full",
    "554 5.7.1 Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.example",
    "550 5.7.26 This message does not pass authentication checks (SPF and DKIM both do not pass).",
    "553 5.1.3 The recipient address <{rcpt}> is not a valid RFC-5321 address.",
    "551 5.7.1 Message rejected: 'Thé quick brown fox' — policy violation",
};

// Mostly TLS, as mail between large providers is today.
constexpr const char *kProtocols[] = {"ESMTPS", "ESMTPS", "ESMTPS", "ESMTPS", "ESMTPS", "ESMTPS", "ESMTPSA",
                                      "ESMTP",  "ESMTP",  "SMTP",   "HTTP"};

constexpr const char *kSubjects[] = {"Your order has shipped", "Spring sale: 20% off everything",
                                     "Password reset request", "Re: meeting notes",
                                     "=?UTF-8?B?w4l0w6kgw6AgUGFyaXM=?="};

// Hostile remote text: line breaks that try to forge records, separators,
// control and invalid UTF-8 bytes, a NUL inside note_len, U+2028.
const std::string kHostile[] = {
    std::string("550 bad\r\n1700000000@00/00-00001-00000001@@@P@forged.example@1@@@0@0@0@@forged line"),
    std::string("550 5.0.0 tab\there @ at-sign \\ backslash \x1b[31mred\x1b[0m"),
    std::string("550 invalid utf8 \xff\xfe\xc3\x28 \xed\xa0\x80 end"),
    std::string("550 nul\0inside the note", 24),
    std::string("550 line\xe2\x80\xa8separator and \x7f delete"),
};

struct Rng {
    std::mt19937_64 engine;
    std::uint64_t below(std::uint64_t n) { return engine() % n; }
    bool chance(unsigned percent) { return below(100) < percent; }
};

using Clock = std::chrono::steady_clock;

// A paced thread sleeps in steps no longer than this, so it sees a stop or
// the end of the run promptly even at a call every few seconds.
constexpr auto kSleepStep = std::chrono::milliseconds(20);

// What the workers of one run share. Thread t makes the run's calls t, t + T,
// t + 2T, ...; the call's number is also its message id's sequence number.
struct Run {
    Clock::time_point start;
    Clock::time_point end = Clock::time_point::max(); // no call is made at or after it
    Clock::time_point over;                             // the run lasts at least until then
    double rate = 0;                                    // calls/s over all threads; 0: unpaced
    unsigned threads = 1;
    std::uint32_t slot_base = 0;
    std::atomic<std::uint64_t> done{0};
    std::atomic<unsigned> finished{0}; // workers that have returned

    [[nodiscard]] bool unbounded() const { return rate <= 0 && end == Clock::time_point::max(); }

    // Call k is due at start + k / rate, worked out from k alone so rounding
    // never accumulates and a late call does not push back the ones after it:
    // a thread that fell behind catches up as fast as it can.
    [[nodiscard]] Clock::time_point due(std::uint64_t k) const
    {
        if (rate <= 0)
            return start;
        const double seconds = static_cast<double>(k) / rate;
        if (seconds > 1e9) // past any end, and beyond what a time_point holds
            return Clock::time_point::max();
        return start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    }
};

// start + duration, or no end when that is beyond what a time_point holds.
Clock::time_point end_of(Clock::time_point start, const std::optional<std::chrono::microseconds> &duration)
{
    if (!duration)
        return Clock::time_point::max();
    const auto room = std::chrono::duration_cast<std::chrono::microseconds>(Clock::time_point::max() - start);
    return *duration >= room ? Clock::time_point::max() : start + *duration;
}

// Until when the run lasts once every call is made: a run with a duration
// fills it; a paced one of N calls takes N / R s, each call having its 1/R s,
// so the rate it achieves is R; an unpaced one ends with its last call.
Clock::time_point over_at(const Run &run, const GenerateOptions &options)
{
    if (!options.calls)
        return run.end;
    return std::min(run.end, options.rate > 0 ? run.due(*options.calls) : run.start);
}

// How far through the run, 0 to 1: the larger of the calls made of their
// limit and the time passed of the duration, as either one ends the run.
double run_share(const GenerateOptions &o, std::uint64_t done, double seconds)
{
    double share = 0;
    if (o.calls)
        share = *o.calls == 0 ? 1.0 : static_cast<double>(done) / static_cast<double>(*o.calls);
    if (o.duration && o.duration->count() > 0)
        share = std::max(share, seconds / std::chrono::duration<double>(*o.duration).count());
    return std::min(share, 1.0);
}

std::string replace_all(std::string text, const std::string &from, const std::string &to)
{
    for (auto pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size()))
        text.replace(pos, from.size(), to);
    return text;
}

class Worker {
public:
    Worker(Core &core, const GenerateOptions &o, unsigned index, std::uint64_t count, Run &shared)
        : core_(core), options_(o), rng_{std::mt19937_64(o.seed * 1000003u + index)}, seq_(index), count_(count),
          run_(shared)
    {
    }

    void run(const std::atomic<bool> &stop)
    {
        for (std::uint64_t i = 0; i < count_ && wait_for_turn(stop); ++i, seq_ += run_.threads) {
            one_call();
            run_.done.fetch_add(1, std::memory_order_relaxed);
        }
        run_.finished.fetch_add(1);
    }

    // Hook-call latency: bucket b holds calls of [2^b, 2^(b+1)) ns.
    std::array<std::uint64_t, 64> latency_buckets{};
    std::uint64_t max_call_ns = 0;
    GenerateStats stats;

private:
    // Waits until call seq_ is due. False when the run is over first: stopped,
    // or the end reached.
    bool wait_for_turn(const std::atomic<bool> &stop) const
    {
        if (run_.unbounded()) // as fast as possible: no clock to read
            return !stop.load(std::memory_order_relaxed);
        const auto due = run_.due(seq_);
        if (due >= run_.end)
            return false;
        for (;;) {
            if (stop.load(std::memory_order_relaxed))
                return false;
            const auto t = Clock::now();
            if (t >= run_.end)
                return false;
            if (t >= due)
                return true;
            std::this_thread::sleep_until(std::min(due, t + kSleepStep));
        }
    }

    void one_call()
    {
        const auto pick = rng_.below(100);
        if (pick < 60)
            attempt();
        else if (pick < 85)
            connection_failure();
        else
            permanent_failure();
    }

    message_id id_for(std::uint64_t seq) const
    {
        message_id id{};
        id.slot = run_.slot_base + static_cast<std::uint32_t>(seq >> 16);
        id.pid = static_cast<std::uint16_t>(::getpid());
        id.counter = static_cast<std::uint16_t>(seq & 0xFFFF);
        return id;
    }

    static timeval now() { return current_time(); }

    const char *domain() { return kDomains[rng_.below(std::size(kDomains))]; }

    int binding_slot() { return static_cast<int>(rng_.below(options_.bindings + 2)); } // one unknown slot

    void fill_message(OwnedMessage &m, const timeval &t)
    {
        m.msg.id = id_for(seq_);
        m.msg.batch_id = id_for(seq_ & ~std::uint64_t{7});
        m.msg.conn_id = rng_.chance(70) ? id_for(seq_ & ~std::uint64_t{3}) : message_id{};
        m.mailfrom_local = "bounces+" + std::to_string(seq_);
        m.mailfrom_domain = "sender.example";
        m.rcptto_local = "user" + std::to_string(rng_.below(100000));
        m.rcptto_domain = domain();
        m.msg.binding_slot = binding_slot();
        m.msg.size = 800 + rng_.below(200000);
        m.msg.num_retries = static_cast<int>(rng_.below(6));
        m.msg.stage = static_cast<int>(rng_.below(23));
        m.msg.creation_time = timeval{t.tv_sec - static_cast<time_t>(rng_.below(7200)), t.tv_usec};
        m.remote_ip = "192.0.2." + std::to_string(1 + rng_.below(254));
        m.vctx_mess = {{"campaign", "c" + std::to_string(rng_.below(50))}};
        m.bind();
        fill_data(m);
    }

    // The protocol and headers, in the worker's own MessageData: refilled
    // in place for every call, so the strings keep their storage.
    void fill_data(const OwnedMessage &m)
    {
        data_.protocol = kProtocols[rng_.below(std::size(kProtocols))];
        if (rng_.chance(2))
            data_.protocol.reset(); // the core does not know it
        data_.headers.resize(4);
        auto set = [&](std::size_t i, const char *name, std::string_view value) {
            data_.headers[i].first = name;
            data_.headers[i].second.assign(value);
        };
        set(0, "Subject", rng_.chance(3) ? std::string_view(kHostile[rng_.below(std::size(kHostile))])
                                         : std::string_view(kSubjects[rng_.below(std::size(kSubjects))]));
        set(1, "From", "\"Sender\" <" + m.mailfrom_local + "@" + m.mailfrom_domain + ">");
        set(2, "Message-ID", "<" + std::to_string(seq_) + ".mta@" + m.mailfrom_domain + ">");
        set(3, "X-Campaign-ID", m.vctx_mess.front().second);
    }

    std::string dsn(const OwnedMessage &m)
    {
        const auto kind = rng_.below(100);
        if (kind < 8)
            return kHostile[rng_.below(std::size(kHostile))];
        std::string text = replace_all(kDsns[rng_.below(std::size(kDsns))], "{rcpt}",
                                       m.rcptto_local + "@" + m.rcptto_domain);
        if (kind < 12) { // long multi-line style responses run to kilobytes
            const std::string chunk = " 550-5.7.1 additional policy text from the remote server.";
            while (text.size() < 3000 + rng_.below(3000))
                text += chunk;
        }
        return text;
    }

    void attempt()
    {
        OwnedMessage m;
        timeval t = now();
        fill_message(m, t);
        std::string d = m.rcptto_domain;
        domain_record dr{d.data(), 1, 1};
        const bool null_now = rng_.chance(10);
        if (rng_.chance(15)) {
            timed([&] { core_.log_attempt(&m.msg, &dr, null_now ? nullptr : &t, nullptr, 0, &data_); });
        } else {
            const std::string note = "250 2.0.0 Ok: queued as " + std::to_string(seq_);
            timed([&] {
                core_.log_attempt(&m.msg, &dr, null_now ? nullptr : &t, note.data(), static_cast<int>(note.size()),
                                  &data_);
            });
        }
        ++stats.attempts;
    }

    void connection_failure()
    {
        const auto &flags = mtahooks::kConnFlags;
        // Every CONN_ERROR_* kind in turn, with action flags now and then.
        const std::size_t errors = flags.size() - 2;
        int err = flags[2 + seq_ % errors].value;
        if (rng_.chance(30))
            err |= CONN_ACTION_REQUEUE1;
        if (rng_.chance(5))
            err |= CONN_ACTION_PURGE_DOMAIN;
        sockaddr_storage peer{};
        std::string text = rng_.chance(30) ? "[2001:db8::" + std::to_string(1 + rng_.below(0xfff)) + "]:25"
                                           : "198.51.100." + std::to_string(1 + rng_.below(254)) + ":25";
        parse_peer(text, peer);
        sockaddr *addr = rng_.chance(3) ? nullptr : reinterpret_cast<sockaddr *>(&peer);
        std::string d = domain();
        domain_record dr{d.data(), 0, 3};
        timeval t = now();
        const int slot = binding_slot();
        timeval *now_ptr = rng_.chance(20) ? nullptr : &t;
        timed([&] { core_.log_connection_failure(addr, err, &dr, slot, now_ptr); });
        ++stats.connection_failures;
    }

    void permanent_failure()
    {
        OwnedMessage m;
        timeval t = now();
        fill_message(m, t);
        const auto kind = rng_.below(100);
        std::string note_text;
        string note{};
        const string *note_ptr = nullptr;
        if (kind < 20) {
            m.code = dsn(m); // NULL note: the DSN stored on the message is used
            m.bind();
        } else if (kind < 25) {
            // NULL note and no stored DSN either
        } else {
            note_text = dsn(m);
            note.buffer = note_text.data();
            note.len = static_cast<int>(note_text.size());
            note_ptr = &note;
        }
        std::string d = m.rcptto_domain;
        domain_record dr{d.data(), 0, 1};
        timeval *now_ptr = rng_.chance(10) ? nullptr : &t;
        timed([&] { core_.log_permanent_failure(&m.msg, &dr, now_ptr, note_ptr, &data_); });
        ++stats.permanent_failures;
    }

    // Runs one hook call and records how long the calling thread was held.
    template <typename Call>
    void timed(Call &&call)
    {
        const auto start = std::chrono::steady_clock::now();
        call();
        const auto ns = static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count());
        max_call_ns = std::max(max_call_ns, ns);
        ++latency_buckets[ns == 0 ? 0 : 63 - static_cast<std::size_t>(__builtin_clzll(ns))];
    }

    Core &core_;
    const GenerateOptions &options_;
    Rng rng_;
    MessageData data_; // the current message's protocol and headers
    std::uint64_t seq_;
    std::uint64_t count_;
    Run &run_;
};

} // namespace

namespace {

// Thread t's share of `calls` (calls t, t + T, ...), or no limit.
std::uint64_t count_for(const GenerateOptions &options, unsigned t, unsigned threads)
{
    if (!options.calls)
        return std::numeric_limits<std::uint64_t>::max();
    return *options.calls / threads + (t < *options.calls % threads ? 1 : 0);
}

// The main thread's part while the workers run: reopens at their marks and
// progress lines. Returns the reopens made.
unsigned watch(Core &core, const GenerateOptions &options, const Run &run, const std::atomic<bool> &stop,
               const Progress &progress)
{
    auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - run.start).count(); };
    double last_progress = 0;
    unsigned reopened = 0;
    for (;;) {
        const std::uint64_t done = run.done.load();
        const double share = run_share(options, done, elapsed());
        while (reopened < options.reopens && share * (options.reopens + 1) >= reopened + 1) {
            core.log_reopen();
            ++reopened;
        }
        if (stop.load() || (run.finished.load() == run.threads && Clock::now() >= run.over))
            return reopened;
        if (progress && elapsed() - last_progress >= 1.0) {
            last_progress = elapsed();
            progress(done, share, last_progress);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

// Folds the workers' counts and latency histograms into one.
void add_up(const std::vector<std::unique_ptr<Worker>> &workers, GenerateStats &total)
{
    std::array<std::uint64_t, 64> buckets{};
    for (const auto &w : workers) {
        total.attempts += w->stats.attempts;
        total.connection_failures += w->stats.connection_failures;
        total.permanent_failures += w->stats.permanent_failures;
        total.max_call_ns = std::max(total.max_call_ns, w->max_call_ns);
        for (std::size_t b = 0; b < buckets.size(); ++b)
            buckets[b] += w->latency_buckets[b];
    }
    const std::uint64_t calls = total.calls();
    std::uint64_t seen = 0;
    for (std::size_t b = 0; b < buckets.size() && calls > 0; ++b) {
        seen += buckets[b];
        if (seen * 1000 >= calls * 999) {
            total.p999_call_ns = std::min(total.max_call_ns, (std::uint64_t{2} << b) - 1);
            break;
        }
    }
}

} // namespace

GenerateStats generate(Core &core, const GenerateOptions &options, const std::atomic<bool> &stop,
                       const Progress &progress)
{
    const unsigned threads = std::max(1u, options.threads);
    Run run;
    run.start = Clock::now();
    run.end = end_of(run.start, options.duration);
    run.rate = options.rate;
    run.threads = threads;
    run.slot_base = static_cast<std::uint32_t>(std::time(nullptr));
    run.over = over_at(run, options);
    std::vector<std::unique_ptr<Worker>> workers;
    for (unsigned t = 0; t < threads; ++t)
        workers.push_back(std::make_unique<Worker>(core, options, t, count_for(options, t, threads), run));
    std::vector<std::thread> running;
    for (auto &w : workers)
        running.emplace_back([&w, &stop] { w->run(stop); });

    GenerateStats total;
    total.reopens = watch(core, options, run, stop, progress);
    for (auto &t : running)
        t.join();
    while (total.reopens < options.reopens && !stop.load()) { // runs too short to reach a mark
        core.log_reopen();
        ++total.reopens;
    }
    total.seconds = std::chrono::duration<double>(Clock::now() - run.start).count();
    add_up(workers, total);
    return total;
}

} // namespace mtacore
