// The Momentum-syntax parser, typed values, suggestions, and the mtalog
// option table. Every error is checked with its exact file:line:column.
#include <catch2/catch.hpp>

#include <filesystem>

#include "core_config.hpp"
#include "mtalog_options.hpp"
#include "parser.hpp"
#include "suggest.hpp"
#include "test_support.hpp"
#include "values.hpp"

using namespace mtacfg;

namespace {

Document parse_ok(const std::string &text)
{
    auto result = parse_text(text, "t.conf");
    if (auto *e = std::get_if<ConfigError>(&result))
        FAIL("unexpected parse error: " << e->render());
    return std::get<Document>(result);
}

std::string parse_error(const std::string &text)
{
    auto result = parse_text(text, "t.conf");
    REQUIRE(std::holds_alternative<ConfigError>(result));
    return std::get<ConfigError>(result).render();
}

std::variant<Settings, ConfigError> validate_text(const std::string &stanza_body)
{
    const Document doc = parse_ok("mtalog \"main\" {\n" + stanza_body + "\n}\n");
    const Block &b = doc.blocks.at(0);
    return validate_mtalog(b.options, *b.instance, b.where);
}

std::string validate_error(const std::string &stanza_body)
{
    auto result = validate_text(stanza_body);
    REQUIRE(std::holds_alternative<ConfigError>(result));
    return std::get<ConfigError>(result).render();
}

Settings validate_ok(const std::string &stanza_body)
{
    auto result = validate_text(stanza_body);
    if (auto *e = std::get_if<ConfigError>(&result))
        FAIL("unexpected validation error: " << e->render());
    return std::get<Settings>(result);
}

} // namespace

TEST_CASE("options, blocks, instances and nesting are parsed with their positions", "[parser]")
{
    const Document doc = parse_ok("modules_path = \"build/plugin\"\n"
                                  "Binding_Group \"pool-a\" { Binding \"mta1\" { Bind_Address = \"192.0.2.10\" } }\n"
                                  "mtalog main {\n  attempt_logfile = a.log\n}\n"
                                  "single { x = 1 }\n");
    REQUIRE(doc.options.size() == 1);
    CHECK(doc.options[0].name == "modules_path");
    CHECK(doc.options[0].value == "build/plugin");
    CHECK(doc.options[0].where.line == 1);
    CHECK(doc.options[0].where.column == 1);
    CHECK(doc.options[0].value_where.column == 17); // a quoted value is located at its first character
    REQUIRE(doc.blocks.size() == 3);
    CHECK(doc.blocks[0].kind == "Binding_Group");
    CHECK(*doc.blocks[0].instance == "pool-a");
    REQUIRE(doc.blocks[0].blocks.size() == 1);
    CHECK(*doc.blocks[0].blocks[0].instance == "mta1");
    CHECK(doc.blocks[0].blocks[0].options[0].value == "192.0.2.10");
    CHECK(doc.blocks[0].blocks[0].where.column == 26);
    CHECK(*doc.blocks[1].instance == "main");
    CHECK(doc.blocks[1].options[0].where.line == 4);
    CHECK(doc.blocks[1].options[0].where.column == 3);
    CHECK_FALSE(doc.blocks[2].instance.has_value());
}

TEST_CASE("both comment styles are skipped, also inside blocks and across lines", "[parser]")
{
    const Document doc = parse_ok("# hash comment\n"
                                  "a = 1 # trailing\n"
                                  "/* block\n comment */ b = \"2 # not a comment\"\n"
                                  "blk { /* inline */ c = 3 }\n");
    REQUIRE(doc.options.size() == 2);
    CHECK(doc.options[1].value == "2 # not a comment");
    CHECK(doc.options[1].where.line == 4);
    CHECK(doc.options[1].where.column == 13);
    CHECK(doc.blocks[0].options[0].name == "c");
}

TEST_CASE("quoted values: double quotes with escapes, single quotes literal", "[parser]")
{
    const Document doc = parse_ok("a = \"say \\\"hi\\\" \\\\ there\"\nb = 'x \\\" y'\nc = \"a{b}=c\"\n");
    CHECK(doc.options[0].value == "say \"hi\" \\ there");
    CHECK(doc.options[1].value == "x \\\" y");
    CHECK(doc.options[2].value == "a{b}=c");
}

TEST_CASE("syntax errors name file, line and column", "[parser]")
{
    CHECK(parse_error("a = 1\nb = \"open\n") == "t.conf:2:5: unterminated string: missing closing \"");
    CHECK(parse_error("a = 1\n  /* never closed\n") == "t.conf:2:3: unterminated comment: '/*' has no matching '*/'");
    CHECK(parse_error("x = 1\nmtalog \"m\" {\n  a = 1\n") == "t.conf:2:1: unterminated block 'mtalog': missing '}'");
    CHECK(parse_error("a = 1\n}\n") == "t.conf:2:1: unexpected '}' with no open block");
    CHECK(parse_error("a =\n") == "t.conf:2:1: expected a value after 'a =', found end of file");
    CHECK(parse_error("a b c\n") == "t.conf:1:5: expected '{' after 'a b', found 'c'");
    CHECK(parse_error("a = (1 2)\n") ==
          "t.conf:1:5: unexpected '(': lists are not supported here; quote the value");
    CHECK(parse_error("= 3\n") == "t.conf:1:1: expected an option or block name, found '='");
}

TEST_CASE("include reads a file, or a directory's files in lexical order, relative to the includer", "[parser]")
{
    testing::TempDir dir;
    std::filesystem::create_directory(dir / "conf.d");
    testing::write_file(dir / "conf.d/20-b.conf", "second = 2\n");
    testing::write_file(dir / "conf.d/10-a.conf", "first = 1\n");
    testing::write_file(dir / "conf.d/.hidden", "hidden = 1\n");
    testing::write_file(dir / "one.conf", "blk \"x\" { inner = yes }\n");
    testing::write_file(dir / "main.conf", "include \"one.conf\"\ninclude conf.d\nlast = 3\n");
    auto result = parse_file(dir / "main.conf");
    REQUIRE(std::holds_alternative<Document>(result));
    const auto &doc = std::get<Document>(result);
    REQUIRE(doc.options.size() == 3);
    CHECK(doc.options[0].name == "first");
    CHECK(doc.options[0].where.file == dir / "conf.d/10-a.conf");
    CHECK(doc.options[1].name == "second");
    CHECK(doc.options[2].name == "last");
    REQUIRE(doc.blocks.size() == 1);
    CHECK(doc.blocks[0].options[0].value == "yes");
}

TEST_CASE("a missing or looping include is an error at the include", "[parser]")
{
    testing::TempDir dir;
    testing::write_file(dir / "main.conf", "a = 1\ninclude \"nope.conf\"\n");
    auto missing = parse_file(dir / "main.conf");
    REQUIRE(std::holds_alternative<ConfigError>(missing));
    CHECK(std::get<ConfigError>(missing).render() ==
          dir / "main.conf" + ":2:10: cannot include \"nope.conf\": no such file or directory");

    testing::write_file(dir / "a.conf", "include \"b.conf\"\n");
    testing::write_file(dir / "b.conf", "x = 1\ninclude \"a.conf\"\n");
    auto loop = parse_file(dir / "a.conf");
    REQUIRE(std::holds_alternative<ConfigError>(loop));
    CHECK(std::get<ConfigError>(loop).render() ==
          dir / "b.conf" + ":2:10: include loop: \"" + dir.path() + "/a.conf\" is already being read");
}

TEST_CASE("typed values accept their documented forms only", "[values]")
{
    CHECK(parse_size("2048") == 2048u);
    CHECK(parse_size("64K") == 65536u);
    CHECK(parse_size("256m") == 268435456u);
    CHECK(parse_size("1GB") == 1073741824u);
    CHECK_FALSE(parse_size("12X"));
    CHECK_FALSE(parse_size("-1"));
    CHECK_FALSE(parse_size("99999999999999999999"));
    CHECK(parse_duration("100ms") == std::chrono::milliseconds(100));
    CHECK(parse_duration("5s") == std::chrono::seconds(5));
    CHECK(parse_duration("2m") == std::chrono::minutes(2));
    CHECK(parse_duration("250us") == std::chrono::microseconds(250));
    CHECK_FALSE(parse_duration("100"));
    CHECK_FALSE(parse_duration("1y"));
    CHECK(parse_mode("0640") == 0640u);
    CHECK(parse_mode("600") == 0600u);
    CHECK_FALSE(parse_mode("0800"));
    CHECK_FALSE(parse_mode("4755"));
    CHECK(parse_bool("On") == true);
    CHECK(parse_bool("no") == false);
    CHECK_FALSE(parse_bool("maybe"));
    CHECK(parse_count("8192") == 8192u);
    CHECK_FALSE(parse_count("8k"));
}

TEST_CASE("misspelt names get the nearest valid name", "[suggest]")
{
    const std::vector<std::string> names{"attempt_logfile", "attempt_format", "mainlog", "queue_size"};
    CHECK(nearest("attemp_logfile", names) == "attempt_logfile");
    CHECK(nearest("ATTEMPT_FROMAT", names) == "attempt_format");
    CHECK(nearest("queuesize", names) == "queue_size");
    CHECK_FALSE(nearest("completely_different", names));
    CHECK(edit_distance("ab", "ba") == 1);
}

TEST_CASE("option defaults come from the table", "[options]")
{
    const Settings s = validate_ok("mainlog = \"" + testing::TempDir().path() + "/../m.log\"");
    CHECK(s.queue_size == 8192);
    CHECK(s.flush_interval == std::chrono::milliseconds(100));
    CHECK(s.max_note_bytes == 2048);
    CHECK(s.log_mode == 0640);
    CHECK(s.timestamp_precision == TimePrecision::seconds);
    REQUIRE(s.files.size() == 1);
    for (auto kind : kAllRecordKinds)
        CHECK(s.file_of[static_cast<std::size_t>(kind)] == 0u);
}

TEST_CASE("option names are case-insensitive and values are typed", "[options]")
{
    testing::TempDir dir;
    const Settings s = validate_ok("Attempt_LogFile = \"" + dir / "a.log" + "\"\nQUEUE_SIZE = 1024\n"
                                   "flush_interval = 5ms\nmax_note_bytes = 4K\ntimestamp_precision = microseconds\n"
                                   "attempt_log_mode = 0600\nlog_connection_failures = off");
    CHECK(s.queue_size == 1024);
    CHECK(s.flush_interval == std::chrono::milliseconds(5));
    CHECK(s.max_note_bytes == 4096);
    CHECK(s.timestamp_precision == TimePrecision::microseconds);
    REQUIRE(s.files.size() == 1);
    CHECK(s.files[0].mode == 0600);
    CHECK_FALSE(s.file_of[static_cast<std::size_t>(RecordKind::connection_failure)]);
}

TEST_CASE("option errors point at the name or the value, with a suggestion", "[options]")
{
    CHECK(validate_error("  attemp_logfile = \"x.log\"") ==
          "t.conf:2:3: unknown option 'attemp_logfile' in mtalog \"main\" (did you mean 'attempt_logfile'?)");
    CHECK(validate_error("queue_size = lots") ==
          "t.conf:2:14: invalid value \"lots\" for 'queue_size': expected a whole number from 64 to 16777216");
    CHECK(validate_error("flush_interval = 100") ==
          "t.conf:2:18: invalid value \"100\" for 'flush_interval': expected a duration from 1ms to 60s, such as "
          "100ms or 5s");
    CHECK(validate_error("log_mode = 0999") ==
          "t.conf:2:12: invalid value \"0999\" for 'log_mode': expected an octal file mode that others cannot "
          "write, such as 0640");
    CHECK(validate_error("attempt_format = xml") ==
          "t.conf:2:18: invalid value \"xml\" for 'attempt_format': expected mainlog, json, csv or a "
          "%-template such as \"%t %i %n\"");
    CHECK(validate_error("mainlog = a.log\nMAINLOG = b.log") == "t.conf:3:1: option 'MAINLOG' is set twice (first at line 2)");
}

TEST_CASE("routing errors: nothing logged, mode conflicts, bad directories", "[options]")
{
    CHECK(validate_error("queue_size = 128") ==
          "t.conf:1:1: mtalog \"main\" logs nothing: set mainlog or attempt_logfile, connection_failure_logfile, "
          "permanent_failure_logfile");
    testing::TempDir dir;
    const std::string shared = dir / "shared.log";
    CHECK(validate_error("attempt_logfile = \"" + shared + "\"\nattempt_log_mode = 0600\n"
                         "permanent_failure_logfile = \"" + shared + "\"\npermanent_failure_log_mode = 0644") ==
          "t.conf:4:30: log file \"" + shared +
              "\" is given mode 0644 for permanent_failure records but 0600 for attempt records");
    CHECK(validate_error("mainlog = \"" + dir / "missing/m.log" + "\"") ==
          "t.conf:2:12: log file \"" + dir / "missing/m.log" + "\": directory \"" + dir / "missing" +
              "\" does not exist");
    CHECK(validate_error("mainlog = \"" + dir.path() + "\"") ==
          "t.conf:2:12: log file \"" + dir.path() + "\": is a directory");
}

TEST_CASE("records sharing a file share one FileSpec", "[options]")
{
    testing::TempDir dir;
    const Settings s = validate_ok("mainlog = \"" + dir / "all.log" + "\"\nattempt_logfile = \"" + dir / "./all.log" + "\"");
    CHECK(s.files.size() == 1);
}

TEST_CASE("enabled = off validates without routing anything", "[options]")
{
    const Settings s = validate_ok("enabled = off");
    CHECK_FALSE(s.enabled);
    CHECK(s.files.empty());
}

TEST_CASE("the documented option table is the option table", "[options][docs]")
{
    const std::string documented = testing::generated_section("docs/configuration.md", "options");
    REQUIRE_FALSE(documented.empty());
    INFO("docs/configuration.md between the options markers should read:\n" << render_options_markdown());
    CHECK(documented == render_options_markdown());
}

TEST_CASE("core config: modules_path, bindings in slot order, stanzas, and its errors", "[core-config]")
{
    const Document doc = parse_ok("modules_path = mods\n"
                                  "Binding_Group \"a\" { Binding \"m1\" { } Binding \"m2\" { } }\n"
                                  "Binding \"lone\" { Bind_Address = 192.0.2.1 }\n"
                                  "mtalog \"x\" { mainlog = y }\nmtalog \"z\" { mainlog = w }\n");
    auto config = mtacore::read_core_config(doc, "default");
    REQUIRE(std::holds_alternative<mtacore::CoreConfig>(config));
    const auto &c = std::get<mtacore::CoreConfig>(config);
    CHECK(c.modules_path == "mods");
    REQUIRE(c.bindings.size() == 3);
    CHECK(c.bindings[0].name == "m1");
    CHECK(c.bindings[1].group == "a");
    CHECK(c.bindings[2].group == "default");
    CHECK(c.module_stanzas.size() == 2);

    auto error_of = [](const std::string &text) {
        auto r = mtacore::read_core_config(parse_ok(text), "d");
        REQUIRE(std::holds_alternative<ConfigError>(r));
        return std::get<ConfigError>(r).render();
    };
    CHECK(error_of("module_path = x\n") ==
          "t.conf:1:1: unknown core option 'module_path' (did you mean 'modules_path'?); module options belong "
          "inside their stanza");
    CHECK(error_of("mtalog \"a\" { }\nmtalog \"a\" { }\n") ==
          "t.conf:2:1: duplicate stanza mtalog \"a\" (first at line 1)");
    CHECK(error_of("Binding_Group \"g\" { Bindng \"b\" { } }\n") ==
          "t.conf:1:21: unexpected block 'Bindng' inside Binding_Group \"g\" (did you mean 'Binding'?)");
    CHECK(error_of("Binding \"b\" { }\nBinding \"b\" { }\n") ==
          "t.conf:2:1: Binding \"b\" is defined twice (first at line 1)");
}

TEST_CASE("file options: overflow, rotation, compression and the reopen check", "[options]")
{
    testing::TempDir dir;
    const Settings s = validate_ok("mainlog = \"" + dir / "m.log" + "\"\noverflow = drop\noverflow_timeout = 250ms\n"
                                   "rotate_size = 256M\nrotate_interval = hourly\nrotate_clock = local\nrotate_keep = 30\n"
                                   "compress = zstd\nreopen_check_interval = 0");
    CHECK(s.overflow == Overflow::drop);
    CHECK(s.overflow_timeout == std::chrono::milliseconds(250));
    CHECK(s.rotate_size == 256u << 20);
    CHECK(s.rotate_interval == RotateInterval::hourly);
    CHECK_FALSE(s.rotate_utc);
    CHECK(s.rotate_keep == 30);
    CHECK(s.compress == Compression::zstd);
    CHECK(s.reopen_check_interval.count() == 0);
    const Settings d = validate_ok("mainlog = \"" + dir / "m.log" + "\"");
    CHECK(d.overflow == Overflow::block);
    CHECK(d.reopen_check_interval == std::chrono::seconds(5));
    CHECK(d.rotate_size == 0);
    CHECK(d.compress == Compression::none);

    CHECK(validate_error("overflow = spill") == "t.conf:2:12: invalid value \"spill\" for 'overflow': expected one of block, drop");
    CHECK(validate_error("compress = bzip2") ==
          "t.conf:2:12: invalid value \"bzip2\" for 'compress': expected one of none, gzip, zstd");
    CHECK(validate_error("rotate_interval = weekly") ==
          "t.conf:2:19: invalid value \"weekly\" for 'rotate_interval': expected one of none, hourly, daily");
    CHECK(validate_error("reopen_check_interval = 5ms") ==
          "t.conf:2:25: invalid value \"5ms\" for 'reopen_check_interval': expected 0 (off) or a duration from 10ms "
          "to 3600s, such as 100ms or 5s");
    CHECK(validate_error("rotate_size = 12Q") ==
          "t.conf:2:15: invalid value \"12Q\" for 'rotate_size': expected a size from 0 to 1099511627776");
}

TEST_CASE("numbers out of range, negative numbers and world-writable modes are refused", "[options]")
{
    CHECK(validate_error("queue_size = -5") ==
          "t.conf:2:14: invalid value \"-5\" for 'queue_size': expected a whole number from 64 to 16777216");
    CHECK(validate_error("queue_size = 10") ==
          "t.conf:2:14: invalid value \"10\" for 'queue_size': expected a whole number from 64 to 16777216");
    CHECK(validate_error("max_note_bytes = 2G") ==
          "t.conf:2:18: invalid value \"2G\" for 'max_note_bytes': expected a size from 64 to 1048576");
    CHECK(validate_error("log_mode = 0666") == "t.conf:2:12: invalid value \"0666\" for 'log_mode': expected an octal "
                                               "file mode that others cannot write, such as 0640");
    CHECK(validate_error("attempt_log_mode = 0602") ==
          "t.conf:2:20: invalid value \"0602\" for 'attempt_log_mode': expected an octal file mode that others "
          "cannot write, such as 0640");
}

TEST_CASE("a symlinked log path is refused unless follow_symlinks = on", "[options]")
{
    testing::TempDir dir;
    testing::write_file(dir / "real.log", "");
    std::filesystem::create_symlink(dir / "real.log", dir / "link.log");
    CHECK(validate_error("mainlog = \"" + dir / "link.log" + "\"") ==
          "t.conf:2:12: log file \"" + dir / "link.log" +
              "\": is a symbolic link; refused (set follow_symlinks = on to write through it)");
    const Settings s = validate_ok("mainlog = \"" + dir / "link.log" + "\"\nfollow_symlinks = on");
    CHECK(s.files.at(0).follow_symlinks);
}

TEST_CASE("bounce_classes = off with bounce_rules set is refused at the rules' value", "[options]")
{
    CHECK(validate_error("mainlog = \"/tmp/m.log\"\nbounce_classes = off\nbounce_rules = \"/tmp/r.conf\"") ==
          "t.conf:4:17: bounce_rules is set, but bounce_classes = off uses no rules (remove one of the two)");
    CHECK_FALSE(validate_ok("mainlog = \"/tmp/m.log\"\nbounce_classes = off").bounce_classes);
    CHECK(validate_ok("mainlog = \"/tmp/m.log\"\nbounce_rules = \"/tmp/r.conf\"").bounce_rules == "/tmp/r.conf");
}
