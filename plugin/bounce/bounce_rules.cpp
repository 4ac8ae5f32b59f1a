#include "bounce_rules.hpp"

#include <array>
#include <bitset>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <new>
#include <sstream>

#include <re2/re2.h>
#include <re2/set.h>

#include "parser.hpp"
#include "suggest.hpp"
#include "values.hpp"

namespace mtalog {

namespace {

using mtacfg::ConfigError;
using mtacfg::Location;

constexpr int kAny = -1; // a wildcard in a status pattern

struct StatusPattern {
    int klass = 0, subject = kAny, detail = kAny;
    [[nodiscard]] bool matches(const SmtpReply &r) const noexcept
    {
        return r.klass == klass && (subject == kAny || r.subject == subject) && (detail == kAny || r.detail == detail);
    }
};

// "55x": each character a digit or 'x' (any digit).
struct CodePattern {
    std::array<char, 3> digits{};
    [[nodiscard]] bool matches(std::uint16_t code) const noexcept
    {
        const char actual[3] = {static_cast<char>('0' + code / 100), static_cast<char>('0' + code / 10 % 10),
                                static_cast<char>('0' + code % 10)};
        for (int i = 0; i < 3; ++i)
            if (digits[i] != 'x' && digits[i] != actual[i])
                return false;
        return true;
    }
};

std::vector<std::string_view> words(std::string_view text)
{
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == ','))
            ++i;
        const std::size_t start = i;
        while (i < text.size() && text[i] != ' ' && text[i] != '\t' && text[i] != ',')
            ++i;
        if (i > start)
            out.push_back(text.substr(start, i - start));
    }
    return out;
}

bool digits_only(std::string_view s) noexcept
{
    for (const char c : s)
        if (c < '0' || c > '9')
            return false;
    return !s.empty();
}

// One to three digits, or '*'.
std::optional<int> status_part(std::string_view s) noexcept
{
    if (s == "*")
        return kAny;
    if (s.size() > 3 || !digits_only(s))
        return std::nullopt;
    int v = 0;
    for (const char c : s)
        v = v * 10 + (c - '0');
    return v;
}

std::optional<StatusPattern> parse_status(std::string_view w) noexcept
{
    if (w.size() < 5 || (w[0] != '2' && w[0] != '4' && w[0] != '5') || w[1] != '.')
        return std::nullopt;
    const std::string_view rest = w.substr(2);
    const std::size_t dot = rest.find('.');
    if (dot == std::string_view::npos)
        return std::nullopt;
    const auto subject = status_part(rest.substr(0, dot)), detail = status_part(rest.substr(dot + 1));
    if (!subject || !detail)
        return std::nullopt;
    return StatusPattern{w[0] - '0', *subject, *detail};
}

std::optional<CodePattern> parse_code(std::string_view w) noexcept
{
    if (w.size() != 3 || w[0] < '2' || w[0] > '5')
        return std::nullopt;
    CodePattern p;
    for (int i = 0; i < 3; ++i) {
        const char c = w[i] == 'X' ? 'x' : w[i];
        if (c != 'x' && (c < '0' || c > '9'))
            return std::nullopt;
        p.digits[i] = c;
    }
    return p;
}

// Where `word` (a view into `value`) starts, for an error about it.
Location at_word(const mtacfg::Option &opt, std::string_view word)
{
    return mtacfg::value_location(opt.value_where, static_cast<std::size_t>(word.data() - opt.value.data()));
}

const std::vector<std::string> kRuleOptions{"class", "status", "code", "text"};

// A rule's `status` or `code` list: each word parsed by `parse` into `out`;
// an error points at the first word that is not one (`what`, `form`), or
// at an empty list (`list`).
template <typename Pattern, typename Parse>
std::optional<ConfigError> parse_list(const mtacfg::Option &opt, const std::string &rule, Parse parse,
                                      const char *what, const char *list, const char *form,
                                      std::vector<Pattern> &out)
{
    for (const std::string_view w : words(opt.value)) {
        const std::optional<Pattern> p = parse(w);
        if (!p)
            return ConfigError{at_word(opt, w), std::string("bad ") + what + " '" + std::string(w) + "': " + form};
        out.push_back(*p);
    }
    if (out.empty())
        return ConfigError{opt.value_where, std::string("empty ") + list + " list in bounce rule \"" + rule + "\""};
    return std::nullopt;
}

bool local_part_char(char c) noexcept
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '%' || c == '+' || c == '=' || c == '-';
}

bool domain_char(char c) noexcept
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

// `text` into `out` (at least text.size() bytes) with every e-mail address
// blanked: the words a sender or receiver picks for an address
// (<virus.research@...>, <out-of-office@...>) must not pick the class.
std::string_view mask_addresses(std::string_view text, char *out) noexcept
{
    std::memcpy(out, text.data(), text.size());
    for (const char *at = static_cast<const char *>(std::memchr(out, '@', text.size())); at != nullptr;) {
        std::size_t begin = static_cast<std::size_t>(at - out), end = begin + 1;
        while (begin > 0 && local_part_char(out[begin - 1]))
            --begin;
        while (end < text.size() && domain_char(out[end]))
            ++end;
        std::memset(out + begin, ' ', end - begin);
        at = end < text.size() ? static_cast<const char *>(std::memchr(out + end, '@', text.size() - end)) : nullptr;
    }
    return {out, text.size()};
}

} // namespace

struct BounceRules::Compiled {
    struct Rule {
        std::string name;
        std::uint8_t klass = kUndetermined;
        std::vector<StatusPattern> statuses; // empty: any (also none)
        std::vector<CodePattern> codes;      // empty: any (also none)
        std::bitset<400> code_set;           // codes 200-599 that `codes` match
        int pattern = -1;                    // index in the set; -1: no text condition
        // An operator's rule named like a built-in one moves to its place:
        // the operator's entry is `moved`, the built-in's slot names it.
        bool moved = false;
        std::size_t stands_for = SIZE_MAX;

        // Whether the code and status conditions hold.
        [[nodiscard]] bool holds(const SmtpReply &r) const noexcept
        {
            if (!codes.empty() && (r.code < 200 || r.code > 599 || !code_set[r.code - 200u]))
                return false;
            if (statuses.empty())
                return true;
            for (const StatusPattern &p : statuses)
                if (p.matches(r))
                    return true;
            return false;
        }
    };
    std::vector<Rule> rules;
    std::vector<std::size_t> rule_of_pattern; // the rule of each text pattern
    std::vector<std::size_t> plain_rules;     // the rules without a text, in order
    std::unique_ptr<re2::RE2::Set> set;       // null when no rule has a text
    std::size_t patterns = 0;
    std::size_t first_text_rule = SIZE_MAX; // the first rule with a text

    // The rules in their final order (moved rules in their slots), and the
    // indexes into it.
    void finish()
    {
        std::vector<Rule> ordered;
        for (Rule &rule : rules) {
            if (rule.moved)
                continue;
            ordered.push_back(std::move(rule.stands_for == SIZE_MAX ? rule : rules[rule.stands_for]));
        }
        rules = std::move(ordered);
        rule_of_pattern.assign(patterns, 0);
        for (std::size_t i = 0; i < rules.size(); ++i) {
            if (rules[i].pattern >= 0) {
                rule_of_pattern[static_cast<std::size_t>(rules[i].pattern)] = i;
                first_text_rule = std::min(first_text_rule, i);
            } else {
                plain_rules.push_back(i);
            }
        }
    }

    Compiled()
    {
        RE2::Options options;
        options.set_case_sensitive(false);
        options.set_log_errors(false); // errors are ours to report, never stderr from a hook
        options.set_never_capture(true);
        options.set_max_mem(64 << 20);
        set = std::make_unique<re2::RE2::Set>(options, RE2::UNANCHORED);
    }

    std::size_t source_start = 0; // the first rule of the source being added
    std::optional<ConfigError> add_block(const mtacfg::Block &block);
    std::optional<ConfigError> add_text(Rule &rule, const mtacfg::Option &opt);
};

std::optional<ConfigError> BounceRules::Compiled::add_text(Rule &rule, const mtacfg::Option &opt)
{
    if (opt.value.empty())
        return ConfigError{opt.value_where, "empty text pattern in bounce rule \"" + rule.name + "\""};
    std::string error;
    const int index = set->Add(opt.value, &error);
    if (index < 0) {
        // RE2 says "<what>: <the offending part>"; point at that part.
        const std::size_t colon = error.find(": ");
        const std::size_t at = colon == std::string::npos ? std::string::npos : opt.value.find(error.substr(colon + 2));
        const Location where = at == std::string::npos ? opt.value_where : mtacfg::value_location(opt.value_where, at);
        return ConfigError{where, "bad regular expression in bounce rule \"" + rule.name + "\": " + error +
                                      " (RE2 syntax: https://github.com/google/re2/wiki/Syntax)"};
    }
    rule.pattern = index;
    ++patterns;
    return std::nullopt;
}

std::optional<ConfigError> BounceRules::Compiled::add_block(const mtacfg::Block &block)
{
    if (!mtacfg::iequals(block.kind, "Bounce_Rule"))
        return ConfigError{block.where, "unknown block '" + block.kind + "' in a bounce rules file (only Bounce_Rule \"name\" { ... })" +
                                            mtacfg::did_you_mean(block.kind, {"Bounce_Rule"})};
    if (!block.instance || block.instance->empty())
        return ConfigError{block.where, "a Bounce_Rule needs a name: Bounce_Rule \"name\" { ... }"};
    if (!block.blocks.empty())
        return ConfigError{block.blocks.front().where, "a Bounce_Rule holds options only, not blocks"};
    for (std::size_t i = 0; i < rules.size(); ++i)
        if (mtacfg::iequals(rules[i].name, *block.instance)) {
            if (i >= source_start || rules[i].moved)
                return ConfigError{block.where, "a second bounce rule named \"" + *block.instance + "\""};
            // An earlier file's rule of this name takes this one's place.
            rules[i].moved = true;
            Rule slot;
            slot.name = *block.instance;
            slot.stands_for = i;
            rules.push_back(std::move(slot));
            return std::nullopt;
        }
    if (rules.size() >= kMaxRules)
        return ConfigError{block.where, "more than " + std::to_string(kMaxRules) + " bounce rules"};
    Rule rule;
    rule.name = *block.instance;
    bool has_class = false;
    std::vector<std::string> seen;
    for (const mtacfg::Option &opt : block.options) {
        const std::string name = mtacfg::to_lower(opt.name);
        for (const std::string &s : seen)
            if (s == name)
                return ConfigError{opt.where, "option '" + opt.name + "' given twice in bounce rule \"" + rule.name + "\""};
        seen.push_back(name);
        if (name == "class") {
            std::optional<std::uint8_t> row;
            if (digits_only(opt.value) && opt.value.size() <= 3)
                row = bounce_class_of_number(std::stol(opt.value));
            else
                row = bounce_class_of_name(opt.value);
            if (!row)
                return ConfigError{opt.value_where, "unknown bounce class '" + opt.value +
                                                        "' (a number or name from docs/formats.md, e.g. 10 or \"Invalid Recipient\")"};
            rule.klass = *row;
            has_class = true;
        } else if (name == "status") {
            if (auto error = parse_list(opt, rule.name, parse_status, "enhanced status", "status",
                                        "class.subject.detail, class 2, 4 or 5, e.g. 5.1.1 or 5.7.*", rule.statuses))
                return error;
        } else if (name == "code") {
            if (auto error = parse_list(opt, rule.name, parse_code, "reply code", "code",
                                        "three digits 200 to 599, x for any digit, e.g. 550 or 45x", rule.codes))
                return error;
        } else if (name == "text") {
            if (auto error = add_text(rule, opt))
                return error;
        } else {
            return ConfigError{opt.where, "unknown option '" + opt.name + "' in bounce rule \"" + rule.name + "\"" +
                                              mtacfg::did_you_mean(opt.name, kRuleOptions)};
        }
    }
    if (!has_class)
        return ConfigError{block.where, "bounce rule \"" + rule.name + "\" has no class"};
    if (rule.statuses.empty() && rule.codes.empty() && rule.pattern < 0)
        return ConfigError{block.where, "bounce rule \"" + rule.name + "\" has no condition (status, code or text)"};
    for (unsigned code = 200; code < 600; ++code)
        for (const CodePattern &p : rule.codes)
            if (p.matches(static_cast<std::uint16_t>(code)))
                rule.code_set.set(code - 200);
    rules.push_back(std::move(rule));
    return std::nullopt;
}

BounceRules::BounceRules(std::unique_ptr<Compiled> compiled) : compiled_(std::move(compiled)) {}
BounceRules::~BounceRules() = default;

std::size_t BounceRules::rule_count() const noexcept
{
    return compiled_->rules.size();
}

std::variant<std::shared_ptr<const BounceRules>, ConfigError> BounceRules::compile(const std::vector<Source> &sources)
{
    auto compiled = std::make_unique<Compiled>();
    for (const Source &source : sources) {
        auto parsed = mtacfg::parse_text(source.text, source.name);
        if (auto *error = std::get_if<ConfigError>(&parsed))
            return *error;
        const auto &doc = std::get<mtacfg::Document>(parsed);
        if (!doc.options.empty())
            return ConfigError{doc.options.front().where, "option '" + doc.options.front().name +
                                                              "' outside a Bounce_Rule block"};
        compiled->source_start = compiled->rules.size();
        for (const mtacfg::Block &block : doc.blocks)
            if (auto error = compiled->add_block(block))
                return *error;
    }
    compiled->finish();
    if (compiled->patterns == 0) {
        compiled->set.reset();
    } else if (!compiled->set->Compile()) {
        return ConfigError{Location{sources.empty() ? std::string() : sources.front().name, 0, 0},
                           "the bounce rules' text patterns are too large to compile together (RE2 memory budget)"};
    }
    return std::shared_ptr<const BounceRules>(new BounceRules(std::move(compiled)));
}

std::variant<std::shared_ptr<const BounceRules>, ConfigError> BounceRules::load(const std::string &path,
                                                                                 const Location &where)
{
    std::vector<Source> sources;
    if (!path.empty()) {
        // A regular file of bounded size: not a directory, a FIFO that would
        // block the load, or a device that never ends.
        std::error_code ec;
        const auto status = std::filesystem::status(path, ec);
        if (ec)
            return ConfigError{where, "bounce_rules: cannot read \"" + path + "\": " + ec.message()};
        if (!std::filesystem::is_regular_file(status))
            return ConfigError{where, "bounce_rules: \"" + path + "\" is not a regular file"};
        const auto size = std::filesystem::file_size(path, ec);
        if (ec || size > kMaxFileBytes)
            return ConfigError{where, "bounce_rules: \"" + path + "\" is larger than " +
                                          std::to_string(kMaxFileBytes >> 20) + " MiB"};
        std::ifstream in(path, std::ios::binary);
        std::ostringstream text;
        if (in && size > 0) // (inserting an empty buffer would set failbit)
            text << in.rdbuf();
        if (!in || in.bad() || text.fail())
            return ConfigError{where, "bounce_rules: cannot read \"" + path + "\": " + std::strerror(errno)};
        sources.push_back({text.str(), path});
    }
    sources.push_back({std::string(kDefaultBounceRules), std::string(kDefaultBounceRulesName)});
    return compile(sources);
}

std::uint8_t BounceRules::classify(std::string_view text, const SmtpReply &reply,
                                  std::vector<int> *scratch) const noexcept
{
    const Compiled &c = *compiled_;
    // The first rule without a text whose conditions hold...
    std::size_t best = c.rules.size();
    for (const std::size_t i : c.plain_rules)
        if (c.rules[i].holds(reply)) {
            best = i;
            break;
        }
    // ...unless a text rule before it matches: one search finds every text
    // rule that does.
    if (c.set != nullptr && c.first_text_rule < best) {
        try {
            std::vector<int> local;
            std::vector<int> &found = scratch != nullptr ? *scratch : local;
            found.clear();
            char masked[kSearchedBytes];
            text = mask_addresses(text.substr(0, std::min(text.size(), kSearchedBytes)), masked);
            re2::RE2::Set::ErrorInfo info{};
            if (!c.set->Match(re2::StringPiece(text.data(), text.size()), &found, &info) &&
                info.kind != re2::RE2::Set::kNoError)
                failed_.fetch_add(1, std::memory_order_relaxed);
            for (const int pattern : found) {
                const std::size_t i = c.rule_of_pattern[static_cast<std::size_t>(pattern)];
                if (i < best && c.rules[i].holds(reply))
                    best = i;
            }
        } catch (...) {
            failed_.fetch_add(1, std::memory_order_relaxed);
        }
    }
    return best == c.rules.size() ? kUndetermined : c.rules[best].klass;
}

} // namespace mtalog
