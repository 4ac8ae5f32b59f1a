// One node for the mtalog-ship tests: an mtalog config writing attempt.log
// (mainlog) and bounce.json (JSON), a shipper config, and a nats-server of
// its own on loopback.
#pragma once

#include <catch2/catch.hpp>

#include <csignal>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "fleet.hpp"
#include "test_support.hpp"

namespace testing {

struct ShipNode {
    TempDir dir;
    std::string ship_conf = dir / "ship.conf";

    explicit ShipNode(const std::string &urls, const std::string &extra = "")
    {
        write_core_conf("attempt.log", "bounce.json");
        write_ship_conf(urls, extra);
    }
    // The mtalog config, with the two files named as given.
    void write_core_conf(const std::string &attempt, const std::string &bounce) const
    {
        write_file(dir / "core.conf", "modules_path = \"" + modules_dir() + "\"\nmtalog {\n  attempt_logfile = \"" +
                                          attempt + "\"\n  permanent_failure_logfile = \"" + bounce +
                                          "\"\n  permanent_failure_format = \"json\"\n  log_connection_failures = off\n}\n");
    }
    void write_ship_conf(const std::string &urls, const std::string &extra, const std::string &state = "state") const
    {
        write_file(ship_conf, "mtalog_ship {\n  mtalog_config = \"core.conf\"\n  servers = \"" + urls +
                                  "\"\n  node = \"n1\"\n  state_dir = \"" + state +
                                  "\"\n  duplicate_window = 2s\n  retry_max = 500ms\n  status_interval = 200ms\n" +
                                  extra + "}\n");
    }
    void generate(int records, int seed = 1) const
    {
        const auto r = run_command({mtacore_exe(), "--config", dir / "core.conf", "--generate", std::to_string(records),
                                    "--threads", "2", "--quiet", "--seed", std::to_string(seed)},
                                   dir.path());
        INFO(r.err);
        REQUIRE(r.status == 0);
    }
    [[nodiscard]] CommandResult ship_once(int timeout_s = 60, const std::string &cwd = "") const
    {
        return run_command({mtalog_ship_exe(), "--once", ship_conf}, cwd.empty() ? dir.path() : cwd, "", timeout_s);
    }
    // Started, and handling SIGTERM (a test that stops it at once meets the
    // shipper's own stop, not the default action).
    [[nodiscard]] Process start_shipper() const
    {
        Process p({mtalog_ship_exe(), ship_conf}, dir / "ship.log", dir.path());
        REQUIRE(p.wait_catching(SIGTERM, 30000));
        return p;
    }
    [[nodiscard]] long long lines_in_files() const
    {
        return static_cast<long long>(records_of(dir / "attempt.log").size() + records_of(dir / "bounce.json").size());
    }
    // state/status.json, or a null value while it is missing or being replaced.
    [[nodiscard]] nlohmann::json status() const
    {
        return nlohmann::json::parse(read_file(dir / "state/status.json"), nullptr, false);
    }
    [[nodiscard]] long long status_value(const char *name) const
    {
        const auto j = status();
        return j.is_object() && j.contains(name) && j.at(name).is_number() ? j.at(name).get<long long>() : -1;
    }
};

// One nats-server with JetStream in its own directory, optionally with one
// user/password, and a reader of its streams.
struct OneServer {
    const std::string user, password;
    TempDir servers;
    NatsCluster cluster{servers, 1, user, password};

    explicit OneServer(const std::string &user_name = "", const std::string &user_password = "")
        : user(user_name), password(user_password)
    {
    }
    [[nodiscard]] std::string url() const { return cluster.url(0); }
    [[nodiscard]] StreamReader reader() const { return {url(), user, password}; }
};

// A ShipNode (with `extra` in its shipper config) shipping to a OneServer of
// its own. The server starts first (base order) and goes last.
struct NodeOnOneServer : OneServer, ShipNode {
    explicit NodeOnOneServer(const std::string &extra = "", const std::string &user_name = "",
                             const std::string &user_password = "")
        : OneServer(user_name, user_password), ShipNode(url(), extra)
    {
    }
};

// Each record of the stream once, by id, and as many as `expected`.
inline void check_exactly_once(const StreamReader &reader, long long expected, const std::string &stream = "MTALOG")
{
    const auto stored = reader.read_all(stream);
    std::set<std::string> ids;
    for (const auto &m : stored)
        ids.insert(m.id);
    CHECK(ids.size() == stored.size());
    CHECK(static_cast<long long>(stored.size()) == expected);
}

} // namespace testing
