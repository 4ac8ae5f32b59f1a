#include "fields.hpp"

namespace mtalog {

// clang-format off
const std::array<FieldInfo, 26> kFields{{
    {Field::type,          "type",          FieldType::string,  kAllKinds,     "`attempt`, `connection_failure` or `permanent_failure`"},
    {Field::timestamp,     "timestamp",     FieldType::decimal, kAllKinds,     "unix time of the event, with microseconds"},
    {Field::event_time,    "event_time",    FieldType::string,  kAllKinds,     "the same time in RFC 3339, UTC, with microseconds"},
    {Field::message_id,    "message_id",    FieldType::string,  kAllKinds,     "the message id, as the core prints it (connection failures: from the Exim adapter only)"},
    {Field::batch_id,      "batch_id",      FieldType::string,  kMessageKinds, "the batch id"},
    {Field::connection_id, "connection_id", FieldType::string,  kMessageKinds, "the connection id"},
    {Field::mail_from,     "mail_from",     FieldType::string,  kMessageKinds, "envelope sender (local part @ domain)"},
    {Field::rcpt_to,       "rcpt_to",       FieldType::string,  kMessageKinds, "envelope recipient"},
    {Field::domain,        "domain",        FieldType::string,  kAllKinds,     "routing domain (`domain_record`)"},
    {Field::size,          "size",          FieldType::integer, kMessageKinds, "message size in bytes"},
    {Field::binding_group, "binding_group", FieldType::string,  kAllKinds,     "binding group of the slot, when the core knows it"},
    {Field::binding,       "binding",       FieldType::string,  kAllKinds,     "binding of the slot, when the core knows it"},
    {Field::binding_slot,  "binding_slot",  FieldType::integer, kAllKinds,     "binding slot number"},
    {Field::stage,         "stage",         FieldType::integer, kMessageKinds, "connection stage number (Momentum's table)"},
    {Field::stage_name,    "stage_name",    FieldType::string,  kMessageKinds, "connection stage name, e.g. `rcpt_to`"},
    {Field::retries,       "retries",       FieldType::integer, kMessageKinds, "delivery attempts so far"},
    {Field::elapsed,       "elapsed",       FieldType::integer, kMessageKinds, "whole seconds since the message was created"},
    {Field::remote_ip,     "remote_ip",     FieldType::string,  kMessageKinds, "remote IP of the delivery attempt"},
    {Field::peer_address,  "peer_address",  FieldType::string,  kAllKinds,     "peer IP (JSON: `peer.address`); other kinds than connection failures: from the Exim adapter only"},
    {Field::peer_port,     "peer_port",     FieldType::integer, kAllKinds,     "peer port (JSON: `peer.port`)"},
    {Field::peer_family,   "peer_family",   FieldType::string,  kAllKinds,     "`ipv4`, `ipv6`, `unix`, or `af<N>` for another family (JSON: `peer.family`)"},
    {Field::peer_host,     "peer_host",     FieldType::string,  kAllKinds,     "peer host name (JSON: `peer.host`; Exim adapter only)"},
    {Field::error_code,    "error_code",    FieldType::integer, kConnFail,     "the `err` bitmask (JSON: `error.code`)"},
    {Field::error_flags,   "error_flags",   FieldType::string_list, kConnFail, "`CONN_*` names of its bits, `0x...` for the rest (JSON: `error.flags`; CSV: joined by `|`)"},
    {Field::os_errno,      "os_errno",      FieldType::integer, kConnFail,     "the system errno behind `err` (JSON: `error.errno`; Exim adapter only)"},
    {Field::note,          "note",          FieldType::string,  kMessageKinds, "note (attempt) or DSN (permanent failure), capped at `max_note_bytes`"},
}};
// clang-format on

namespace {

bool text(Buffer &out, const char *value)
{
    if (value == nullptr || *value == '\0')
        return false;
    append_field_text(out, value, 0);
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

} // namespace

bool append_field(Field field, const Record &r, const FormatContext &ctx, Buffer &out, char list_separator)
{
    const ec_message *m = r.kind == RecordKind::connection_failure ? nullptr : r.msg;
    const sockaddr *peer = r.addr; // set for other kinds than connection failures only by an adapter
    switch (field) {
    case Field::type: put(out, mtacfg::record_name(r.kind)); return true;
    case Field::timestamp: append_time(out, r.now, mtacfg::TimePrecision::microseconds, r.cache); return true;
    case Field::event_time: append_rfc3339(out, r.now); return true;
    case Field::message_id: return id_text(out, ctx, r.msg, &ec_message::id);
    case Field::batch_id: return id_text(out, ctx, m, &ec_message::batch_id, r.cache);
    case Field::connection_id: return id_text(out, ctx, m, &ec_message::conn_id, r.cache);
    case Field::mail_from: return m && address(out, m->mailfrom_local, m->mailfrom_domain);
    case Field::rcpt_to: return m && address(out, m->rcptto_local, m->rcptto_domain);
    case Field::domain: return text(out, r.dr ? r.dr->domain : nullptr);
    case Field::size:
        if (!m)
            return false;
        put_int(out, static_cast<long long>(m->size));
        return true;
    case Field::binding_group: return text(out, binding_names_of(r, ctx).group);
    case Field::binding: return text(out, binding_names_of(r, ctx).name);
    case Field::binding_slot:
        if (const auto slot = binding_slot_of(r)) {
            put_int(out, *slot);
            return true;
        }
        return false;
    case Field::stage:
        if (!m)
            return false;
        put_int(out, m->stage);
        return true;
    case Field::stage_name: return m && text(out, stage_name(m->stage));
    case Field::retries:
        if (!m)
            return false;
        put_int(out, m->num_retries);
        return true;
    case Field::elapsed:
        if (const auto micros = queue_micros(r)) {
            append_seconds(out, *micros, 0);
            return true;
        }
        return false;
    case Field::remote_ip: return m && text(out, m->remote_ip);
    case Field::peer_address: {
        const Peer p = peer_of(peer);
        return p.known && text(out, p.ip);
    }
    case Field::peer_port: {
        const Peer p = peer_of(peer);
        if (!p.known)
            return false;
        put_int(out, p.port);
        return true;
    }
    case Field::peer_family: {
        const Peer p = peer_of(peer);
        return text(out, p.family);
    }
    case Field::peer_host: return text(out, r.peer_host);
    case Field::os_errno:
        if (r.kind != RecordKind::connection_failure || !r.os_errno)
            return false;
        put_int(out, *r.os_errno);
        return true;
    case Field::error_code:
        if (r.kind != RecordKind::connection_failure)
            return false;
        put_int(out, r.err);
        return true;
    case Field::error_flags:
        if (r.kind != RecordKind::connection_failure || r.err == 0)
            return false;
        append_conn_flag_names(out, r.err, list_separator);
        return true;
    case Field::note:
        if (r.kind == RecordKind::connection_failure || !r.has_note)
            return false;
        append_escaped_capped(out, r.note, 0, ctx.max_note_bytes);
        return true;
    }
    return false;
}

} // namespace mtalog
