// The shipper's link thread: it connects (retrying), makes sure the stream
// exists and takes this node's subjects, and then runs rounds: once the
// stream has a leader and its replicas are current, it reads this node's
// messages back (headers only) from a given sequence and reports which
// records the stream holds. The main loop goes on publishing meanwhile, so
// a round never stalls shipping, status or a stop.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ledger.hpp"
#include "record_id.hpp"
#include "nats_link.hpp"
#include "ship_config.hpp"

namespace mtalog::ship {

struct RoundDone {
    std::optional<std::string> error; // the round could not be completed (tried again later)
    RoundResult result;
    std::string leader;             // the stream's leader when it began
    std::vector<RecordId> copies;   // records the read found at more than one sequence
    Millis took_ms = 0;
};

class Rounds {
public:
    Rounds(NatsLink &link, const Settings &s);
    ~Rounds(); // stops and joins
    Rounds(const Rounds &) = delete;
    Rounds &operator=(const Rounds &) = delete;

    enum class Phase { connecting, ready, failed };
    [[nodiscard]] Phase phase() const { return phase_.load(); }
    [[nodiscard]] bool idle() const; // ready, and no round running or waiting to be taken
    // Starts a round reading from `from` to `until` or the stream's end
    // (needs idle()); `highest` is the highest sequence acknowledged so far:
    // a stream whose last sequence is below it is waited for (a new leader
    // catching up) before it is taken as one that went backwards.
    void request(std::uint64_t from, std::uint64_t until, std::uint64_t highest);
    // The finished round, once.
    std::optional<RoundDone> take();
    void stop();

private:
    void run();
    bool connect();
    bool check_stream();
    struct Request {
        std::uint64_t from, until, highest;
    };
    RoundDone round(const Request &q);
    void pause(std::chrono::milliseconds d);

    NatsLink &link_;
    const Settings &s_;
    std::atomic<Phase> phase_{Phase::connecting};
    std::atomic<bool> stop_{false};
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::optional<Request> requested_;
    std::optional<RoundDone> done_;
    bool running_ = false;
    std::thread thread_;
};

} // namespace mtalog::ship
