// Reading a record's values the same way for every format: message ids as
// the core prints them, binding names, elapsed time, the peer, stage names
// and connection-failure flags. Formats differ only in how they lay these
// out and quote them; numbers and times are written by text/numbers.hpp.
#pragma once

#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "escape.hpp"
#include "numbers.hpp"
#include "format_context.hpp"
#include "record.hpp"

namespace mtalog {

// The core's text for a message id, escaped for a field ended by `separator`
// (0: none); nothing for the all-zero id.
// `cache`: the calling thread's, to reuse the text of a recent id; for batch
// and connection ids, which repeat from record to record (a message's own id
// mostly does not, and would only push them out). Only text that needs
// nothing in any format is cached: no escape, no `@`, `"` or `,`, no space at
// either end. Returns true when the text is known to need nothing more in
// JSON or CSV either: it came from the cache, or (`check_bare`, separator 0)
// the core's text has no byte to escape, no quote or comma and no space at
// either end.
bool append_message_id(Buffer &out, const FormatContext &ctx, const message_id &id, char separator,
                       FormatCache *cache = nullptr, bool check_bare = false);

struct BindingNames {
    const char *group = nullptr; // NULL when the slot is unknown to the core
    const char *name = nullptr;
};
BindingNames binding_names(const FormatContext &ctx, int slot);

// The slot a record refers to: the connection failure's, or the message's
// (nullopt when an attempt or permanent failure has no message).
inline std::optional<int> binding_slot_of(const Record &r)
{
    if (r.kind == RecordKind::connection_failure)
        return r.binding_slot;
    if (r.msg == nullptr)
        return std::nullopt;
    return r.msg->binding_slot;
}

// Appends `local`, then `@` and `domain` when there is a domain, then
// `close`, all as they are: for a format that checks the copy in one scan
// (`@` needs no escape in any format). Returns the address, without `close`.
// Both views' data must not be NULL, even when empty (memcpy's rule).
[[gnu::always_inline]] inline std::string_view append_raw_address(Buffer &out, std::string_view local,
                                                                   std::string_view domain, char close)
{
    const bool has_domain = !domain.empty();
    const std::size_t at = out.size(), n = local.size() + has_domain + domain.size();
    out.resize(at + n + 1);
    char *p = out.data() + at;
    std::memcpy(p, local.data(), local.size());
    p[local.size()] = '@'; // overwritten by `close` when there is no domain
    std::memcpy(p + local.size() + has_domain, domain.data(), domain.size());
    p[n] = close;
    return {p, n};
}

// Microseconds from the message's creation to the event; nullopt when there
// is no message or it has no creation time (zero).
std::optional<long long> queue_micros(const Record &r);

struct Peer {
    bool known = false;   // an IPv4 or IPv6 address and port
    char ip[64] = {};
    int port = 0;
    char family[16] = {}; // "ipv4", "ipv6", "unix", "af<N>"; "" when there is no address
};
// Only sa_family is read for families other than AF_INET and AF_INET6: the
// hook passes no address length, so nothing else is safe to read.
Peer peer_of(const sockaddr *addr);

// Momentum's connection-stage names ("rcpt_to", "data", ...); NULL if unknown.
const char *stage_name(int stage);

// a.b.c.d:port, [v6]:port, or nothing.
void append_peer_address(Buffer &out, const sockaddr *addr);
// CONN_* names joined by `separator`, then leftover bits as 0x...; each
// name between two `quote`s when that is not 0 (JSON's string list).
void append_conn_flag_names(Buffer &out, int err, char separator, char quote = 0);

// The text a format writes for a slot's binding names, per slot the core
// knew at start (FormatContext); nullopt for a slot it did not know, which is
// then looked up on every record.
using BindingTexts = std::vector<std::optional<std::string>>;
BindingTexts binding_texts(const FormatContext &ctx, int slots, void (*write)(Buffer &out, const BindingNames &names));
// Appends the text of `slot` from `texts`, or, for a slot not there,
// `write`'s text for the names the core gives it now.
inline void put_binding_text(Buffer &out, const FormatContext &ctx, const BindingTexts &texts, int slot,
                             void (*write)(Buffer &out, const BindingNames &names))
{
    if (slot >= 0 && static_cast<std::size_t>(slot) < texts.size()) {
        if (const auto &text = texts[static_cast<std::size_t>(slot)]) {
            put(out, *text);
            return;
        }
    }
    write(out, binding_names(ctx, slot));
}

// The record's time as the instance's time_precision asks (mainlog), or
// always with microseconds (JSON, CSV), through the thread's cache.
inline void append_record_time(Buffer &out, const Record &r, mtacfg::TimePrecision precision)
{
    append_time(out, r.now,
                precision == mtacfg::TimePrecision::microseconds ? TimeDecimals::micro : TimeDecimals::none,
                r.cache ? &r.cache->second : nullptr);
}
} // namespace mtalog
