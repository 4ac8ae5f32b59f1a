// The shipper's main loop and its state (internal to ship/; see
// shipper.hpp). shipper.cpp has the loop, the cursor and the status;
// shipper_publish.cpp what goes out (publishes) and what comes back
// (answers and rounds).
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cursor.hpp"
#include "follower.hpp"
#include "ledger.hpp"
#include "nats_link.hpp"
#include "rounds.hpp"
#include "shipper.hpp"
#include "status.hpp"

namespace mtalog::ship {

Millis now_ms(); // the steady clock

class Shipper {
public:
    Shipper(const Settings &s, const RunOptions &o)
        : s_(s), o_(o), ledger_(s.reconcile_window.count()), link_(s), cursor_path_(s.state_dir + "/cursor.json"),
          window_(s.max_pending)
    {
    }

    int work();

private:
    std::optional<std::string> load_state();
    void take_acks(Millis now);
    void incident(Millis now, const std::string &why);
    void publish_failed(Millis now, const std::string &error);
    void apply_round(RoundDone &d, Millis now);
    void maybe_round(Rounds &rounds, Millis now);
    bool pump(Millis now);
    bool ship(std::size_t source, std::uint64_t key, std::uint64_t offset, std::string_view line);
    const char *subject_of(std::size_t source, std::string_view type);
    void save(Millis now, bool force);
    void prune();
    Lag lag(Millis now);
    void report(Millis now);
    [[nodiscard]] bool caught_up(Millis now);
    void say_stopped();

    const Settings &s_;
    const RunOptions &o_;
    Ledger ledger_;
    NatsLink link_;
    Cursor cursor_;
    std::string cursor_path_;
    std::vector<Follower> followers_;
    std::vector<std::vector<std::pair<std::string, std::string>>> subjects_; // per source: type -> subject
    Counters c_;
    std::vector<Ack> acks_;
    std::string id_;
    bool dirty_ = false;
    Millis last_save_ = 0, last_prune_ = 0, last_status_ = 0, behind_since_ = 0;
    Millis last_round_ = 0, next_round_at_ = 0, round_backoff_ = 0, last_incident_say_ = -1000000;
    Millis last_incident_ = -1000000;
    std::uint64_t highest_at_request_ = 0;
    Millis asked_at_ = 0;
    std::string leader_;
    bool first_round_ = true;
    bool cursor_lost_ = false; // no cursor at start: aged-out rules apply (see Ledger::set_scan_from)
    bool connected_ = false;
    std::set<std::pair<std::uint64_t, std::uint64_t>> copies_seen_;
    Millis first_publish_ = 0, last_ack_ = 0;
    Millis publish_after_ = 0, fail_backoff_ = 0;
    std::size_t window_ = SIZE_MAX; // publishes in flight at most: max_pending, less after failures
};


} // namespace mtalog::ship
