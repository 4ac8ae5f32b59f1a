// One hook call, as the formatters see it. Pointers are the caller's and are
// only valid during the hook call: formatting happens before the call returns.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>
#include <sys/socket.h>
#include <sys/time.h>

#include <mtahooks/ec_hooks.h>

#include "mtalog_options.hpp"
#include "numbers.hpp"
#include "smtp_reply.hpp"

namespace mtalog {

using mtacfg::RecordKind;

// What consecutive records of one calling thread share, kept in that
// thread's stage and used only under the stage's mutex: the text of the last
// second logged and of the last two batch or connection ids (a delivery
// thread logs a connection's batch in a row, so those ids repeat).
struct FormatCache {
    SecondText second;
    SecondText rfc3339_second; // "YYYY-MM-DDTHH:MM:SS" of the last second in RFC 3339
    struct Id {
        bool valid = false;
        std::uint8_t len = 0;  // the text needs nothing in any format (append_message_id)
        message_id id{};
        char text[EC_MESSAGE_ID_TEXT_MAX] = {};
    };
    Id ids[2];
    unsigned next = 0; // the entry to replace
    std::vector<int> bounce_matches; // reused by BounceRules::classify
};

// The time a record carries: microseconds outside 0..999,999 (a caller's
// bad timeval) become 0 here, once, where the record is built, so every
// format and macro shows the same time.
inline timeval record_time(timeval t) noexcept
{
    if (t.tv_usec < 0 || t.tv_usec > 999999)
        t.tv_usec = 0;
    return t;
}

// Why a message record failed, as far as its text says (reason.hpp).
struct Reason {
    bool has_text = false;    // a note, or the message's stored DSN
    SmtpReply reply;          // parsed from that text
    bool class_done = false;  // the class below has been worked out (reason_of)
    bool classified = false;  // has_text, not a 2xx success, and the instance has bounce rules
    std::uint8_t bounce = 0;  // the row in kBounceClasses (bounce_classes.hpp)
};

struct Record {
    RecordKind kind = RecordKind::attempt;
    timeval now{};                        // through record_time(); defaulted when the hook got NULL
    const ec_message *msg = nullptr;      // attempt, permanent_failure (and connection_failure from
                                          // an adapter, for its message id); may be NULL
    const domain_record *dr = nullptr;    // may be NULL
    std::string_view note;                // attempt, permanent_failure
    bool has_note = false;                // false: the hook passed no note
    const sockaddr *addr = nullptr;       // connection_failure (any kind from an adapter); may be NULL
    int err = 0;                          // connection_failure
    int binding_slot = 0;                 // connection_failure
    // Only from an adapter (Exim): what Momentum's hooks do not carry.
    const char *peer_host = nullptr;      // the remote host's name
    std::optional<int> os_errno;          // connection_failure: the system errno behind `err`
    FormatCache *cache = nullptr;         // the calling thread's, when it has one
    // Filled once, by reply_of() and reason_of() (reason.hpp), when a format
    // first shows the reply or the class.
    mutable std::optional<Reason> reason;
};

} // namespace mtalog
