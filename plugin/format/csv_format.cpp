#include "csv_format.hpp"

#include <cstring>

#include "fields.hpp"

namespace mtalog {

namespace {

// Whether a cell must be quoted: it holds a comma or a quote, or begins or
// ends with a space.
bool needs_quotes(std::string_view cell)
{
    return !cell.empty() && (cell.front() == ' ' || cell.back() == ' ' || detail::holds_any(cell, ',', '"', false));
}

// `cell` quoted, with its quotes doubled.
void append_quoted(Buffer &out, std::string_view cell)
{
    out.push_back('"');
    std::size_t plain = 0;
    for (std::size_t q; (q = cell.find('"', plain)) != std::string_view::npos; plain = q + 1) {
        append_raw(out, cell.data() + plain, q + 1 - plain);
        out.push_back('"'); // a quote is doubled
    }
    append_raw(out, cell.data() + plain, cell.size() - plain);
    out.push_back('"');
}

// Quotes out[start..] (one cell, through the text layer already) when it
// needs quotes.
void quote_from(Buffer &out, std::size_t start)
{
    if (needs_quotes(std::string_view(out.data() + start, out.size() - start)))
        rewrite_from(out, start, append_quoted);
}

// Copies a short text that needs neither the text layer's escapes nor
// quotes for a comma or a quote, and returns true; returns false having
// written nothing for any other text. One scan decides.
bool put_bare(Buffer &out, const char *text)
{
    constexpr std::size_t kShort = 64; // within kMaxFieldBytes: no cap applies
    const std::size_t n = ::strnlen(text, kShort + 1);
    if (n > kShort || detail::plain_prefix(std::string_view(text, n), ',', '"') != n)
        return false;
    append_raw(out, text, n);
    return true;
}

// Whether the cell written from `start` needs no quotes for a space at
// either end.
bool no_edge_space(const Buffer &out, std::size_t start)
{
    return out.size() == start || (out[start] != ' ' && out[out.size() - 1] != ' ');
}

// Text through the text layer (escape.hpp, capped at `cap`), quoted when
// the cell needs it. Text that needs neither is found so in one scan.
void put_csv_text(Buffer &out, std::string_view text, std::size_t cap)
{
    const std::size_t n = text.size();
    if (n <= cap && detail::plain_prefix(text, ',', '"') == n && (n == 0 || (text[0] != ' ' && text[n - 1] != ' '))) {
        append_raw(out, text.data(), n);
        return;
    }
    const std::size_t start = out.size();
    append_escaped_capped(out, text, 0, cap);
    quote_from(out, start);
}

// The cell of a text field (empty for NULL), then the comma after it.
void put_text_cell(Buffer &out, const char *text)
{
    if (text != nullptr)
        put_csv_text(out, bounded_field(text), kMaxFieldBytes);
    out.push_back(',');
}

void put_id_cell(Buffer &out, const FormatContext &ctx, const message_id &id, FormatCache *cache = nullptr)
{
    const std::size_t start = out.size();
    if (!append_message_id(out, ctx, id, 0, cache, true)) // a bare id needs nothing more
        quote_from(out, start);
    out.push_back(',');
}

// local@domain; `@domain` without a local part, `local` without a domain.
void put_address_cell(Buffer &out, const char *local, const char *domain)
{
    const std::size_t start = out.size();
    const bool has_domain = domain && *domain;
    bool bare = local == nullptr || put_bare(out, local);
    if (bare && has_domain) {
        out.push_back('@');
        bare = put_bare(out, domain);
    }
    if (bare && no_edge_space(out, start)) {
        out.push_back(',');
        return;
    }
    out.resize(start);
    append_field_text(out, local, 0);
    if (has_domain) {
        out.push_back('@');
        append_field_text(out, domain, 0);
    }
    quote_from(out, start);
    out.push_back(',');
}

template <typename Int> void put_int_cell(Buffer &out, Int value)
{
    put_int(out, static_cast<long long>(value));
    out.push_back(',');
}

// The binding_group and binding cells, each with its comma.
void put_csv_binding_names(Buffer &out, const BindingNames &names)
{
    put_text_cell(out, names.group);
    put_text_cell(out, names.name);
}

// binding_group, binding and binding_slot, each with its comma.
void put_binding_cells(Buffer &out, const FormatContext &ctx, int slot)
{
    put_binding_text(out, ctx, ctx.csv_bindings, slot, put_csv_binding_names);
    put_int_cell(out, slot);
}

// type, timestamp, event_time and message_id, each with its comma.
template <std::size_t N> void put_head(Buffer &out, const char (&type)[N], const Record &r, const FormatContext &ctx)
{
    put_literal(out, type);
    append_record_time(out, r, mtacfg::TimePrecision::microseconds);
    out.push_back(',');
    append_rfc3339(out, r.now, r.cache ? &r.cache->rfc3339_second : nullptr);
    out.push_back(',');
    if (r.msg)
        put_id_cell(out, ctx, r.msg->id);
    else
        out.push_back(',');
}

// peer_address, peer_port, peer_family and peer_host, each with its comma.
void put_peer_cells(Buffer &out, const Record &r)
{
    const Peer p = peer_of(r.addr);
    if (p.known) { // our own text: nothing to escape or quote
        put(out, p.ip);
        out.push_back(',');
        put_int_cell(out, p.port);
    } else {
        put_literal(out, ",,");
    }
    put(out, p.family);
    out.push_back(',');
    put_text_cell(out, r.peer_host);
}

template <std::size_t N>
void format_csv_message(const Record &r, const FormatContext &ctx, const char (&type)[N], Buffer &out)
{
    put_head(out, type, r, ctx);
    const ec_message *m = r.msg;
    if (m) {
        put_id_cell(out, ctx, m->batch_id, r.cache);
        put_id_cell(out, ctx, m->conn_id, r.cache);
        put_address_cell(out, m->mailfrom_local, m->mailfrom_domain);
        put_address_cell(out, m->rcptto_local, m->rcptto_domain);
    } else {
        put_literal(out, ",,,,");
    }
    put_text_cell(out, r.dr ? r.dr->domain : nullptr);
    if (m) {
        put_int_cell(out, m->size);
        put_binding_cells(out, ctx, m->binding_slot);
        put_int_cell(out, m->stage);
        if (const char *name = stage_name(m->stage)) // our own table: nothing to escape or quote
            put(out, name);
        out.push_back(',');
        put_int_cell(out, m->num_retries);
        if (const auto micros = queue_micros(r))
            append_seconds(out, *micros, 0);
        out.push_back(',');
        put_text_cell(out, m->remote_ip);
    } else {
        put_literal(out, ",,,,,,,,,");
    }
    put_peer_cells(out, r);
    put_literal(out, ",,,"); // error_code, error_flags, os_errno: connection failures only
    if (r.has_note)
        put_csv_text(out, r.note, ctx.max_note_bytes);
}

void format_csv_connection_failure(const Record &r, const FormatContext &ctx, Buffer &out)
{
    put_head(out, "connection_failure,", r, ctx);
    put_literal(out, ",,,,"); // batch_id, connection_id, mail_from, rcpt_to: message kinds only
    put_text_cell(out, r.dr ? r.dr->domain : nullptr);
    out.push_back(','); // size
    put_binding_cells(out, ctx, r.binding_slot);
    put_literal(out, ",,,,,"); // stage, stage_name, retries, elapsed, remote_ip
    put_peer_cells(out, r);
    put_int_cell(out, r.err);
    append_conn_flag_names(out, r.err, '|'); // names and hex digits: nothing to quote
    out.push_back(',');
    if (r.os_errno)
        put_int(out, *r.os_errno);
    out.push_back(','); // the note: message kinds only
}

} // namespace

void format_csv(const Record &record, const FormatContext &ctx, Buffer &out)
{
    switch (record.kind) {
    case RecordKind::attempt: format_csv_message(record, ctx, "attempt,", out); break;
    case RecordKind::permanent_failure: format_csv_message(record, ctx, "permanent_failure,", out); break;
    case RecordKind::connection_failure: format_csv_connection_failure(record, ctx, out); break;
    }
}

std::string csv_header()
{
    std::string header;
    for (const FieldInfo &info : kFields) {
        if (!header.empty())
            header += ',';
        header += info.name;
    }
    return header;
}

BindingTexts csv_binding_texts(const FormatContext &ctx, int slots)
{
    return binding_texts(ctx, slots, put_csv_binding_names);
}

} // namespace mtalog
