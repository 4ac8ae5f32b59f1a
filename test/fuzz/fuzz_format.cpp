// The record formatters on random field values: the input is cut into a
// note, a domain, addresses, a remote IP and numbers; every format's line
// must keep its invariants, and JSON must parse.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#include "core.hpp"
#include "formatter.hpp"
#include "fuzz_invariants.hpp"
#include "smtp_reply.hpp"

namespace {

// Takes a length-prefixed piece of the input.
std::string take(const std::uint8_t *&data, std::size_t &size)
{
    if (size == 0)
        return {};
    std::size_t n = std::min<std::size_t>(data[0], size - 1);
    std::string out(reinterpret_cast<const char *>(data + 1), n);
    data += n + 1;
    size -= n + 1;
    out.erase(std::remove(out.begin(), out.end(), '\0'), out.end()); // C strings end at NUL
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    static mtacore::Core core;
    static const mtacfg::FormatSpec specs[4] = {{mtacfg::FormatKind::mainlog, {}},
                                                {mtacfg::FormatKind::json, {}},
                                                {mtacfg::FormatKind::csv, {}},
                                                {mtacfg::FormatKind::custom, "%i|%d|%r@%R|%m@%M|%H|%n"}};
    std::int32_t numbers[4] = {};
    std::memcpy(numbers, data, std::min(size, sizeof numbers));
    const std::size_t skip = std::min(size, sizeof numbers);
    data += skip;
    size -= skip;
    std::string domain = take(data, size), local = take(data, size), rdomain = take(data, size),
                ip = take(data, size);
    const std::string note(reinterpret_cast<const char *>(data), size);

    // The reply parser on the same remote text: values in their ranges, and
    // what it found spelled in the text as found.
    const mtalog::SmtpReply reply = mtalog::parse_smtp_reply(note);
    fuzzing::require(reply.code == 0 || (reply.code >= 200 && reply.code <= 559), "reply code out of range", note);
    fuzzing::require(reply.klass == 0 || reply.klass == 2 || reply.klass == 4 || reply.klass == 5,
                     "status class out of range", note);
    fuzzing::require(reply.subject <= 999 && reply.detail <= 999, "status number out of range", note);
    if (reply.has_code())
        fuzzing::require(note.find(std::to_string(reply.code)) != std::string::npos, "a code not in the text", note);
    if (reply.has_status()) // (its numbers may be spelled with leading zeros)
        fuzzing::require(note.find(std::to_string(reply.klass) + ".") != std::string::npos, "a status not in the text",
                         note);

    ec_message msg{};
    msg.id = message_id{static_cast<std::uint32_t>(numbers[0]), 7, 1};
    msg.binding_slot = numbers[1];
    msg.stage = numbers[2];
    msg.num_retries = numbers[3];
    msg.creation_time = timeval{numbers[0], 0};
    msg.rcptto_local = local.c_str();
    msg.rcptto_domain = rdomain.c_str();
    msg.remote_ip = ip.c_str();
    domain_record dr{domain.data(), 0, 0};
    mtalog::FormatContext ctx;
    ctx.core = core.c_api();
    ctx.max_note_bytes = 200;
    mtalog::Record r;
    r.kind = (numbers[1] & 1) ? mtalog::RecordKind::attempt : mtalog::RecordKind::permanent_failure;
    r.now = timeval{numbers[0] & 0x7fffffff, numbers[3] % 1000000};
    r.msg = &msg;
    r.dr = &dr;
    r.note = note;
    r.has_note = true;
    for (int i = 0; i < 4; ++i) {
        auto made = mtalog::make_formatter(specs[i], true, mtalog::kMessageKinds);
        mtalog::Buffer line;
        std::get<std::unique_ptr<mtalog::Formatter>>(made)->format(r, ctx, line);
        const std::string_view text(line.data(), line.size());
        fuzzing::check_line(text);
        if (i == 1)
            fuzzing::require(!nlohmann::json::parse(text, nullptr, false).is_discarded(), "JSON does not parse", text);
    }
    return 0;
}
