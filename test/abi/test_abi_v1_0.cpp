// A core built against the first version of the ABI headers, frozen in
// test/abi/v1_0/ (ec_core ends at message_id_text), drives today's mtalog.so:
// it loads it with Boost.DLL, configures it, calls its hooks and unloads it.
// This program sees only the frozen headers (test/meson.build gives it no
// other include path), so it cannot know the members appended since; the
// module must take its smaller table and write nothing for %p and %h{...}.
#include <catch2/catch.hpp>

#include <boost/dll/shared_library.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

#include <mtahooks/ec_module.h>

#ifdef EC_CORE_HAS
#error "test_abi_v1_0 must be built against the frozen v1.0 headers only"
#endif
static_assert(sizeof(ec_core) == offsetof(ec_core, message_id_text) + sizeof(void *),
              "the frozen ec_core ends at message_id_text");

namespace {

// The least a core does: keep the providers, call them, resolve slot 0 and
// write ids as hex. Single-threaded, as this test is.
struct OldCore {
    ec_core api{};
    std::vector<std::pair<core_log_attempt_v1_fn, void *>> attempts;
    std::vector<std::pair<core_log_permanent_failure_v1_fn, void *>> failures;
    std::vector<std::pair<core_log_reopen_fn, void *>> reopens;
    std::vector<std::string> panics;

    static OldCore &of(ec_core *api) { return *static_cast<OldCore *>(api->core_private); }

    template <typename Fn>
    static int add(std::vector<std::pair<Fn, void *>> &list, Fn fn, void *closure)
    {
        list.emplace_back(fn, closure);
        return 0;
    }
    static int refuse_conn(ec_core *, core_log_client_connection_failure_fn, void *) { return -1; }

    OldCore()
    {
        api.abi_version = EC_ABI_VERSION;
        api.size = sizeof(ec_core);
        api.core_private = this;
        api.core_name = "core-v1.0";
        api.register_core_log_attempt_v1_hook_first = [](ec_core *c, core_log_attempt_v1_fn fn, void *cl) {
            return add(of(c).attempts, fn, cl);
        };
        api.register_core_log_attempt_v1_hook_last = api.register_core_log_attempt_v1_hook_first;
        api.register_core_log_client_connection_failure_hook_first = refuse_conn;
        api.register_core_log_client_connection_failure_hook_last = refuse_conn;
        api.register_core_log_permanent_failure_v1_hook_first = [](ec_core *c, core_log_permanent_failure_v1_fn fn,
                                                                   void *cl) { return add(of(c).failures, fn, cl); };
        api.register_core_log_permanent_failure_v1_hook_last = api.register_core_log_permanent_failure_v1_hook_first;
        api.register_core_log_reopen_hook_first = [](ec_core *c, core_log_reopen_fn fn, void *cl) {
            return add(of(c).reopens, fn, cl);
        };
        api.register_core_log_reopen_hook_last = api.register_core_log_reopen_hook_first;
        api.unregister_closure = [](ec_core *c, void *closure) {
            OldCore &self = of(c);
            const auto removed = std::erase_if(self.attempts, [&](auto &p) { return p.second == closure; }) +
                                 std::erase_if(self.failures, [&](auto &p) { return p.second == closure; }) +
                                 std::erase_if(self.reopens, [&](auto &p) { return p.second == closure; });
            return static_cast<int>(removed);
        };
        api.paniclog = [](ec_core *c, int, const char *module, const char *message) {
            of(c).panics.push_back(std::string(module ? module : "?") + ": " + (message ? message : ""));
        };
        api.binding_lookup = [](ec_core *, int slot, const char **name, const char **group) {
            *name = slot == 0 ? "default" : nullptr;
            *group = slot == 0 ? "default" : nullptr;
            return slot == 0 ? 0 : -1;
        };
        api.message_id_text = [](ec_core *, const message_id *id, char *buf, size_t buflen) {
            char text[EC_MESSAGE_ID_TEXT_MAX + 1];
            const int n = std::snprintf(text, sizeof text, "%08X", id ? id->slot : 0u);
            std::snprintf(buf, buflen, "%s", text);
            return static_cast<size_t>(n);
        };
    }
};

struct TempDir {
    std::string path;
    TempDir()
    {
        std::string templ = (std::filesystem::temp_directory_path() / "mtalog-abi-XXXXXX").string();
        if (::mkdtemp(templ.data()) == nullptr)
            throw std::runtime_error("mkdtemp failed");
        path = templ;
    }
    ~TempDir() { std::filesystem::remove_all(path); }
};

std::vector<std::string> lines_of(const std::string &path)
{
    std::vector<std::string> lines;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);)
        lines.push_back(line);
    return lines;
}

// One stanza `mtalog { name = value ... }` as the core hands it over.
struct Stanza {
    std::vector<std::pair<std::string, std::string>> options;
    std::vector<ec_config_option> c_options;
    ec_config_stanza c{};
    const ec_config_stanza *get()
    {
        c_options.clear();
        int line = 2;
        for (const auto &[name, value] : options)
            c_options.push_back(ec_config_option{name.c_str(), value.c_str(), "old.conf", line++, 3, 20});
        c.module = "mtalog";
        c.file = "old.conf";
        c.line = 1;
        c.column = 1;
        c.options = c_options.data();
        c.option_count = c_options.size();
        return &c;
    }
};

} // namespace

TEST_CASE("a core built on the v1.0 headers runs today's module; %p and %h write nothing, the rest is intact",
          "[abi]")
{
    TempDir dir;
    OldCore core;
    REQUIRE(core.api.size == offsetof(ec_core, message_id_text) + sizeof(void *));
    Stanza stanza;
    stanza.options = {
        {"attempt_logfile", dir.path + "/a.log"},
        {"attempt_format", "%i|%p|%h{Subject}|%r@%R|%d|%b|%T|%n|%vctx_mess{campaign}|end"},
        {"permanent_failure_logfile", dir.path + "/p.log"},
        {"permanent_failure_format", "%i %p%h{From} %s %n"},
        {"log_connection_failures", "off"},
    };
    {
        boost::dll::shared_library so(std::string(MTALOG_MODULES_DIR) + "/mtalog.so",
                                      boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
        const auto entry = so.get<const ec_module_info *()>(EC_MODULE_ENTRY_SYMBOL);
        const ec_module_info *info = entry();
        REQUIRE(info->abi_version == EC_ABI_VERSION);
        void *instance = nullptr;
        char err[1024] = "";
        REQUIRE(info->create(&core.api, stanza.get(), &instance, err, sizeof err) == EC_MODULE_OK);
        REQUIRE(info->start(instance, err, sizeof err) == EC_MODULE_OK);
        REQUIRE(core.attempts.size() == 1);
        REQUIRE(core.failures.size() == 1);

        ec_kv campaign{"campaign", "spring-sale"};
        ec_message msg{};
        msg.id = message_id{0x31B987F3u, 25004, 0};
        msg.creation_time = timeval{1699999990, 0};
        msg.rcptto_local = "bob";
        msg.rcptto_domain = "example.com";
        msg.stage = EC_STAGE_RCPT_TO;
        msg.vctx_mess = ec_dict{&campaign, 1};
        char domain[] = "example.com";
        domain_record dr{domain, 0, 0};
        timeval now{1700000000, 0};
        const std::string note = "250 2.0.0 Ok";
        for (auto &[fn, closure] : core.attempts)
            fn(closure, &msg, &dr, &now, note.data(), static_cast<int>(note.size()));
        const std::string dsn = "550 5.1.1 unknown\r\nforged";
        for (auto &[fn, closure] : core.failures)
            fn(closure, &msg, &dr, &now, dsn.data(), static_cast<int>(dsn.size()));
        for (auto &[fn, closure] : core.reopens)
            fn(closure);

        info->stop(instance);
        CHECK(core.attempts.empty()); // stop() unregistered its providers
        CHECK(core.failures.empty());
        so.unload();
    }
    CHECK(lines_of(dir.path + "/a.log") ==
          std::vector<std::string>{"31B987F3|||bob@example.com|example.com|default|10|250 2.0.0 Ok|spring-sale|end"});
    CHECK(lines_of(dir.path + "/p.log") ==
          std::vector<std::string>{"31B987F3  rcpt_to 550 5.1.1 unknown\\x0d\\x0aforged"});
    REQUIRE_FALSE(core.panics.empty());
    CHECK(core.panics.back() == "mtalog: stopped: 2 records written, none dropped");
}
