// %p (protocol) and %h{Name} (header) through the real module and the
// reference core's message_protocol and message_header: values shown as the
// core gives them, names matched in any case, hostile values escaped and
// capped, nothing written where the core offers nothing (a short table, a
// NULL member, a message without data), the macros' names beside %peer and
// %H, and replay's msg.protocol and msg.headers. The same module against a
// core built on the first headers: test/abi/test_abi_v1_0.cpp.
#include <catch2/catch.hpp>

#include <sstream>

#include "module_loader.hpp"
#include "replay.hpp"
#include "template_format.hpp"
#include "test_support.hpp"

namespace {

using mtalog::RecordKind;

// A core with mtalog writing attempts and permanent failures through one
// template each.
struct Templates {
    testing::TempDir dir;
    testing::Harness h;
    explicit Templates(const std::string &attempt, const std::string &failure = "%i %p %h{Subject}")
        : h(dir, "  attempt_logfile = \"" + dir / "a.log" + "\"\n  attempt_format = \"" + attempt +
                     "\"\n  permanent_failure_logfile = \"" + dir / "p.log" + "\"\n  permanent_failure_format = \"" +
                     failure + "\"\n  log_connection_failures = off")
    {
    }
    std::vector<std::string> attempts()
    {
        h.stop();
        return testing::read_lines(dir / "a.log");
    }
};

struct Message {
    ec_message msg{};
    mtacore::MessageData data;
    timeval now{1700000000, 0};
    Message()
    {
        msg.id = message_id{0x31B987F3u, 25004, 0};
        data.protocol = "ESMTPS";
        data.add_header("Subject", " Your order has shipped");
        data.add_header("X-Campaign-ID", "spring-sale");
    }
};

std::string compile_error(const std::string &text, RecordKind kind = RecordKind::attempt)
{
    auto compiled = mtalog::CompiledTemplate::compile(text, kind);
    REQUIRE(std::holds_alternative<mtalog::TemplateError>(compiled));
    const auto &e = std::get<mtalog::TemplateError>(compiled);
    return std::to_string(e.offset) + ": " + e.message;
}

} // namespace

TEST_CASE("%p and %h{Name} show the core's protocol and header values; a missing header writes nothing",
          "[message_data][module]")
{
    Templates t("%i|%p|%h{Subject}|%h{X-Campaign-ID}|%h{Missing}|end");
    Message m;
    t.h.core().log_attempt(&m.msg, nullptr, &m.now, "250 ok", 6, &m.data);
    mtacore::MessageData other;
    other.protocol = "HTTP";
    other.add_header("Subject", "");
    t.h.core().log_attempt(&m.msg, nullptr, &m.now, "250 ok", 6, &other);
    CHECK(t.attempts() == std::vector<std::string>{"00/00-25004-31B987F3|ESMTPS|Your order has shipped|spring-sale||end",
                                                   "00/00-25004-31B987F3|HTTP||||end"});
}

TEST_CASE("header names match in any case, and the first of repeated headers wins", "[message_data][module]")
{
    Templates t("%h{subject}|%h{SUBJECT}|%h{x-campaign-id}|%h{Received}");
    Message m;
    m.data.add_header("Received", "from a.example");
    m.data.add_header("received", "from b.example");
    t.h.core().log_attempt(&m.msg, nullptr, &m.now, nullptr, 0, &m.data);
    CHECK(t.attempts() ==
          std::vector<std::string>{"Your order has shipped|Your order has shipped|spring-sale|from a.example"});
}

TEST_CASE("hostile protocol and header values are escaped, and a long header is capped at 1024 bytes",
          "[message_data][module][hostile]")
{
    Templates t("%p|%h{Subject}|%h{X-Long}");
    Message m;
    m.data.protocol = "ESMTP\r\n1700000000@forged\x1b[31m";
    m.data.headers.clear();
    m.data.headers.emplace_back("Subject", std::string("a\0b|\x7f\xff\xc3\x28 \xe2\x80\xa8\\@\r\nforged", 22));
    m.data.headers.emplace_back("X-Long", std::string(5000, 'x'));
    t.h.core().log_attempt(&m.msg, nullptr, &m.now, nullptr, 0, &m.data);
    const auto lines = t.attempts();
    REQUIRE(lines.size() == 1);
    const std::string capped = std::string(1024 - 14, 'x') + "...[truncated]";
    CHECK(lines[0] == "ESMTP\\x0d\\x0a1700000000@forged\\x1b[31m|a\\x00b|\\x7f\\xff\\xc3( \\xe2\\x80\\xa8\\\\@\\x0d\\x0aforged|" +
                          capped);
}

TEST_CASE("%p and %h write nothing for a message the core has no data for, and for a NULL message",
          "[message_data][module]")
{
    Templates t("[%p][%h{Subject}]%i", "[%p][%h{Subject}]");
    Message m;
    t.h.core().log_attempt(&m.msg, nullptr, &m.now, nullptr, 0); // no MessageData
    t.h.core().log_permanent_failure(nullptr, nullptr, &m.now, nullptr, &m.data);
    t.h.stop();
    CHECK(testing::read_lines(t.dir / "a.log") == std::vector<std::string>{"[][]00/00-25004-31B987F3"});
    CHECK(testing::read_lines(t.dir / "p.log") == std::vector<std::string>{"[][]"});
}

TEST_CASE("a core table too short for the accessors, or with them NULL, gets nothing from %p and %h",
          "[message_data][module][abi]")
{
    Templates t("[%p][%h{Subject}]");
    Message m;
    ec_core *api = t.h.core().c_api();
    api->size = static_cast<std::uint32_t>(EC_CORE_MIN_SIZE); // the members are set, but beyond the size
    t.h.core().log_attempt(&m.msg, nullptr, &m.now, nullptr, 0, &m.data);
    api->size = static_cast<std::uint32_t>(offsetof(ec_core, message_header)); // the protocol only
    t.h.core().log_attempt(&m.msg, nullptr, &m.now, nullptr, 0, &m.data);
    api->size = sizeof(ec_core);
    api->message_protocol = nullptr; // in the table, but not offered
    t.h.core().log_attempt(&m.msg, nullptr, &m.now, nullptr, 0, &m.data);
    CHECK(t.attempts() == std::vector<std::string>{"[][]", "[ESMTPS][]", "[][Your order has shipped]"});
}

TEST_CASE("the module takes a core table of the first version's size and refuses a shorter one",
          "[message_data][module][abi]")
{
    auto loaded = mtacore::load_module(testing::modules_dir(), "mtalog");
    REQUIRE(std::holds_alternative<std::shared_ptr<mtacore::LoadedModule>>(loaded));
    const auto &module = std::get<std::shared_ptr<mtacore::LoadedModule>>(loaded);
    mtacore::Core core;
    ec_core older = *core.c_api();
    testing::TempDir dir;
    const std::string log = dir / "m.log";
    const ec_config_option option{"mainlog", log.c_str(), "x.conf", 2, 3, 13};
    ec_config_stanza stanza{};
    stanza.module = "mtalog";
    stanza.file = "x.conf";
    stanza.line = 1;
    stanza.options = &option;
    stanza.option_count = 1;
    void *instance = nullptr;
    char err[512] = "";
    older.size = static_cast<std::uint32_t>(EC_CORE_MIN_SIZE);
    REQUIRE(module->info().create(&older, &stanza, &instance, err, sizeof err) == EC_MODULE_OK);
    REQUIRE(instance != nullptr);
    module->info().stop(instance);
    older.size = static_cast<std::uint32_t>(EC_CORE_MIN_SIZE - 1);
    CHECK(module->info().create(&older, &stanza, &instance, err, sizeof err) == EC_MODULE_ERROR);
    CHECK(instance == nullptr);
    CHECK(std::string(err) == "mtalog: core ABI version 1 (table size " + std::to_string(EC_CORE_MIN_SIZE - 1) +
                                  ") is not the version this module was built for (1, size at least " +
                                  std::to_string(EC_CORE_MIN_SIZE) + ")");
}

TEST_CASE("%p does not take %peer and its kin, %h does not take %H, and %h needs a name",
          "[message_data][template]")
{
    Templates t("%peer|%peer_ip|%peer_port|%peer_host|%p|%pe|%p{x}|%H|%h{Subject}");
    Message m;
    m.msg.remote_ip = "192.0.2.55";
    t.h.core().log_attempt(&m.msg, nullptr, &m.now, nullptr, 0, &m.data);
    CHECK(t.attempts() == std::vector<std::string>{"||||ESMTPS|ESMTPSe|ESMTPS{x}|192.0.2.55|Your order has shipped"});
    CHECK(compile_error("%t %h") == "3: macro '%h' needs an argument in braces, e.g. %h{key}");
    CHECK(compile_error("%h{}") == "2: empty argument for '%h'");
    CHECK(compile_error("%t %p", RecordKind::connection_failure) ==
          "3: macro '%p' means nothing for connection_failure records");
    CHECK(compile_error("%h{Subject}", RecordKind::connection_failure) ==
          "0: macro '%h' means nothing for connection_failure records");
}

TEST_CASE("the reference core answers only for the message of the scope in progress on the thread",
          "[message_data][core]")
{
    mtacore::Core core;
    ec_core *api = core.c_api();
    Message m;
    ec_message other = m.msg;
    const char *value = "unset";
    std::size_t length = 99;
    CHECK(api->message_protocol(api, &m.msg) == nullptr);
    {
        const mtacore::MessageScope scope(&m.msg, &m.data);
        CHECK(std::string(api->message_protocol(api, &m.msg)) == "ESMTPS");
        CHECK(api->message_protocol(api, &other) == nullptr);
        CHECK(api->message_header(api, &other, "Subject", &value, &length) == -1);
        CHECK(value == nullptr);
        CHECK(length == 0);
        REQUIRE(api->message_header(api, &m.msg, "subject", &value, &length) == 0);
        CHECK(std::string(value, length) == "Your order has shipped");
        {
            const mtacore::MessageScope inner(&other, nullptr);
            CHECK(api->message_protocol(api, &m.msg) == nullptr);
        }
        CHECK(api->message_protocol(api, &m.msg) != nullptr); // the outer scope is back
    }
    CHECK(api->message_header(api, &m.msg, "Subject", &value, &length) == -1);
}

TEST_CASE("the reference core unfolds a header value and drops the blanks after the colon",
          "[message_data][core]")
{
    mtacore::MessageData d;
    d.add_header("Subject", " \tA long\r\n subject\n\tfolded\r\nnot a fold\rx ");
    d.add_header("Empty", "   ");
    REQUIRE(d.header("subject") != nullptr);
    CHECK(*d.header("subject") == "A long subject\tfolded\r\nnot a fold\rx ");
    REQUIRE(d.header("EMPTY") != nullptr);
    CHECK(d.header("EMPTY")->empty());
    CHECK(d.header("Subjec") == nullptr);
}

TEST_CASE("replay passes msg.protocol and msg.headers (an object or [name, value] pairs) to the accessors",
          "[message_data][replay]")
{
    Templates t("%i|%p|%h{Subject}|%h{x-campaign-id}");
    std::istringstream in(
        R"({"hook":"attempt","msg":{"id":"00/00-25004-31B987F3","protocol":"ESMTPS","headers":{"Subject":" Hi\r\n there","X-Campaign-ID":"c7"}},"now":1700000000})"
        "\n"
        R"({"hook":"attempt","msg":{"id":"00/00-25004-31B987F4","protocol":null,"headers":[["subject","one\u0000\u0001"],["Subject","two"]]},"now":1700000000})"
        "\n"
        R"({"hook":"attempt","msg":{"id":"00/00-25004-31B987F5","headers":[["Subject"]]},"now":1700000000})"
        "\n"
        R"({"hook":"attempt","msg":{"id":"00/00-25004-31B987F6","protocol":25},"now":1700000000})"
        "\n");
    std::ostringstream errors;
    const std::atomic<bool> stop{false};
    const auto stats = mtacore::replay(t.h.core(), in, "in.jsonl", stop, errors);
    CHECK(stats.attempts == 2);
    CHECK(stats.bad_lines == 2);
    CHECK(errors.str() == "in.jsonl:3: msg.headers: expected an object of \"name\": \"value\" or an array of "
                          "[\"name\", \"value\"]; line skipped\n"
                          "in.jsonl:4: msg.protocol: expected a string or null; line skipped\n");
    CHECK(t.attempts() == std::vector<std::string>{"00/00-25004-31B987F3|ESMTPS|Hi there|c7",
                                                   "00/00-25004-31B987F4||one\\x00\\x01|"});
}
