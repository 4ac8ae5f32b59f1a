// The writers behind kFields (fields.hpp), one per field, in table order,
// as inline functions: the table holds pointers to them, and a compiled
// template calls them through write_field, where they are inlined into one
// switch instead of being called through their row.
#pragma once

#include "fields.hpp"
#include "reason.hpp"

namespace mtalog::field_writers {

inline bool text(Buffer &out, const char *value)
{
    if (value == nullptr || *value == '\0')
        return false;
    append_field_text(out, value, 0);
    return true;
}

inline bool integer(Buffer &out, long long value)
{
    put_int(out, value);
    return true;
}

// `cache`: the thread's, for batch and connection ids (see FormatCache).
inline bool id_text(Buffer &out, const FormatContext &ctx, const ec_message *m, message_id ec_message::*member,
                    FormatCache *cache = nullptr)
{
    if (m == nullptr)
        return false;
    const std::size_t before = out.size();
    append_message_id(out, ctx, m->*member, 0, cache);
    return out.size() != before;
}

inline bool address(Buffer &out, const char *local, const char *domain)
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

// One binding name of a slot as the text layer writes it (binding_texts'
// writers for FormatContext::group_texts and name_texts).
inline void put_group_text(Buffer &out, const BindingNames &names) { append_field_text(out, names.group, 0); }
inline void put_name_text(Buffer &out, const BindingNames &names) { append_field_text(out, names.name, 0); }

// One of the record's binding names, from `texts` or, for a slot not there,
// through `write`.
inline bool binding_part(const Record &r, const FormatContext &ctx, Buffer &out, const BindingTexts &texts,
                         void (*write)(Buffer &out, const BindingNames &names))
{
    const auto slot = binding_slot_of(r);
    if (!slot)
        return false;
    const std::size_t before = out.size();
    put_binding_text(out, ctx, texts, *slot, write);
    return out.size() != before;
}

// One writer per field, in table order; `sep` is the list separator. Rows of
// message kinds only read r.msg freely: a connection failure's message (an
// adapter's, for its id) never reaches them.
// clang-format off
inline bool w_type(const Record &r, const FormatContext &, Buffer &out, char) { put(out, mtacfg::record_name(r.kind)); return true; }
inline bool w_timestamp(const Record &r, const FormatContext &, Buffer &out, char)
{
    append_record_time(out, r, mtacfg::TimePrecision::microseconds);
    return true;
}
inline bool w_event_time(const Record &r, const FormatContext &, Buffer &out, char)
{
    append_rfc3339(out, r.now, r.cache ? &r.cache->rfc3339_second : nullptr);
    return true;
}
inline bool w_message_id(const Record &r, const FormatContext &ctx, Buffer &out, char) { return id_text(out, ctx, r.msg, &ec_message::id); }
inline bool w_batch_id(const Record &r, const FormatContext &ctx, Buffer &out, char)
{
    return id_text(out, ctx, r.msg, &ec_message::batch_id, r.cache);
}
inline bool w_connection_id(const Record &r, const FormatContext &ctx, Buffer &out, char)
{
    return id_text(out, ctx, r.msg, &ec_message::conn_id, r.cache);
}
inline bool w_mail_from(const Record &r, const FormatContext &, Buffer &out, char)
{
    const ec_message *m = r.msg;
    return m && address(out, m->mailfrom_local, m->mailfrom_domain);
}
inline bool w_rcpt_to(const Record &r, const FormatContext &, Buffer &out, char)
{
    const ec_message *m = r.msg;
    return m && address(out, m->rcptto_local, m->rcptto_domain);
}
inline bool w_domain(const Record &r, const FormatContext &, Buffer &out, char) { return text(out, r.dr ? r.dr->domain : nullptr); }
inline bool w_size(const Record &r, const FormatContext &, Buffer &out, char)
{
    const ec_message *m = r.msg;
    return m && integer(out, static_cast<long long>(m->size));
}
inline bool w_binding_group(const Record &r, const FormatContext &ctx, Buffer &out, char) { return binding_part(r, ctx, out, ctx.group_texts, put_group_text); }
inline bool w_binding(const Record &r, const FormatContext &ctx, Buffer &out, char) { return binding_part(r, ctx, out, ctx.name_texts, put_name_text); }
inline bool w_binding_slot(const Record &r, const FormatContext &, Buffer &out, char)
{
    const auto slot = binding_slot_of(r);
    return slot && integer(out, *slot);
}
inline bool w_stage(const Record &r, const FormatContext &, Buffer &out, char)
{
    const ec_message *m = r.msg;
    return m && integer(out, m->stage);
}
inline bool w_stage_name(const Record &r, const FormatContext &, Buffer &out, char)
{
    // A name from our own table: nothing to escape.
    const char *name = r.msg ? stage_name(r.msg->stage) : nullptr;
    if (name != nullptr)
        put(out, name);
    return name != nullptr;
}
inline bool w_retries(const Record &r, const FormatContext &, Buffer &out, char)
{
    const ec_message *m = r.msg;
    return m && integer(out, m->num_retries);
}
inline bool w_elapsed(const Record &r, const FormatContext &, Buffer &out, char)
{
    const auto micros = queue_micros(r);
    if (micros)
        append_seconds(out, *micros, 0);
    return micros.has_value();
}
inline bool w_remote_ip(const Record &r, const FormatContext &, Buffer &out, char)
{
    const ec_message *m = r.msg;
    return m && text(out, m->remote_ip);
}
// Other kinds than connection failures have an address only from an adapter.
inline bool w_peer_address(const Record &r, const FormatContext &, Buffer &out, char)
{
    const Peer p = peer_of(r.addr);
    return p.known && text(out, p.ip);
}
inline bool w_peer_port(const Record &r, const FormatContext &, Buffer &out, char)
{
    const Peer p = peer_of(r.addr);
    return p.known && integer(out, p.port);
}
inline bool w_peer_family(const Record &r, const FormatContext &, Buffer &out, char) { return text(out, peer_of(r.addr).family); }
inline bool w_peer_host(const Record &r, const FormatContext &, Buffer &out, char) { return text(out, r.peer_host); }
inline bool w_error_code(const Record &r, const FormatContext &, Buffer &out, char) { return integer(out, r.err); }
inline bool w_error_flags(const Record &r, const FormatContext &, Buffer &out, char sep)
{
    if (r.err == 0)
        return false;
    append_conn_flag_names(out, r.err, sep);
    return true;
}
inline bool w_os_errno(const Record &r, const FormatContext &, Buffer &out, char) { return r.os_errno && integer(out, *r.os_errno); }
inline bool w_note(const Record &r, const FormatContext &ctx, Buffer &out, char)
{
    if (!r.has_note)
        return false;
    append_escaped_capped(out, r.note, 0, ctx.max_note_bytes);
    return true;
}
// The reply and the class: our own digits and names, nothing to escape.
inline bool w_reply_code(const Record &r, const FormatContext &ctx, Buffer &out, char)
{
    const Reason &why = reply_of(r, ctx);
    return why.reply.has_code() && integer(out, why.reply.code);
}
inline bool w_reply_status(const Record &r, const FormatContext &ctx, Buffer &out, char)
{
    const Reason &why = reply_of(r, ctx);
    if (!why.reply.has_status())
        return false;
    char status[12];
    const std::size_t n = status_text(why.reply, status);
    append_raw(out, status, n);
    return true;
}
inline bool w_bounce_class(const Record &r, const FormatContext &ctx, Buffer &out, char)
{
    const Reason &why = reason_of(r, ctx);
    return why.classified && integer(out, kBounceClasses[why.bounce].number);
}
inline bool w_bounce_name(const Record &r, const FormatContext &ctx, Buffer &out, char)
{
    const Reason &why = reason_of(r, ctx);
    if (why.classified)
        put(out, kBounceClasses[why.bounce].name);
    return why.classified;
}
// clang-format on

} // namespace mtalog::field_writers

namespace mtalog {

// kFields[f].write(r, ctx, out, sep), dispatched by a switch. A Field
// without its case fails every build (-Wswitch as an error here): the switch
// has no range check.
#pragma GCC diagnostic push
#pragma GCC diagnostic error "-Wswitch"
inline bool write_field(Field f, const Record &r, const FormatContext &ctx, Buffer &out, char sep)
{
    using namespace field_writers;
    switch (f) {
    case Field::type: return w_type(r, ctx, out, sep);
    case Field::timestamp: return w_timestamp(r, ctx, out, sep);
    case Field::event_time: return w_event_time(r, ctx, out, sep);
    case Field::message_id: return w_message_id(r, ctx, out, sep);
    case Field::batch_id: return w_batch_id(r, ctx, out, sep);
    case Field::connection_id: return w_connection_id(r, ctx, out, sep);
    case Field::mail_from: return w_mail_from(r, ctx, out, sep);
    case Field::rcpt_to: return w_rcpt_to(r, ctx, out, sep);
    case Field::domain: return w_domain(r, ctx, out, sep);
    case Field::size: return w_size(r, ctx, out, sep);
    case Field::binding_group: return w_binding_group(r, ctx, out, sep);
    case Field::binding: return w_binding(r, ctx, out, sep);
    case Field::binding_slot: return w_binding_slot(r, ctx, out, sep);
    case Field::stage: return w_stage(r, ctx, out, sep);
    case Field::stage_name: return w_stage_name(r, ctx, out, sep);
    case Field::retries: return w_retries(r, ctx, out, sep);
    case Field::elapsed: return w_elapsed(r, ctx, out, sep);
    case Field::remote_ip: return w_remote_ip(r, ctx, out, sep);
    case Field::peer_address: return w_peer_address(r, ctx, out, sep);
    case Field::peer_port: return w_peer_port(r, ctx, out, sep);
    case Field::peer_family: return w_peer_family(r, ctx, out, sep);
    case Field::peer_host: return w_peer_host(r, ctx, out, sep);
    case Field::error_code: return w_error_code(r, ctx, out, sep);
    case Field::error_flags: return w_error_flags(r, ctx, out, sep);
    case Field::os_errno: return w_os_errno(r, ctx, out, sep);
    case Field::note: return w_note(r, ctx, out, sep);
    case Field::reply_code: return w_reply_code(r, ctx, out, sep);
    case Field::reply_status: return w_reply_status(r, ctx, out, sep);
    case Field::bounce_class: return w_bounce_class(r, ctx, out, sep);
    case Field::bounce_name: return w_bounce_name(r, ctx, out, sep);
    }
    __builtin_unreachable(); // every Field has its case
}
#pragma GCC diagnostic pop

} // namespace mtalog
