// The shipper's connection to the servers: options (credentials, TLS),
// asynchronous publishing with acknowledgements gathered for the main loop,
// and what the connection went through (a disconnection is an incident).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <nats/nats.h>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "record_id.hpp"
#include "ship_config.hpp"

namespace mtalog::ship {

struct Ack {
    bool ok = false;
    bool duplicate = false;
    RecordId record;
    std::uint64_t seq = 0;
    std::string error; // failures only
};

class NatsLink {
public:
    explicit NatsLink(const Settings &s) : s_(s) {}
    ~NatsLink() { close(); }
    NatsLink(const NatsLink &) = delete;
    NatsLink &operator=(const NatsLink &) = delete;

    // One attempt; an error text on failure, and `fatal` when retrying
    // cannot help (refused credentials, bad TLS files).
    std::optional<std::string> connect(bool &fatal);
    void close();

    [[nodiscard]] bool open() const { return nc_ != nullptr; } // connect() succeeded once
    [[nodiscard]] bool connected() const;
    [[nodiscard]] jsCtx *js() const { return js_; }
    [[nodiscard]] natsConnection *nc() const { return nc_; }
    // Waits until the server has everything sent so far (acks included).
    [[nodiscard]] natsStatus flush(int ms) const;
    // Waits up to `limit` for every publish in flight to be answered; the
    // rest are given up on (expire).
    void complete(std::chrono::milliseconds limit);

    // Publishes `record` asynchronously; its answer comes through take_acks.
    // An error text when it could not even be handed to the library.
    std::optional<std::string> publish(const char *subject, std::string_view payload, const RecordId &record,
                                       const char *id, const char *format);
    // When a publish has waited ack_wait for its answer (or with `all`),
    // every publish in flight is given up on: each is answered as failed
    // through take_acks and a later answer is ignored. Checks at most every
    // 100 ms.
    void expire(bool all = false);

    // Answers that arrived, oldest first, into `out` (its storage is reused).
    static void take_acks(std::vector<Ack> &out);
    // Waits until `enough` answers wait to be taken, or `limit` passed.
    static void wait_for_acks(std::chrono::milliseconds limit, std::size_t enough);
    // Whether the connection was lost since the last call.
    static bool take_disconnect();

private:
    static void on_ack(jsCtx *, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure);
    static void on_disconnected(natsConnection *, void *);
    static void on_reconnected(natsConnection *nc, void *);

    void retire_publishing();

    const Settings &s_;
    natsConnection *nc_ = nullptr;
    jsCtx *js_ = nullptr;  // requests and reads (the rounds thread, tail)
    jsCtx *pub_ = nullptr; // asynchronous publishes (the main thread)
    std::vector<std::pair<jsCtx *, std::chrono::steady_clock::time_point>> retired_; // given up on, and since when
    std::chrono::steady_clock::time_point last_expiry_check_{};
};

// Logs a line with a UTC time stamp on standard error ("... mtalog-ship: line").
void say(const std::string &line);

} // namespace mtalog::ship
