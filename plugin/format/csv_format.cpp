#include "csv_format.hpp"

#include <cstring>

#include "fields.hpp"
#include "reason.hpp"

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

// Whether text goes into a cell as it is: nothing for the text layer to
// escape, no comma or quote, no space at either end. One scan decides.
bool bare_cell(std::string_view text)
{
    const std::size_t n = text.size();
    return detail::plain_prefix(text, ',', '"') == n && (n == 0 || (text[0] != ' ' && text[n - 1] != ' '));
}

// Text through the text layer (escape.hpp, capped at `cap`), quoted when
// the cell needs it.
void put_csv_text(Buffer &out, std::string_view text, std::size_t cap)
{
    if (text.size() <= cap && bare_cell(text)) {
        append_raw(out, text.data(), text.size());
        return;
    }
    const std::size_t start = out.size();
    append_escaped_capped(out, text, 0, cap);
    quote_from(out, start);
}

// The cell of a text field (empty for NULL), then the comma after it; a
// bare one in one move with its comma.
void put_text_cell(Buffer &out, const char *text)
{
    if (text != nullptr) {
        const std::string_view view = bounded_field(text);
        if (view.size() <= kMaxFieldBytes && bare_cell(view)) {
            const std::size_t at = out.size();
            out.resize(at + view.size() + 1);
            std::memcpy(out.data() + at, view.data(), view.size());
            out[at + view.size()] = ',';
            return;
        }
        put_csv_text(out, view, kMaxFieldBytes);
    }
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
    const bool has_local = local && *local, has_domain = domain && *domain;
    if (!has_local && !has_domain) {
        out.push_back(',');
        return;
    }
    // Empty parts as "" rather than NULL: append_raw_address copies them.
    const std::string_view a = has_local ? bounded_field(local) : std::string_view(""),
                           b = has_domain ? bounded_field(domain) : std::string_view("");
    // Most: both parts bare, so the cell is too unless a space ends it. The
    // cell is copied with its comma first and checked in one scan.
    if (a.size() <= kMaxFieldBytes && b.size() <= kMaxFieldBytes) {
        const std::size_t at = out.size();
        const std::string_view cell = append_raw_address(out, a, b, ',');
        if (cell.front() != ' ' && cell.back() != ' ' && detail::plain_prefix(cell, ',', '"') == cell.size())
            return;
        out.resize(at);
    }
    const std::size_t start = out.size();
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
    append_unix_and_rfc3339(out, r.now, ",", r.cache ? &r.cache->second : nullptr,
                            r.cache ? &r.cache->rfc3339_second : nullptr);
    out.push_back(',');
    if (r.msg)
        put_id_cell(out, ctx, r.msg->id);
    else
        out.push_back(',');
}

// peer_address, peer_port, peer_family and peer_host, each with its comma.
void put_peer_cells(Buffer &out, const Record &r)
{
    if (r.addr == nullptr && r.peer_host == nullptr) { // message records from Momentum's hooks
        put_literal(out, ",,,,");
        return;
    }
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
    // reply_code, reply_status, bounce_class, bounce_name: our own digits
    // and names, nothing to escape or quote.
    const Reason &why = reason_of(r, ctx);
    out.push_back(',');
    if (why.reply.has_code())
        put_int(out, why.reply.code);
    out.push_back(',');
    if (why.reply.has_status()) {
        char status[12];
        const std::size_t n = status_text(why.reply, status);
        append_raw(out, status, n);
    }
    out.push_back(',');
    if (why.classified) {
        put_int_cell(out, kBounceClasses[why.bounce].number);
        put(out, kBounceClasses[why.bounce].name);
    } else {
        out.push_back(',');
    }
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
    put_literal(out, ",,,,,"); // note, reply_code, reply_status, bounce_class, bounce_name: message kinds only
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
