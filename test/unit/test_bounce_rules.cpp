// Bounce rules: the compiler's errors (file:line:column and the offending
// token), the matching order, and the built-in rules against a corpus of
// real-looking replies (test/data/bounce_corpus.tsv) whose expected classes
// were written from what each reply means.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <unistd.h>

#include "bounce_rules.hpp"
#include "test_support.hpp"

using mtalog::BounceRules;
using mtalog::kBounceClasses;

namespace {

using Compiled = std::variant<std::shared_ptr<const BounceRules>, mtacfg::ConfigError>;

Compiled compile(const std::string &text)
{
    return BounceRules::compile({{text, "rules.conf"}});
}

// The rendered error of rules that must not compile.
std::string error_of(const std::string &text)
{
    const Compiled c = compile(text);
    const auto *e = std::get_if<mtacfg::ConfigError>(&c);
    return e ? e->render() : "(compiled)";
}

std::shared_ptr<const BounceRules> rules_of(const std::string &text)
{
    Compiled c = compile(text);
    if (const auto *e = std::get_if<mtacfg::ConfigError>(&c))
        FAIL(e->render());
    return std::get<0>(c);
}

// The class number of `text` under `rules`.
int class_of(const BounceRules &rules, std::string_view text)
{
    return kBounceClasses[rules.classify(text, mtalog::parse_smtp_reply(text))].number;
}

const BounceRules &defaults()
{
    static const auto rules = rules_of(std::string(mtalog::kDefaultBounceRules));
    return *rules;
}

} // namespace

TEST_CASE("bounce rules: every error names file:line:column and what is wrong", "[bounce]")
{
    CHECK(error_of("Bounce_Rule \"a\" {\n  clas = 10\n  code = \"550\"\n}\n") ==
          "rules.conf:2:3: unknown option 'clas' in bounce rule \"a\" (did you mean 'class'?)");
    CHECK(error_of("Bounce_Rule \"a\" {\n  class = 11\n  code = \"550\"\n}\n").starts_with(
        "rules.conf:2:11: unknown bounce class '11'"));
    CHECK(error_of("Bounce_Rule \"a\" { class = \"Mailbox Fool\"\n code = \"550\" }").starts_with(
        "rules.conf:1:28: unknown bounce class 'Mailbox Fool'"));
    // The column of the bad word inside the list.
    CHECK(error_of("Bounce_Rule \"a\" {\n  class = 10\n  status = \"5.1.1 5.1 5.2.*\"\n}\n").starts_with(
        "rules.conf:3:19: bad enhanced status '5.1'"));
    CHECK(error_of("Bounce_Rule \"a\" {\n  class = 10\n  code = \"550 65x\"\n}\n").starts_with(
        "rules.conf:3:15: bad reply code '65x'"));
    CHECK(error_of("Bounce_Rule \"a\" {\n  class = 10\n  status = \"  \"\n}\n") ==
          "rules.conf:3:13: empty status list in bounce rule \"a\"");
    CHECK(error_of("Bounce_Rule \"a\" {\n  class = 10\n  code = \"\"\n}\n") ==
          "rules.conf:3:11: empty code list in bounce rule \"a\"");
    // A regular expression's error points into the pattern.
    const std::string bad_regex = error_of("Bounce_Rule \"a\" {\n  class = 10\n  text = 'user (unknown'\n}\n");
    CHECK(bad_regex.starts_with("rules.conf:3:11: bad regular expression in bounce rule \"a\": missing ): user (unknown"));
    CHECK(error_of("Bounce_Rule \"a\" {\n  class = 10\n}\n") ==
          "rules.conf:1:1: bounce rule \"a\" has no condition (status, code or text)");
    CHECK(error_of("Bounce_Rule \"a\" {\n  code = \"550\"\n}\n") == "rules.conf:1:1: bounce rule \"a\" has no class");
    CHECK(error_of("Bounce_Rule \"a\" { class = 10\n code = \"550\" }\nBounce_Rule \"a\" { class = 10\n code = \"551\" }\n") ==
          "rules.conf:3:1: a second bounce rule named \"a\"");
    CHECK(error_of("Bounce_Rule \"a\" { class = 10\n class = 20\n code = \"550\" }").starts_with(
        "rules.conf:2:2: option 'class' given twice"));
    CHECK(error_of("class = 10\n").starts_with("rules.conf:1:1: option 'class' outside a Bounce_Rule block"));
    CHECK(error_of("Bounce_Rules \"a\" { class = 10 }").starts_with(
        "rules.conf:1:1: unknown block 'Bounce_Rules' in a bounce rules file"));
    CHECK(error_of("Bounce_Rule { class = 10\n code = \"550\" }").starts_with("rules.conf:1:1: a Bounce_Rule needs a name"));
    CHECK(error_of("Bounce_Rule \"a\" { class = 10\n text = '' }").starts_with("rules.conf:2:10: empty text pattern"));
    // The parser's own errors keep their location too.
    CHECK(error_of("Bounce_Rule \"a\" {\n  class = 10\n").starts_with("rules.conf:"));
}

TEST_CASE("bounce rules: a file that cannot be read is named where the option gave it", "[bounce]")
{
    const auto loaded = BounceRules::load("/nonexistent/rules.conf", mtacfg::Location{"mtacore.conf", 7, 18});
    const auto *e = std::get_if<mtacfg::ConfigError>(&loaded);
    REQUIRE(e != nullptr);
    CHECK(e->render() == "mtacore.conf:7:18: bounce_rules: cannot read \"/nonexistent/rules.conf\": No such file or directory");
}

TEST_CASE("bounce rules: the first rule whose every condition holds gives the class", "[bounce]")
{
    const auto rules = rules_of(R"(
Bounce_Rule "spam-text" {        # a text rule before the status rules
  class = 52
  text  = 'spam|junk mail'
}
Bounce_Rule "quota" {
  class  = "mailbox full"        # a name, any case
  status = "5.2.2 4.2.2"
}
Bounce_Rule "unknown-user" {
  class  = 10
  status = "5.1.*"
  code   = "55x"
}
Bounce_Rule "greylist" {
  class = 70
  code  = "45x"
  text  = 'grey ?list'
}
Bounce_Rule "any-5xx" {
  class = 40
  code  = "5xx"
}
)");
    CHECK(rules->rule_count() == 5);
    CHECK(class_of(*rules, "550 5.1.1 user unknown") == 10);
    CHECK(class_of(*rules, "550 5.1.1 this looks like SPAM") == 52); // an earlier rule wins
    CHECK(class_of(*rules, "552 5.2.2 mailbox full") == 22);
    CHECK(class_of(*rules, "452 4.2.2 over quota") == 22);
    CHECK(class_of(*rules, "451 4.7.1 Greylisted") == 70);
    CHECK(class_of(*rules, "451 4.7.1 GREY LIST") == 70);                // case-insensitive
    CHECK(class_of(*rules, "421 4.7.1 greylisted") == 1);                 // 421 is not 45x
    CHECK(class_of(*rules, "553 5.1.3 bad address syntax") == 10);        // status 5.1.* and code 55x
    CHECK(class_of(*rules, "510 5.1.1 user unknown") == 40);              // code 510 is not 55x
    CHECK(class_of(*rules, "user unknown") == 1);                         // no code, no status: no match
    CHECK(class_of(*rules, "") == 1);
    // A text rule's condition holds anywhere in the first kSearchedBytes only.
    const std::string long_text = "450 " + std::string(BounceRules::kSearchedBytes, 'x') + " greylisted";
    CHECK(class_of(*rules, long_text) == 1);
    CHECK(class_of(*rules, "450 " + std::string(BounceRules::kSearchedBytes - 20, 'x') + " greylisted") == 70);
    // Hostile bytes are text like any other.
    CHECK(class_of(*rules, std::string("550 \xff\xfe\0 sp\xc3\x28" "am", 14)) == 40);
    CHECK(rules->failed_searches() == 0);
}

TEST_CASE("bounce rules: an operator's file is tried before the built-in rules", "[bounce]")
{
    const std::string path = std::filesystem::temp_directory_path() / ("mtalog-rules-" + std::to_string(::getpid()));
    std::ofstream(path) << "Bounce_Rule \"local-block\" {\n  class = 50\n  text = 'example-local-policy'\n}\n";
    const auto loaded = BounceRules::load(path, mtacfg::Location{"mtacore.conf", 1, 1});
    std::filesystem::remove(path);
    const auto *rules = std::get_if<std::shared_ptr<const BounceRules>>(&loaded);
    REQUIRE(rules != nullptr);
    CHECK((*rules)->rule_count() == defaults().rule_count() + 1);
    const std::string text = "550 5.1.1 user unknown (example-local-policy)";
    CHECK(class_of(**rules, text) == 50);
    CHECK(class_of(defaults(), text) == 10);
}

TEST_CASE("bounce rules: an operator's rule replaces the built-in one of its name; a copy of the defaults loads",
          "[bounce]")
{
    const std::string path = std::filesystem::temp_directory_path() / ("mtalog-rules-copy-" + std::to_string(::getpid()));
    std::ofstream(path) << mtalog::kDefaultBounceRules;
    auto loaded = BounceRules::load(path, mtacfg::Location{"mtacore.conf", 1, 1});
    const auto *copy = std::get_if<std::shared_ptr<const BounceRules>>(&loaded);
    REQUIRE(copy != nullptr);
    CHECK((*copy)->rule_count() == defaults().rule_count()); // each built-in replaced by its copy
    // A replaced rule keeps the built-in's place: a copy of one late rule
    // does not jump ahead of the built-ins before it (any case of its name).
    std::ofstream(path) << "Bounce_Rule \"Status-Bad-Domain\" {\n  class = 21\n  status = \"5.1.2 4.1.2\"\n}\n";
    loaded = BounceRules::load(path, mtacfg::Location{"mtacore.conf", 1, 1});
    const auto *one = std::get_if<std::shared_ptr<const BounceRules>>(&loaded);
    REQUIRE(one != nullptr);
    CHECK((*one)->rule_count() == defaults().rule_count());
    for (const char *text : {"550 5.1.2 blocked using zen.spamhaus.org", "550 5.1.2 bad destination system address",
                             "550 5.1.1 user unknown"})
        CHECK(class_of(**one, text) == class_of(defaults(), text));
    CHECK(class_of(defaults(), "550 5.1.2 blocked using zen.spamhaus.org") == 51);
    // The same name twice in one file is still an error, in that file.
    std::ofstream(path) << "Bounce_Rule \"x\" { class = 10\n code = \"550\" }\nBounce_Rule \"x\" { class = 20\n code = \"450\" }\n";
    loaded = BounceRules::load(path, mtacfg::Location{"mtacore.conf", 1, 1});
    const auto *error = std::get_if<mtacfg::ConfigError>(&loaded);
    REQUIRE(error != nullptr);
    CHECK(error->render() == path + ":3:1: a second bounce rule named \"x\"");
    std::filesystem::remove(path);
    // A directory is not a file of rules.
    loaded = BounceRules::load(std::filesystem::temp_directory_path(), mtacfg::Location{"mtacore.conf", 4, 16});
    error = std::get_if<mtacfg::ConfigError>(&loaded);
    REQUIRE(error != nullptr);
    CHECK(error->render().starts_with("mtacore.conf:4:16: bounce_rules: \""));
}

TEST_CASE("bounce rules: the words of an e-mail address never pick the class", "[bounce]")
{
    const auto rules = rules_of(R"(
Bounce_Rule "virus" {
  class = 52
  text  = 'virus'
}
Bounce_Rule "user-unknown" {
  class = 10
  text  = 'user unknown'
}
)");
    CHECK(class_of(*rules, "550 5.1.1 <virus.research@example.com>: Recipient address rejected: User unknown") == 10);
    CHECK(class_of(*rules, "550 5.1.1 virus@example.com: user unknown") == 10);
    CHECK(class_of(*rules, "550 5.1.1 <bob@virus.example>: user unknown") == 10);
    CHECK(class_of(*rules, "554 5.7.1 virus found in message from <bob@example.com>") == 52); // text outside
    CHECK(class_of(*rules, "550 @@@ user unknown @") == 10);                                 // lone '@'s
}

TEST_CASE("bounce rules: the built-in rules agree with the corpus", "[bounce][corpus]")
{
    std::ifstream in(testing::source_dir() + "/test/data/bounce_corpus.tsv");
    REQUIRE(in);
    struct Tally {
        int replies = 0, agreed = 0;
    };
    std::map<int, Tally> by_class;
    std::ostringstream misses;
    std::string line;
    int total = 0, agreed = 0;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#')
            continue;
        const std::size_t tab = line.find('\t');
        REQUIRE(tab != std::string::npos);
        const int expected = std::stoi(line.substr(0, tab));
        std::string text = line.substr(tab + 1);
        for (std::size_t at; (at = text.find("\\n")) != std::string::npos;)
            text.replace(at, 2, "\n");
        const int got = class_of(defaults(), text);
        Tally &t = by_class[expected];
        ++t.replies;
        ++total;
        if (got == expected) {
            ++t.agreed;
            ++agreed;
        } else {
            misses << "  expected " << expected << ", got " << got << ": " << line.substr(tab + 1) << "\n";
        }
    }
    std::ostringstream table;
    table << "| class | name | replies | agreed |\n| --- | --- | --- | --- |\n";
    for (const auto &[number, t] : by_class) {
        const auto row = mtalog::bounce_class_of_number(number);
        REQUIRE(row.has_value()); // the corpus names real classes only
        table << "| " << number << " | " << kBounceClasses[*row].name << " | " << t.replies << " | " << t.agreed
              << " |\n";
    }
    table << "| all | | " << total << " | " << agreed << " |\n";
    // The table is printed on every run: the agreement is what this test measures.
    WARN("bounce corpus agreement:\n" << table.str() << (misses.str().empty() ? "" : "disagreements:\n") << misses.str());
    CHECK(total >= 200);
    CHECK(by_class.size() == mtalog::kBounceClassCount); // every class has examples
    CHECK(agreed * 100 >= total * 95);
    for (const auto &[number, t] : by_class) {
        INFO("class " << number);
        CHECK(t.agreed * 100 >= t.replies * 80);
    }
}
