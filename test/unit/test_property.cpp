// Property test: random hostile notes and domains (all 256 byte values, long
// runs, broken UTF-8, separators, quotes, backslashes, CR, LF, U+2028)
// through every format. Every line must parse in its format (JSON with a real
// JSON parser, CSV with an RFC 4180 reader written here), hold no raw control
// byte, be valid UTF-8, and give back the capped original when unescaped.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstring>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cctype>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core.hpp"
#include "csv_format.hpp"
#include "escape.hpp"
#include "field_writers.hpp"
#include "fields.hpp"
#include "formatter.hpp"
#include "json_format.hpp"
#include "mainlog_format.hpp"
#include "template_format.hpp"

using namespace mtalog;

namespace {

std::string random_text(std::mt19937_64 &rng, std::size_t max_chunks)
{
    static const std::vector<std::string> specials{
        "@", ",", "\"", "\\", "\r", "\n", "\r\n", "\xe2\x80\xa8", "\xe2\x80\xa9", "é", "世界", "\xf0\x9f\x99\x82",
        "\xe4\xb8", "\xf0\x9f", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff", "\x80", std::string(1, '\0'),
        "\\x41", "\\\\", "...[truncated]", " ", "\t", "\x1b[31m"};
    std::string out;
    const std::size_t chunks = 1 + rng() % max_chunks;
    for (std::size_t c = 0; c < chunks; ++c) {
        switch (rng() % 5) {
        case 0: // random bytes, any value
            for (std::size_t n = rng() % 16; n > 0; --n)
                out += static_cast<char>(rng() % 256);
            break;
        case 1: // printable ASCII
            for (std::size_t n = rng() % 24; n > 0; --n)
                out += static_cast<char>(' ' + rng() % 95);
            break;
        case 2: out += specials[rng() % specials.size()]; break;
        case 3: { // a long run of one special
            const std::string &s = specials[rng() % specials.size()];
            for (std::size_t n = 20 + rng() % 200; n > 0; --n)
                out += s;
            break;
        }
        default: out += "550 5.1.1 <user@example.com>: Recipient address rejected"; break;
        }
    }
    return out;
}

// Undoes the text layer: \\ -> \, \xHH -> byte. nullopt on anything else.
std::optional<std::string> unescape(std::string_view s)
{
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '\\') {
            out += s[i];
            continue;
        }
        if (i + 1 < s.size() && s[i + 1] == '\\') {
            out += '\\';
            ++i;
        } else if (i + 3 < s.size() && s[i + 1] == 'x' && std::isxdigit(static_cast<unsigned char>(s[i + 2])) &&
                   std::isxdigit(static_cast<unsigned char>(s[i + 3]))) {
            out += static_cast<char>(std::stoi(std::string(s.substr(i + 2, 2)), nullptr, 16));
            i += 3;
        } else {
            return std::nullopt;
        }
    }
    return out;
}

// One RFC 4180 record (no line end); nullopt if malformed.
std::optional<std::vector<std::string>> parse_csv(std::string_view line)
{
    std::vector<std::string> cells;
    std::size_t i = 0;
    for (;;) {
        std::string cell;
        if (i < line.size() && line[i] == '"') {
            ++i;
            for (;;) {
                if (i >= line.size())
                    return std::nullopt; // unterminated quote
                if (line[i] == '"') {
                    if (i + 1 < line.size() && line[i + 1] == '"') {
                        cell += '"';
                        i += 2;
                        continue;
                    }
                    ++i;
                    break;
                }
                cell += line[i++];
            }
            if (i < line.size() && line[i] != ',')
                return std::nullopt; // text after a closing quote
        } else {
            while (i < line.size() && line[i] != ',') {
                if (line[i] == '"')
                    return std::nullopt; // a quote inside an unquoted cell
                cell += line[i++];
            }
        }
        cells.push_back(std::move(cell));
        if (i >= line.size())
            return cells;
        ++i; // the comma
    }
}

bool valid_utf8_without_controls(std::string_view line)
{
    for (std::size_t i = 0; i < line.size();) {
        const auto c = static_cast<unsigned char>(line[i]);
        if (c < 0x20 || c == 0x7F)
            return false;
        const std::size_t n = utf8_sequence_length(line.substr(i));
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

std::string escaped_length_probe(std::string_view text, char separator = 0)
{
    Buffer b;
    append_escaped(b, text, separator);
    return fmt::to_string(b);
}

// The note as written must give back the original, or (when the escaped
// original exceeds the cap) a prefix of it followed by the marker.
void check_note(std::string_view written, const std::string &original, std::size_t cap, char separator = 0)
{
    CHECK(written.size() <= cap);
    const bool fits = escaped_length_probe(original, separator).size() <= cap;
    if (fits) {
        const auto back = unescape(written);
        REQUIRE(back.has_value());
        CHECK(*back == original);
        return;
    }
    REQUIRE(written.ends_with(kTruncationMarker));
    const auto back = unescape(written.substr(0, written.size() - kTruncationMarker.size()));
    REQUIRE(back.has_value());
    CHECK(original.compare(0, back->size(), *back) == 0);
    CHECK(back->size() < original.size());
}

} // namespace

TEST_CASE("no note or domain can break, forge or corrupt a line in any format", "[property]")
{
    mtacore::Core core;
    core.set_bindings({{"mta1", "pool-a"}});
    FormatContext ctx;
    ctx.core = core.c_api();
    ctx.max_note_bytes = 200;
    auto compiled = CompiledTemplate::compile("%i|%d|%n", RecordKind::permanent_failure);
    REQUIRE(std::holds_alternative<CompiledTemplate>(compiled));
    const auto &tmpl = std::get<CompiledTemplate>(compiled);

    std::mt19937_64 rng(20261121);
    constexpr int kCases = 3000;
    int truncated = 0;
    for (int n = 0; n < kCases; ++n) {
        const std::string note = random_text(rng, 8);
        std::string domain = random_text(rng, 3);
        domain.erase(std::remove(domain.begin(), domain.end(), '\0'), domain.end()); // C strings end at NUL
        ec_message msg{};
        msg.id = message_id{0x5F000000u, 1, static_cast<uint16_t>(n)};
        domain_record dr{domain.data(), 0, 0};
        Record r;
        r.kind = RecordKind::permanent_failure;
        r.now = timeval{1700000000, 0};
        r.msg = &msg;
        r.dr = &dr;
        r.note = note;
        r.has_note = true;
        if (escaped_length_probe(note).size() > ctx.max_note_bytes)
            ++truncated;
        INFO("case " << n);

        Buffer line;
        format_mainlog(r, ctx, line);
        std::string text = fmt::to_string(line);
        CHECK(valid_utf8_without_controls(text));
        std::vector<std::string> fields;
        std::size_t start = 0;
        for (int f = 0; f < 13; ++f) {
            const auto at = text.find('@', start);
            REQUIRE(at != std::string::npos);
            fields.push_back(text.substr(start, at - start));
            start = at + 1;
        }
        CHECK(fields[4] == "P");
        check_note(fields[5], domain, kMaxFieldBytes, '@'); // other fields follow the same cap rule
        check_note(std::string_view(text).substr(start), note, ctx.max_note_bytes);

        line.clear();
        format_json(r, ctx, line);
        text = fmt::to_string(line);
        CHECK(valid_utf8_without_controls(text));
        const auto json = nlohmann::json::parse(text, nullptr, false);
        REQUIRE_FALSE(json.is_discarded());
        CHECK(text.starts_with("{\"type\":\"permanent_failure\","));
        if (!domain.empty())
            check_note(json.at("domain").get<std::string>(), domain, kMaxFieldBytes);
        check_note(json.at("note").get<std::string>(), note, ctx.max_note_bytes);

        line.clear();
        format_csv(r, ctx, line);
        text = fmt::to_string(line);
        CHECK(valid_utf8_without_controls(text));
        const auto cells = parse_csv(text);
        REQUIRE(cells.has_value());
        REQUIRE(cells->size() == mtalog::kFields.size());
        CHECK(cells->front() == "permanent_failure");
        check_note((*cells)[8], domain, kMaxFieldBytes);
        check_note((*cells)[static_cast<std::size_t>(mtalog::Field::note)], note, ctx.max_note_bytes);

        line.clear();
        tmpl.format(r, ctx, line);
        text = fmt::to_string(line);
        CHECK(valid_utf8_without_controls(text));
        // "%i|%d|%n": the id holds no '|'; the domain is escaped text that may.
        const std::size_t id_end = text.find('|');
        REQUIRE(id_end != std::string::npos);
        CHECK(text.substr(0, id_end) == fields[1]);
        Buffer capped_domain;
        append_escaped_capped(capped_domain, domain, 0, kMaxFieldBytes);
        const std::string escaped_domain = fmt::to_string(capped_domain);
        CHECK(text.compare(id_end + 1, escaped_domain.size(), escaped_domain) == 0);
        const std::size_t note_at = id_end + 1 + escaped_domain.size();
        REQUIRE(note_at < text.size());
        CHECK(text[note_at] == '|');
        check_note(std::string_view(text).substr(note_at + 1), note, ctx.max_note_bytes);
    }
    // The generator really exercised both sides of the cap.
    CHECK(truncated > kCases / 10);
    CHECK(truncated < kCases * 9 / 10);
}

namespace {

// JSON and CSV as the field table defines them, field by field through each
// row's writer (the table is also what templates and the docs read): the
// reference the hand-laid writers are held to.
std::string table_json(const Record &r, const FormatContext &ctx)
{
    std::string out = "{";
    std::string_view object; // the object open now
    bool first_member = true;
    for (const FieldInfo &f : kFields) {
        if ((f.kinds & kind_bit(r.kind)) == 0)
            continue;
        Buffer value;
        if (!f.write(r, ctx, value, ','))
            continue;
        if (f.json_object != object) {
            if (!object.empty())
                out += '}';
            if (!f.json_object.empty()) {
                out += ",\"" + std::string(f.json_object) + "\":{";
                first_member = true;
            }
            object = f.json_object;
        }
        if (!first_member)
            out += ',';
        first_member = false;
        out += '"' + std::string(object.empty() ? f.name : f.json_key) + "\":";
        const std::string_view text(value.data(), value.size());
        Buffer json;
        if (f.type == FieldType::string) {
            append_json_string(json, text);
        } else if (f.type == FieldType::string_list) {
            json.push_back('[');
            for (std::size_t start = 0;;) {
                const auto comma = text.find(',', start);
                append_json_string(json, text.substr(start, comma - start));
                if (comma == std::string_view::npos)
                    break;
                json.push_back(',');
                start = comma + 1;
            }
            json.push_back(']');
        } else {
            append_raw(json, text.data(), text.size());
        }
        out += fmt::to_string(json);
    }
    if (!object.empty())
        out += '}';
    return out + '}';
}

// A core with what the mock core never gives: binding names with quotes,
// commas, edge spaces, backslashes, control bytes, UTF-8 and more than 64
// bytes, and message-id texts with the same (an adapter's ids are the
// event's own text).
struct HostileCore {
    static int binding_lookup(ec_core *, int slot, const char **name, const char **group)
    {
        static const char *const names[][2] = {
            {"default", "default"},
            {"pool-a", "mta1"},
            {" lead", "m\"q"},
            {"g\\h", "a,b"},
            {"\x01ctl \xc3\xa9\xe2\x80\xa8", "a-binding-name-that-is-longer-than-sixty-four-bytes-by-a-margin-of-some"},
            {"", "only-name"},
        };
        if (slot < 0 || slot >= 6) {
            *name = *group = nullptr;
            return -1;
        }
        *group = names[slot][0];
        *name = names[slot][1];
        return 0;
    }
    static std::size_t message_id_text(ec_core *, const message_id *id, char *buf, std::size_t buflen)
    {
        static const char *const texts[] = {"a\"b,c", " lead", "trail ", "back\\slash", "ctl\x01\xc3\xa9\xe2\x80\xa9"};
        std::string text;
        if (id->slot != 0 || id->pid != 0 || id->counter != 0)
            text = id->counter % 2 == 0 ? texts[id->counter / 2 % 5] : "00/00-" + std::to_string(id->counter) + "-5F";
        const std::size_t n = std::min(text.size(), buflen - 1);
        std::memcpy(buf, text.data(), n);
        buf[n] = '\0';
        return text.size();
    }
};

std::string table_csv(const Record &r, const FormatContext &ctx)
{
    std::string out;
    for (const FieldInfo &f : kFields) {
        if (&f != &kFields.front())
            out += ',';
        Buffer value;
        if ((f.kinds & kind_bit(r.kind)) == 0 || !f.write(r, ctx, value, '|'))
            continue;
        const std::string cell = fmt::to_string(value);
        const bool text = f.type == FieldType::string || f.type == FieldType::string_list;
        if (!text || cell.empty() ||
            (cell.front() != ' ' && cell.back() != ' ' && cell.find_first_of(",\"") == std::string::npos)) {
            out += cell;
            continue;
        }
        out += '"';
        for (const char c : cell)
            out += c == '"' ? std::string("\"\"") : std::string(1, c);
        out += '"';
    }
    return out;
}

} // namespace

TEST_CASE("json, csv and template lines are what the field table says, for every kind and every absent or hostile value",
          "[property]")
{
    ec_core core{}; // hostile binding names and id texts (HostileCore)
    core.binding_lookup = HostileCore::binding_lookup;
    core.message_id_text = HostileCore::message_id_text;
    FormatContext plain_ctx;
    plain_ctx.core = &core;
    FormatContext cached_ctx = plain_ctx; // as an instance runs: per-slot binding names and texts
    cache_binding_texts(cached_ctx, 4);   // slots 4 and up are looked up per record

    // Per kind, a template of every macro that shows a field, and %T and %t,
    // each after a separator (long ones are cut into steps of their own).
    const std::array<std::string_view, 3> separators{"|", " ~ a separator of 33 bytes ~~~~~ ", "16 bytes exactly"};
    std::array<std::optional<CompiledTemplate>, 3> templates;
    std::array<std::vector<Field>, 3> template_fields;
    for (const RecordKind kind : mtacfg::kAllRecordKinds) {
        const auto k = static_cast<std::size_t>(kind);
        std::string text;
        for (const MacroInfo &m : template_macros()) {
            if (m.field == nullptr || (m.kinds & kind_bit(kind)) == 0)
                continue;
            text += std::string(separators[template_fields[k].size() % 3]) + "%" + std::string(m.name);
            template_fields[k].push_back(m.field->field);
        }
        text += "|%t|";
        if ((kMessageKinds & kind_bit(kind)) != 0)
            text += "%T{0}|%T";
        auto compiled = CompiledTemplate::compile(text, kind);
        REQUIRE(std::holds_alternative<CompiledTemplate>(compiled));
        templates[k] = std::move(std::get<CompiledTemplate>(compiled));
    }
    // The same through the table's rows, one by one.
    auto table_template = [&](const Record &r, const FormatContext &ctx) {
        const auto k = static_cast<std::size_t>(r.kind);
        std::string out;
        for (std::size_t i = 0; i < template_fields[k].size(); ++i) {
            Buffer value;
            field_info(template_fields[k][i]).write(r, ctx, value, '|');
            out += std::string(separators[i % 3]) + fmt::to_string(value);
        }
        Buffer seconds;
        append_time(seconds, r.now, TimeDecimals::none);
        out += "|" + fmt::to_string(seconds) + "|";
        if (r.kind != RecordKind::connection_failure) {
            Buffer elapsed;
            field_info(Field::elapsed).write(r, ctx, elapsed, '|');
            out += fmt::to_string(elapsed) + "|" + fmt::to_string(elapsed);
        }
        return out;
    };

    std::mt19937_64 rng(20261130);
    auto pick_text = [&](std::vector<std::string> &keep) -> const char * {
        switch (rng() % 8) {
        case 0: return nullptr;
        case 1: return "";
        case 2: return "example.com";
        case 3: return " spaced ";
        case 4: return "a,\"b\"";
        default: {
            std::string t = random_text(rng, 3);
            t.erase(std::remove(t.begin(), t.end(), '\0'), t.end()); // C strings end at NUL
            keep.push_back(std::move(t));
            return keep.back().c_str();
        }
        }
    };
    FormatCache cache; // shared across records, as a thread's stage holds it
    message_id ids[12] = {}; // ids[0] all zero: no text
    for (std::uint16_t k = 1; k < 12; ++k)
        ids[k] = message_id{0x5F000000u, 1, k};
    int kinds_seen[3] = {}, peers_seen = 0, flags_seen = 0;
    constexpr int kCases = 6000;
    for (int n = 0; n < kCases; ++n) {
        std::vector<std::string> keep;
        keep.reserve(16);
        ec_message msg{};
        msg.id = ids[rng() % 12];
        msg.batch_id = ids[rng() % 12];
        msg.conn_id = ids[rng() % 12];
        msg.mailfrom_local = pick_text(keep);
        msg.mailfrom_domain = pick_text(keep);
        msg.rcptto_local = pick_text(keep);
        msg.rcptto_domain = pick_text(keep);
        msg.remote_ip = pick_text(keep);
        msg.size = rng() % 3 == 0 ? 0 : static_cast<std::size_t>(rng() % 100000000);
        msg.binding_slot = static_cast<int>(rng() % 8) - 1;
        msg.stage = static_cast<int>(rng() % 20) - 1;
        msg.num_retries = static_cast<int>(rng() % 30);
        msg.creation_time = rng() % 3 == 0 ? timeval{0, 0} : timeval{1699990000 + static_cast<long>(rng() % 20000), 5};
        const char *domain = pick_text(keep);
        domain_record dr{const_cast<char *>(domain), 0, 0};
        sockaddr_in v4{};
        v4.sin_family = AF_INET;
        v4.sin_port = htons(25);
        v4.sin_addr.s_addr = htonl(0xC0000238u + static_cast<std::uint32_t>(rng() % 200));
        sockaddr_in6 v6{};
        v6.sin6_family = AF_INET6;
        v6.sin6_port = htons(2525);
        v6.sin6_addr.s6_addr[0] = 0x20;
        v6.sin6_addr.s6_addr[1] = 0x01;
        v6.sin6_addr.s6_addr[15] = static_cast<std::uint8_t>(rng());
        sockaddr other{};
        other.sa_family = static_cast<sa_family_t>(rng() % 2 == 0 ? AF_UNIX : 99);
        const sockaddr *addrs[] = {nullptr, reinterpret_cast<const sockaddr *>(&v4),
                                   reinterpret_cast<const sockaddr *>(&v6), &other};
        const std::string note = random_text(rng, 6);

        Record r;
        r.kind = static_cast<RecordKind>(rng() % 3);
        r.now = record_time(timeval{1700000000 + static_cast<long>(rng() % 3), static_cast<long>(rng() % 1000000)});
        r.msg = rng() % 5 == 0 ? nullptr : &msg;
        r.dr = rng() % 5 == 0 ? nullptr : &dr;
        r.has_note = rng() % 4 != 0;
        r.note = r.has_note ? std::string_view(note) : std::string_view();
        // Adapters give peers and hosts to every kind; Momentum's hook only to connection failures.
        r.addr = addrs[rng() % 4];
        r.err = rng() % 4 == 0 ? 0 : static_cast<int>(rng() % 0x40000);
        r.binding_slot = static_cast<int>(rng() % 8) - 1;
        r.peer_host = rng() % 2 == 0 ? nullptr : pick_text(keep);
        if (rng() % 2 == 0)
            r.os_errno = static_cast<int>(rng() % 200);
        r.cache = rng() % 4 == 0 ? nullptr : &cache;
        ++kinds_seen[static_cast<int>(r.kind)];
        peers_seen += r.addr != nullptr;
        flags_seen += r.kind == RecordKind::connection_failure && r.err != 0;

        plain_ctx.max_note_bytes = cached_ctx.max_note_bytes = std::array<std::size_t, 4>{1, 16, 300, 2048}[rng() % 4];
        // The writers under test go first in half the cases, so that they
        // also meet ids the thread's cache does not hold yet.
        const bool reference_first = rng() % 2 == 0;
        std::string want_json, want_csv, want_template;
        if (reference_first) {
            want_json = table_json(r, plain_ctx);
            want_csv = table_csv(r, plain_ctx);
            want_template = table_template(r, plain_ctx);
        }
        for (const FormatContext *ctx : {&cached_ctx, &plain_ctx}) {
            Buffer json, csv, line;
            format_json(r, *ctx, json);
            format_csv(r, *ctx, csv);
            templates[static_cast<std::size_t>(r.kind)]->format(r, *ctx, line);
            if (!reference_first) {
                want_json = table_json(r, plain_ctx);
                want_csv = table_csv(r, plain_ctx);
                want_template = table_template(r, plain_ctx);
            }
            INFO("case " << n << (ctx == &cached_ctx ? ", cached binding texts" : ""));
            REQUIRE(fmt::to_string(json) == want_json);
            REQUIRE(fmt::to_string(csv) == want_csv);
            REQUIRE(fmt::to_string(line) == want_template);
        }
        // write_field's switch: every row of the kind, macro or not, as its row writes it.
        for (const FieldInfo &f : kFields) {
            if ((f.kinds & kind_bit(r.kind)) == 0)
                continue;
            Buffer by_row, by_switch;
            const bool row_wrote = f.write(r, plain_ctx, by_row, ',');
            INFO("case " << n << ", field " << f.name);
            REQUIRE(write_field(f.field, r, plain_ctx, by_switch, ',') == row_wrote);
            REQUIRE(fmt::to_string(by_switch) == fmt::to_string(by_row));
        }
    }
    // Every kind, peers and flag lists really came up.
    for (const int seen : kinds_seen)
        CHECK(seen > kCases / 4);
    CHECK(peers_seen > kCases / 2);
    CHECK(flags_seen > kCases / 5);
}
