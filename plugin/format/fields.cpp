#include "fields.hpp"

namespace mtalog {

namespace {

bool text(Buffer &out, const char *value)
{
    if (value == nullptr || *value == '\0')
        return false;
    append_field_text(out, value, 0);
    return true;
}

bool integer(Buffer &out, long long value)
{
    put_int(out, value);
    return true;
}

// `cache`: the thread's, for batch and connection ids (see FormatCache).
bool id_text(Buffer &out, const FormatContext &ctx, const ec_message *m, message_id ec_message::*member,
             FormatCache *cache = nullptr)
{
    if (m == nullptr)
        return false;
    const std::size_t before = out.size();
    append_message_id(out, ctx, m->*member, 0, cache);
    return out.size() != before;
}

bool address(Buffer &out, const char *local, const char *domain)
{
    const bool has_local = local && *local, has_domain = domain && *domain;
    if (!has_local && !has_domain)
        return false;
    if (has_local)
        append_field_text(out, local, 0);
    if (has_domain) {
        out.push_back('@');
        append_field_text(out, domain, 0);
    }
    return true;
}

// One writer per field, in table order; `sep` is the list separator. Rows of
// message kinds only read r.msg freely: a connection failure's message (an
// adapter's, for its id) never reaches them.
// clang-format off
bool w_type(const Record &r, const FormatContext &, Buffer &out, char) { put(out, mtacfg::record_name(r.kind)); return true; }
bool w_timestamp(const Record &r, const FormatContext &, Buffer &out, char)
{
    append_record_time(out, r, mtacfg::TimePrecision::microseconds);
    return true;
}
bool w_event_time(const Record &r, const FormatContext &, Buffer &out, char)
{
    append_rfc3339(out, r.now, r.cache ? &r.cache->rfc3339_second : nullptr);
    return true;
}
bool w_message_id(const Record &r, const FormatContext &ctx, Buffer &out, char) { return id_text(out, ctx, r.msg, &ec_message::id); }
bool w_batch_id(const Record &r, const FormatContext &ctx, Buffer &out, char)
{
    return id_text(out, ctx, r.msg, &ec_message::batch_id, r.cache);
}
bool w_connection_id(const Record &r, const FormatContext &ctx, Buffer &out, char)
{
    return id_text(out, ctx, r.msg, &ec_message::conn_id, r.cache);
}
bool w_mail_from(const Record &r, const FormatContext &, Buffer &out, char)
{
    const ec_message *m = r.msg;
    return m && address(out, m->mailfrom_local, m->mailfrom_domain);
}
bool w_rcpt_to(const Record &r, const FormatContext &, Buffer &out, char)
{
    const ec_message *m = r.msg;
    return m && address(out, m->rcptto_local, m->rcptto_domain);
}
bool w_domain(const Record &r, const FormatContext &, Buffer &out, char) { return text(out, r.dr ? r.dr->domain : nullptr); }
bool w_size(const Record &r, const FormatContext &, Buffer &out, char)
{
    const ec_message *m = r.msg;
    return m && integer(out, static_cast<long long>(m->size));
}
bool w_binding_group(const Record &r, const FormatContext &ctx, Buffer &out, char) { return text(out, binding_names_of(r, ctx).group); }
bool w_binding(const Record &r, const FormatContext &ctx, Buffer &out, char) { return text(out, binding_names_of(r, ctx).name); }
bool w_binding_slot(const Record &r, const FormatContext &, Buffer &out, char)
{
    const auto slot = binding_slot_of(r);
    return slot && integer(out, *slot);
}
bool w_stage(const Record &r, const FormatContext &, Buffer &out, char)
{
    const ec_message *m = r.msg;
    return m && integer(out, m->stage);
}
bool w_stage_name(const Record &r, const FormatContext &, Buffer &out, char)
{
    // A name from our own table: nothing to escape.
    const char *name = r.msg ? stage_name(r.msg->stage) : nullptr;
    if (name != nullptr)
        put(out, name);
    return name != nullptr;
}
bool w_retries(const Record &r, const FormatContext &, Buffer &out, char)
{
    const ec_message *m = r.msg;
    return m && integer(out, m->num_retries);
}
bool w_elapsed(const Record &r, const FormatContext &, Buffer &out, char)
{
    const auto micros = queue_micros(r);
    if (micros)
        append_seconds(out, *micros, 0);
    return micros.has_value();
}
bool w_remote_ip(const Record &r, const FormatContext &, Buffer &out, char)
{
    const ec_message *m = r.msg;
    return m && text(out, m->remote_ip);
}
// Other kinds than connection failures have an address only from an adapter.
bool w_peer_address(const Record &r, const FormatContext &, Buffer &out, char)
{
    const Peer p = peer_of(r.addr);
    return p.known && text(out, p.ip);
}
bool w_peer_port(const Record &r, const FormatContext &, Buffer &out, char)
{
    const Peer p = peer_of(r.addr);
    return p.known && integer(out, p.port);
}
bool w_peer_family(const Record &r, const FormatContext &, Buffer &out, char) { return text(out, peer_of(r.addr).family); }
bool w_peer_host(const Record &r, const FormatContext &, Buffer &out, char) { return text(out, r.peer_host); }
bool w_error_code(const Record &r, const FormatContext &, Buffer &out, char) { return integer(out, r.err); }
bool w_error_flags(const Record &r, const FormatContext &, Buffer &out, char sep)
{
    if (r.err == 0)
        return false;
    append_conn_flag_names(out, r.err, sep);
    return true;
}
bool w_os_errno(const Record &r, const FormatContext &, Buffer &out, char) { return r.os_errno && integer(out, *r.os_errno); }
bool w_note(const Record &r, const FormatContext &ctx, Buffer &out, char)
{
    if (!r.has_note)
        return false;
    append_escaped_capped(out, r.note, 0, ctx.max_note_bytes);
    return true;
}
// clang-format on

} // namespace

// clang-format off
constexpr std::array<FieldInfo, 26> kFields{{
    {Field::type,          "type",          FieldType::string,  kAllKinds,     "", "", w_type,          "`attempt`, `connection_failure` or `permanent_failure`"},
    {Field::timestamp,     "timestamp",     FieldType::decimal, kAllKinds,     "", "", w_timestamp,     "unix time of the event, with microseconds"},
    {Field::event_time,    "event_time",    FieldType::string,  kAllKinds,     "", "", w_event_time,    "the same time in RFC 3339, UTC, with microseconds"},
    {Field::message_id,    "message_id",    FieldType::string,  kAllKinds,     "", "", w_message_id,    "the message id, as the core prints it (connection failures: from the Exim adapter only)"},
    {Field::batch_id,      "batch_id",      FieldType::string,  kMessageKinds, "", "", w_batch_id,      "the batch id"},
    {Field::connection_id, "connection_id", FieldType::string,  kMessageKinds, "", "", w_connection_id, "the connection id"},
    {Field::mail_from,     "mail_from",     FieldType::string,  kMessageKinds, "", "", w_mail_from,     "envelope sender (local part @ domain)"},
    {Field::rcpt_to,       "rcpt_to",       FieldType::string,  kMessageKinds, "", "", w_rcpt_to,       "envelope recipient"},
    {Field::domain,        "domain",        FieldType::string,  kAllKinds,     "", "", w_domain,        "routing domain (`domain_record`)"},
    {Field::size,          "size",          FieldType::integer, kMessageKinds, "", "", w_size,          "message size in bytes"},
    {Field::binding_group, "binding_group", FieldType::string,  kAllKinds,     "", "", w_binding_group, "binding group of the slot, when the core knows it"},
    {Field::binding,       "binding",       FieldType::string,  kAllKinds,     "", "", w_binding,       "binding of the slot, when the core knows it"},
    {Field::binding_slot,  "binding_slot",  FieldType::integer, kAllKinds,     "", "", w_binding_slot,  "binding slot number"},
    {Field::stage,         "stage",         FieldType::integer, kMessageKinds, "", "", w_stage,         "connection stage number (Momentum's table)"},
    {Field::stage_name,    "stage_name",    FieldType::string,  kMessageKinds, "", "", w_stage_name,    "connection stage name, e.g. `rcpt_to`"},
    {Field::retries,       "retries",       FieldType::integer, kMessageKinds, "", "", w_retries,       "delivery attempts so far"},
    {Field::elapsed,       "elapsed",       FieldType::integer, kMessageKinds, "", "", w_elapsed,       "whole seconds since the message was created"},
    {Field::remote_ip,     "remote_ip",     FieldType::string,  kMessageKinds, "", "", w_remote_ip,     "remote IP of the delivery attempt"},
    {Field::peer_address,  "peer_address",  FieldType::string,  kAllKinds, "peer",  "address", w_peer_address, "peer IP (JSON: `peer.address`); other kinds than connection failures: from the Exim adapter only"},
    {Field::peer_port,     "peer_port",     FieldType::integer, kAllKinds, "peer",  "port",    w_peer_port,    "peer port (JSON: `peer.port`)"},
    {Field::peer_family,   "peer_family",   FieldType::string,  kAllKinds, "peer",  "family",  w_peer_family,  "`ipv4`, `ipv6`, `unix`, or `af<N>` for another family (JSON: `peer.family`)"},
    {Field::peer_host,     "peer_host",     FieldType::string,  kAllKinds, "peer",  "host",    w_peer_host,    "peer host name (JSON: `peer.host`; Exim adapter only)"},
    {Field::error_code,    "error_code",    FieldType::integer, kConnFail, "error", "code",    w_error_code,   "the `err` bitmask (JSON: `error.code`)"},
    {Field::error_flags,   "error_flags",   FieldType::string_list, kConnFail, "error", "flags", w_error_flags, "`CONN_*` names of its bits, `0x...` for the rest (JSON: `error.flags`; CSV: joined by `|`)"},
    {Field::os_errno,      "os_errno",      FieldType::integer, kConnFail, "error", "errno",   w_os_errno,     "the system errno behind `err` (JSON: `error.errno`; Exim adapter only)"},
    {Field::note,          "note",          FieldType::string,  kMessageKinds, "", "", w_note,          "note (attempt) or DSN (permanent failure), capped at `max_note_bytes`"},
}};
// clang-format on

namespace {

constexpr bool rows_match_enum()
{
    for (std::size_t i = 0; i < kFields.size(); ++i)
        if (static_cast<std::size_t>(kFields[i].field) != i)
            return false;
    return true;
}
static_assert(rows_match_enum(), "kFields rows must be in the order of enum Field");

// JSON opens an object at the first row of a group and closes it after the
// last (json_format.cpp, and the table's own JSON that test_property holds it
// to): a group split in two would repeat its key.
constexpr bool json_groups_contiguous()
{
    for (std::size_t i = 0; i < kFields.size(); ++i)
        for (std::size_t j = i + 1; j < kFields.size(); ++j)
            if (!kFields[i].json_object.empty() && kFields[j].json_object == kFields[i].json_object &&
                kFields[j - 1].json_object != kFields[i].json_object)
                return false;
    return true;
}
static_assert(json_groups_contiguous(), "the rows of one JSON object must follow each other");

// JSON writes the type first without a comma before it, and every later key
// with one: the type must lead every record, outside any object.
static_assert(kFields[0].field == Field::type && kFields[0].kinds == kAllKinds && kFields[0].json_object.empty(),
              "the first row must be the type, in every record kind");

} // namespace

} // namespace mtalog
