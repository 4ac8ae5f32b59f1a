// The core's hook table: order, closures, the registration window, lock-free
// calls racing unregister, and ec_log_permanent_failure's NULL semantics.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <ctime>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core.hpp"

namespace {

struct Trace {
    std::vector<std::string> calls;
};

struct Tagged {
    Trace *trace;
    std::string tag;
};

void reopen_provider(void *closure)
{
    auto *t = static_cast<Tagged *>(closure);
    t->trace->calls.push_back(t->tag);
}

struct Captured {
    int calls = 0;
    ec_message *msg = nullptr;
    timeval now{};
    bool now_was_null = false;
    std::string note;
    bool note_was_null = false;
    int note_len = -1;
};

void capture_permanent(void *closure, ec_message *msg, domain_record *, timeval *now, const char *note, int note_len)
{
    auto *c = static_cast<Captured *>(closure);
    ++c->calls;
    c->msg = msg;
    c->now_was_null = now == nullptr;
    if (now)
        c->now = *now;
    c->note_was_null = note == nullptr;
    c->note = note ? std::string(note, static_cast<std::size_t>(note_len)) : "";
    c->note_len = note_len;
}

} // namespace

TEST_CASE("providers run in registration order; first goes in front, last behind", "[hooks]")
{
    mtacore::Core core;
    ec_core *api = core.c_api();
    Trace trace;
    Tagged a{&trace, "a"}, b{&trace, "b"}, c{&trace, "c"}, d{&trace, "d"};
    core.hooks().open_registration();
    REQUIRE(api->register_core_log_reopen_hook_last(api, reopen_provider, &a) == 0);
    REQUIRE(api->register_core_log_reopen_hook_last(api, reopen_provider, &b) == 0);
    REQUIRE(api->register_core_log_reopen_hook_first(api, reopen_provider, &c) == 0);
    REQUIRE(api->register_core_log_reopen_hook_first(api, reopen_provider, &d) == 0);
    core.hooks().close_registration();
    core.log_reopen();
    CHECK(trace.calls == std::vector<std::string>{"d", "c", "a", "b"});
}

TEST_CASE("registration is refused outside the configuration window, and for NULL", "[hooks]")
{
    mtacore::Core core;
    std::vector<std::string> panics;
    core.set_panic_sink([&](int, std::string_view, std::string_view m) { panics.emplace_back(m); });
    ec_core *api = core.c_api();
    Trace trace;
    Tagged a{&trace, "a"};
    CHECK(api->register_core_log_reopen_hook_last(api, reopen_provider, &a) == -1);
    core.hooks().open_registration();
    CHECK(api->register_core_log_reopen_hook_last(api, nullptr, &a) == -1);
    core.hooks().close_registration();
    core.log_reopen();
    CHECK(trace.calls.empty());
    REQUIRE(panics.size() == 2);
    CHECK(panics[0] == "refused to register on core_log_reopen: registration is only open while modules are configured");
    CHECK(panics[1] == "refused a NULL provider for core_log_reopen");
}

TEST_CASE("unregister_closure removes exactly that closure's providers on every hook", "[hooks]")
{
    mtacore::Core core;
    ec_core *api = core.c_api();
    Trace trace;
    Tagged a{&trace, "a"}, b{&trace, "b"};
    Captured cap;
    core.hooks().open_registration();
    api->register_core_log_reopen_hook_last(api, reopen_provider, &a);
    api->register_core_log_reopen_hook_last(api, reopen_provider, &b);
    api->register_core_log_permanent_failure_v1_hook_last(api, capture_permanent, &a);
    core.hooks().close_registration();
    CHECK(api->unregister_closure(api, &a) == 2);
    CHECK(api->unregister_closure(api, &a) == 0);
    core.log_reopen();
    CHECK(trace.calls == std::vector<std::string>{"b"});
    CHECK(core.hooks().provider_count(mtacore::Hook::log_permanent_failure_v1) == 0);
}

namespace {

struct Victim {
    std::atomic<bool> *unregistered;
    std::atomic<long> *after_unregister;
    std::atomic<long> *calls;
    long payload[16];
};

void victim_provider(void *closure)
{
    auto *v = static_cast<Victim *>(closure);
    v->calls->fetch_add(1);
    long sum = 0;
    for (const long &p : v->payload) // read the closure's memory, as a real module would
        sum += p;
    if (v->unregistered->load())
        v->after_unregister->fetch_add(1);
    if (sum == -1)
        std::this_thread::yield();
}

void bystander(void *closure) { static_cast<std::atomic<long> *>(closure)->fetch_add(1); }

void unregister_inside(void *closure)
{
    auto *api = static_cast<ec_core *>(closure);
    static thread_local int result = 0;
    result = api->unregister_closure(api, closure);
    CHECK(result == -1);
}

} // namespace

TEST_CASE("no call reaches a provider after unregister returns, with 8 threads calling", "[hooks][concurrency]")
{
    for (int round = 0; round < 20; ++round) {
        mtacore::Core core;
        core.set_panic_sink([](int, std::string_view, std::string_view) {});
        ec_core *api = core.c_api();
        std::atomic<bool> unregistered{false};
        std::atomic<long> after{0}, calls{0}, others{0};
        auto *victim = new Victim{&unregistered, &after, &calls, {}};
        core.hooks().open_registration();
        api->register_core_log_reopen_hook_last(api, bystander, &others);
        api->register_core_log_reopen_hook_last(api, victim_provider, victim);
        api->register_core_log_reopen_hook_last(api, bystander, &others);
        core.hooks().close_registration();

        std::atomic<bool> go{true};
        std::vector<std::thread> callers;
        for (int t = 0; t < 8; ++t)
            callers.emplace_back([&] {
                while (go.load())
                    core.log_reopen();
            });
        while (calls.load() < 1000)
            std::this_thread::yield();
        REQUIRE(api->unregister_closure(api, victim) == 1);
        unregistered.store(true);
        delete victim; // a use after this is a heap-use-after-free under ASan
        const long others_then = others.load();
        while (others.load() < others_then + 1000)
            std::this_thread::yield();
        go.store(false);
        for (auto &t : callers)
            t.join();
        CHECK(after.load() == 0);
    }
}

TEST_CASE("unregister from inside a hook call is refused instead of deadlocking", "[hooks]")
{
    mtacore::Core core;
    std::vector<std::string> panics;
    core.set_panic_sink([&](int, std::string_view, std::string_view m) { panics.emplace_back(m); });
    ec_core *api = core.c_api();
    core.hooks().open_registration();
    api->register_core_log_reopen_hook_last(api, unregister_inside, api);
    core.hooks().close_registration();
    core.log_reopen();
    CHECK(core.hooks().provider_count(mtacore::Hook::log_reopen) == 1);
    REQUIRE(panics.size() == 1);
    CHECK(panics[0] == "unregister_closure called from inside a hook call: refused");
}

TEST_CASE("ec_log_permanent_failure: NULL now is the current time, NULL note the message's DSN", "[hooks][api]")
{
    mtacore::Core core;
    ec_core *api = core.c_api();
    Captured cap;
    core.hooks().open_registration();
    api->register_core_log_permanent_failure_v1_hook_last(api, capture_permanent, &cap);
    core.hooks().close_registration();

    char dsn[] = "550 5.1.1 unknown user";
    string code{static_cast<int>(sizeof dsn - 1), static_cast<int>(sizeof dsn), dsn};
    ec_message msg{};
    msg._code = &code;
    char domain[] = "example.com";
    domain_record dr{domain, 0, 0};

    const std::time_t before = std::time(nullptr);
    ec_core_log_permanent_failure(api, &msg, &dr, nullptr, nullptr);
    const std::time_t after = std::time(nullptr);
    REQUIRE(cap.calls == 1);
    CHECK_FALSE(cap.now_was_null);
    CHECK(cap.now.tv_sec >= before);
    CHECK(cap.now.tv_sec <= after);
    CHECK(cap.note == "550 5.1.1 unknown user");
    CHECK(cap.note_len == 22);
    CHECK(cap.msg == &msg);

    SECTION("an explicit note and time win over the message's")
    {
        char text[] = "554 other";
        string note{9, 10, text};
        timeval t{1700000000, 250000};
        ec_core_log_permanent_failure(api, &msg, &dr, &t, &note);
        CHECK(cap.note == "554 other");
        CHECK(cap.now.tv_sec == 1700000000);
        CHECK(cap.now.tv_usec == 250000);
    }
    SECTION("NULL note and no stored DSN give the hook NULL and 0")
    {
        msg._code = nullptr;
        ec_core_log_permanent_failure(api, &msg, &dr, nullptr, nullptr);
        CHECK(cap.note_was_null);
        CHECK(cap.note_len == 0);
    }
    SECTION("a NULL message with a NULL note reaches the hook as NULL")
    {
        ec_core_log_permanent_failure(api, nullptr, &dr, nullptr, nullptr);
        CHECK(cap.msg == nullptr);
        CHECK(cap.note_was_null);
    }
    SECTION("Momentum's spelling goes through the default core, and is a no-op without one")
    {
        ec_set_default_core(api);
        ec_log_permanent_failure(&msg, &dr, nullptr, nullptr);
        CHECK(cap.calls == 2);
        ec_set_default_core(nullptr);
        ec_log_permanent_failure(&msg, &dr, nullptr, nullptr);
        CHECK(cap.calls == 2);
    }
}

TEST_CASE("the core resolves binding slots and message ids for modules", "[hooks][api]")
{
    mtacore::Core core;
    core.set_bindings({{"mta1", "pool-a"}, {"mta2", "pool-a"}});
    ec_core *api = core.c_api();
    const char *name = nullptr, *group = nullptr;
    CHECK(api->binding_lookup(api, 0, &name, &group) == 0);
    CHECK(std::string(name) == "default");
    CHECK(std::string(group) == "default");
    CHECK(api->binding_lookup(api, 2, &name, &group) == 0);
    CHECK(std::string(name) == "mta2");
    CHECK(api->binding_lookup(api, 3, &name, &group) == -1);
    CHECK(name == nullptr);
    CHECK(api->binding_lookup(api, -1, &name, &group) == -1);

    message_id id{0x31B987F3u, 25004, 0x0102};
    char buf[EC_MESSAGE_ID_TEXT_MAX + 1];
    CHECK(api->message_id_text(api, &id, buf, sizeof buf) == 20);
    CHECK(std::string(buf) == "01/02-25004-31B987F3");
    char small[6];
    CHECK(api->message_id_text(api, &id, small, sizeof small) == 20);
    CHECK(std::string(small) == "01/02");
    message_id zero{};
    CHECK(api->message_id_text(api, &zero, buf, sizeof buf) == 0);
    CHECK(std::string(buf).empty());
}
