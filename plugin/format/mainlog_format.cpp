#include "mainlog_format.hpp"

namespace mtalog {

namespace {

constexpr char kSep = '@';

void put_field(Buffer &out, const char *text) { append_field_text(out, text, kSep); }

// `cache`: the thread's, for batch and connection ids (see FormatCache).
void put_message_id(Buffer &out, const FormatContext &ctx, const message_id &id, FormatCache *cache = nullptr)
{
    append_message_id(out, ctx, id, kSep, cache);
}

void put_binding_names(Buffer &out, const BindingNames &names)
{
    put_field(out, names.group);
    out.push_back(kSep);
    put_field(out, names.name);
}

void put_binding(Buffer &out, const FormatContext &ctx, int slot)
{
    put_binding_text(out, ctx, ctx.mainlog_bindings, slot, put_binding_names);
}

// time@id@batch@conn@ (empty ids without a message)
void put_time_and_ids(Buffer &out, const FormatContext &ctx, const Record &r)
{
    append_record_time(out, r, ctx.precision);
    out.push_back(kSep);
    if (const ec_message *m = r.msg) {
        put_message_id(out, ctx, m->id);
        out.push_back(kSep);
        put_message_id(out, ctx, m->batch_id, r.cache);
        out.push_back(kSep);
        put_message_id(out, ctx, m->conn_id, r.cache);
    } else {
        put(out, "@@");
    }
    out.push_back(kSep);
}

void format_message_record(const Record &r, const FormatContext &ctx, char letter, Buffer &out)
{
    const ec_message *m = r.msg;
    put_time_and_ids(out, ctx, r);
    out.push_back(letter);
    out.push_back(kSep);
    put_field(out, r.dr ? r.dr->domain : nullptr);
    out.push_back(kSep);
    if (m) {
        put_int(out, static_cast<long long>(m->size));
        out.push_back(kSep);
        put_binding(out, ctx, m->binding_slot);
        out.push_back(kSep);
        put_int(out, m->stage);
        out.push_back(kSep);
        put_int(out, m->num_retries);
        out.push_back(kSep);
        if (const auto micros = queue_micros(r))
            append_seconds(out, *micros, 0);
        out.push_back(kSep);
        put_field(out, m->remote_ip);
    } else {
        put(out, "@@@@@@");
    }
    out.push_back(kSep);
    if (r.has_note)
        append_escaped_capped(out, r.note, 0, ctx.max_note_bytes);
}

void format_connection_failure(const Record &r, const FormatContext &ctx, Buffer &out)
{
    put_time_and_ids(out, ctx, r); // ids only from an adapter: Momentum's hook has no message
    put(out, "C@");
    put_field(out, r.dr ? r.dr->domain : nullptr);
    out.push_back(kSep);
    append_peer_address(out, r.addr);
    out.push_back(kSep);
    put_binding(out, ctx, r.binding_slot);
    out.push_back(kSep);
    put_int(out, r.binding_slot);
    out.push_back(kSep);
    put_int(out, r.err);
    out.push_back(kSep);
    append_conn_flag_names(out, r.err, '|');
}

} // namespace

BindingTexts mainlog_binding_texts(const FormatContext &ctx, int slots)
{
    return binding_texts(ctx, slots, put_binding_names);
}

void format_mainlog(const Record &record, const FormatContext &ctx, Buffer &out)
{
    switch (record.kind) {
    case RecordKind::attempt: format_message_record(record, ctx, 'A', out); break;
    case RecordKind::permanent_failure: format_message_record(record, ctx, 'P', out); break;
    case RecordKind::connection_failure: format_connection_failure(record, ctx, out); break;
    }
}

} // namespace mtalog
