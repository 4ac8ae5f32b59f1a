// Bounce rules: the class a failure's reply is in, from rules written in
// Momentum's config syntax (config/bounce_rules.conf holds the defaults,
// built into the module; `bounce_rules = "file"` adds an operator's, tried
// before them):
//
//   Bounce_Rule "gmail-no-such-user" {
//     class  = 10                  # a class number, or its name: "Invalid Recipient"
//     status = "5.1.1 5.1.*"       # enhanced status codes; * is any subject or detail
//     code   = "550 55x"           # reply codes; x is any digit
//     text   = 'no such user|user unknown'   # RE2, case-insensitive, unanchored
//   }
//
// A rule matches when every condition it has holds; the first rule that
// matches, in file order, gives the class; a text no rule matches is class 1
// (Undetermined). Rule names are unique within a file; an operator's rule
// named like a built-in one replaces it. Text rules see the text with every
// e-mail address blanked (an address's words are the sender's or the
// receiver's choice, not the reason). Every `text` is compiled once, at
// load, into one RE2::Set: a reply's text is searched once, in one pass of
// one automaton, however many rules there are (skipped only when a rule
// without a text, before every text rule, already holds).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "bounce_classes.hpp"
#include "document.hpp"
#include "smtp_reply.hpp"

namespace mtalog {

class BounceRules {
public:
    struct Source {
        std::string text;
        std::string name; // a file name, in error locations
    };
    // Compiles the sources' rules in order; every error is "file:line:column:
    // message" with the offending token.
    static std::variant<std::shared_ptr<const BounceRules>, mtacfg::ConfigError> compile(const std::vector<Source> &sources);
    // The operator's file (`path`, "" for none; `where` names the option
    // that gave it, for a file that cannot be read), then the defaults.
    static std::variant<std::shared_ptr<const BounceRules>, mtacfg::ConfigError> load(const std::string &path,
                                                                                      const mtacfg::Location &where);

    ~BounceRules();
    BounceRules(const BounceRules &) = delete;
    BounceRules &operator=(const BounceRules &) = delete;

    // The row in kBounceClasses of the reply whose text is `text` and whose
    // code and status parse_smtp_reply found. Searches at most the text's
    // first kSearchedBytes. Never throws; a search the automaton cannot
    // finish (out of its memory budget) counts in failed_searches() and
    // tests no text rule. `scratch`: a vector the caller keeps, to spare an
    // allocation per call (the search's own set of matches is RE2's).
    [[nodiscard]] std::uint8_t classify(std::string_view text, const SmtpReply &reply,
                                        std::vector<int> *scratch = nullptr) const noexcept;

    [[nodiscard]] std::size_t rule_count() const noexcept;
    [[nodiscard]] std::uint64_t failed_searches() const noexcept { return failed_.load(std::memory_order_relaxed); }

    static constexpr std::size_t kSearchedBytes = 1024;
    static constexpr std::size_t kMaxRules = 4096;
    static constexpr std::uintmax_t kMaxFileBytes = 1u << 20;

    struct Compiled; // the rules and their RE2::Set (bounce_rules.cpp)
    explicit BounceRules(std::unique_ptr<Compiled> compiled);

private:
    std::unique_ptr<Compiled> compiled_;
    mutable std::atomic<std::uint64_t> failed_{0};
};

// config/bounce_rules.conf as built into the module.
extern const std::string_view kDefaultBounceRules;
inline constexpr std::string_view kDefaultBounceRulesName = "<built-in bounce_rules.conf>";

} // namespace mtalog
