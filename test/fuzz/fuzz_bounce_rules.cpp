// The bounce rules compiler and classifier on arbitrary input: the input up
// to its first NUL is an operator's rules file, the rest a reply text. The
// operator's rules, compiled before the built-in ones as `bounce_rules` is,
// either compile or give an error located in the operator's file; what
// compiles classifies the reply (and the built-in rules alone classify it
// too) into a real class, the same class every time.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "bounce_rules.hpp"

namespace {

void check_classifies(const mtalog::BounceRules &rules, std::string_view reply)
{
    const mtalog::SmtpReply parsed = mtalog::parse_smtp_reply(reply);
    if (parsed.has_code() && (parsed.code < 200 || parsed.code > 599))
        __builtin_trap();
    if (parsed.has_status() && (parsed.klass != 2 && parsed.klass != 4 && parsed.klass != 5))
        __builtin_trap();
    std::vector<int> scratch;
    const std::uint8_t first = rules.classify(reply, parsed, &scratch);
    if (first >= mtalog::kBounceClassCount || rules.classify(reply, parsed) != first)
        __builtin_trap();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    static const auto defaults = std::get<std::shared_ptr<const mtalog::BounceRules>>(mtalog::BounceRules::compile(
        {{std::string(mtalog::kDefaultBounceRules), std::string(mtalog::kDefaultBounceRulesName)}}));
    const std::string_view input(reinterpret_cast<const char *>(data), size);
    const std::size_t nul = input.find('\0');
    const std::string rules_text(input.substr(0, nul));
    const std::string_view reply = nul == std::string_view::npos ? input : input.substr(nul + 1);
    check_classifies(*defaults, reply);
    const auto compiled = mtalog::BounceRules::compile(
        {{rules_text, "fuzz.conf"}, {std::string(mtalog::kDefaultBounceRules), std::string(mtalog::kDefaultBounceRulesName)}});
    if (const auto *error = std::get_if<mtacfg::ConfigError>(&compiled)) {
        if (error->message.empty() || error->where.file != "fuzz.conf" || error->where.line < 0)
            __builtin_trap();
        return 0;
    }
    check_classifies(*std::get<std::shared_ptr<const mtalog::BounceRules>>(compiled), reply);
    return 0;
}
