#include "generate.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <chrono>
#include <ctime>
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

std::string replace_all(std::string text, const std::string &from, const std::string &to)
{
    for (auto pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size()))
        text.replace(pos, from.size(), to);
    return text;
}

class Worker {
public:
    Worker(Core &core, const GenerateOptions &o, unsigned index, std::uint64_t first_seq, std::uint64_t count,
           std::uint32_t slot_base, std::atomic<std::uint64_t> &done)
        : core_(core), options_(o), rng_{std::mt19937_64(o.seed * 1000003u + index)}, seq_(first_seq),
          count_(count), slot_base_(slot_base), done_(done)
    {
    }

    void run(const std::atomic<bool> &stop)
    {
        for (std::uint64_t i = 0; i < count_ && !stop.load(std::memory_order_relaxed); ++i, ++seq_) {
            const auto pick = rng_.below(100);
            if (pick < 60)
                attempt();
            else if (pick < 85)
                connection_failure();
            else
                permanent_failure();
            done_.fetch_add(1, std::memory_order_relaxed);
        }
    }

    // Hook-call latency: bucket b holds calls of [2^b, 2^(b+1)) ns.
    std::array<std::uint64_t, 64> latency_buckets{};
    std::uint64_t max_call_ns = 0;
    GenerateStats stats;

private:
    message_id id_for(std::uint64_t seq) const
    {
        message_id id{};
        id.slot = slot_base_ + static_cast<std::uint32_t>(seq >> 16);
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
            timed([&] { core_.log_attempt(&m.msg, &dr, null_now ? nullptr : &t, nullptr, 0); });
        } else {
            const std::string note = "250 2.0.0 Ok: queued as " + std::to_string(seq_);
            timed([&] {
                core_.log_attempt(&m.msg, &dr, null_now ? nullptr : &t, note.data(), static_cast<int>(note.size()));
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
        timed([&] { core_.log_permanent_failure(&m.msg, &dr, now_ptr, note_ptr); });
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
    std::uint64_t seq_;
    std::uint64_t count_;
    std::uint32_t slot_base_;
    std::atomic<std::uint64_t> &done_;
};

} // namespace

GenerateStats generate(Core &core, const GenerateOptions &options, const std::atomic<bool> &stop,
                       const Progress &progress)
{
    const unsigned threads = std::max(1u, options.threads);
    const auto start = std::chrono::steady_clock::now();
    const auto slot_base = static_cast<std::uint32_t>(std::time(nullptr));
    std::atomic<std::uint64_t> done{0};
    std::vector<std::unique_ptr<Worker>> workers;
    std::uint64_t first = 0;
    for (unsigned t = 0; t < threads; ++t) {
        const std::uint64_t count = options.calls / threads + (t < options.calls % threads ? 1 : 0);
        workers.push_back(std::make_unique<Worker>(core, options, t, first, count, slot_base, done));
        first += count;
    }
    std::vector<std::thread> running;
    for (auto &w : workers)
        running.emplace_back([&w, &stop] { w->run(stop); });

    GenerateStats total;
    auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
    double last_progress = 0;
    unsigned reopened = 0;
    for (;;) {
        const std::uint64_t now_done = done.load();
        while (reopened < options.reopens && options.calls > 0 &&
               now_done >= options.calls * (reopened + 1) / (options.reopens + 1)) {
            core.log_reopen();
            ++reopened;
        }
        if (now_done >= options.calls || stop.load())
            break;
        if (progress && elapsed() - last_progress >= 1.0) {
            last_progress = elapsed();
            progress(now_done, options.calls, last_progress);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    for (auto &t : running)
        t.join();
    while (reopened < options.reopens && !stop.load()) { // runs too short to reach a mark
        core.log_reopen();
        ++reopened;
    }
    total.seconds = elapsed();
    for (const auto &w : workers) {
        total.attempts += w->stats.attempts;
        total.connection_failures += w->stats.connection_failures;
        total.permanent_failures += w->stats.permanent_failures;
    }
    total.reopens = reopened;
    std::array<std::uint64_t, 64> buckets{};
    for (const auto &w : workers) {
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
    return total;
}

} // namespace mtacore
